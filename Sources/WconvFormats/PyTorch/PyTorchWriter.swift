import WconvTensor

/// Writes `.pth` files in the zip format of `torch.save` (formats doc §1.1–1.3).
public enum PyTorchWriter {
    /// Writes the zip format torch.load(f, weights_only=True) accepts (OrderedDict state dict of tensors),
    /// 64-byte aligned records, atomically (use WconvTensor's AtomicFileWriter). Tensors sharing a Storage
    /// object are written as one storage (tied stays tied). Non-contiguous tensors are written contiguous.
    ///
    /// Sharing details: tensors that are the same view of one storage are written as one record and
    /// all reference it. Different views of one storage (e.g. a weight and its transpose) are written as
    /// the whole storage once with each view's offset and strides, as torch itself does.
    public static func write(_ bundle: TensorBundle, to path: String) throws {
        let plan = try plan(bundle)
        try AtomicFileWriter.write(to: path) { out in
            let zip = ZipWriter(output: out, alignment: 64)
            let prefix = archivePrefix(path)
            try zip.addStored(name: prefix + "data.pkl", data: plan.pickle)
            try zip.addStored(name: prefix + ".format_version", string: "1")
            try zip.addStored(name: prefix + ".storage_alignment", string: "64")
            try zip.addStored(name: prefix + "byteorder", string: "little")
            for (i, rec) in plan.records.enumerated() {
                try rec.write { try zip.addStored(name: prefix + "data/\(i)", bytes: $0) }
            }
            try zip.addStored(name: prefix + "version", string: "3\n")
            var id = ""
            for _ in 0..<40 { id.append(Character(Unicode.Scalar(UInt8.random(in: 48...57)))) }
            try zip.addStored(name: prefix + ".data/serialization_id", string: id)
            try zip.finish()
        }
    }

    /// `a.b.pth` → `a.b/` like torch (basename minus last extension); `archive/` when nothing is left.
    static func archivePrefix(_ path: String) -> String {
        let base = path.split(separator: "/").last.map(String.init) ?? path
        var stem = base
        if let dot = base.lastIndex(of: "."), dot != base.startIndex { stem = String(base[..<dot]) }
        let clean = String(stem.map { $0.isLetter || $0.isNumber || $0 == "_" || $0 == "-" || $0 == "." ? $0 : "_" })
        return (clean.isEmpty ? "archive" : clean) + "/"
    }

    /// One record: a tensor's contiguous bytes or a whole shared storage.
    struct Record {
        enum Source { case tensor(Tensor), storage(Storage, byteCount: Int) }
        var source: Source
        func write(_ body: (UnsafeRawBufferPointer) throws -> Void) throws {
            switch source {
            case .tensor(let t): try t.withContiguousBytes(body)
            case .storage(let s, let n): try body(UnsafeRawBufferPointer(start: s.bytes, count: n))
            }
        }
    }

    struct Plan { var pickle: [UInt8]; var records: [Record] }

    static func plan(_ bundle: TensorBundle) throws -> Plan {
        // Group by storage object to decide how each tensor is stored.
        var groups: [ObjectIdentifier: [String]] = [:]
        for (name, t) in bundle.tensors { groups[ObjectIdentifier(t.storage), default: []].append(name) }
        struct Placement { var key: Int; var offset: Int; var strides: [Int] }
        var placement: [String: Placement] = [:]
        var records: [Record] = []
        var viewRecord: [String: Int] = [:]   // identical-view sharing: "storage|offset|shape|strides|dtype" → key
        for (name, t) in bundle.tensors {
            if placement[name] != nil { continue }
            let members = groups[ObjectIdentifier(t.storage)] ?? [name]
            let sameDType = members.allSatisfy { bundle.tensors[$0]!.dtype == t.dtype }
            let distinctViews = Set(members.map { n -> String in let x = bundle.tensors[n]!; return "\(x.offset)|\(x.shape)|\(x.strides)" })
            if members.count > 1, sameDType, distinctViews.count > 1, t.storage.byteCount % t.dtype.byteSize == 0 {
                // Different views of one storage: write it whole once, keep each view's geometry.
                let key = records.count
                records.append(Record(source: .storage(t.storage, byteCount: t.storage.byteCount)))
                for m in members {
                    let x = bundle.tensors[m]!
                    placement[m] = Placement(key: key, offset: x.offset, strides: x.strides)
                }
                continue
            }
            let vk = "\(ObjectIdentifier(t.storage).hashValue)|\(t.offset)|\(t.shape)|\(t.strides)|\(t.dtype)"
            if let key = viewRecord[vk] {
                placement[name] = Placement(key: key, offset: 0, strides: Tensor.contiguousStrides(t.shape))
                continue
            }
            let key = records.count
            records.append(Record(source: .tensor(t)))
            viewRecord[vk] = key
            placement[name] = Placement(key: key, offset: 0, strides: Tensor.contiguousStrides(t.shape))
        }
        // Byte length per record (typed storages then count elements, untyped ones bytes).
        var recordBytes: [Int: Int] = [:]
        for (name, _) in bundle.tensors {
            let p = placement[name]!
            switch records[p.key].source {
            case .tensor(let x): recordBytes[p.key] = x.byteCount
            case .storage(_, let n): recordBytes[p.key] = n
            }
        }

        var enc = PickleEncoder()
        enc.global("collections", "OrderedDict")
        enc.op(.emptyTuple); enc.op(.reduce)
        let names = Array(bundle.tensors.keys)
        var i = 0
        while i < names.count {
            enc.mark()
            for name in names[i..<min(i + 1000, names.count)] {
                let t = bundle.tensors[name]!
                let p = placement[name]!
                enc.string(name)
                let legacy = storageClass(t.dtype)
                enc.global("torch._utils", legacy != nil ? "_rebuild_tensor_v2" : "_rebuild_tensor_v3")
                enc.mark()
                // Persistent id ('storage', StorageClass, key, 'cpu', numel)
                enc.mark()
                enc.string("storage")
                if let cls = legacy { enc.global("torch", cls) } else { enc.global("torch.storage", "UntypedStorage") }
                enc.string(String(p.key))
                enc.string("cpu")
                let bytes = recordBytes[p.key]!
                enc.int(legacy != nil ? bytes / t.dtype.byteSize : bytes)
                enc.op(.tuple)
                enc.op(.binpersid)
                enc.int(p.offset)
                enc.intTuple(t.shape)
                enc.intTuple(p.strides)
                enc.bool(false)
                enc.global("collections", "OrderedDict")
                enc.op(.emptyTuple); enc.op(.reduce)
                if legacy == nil { enc.global("torch", t.dtype.torchName) }
                enc.op(.tuple)
                enc.op(.reduce)
            }
            enc.op(.setitems)
            i += 1000
        }
        enc.stop()
        return Plan(pickle: enc.bytes, records: records)
    }

    /// Legacy typed-storage class for classic dtypes; nil for dtypes saved as UntypedStorage (float8).
    static func storageClass(_ d: DType) -> String? {
        switch d {
        case .f64: return "DoubleStorage"
        case .f32: return "FloatStorage"
        case .f16: return "HalfStorage"
        case .bf16: return "BFloat16Storage"
        case .i64: return "LongStorage"
        case .i32: return "IntStorage"
        case .i16: return "ShortStorage"
        case .i8: return "CharStorage"
        case .u8: return "ByteStorage"
        case .bool: return "BoolStorage"
        case .f8e4m3, .f8e5m2: return nil
        }
    }
}
