import WconvFormats
import WconvTensor

/// Constants at import: `Constant` nodes and `Identity` of a constant are entries of the builder's
/// constant table; every other node is mapped to canonical ops first and then goes through the one
/// folding pass (`ValueFolding`, the same rules the planner uses), so Shape → Gather → Concat →
/// Reshape chains over declared shapes become constants here and the rest when shapes are bound.
extension ONNXBuildContext {
    /// True when `n` only adds to the constant table (Constant, Identity of a constant).
    mutating func recordConstant(_ n: ONNXNode) -> Bool {
        guard ONNXOpsetImport.normalizedDomain(n.domain).isEmpty else { return false }
        switch n.opType {
        case "Constant":
            guard let out = n.outputs.first else { return true }
            guard let t = ONNXReader.constantValue(n) else {
                unsupported.append(unsupportedNode(n, "a Constant with a string or sparse value"))
                return true
            }
            constants[out] = t
            return true
        case "Identity":
            guard let src = n.input(0), let t = constants[src], let out = n.outputs.first else { return false }
            constants[out] = t
            aliases[out] = aliases[src] ?? src
            return true
        default:
            return false
        }
    }

    /// Resolves value inputs of the nodes emitted from `start` on and folds those whose result is
    /// known (all inputs constant, or only declared shapes needed): their outputs become constants.
    mutating func foldEmitted(from start: Int) {
        var i = start
        while i < nodes.count {
            let node = ValueFolding.resolve(nodes[i]) { self.constants[$0] }
            nodes[i] = node
            if let values = foldedValues(node) {
                for (name, t) in zip(node.outputs, values) where !name.isEmpty { constants[name] = t }
                nodes.remove(at: i)
            } else {
                i += 1
            }
        }
    }

    private func foldedValues(_ node: GraphNode) -> [Tensor]? {
        guard let schema = OpCatalog.schema(node.op), schema.fold != nil else { return nil }
        var shapes: [[Int]?] = [], dtypes: [DType?] = [], values: [Tensor?] = []
        for name in node.inputs {
            if name.isEmpty { shapes.append(nil); dtypes.append(nil); values.append(nil); continue }
            let t = constants[name]
            guard let s = t?.shape ?? self.shapes[name] else { return nil }
            shapes.append(s); dtypes.append(t?.dtype); values.append(t)
        }
        guard let outShapes = try? ShapeInference.outputShapes(node, shapes), outShapes.count >= node.outputs.count else { return nil }
        let named = Array(outShapes.prefix(node.outputs.count))
        return ValueFolding.evaluate(node, values: values, shapes: shapes, outShapes: named,
                                     outDTypes: ShapeInference.outputDTypes(node, dtypes))
    }
}

extension ONNXOpsetImport {
    /// "" for the default domain ("" or "ai.onnx"), else the domain.
    static func normalizedDomain(_ d: String) -> String { d == "ai.onnx" ? "" : d }
}
