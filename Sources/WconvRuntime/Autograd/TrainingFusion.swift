import Foundation
import WconvGraph

/// Training plans run a ReLU inside the batch norm or add whose sole output it reads, as PyTorch's
/// in-place ReLU does: the forward writes max(·, 0) once, the step keeps one tensor instead of two
/// (its backward masks the output gradient by y > 0 in place, `BackwardContext.outputGradientThroughReLU`),
/// and the separate ReLU's gradient buffer and pass are gone. The pre-ReLU value is no longer a value
/// of the plan (`TrainingSession.activation(named:)` returns nil for it).
enum TrainingFusion {
    /// Tests: plans without the fusion and without in-place adds (the reference they are checked against).
    nonisolated(unsafe) static var disabledForTesting = false

    static func nodes(_ graph: ModelGraph) -> [ExecNode] {
        if disabledForTesting { return graph.nodes.map { ExecNode(node: $0) } }
        var readers: [String: Int] = [:]
        for n in graph.nodes { for i in n.inputs where !i.isEmpty { readers[i, default: 0] += 1 } }
        for o in graph.outputs { readers[o.name, default: 0] += 1 }
        var out: [ExecNode] = []
        var producer: [String: Int] = [:]
        for node in graph.nodes {
            if node.op == .relu, node.inputs.count == 1, let pi = producer[node.inputs[0]], readers[node.inputs[0]] == 1,
               [.batchNorm, .add].contains(out[pi].node.op), out[pi].fused == .none, out[pi].node.outputs.count == 1 {
                out[pi].fused = .relu
                out[pi].node.outputs = node.outputs
                for o in node.outputs { producer[o] = pi }
                continue
            }
            out.append(ExecNode(node: node))
            for o in node.outputs where !o.isEmpty { producer[o] = out.count - 1 }
        }
        return out
    }
}
