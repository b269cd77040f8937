import Foundation
import OrderedCollections
import WconvFormats
import WconvGraph
import WconvTensor

/// The run: the baseline, the epochs with their log line, best-model tracking, guard rails and
/// early stopping, checkpoints, and what is handed back.
extension Trainer {
    /// Trains for the plan's epochs (from a checkpoint when `resume` names one).
    public func run(resume: String? = nil) throws -> TrainingResult {
        log(plan.render())
        var startEpoch = 0
        if let resume {
            startEpoch = try loadCheckpoint(resume)
            log("resumed from \(resume) after epoch \(startEpoch)")
        } else if computeBaseline && config.mode == .finetune && val != nil {
            if let b = try featureExtractionBaseline() {
                baseline = b.score
                best = b
                log("feature-extraction baseline: " + (multiLabel != nil ? "val macro AUC \(fmt(b.score, 4))" : "val accuracy \(fmt(b.score * 100, 2))%"))
            }
        }
        var mmdReport: [(MMDKind, Double, Double)] = []
        var mmdBefore: [MMDKind: Double] = [:]
        if target != nil { mmdBefore = try measureMMD(); log("MMD source/target before: " + mmdBefore.sorted { $0.key.rawValue < $1.key.rawValue }.map { "\($0.key.rawValue) \(fmt($0.value, 5))" }.joined(separator: ", ")) }
        var stop: RunStop?
        var patience = config.patience.map { EarlyStopping(patience: $0) }
        let tStart = Date()
        for e in startEpoch..<config.epochs {
            let fresh = e == startEpoch
            try prepare(epoch: e)
            if fresh, resume != nil, let opt = optimizer {
                // The optimizer state saved with the checkpoint, unless this epoch starts a new
                // trainable set with fresh state (as the uninterrupted run would).
                let boundary = e > 0 && plan.epochs[e].trainable != plan.epochs[e - 1].trainable && !config.keepOptimizerStateOnUnfreeze
                if !boundary { try opt.importState(resumedOptimizerState) }
                resumedOptimizerState = [:]
            }
            let rec: EpochRecord
            do { rec = try trainEpoch(e) } catch let s as StopTraining {
                stop = .guardRail(s.message)
                log("guard: " + s.message)
                break
            }
            history.append(rec)
            if fresh, config.precision == .bf16, let s = session, s.convolutions > 0 {
                log("bf16: \(s.bf16Convolutions) of \(s.convolutions) convolutions of the training plan in bfloat16 (smaller ones, below oneDNN's break-even, stay f32 on im2col + GEMM)")
            }
            let eta = Date().timeIntervalSince(tStart) / Double(e + 1 - startEpoch) * Double(config.epochs - e - 1)
            log(epochLine(rec, eta: eta))
            var improved = false
            if let score = selectionScore(rec) {
                if best?.isBeaten(by: score, loss: rec.valLoss) ?? true {
                    syncGraph()
                    best = BestModel(score: score, loss: rec.valLoss, epoch: e, parameters: graph.parameters)
                    improved = true
                }
            } else {
                syncGraph()
                lastCompleted = (e, graph.parameters)
            }
            if config.mode == .progressive && e == 0 { baseline = selectionScore(rec) }
            if let dir = checkpointDir, parallel.isRoot { try writeCheckpoint(dir: dir, epoch: e + 1) }
            if let k = stopAfterEpoch, e + 1 >= k { break }
            if config.mode.isFineTuning, let b = baseline, selectionScore(rec) != nil,
               BaselineGuard.trips(scores: history.compactMap { selectionScore($0) }, totalEpochs: config.epochs, baseline: b, margin: baselineMargin) {
                stop = .guardRail(baselineGuardMessage(epoch: e, baseline: b))
                log("guard: " + stop!.message)
                break
            }
            if patience?.record(improved: improved) == true, e + 1 < config.epochs {
                stop = .earlyStopping("early stopping after epoch \(e + 1): no better validation \(metricName) for \(config.patience!) epochs (best: \(best?.label ?? "none"))")
                log(stop!.message)
                break
            }
        }
        syncGraph()
        let kept = keepWeights(stop: stop)
        log("kept: " + (kept ?? "nothing (no epoch completed)"))
        if target != nil {
            let after = try measureMMD()
            for (k, v) in mmdBefore.sorted(by: { $0.key.rawValue < $1.key.rawValue }) { mmdReport.append((k, v, after[k] ?? .nan)) }
            log("MMD source/target after: " + mmdReport.map { "\($0.0.rawValue) \(fmt($0.1, 5)) → \(fmt($0.2, 5))" }.joined(separator: ", "))
        }
        var metrics: ClassificationMetrics?
        var multiLabelMetrics: MultiLabelMetrics?
        // The root reports the final metrics; the other ranks only trained.
        if let val, parallel.isRoot, multiLabel != nil {
            multiLabelMetrics = try Trainer.evaluateMultiLabel(graph: graph, data: val, threads: config.threads, batchSize: min(64, config.batchSize), precision: config.precision, bestOnData: true)
        } else if let val, parallel.isRoot, finalEvaluation { metrics = try evaluateValidation(graph: graph, data: val) }
        var out = graph
        if multiLabel != nil { MultiLabelObjective.annotate(&out, labels: classes, thresholds: multiLabelMetrics?.thresholds) }
        out.provenance.notes["wconv.training.plan"] = plan.jsonString()
        out.provenance.notes["wconv.training.seed"] = String(config.seed)
        // Through the one writer: members in declaration order on every run (JSONEncoder's order
        // changes from run to run), non-finite losses as "nan" strings as in --json.
        var layout = JSONWriteOptions.compact
        layout.nonFiniteAsStrings = true
        if let h = try? JSONValue(encoding: history) { out.provenance.notes["wconv.training.history"] = h.text(layout) }
        return TrainingResult(graph: out, history: history, metrics: metrics, baselineAccuracy: baseline,
                              mmd: mmdReport.map { (kind: $0.0, before: $0.1, after: $0.2) }, stopped: stop?.message, bestEpoch: best?.epoch,
                              stop: stop, kept: kept,
                              multiLabelMetrics: multiLabelMetrics)
    }

