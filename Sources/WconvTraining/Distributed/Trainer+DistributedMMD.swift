import WconvTensor

/// MMD domain adaptation under data parallelism. Each rank forwards its shard of the global source
/// batch and its shard of the global target batch; the MMD (a function of all of both batches'
/// features, not a sum over shards) is computed on every rank from the features all ranks gather,
/// one broadcast per rank of its block (N·(B_s + B_t)·d floats in all per step — small beside the
/// gradients for a pooled feature of a few thousand values). Each rank then backpropagates its own
/// rows of the MMD gradient, so no rank needs another's activations.
extension Trainer {
    struct RankMMD {
        /// MMD of the global batch (identical on every rank).
        var value: Double
        /// λ·∂MMD/∂(this rank's source rows, then target rows), scaled by N (see `lossScale`).
        var gradient: [Float]
        /// What this rank multiplies its own mean classification loss (and its gradient) by:
        /// N·w_r/Σw. With it, every rank's backward is in units of N × the global loss, so the
        /// gradient reduction averages with weight 1 per rank (a rank with only target rows, or none,
        /// still contributes its MMD rows).
        var lossScale: Double
    }

    /// The global batch's MMD from this rank's `features` (`ns` source rows, then `nt` target
    /// rows) and loss weight `weight` (`lossWeight`), gathered over all ranks.
    func distributedMMD(features: [Float], ns: Int, nt: Int, weight: Double) throws -> RankMMD {
        let n = parallel.comm.size, r = parallel.comm.rank
        let d = ns + nt > 0 ? features.count / (ns + nt) : 0
        // Per rank: source floats, target floats; then Σ weights, Σ source rows.
        var counts = [Double](repeating: 0, count: 2 * n + 2)
        counts[r] = Double(ns * d)
        counts[n + r] = Double(nt * d)
        counts[2 * n] = weight
        counts[2 * n + 1] = Double(ns)
        counts = try parallel.comm.allreduceSum(counts, what: "MMD feature counts")
        let source = counts[0..<n].map { Int($0) }, targets = counts[n..<(2 * n)].map { Int($0) }
        let sourceRows = Int(counts[2 * n + 1])
        guard sourceRows > 0, source.reduce(0, +) % sourceRows == 0 else {
            throw WconvError(.runtime, "MMD across ranks: \(source.reduce(0, +)) source feature values for \(sourceRows) rows")
        }
        let dim = source.reduce(0, +) / sourceRows
        let s = try parallel.allGather(Array(features[0..<(ns * d)]), counts: source, what: "MMD source features")
        let t = try parallel.allGather(Array(features[(ns * d)...]), counts: targets, what: "MMD target features")
        let m = MMD.compute(config.mmdKind, source: s, target: t, dim: dim)
        let so = source[0..<r].reduce(0, +), to = targets[0..<r].reduce(0, +)
        let k = Float(config.mmdWeight) * Float(n)
        let gradient = (m.gradSource[so..<(so + ns * d)] + m.gradTarget[to..<(to + nt * d)]).map { $0 * k }
        let total = counts[2 * n]
        return RankMMD(value: m.value, gradient: gradient, lossScale: total > 0 ? Double(n) * weight / total : 0)
    }
}
