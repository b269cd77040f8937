import WconvTensor

/// Turns persistent ids into `PickleStorage`s and `PickleStorage`s into bytes, caching by key so
/// tensors that share a storage (tied weights, views) share one `Storage` object.
final class TorchStorageTable {
    let path: String
    /// Persistent-id objects by key (one per key, as torch's loader keeps them).
    private var pickled: [String: PickleStorage] = [:]
    /// Materialised bytes by key and the dtype first used to read them.
    private var loaded: [String: (Storage, DType)] = [:]
    /// Where the raw bytes of a key live.
    let fetch: (PickleStorage) throws -> Storage
    /// Swap element bytes after fetching (file written on a big-endian machine).
    let byteSwap: Bool

    init(path: String, byteSwap: Bool, fetch: @escaping (PickleStorage) throws -> Storage) {
        self.path = path
        self.byteSwap = byteSwap
        self.fetch = fetch
    }

    /// The persistent-load callback: `('storage', StorageClass, key, location, numel[, view_metadata])`.
    func persistentLoad(_ pid: PickleValue) throws -> PickleValue {
        // Legacy full-module pickles reference module classes as ('module', cls, source_file, source).
        if let items = pid.sequenceItems, items.count >= 2, items[0].asString == "module", case .global = items[1] {
            return items[1]
        }
        guard let items = pid.sequenceItems, items.count >= 5, items[0].asString == "storage" else {
            throw WconvError.invalid("persistent id is a \(pid.kindName), expected ('storage', type, key, location, size)")
        }
        guard case .global(let g) = items[1] else {
            if case .object(let o) = items[1], o.isCallRecord {
                throw WconvError(.unsafe, "storage type comes from calling \(o.global.qualifiedName), which is not allow-listed")
            }
            throw WconvError.invalid("persistent id names a \(items[1].kindName) as storage type")
        }
        let key: String
        switch items[2] {
        case .string(let s): key = s
        case .int(let i): key = String(i)
        default: throw WconvError.invalid("storage key is a \(items[2].kindName)")
        }
        guard let count = items[4].asInt, count >= 0 else {
            throw WconvError.invalid("storage '\(key)' has a size that is not a non-negative int")
        }
        let location = items[3].asString ?? "cpu"
        var view: (key: String, offset: Int, count: Int)?
        if items.count >= 6, let v = items[5].sequenceItems {
            guard v.count == 3, let vo = v[1].asInt, let vn = v[2].asInt, vo >= 0, vn >= 0 else {
                throw WconvError.invalid("storage '\(key)' has malformed view metadata")
            }
            let vk: String
            switch v[0] { case .string(let s): vk = s; case .int(let i): vk = String(i); default: throw WconvError.invalid("storage view key is a \(v[0].kindName)") }
            view = (vk, vo, vn)
        }
        let ps: PickleStorage
        switch g.kind {
        case .typedStorage(let dtype, let name, let es):
            ps = PickleStorage(key: key, dtype: dtype, dtypeName: name, elementSize: es, declaredCount: count, location: location, view: view)
        case .untypedStorage:
            ps = PickleStorage(key: key, dtype: nil, dtypeName: "untyped", elementSize: 1, declaredCount: count, location: location, view: view)
        default:
            throw WconvError.invalid("persistent id names \(g.qualifiedName), which is not a torch storage class")
        }
        if let old = pickled[key] {
            guard old.elementSize == ps.elementSize, old.declaredCount == ps.declaredCount else {
                throw WconvError.invalid("storage '\(key)' is declared twice with different types or sizes (\(old.dtypeName)×\(old.declaredCount) vs \(ps.dtypeName)×\(ps.declaredCount))")
            }
            if view == nil { return .storage(old) }
        } else {
            pickled[key] = ps
        }
        return .storage(ps)
    }

    /// Storage types seen per key (legacy files need them to step through the data section).
    var declaredStorages: [String: PickleStorage] { pickled }

