import Foundation
import OrderedCollections
import WconvFormats
import WconvTensor

/// The canonical model file (design.md §3): a plain safetensors file whose tensor names are the
/// parameter names, with the rest of the graph as JSON under `wconv.*` keys of `__metadata__`.
public enum CanonicalModel {
    /// Metadata keys.
    public static let graphKey = "wconv.graph"
    public static let preprocessKey = "wconv.preprocess"
    public static let labelsKey = "wconv.labels"
    public static let provenanceKey = "wconv.provenance"
    public static let aliasesKey = "wconv.aliases"
    /// Version of the `wconv.graph` JSON layout.
    public static let graphFormatVersion = 1

    /// Writes `graph` to `path` as the canonical safetensors file.
    public static func save(_ graph: ModelGraph, to path: String) throws {
        // Ops without shape rules (from other builders) are stored as they are; the rest is checked.
        try graph.validate(allowUnknownOps: true)
        try SafetensorsWriter.write(bundle(from: graph), to: path)
    }

    /// Reads a canonical file back into the full graph.
    public static func load(path: String) throws -> ModelGraph {
        do { return try graph(from: SafetensorsReader.read(path: path)) } catch let e as WconvError { throw e.inFile(path) }
    }

    /// True when the bundle carries a `wconv.graph` (a canonical file, possibly weights-only).
    public static func isCanonical(_ bundle: TensorBundle) -> Bool { bundle.metadata[graphKey] != nil }

    /// The bundle the canonical file holds: parameters (tied aliases stored once) and metadata.
    public static func bundle(from graph: ModelGraph) -> TensorBundle {
        var b = TensorBundle(format: "safetensors")
        for (name, t) in graph.parameters where graph.aliases[name] == nil { b.tensors[name] = t }
        b.aliases = graph.aliases
        func json<T: Encodable>(_ v: T) -> String {
            // Through the one writer (members in declaration order, dictionaries sorted); encoding
            // plain Codable structs of strings and numbers cannot fail.
            (try? JSONValue(encoding: v).text(.compact)) ?? "null"
        }
        b.metadata["format"] = "pt"
        b.metadata[graphKey] = json(GraphDocument(graph))
        if let p = graph.preprocessing { b.metadata[preprocessKey] = json(p) }
        if let l = graph.labels { b.metadata[labelsKey] = json(l) }
        b.metadata[provenanceKey] = json(graph.provenance)
        if !graph.aliases.isEmpty { b.metadata[aliasesKey] = json(graph.aliases) }
        return b
    }

    /// The graph a canonical bundle describes; validated before it is returned.
    public static func graph(from bundle: TensorBundle) throws -> ModelGraph {
        guard let text = bundle.metadata[graphKey] else {
            throw WconvError.invalid("not a canonical wconv model: no '\(graphKey)' in the safetensors metadata; import it with 'wconv import'")
        }
        // Any file can carry these keys: read through the strict parser (duplicate keys refused).
        func decode<T: Decodable>(_ type: T.Type, _ key: String, _ s: String) throws -> T {
            let value = try JSONValue.parse(s, what: "metadata '\(key)'", file: nil, options: .strict)
            do { return try JSONValueDecoder().decode(T.self, from: value) } catch {
                throw WconvError.invalid("metadata '\(key)' is not valid: \(error)")
            }
        }
        let doc = try decode(GraphDocument.self, graphKey, text)
        guard doc.version <= graphFormatVersion else {
            throw WconvError.invalid("'\(graphKey)' has layout version \(doc.version); this wconv reads up to \(graphFormatVersion) — upgrade wconv")
        }
        var g = ModelGraph()
        g.nodes = doc.nodes.map { GraphNode(name: $0.name, op: Op($0.op), inputs: $0.inputs, outputs: $0.outputs,
                                            attributes: $0.attrs.mapValues(\.value)) }
        g.inputs = doc.inputs
        g.outputs = doc.outputs
        g.architecture = doc.architecture
        g.variant = doc.variant
        g.layoutTransforms = doc.layoutTransforms ?? [:]
        if let s = bundle.metadata[preprocessKey] { g.preprocessing = try decode(Preprocessing.self, preprocessKey, s) }
        if let s = bundle.metadata[labelsKey] { g.labels = try decode([String].self, labelsKey, s) }
        if let s = bundle.metadata[provenanceKey] { g.provenance = try decode(Provenance.self, provenanceKey, s) }
        var aliases = bundle.aliases
        if let s = bundle.metadata[aliasesKey] { aliases.merge(try decode([String: String].self, aliasesKey, s)) { a, _ in a } }
        // Parameters in the order the graph recorded (a safetensors header need not keep it).
        var params = OrderedDictionary<String, Tensor>()
        for name in doc.parameterOrder ?? [] {
            if let t = bundle.tensors[name] { params[name] = t }
            else if let target = aliases[name], let t = bundle.tensors[target] { params[name] = t }
            else { throw WconvError.invalid("'\(graphKey)' lists parameter '\(name)' but the file has no such tensor") }
        }
        for (name, t) in bundle.tensors where params[name] == nil { params[name] = t }
        for (alias, target) in aliases where params[alias] == nil {
            guard let t = params[target] else { throw WconvError.invalid("alias '\(alias)' → '\(target)': no such tensor in the file") }
            params[alias] = t
        }
        g.parameters = params
        g.aliases = aliases
        g.buffers = Set(doc.buffers.filter { params[$0] != nil })
        try g.validate(allowUnknownOps: true)
        return g
    }
}

