import CWconvONNX
import OrderedCollections
import WconvTensor

/// Turns an unpacked protobuf-c ModelProto into an `ONNXModel`. Every count and size coming from the
/// file is checked before use; tensors are views (raw_data taken over, external data mapped) where the
/// bytes allow and owned copies otherwise.
struct ONNXProtoDecoder {
    let path: String?
    let external: ONNXExternalData
    var warnings: [String] = []

    init(path: String?) {
        self.path = path
        self.external = ONNXExternalData(modelPath: path)
    }

    private func invalid(_ msg: String) -> WconvError { WconvError.invalid(msg, file: path) }

    mutating func model(_ owner: ONNXProtoMessage) throws -> ONNXModel {
        let m = owner.model.pointee
        guard m.has_ir_version != 0 else {
            throw invalid("ModelProto has no ir_version: not an ONNX model, or written without it (onnxruntime refuses such files too)")
        }
        guard let g = m.graph else { throw invalid("ModelProto has no graph (\(owner.model.pointee.n_opset_import) opset imports): not a complete ONNX model") }
        var model = ONNXModel()
        model.irVersion = Int(m.ir_version)
        model.opsetImports = onnxRepeated(m.opset_import, m.n_opset_import).compactMap { p in
            guard let p else { return nil }
            return ONNXOpsetImport(domain: onnxString(p.pointee.domain), version: p.pointee.has_version != 0 ? Int(p.pointee.version) : 1)
        }
        model.producerName = onnxString(m.producer_name)
        model.producerVersion = onnxString(m.producer_version)
        model.domain = onnxString(m.domain)
        model.modelVersion = m.has_model_version != 0 ? Int(m.model_version) : 0
        model.docString = onnxString(m.doc_string)
        for e in onnxRepeated(m.metadata_props, m.n_metadata_props) {
            guard let e else { continue }
            model.metadataProps[onnxString(e.pointee.key)] = onnxString(e.pointee.value)
        }
        model.graph = try graph(g, depth: 0)
        model.path = path
        if m.n_functions > 0 { warnings.append("model defines \(m.n_functions) local functions; their bodies are not imported") }
        if m.n_training_info > 0 { warnings.append("model carries \(m.n_training_info) training_info graphs; ignored") }
        model.warnings = warnings
        return model
    }

    mutating func graph(_ gp: UnsafeMutablePointer<Onnx__GraphProto>, depth: Int) throws -> ONNXGraph {
        let g = gp.pointee
        var out = ONNXGraph(name: onnxString(g.name), docString: onnxString(g.doc_string))
        for tp in onnxRepeated(g.initializer, g.n_initializer) {
            guard let tp else { continue }
            let name = onnxString(tp.pointee.name)
            guard out.initializers[name] == nil else {
                throw invalid("initializer '\(name)' is defined twice")
            }
            switch try tensor(tp, what: "initializer '\(name)'") {
            case .tensor(let t):
                out.initializers[name] = t
                if tp.pointee.has_data_location != 0 && tp.pointee.data_location.rawValue == 1 {
                    out.externalLocations[name] = externalLocation(tp) ?? ""
                }
            case .skipped(let s):
                out.skippedInitializers.append(s)
                warnings.append("initializer '\(name)': \(s.reason); skipped")
            }
        }
        if g.n_sparse_initializer > 0 {
            warnings.append("graph has \(g.n_sparse_initializer) sparse initializers; not imported")
        }
        out.inputs = onnxRepeated(g.input, g.n_input).compactMap { $0.map(valueInfo) }
        out.outputs = onnxRepeated(g.output, g.n_output).compactMap { $0.map(valueInfo) }
        out.valueInfo = onnxRepeated(g.value_info, g.n_value_info).compactMap { $0.map(valueInfo) }
        out.nodes.reserveCapacity(g.n_node)
        for np in onnxRepeated(g.node, g.n_node) {
            guard let np else { continue }
            out.nodes.append(try node(np, depth: depth))
        }
        return out
    }

    private func externalLocation(_ tp: UnsafeMutablePointer<Onnx__TensorProto>) -> String? {
        for e in onnxRepeated(tp.pointee.external_data, tp.pointee.n_external_data) where onnxString(e?.pointee.key) == "location" {
            return onnxString(e?.pointee.value)
        }
        return nil
    }

    mutating func node(_ np: UnsafeMutablePointer<Onnx__NodeProto>, depth: Int) throws -> ONNXNode {
        let n = np.pointee
        var node = ONNXNode(name: onnxString(n.name), opType: onnxString(n.op_type), domain: onnxString(n.domain),
                            inputs: onnxRepeated(n.input, n.n_input).map { onnxString($0) },
                            outputs: onnxRepeated(n.output, n.n_output).map { onnxString($0) })
        for ap in onnxRepeated(n.attribute, n.n_attribute) {
            guard let ap else { continue }
            let name = onnxString(ap.pointee.name)
            node.attributes[name] = try attribute(ap, node: node, depth: depth)
        }
        return node
    }

