import WconvGraph

/// Inference over a training session's current parameters (validation during a run): the eval
/// graph gets the inference path's BN folding, fused epilogues, oneDNN layout plan and liveness-packed
/// buffers, while reading the weights the optimizer updates, not a copy of them.
///
/// What the plan derives from parameters — BN folded into conv weights and biases, per-channel
/// scale/shift, weights reordered into oneDNN's layout — is computed when the session is built and
/// again only on `parametersChanged()`: call it after the training session's parameters or BN
/// statistics changed (once per epoch) and before `run`.
extension InferenceSession {
    /// - Parameters:
    ///   - training: the session whose parameters and buffers are read (kept alive by this one).
    ///   - outputs: values returned by `run` (default: the graph's outputs); nodes that only feed
    ///     other values are not run (e.g. the softmax after the logits a trainer scores).
    public convenience init(sharing training: TrainingSession, outputs: [String]? = nil) throws {
        var g = training.graph
        if let outputs {
            // An intermediate value's shape is not declared: the planner infers it.
            g.outputs = outputs.map { name in g.outputs.first { $0.name == name } ?? ValueInfo(name: name, shape: []) }
            g.nodes = InferenceSession.needed(g.nodes, for: Set(outputs))
        }
        // A bf16 training session validates in bf16 too (autocast-style).
        try self.init(graph: g, store: ParameterStore(borrowing: training.store), threads: training.threads, precision: training.precision)
    }

    /// Recomputes what the plan derived from the parameters (folded BN, oneDNN weight layouts) from
    /// their current values, in place. Without it the plan keeps the values of the last call.
    public func parametersChanged() throws {
        _ = try InferenceSession.fuse(graph, store)
        executor.parametersChanged()
    }

    /// The nodes that some value of `outputs` depends on, in order.
    static func needed(_ nodes: [GraphNode], for outputs: Set<String>) -> [GraphNode] {
        var want = outputs
        var keep = [Bool](repeating: false, count: nodes.count)
        for (i, n) in nodes.enumerated().reversed() where n.outputs.contains(where: want.contains) {
            keep[i] = true
            want.formUnion(n.inputs.filter { !$0.isEmpty })
        }
        return nodes.indices.filter { keep[$0] }.map { nodes[$0] }
    }
}

/// A step kernel holding values derived from constant parameters (a oneDNN conv's reordered
/// weights): `parametersChanged` drops them so the next forward derives them again.
protocol ParameterDerivedCache {
    func parametersChanged()
}

extension DNNLConv2d: ParameterDerivedCache {
    func parametersChanged() { conv.weightsChanged() }
}
