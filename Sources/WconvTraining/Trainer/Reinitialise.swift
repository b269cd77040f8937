import WconvGraph
import WconvTensor

/// PyTorch-default re-initialisation for the "from scratch" baseline: weights of rank ≥ 2
/// uniform ±1/√fan_in (kaiming_uniform a=√5), their biases likewise, norms' γ = 1 and β = 0,
/// running mean 0 and variance 1.
public enum Reinitialise {
    public static func all(_ graph: ModelGraph, seed: UInt64) -> ModelGraph {
        var g = graph
        var rng = RNG(seed: seed, keys: 0x5C2A_7C4, 1)
        var fanIn: [String: Int] = [:]
        for node in graph.nodes where node.inputs.count >= 2 {
            if let w = graph.parameters[node.inputs[1]], w.rank >= 2 {
                let f = w.shape.dropFirst().reduce(1, *)
                for p in node.inputs.dropFirst() where !p.isEmpty { fanIn[p] = f }
            }
        }
        for (name, t) in graph.parameters {
            let lower = name.lowercased()
            let n = t.numel
            var v: [Float]
            if lower.hasSuffix("running_var") || lower.hasSuffix("moving_variance") { v = [Float](repeating: 1, count: n) }
            else if graph.buffers.contains(name) { v = [Float](repeating: 0, count: n) }
            else if t.rank >= 2 || fanIn[name] != nil {
                let f = fanIn[name] ?? t.shape.dropFirst().reduce(1, *)
                let bound = 1 / Double(max(f, 1)).squareRoot()
                v = (0..<n).map { _ in Float(rng.uniform(-bound, bound)) }
            } else if lower.hasSuffix("bias") || lower.hasSuffix("beta") { v = [Float](repeating: 0, count: n) }
            else { v = [Float](repeating: 1, count: n) }
            g.parameters[name] = Tensor(shape: t.shape, floats: v)
        }
        return g
    }
}
