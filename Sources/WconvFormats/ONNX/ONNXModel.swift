import OrderedCollections
import WconvTensor

/// An ONNX model as the file states it, in Swift values: what `ONNXReader.readModel` returns, what the
/// graph builder consumes and what `ONNXWriter` writes. Tensors are decoded (zero-copy where possible);
/// nothing here interprets ops.
public struct ONNXModel: Sendable {
    public var irVersion: Int
    /// Operator sets in file order; the domain "" and "ai.onnx" are the same default domain.
    public var opsetImports: [ONNXOpsetImport]
    public var producerName: String
    public var producerVersion: String
    public var domain: String
    public var modelVersion: Int
    public var docString: String
    public var graph: ONNXGraph
    public var metadataProps: OrderedDictionary<String, String>
    /// The file this model was read from (external data resolves beside it); nil for built models.
    public var path: String?
    /// Things the reader accepted but wants the user to know (skipped tensors, unknown keys, …).
    public var warnings: [String]

    public init(irVersion: Int = 8, opsetImports: [ONNXOpsetImport] = [ONNXOpsetImport(domain: "", version: 17)],
                producerName: String = "", producerVersion: String = "", domain: String = "",
                modelVersion: Int = 0, docString: String = "", graph: ONNXGraph = ONNXGraph(),
                metadataProps: OrderedDictionary<String, String> = [:], path: String? = nil, warnings: [String] = []) {
        self.irVersion = irVersion
        self.opsetImports = opsetImports
        self.producerName = producerName
        self.producerVersion = producerVersion
        self.domain = domain
        self.modelVersion = modelVersion
        self.docString = docString
        self.graph = graph
        self.metadataProps = metadataProps
        self.path = path
        self.warnings = warnings
    }

    /// The imported version of an operator set (`""` or `"ai.onnx"` for the default domain).
    public func opset(domain: String = "") -> Int? {
        let d = ONNXOpsetImport.normalized(domain)
        return opsetImports.first { ONNXOpsetImport.normalized($0.domain) == d }?.version
    }

    /// The default-domain opset; ONNX says a model without one imports opset 1.
    public var defaultOpset: Int { opset() ?? 1 }

    /// How often each op type occurs (domain-qualified for non-default domains), in first-use order.
    /// Nested subgraphs (If/Loop bodies) are counted too.
    public var opHistogram: OrderedDictionary<String, Int> {
        var h: OrderedDictionary<String, Int> = [:]
        func visit(_ g: ONNXGraph) {
            for n in g.nodes {
                h[n.qualifiedOpType, default: 0] += 1
                for a in n.attributes.values {
                    switch a {
                    case .graph(let sub): visit(sub)
                    case .graphs(let subs): subs.forEach(visit)
                    default: break
                    }
                }
            }
        }
        visit(graph)
        return h
    }

    /// A few lines for `wconv inspect`: IR, opsets, producer, inputs/outputs, node and weight counts.
    public var summary: String {
        var lines: [String] = []
        let opsets = opsetImports.map { "\($0.domain.isEmpty ? "ai.onnx" : $0.domain) \($0.version)" }.joined(separator: ", ")
        lines.append("ONNX IR \(irVersion), opset \(opsets)")
        if !producerName.isEmpty { lines.append("producer \(producerName)\(producerVersion.isEmpty ? "" : " " + producerVersion)") }
        lines.append("inputs: " + graph.realInputs.map { $0.description }.joined(separator: ", "))
        lines.append("outputs: " + graph.outputs.map { $0.description }.joined(separator: ", "))
        let bytes = graph.initializers.values.reduce(0) { $0 + $1.byteCount }
        lines.append("\(graph.nodes.count) nodes, \(graph.initializers.count) initializers (\(bytes) bytes)")
        return lines.joined(separator: "\n")
    }
}

/// One `opset_import` entry.
public struct ONNXOpsetImport: Equatable, Sendable {
    public var domain: String
    public var version: Int
    public init(domain: String, version: Int) {
        self.domain = domain
        self.version = version
    }
    static func normalized(_ d: String) -> String { d == "ai.onnx" ? "" : d }
}

/// A GraphProto: nodes in file order, values and initializers.
public struct ONNXGraph: Sendable {
    public var name: String
    public var nodes: [ONNXNode]
    /// `graph.input` as written; old-IR files list initializers here too (see `realInputs`).
    public var inputs: [ONNXValueInfo]
    public var outputs: [ONNXValueInfo]
    public var valueInfo: [ONNXValueInfo]
    /// Initializers in file order, decoded.
    public var initializers: OrderedDictionary<String, Tensor>
    /// Initializers whose element type the tensor layer does not hold (strings, complex, uint16, …).
    public var skippedInitializers: [ONNXSkippedTensor]
    /// Initializers that live in external data files (name → location), for inspect and the writer.
    public var externalLocations: [String: String]
    public var docString: String

