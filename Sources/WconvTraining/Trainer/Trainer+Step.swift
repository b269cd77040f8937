import Foundation
import WconvRuntime
import WconvTensor

/// What an epoch's steps add up to: the loss sum, correct predictions, samples and MMD values.
struct EpochTally {
    var lossSum = 0.0
    var correct = 0.0
    var seen = 0
    var mmdSum = 0.0
    var mmdCount = 0

    var meanLoss: Double { lossSum / Double(max(seen, 1)) }
    var accuracy: Double { correct / Double(max(seen, 1)) }
    var meanMMD: Double? { mmdCount > 0 ? mmdSum / Double(mmdCount) : nil }
}

/// A guard rail stops the run (the loss became NaN or infinite).
struct StopTraining: Error { var message: String }

/// The epoch and its optimizer steps: forward, loss, the MMD term, the NaN guard, backward, step.
extension Trainer {
    var stepsPerEpoch: Int { max(1, (train.count + config.batchSize - 1) / config.batchSize) }

    /// One epoch over the training batches, then validation when there are validation data.
    func trainEpoch(_ e: Int) throws -> EpochRecord {
        guard let session, let optimizer else { throw WconvError(.runtime, "trainer not prepared") }
        let t0 = Date()
        session.seedDropout((config.seed &* 0x9E37_79B9_7F4A_7C15 &+ UInt64(e)) ^ parallel.dropoutSalt)
        let schedule = try config.lrSchedule(stepsPerEpoch: stepsPerEpoch)
        var tally = EpochTally()
        var targets = mmdTargets(epoch: e)
        var batches = trainingBatches(epoch: e)
        while let b = try batches.next() {
            optimizer.applySchedule(schedule, step: globalStep)
            try step(b, at: batches.inputValue, session: session, optimizer: optimizer, targets: &targets, epoch: e, tally: &tally)
        }
        if parallel.isDistributed { (tally.lossSum, tally.correct, tally.seen) = try sumEpochFigures(tally.lossSum, tally.correct, tally.seen) }
        let trainSeconds = Date().timeIntervalSince(t0)
        var rec = EpochRecord(epoch: e + 1, trainLoss: tally.meanLoss, trainAccuracy: tally.accuracy,
                              valLoss: nil, valAccuracy: nil, valMacroAUC: nil, headLR: optimizer.groups.first { $0.name.hasPrefix("head") }?.lr ?? config.lr,
                              seconds: 0, imagesPerSecond: Double(tally.seen) / max(trainSeconds, 1e-9), trainableGroups: plan.epochs[e].trainable,
                              mmd: tally.meanMMD, cached: cut != nil)
        if val != nil {
            let m = try evaluateCurrent()
            rec.valLoss = m.loss
            rec.valAccuracy = m.accuracy
            rec.valMacroAUC = m.macroAUC
        }
        rec.seconds = Date().timeIntervalSince(t0)
        return rec
    }