extension ModelGraph {
    /// Restores a graph from a canonical bundle (a safetensors bundle carrying `wconv.graph`).
    public init(canonical bundle: TensorBundle) throws { self = try CanonicalModel.graph(from: bundle) }
    /// Same as `init(canonical:)`: the bundle must carry `wconv.graph` metadata.
    public init(bundle: TensorBundle) throws { self = try CanonicalModel.graph(from: bundle) }
}

/// `wconv.graph` JSON layout. Attributes are tagged (`{"i": 3}`, `{"fs": [0.1]}`) so integers
/// and floats never blur into each other through JSON.
struct GraphDocument: Codable {
    struct Node: Codable {
        var name: String
        var op: String
        var inputs: [String]
        var outputs: [String]
        var attrs: [String: TaggedAttribute]
    }
    var version: Int
    var nodes: [Node]
    var inputs: [ValueInfo]
    var outputs: [ValueInfo]
    var buffers: [String]
    var architecture: String?
    var variant: String?
    var layoutTransforms: [String: LayoutTransform]?
    var parameterOrder: [String]?

    init(_ g: ModelGraph) {
        version = CanonicalModel.graphFormatVersion
        nodes = g.nodes.map { Node(name: $0.name, op: $0.op.rawValue, inputs: $0.inputs, outputs: $0.outputs,
                                   attrs: $0.attributes.mapValues(TaggedAttribute.init)) }
        inputs = g.inputs
        outputs = g.outputs
        buffers = g.buffers.sorted()
        architecture = g.architecture
        variant = g.variant
        layoutTransforms = g.layoutTransforms.isEmpty ? nil : g.layoutTransforms
        parameterOrder = Array(g.parameters.keys)
    }
}

struct TaggedAttribute: Codable {
    var value: AttributeValue
    init(_ v: AttributeValue) { value = v }

    private enum Key: String, CodingKey { case i, `is`, f, fs, s, ss }

    init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: Key.self)
        if let v = try c.decodeIfPresent(Int.self, forKey: .i) { value = .int(v) }
        else if let v = try c.decodeIfPresent([Int].self, forKey: .is) { value = .ints(v) }
        else if let v = try c.decodeIfPresent(Double.self, forKey: .f) { value = .float(v) }
        else if let v = try c.decodeIfPresent([Double].self, forKey: .fs) { value = .floats(v) }
        else if let v = try c.decodeIfPresent(String.self, forKey: .s) { value = .string(v) }
        else if let v = try c.decodeIfPresent([String].self, forKey: .ss) { value = .strings(v) }
        else { throw DecodingError.dataCorrupted(.init(codingPath: decoder.codingPath, debugDescription: "attribute needs one of i, is, f, fs, s, ss")) }
    }

    func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: Key.self)
        switch value {
        case .int(let v): try c.encode(v, forKey: .i)
        case .ints(let v): try c.encode(v, forKey: .is)
        case .float(let v): try c.encode(v, forKey: .f)
        case .floats(let v): try c.encode(v, forKey: .fs)
        case .string(let v): try c.encode(v, forKey: .s)
        case .strings(let v): try c.encode(v, forKey: .ss)
        }
    }
}