    /// The bytes of a storage for a tensor of `dtype`.
    func storage(for ps: PickleStorage, dtype: DType, tensorName: String) throws -> Storage {
        let cacheKey = ps.view.map { "\(ps.key)#view:\($0.key)" } ?? ps.key
        if let (s, d) = loaded[cacheKey] {
            guard d == dtype else {
                throw WconvError.invalid("tensor '\(tensorName)' reads storage '\(ps.key)' as \(dtype.rawValue) but another tensor reads it as \(d.rawValue); torch never writes such files", file: path)
            }
            return s
        }
        var raw = try fetch(ps)
        if let v = ps.view {
            let (start, o1) = v.offset.multipliedReportingOverflow(by: ps.elementSize)
            let (len, o2) = v.count.multipliedReportingOverflow(by: ps.elementSize)
            guard !o1, !o2, start <= raw.byteCount, len <= raw.byteCount - start else {
                throw WconvError.invalid("storage view '\(v.key)' (\(v.count) elements at \(v.offset)) lies outside storage '\(ps.key)' (\(raw.byteCount) bytes)", file: path)
            }
            raw = Storage(bytes: raw.bytes.advanced(by: start), count: len, owner: raw)
        }
        let es = dtype.byteSize
        if byteSwap && es > 1 {
            raw = Self.swapped(raw, elementSize: es)
        } else if Int(bitPattern: raw.bytes) % es != 0 {
            // Keep hot loops on aligned memory: copy misaligned records (never happens for torch.save output).
            raw = Storage(copying: raw.buffer)
        }
        loaded[cacheKey] = (raw, dtype)
        return raw
    }

    static func swapped(_ s: Storage, elementSize es: Int) -> Storage {
        let out = Storage(zeroedByteCount: s.byteCount)
        let n = s.byteCount / es
        let src = s.bytes, dst = out.mutableBytes!
        switch es {
        case 2:
            for i in 0..<n { dst.storeBytes(of: src.loadUnaligned(fromByteOffset: i * 2, as: UInt16.self).byteSwapped, toByteOffset: i * 2, as: UInt16.self) }
        case 4:
            for i in 0..<n { dst.storeBytes(of: src.loadUnaligned(fromByteOffset: i * 4, as: UInt32.self).byteSwapped, toByteOffset: i * 4, as: UInt32.self) }
        case 8:
            for i in 0..<n { dst.storeBytes(of: src.loadUnaligned(fromByteOffset: i * 8, as: UInt64.self).byteSwapped, toByteOffset: i * 8, as: UInt64.self) }
        default:
            for i in 0..<n { for j in 0..<es { dst.storeBytes(of: src.load(fromByteOffset: i * es + j, as: UInt8.self), toByteOffset: i * es + es - 1 - j, as: UInt8.self) } }
        }
        return out
    }

    /// Largest ratio of logical tensor bytes to stored bytes (zero-stride expansion), above a small floor.
    static let maxExpansion = 1024
    static let expansionFloor = 16 << 20

    /// A wconv tensor for a pickled tensor: dtype checked, extent checked against the storage.
    func tensor(_ pt: PickleTensor, name: String) throws -> Tensor {
        guard let dtype = pt.dtype else {
            throw WconvError.invalid("tensor '\(name)' has dtype \(pt.dtypeName), which wconv does not support (supported: f64 f32 f16 bf16 i64 i32 i16 i8 u8 bool f8e4m3 f8e5m2)", file: path)
        }
        if pt.storage.dtype == nil, pt.storage.declaredCount % dtype.byteSize != 0 {
            throw WconvError.invalid("tensor '\(name)': untyped storage '\(pt.storage.key)' of \(pt.storage.declaredCount) bytes is not a whole number of \(dtype.rawValue) elements", file: path)
        }
        let storage = try self.storage(for: pt.storage, dtype: dtype, tensorName: name)
        let t: Tensor
        do {
            t = try Tensor(dtype: dtype, shape: pt.shape, strides: pt.strides, offset: pt.offset, storage: storage)
        } catch let e as WconvError {
            throw WconvError.invalid("tensor '\(name)' (storage '\(pt.storage.key)'): \(e.message)", file: path)
        }
        // Zero strides let a few stored bytes describe an enormous tensor; anyone materialising it would
        // allocate far more than the file justifies. Real files expand small buffers only.
        let (cap, o) = storage.byteCount.multipliedReportingOverflow(by: Self.maxExpansion)
        let logical = pt.shape.reduce(dtype.byteSize) { $0.multipliedReportingOverflow(by: $1).overflow ? Int.max : $0 * $1 }
        if logical > max(Self.expansionFloor, o ? Int.max : cap) {
            throw WconvError.invalid("tensor '\(name)' expands \(storage.byteCount) stored bytes to \(logical) bytes (shape \(pt.shape), strides \(pt.strides)); refusing a tensor the file cannot justify", file: path)
        }
        return t
    }
}