    mutating func attribute(_ ap: UnsafeMutablePointer<Onnx__AttributeProto>, node: ONNXNode, depth: Int) throws -> ONNXAttribute {
        let a = ap.pointee
        let what = "attribute '\(onnxString(a.name))' of node '\(node.name)' (\(node.opType))"
        // IR < 2 files may omit `type`; infer it from the field that is set.
        var type = a.has_type != 0 ? Int(a.type.rawValue) : 0
        if type == 0 {
            if a.has_f != 0 { type = 1 } else if a.has_i != 0 { type = 2 } else if a.has_s != 0 { type = 3 } else if a.t != nil { type = 4 }
            else if a.g != nil { type = 5 } else if a.n_floats > 0 { type = 6 } else if a.n_ints > 0 { type = 7 }
            else if a.n_strings > 0 { type = 8 } else if a.n_tensors > 0 { type = 9 } else if a.n_graphs > 0 { type = 10 }
        }
        switch type {
        case 1: return .float(a.f)
        case 2: return .int(Int(a.i))
        case 3: return .string(bytesString(a.s))
        case 4:
            guard let t = a.t else { throw invalid("\(what) is a TENSOR without a tensor") }
            switch try tensor(t, what: what) {
            case .tensor(let v): return .tensor(v)
            case .skipped(let s): warnings.append("\(what): \(s.reason)"); return .unsupported(type: 4)
            }
        case 5:
            guard let g = a.g else { throw invalid("\(what) is a GRAPH without a graph") }
            return .graph(try graph(g, depth: depth + 1))
        case 6: return .floats(Array(onnxRepeated(a.floats, a.n_floats)))
        case 7: return .ints(onnxRepeated(a.ints, a.n_ints).map { Int($0) })
        case 8: return .strings(onnxRepeated(a.strings, a.n_strings).map(bytesString))
        case 9:
            var ts: [Tensor] = []
            for t in onnxRepeated(a.tensors, a.n_tensors) {
                guard let t, case .tensor(let v) = try tensor(t, what: what) else { return .unsupported(type: 9) }
                ts.append(v)
            }
            return .tensors(ts)
        case 10:
            var gs: [ONNXGraph] = []
            for g in onnxRepeated(a.graphs, a.n_graphs) {
                guard let g else { continue }
                gs.append(try graph(g, depth: depth + 1))
            }
            return .graphs(gs)
        default:
            return .unsupported(type: type)
        }
    }

    private func bytesString(_ b: ProtobufCBinaryData) -> String {
        guard let d = b.data, b.len > 0 else { return "" }
        return String(decoding: UnsafeBufferPointer(start: d, count: b.len), as: UTF8.self)
    }

    func valueInfo(_ vp: UnsafeMutablePointer<Onnx__ValueInfoProto>) -> ONNXValueInfo {
        var info = ONNXValueInfo(name: onnxString(vp.pointee.name), elemType: 0, shape: nil)
        guard let tp = vp.pointee.type, tp.pointee.value_case == ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE,
              let tt = tp.pointee.tensor_type else { return info }
        info.elemType = tt.pointee.has_elem_type != 0 ? Int(tt.pointee.elem_type) : 0
        if let sp = tt.pointee.shape {
            info.shape = onnxRepeated(sp.pointee.dim, sp.pointee.n_dim).map { d -> ONNXDim in
                guard let d else { return .unknown }
                switch d.pointee.value_case {
                case ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE: return .value(Int(d.pointee.dim_value))
                case ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_PARAM: return .param(onnxString(d.pointee.dim_param))
                default: return .unknown
                }
            }
        }
        return info
    }

    enum Decoded {
        case tensor(Tensor)
        case skipped(ONNXSkippedTensor)
    }