    public init(name: String = "", nodes: [ONNXNode] = [], inputs: [ONNXValueInfo] = [], outputs: [ONNXValueInfo] = [],
                valueInfo: [ONNXValueInfo] = [], initializers: OrderedDictionary<String, Tensor> = [:],
                skippedInitializers: [ONNXSkippedTensor] = [], externalLocations: [String: String] = [:], docString: String = "") {
        self.name = name
        self.nodes = nodes
        self.inputs = inputs
        self.outputs = outputs
        self.valueInfo = valueInfo
        self.initializers = initializers
        self.skippedInitializers = skippedInitializers
        self.externalLocations = externalLocations
        self.docString = docString
    }

    /// The inputs a caller feeds: `graph.input` minus initializer names (IR ≤ 3 lists weights as inputs).
    public var realInputs: [ONNXValueInfo] {
        inputs.filter { v in initializers[v.name] == nil && !skippedInitializers.contains(where: { $0.name == v.name }) }
    }
}

/// An initializer or constant the reader could not turn into a tensor, and why.
public struct ONNXSkippedTensor: Equatable, Sendable {
    public var name: String
    public var dataType: Int
    public var reason: String
}

/// A NodeProto.
public struct ONNXNode: Sendable {
    public var name: String
    public var opType: String
    public var domain: String
    /// Input value names; "" marks an omitted optional input.
    public var inputs: [String]
    public var outputs: [String]
    public var attributes: OrderedDictionary<String, ONNXAttribute>

    public init(name: String = "", opType: String, domain: String = "", inputs: [String], outputs: [String],
                attributes: OrderedDictionary<String, ONNXAttribute> = [:]) {
        self.name = name
        self.opType = opType
        self.domain = domain
        self.inputs = inputs
        self.outputs = outputs
        self.attributes = attributes
    }

    /// `op_type`, prefixed by the domain when it is not the default one (`com.microsoft.FusedConv`).
    public var qualifiedOpType: String {
        let d = ONNXOpsetImport.normalized(domain)
        return d.isEmpty ? opType : d + "." + opType
    }

    public func int(_ key: String) -> Int? { if case .int(let v)? = attributes[key] { return v }; return nil }
    public func float(_ key: String) -> Float? {
        switch attributes[key] { case .float(let v)?: return v; case .int(let v)?: return Float(v); default: return nil }
    }
    public func ints(_ key: String) -> [Int]? { if case .ints(let v)? = attributes[key] { return v }; return nil }
    public func floats(_ key: String) -> [Float]? { if case .floats(let v)? = attributes[key] { return v }; return nil }
    public func string(_ key: String) -> String? { if case .string(let v)? = attributes[key] { return v }; return nil }
    public func tensor(_ key: String) -> Tensor? { if case .tensor(let v)? = attributes[key] { return v }; return nil }
    /// Input `i`, or nil when absent or "" (omitted optional input).
    public func input(_ i: Int) -> String? { i < inputs.count && !inputs[i].isEmpty ? inputs[i] : nil }
}

/// An AttributeProto value.
public indirect enum ONNXAttribute: Sendable {
    case float(Float)
    case int(Int)
    case string(String)
    case tensor(Tensor)
    case graph(ONNXGraph)
    case floats([Float])
    case ints([Int])
    case strings([String])
    case tensors([Tensor])
    case graphs([ONNXGraph])
    /// Sparse tensors and type protos: kept by type only (no op wconv maps uses them).
    case unsupported(type: Int)
}

/// A dimension of a value's shape.
public enum ONNXDim: Equatable, Sendable, CustomStringConvertible {
    case value(Int)
    case param(String)
    case unknown
    public var description: String {
        switch self { case .value(let v): return String(v); case .param(let p): return p; case .unknown: return "?" }
    }
    /// The fixed size, or nil for a dynamic dim. Converters (paddle2onnx, tf2onnx) write a
    /// dynamic dim as dim_value -1: every negative value is dynamic.
    public var intValue: Int? { if case .value(let v) = self, v >= 0 { return v }; return nil }
}

/// A ValueInfoProto for a tensor-typed value (other types keep `elemType` 0 and no shape).
public struct ONNXValueInfo: Equatable, Sendable, CustomStringConvertible {
    public var name: String
    /// The ONNX `TensorProto.DataType` code (1 float, 7 int64, …); 0 when undefined or not a tensor.
    public var elemType: Int
    /// nil when the shape is not given (unknown rank).
    public var shape: [ONNXDim]?

    public init(name: String, elemType: Int, shape: [ONNXDim]?) {
        self.name = name
        self.elemType = elemType
        self.shape = shape
    }

    /// The wconv dtype of the element type, when the tensor layer holds it.
    public var dtype: DType? { ONNXDataType.dtype(elemType) }

    public var description: String {
        let t = dtype?.rawValue ?? ONNXDataType.name(elemType)
        guard let shape else { return "\(name): \(t)" }
        return "\(name): \(t)[\(shape.map(\.description).joined(separator: ", "))]"
    }
}
