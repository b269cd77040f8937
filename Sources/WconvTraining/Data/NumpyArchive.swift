import CWconvZlib
import Foundation
import WconvTensor

/// Minimal readers for `.npy` arrays and `.npz` archives (zip of `.npy`, stored or deflated,
/// zip64 sizes included), for tensor datasets. Every header field is checked against the file.
public enum NumpyArchive {
    /// Reads one `.npy` payload (the bytes of a file or of an npz member).
    public static func parseNpy(_ bytes: UnsafeRawBufferPointer, name: String) throws -> Tensor {
        let magic: [UInt8] = [0x93, 0x4E, 0x55, 0x4D, 0x50, 0x59]
        guard bytes.count >= 10, Array(bytes[0..<6]) == magic else {
            throw WconvError.invalid("\(name): not a .npy array (missing \\x93NUMPY magic)")
        }
        let major = bytes[6]
        let headerLen: Int, start: Int
        if major == 1 {
            headerLen = Int(bytes[8]) | Int(bytes[9]) << 8; start = 10
        } else if major == 2 || major == 3 {
            guard bytes.count >= 12 else { throw WconvError.invalid("\(name): truncated .npy header") }
            headerLen = Int(bytes[8]) | Int(bytes[9]) << 8 | Int(bytes[10]) << 16 | Int(bytes[11]) << 24; start = 12
        } else {
            throw WconvError.invalid("\(name): unsupported .npy version \(major)")
        }
        guard headerLen <= bytes.count - start else {
            throw WconvError.invalid("\(name): .npy header of \(headerLen) bytes at offset \(start) runs past the end (\(bytes.count) bytes)")
        }
        let header = String(decoding: bytes[start..<(start + headerLen)], as: UTF8.self)
        func field(_ key: String) -> String? {
            guard let r = header.range(of: "'\(key)':") else { return nil }
            return String(header[r.upperBound...]).trimmingCharacters(in: .whitespaces)
        }
        guard let descrRaw = field("descr"), let q1 = descrRaw.firstIndex(of: "'"),
              let q2 = descrRaw[descrRaw.index(after: q1)...].firstIndex(of: "'") else {
            throw WconvError.invalid("\(name): .npy header has no descr: \(header)")
        }
        let descr = String(descrRaw[descrRaw.index(after: q1)..<q2])
        if let f = field("fortran_order"), f.hasPrefix("True") {
            throw WconvError.invalid("\(name): Fortran-ordered arrays are not supported; save with np.ascontiguousarray")
        }
        guard let shapeRaw = field("shape"), let open = shapeRaw.firstIndex(of: "("), let close = shapeRaw.firstIndex(of: ")") else {
            throw WconvError.invalid("\(name): .npy header has no shape: \(header)")
        }
        let shape = try shapeRaw[shapeRaw.index(after: open)..<close].split(separator: ",").map { s -> Int in
            guard let v = Int(s.trimmingCharacters(in: .whitespaces)), v >= 0 else { throw WconvError.invalid("\(name): bad shape \(shapeRaw)") }
            return v
        }
        let dtypes: [String: DType] = ["<f4": .f32, "<f8": .f64, "<f2": .f16, "|u1": .u8, "<u1": .u8, "|i1": .i8,
                                       "<i2": .i16, "<i4": .i32, "<i8": .i64, "|b1": .bool]
        guard let dtype = dtypes[descr] else {
            throw WconvError.invalid("\(name): dtype '\(descr)' not supported (use float32/float64/uint8/int64, little-endian)")
        }
        let numel = try Tensor.checkedNumel(shape)
        let (nbytes, o) = numel.multipliedReportingOverflow(by: dtype.byteSize)
        let dataStart = start + headerLen
        guard !o, nbytes <= bytes.count - dataStart else {
            throw WconvError.invalid("\(name): shape \(shape) \(descr) needs \(nbytes) bytes at offset \(dataStart) but \(bytes.count - dataStart) remain")
        }
        let storage = Storage(copying: UnsafeRawBufferPointer(rebasing: bytes[dataStart..<(dataStart + nbytes)]))
        return try Tensor(dtype: dtype, shape: shape, storage: storage)
    }

    /// Reads every array of an `.npz` (or a single `.npy`) file, keyed by name without `.npy`.
    public static func read(path: String) throws -> [String: Tensor] {
        let file = try MappedFile(path: path)
        let b = file.buffer
        if b.count >= 6 && b[0] == 0x93 && b[1] == 0x4E {
            let name = ((path as NSString).lastPathComponent as NSString).deletingPathExtension
            return [name: try parseNpy(b, name: path)]
        }
        do { return try readZip(b) } catch let e as WconvError { throw e.inFile(path) }
    }

