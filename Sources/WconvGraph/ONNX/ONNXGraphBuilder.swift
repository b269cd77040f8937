import OrderedCollections
import WconvFormats
import WconvTensor

/// Builds the canonical `ModelGraph` from an ONNX model: resolves every value through one table of
/// initializers, `Constant` outputs and `Identity` aliases; folds shape computations whose inputs are
/// known; reads attributes that later opsets turned into inputs from wherever the model's opset keeps
/// them; maps each node to the canonical vocabulary. Every op it cannot map is reported at once.
public enum ONNXGraphBuilder {
    public static func build(_ model: ONNXModel, path: String? = nil) throws -> ModelGraph {
        var ctx = try ONNXBuildContext(model: model, path: path ?? model.path)
        return try ctx.build()
    }
}

/// One unsupported node, for the all-at-once report.
struct ONNXUnsupported {
    var opType: String
    var opset: Int
    var node: String
    var why: String?
}

struct ONNXBuildContext {
    let model: ONNXModel
    let path: String?
    let opset: Int
    /// Every constant value by name: initializers, Constant outputs, Identity aliases, folded results.
    var constants: [String: Tensor] = [:]
    /// Constant names that came from initializers, in file order.
    var initializerNames: [String] = []
    /// Identity output → the constant it forwards.
    var aliases: [String: String] = [:]
    /// Static shapes known for values (graph inputs, value_info, outputs with fixed dims).
    var shapes: [String: [Int]] = [:]
    /// How many node inputs and graph outputs read each value.
    var consumers: [String: Int] = [:]
    var nodes: [GraphNode] = []
    var unsupported: [ONNXUnsupported] = []
    var layoutTransforms: [String: LayoutTransform] = [:]
    /// Parameters whose values the builder had to change (transposed MatMul weights).
    var rewritten: [String: Tensor] = [:]
    var buffers: Set<String> = []
    /// Nodes already folded into a neighbour (SiLU / HardSwish patterns).
    var absorbed: Set<Int> = []

    init(model: ONNXModel, path: String?) throws {
        self.model = model
        self.path = path
        self.opset = model.defaultOpset
    }

    func invalid(_ m: String) -> WconvError { WconvError.invalid(m, file: path) }

    mutating func build() throws -> ModelGraph {
        let g = model.graph
        for (name, t) in g.initializers {
            constants[name] = t
            initializerNames.append(name)
        }
        for v in g.inputs + g.valueInfo + g.outputs {
            if let s = v.shape, s.allSatisfy({ $0.intValue != nil }), shapes[v.name] == nil {
                shapes[v.name] = s.map { $0.intValue! }
            }
        }
        let order = try topologicalOrder(g)
        for n in g.nodes {
            for i in n.inputs where !i.isEmpty { consumers[i, default: 0] += 1 }
        }
        for o in g.outputs { consumers[o.name, default: 0] += 1 }

        for idx in order where !absorbed.contains(idx) {
            let n = g.nodes[idx]
            if recordConstant(n) { continue }
            let emitted = nodes.count
            try map(n, index: idx, order: order)
            foldEmitted(from: emitted)
        }
        if !unsupported.isEmpty {
            let list = unsupported.map { u in
                "\(u.opType) (opset \(u.opset)) in node '\(u.node)'" + (u.why.map { ": " + $0 } ?? "")
            }.joined(separator: "\n  ")
            throw invalid("the graph uses \(unsupported.count) node\(unsupported.count == 1 ? "" : "s") wconv cannot import as a graph:\n  \(list)\nThe weights still import: `ONNXReader.read` / `wconv inspect` and `convert` to a weights format work on this file.")
        }
        fusePatterns()
        return try assemble()
    }

    /// Node indices in a topological order (ORT accepts unsorted files, so we do too); cycles are refused.
    func topologicalOrder(_ g: ONNXGraph) throws -> [Int] {
        var producer: [String: Int] = [:]
        for (i, n) in g.nodes.enumerated() {
            for o in n.outputs where !o.isEmpty {
                if producer[o] != nil { throw invalid("value '\(o)' is produced by two nodes ('\(g.nodes[producer[o]!].name)' and '\(n.name)'); ONNX graphs must be in SSA form") }
                producer[o] = i
            }
        }
        var indegree = [Int](repeating: 0, count: g.nodes.count)
        var users: [[Int]] = Array(repeating: [], count: g.nodes.count)
        for (i, n) in g.nodes.enumerated() {
            for inp in Set(n.inputs) where !inp.isEmpty {
                if let p = producer[inp], p != i { indegree[i] += 1; users[p].append(i) }
            }
        }
        // Files are almost always sorted already (the checker requires it): keep file order then.
        if (0..<g.nodes.count).allSatisfy({ i in g.nodes[i].inputs.allSatisfy { $0.isEmpty || (producer[$0].map { $0 < i } ?? true) } }) {
            return Array(g.nodes.indices)
        }
        var ready = (0..<g.nodes.count).filter { indegree[$0] == 0 }
        var out: [Int] = []
        out.reserveCapacity(g.nodes.count)
        var head = 0
        while head < ready.count {
            let i = ready[head]
            head += 1
            out.append(i)
            for u in users[i] {
                indegree[u] -= 1
                if indegree[u] == 0 { ready.append(u) }
            }
        }
        guard out.count == g.nodes.count else { throw invalid("the graph has a cycle: \(g.nodes.count - out.count) nodes depend on each other") }
        return out
    }