    /// Decodes one TensorProto: raw_data (taken over from protobuf-c), the typed fields, or external data.
    mutating func tensor(_ tp: UnsafeMutablePointer<Onnx__TensorProto>, what: String) throws -> Decoded {
        let name = onnxString(tp.pointee.name)
        let code = tp.pointee.has_data_type != 0 ? Int(tp.pointee.data_type) : 0
        var shape: [Int] = []
        for d in onnxRepeated(tp.pointee.dims, tp.pointee.n_dims) {
            guard d >= 0, d <= Int64(Int.max) else { throw invalid("\(what): negative dimension \(d)") }
            shape.append(Int(d))
        }
        // Strides multiply the non-zero dims, so an empty tensor with huge other dims must be refused too.
        guard let numel = try? Tensor.checkedNumel(shape), (try? Tensor.checkedNumel(shape.map { max($0, 1) })) != nil else {
            throw invalid("\(what): shape \(shape) overflows")
        }
        guard let dtype = ONNXDataType.dtype(code) else {
            return .skipped(ONNXSkippedTensor(name: name, dataType: code, reason: "element type \(ONNXDataType.name(code)) is not supported by wconv's tensor layer"))
        }
        guard tp.pointee.segment == nil else { throw invalid("\(what): segmented (chunked) tensors are not supported") }
        let (bytes, o) = numel.multipliedReportingOverflow(by: dtype.byteSize)
        guard !o else { throw invalid("\(what): shape \(shape) of \(dtype.rawValue) overflows") }

        if tp.pointee.has_data_location != 0 && tp.pointee.data_location.rawValue == 1 {
            var location: String?, offset = 0, length: Int?
            for e in onnxRepeated(tp.pointee.external_data, tp.pointee.n_external_data) {
                guard let e else { continue }
                let key = onnxString(e.pointee.key), value = onnxString(e.pointee.value)
                switch key {
                case "location": location = value
                case "offset":
                    guard let v = Int(value), v >= 0 else { throw invalid("\(what): external data offset '\(value)' is not a non-negative integer") }
                    offset = v
                case "length":
                    guard let v = Int(value), v >= 0 else { throw invalid("\(what): external data length '\(value)' is not a non-negative integer") }
                    length = v
                case "checksum", "basepath": break
                default: warnings.append("\(what): unknown external data key '\(key)' ignored")
                }
            }
            guard let location else { throw invalid("\(what): external data without a location") }
            let storage = try external.storage(location: location, offset: offset, length: length, expected: bytes, dtype: dtype, tensor: name.isEmpty ? what : name)
            return .tensor(try Tensor(dtype: dtype, shape: shape, storage: storage))
        }

        let raw = tp.pointee.raw_data
        if tp.pointee.has_raw_data != 0 && (raw.len > 0 || numel == 0) {
            guard raw.len == bytes else {
                throw invalid("\(what): raw_data has \(raw.len) bytes but shape \(shape) of \(dtype.rawValue) needs \(bytes)")
            }
            guard let data = raw.data, raw.len > 0 else { return .tensor(Tensor(zeros: shape, dtype: dtype)) }
            // Take the buffer protobuf-c allocated (malloc, so aligned for every dtype) instead of copying it.
            tp.pointee.raw_data.data = nil
            tp.pointee.raw_data.len = 0
            let box = MallocBytes(UnsafeMutableRawPointer(data))
            return .tensor(try Tensor(dtype: dtype, shape: shape, storage: Storage(bytes: UnsafeRawPointer(data), count: bytes, owner: box)))
        }
        if numel == 0 { return .tensor(Tensor(zeros: shape, dtype: dtype)) }
        return .tensor(try typedFields(tp, dtype: dtype, shape: shape, numel: numel, what: what))
    }

    /// float_data / int32_data / int64_data / double_data, converted to the dtype's little-endian bytes.
    private func typedFields(_ tp: UnsafeMutablePointer<Onnx__TensorProto>, dtype: DType, shape: [Int], numel: Int, what: String) throws -> Tensor {
        let t = tp.pointee
        func count(_ n: Int, _ field: String) throws {
            guard n == numel else {
                throw invalid("\(what): \(field) holds \(n) values but shape \(shape) needs \(numel)\(n == 0 ? " (no data in raw_data or the typed fields)" : "")")
            }
        }
        // The element count is checked against the field before anything is allocated, so dims cannot
        // make us allocate more than the file holds; the copies below rely on it.
        switch dtype {
        case .f32: try count(t.n_float_data, "float_data")
        case .f64: try count(t.n_double_data, "double_data")
        case .i64: try count(t.n_int64_data, "int64_data")
        default: try count(t.n_int32_data, "int32_data")
        }
        let storage = Storage(zeroedByteCount: numel * dtype.byteSize)
        let dst = storage.mutableBytes!
        switch dtype {
        case .f32: dst.copyMemory(from: t.float_data, byteCount: numel * 4)
        case .f64: dst.copyMemory(from: t.double_data, byteCount: numel * 8)
        case .i64: dst.copyMemory(from: t.int64_data, byteCount: numel * 8)
        case .i32: dst.copyMemory(from: t.int32_data, byteCount: numel * 4)
        case .i16, .f16, .bf16:
            // int16 values and float16/bfloat16 bit patterns sit in the low 16 bits of int32_data.
            let src = t.int32_data!, out = dst.assumingMemoryBound(to: UInt16.self)
            for i in 0..<numel { out[i] = UInt16(truncatingIfNeeded: src[i]) }
        case .i8, .u8, .f8e4m3, .f8e5m2:
            let src = t.int32_data!, out = dst.assumingMemoryBound(to: UInt8.self)
            for i in 0..<numel { out[i] = UInt8(truncatingIfNeeded: src[i]) }
        case .bool:
            let src = t.int32_data!, out = dst.assumingMemoryBound(to: UInt8.self)
            for i in 0..<numel { out[i] = src[i] != 0 ? 1 : 0 }
        }
        return try Tensor(dtype: dtype, shape: shape, storage: storage)
    }
}