    /// One optimizer step on batch `b` fed at `input` (with target samples appended when MMD is on).
    func step(_ b: TrainingBatches.Batch, at input: String, session: TrainingSession, optimizer: Optimizer,
              targets: inout MMDTargetStream?, epoch e: Int, tally: inout EpochTally) throws {
        let ns = b.labels.count
        // Every rank draws the global target batch and keeps its shard of it.
        let t = try targets?.next(b.globalCount)
        let nt = t?.shape[0] ?? 0
        // Under data parallelism MMD is of the global batch, gathered over ranks (distributedMMD).
        let acrossRanks = parallel.isDistributed && targets != nil && featureValue != nil
        // This rank's shard of a short last batch can be empty; it still joins the reduction.
        if ns + nt == 0 || (ns == 0 && !acrossRanks) {
            if let v = try stepWithoutSamples(session, optimizer, epoch: e, sampleShape: Array(b.input.shape.dropFirst()), input: input, mmd: acrossRanks) {
                tally.mmdSum += v; tally.mmdCount += 1
            }
            globalStep += 1
            return
        }
        var x = b.input
        if let t { x = Tensor(shape: [ns + nt] + Array(b.input.shape.dropFirst()), floats: b.input.floats() + t.floats()) }
        let out = try session.forward(b.others.merging([input: x]) { $1 }, training: true)
        guard let logits = logitsName == outputName ? out[outputName] : session.activation(named: logitsName) else {
            throw WconvError(.runtime, "the model produced no '\(logitsName)'")
        }
        let C = classes.count
        guard logits.numel == (ns + nt) * C else { throw WconvError(.runtime, "logits \(logits.shape) do not match \(ns + nt) samples × \(C) classes") }
        let lv = logits.floats()
        var (loss, grad, mlCorrect) = try lossAndGradient(lv, samples: ns, b)
        var grads: [String: Tensor] = [:]
        var total = loss
        if acrossRanks, let fv = featureValue, let feats = session.activation(named: fv) {
            let m = try distributedMMD(features: feats.floats(), ns: ns, nt: nt, weight: lossWeight(labels: b.labels, rows: b.rows))
            for i in grad.indices { grad[i] *= Float(m.lossScale) }
            grads[fv] = Tensor(shape: feats.shape, floats: m.gradient)
            loss *= m.lossScale
            total = loss + config.mmdWeight * m.value
            tally.mmdSum += m.value; tally.mmdCount += 1
        } else if nt > 0, let term = mmdTerm(session, samples: ns + nt, source: ns) {
            grads[term.value] = term.gradient
            total += config.mmdWeight * term.mmd
            tally.mmdSum += term.mmd; tally.mmdCount += 1
        }
        grads[logitsName] = Tensor(shape: logits.shape, floats: grad)
        // Ranks decide together, on the global loss, after the reduction.
        guard total.isFinite || parallel.isDistributed else { throw lossNotFinite(total, epoch: e) }
        parallel.batchNormSync?.localWeight = acrossRanks ? 1 : lossWeight(labels: b.labels, rows: b.rows)
        if parallel.isDistributed {
            var g = try session.backward(outputGradients: grads)
            (g, loss) = try reduceStep(g, session: session, labels: b.labels, rows: b.rows, loss: loss, objective: total, epoch: e,
                                       weight: acrossRanks ? 1 : nil)
            if let maxNorm = config.maxGradNorm { g = GradientClipping.clip(g, maxNorm: maxNorm) }
            try optimizer.step(parameters: session, gradients: g)
        } else {
            // Gradients stay in the session's buffers: no model-sized copy per step.
            try session.backwardInPlace(outputGradients: grads)
            if let maxNorm = config.maxGradNorm {
                GradientClipping.clipInPlace(session, names: session.trainable.filter { session.gradientBuffer(named: $0) != nil }, maxNorm: maxNorm)
            }
            try optimizer.step(parameters: session, gradients: session)
        }
        globalStep += 1
        tally.lossSum += loss * Double(ns)
        tally.seen += ns
        if let c = mlCorrect { tally.correct += c }
        for i in 0..<ns where mlCorrect == nil {
            var bi = 0
            for c in 1..<C where lv[i * C + c] > lv[i * C + bi] { bi = c }
            if bi == b.labels[i] { tally.correct += 1 }
        }
        progress?(tally.seen, train.count, tally.meanLoss)
    }

    /// The mean loss of the batch's `ns` labelled samples (the first rows of `logits`), its
    /// gradient (zero for the target rows behind them) and, for multi-label data, the correct count.
    func lossAndGradient(_ logits: [Float], samples ns: Int, _ b: TrainingBatches.Batch) throws -> (loss: Double, gradient: [Float], correct: Double?) {
        let C = classes.count
        var grad = [Float](repeating: 0, count: logits.count)
        // A rank holding only target samples (MMD across ranks) has no classification term.
        guard ns > 0 else { return (0, grad, nil) }
        var mlCorrect: Double?
        let loss = try logits.withUnsafeBufferPointer { lp in
            try grad.withUnsafeMutableBufferPointer { gp in
                let (l, g) = (UnsafeBufferPointer(rebasing: lp[0..<(ns * C)]), UnsafeMutableBufferPointer(rebasing: gp[0..<(ns * C)]))
                if let ml = multiLabel {
                    let r = try ml.step(logits: l, rows: b.rows, gradient: g)
                    mlCorrect = r.correct
                    return r.loss
                }
                return try criterion(logits: l, targets: b.labels, classes: C, gradient: g)
            }
        }
        return (loss, grad, mlCorrect)
    }

    /// The MMD term between the batch's first `source` samples and the target samples behind them,
    /// on the penultimate features: its value and its gradient there (weighted by λ).
    func mmdTerm(_ session: TrainingSession, samples n: Int, source ns: Int) -> (value: String, gradient: Tensor, mmd: Double)? {
        guard let fv = featureValue, let feats = session.activation(named: fv) else { return nil }
        let d = feats.numel / n
        let f = feats.floats()
        let r = MMD.compute(config.mmdKind, source: Array(f[0..<(ns * d)]), target: Array(f[(ns * d)...]), dim: d)
        let lam = Float(config.mmdWeight)
        return (fv, Tensor(shape: feats.shape, floats: (r.gradSource + r.gradTarget).map { $0 * lam }), r.value)
    }

    /// The NaN guard's stop, with the likely cause and the fix.
    func lossNotFinite(_ total: Double, epoch e: Int) -> StopTraining {
        StopTraining(message: "epoch \(e + 1), step \(globalStep + 1): the loss became \(total). Likely cause: a learning rate too high for these weights (head \(sci(config.lr))) or inputs far from the normalisation the model expects. Fix: lower --lr (and --backbone-lr) by 10×, add --schedule warmup-cosine, or check the normalisation warning above.")
    }
}
