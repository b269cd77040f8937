import WconvTensor

/// REDUCE / NEWOBJ interpretation: the only place the decoder gives meaning to a callable.
extension PickleMachine {
    func reduce(_ callable: PickleValue, _ argsValue: PickleValue) throws -> PickleValue {
        let g: PickleGlobal
        switch callable {
        case .global(let x): g = x
        case .object(let o):
            // Calling the result of an unknown call: still inert, recorded under the original name.
            let stub = PickleObject(global: o.global, args: argsValue.sequenceItems ?? [argsValue], isCallRecord: true)
            return .object(try track(stub))
        default:
            throw fail("REDUCE calls a \(callable.kindName), which is not callable")
        }
        guard let args = argsValue.sequenceItems else {
            throw fail("REDUCE of \(g.qualifiedName) with a \(argsValue.kindName) instead of an argument tuple")
        }
        switch g.kind {
        case .rebuildTensor:
            guard args.count >= 4 else { throw badArgs(g, args, "4") }
            return .tensor(try rebuildTensor(g, storage: args[0], offset: args[1], size: args[2], stride: args[3],
                                             requiresGrad: .bool(false), dtype: nil, metadata: nil))
        case .rebuildTensorV2:
            guard args.count >= 6 else { throw badArgs(g, args, "6 or 7") }
            return .tensor(try rebuildTensor(g, storage: args[0], offset: args[1], size: args[2], stride: args[3],
                                             requiresGrad: args[4], dtype: nil, metadata: args.count > 6 ? args[6] : nil))
        case .rebuildTensorV3:
            guard args.count >= 7 else { throw badArgs(g, args, "7 or 8") }
            return .tensor(try rebuildTensor(g, storage: args[0], offset: args[1], size: args[2], stride: args[3],
                                             requiresGrad: args[4], dtype: args[6], metadata: args.count > 7 ? args[7] : nil))
        case .rebuildParameter, .rebuildParameterWithState:
            guard args.count >= 3 else { throw badArgs(g, args, "3 or 4") }
            let t = try tensorArg(g, args[0], "data")
            t.isParameter = true
            return .tensor(t)
        case .rebuildFromTypeV2:
            guard args.count >= 3 else { throw badArgs(g, args, "4") }
            let inner = try reduce(args[0], args[2])
            let t = try tensorArg(g, inner, "func(*args)")
            if case .global(let cls) = args[1] {
                switch cls.kind {
                case .tensorClass: break
                case .parameterClass: t.isParameter = true
                default: t.subclass = cls.qualifiedName
                }
            }
            return .tensor(t)
        case .unsupportedTensorRebuild:
            return .object(try track(PickleObject(global: g, args: args, isCallRecord: true)))
        case .orderedDict:
            let d = try track(PickleDict(typeName: g.qualifiedName))
            // OrderedDict([(k, v), …]) or dict({...}); defaultdict(factory) and Counter() take no pairs.
            if g.name == "OrderedDict" || g.name == "dict", let first = args.first {
                switch first {
                case .dict(let src): for (k, v) in zip(src.keys, src.values) { d.set(k, v) }
                default:
                    for pair in first.sequenceItems ?? [] {
                        if let kv = pair.sequenceItems, kv.count == 2 { d.set(kv[0], kv[1]) }
                    }
                }
            }
            return .dict(d)
        case .set:
            return .set(try track(PickleList(args.first?.sequenceItems ?? [])))
        case .torchSize:
            return try tuple(args.first?.sequenceItems ?? [])
        case .codecsEncode:
            // bytes objects in protocol 2: _codecs.encode(latin-1 text, 'latin1')
            guard let text = args.first?.asString else { throw badArgs(g, args, "(str, encoding)") }
            let enc = args.count > 1 ? (args[1].asString ?? "") : "utf-8"
            switch enc.lowercased() {
            case "latin1", "latin-1", "iso-8859-1":
                var out: [UInt8] = []
                out.reserveCapacity(text.unicodeScalars.count)
                for u in text.unicodeScalars {
                    guard u.value < 256 else { throw fail("_codecs.encode: character U+\(String(u.value, radix: 16)) is not latin-1") }
                    out.append(UInt8(u.value))
                }
                return .bytes(out)
            case "utf-8", "utf8": return .bytes(Array(text.utf8))
            default: throw fail("_codecs.encode with encoding '\(enc.prefix(40))' is not supported")
            }
        case .bytearray:
            if case .bytes(let b)? = args.first { return .bytes(b) }
            if let items = args.first?.sequenceItems { return .bytes(items.map { UInt8(truncatingIfNeeded: $0.asInt ?? 0) }) }
            return .bytes([])
        case .numpyScalar:
            return try numpyScalar(g, args)
        case .jitPassThrough:
            return args.first ?? .none
        case .storageFromBytes:
            guard let hook = storageFromBytes, case .bytes(let b)? = args.first else {
                return .object(try track(PickleObject(global: g, args: args, isCallRecord: true)))
            }
            return try hook(b)
        case .numpyDType, .numpyReconstruct, .numpyFromBuffer, .harmlessValue, .tensorClass, .parameterClass, .typedStorage,
             .untypedStorage, .torchDType, .copyregReconstructor:
            if g.kind == .copyregReconstructor, let cls = args.first {
                return try newObject(cls, try tuple([]))
            }
            if g.kind == .parameterClass, let first = args.first, case .tensor(let t) = first {
                t.isParameter = true
                return .tensor(t)
            }
            return .object(try track(PickleObject(global: g, args: args, isCallRecord: true)))
        case .unknown:
            return .object(try track(PickleObject(global: g, args: args, isCallRecord: true)))
        }
    }

