import OrderedCollections
import WconvTensor

/// Reads ONNX models (protobuf, protoc-c generated code for schemas/onnx.proto).
public enum ONNXReader {
    /// Every tensor of the model as a bundle: initializers in file order, then the outputs of `Constant`
    /// nodes, then `Identity` outputs that forward one of those (so `conv.weight = Identity(onnx::X)`
    /// is found under both names; the alias is recorded in `aliases`). Ops are not interpreted, so a model
    /// with unknown ops still imports its weights.
    public static func read(path: String) throws -> TensorBundle {
        bundle(try readModel(path: path))
    }

    /// The whole model as Swift values (graph, attributes, value infos, decoded initializers).
    /// External data is resolved relative to the model's folder.
    public static func readModel(path: String) throws -> ONNXModel {
        let file = try MappedFile(path: path)
        do {
            // The mapping is released when this returns: tensors own protobuf-c's raw_data copies or
            // views of external-data mappings, never the model file's pages.
            return try readModel(bytes: file.buffer, path: path)
        } catch let e as WconvError {
            throw e.inFile(path)
        }
    }

    /// Parses a serialized ModelProto from memory. `path` names the file for messages and for resolving
    /// external data; with nil, external data is refused.
    public static func readModel(bytes: UnsafeRawBufferPointer, path: String?) throws -> ONNXModel {
        let message = try ONNXProtoMessage(bytes: bytes, path: path)
        var decoder = ONNXProtoDecoder(path: path)
        return try decoder.model(message)
    }

    /// True when the first bytes of a file look like a serialized ONNX ModelProto (ir_version first,
    /// then ModelProto fields with their proper wire types). ONNX files carry no magic number.
    public static func sniff(_ head: UnsafeRawBufferPointer) -> Bool {
        ONNXWireScan.sniff(head)
    }

    /// The tensors of a model (see `read(path:)`).
    public static func bundle(_ model: ONNXModel) -> TensorBundle {
        var b = TensorBundle(format: "onnx", tensors: model.graph.initializers)
        var constants = 0
        for n in model.graph.nodes where n.opType == "Constant" && ONNXOpsetImport.normalized(n.domain).isEmpty {
            guard let out = n.outputs.first, !out.isEmpty, b.tensors[out] == nil, let t = constantValue(n) else { continue }
            b.tensors[out] = t
            constants += 1
        }
        for n in model.graph.nodes where n.opType == "Identity" && n.inputs.count == 1 && n.outputs.count == 1 {
            let src = n.inputs[0], out = n.outputs[0]
            guard let t = b.tensors[src], b.tensors[out] == nil, !out.isEmpty else { continue }
            b.tensors[out] = t
            b.aliases[out] = b.aliases[src] ?? src
        }
        b.metadata = Dictionary(uniqueKeysWithValues: model.metadataProps.map { ($0.key, $0.value) })
        b.extras["ir_version"] = String(model.irVersion)
        b.extras["opset"] = model.opsetImports.map { "\($0.domain.isEmpty ? "ai.onnx" : $0.domain) \($0.version)" }.joined(separator: ", ")
        if !model.producerName.isEmpty { b.extras["producer"] = model.producerName + (model.producerVersion.isEmpty ? "" : " " + model.producerVersion) }
        b.extras["nodes"] = "\(model.graph.nodes.count) (" + model.opHistogram.map { "\($0.key) \($0.value)" }.joined(separator: ", ") + ")"
        b.extras["inputs"] = model.graph.realInputs.map(\.description).joined(separator: ", ")
        b.extras["outputs"] = model.graph.outputs.map(\.description).joined(separator: ", ")
        if constants > 0 { b.extras["constants"] = "\(constants) tensors from Constant nodes" }
        if !model.graph.externalLocations.isEmpty {
            b.extras["external_data"] = Set(model.graph.externalLocations.values).sorted().joined(separator: ", ")
        }
        b.warnings = model.warnings
        return b
    }

    /// The tensor a `Constant` node produces, from whichever attribute holds it (`value`, `value_float`,
    /// `value_floats`, `value_int`, `value_ints`); nil for strings and sparse values.
    public static func constantValue(_ n: ONNXNode) -> Tensor? {
        if let t = n.tensor("value") { return t }
        switch n.attributes["value_float"] {
        case .float(let v)?: return Tensor(shape: [], floats: [v])
        default: break
        }
        if let v = n.floats("value_floats") { return Tensor(shape: [v.count], floats: v) }
        if let v = n.int("value_int") { return int64Tensor([v], shape: []) }
        if let v = n.ints("value_ints") { return int64Tensor(v, shape: [v.count]) }
        return nil
    }

    /// An owned int64 tensor.
    public static func int64Tensor(_ v: [Int], shape: [Int]) -> Tensor {
        let s = Storage(array: v.map { Int64($0) })
        return try! Tensor(dtype: .i64, shape: shape, storage: s)  // sized from the same array: always fits
    }
}
