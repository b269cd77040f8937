import Foundation
import WconvTensor

/// Plain `pickle.dump` files (format `pytorch-pickle`): a state dict (or checkpoint) of torch tensors,
/// whose storages plain pickle embeds as legacy torch.save images through
/// `torch.storage._load_from_bytes`, or of numpy arrays (detectron2 `.pkl` and similar), built by
/// `numpy.core.multiarray._reconstruct` + BUILD or `numpy.core.numeric._frombuffer`. Everything is
/// decoded inertly: the embedded images are parsed as data, never handed to torch.load, and a pickle
/// that reaches for code is refused by the decoder naming the callable.
enum PlainPickle {
    static func read(file: MappedFile, options: PyTorchReadOptions) throws -> TensorBundle {
        var blobs: [String: Storage] = [:]
        let table = TorchStorageTable(path: file.path, byteSwap: false) { ps in
            guard let s = blobs[ps.key] else { throw WconvError.invalid("storage '\(ps.key)' has no bytes in the pickle", file: file.path) }
            return s
        }
        let result = try PickleDecoder.decode(file.buffer, context: (file.path as NSString).lastPathComponent) { bytes in
            let (ps, storage) = try embeddedStorage(bytes, key: "embedded-\(blobs.count)", path: file.path)
            blobs[ps.key] = storage
            return .storage(ps)
        }
        var converter = NumpyArrays(path: file.path)
        let root = try converter.convert(result.value)
        for (k, v) in converter.blobs { blobs[k] = v }
        let found = try TensorTreeWalker(path: file.path).extract(root, key: options.key)
        var bundle = try PyTorchReader.assemble(found, table: table, format: "pytorch-pickle", pickle: result, path: file.path)
        bundle.warnings.append("plain Python pickle (pickle.dump, not torch.save): read inertly\(converter.count > 0 ? ", \(converter.count) numpy arrays" : "")")
        return bundle
    }

    /// One storage from the bytes `torch.storage._load_from_bytes` receives: a legacy torch.save image
    /// (magic, protocol 1001, sys_info, the storage's persistent id, its key list, then the element
    /// count and the raw little-endian elements).
    static func embeddedStorage(_ bytes: [UInt8], key: String, path: String) throws -> (PickleStorage, Storage) {
        try bytes.withUnsafeBytes { buf in
            let magic = try PickleDecoder.decode(buf, context: "embedded storage magic")
            guard case .bigInt(let m) = magic.value, m == Array(FileKind.legacyMagic.suffix(10)) else {
                throw WconvError.invalid("torch.storage._load_from_bytes holds \(bytes.count) bytes that are not a legacy torch.save image (zip-format storages inside plain pickles are not supported)", file: path)
            }
            let version = try PickleDecoder.decode(buf, offset: magic.endOffset, context: "embedded storage version")
            let sys = try PickleDecoder.decode(buf, offset: version.endOffset, context: "embedded storage sys_info")
            let inner = TorchStorageTable(path: path, byteSwap: false) { _ in Storage(zeroedByteCount: 0) }
            let obj = try PickleDecoder.decode(buf, offset: sys.endOffset, context: "embedded storage", persistentLoad: inner.persistentLoad)
            guard case .storage(let ps) = obj.value, ps.view == nil else {
                throw WconvError.invalid("torch.storage._load_from_bytes image holds a \(obj.value.kindName), not one storage", file: path)
            }
            let keys = try PickleDecoder.decode(buf, offset: obj.endOffset, context: "embedded storage keys")
            guard keys.value.sequenceItems?.count == 1 else { throw WconvError.invalid("embedded storage image lists \(keys.value.sequenceItems?.count ?? 0) storages, expected 1", file: path) }
            let pos = keys.endOffset
            guard pos + 8 <= buf.count else { throw WconvError.invalid("embedded storage image truncated at byte \(pos)", file: path) }
            let count = Int64(littleEndian: buf.loadUnaligned(fromByteOffset: pos, as: Int64.self))
            let (n, o) = Int(clamping: count).multipliedReportingOverflow(by: ps.elementSize)
            guard count == Int64(ps.declaredCount), !o, n <= buf.count - pos - 8 else {
                throw WconvError.invalid("embedded storage declares \(ps.declaredCount) × \(ps.elementSize) bytes but the image holds \(buf.count - pos - 8) after a count of \(count)", file: path)
            }
            let storage = Storage(copying: UnsafeRawBufferPointer(rebasing: buf[(pos + 8)..<(pos + 8 + n)]))
            return (PickleStorage(key: key, dtype: ps.dtype, dtypeName: ps.dtypeName, elementSize: ps.elementSize,
                                  declaredCount: ps.declaredCount, location: ps.location), storage)
        }
    }
}