    func newObject(_ cls: PickleValue, _ argsValue: PickleValue) throws -> PickleValue {
        guard case .global(let g) = cls else {
            if case .object(let o) = cls {
                return .object(try track(PickleObject(global: o.global, args: [], isCallRecord: false)))
            }
            throw fail("NEWOBJ of a \(cls.kindName), which is not a class")
        }
        let args = argsValue.sequenceItems ?? []
        switch g.kind {
        case .orderedDict: return .dict(try track(PickleDict(typeName: g.qualifiedName)))
        case .set: return .set(try track(PickleList(args.first?.sequenceItems ?? [])))
        case .parameterClass:
            // Parameter.__new__(Parameter, data, requires_grad)
            if let first = args.first, case .tensor(let t) = first { t.isParameter = true; return .tensor(t) }
            return .object(try track(PickleObject(global: g, args: args, isCallRecord: false)))
        default:
            return .object(try track(PickleObject(global: g, args: args, isCallRecord: false)))
        }
    }

    func badArgs(_ g: PickleGlobal, _ args: [PickleValue], _ expected: String) -> WconvError {
        fail("\(g.qualifiedName) called with \(args.count) arguments (expected \(expected))")
    }

    /// Refuses values produced by a call wconv did not interpret where a tensor depends on them.
    func checkNotCallRecord(_ g: PickleGlobal, _ v: PickleValue, _ what: String) throws {
        if case .object(let o) = v, o.isCallRecord {
            throw unsafe("the \(what) of \(g.name) comes from calling \(o.global.qualifiedName), which is not allow-listed")
        }
    }

    func tensorArg(_ g: PickleGlobal, _ v: PickleValue, _ what: String) throws -> PickleTensor {
        try checkNotCallRecord(g, v, what)
        guard case .tensor(let t) = v else {
            if case .object(let o) = v, o.global.kind == .unsupportedTensorRebuild {
                throw fail("tensor built by \(o.global.qualifiedName) (quantized, sparse, meta or subclass tensors) is not supported")
            }
            throw fail("\(g.name): \(what) is a \(v.kindName), expected a tensor")
        }
        return t
    }

    func intArg(_ g: PickleGlobal, _ v: PickleValue, _ what: String) throws -> Int {
        try checkNotCallRecord(g, v, what)
        guard let i = v.asInt else { throw fail("\(g.name): \(what) is a \(v.kindName), expected an int") }
        return i
    }