    // MARK: value helpers

    func constant(_ n: ONNXNode, _ i: Int) -> Tensor? { n.input(i).flatMap { constants[$0] } }

    func ints(_ t: Tensor) -> [Int] { t.doubles().map(ONNXBuildContext.safeInt) }

    /// Double → Int without trapping: NaN becomes 0, out-of-range values clamp to ±2^62 (values read
    /// from files feed axes and shapes; anything that large is refused later as out of range).
    static func safeInt(_ d: Double) -> Int {
        guard d.isFinite else { return d.isNaN ? 0 : (d > 0 ? 1 << 62 : -(1 << 62)) }
        if d >= 0x1p62 { return 1 << 62 }
        if d <= -0x1p62 { return -(1 << 62) }
        return Int(d.rounded(.towardZero))
    }

    /// An `ints` attribute before `opsetMoved`, the constant input `index` from then on.
    func intsAttrOrInput(_ n: ONNXNode, attr: String, index: Int, movedAt: Int) -> (values: [Int]?, dynamic: Bool) {
        if opset < movedAt { return (n.ints(attr), false) }
        guard let name = n.input(index) else { return (nil, false) }
        guard let t = constants[name] else { return (nil, true) }
        return (ints(t), false)
    }

    func unsupportedNode(_ n: ONNXNode, _ why: String? = nil) -> ONNXUnsupported {
        ONNXUnsupported(opType: n.qualifiedOpType, opset: model.opset(domain: n.domain) ?? opset, node: n.name, why: why)
    }

    mutating func emit(_ n: ONNXNode, _ op: Op, inputs: [String]? = nil, outputs: [String]? = nil, _ attrs: [String: AttributeValue] = [:]) {
        guard !(outputs ?? n.outputs).contains("") else {
            unsupported.append(unsupportedNode(n, "an output wconv needs is omitted (empty name)"))
            return
        }
        nodes.append(GraphNode(name: n.name.isEmpty ? (n.outputs.first ?? op.rawValue) : n.name, op: op,
                               inputs: inputs ?? n.inputs, outputs: outputs ?? n.outputs, attributes: attrs))
    }

    // MARK: assembly

    mutating func assemble() throws -> ModelGraph {
        var graph = ModelGraph()
        graph.nodes = nodes
        graph.architecture = "onnx"
        var produced = Set<String>()
        for inp in model.graph.realInputs {
            graph.inputs.append(ValueInfo(name: inp.name, dtype: inp.dtype ?? .f32, shape: (inp.shape ?? []).map { $0.intValue }))
            produced.insert(inp.name)
        }
        for n in nodes { n.outputs.forEach { produced.insert($0) } }
        // Parameters: constants the final nodes read, initializers first in file order.
        var used = OrderedSet<String>()
        for n in nodes { for i in n.inputs where !i.isEmpty && !produced.contains(i) { used.append(i) } }
        for o in model.graph.outputs where !produced.contains(o.name) && constants[o.name] != nil { used.append(o.name) }
        let initSet = Set(initializerNames)
        var ordered: [String] = initializerNames.filter { used.contains($0) }
        ordered += used.filter { !initSet.contains($0) }
        for name in ordered {
            guard let t = rewritten[name] ?? constants[name] else {
                throw invalid("value '\(name)' is read by a node but no node, graph input or initializer provides it")
            }
            graph.parameters[name] = t
            if let src = aliases[name], graph.parameters[src] != nil || used.contains(src) { graph.aliases[name] = src }
            if !initSet.contains(name) || !t.dtype.isFloatingPoint { buffers.insert(name) }
        }
        graph.buffers = buffers.intersection(Set(ordered))
        graph.layoutTransforms = layoutTransforms
        for o in model.graph.outputs {
            let s = shapes[o.name].map { $0.map { Optional($0) } } ?? (o.shape ?? []).map { $0.intValue }
            graph.outputs.append(ValueInfo(name: o.name, dtype: o.dtype ?? .f32, shape: s))
        }
        var notes: [String: String] = [
            "onnx.irVersion": String(model.irVersion),
            "onnx.opset": String(opset),
        ]
        if !model.producerName.isEmpty { notes["onnx.producer"] = model.producerName + " " + model.producerVersion }
        let generated = graph.parameters.keys.filter { $0.hasPrefix("onnx::") || $0.hasPrefix("val_") || $0.hasSuffix(".weight_bias") || $0.hasSuffix("_bias") && $0.contains(".weight") }
        if !generated.isEmpty {
            notes["onnx.exporterNames"] = "\(generated.count) parameters carry exporter-made names (BatchNorm folded into Conv, or weights renamed by the exporter): " + generated.prefix(12).joined(separator: ", ") + (generated.count > 12 ? ", …" : "")
        }
        graph.provenance = Provenance(sourceFile: path, sourceFormat: "onnx", notes: notes)
        return graph
    }
}