/// Replaces numpy arrays in a decoded pickle by tensors (in place in dicts, lists and tuples).
struct NumpyArrays {
    let path: String
    private(set) var blobs: [String: Storage] = [:]
    private(set) var count = 0
    private var visited = Set<ObjectIdentifier>()

    init(path: String) { self.path = path }

    static let dtypes: [String: DType] = [
        "f8": .f64, "f4": .f32, "f2": .f16, "i8": .i64, "i4": .i32, "i2": .i16, "i1": .i8, "u1": .u8, "b1": .bool,
    ]

    mutating func convert(_ v: PickleValue, depth: Int = 0) throws -> PickleValue {
        guard depth < 256 else { throw WconvError.invalid("pickle nests deeper than 256 containers", file: path) }
        switch v {
        case .dict(let d):
            guard visited.insert(ObjectIdentifier(d)).inserted else { return v }
            for (i, item) in d.values.enumerated() { d.values[i] = try convert(item, depth: depth + 1) }
        case .list(let l):
            guard visited.insert(ObjectIdentifier(l)).inserted else { return v }
            for (i, item) in l.items.enumerated() { l.items[i] = try convert(item, depth: depth + 1) }
        case .tuple(let t):
            guard visited.insert(ObjectIdentifier(t)).inserted else { return v }
            for (i, item) in t.items.enumerated() { t.items[i] = try convert(item, depth: depth + 1) }
        case .object(let o):
            if let t = try array(o) { return .tensor(t) }
        default: break
        }
        return v
    }

    /// The tensor for an ndarray object, nil when `o` is not one (or holds Python objects).
    mutating func array(_ o: PickleObject) throws -> PickleTensor? {
        var shape: [Int], dtypeObj: PickleValue, fortran = false, data: PickleValue
        switch o.global.kind {
        case .numpyReconstruct:
            // _reconstruct(ndarray, (0,), b'b') then BUILD (version, shape, dtype, is_fortran, data).
            guard let st = o.state?.sequenceItems, st.count == 5 else { return nil }
            guard let s = st[1].sequenceItems?.compactMap(\.asInt), s.count == st[1].sequenceItems?.count else { return nil }
            (shape, dtypeObj, fortran, data) = (s, st[2], st[3].asInt == 1, st[4])
        case .numpyFromBuffer:
            // _frombuffer(buffer, dtype, shape, order)
            guard o.args.count == 4, let s = o.args[2].sequenceItems?.compactMap(\.asInt), s.count == o.args[2].sequenceItems?.count else { return nil }
            (shape, dtypeObj, fortran, data) = (s, o.args[1], o.args[3].asString == "F", o.args[0])
        default: return nil
        }
        guard case .object(let dt) = dtypeObj, dt.global.kind == .numpyDType, let code = dt.args.first?.asString else { return nil }
        if code == "O8" || code == "O4" { return nil }  // object arrays hold Python objects, not numbers
        guard let dtype = Self.dtypes[code] else {
            throw WconvError.invalid("numpy array of dtype '\(code)' is not supported (supported: \(Self.dtypes.keys.sorted().joined(separator: " ")))", file: path)
        }
        let bigEndian = dt.state?.sequenceItems.flatMap { $0.count > 1 ? $0[1].asString : nil } == ">"
        let raw: [UInt8]
        switch data {
        case .bytes(let b): raw = b
        case .string(let s): raw = s.unicodeScalars.map { UInt8(truncatingIfNeeded: $0.value) }  // Python 2 str (latin-1)
        default: throw WconvError.invalid("numpy array data is a \(data.kindName), expected bytes", file: path)
        }
        guard shape.allSatisfy({ $0 >= 0 }), let n = try? Tensor.checkedNumel(shape), n * dtype.byteSize == raw.count else {
            throw WconvError.invalid("numpy array of shape \(shape) and dtype '\(code)' holds \(raw.count) bytes", file: path)
        }
        var storage = raw.withUnsafeBytes { Storage(copying: $0) }
        if bigEndian && dtype.byteSize > 1 { storage = TorchStorageTable.swapped(storage, elementSize: dtype.byteSize) }
        let key = "numpy-\(count)"
        count += 1
        blobs[key] = storage
        var strides = [Int](repeating: 1, count: shape.count)
        let order = fortran ? Array(shape.indices) : Array(shape.indices.reversed())
        var step = 1
        for d in order { strides[d] = step; step *= max(shape[d], 1) }
        let ps = PickleStorage(key: key, dtype: dtype, dtypeName: "numpy \(code)", elementSize: dtype.byteSize, declaredCount: n, location: "cpu")
        return PickleTensor(storage: ps, dtype: dtype, dtypeName: dtype.rawValue, offset: 0, shape: shape, strides: strides, requiresGrad: false)
    }
}