    func intsArg(_ g: PickleGlobal, _ v: PickleValue, _ what: String) throws -> [Int] {
        try checkNotCallRecord(g, v, what)
        guard let items = v.sequenceItems else { throw fail("\(g.name): \(what) is a \(v.kindName), expected a tuple of ints") }
        guard items.count <= 64 else { throw fail("\(g.name): \(what) has \(items.count) dimensions (max 64)") }
        return try items.map { try intArg(g, $0, what) }
    }

    func rebuildTensor(_ g: PickleGlobal, storage sv: PickleValue, offset ov: PickleValue, size zv: PickleValue, stride sv2: PickleValue,
                       requiresGrad: PickleValue, dtype dv: PickleValue?, metadata: PickleValue?) throws -> PickleTensor {
        try checkNotCallRecord(g, sv, "storage")
        guard case .storage(let storage) = sv else { throw fail("\(g.name): storage argument is a \(sv.kindName)") }
        let offset = try intArg(g, ov, "storage offset")
        let shape = try intsArg(g, zv, "size")
        let strides = try intsArg(g, sv2, "stride")
        guard shape.count == strides.count else {
            throw fail("\(g.name): size \(shape) and stride \(strides) have different lengths")
        }
        guard offset >= 0, shape.allSatisfy({ $0 >= 0 }), strides.allSatisfy({ $0 >= 0 }) else {
            throw fail("\(g.name): negative size, stride or offset (size \(shape), stride \(strides), offset \(offset))")
        }
        var dtype = storage.dtype
        var dtypeName = storage.dtypeName
        if let dv {
            try checkNotCallRecord(g, dv, "dtype")
            guard case .global(let dg) = dv, case .torchDType(let d, let name) = dg.kind else {
                throw fail("\(g.name): dtype argument is a \(dv.kindName), expected a torch dtype")
            }
            dtype = d
            dtypeName = name
        }
        if let metadata, case .dict(let md) = metadata {
            for (k, v) in zip(md.keys, md.values) {
                if let key = k.asString, key == "conj" || key == "neg", v.asInt == 1 {
                    throw fail("\(g.name): tensor has the lazy '\(key)' bit set; wconv does not apply conjugate/negative views — call .resolve_conj()/.resolve_neg() before saving")
                }
            }
        }
        return PickleTensor(storage: storage, dtype: dtype, dtypeName: dtypeName, offset: offset, shape: shape,
                            strides: strides, requiresGrad: requiresGrad.asInt == 1)
    }

    /// numpy.core.multiarray.scalar(dtype, raw bytes) → a number when the dtype is a plain little-endian one.
    func numpyScalar(_ g: PickleGlobal, _ args: [PickleValue]) throws -> PickleValue {
        guard args.count >= 2, case .object(let dt) = args[0], case .bytes(let raw) = args[1],
              let code = dt.args.first?.asString else {
            return .object(try track(PickleObject(global: g, args: args, isCallRecord: true)))
        }
        func load<T: FixedWidthInteger>(_: T.Type) -> Int? {
            guard raw.count == MemoryLayout<T>.size else { return nil }
            var v: T = 0
            for (i, b) in raw.enumerated() { v |= T(truncatingIfNeeded: b) << (8 * i) }
            return Int(exactly: v)
        }
        switch code {
        case "f8": if raw.count == 8 { return .float(Double(bitPattern: raw.withUnsafeBytes { UInt64(littleEndian: $0.loadUnaligned(as: UInt64.self)) })) }
        case "f4": if raw.count == 4 { return .float(Double(Float(bitPattern: raw.withUnsafeBytes { UInt32(littleEndian: $0.loadUnaligned(as: UInt32.self)) }))) }
        case "i8": if let v = load(Int64.self) { return .int(v) }
        case "i4": if let v = load(Int32.self) { return .int(v) }
        case "u1": if let v = load(UInt8.self) { return .int(v) }
        case "b1": if raw.count == 1 { return .bool(raw[0] != 0) }
        default: break
        }
        return .object(try track(PickleObject(global: g, args: args, isCallRecord: true)))
    }
}
