import CWconvZlib
import WconvTensor

/// The few zip operations the `.keras` reader needs: the central directory, and one member's bytes
/// (a zero-copy view for STORED members, which is what Keras writes; inflated for DEFLATE).
/// Kept private to the Keras reader and small on purpose so it can be swapped for the shared zip
/// reader (`ZipArchive(file:)`, `entry(named:)`, `data(of:)`) when that lands: only
/// `KerasReader.readKerasZip` calls it.
struct KerasZipShim {
    struct Entry {
        var name: String
        var method: UInt16
        var crc: UInt32
        var compressedSize: Int
        var size: Int
        var localHeaderOffset: Int
    }

    let file: MappedFile
    private(set) var entries: [Entry] = []

    init(file: MappedFile) throws {
        self.file = file
        let b = file.buffer
        let path = file.path
        guard b.count >= 22 else { throw WconvError.invalid("too short for a zip archive (\(b.count) bytes)", file: path) }
        // The end-of-central-directory record sits in the last 64 KiB + 22 bytes (comment ≤ 65535).
        var eocd = -1
        var i = b.count - 22
        let lowest = max(0, b.count - 22 - 65535)
        while i >= lowest {
            if Self.u32(b, i) == 0x0605_4b50 { eocd = i; break }
            i -= 1
        }
        guard eocd >= 0 else {
            throw WconvError.invalid("no zip end-of-central-directory record; the .keras file is truncated or not a zip", file: path)
        }
        let count = Int(Self.u16(b, eocd + 10))
        let cdSize = Int(Self.u32(b, eocd + 12))
        let cdOffset = Int(Self.u32(b, eocd + 16))
        guard cdOffset != 0xFFFF_FFFF, count != 0xFFFF else {
            throw WconvError.invalid("zip64 archives are not supported for .keras files", file: path)
        }
        guard cdOffset <= eocd, cdSize <= eocd - cdOffset else {
            throw WconvError.invalid("zip central directory (offset \(cdOffset), \(cdSize) bytes) lies outside the file", file: path)
        }
        var p = cdOffset
        for n in 0..<count {
            guard p + 46 <= eocd, Self.u32(b, p) == 0x0201_4b50 else {
                throw WconvError.invalid("zip central directory entry \(n) at byte \(p) is damaged", file: path)
            }
            let nameLen = Int(Self.u16(b, p + 28)), extraLen = Int(Self.u16(b, p + 30)), commentLen = Int(Self.u16(b, p + 32))
            guard p + 46 + nameLen + extraLen + commentLen <= eocd else {
                throw WconvError.invalid("zip central directory entry \(n) at byte \(p) runs past the directory", file: path)
            }
            let name = String(decoding: UnsafeRawBufferPointer(rebasing: b[(p + 46)..<(p + 46 + nameLen)]), as: UTF8.self)
            entries.append(Entry(name: name, method: Self.u16(b, p + 10), crc: Self.u32(b, p + 16),
                                 compressedSize: Int(Self.u32(b, p + 20)), size: Int(Self.u32(b, p + 24)),
                                 localHeaderOffset: Int(Self.u32(b, p + 42))))
            p += 46 + nameLen + extraLen + commentLen
        }
    }

    func entry(named name: String) -> Entry? { entries.first { $0.name == name } }

    /// The member's bytes: a view into the mapping when STORED, an owned inflated copy for DEFLATE.
    /// Checks bounds, the local header, and the CRC-32.
    func data(of e: Entry) throws -> Storage {
        let b = file.buffer
        let path = file.path
        let h = e.localHeaderOffset
        guard h <= b.count - 30, Self.u32(b, h) == 0x0403_4b50 else {
            throw WconvError.invalid("zip member '\(e.name)': no local header at byte \(h)", file: path)
        }
        let start = h + 30 + Int(Self.u16(b, h + 26)) + Int(Self.u16(b, h + 28))
        guard start <= b.count, e.compressedSize <= b.count - start else {
            throw WconvError.invalid("zip member '\(e.name)' (\(e.compressedSize) bytes at byte \(start)) runs past the end of the file (\(b.count) bytes); the file is truncated", file: path)
        }
        let storage: Storage
        switch e.method {
        case 0:
            guard e.size == e.compressedSize else {
                throw WconvError.invalid("zip member '\(e.name)' is STORED but its sizes differ (\(e.compressedSize) vs \(e.size))", file: path)
            }
            storage = Storage(mapped: file, offset: start, count: e.size)
        case 8:
            // Deflate expands at most ~1032:1; a larger claim is a lie, not a reason to allocate.
            guard e.size <= max(e.compressedSize, 1) * 1032 else {
                throw WconvError.invalid("zip member '\(e.name)' claims \(e.size) bytes from \(e.compressedSize) compressed", file: path)
            }
            storage = Storage(zeroedByteCount: e.size)
            try Self.inflateRaw(UnsafeRawBufferPointer(rebasing: b[start..<(start + e.compressedSize)]),
                                into: storage, name: e.name, path: path)
        default:
            throw WconvError.invalid("zip member '\(e.name)' uses compression method \(e.method); only STORED and DEFLATE are supported", file: path)
        }
        let crc = storage.byteCount == 0 ? 0 : UInt32(crc32(0, storage.bytes.assumingMemoryBound(to: Bytef.self), uInt(storage.byteCount)))
        guard crc == e.crc else {
            throw WconvError.invalid("zip member '\(e.name)' fails its CRC-32 check (0x\(String(crc, radix: 16)) vs 0x\(String(e.crc, radix: 16))); the file is damaged", file: path)
        }
        return storage
    }

    private static func inflateRaw(_ src: UnsafeRawBufferPointer, into dst: Storage, name: String, path: String) throws {
        var zs = z_stream()
        guard inflateInit2_(&zs, -15, ZLIB_VERSION, Int32(MemoryLayout<z_stream>.size)) == Z_OK else {
            throw WconvError(.runtime, "zlib initialisation failed", file: path)
        }
        defer { inflateEnd(&zs) }
        zs.next_in = UnsafeMutablePointer(mutating: src.baseAddress?.assumingMemoryBound(to: Bytef.self))
        zs.avail_in = uInt(src.count)
        zs.next_out = dst.mutableBytes?.assumingMemoryBound(to: Bytef.self)
        zs.avail_out = uInt(dst.byteCount)
        let r = inflate(&zs, Z_FINISH)
        guard r == Z_STREAM_END, Int(zs.total_out) == dst.byteCount else {
            throw WconvError.invalid("zip member '\(name)' does not inflate to its \(dst.byteCount) bytes (zlib status \(r)); the file is damaged", file: path)
        }
    }

    private static func u16(_ b: UnsafeRawBufferPointer, _ o: Int) -> UInt16 {
        UInt16(b[o]) | UInt16(b[o + 1]) << 8
    }
    private static func u32(_ b: UnsafeRawBufferPointer, _ o: Int) -> UInt32 {
        UInt32(b[o]) | UInt32(b[o + 1]) << 8 | UInt32(b[o + 2]) << 16 | UInt32(b[o + 3]) << 24
    }
}