    /// The seed's feature extraction on cached features (cheap): the accuracy fine-tuning must beat,
    /// with its weights (a candidate for the output, so fine-tuning never hands back less).
    func featureExtractionBaseline() throws -> BestModel? {
        var c = config
        c.mode = .featureExtract
        c.epochs = min(3, config.epochs)
        c.schedule = "constant"
        c.mmdWeight = 0
        c.patience = nil
        c.restoreBest = true
        let t = try Trainer(graph: graph, config: c, train: train, val: val, modelName: "baseline", augment: false, log: { _ in })
        t.computeBaseline = false
        t.cacheMemoryLimit = cacheMemoryLimit
        t.featureCaches = featureCaches
        t.parallel = parallel
        // Only its best epoch's score is used: no final evaluation. The validation images are
        // decoded once for both runs.
        t.finalEvaluation = false
        t.decodedValidation = decodedValidation
        defer { decodedValidation = t.decodedValidation }
        // The head is already replaced in `graph`; keep it.
        let r = try t.runQuiet()
        guard let e = r.bestEpoch, e >= 0, e < r.history.count, let score = t.selectionScore(r.history[e]) else { return nil }
        return BestModel(score: score, loss: r.history[e].valLoss, epoch: BestModel.baselineEpoch, parameters: r.graph.parameters)
    }

    func runQuiet() throws -> TrainingResult {
        let saved = log
        log = { _ in }
        defer { log = saved }
        return try run()
    }

    /// The log line of a finished epoch.
    func epochLine(_ rec: EpochRecord, eta: Double) -> String {
        var line = "epoch \(rec.epoch)/\(config.epochs)  loss \(fmt(rec.trainLoss, 4))  acc \(fmt(rec.trainAccuracy * 100, 1))%"
        if let vl = rec.valLoss, let va = rec.valAccuracy { line += "  val_loss \(fmt(vl, 4))  val_acc \(fmt(va * 100, 1))%" }
        if let auc = rec.valMacroAUC { line += "  auc \(fmt(auc, 3))" }
        if let m = rec.mmd { line += "  mmd \(fmt(m, 4))" }
        return line + "  lr \(sci(rec.headLR))  \(Int(rec.imagesPerSecond)) \(config.text ? "texts" : "img")/s  \(fmt(rec.seconds, 1))s  ETA \(Trainer.duration(eta))\(rec.cached ? "  [cached]" : "")"
    }

    static func duration(_ s: Double) -> String {
        guard s.isFinite else { return "?" }
        let t = Int(s.rounded())
        if t >= 3600 { return "\(t / 3600)h\(String(format: "%02d", (t % 3600) / 60))m" }
        if t >= 60 { return "\(t / 60)m\(String(format: "%02d", t % 60))s" }
        return "\(t)s"
    }
}
