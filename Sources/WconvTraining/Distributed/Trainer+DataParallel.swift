import WconvRuntime
import WconvTensor

/// The trainer's data-parallel hooks (a no-op path when `parallel` is one process).
extension Trainer {
    /// The global batch's gradients and mean loss from this rank's (`labels` and `rows` its shard's
    /// targets and dataset rows, `loss` their mean loss), with rank 0's BatchNorm running
    /// statistics. A non-finite global loss stops the run on every rank alike.
    func reduceStep(_ gradients: [String: Tensor], session: TrainingSession, labels: [Int], rows: [Int], loss: Double,
                    epoch e: Int) throws -> (gradients: [String: Tensor], loss: Double) {
        let weight = lossWeight(labels: labels, rows: rows)
        let r = try parallel.reduce(gradients: gradients, layout: DataParallel.GradientLayout(session), weight: weight,
                                    sums: [labels.isEmpty ? 0 : loss * weight])
        let global = r.sums[0] / r.weight
        guard global.isFinite else { throw lossNotFinite(global, epoch: e) }
        try parallel.syncBuffers(session, names: Trainer.trainingBatchNormBuffers(session))
        return (r.gradients, global)
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
    /// SyncBatchNorm it first joins every BatchNorm collective of the step with one placeholder
    /// sample (`sampleShape`, fed to `input`) that contributes nothing.
    func stepWithoutSamples(_ session: TrainingSession, _ optimizer: Optimizer, epoch e: Int, sampleShape: [Int], input: String) throws {
        if let sync = parallel.batchNormSync {
            sync.contributes = false
            defer { sync.contributes = true }
            _ = try session.forward([input: Tensor(zeros: [1] + sampleShape)], training: true)
            guard let logits = session.activation(named: logitsName) else { throw WconvError(.runtime, "the model produced no '\(logitsName)'") }
            try session.backwardInPlace(outputGradients: [logitsName: Tensor(zeros: logits.shape)])
        }
        try optimizer.step(parameters: session, gradients: reduceStep([:], session: session, labels: [], rows: [], loss: 0, epoch: e).gradients)
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
