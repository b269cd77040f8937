import OrderedCollections
import WconvGraph
import WconvTensor

/// Replaces a classifier's output layer for a new number of classes, as the seed's feature
/// extractor does (`nn.Sequential(nn.Dropout(p), nn.Linear(in_features, num_classes))`), as a
/// ModelGraph transform. The new layer keeps the old parameter names (so the export loads into
/// the original architecture built with `num_classes = N`) and PyTorch's default Linear init:
/// weight and bias uniform in ±1/√in_features (kaiming_uniform with a = √5, and the bias bound),
/// drawn from the seeded RNG.
public enum HeadReplacement {
    public struct Result {
        public var graph: ModelGraph
        public var headNode: String
        public var inFeatures: Int
        /// The value feeding the head (penultimate features), before the dropout.
        public var featureValue: String
        public var replaced: [String]
    }

    /// - Parameters:
    ///   - classes: class names (their count is the new output size); stored as the graph's labels.
    ///   - dropout: p of the dropout in front of the new linear (0 = none). An existing dropout node
    ///     right before the head gets this ratio instead of a second one.
    public static func replace(_ graph: ModelGraph, classes: [String], dropout: Double, seed: UInt64) throws -> Result {
        guard let headName = LayerGrouping.findHeadNode(graph), let hi = graph.nodes.firstIndex(where: { $0.name == headName }) else {
            throw WconvError.invalid("cannot find the classifier's output layer (no linear feeding the graph output); name it with --groups '…,head=<pattern>' or keep the head (--head keep)")
        }
        var g = graph
        var node = g.nodes[hi]
        guard node.op == .linear || node.op == .conv2d else {
            throw WconvError.invalid("the output layer '\(headName)' is a \(node.op) node; head replacement supports linear and 1×1 conv heads")
        }
        guard node.inputs.count >= 2, let w = g.parameters[node.inputs[1]] else {
            throw WconvError.invalid("head '\(headName)' has no weight parameter")
        }
        let n = classes.count
        guard n >= 2 else { throw WconvError.invalid("a classifier needs at least two classes, got \(n)") }
        let inFeatures = w.shape.dropFirst().reduce(1, *)
        var rng = RNG(seed: seed, keys: 0x4EAD, 0)
        let bound = Float(1 / Double(inFeatures).squareRoot())
        var newShape = w.shape
        newShape[0] = n
        let weights = (0..<(n * inFeatures)).map { _ in Float(rng.uniform(-1, 1)) * bound }
        g.parameters[node.inputs[1]] = Tensor(shape: newShape, floats: weights)
        var replaced = [node.inputs[1]]
        if node.inputs.count >= 3, !node.inputs[2].isEmpty {
            let bias = (0..<n).map { _ in Float(rng.uniform(-1, 1)) * bound }
            g.parameters[node.inputs[2]] = Tensor(shape: [n], floats: bias)
            replaced.append(node.inputs[2])
        }
        g.layoutTransforms[node.inputs[1]] = g.layoutTransforms[node.inputs[1]].map {
            var t = $0; t.sourceShape = t.sourceShape.isEmpty ? t.sourceShape : [n] + t.sourceShape.dropFirst(); return t
        }
        // Dropout in front: reuse an existing one, else insert.
        var producer: [String: Int] = [:]
        for (i, nd) in g.nodes.enumerated() { for o in nd.outputs { producer[o] = i } }
        var feature = node.inputs[0]
        if let pi = producer[node.inputs[0]], g.nodes[pi].op == .dropout {
            g.nodes[pi].attributes["ratio"] = .float(dropout)
            feature = g.nodes[pi].inputs[0]
        } else if dropout > 0 {
            let dropOut = headName + ".dropout_out"
            let drop = GraphNode(name: headName + ".dropout", op: .dropout, inputs: [node.inputs[0]], outputs: [dropOut], attributes: ["ratio": .float(dropout)])
            node.inputs[0] = dropOut
            g.nodes[hi] = node
            g.nodes.insert(drop, at: hi)
        }
        // Output shapes: last dim (linear) or channel dim (conv) becomes n.
        for i in g.outputs.indices where !g.outputs[i].shape.isEmpty {
            if node.op == .linear { g.outputs[i].shape[g.outputs[i].shape.count - 1] = n }
            else if g.outputs[i].shape.count >= 2 { g.outputs[i].shape[1] = n }
        }
        g.labels = classes
        return Result(graph: g, headNode: headName, inFeatures: inFeatures, featureValue: feature, replaced: replaced)
    }

    /// Output size of the current head (classes the model predicts), when the graph says.
    public static func outputSize(_ graph: ModelGraph) -> Int? {
        guard let hn = LayerGrouping.findHeadNode(graph), let node = graph.nodes.first(where: { $0.name == hn }),
              node.inputs.count >= 2, let w = graph.parameters[node.inputs[1]] else { return nil }
        return w.shape.first
    }
}