    static func u16(_ b: UnsafeRawBufferPointer, _ o: Int) -> Int { Int(b[o]) | Int(b[o + 1]) << 8 }
    static func u32(_ b: UnsafeRawBufferPointer, _ o: Int) -> Int { u16(b, o) | u16(b, o + 2) << 16 }
    static func u64(_ b: UnsafeRawBufferPointer, _ o: Int) -> Int {
        let v = UInt64(u32(b, o)) | UInt64(u32(b, o + 4)) << 32
        return v > UInt64(Int.max) ? Int.max : Int(v)
    }

    static func readZip(_ b: UnsafeRawBufferPointer) throws -> [String: Tensor] {
        let n = b.count
        guard n >= 22 else { throw WconvError.invalid("not a .npz (zip) or .npy file: \(n) bytes") }
        var eocd = -1
        var i = n - 22
        while i >= max(0, n - 22 - 65535) {
            if u32(b, i) == 0x0605_4B50 { eocd = i; break }
            i -= 1
        }
        guard eocd >= 0 else { throw WconvError.invalid("not a .npz: no zip end-of-central-directory record") }
        var entries = u16(b, eocd + 10)
        var cdOffset = u32(b, eocd + 16)
        if (cdOffset == 0xFFFF_FFFF || entries == 0xFFFF), eocd >= 20, u32(b, eocd - 20) == 0x0706_4B50 {
            let z64 = u64(b, eocd - 12)
            guard z64 <= n - 56, u32(b, z64) == 0x0606_4B50 else { throw WconvError.invalid("bad zip64 end record at offset \(z64)") }
            entries = u64(b, z64 + 32)
            cdOffset = u64(b, z64 + 48)
        }
        var out: [String: Tensor] = [:]
        var p = cdOffset
        for _ in 0..<entries {
            guard p <= n - 46, u32(b, p) == 0x0201_4B50 else { throw WconvError.invalid("bad zip central directory entry at offset \(p)") }
            let method = u16(b, p + 10)
            var csize = u32(b, p + 20), usize = u32(b, p + 24)
            let nameLen = u16(b, p + 28), extraLen = u16(b, p + 30), commentLen = u16(b, p + 32)
            var local = u32(b, p + 42)
            guard p + 46 + nameLen + extraLen <= n else { throw WconvError.invalid("zip entry at offset \(p) runs past the end") }
            let name = String(decoding: UnsafeRawBufferPointer(rebasing: b[(p + 46)..<(p + 46 + nameLen)]), as: UTF8.self)
            // zip64 extra field: the 0xFFFFFFFF fields, in order usize, csize, local offset.
            var e = p + 46 + nameLen
            let eEnd = e + extraLen
            while e + 4 <= eEnd {
                let id = u16(b, e), len = u16(b, e + 2)
                if id == 1 {
                    var q = e + 4
                    if usize == 0xFFFF_FFFF && q + 8 <= e + 4 + len { usize = u64(b, q); q += 8 }
                    if csize == 0xFFFF_FFFF && q + 8 <= e + 4 + len { csize = u64(b, q); q += 8 }
                    if local == 0xFFFF_FFFF && q + 8 <= e + 4 + len { local = u64(b, q); q += 8 }
                }
                e += 4 + len
            }
            p = eEnd + commentLen
            guard local <= n - 30, u32(b, local) == 0x0403_4B50 else { throw WconvError.invalid("zip member '\(name)': bad local header at offset \(local)") }
            let dataStart = local + 30 + u16(b, local + 26) + u16(b, local + 28)
            guard dataStart <= n, csize <= n - dataStart else {
                throw WconvError.invalid("zip member '\(name)': \(csize) bytes at offset \(dataStart) run past the end (\(n) bytes)")
            }
            let member = UnsafeRawBufferPointer(rebasing: b[dataStart..<(dataStart + csize)])
            let key = name.hasSuffix(".npy") ? String(name.dropLast(4)) : name
            switch method {
            case 0:
                out[key] = try parseNpy(member, name: name)
            case 8:
                // Deflate can expand ~1032:1; the central directory's size is believed only up to that.
                guard usize <= csize &* 1100 + 1024 else {
                    throw WconvError.invalid("zip member '\(name)' claims \(usize) bytes from \(csize) compressed: refused as a decompression bomb")
                }
                var raw = [UInt8](repeating: 0, count: usize)
                try inflateRaw(member, into: &raw, name: name)
                out[key] = try raw.withUnsafeBytes { try parseNpy($0, name: name) }
            default:
                throw WconvError.invalid("zip member '\(name)': compression method \(method) not supported (use np.savez or np.savez_compressed)")
            }
        }
        return out
    }

