import WconvRuntime
import WconvTensor

/// The trainer's data-parallel hooks (a no-op path when `parallel` is one process).
extension Trainer {
    /// The global batch's gradients and mean loss from this rank's (`labels` and `rows` its shard's
    /// targets and dataset rows, `loss` their mean loss), with rank 0's BatchNorm running
    /// statistics. A non-finite global loss stops the run on every rank alike.
    /// `weight` overrides the shard's loss weight: 1 on every rank when the gradients are already
    /// in units of the global loss (MMD across ranks, see `distributedMMD`). `objective` is the
    /// whole loss the gradients are of, when more than the reported `loss` (the MMD term): the guard
    /// judges it.
    func reduceStep(_ gradients: [String: Tensor], session: TrainingSession, labels: [Int], rows: [Int], loss: Double,
                    objective: Double? = nil, epoch e: Int, weight override: Double? = nil) throws -> (gradients: [String: Tensor], loss: Double) {
        let weight = override ?? lossWeight(labels: labels, rows: rows)
        let empty = labels.isEmpty && override == nil
        let r = try parallel.reduce(gradients: gradients, layout: DataParallel.GradientLayout(session), weight: weight,
                                    sums: [empty ? 0 : loss * weight, empty ? 0 : (objective ?? loss) * weight])
        let global = r.sums[1] / r.weight
        guard global.isFinite else { throw lossNotFinite(global, epoch: e) }
        try parallel.syncBuffers(session, names: Trainer.trainingBatchNormBuffers(session))
        return (r.gradients, r.sums[0] / r.weight)
    }

    /// What the shard's mean loss divides by, so that shards add up to the global mean: the
    /// targets' class weights (torch's weighted cross-entropy), the certain label terms
    /// (BCE-with-logits under U-Ignore), or the sample count.
    func lossWeight(labels: [Int], rows: [Int]) -> Double {
        if let ml = multiLabel {
            return Double(ml.rows(ml.train, rows).filter { BCEWithLogitsLoss.resolve($0, ml.loss.uncertain).counts }.count)
        }
        return criterion.weights.map { w in labels.reduce(0.0) { $0 + Double(w[$1]) } } ?? Double(labels.count)
    }

    /// A rank whose shard of the global batch is empty still takes the global step. Under
    /// SyncBatchNorm it joins every BatchNorm collective with one placeholder sample
    /// (`sampleShape`, fed to `input`) that contributes nothing; with `mmd` (MMD across ranks) it
    /// joins the feature gathering between forward and backward, and returns the global batch's MMD.
    func stepWithoutSamples(_ session: TrainingSession, _ optimizer: Optimizer, epoch e: Int, sampleShape: [Int], input: String,
                            mmd: Bool) throws -> Double? {
        let sync = parallel.batchNormSync
        sync?.contributes = false
        defer { sync?.contributes = true }
        if sync != nil { _ = try session.forward([input: Tensor(zeros: [1] + sampleShape)], training: true) }
        let value = mmd ? try distributedMMD(features: [], ns: 0, nt: 0, weight: 0).value : nil
        if sync != nil {
            guard let logits = session.activation(named: logitsName) else { throw WconvError(.runtime, "the model produced no '\(logitsName)'") }
            try session.backwardInPlace(outputGradients: [logitsName: Tensor(zeros: logits.shape)])
        }
        let g = try reduceStep([:], session: session, labels: [], rows: [], loss: 0, objective: value.map { config.mmdWeight * $0 }, epoch: e,
                               weight: mmd ? 1 : nil).gradients
        try optimizer.step(parameters: session, gradients: g)
        return value
    }

    /// Running statistics that batch-statistics BatchNorm layers update in forward.
    static func trainingBatchNormBuffers(_ s: TrainingSession) -> [String] {
        let modes = s.batchNormModes
        return s.graph.nodes.filter { $0.op == .batchNorm && (modes[$0.name] ?? .train) == .train }
            .flatMap { $0.inputs.dropFirst(3).prefix(2) }.filter { s.graph.buffers.contains($0) }
    }

    /// An epoch's loss sum, correct count and sample count over all ranks.
    func sumEpochFigures(_ lossSum: Double, _ correct: Double, _ seen: Int) throws -> (Double, Double, Int) {
        let t = try parallel.comm.allreduceSum([lossSum, correct, Double(seen)], what: "epoch figures")
        return (t[0], t[1], Int(t[2].rounded()))
    }

    /// Fills in the other ranks' shards of a feature cache this rank built its shard of.
    func shareCache(_ cache: FeatureCache, name: String) throws {
        try parallel.share(cache.storage, per: cache.perSample, count: cache.count, what: "\(name) feature cache")
    }
}