    static func inflateRaw(_ src: UnsafeRawBufferPointer, into dst: inout [UInt8], name: String) throws {
        var zs = z_stream()
        guard inflateInit2_(&zs, -15, ZLIB_VERSION, Int32(MemoryLayout<z_stream>.size)) == Z_OK else {
            throw WconvError(.runtime, "zlib init failed for '\(name)'")
        }
        defer { inflateEnd(&zs) }
        let total = dst.count
        let rc: Int32 = dst.withUnsafeMutableBytes { out in
            zs.next_in = UnsafeMutablePointer(mutating: src.bindMemory(to: Bytef.self).baseAddress)
            zs.avail_in = uInt(src.count)
            zs.next_out = out.bindMemory(to: Bytef.self).baseAddress
            zs.avail_out = uInt(total)
            return inflate(&zs, Z_FINISH)
        }
        guard rc == Z_STREAM_END, Int(zs.total_out) == total else {
            throw WconvError.invalid("zip member '\(name)': deflate data corrupt (zlib \(rc), \(zs.total_out) of \(total) bytes)")
        }
    }
}

/// A dataset held in tensors: `images` N×C×H×W (uint8 → the image transforms, like ImageFolder;
/// float → taken as already-preprocessed network input) and `labels` N integers. Read from
/// `.npz` (safetensors once the shared reader is merged), with `classes` from a `classes` array
/// or numbered `0…K−1`.
public struct TensorDataset: LabelledDataset {
    public let images: Tensor
    public let labels: [Int]
    public let classes: [String]
    public let name: String

    public init(images: Tensor, labels: [Int], classes: [String]? = nil, name: String) throws {
        guard images.rank == 4 else { throw WconvError.invalid("\(name): 'images' must be N×C×H×W, got shape \(images.shape)") }
        guard images.shape[0] == labels.count else {
            throw WconvError.invalid("\(name): \(images.shape[0]) images but \(labels.count) labels")
        }
        guard images.dtype == .u8 ? images.shape[1] == 3 || images.shape[1] == 1 : true else {
            throw WconvError.invalid("\(name): uint8 images need 1 or 3 channels, got \(images.shape[1])")
        }
        let k = (labels.max() ?? -1) + 1
        if let bad = labels.first(where: { $0 < 0 }) { throw WconvError.invalid("\(name): negative label \(bad)") }
        // Labels index classes: more classes than samples (plus slack) means corrupt labels.
        guard k <= labels.count + 1000 else {
            throw WconvError.invalid("\(name): label \(k - 1) for only \(labels.count) samples; labels must be class indices 0…K−1")
        }
        let cls = classes ?? (0..<k).map(String.init)
        guard cls.count >= k else { throw WconvError.invalid("\(name): label \(k - 1) but only \(cls.count) class names") }
        guard cls.count >= 2 else { throw WconvError.invalid("\(name): only one class; a classifier needs at least two") }
        self.images = images.contiguous()
        self.labels = labels
        self.classes = cls
        self.name = name
    }

    /// Loads `images` / `labels` from an `.npz` file.
    public static func load(path: String) throws -> TensorDataset {
        let arrays = try NumpyArchive.read(path: path)
        guard let images = arrays["images"], let labels = arrays["labels"] else {
            throw WconvError(.invalidInput, "needs arrays 'images' (N×C×H×W) and 'labels' (N); found \(arrays.keys.sorted().joined(separator: ", "))", file: path)
        }
        guard [.i64, .i32, .i16, .u8, .i8].contains(labels.dtype), labels.rank == 1 else {
            throw WconvError(.invalidInput, "'labels' must be a 1-d integer array, got \(labels)", file: path)
        }
        let values = labels.doubles()
        guard values.allSatisfy({ $0 >= -1e15 && $0 <= 1e15 }) else { throw WconvError(.invalidInput, "'labels' holds values out of range", file: path) }
        return try TensorDataset(images: images, labels: values.map { Int($0) }, name: path)
    }

    public var count: Int { labels.count }
    public func describe(_ i: Int) -> String { "\(name)[\(i)]" }
    public func load(_ i: Int) throws -> RawSample {
        let c = images.shape[1], h = images.shape[2], w = images.shape[3]
        let per = c * h * w
        if images.dtype == .u8 {
            var px = [UInt8](repeating: 0, count: h * w * 3)
            images.storage.buffer.withMemoryRebound(to: UInt8.self) { src in
                let base = images.offset + i * per
                for y in 0..<h { for x in 0..<w { for k in 0..<3 {
                    px[(y * w + x) * 3 + k] = src[base + (c == 1 ? 0 : k) * h * w + y * w + x]
                } } }
            }
            return .image(RGBImage(width: w, height: h, pixels: px))
        }
        let view = try Tensor(dtype: images.dtype, shape: [per], offset: images.offset + i * per, storage: images.storage)
        return .tensor(view.floats(), shape: [c, h, w])
    }
}
