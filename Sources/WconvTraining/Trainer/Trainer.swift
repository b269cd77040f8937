#if canImport(Glibc)
import Glibc
#else
import Darwin
#endif
import Foundation
import OrderedCollections
import WconvGraph
import WconvRuntime
import WconvTensor

extension TrainingSession: ParameterAccess {}

/// One epoch's figures.
public struct EpochRecord: Codable, Sendable {
    public var epoch: Int
    public var trainLoss: Double
    public var trainAccuracy: Double
    public var valLoss: Double?
    public var valAccuracy: Double?
    public var valMacroAUC: Double?
    public var headLR: Double
    public var seconds: Double
    public var imagesPerSecond: Double
    public var trainableGroups: [String]
    public var mmd: Double?
    public var cached: Bool
}

/// What a finished (or stopped) run hands back.
public struct TrainingResult {
    /// The model with trained weights (best validation epoch when there is validation data).
    public var graph: ModelGraph
    public var history: [EpochRecord]
    public var metrics: ClassificationMetrics?
    public var baselineAccuracy: Double?
    /// (kind, before, after) for each MMD kind, when a target domain was given.
    public var mmd: [(kind: MMDKind, before: Double, after: Double)]
    /// Set when the run ended early: a guard rail (the epoch and the likely cause) or `--patience`.
    public var stopped: String?
    /// 0-based epoch of the best validation metric (−1: the feature-extraction baseline).
    public var bestEpoch: Int?
    /// Why the run ended early, when it did.
    public var stop: RunStop? = nil
    /// Which weights `graph` holds, e.g. "epoch 7 (best validation accuracy 84.0%)"; nil when no
    /// epoch completed (nothing worth writing).
    public var kept: String? = nil

    /// A guard rail fired (the output is still the best model seen).
    public var guardTripped: Bool { if case .guardRail = stop { return true } else { return false } }
    /// Multi-label data: the metrics of the returned model on the validation set, with the
    /// per-label thresholds of best F1 there (also recorded in the model's metadata).
    public var multiLabelMetrics: MultiLabelMetrics? = nil
}

/// The training loop over the plan: modes, frozen-feature caching, MMD, checkpoints, guard rails.
///
/// Determinism: batch order and augmentation come from (seed, epoch, sample) (DataLoader), dropout
/// masks from (seed, epoch), the head init from the seed; the runtime is deterministic for a fixed
/// thread count. So the same `--seed` and `--threads` give bit-identical weights, and `--resume`
/// from an epoch checkpoint continues exactly as if never interrupted.
public final class Trainer {
    public let config: TrainingConfig
    public internal(set) var graph: ModelGraph
    public internal(set) var plan: TrainingPlan
    public let classes: [String]
    public let train: any LabelledDataset
    public let val: (any LabelledDataset)?
    public let target: (any LabelledDataset)?
    public var augment: Bool
    public var checkpointDir: String?
    public var computeBaseline = true
    /// Accuracy drop below the baseline that trips the fine-tuning guard (see `BaselineGuard`).
    public var baselineMargin = 0.02
    public var log: (String) -> Void
    public var progress: ((Int, Int, Double) -> Void)?
    public var cacheMemoryLimit = FeatureCache.defaultMemoryLimit
    /// Ends the run after this many epochs as if killed (after the checkpoint is written): for
    /// resume tests and `--max-epochs-this-run`.
    public var stopAfterEpoch: Int?
    /// The ranks of a data-parallel run (one process by default): see Distributed/.
    public var parallel = DataParallel()
    /// The penultimate features (input of the output linear), for MMD.
    public private(set) var featureValue: String?
    public let preprocessing: Preprocessing
    let inputName: String
    let outputName: String
    /// The value trained against: the output, or the input of a final softmax (Keras-style heads
    /// end in softmax; cross-entropy needs the logits before it).
    let logitsName: String
    let criterion: CrossEntropyLoss
    /// Set for multi-label data (BCE-with-logits instead of `criterion`).
    let multiLabel: MultiLabelObjective?

    public init(graph original: ModelGraph, config: TrainingConfig, train: any LabelledDataset, val: (any LabelledDataset)?,
                target: (any LabelledDataset)? = nil, modelName: String = "model", augment: Bool? = nil,
                log: @escaping (String) -> Void = { FileHandle.standardError.write(Data(($0 + "\n").utf8)) }) throws {
        let source = train.isMultiLabel ? MultiLabelObjective.logitsGraph(original) : original
        guard !source.isWeightsOnly else {
            throw WconvError.invalid("\(modelName) holds weights only (no graph): its architecture was not recognised, so it cannot be trained; import it from ONNX/Keras or a recognised architecture")
        }
        guard let inp = source.inputs.first, let out = source.outputs.first else { throw WconvError.invalid("\(modelName): the graph has no input or output") }
        self.config = config
        self.train = train
        self.val = val
        self.target = target
        self.log = log
        self.inputName = inp.name
        self.outputName = out.name
        self.logitsName = Trainer.logitsValue(source)
        self.classes = train.classes
        self.augment = augment ?? DataFit.defaultAugment(mode: config.mode, trainCount: train.count)
        if source.preprocessing == nil {
            log("warning: \(modelName) carries no preprocessing metadata; using ImageNet's (resize 256, crop 224, mean/std of ImageNet)")
        }
        preprocessing = source.preprocessing ?? .imagenet
        var g = source
        if config.mode == .scratch { g = Reinitialise.all(g, seed: config.seed) }
        if config.head == "new" {
            let r = try HeadReplacement.replace(g, classes: train.classes, dropout: config.dropout, seed: config.seed)
            g = r.graph
            featureValue = r.featureValue
        } else {
            g.labels = train.classes
            if let hn = LayerGrouping.findHeadNode(g), let node = g.nodes.first(where: { $0.name == hn }) { featureValue = node.inputs.first }
        }
        graph = g
        plan = try TrainingPlan(graph: g, config: config, classes: train.classes, modelName: modelName)
        plan.multiLabel = train.isMultiLabel
        try plan.checkData(headOutputs: HeadReplacement.outputSize(source), dataClasses: train.classes.count,
                           channelStats: Trainer.channelStats(train, preprocessing: preprocessing, seed: config.seed))
        multiLabel = try MultiLabelObjective(config: config, train: train, val: val)
        switch config.classWeights {
        case "none": criterion = CrossEntropyLoss(labelSmoothing: Float(config.labelSmoothing))
        case "auto":
            criterion = CrossEntropyLoss(weights: try CrossEntropyLoss.autoWeights(labels: train.labels, classCount: classes.count, classNames: classes),
                                         labelSmoothing: Float(config.labelSmoothing))
        default:
            let w = config.classWeights.split(separator: ",").compactMap { Float($0.trimmingCharacters(in: .whitespaces)) }
            guard w.count == classes.count, w.allSatisfy({ $0 >= 0 && $0.isFinite }) else {
                throw WconvError(.usage, "--class-weights needs \(classes.count) non-negative numbers (one per class: \(classes.joined(separator: ", "))), got '\(config.classWeights)'")
            }
            criterion = CrossEntropyLoss(weights: w, labelSmoothing: Float(config.labelSmoothing))
        }
        if config.patience != nil && val == nil { throw WconvError(.usage, "--patience needs validation data (--val DIR or --val-split f) to tell when the run stops improving") }
        if config.mmdWeight > 0 && target == nil { throw WconvError(.usage, "--mmd-weight needs --adapt-target DIR (unlabeled target-domain images)") }
        if config.mmdWeight > 0 && config.mode == .featureExtract {
            plan.warnings.append("MMD in feature-extract mode cannot move the (frozen) penultimate features, so it has no effect; use --mode finetune or progressive for domain adaptation.")
        }
    }

    /// The output, or the input of the softmax that produces it.
    static func logitsValue(_ g: ModelGraph) -> String {
        guard let out = g.outputs.first?.name else { return "" }
        if let n = g.nodes.last(where: { $0.outputs.contains(out) }), n.op == .softmax, let x = n.inputs.first { return x }
        return out
    }

    /// Per-channel mean/std of up to 32 training images after the model's normalisation.
    static func channelStats(_ data: any LabelledDataset, preprocessing: Preprocessing, seed: UInt64) -> [(mean: Double, std: Double)]? {
        let t = ImageTransform(mode: .eval, preprocessing: preprocessing)
        var sums = [Double](repeating: 0, count: 3), sq = [Double](repeating: 0, count: 3)
        var n = 0
        let step = max(1, data.count / 32)
        var buf = [Float](repeating: 0, count: t.sampleSize)
        let plane = t.outputHeight * t.outputWidth
        for i in stride(from: 0, to: data.count, by: step).prefix(32) {
            guard let raw = try? data.load(i) else { continue }
            var rng = RNG(seed: seed)
            switch raw {
            case .image(let img):
                guard (try? buf.withUnsafeMutableBufferPointer({ try t.apply(img, rng: &rng, into: $0) })) != nil else { continue }
            case .tensor(let v, _):
                guard v.count == buf.count else { continue }
                buf = v
            }
            for c in 0..<3 { for k in 0..<plane { let v = Double(buf[c * plane + k]); sums[c] += v; sq[c] += v * v } }
            n += plane
        }
        guard n > 0 else { return nil }
        return (0..<3).map { c in
            let m = sums[c] / Double(n)
            return (m, max(0, sq[c] / Double(n) - m * m).squareRoot())
        }
    }

    // MARK: state of a run

    private var session: TrainingSession?
    private var sessionKey: String?
    private var optimizer: Optimizer?
    private var cut: GraphCut.Split?
    private var caches: [String: FeatureCache] = [:]   // "train"/"val"/"target" for the current cut
    private var cachedCut: String?
    var history: [EpochRecord] = []
    private var globalStep = 0
    /// The optimizer state of the checkpoint `run(resume:)` continues from.
    private var resumedOptimizerState = OrderedDictionary<String, Tensor>()
    private var baseline: Double?
    var best: BestModel?
    /// Weights after the last completed epoch, kept only without validation data (what a NaN
    /// guard hands back when there is no best epoch to fall back on).
    var lastCompleted: (epoch: Int, parameters: OrderedDictionary<String, Tensor>)?

    var evalTransform: ImageTransform { ImageTransform(mode: .eval, preprocessing: preprocessing) }
    var trainTransform: ImageTransform {
        var t = ImageTransform(mode: augment ? .train : .eval, preprocessing: preprocessing)
        t.crop = DataFit.trainCrop(config.trainCrop, preprocessing: preprocessing)
        return t
    }

    /// Copies the session's current values back into `graph`.
    func syncGraph() {
        guard let s = session else { return }
        for (k, v) in s.exportParameters() where graph.parameters[k] != nil { graph.parameters[k] = v }
    }

    /// Builds (or keeps) the session for epoch `e`: trainable set, BN modes, and the cached cut.
    func prepare(epoch e: Int) throws {
        let trainable = plan.trainableParameters(epoch: e)
        let bn = plan.batchNormModes(epoch: e)
        let key = trainable.sorted().joined(separator: ",") + "|" + bn.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: ",")
        if key == sessionKey, session != nil { return }
        syncGraph()
        var useGraph = graph
        cut = nil
        let frozenExists = graph.parameters.keys.contains { !trainable.contains($0) && !graph.buffers.contains($0) }
        if !augment, frozenExists, let v = GraphCut.cutValue(graph, trainable: trainable), v != inputName {
            // Rank of the cut value: run one eval sample through the front to learn it.
            if let split = try splitWithRank(at: v) {
                cut = split
                useGraph = split.back
                if cachedCut != v {
                    caches = [:]
                    let t0 = Date()
                    caches["train"] = try buildCache(split.front, data: train, name: "train")
                    if let val { caches["val"] = try buildCache(split.front, data: val, name: "val") }
                    if let target, config.mmdWeight > 0 { caches["target"] = try buildCache(split.front, data: target, name: "target") }
                    cachedCut = v
                    let mb = caches.values.reduce(0) { $0 + $1.byteCount } >> 20
                    log("cached frozen features at '\(v)' (\(caches["train"]!.sampleShape), \(mb) MB\(caches.values.contains { $0.onDisk } ? ", memory-mapped on disk" : "")) in \(fmt(Date().timeIntervalSince(t0), 1))s; later epochs run only the trainable part")
                }
            }
        }
        let nodeNames = Set(useGraph.nodes.map(\.name))
        session = try TrainingSession(graph: useGraph, trainable: trainable.filter { useGraph.parameters[$0] != nil },
                                      bnMode: bn.filter { nodeNames.contains($0.key) }, threads: config.threads)
        session?.batchNormSync = parallel.batchNormSync
        sessionKey = key
        let groups = plan.parameterGroups(epoch: e)
        if let opt = optimizer {
            opt.rebuild(groups: groups, keepState: config.keepOptimizerStateOnUnfreeze)
        } else {
            optimizer = Optimizer(kind: config.optimizerKind, groups: groups)
        }
    }

    func splitWithRank(at v: String) throws -> GraphCut.Split? {
        guard var probe = GraphCut.split(graph, at: v, rank: 1) else { return nil }
        probe.front.outputs = [ValueInfo(name: v, shape: [nil])]
        // Learn the rank from one sample.
        let s = try InferenceSession(graph: probe.front, threads: config.threads)
        let loader = DataLoader(dataset: train, transform: evalTransform, batchSize: 1, shuffle: false, seed: config.seed)
        let b = try loader.makeBatch([0], epoch: 0)
        guard let out = try s.run([inputName: b.tensor])[v] else { return nil }
        return GraphCut.split(graph, at: v, rank: out.rank)
    }

    func buildCache(_ front: ModelGraph, data: any LabelledDataset, name: String) throws -> FeatureCache {
        let s = try InferenceSession(graph: front, threads: config.threads)
        // Under data parallelism each rank computes its shard (sample 0 alone, to learn the shape,
        // when its shard is empty) and `shareCache` fills in the rest.
        let part = parallel.shardRange(data.count)
        let mine: any LabelledDataset = parallel.isDistributed ? SubsetDataset(data, indices: part.isEmpty ? [0] : Array(part)) : data
        let loader = DataLoader(dataset: mine, transform: evalTransform, batchSize: max(1, min(config.batchSize, 64)), shuffle: false, seed: config.seed, workers: 1)
        let stream = loader.batches(epoch: 0)
        var cache: FeatureCache?
        var k = part.isEmpty ? data.count : part.lowerBound
        while let b = try stream.next() {
            guard let out = try s.run([inputName: b.tensor])[front.outputs[0].name] else { throw WconvError(.runtime, "frozen part produced no output") }
            if cache == nil { cache = try FeatureCache(count: data.count, sampleShape: Array(out.shape.dropFirst()), labels: data.labels, memoryLimit: cacheMemoryLimit) }
            let per = cache!.perSample
            try out.withContiguousBytes { raw in
                let src = raw.bindMemory(to: Float.self)
                for j in 0..<b.count where k + j < data.count {
                    let dst = cache!.sample(k + j)
                    guard dst.count == per else { throw WconvError(.runtime, "feature size changed within \(name)") }
                    _ = dst.initialize(from: UnsafeBufferPointer(rebasing: src[(j * per)..<((j + 1) * per)]))
                }
            }
            k += b.count
        }
        guard let c = cache else { throw WconvError.invalid("the \(name) set is empty") }
        try shareCache(c, name: name)
        return c
    }

    // MARK: the loop

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
            var line = "epoch \(e + 1)/\(config.epochs)  loss \(fmt(rec.trainLoss, 4))  acc \(fmt(rec.trainAccuracy * 100, 1))%"
            if let vl = rec.valLoss, let va = rec.valAccuracy { line += "  val_loss \(fmt(vl, 4))  val_acc \(fmt(va * 100, 1))%" }
            if let auc = rec.valMacroAUC { line += "  auc \(fmt(auc, 3))" }
            if let m = rec.mmd { line += "  mmd \(fmt(m, 4))" }
            let elapsed = Date().timeIntervalSince(tStart)
            let done = e + 1 - startEpoch
            let eta = elapsed / Double(done) * Double(config.epochs - e - 1)
            line += "  lr \(sci(rec.headLR))  \(Int(rec.imagesPerSecond)) img/s  \(fmt(rec.seconds, 1))s  ETA \(Trainer.duration(eta))\(rec.cached ? "  [cached]" : "")"
            log(line)
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
            multiLabelMetrics = try Trainer.evaluateMultiLabel(graph: graph, data: val, threads: config.threads, batchSize: min(64, config.batchSize), bestOnData: true)
        } else if let val, parallel.isRoot { metrics = try evaluate(graph: graph, data: val, classes: classes) }
        var out = graph
        if multiLabel != nil { MultiLabelObjective.annotate(&out, labels: classes, thresholds: multiLabelMetrics?.thresholds) }
        out.provenance.notes["wconv.training.plan"] = plan.jsonString()
        out.provenance.notes["wconv.training.seed"] = String(config.seed)
        if let d = try? JSONEncoder().encode(history) { out.provenance.notes["wconv.training.history"] = String(decoding: d, as: UTF8.self) }
        return TrainingResult(graph: out, history: history, metrics: metrics, baselineAccuracy: baseline,
                              mmd: mmdReport.map { (kind: $0.0, before: $0.1, after: $0.2) }, stopped: stop?.message, bestEpoch: best?.epoch,
                              stop: stop, kept: kept,
                              multiLabelMetrics: multiLabelMetrics)
    }

    struct StopTraining: Error { var message: String }

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
        t.parallel = parallel
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

    func trainEpoch(_ e: Int) throws -> EpochRecord {
        guard let session, let optimizer else { throw WconvError(.runtime, "trainer not prepared") }
        let t0 = Date()
        session.seedDropout((config.seed &* 0x9E37_79B9_7F4A_7C15 &+ UInt64(e)) ^ parallel.dropoutSalt)
        let spe = stepsPerEpoch
        let schedule = try config.lrSchedule(stepsPerEpoch: spe)
        var lossSum = 0.0, correct = 0.0, seen = 0, mmdSum = 0.0, mmdCount = 0
        let inName = cut?.value ?? inputName
        let targetLoader = target.map { DataLoader(dataset: $0, transform: trainTransform, batchSize: config.batchSize, shuffle: true, seed: config.seed ^ 0x7A26_E7) }
        if parallel.isDistributed { targetLoader?.shard = { [parallel] in parallel.shard($0) } }
        var targetStream = targetLoader?.batches(epoch: e)
        var targetOrder = targetLoader?.order(epoch: e) ?? []
        var targetPos = 0
        func nextTarget(_ n: Int) throws -> Tensor? {
            guard config.mmdWeight > 0, let tl = targetLoader else { return nil }
            if let cache = caches["target"] {
                var idx: [Int] = []
                for _ in 0..<n { idx.append(targetOrder[targetPos % targetOrder.count]); targetPos += 1 }
                return cache.batch(parallel.shard(idx))
            }
            if let b = try targetStream?.next() { return b.tensor }
            targetStream = tl.batches(epoch: e + 1_000_000 * (targetPos + 1))
            targetOrder = []
            targetPos += 1
            return try targetStream?.next()?.tensor
        }
        // Under data parallelism MMD is of the global batch: features are gathered (distributedMMD).
        let mmdAcrossRanks = parallel.isDistributed && config.mmdWeight > 0 && target != nil && featureValue != nil
        func step(_ x: Tensor, _ labels: [Int], rows: [Int], globalCount: Int) throws {
            optimizer.applySchedule(schedule, step: globalStep)
            let ns = labels.count
            // Every rank draws the global target batch's stream and keeps its shard of it.
            let t = try nextTarget(globalCount)
            let nt = t?.shape[0] ?? 0
            // This rank's shard of a short last batch can be empty; it still joins the reduction.
            if ns + nt == 0 || (ns == 0 && !mmdAcrossRanks) {
                if let v = try stepWithoutSamples(session, optimizer, epoch: e, sampleShape: Array(x.shape.dropFirst()), input: inName, mmd: mmdAcrossRanks) {
                    mmdSum += v; mmdCount += 1
                }
                globalStep += 1
                return
            }
            var input = x
            if let t { input = Tensor(shape: [ns + nt] + Array(x.shape.dropFirst()), floats: x.floats() + t.floats()) }
            let out = try session.forward([inName: input], training: true)
            guard let logits = logitsName == outputName ? out[outputName] : session.activation(named: logitsName) else {
                throw WconvError(.runtime, "the model produced no '\(logitsName)'")
            }
            let C = classes.count
            guard logits.numel == (ns + nt) * C else { throw WconvError(.runtime, "logits \(logits.shape) do not match \(ns + nt) samples × \(C) classes") }
            let lv = logits.floats()
            var grad = [Float](repeating: 0, count: lv.count)
            var mlCorrect: Double?
            // A rank holding only target samples (MMD across ranks) has no classification term.
            var loss = try ns == 0 ? 0 : lv.withUnsafeBufferPointer { lp in
                try grad.withUnsafeMutableBufferPointer { gp in
                    let (l, g) = (UnsafeBufferPointer(rebasing: lp[0..<(ns * C)]), UnsafeMutableBufferPointer(rebasing: gp[0..<(ns * C)]))
                    if let ml = multiLabel {
                        let r = try ml.step(logits: l, rows: rows, gradient: g)
                        mlCorrect = r.correct
                        return r.loss
                    }
                    return try criterion(logits: l, targets: labels, classes: C, gradient: g)
                }
            }
            var grads: [String: Tensor] = [:]
            var total = loss
            if mmdAcrossRanks, let fv = featureValue, let feats = session.activation(named: fv) {
                let m = try distributedMMD(features: feats.floats(), ns: ns, nt: nt, weight: lossWeight(labels: labels, rows: rows))
                for i in grad.indices { grad[i] *= Float(m.lossScale) }
                grads[fv] = Tensor(shape: feats.shape, floats: m.gradient)
                loss *= m.lossScale
                total = loss + config.mmdWeight * m.value
                mmdSum += m.value; mmdCount += 1
            } else if nt > 0, let fv = featureValue, let feats = session.activation(named: fv) {
                let d = feats.numel / (ns + nt)
                let f = feats.floats()
                let r = MMD.compute(config.mmdKind, source: Array(f[0..<(ns * d)]), target: Array(f[(ns * d)...]), dim: d)
                let lam = Float(config.mmdWeight)
                grads[fv] = Tensor(shape: feats.shape, floats: (r.gradSource + r.gradTarget).map { $0 * lam })
                total += config.mmdWeight * r.value
                mmdSum += r.value; mmdCount += 1
            }
            grads[logitsName] = Tensor(shape: logits.shape, floats: grad)
            // Ranks decide together, on the global loss, after the reduction.
            guard total.isFinite || parallel.isDistributed else { throw lossNotFinite(total, epoch: e) }
            parallel.batchNormSync?.localWeight = mmdAcrossRanks ? 1 : lossWeight(labels: labels, rows: rows)
            var g = try session.backward(outputGradients: grads)
            if parallel.isDistributed {
                (g, loss) = try reduceStep(g, session: session, labels: labels, rows: rows, loss: loss, objective: total, epoch: e,
                                           weight: mmdAcrossRanks ? 1 : nil)
            }
            try optimizer.step(parameters: session, gradients: g)
            globalStep += 1
            lossSum += loss * Double(ns)
            seen += ns
            if let c = mlCorrect { correct += c }
            for i in 0..<ns where mlCorrect == nil {
                var bi = 0
                for c in 1..<C where lv[i * C + c] > lv[i * C + bi] { bi = c }
                if bi == labels[i] { correct += 1 }
            }
            progress?(seen, train.count, lossSum / Double(max(seen, 1)))
        }
        if let cache = caches["train"], cut != nil {
            var order = Array(0..<cache.count)
            if config.shuffle {
                var rng = RNG(seed: config.seed, keys: UInt64(e), 0)
                rng.shuffle(&order)
            }
            var s = 0
            while s < order.count {
                let global = Array(order[s..<min(s + config.batchSize, order.count)])
                let idx = parallel.shard(global)
                try step(cache.batch(idx), idx.map { cache.labels[$0] }, rows: idx, globalCount: global.count)
                s += config.batchSize
            }
        } else {
            let loader = DataLoader(dataset: train, transform: trainTransform, batchSize: config.batchSize, shuffle: config.shuffle, seed: config.seed, workers: 1)
            if parallel.isDistributed { loader.shard = { [parallel] in parallel.shard($0) } }
            let stream = loader.batches(epoch: e)
            var k = 0
            while let b = try stream.next() {
                try step(b.tensor, b.labels, rows: b.indices, globalCount: min(config.batchSize, train.count - k * config.batchSize))
                k += 1
            }
        }
        if parallel.isDistributed { (lossSum, correct, seen) = try sumEpochFigures(lossSum, correct, seen) }
        let trainSeconds = Date().timeIntervalSince(t0)
        var rec = EpochRecord(epoch: e + 1, trainLoss: lossSum / Double(max(seen, 1)), trainAccuracy: correct / Double(max(seen, 1)),
                              valLoss: nil, valAccuracy: nil, valMacroAUC: nil, headLR: optimizer.groups.first { $0.name.hasPrefix("head") }?.lr ?? config.lr,
                              seconds: 0, imagesPerSecond: Double(seen) / max(trainSeconds, 1e-9), trainableGroups: plan.epochs[e].trainable,
                              mmd: mmdCount > 0 ? mmdSum / Double(mmdCount) : nil, cached: cut != nil)
        if val != nil {
            let m = try evaluateCurrent()
            rec.valLoss = m.loss
            rec.valAccuracy = m.accuracy
            rec.valMacroAUC = m.macroAUC
        }
        rec.seconds = Date().timeIntervalSince(t0)
        return rec
    }

    var stepsPerEpoch: Int { max(1, (train.count + config.batchSize - 1) / config.batchSize) }

    func lossNotFinite(_ total: Double, epoch e: Int) -> StopTraining {
        StopTraining(message: "epoch \(e + 1), step \(globalStep + 1): the loss became \(total). Likely cause: a learning rate too high for these weights (head \(sci(config.lr))) or inputs far from the normalisation the model expects. Fix: lower --lr (and --backbone-lr) by 10×, add --schedule warmup-cosine, or check the normalisation warning above.")
    }

    /// Validation with the current session (cached features when the cut is active).
    func evaluateCurrent() throws -> (loss: Double?, accuracy: Double, macroAUC: Double?) {
        guard let session, let val else { throw WconvError(.runtime, "no validation data") }
        var scores: [Float] = [], targets: [Int] = [], rows: [Int] = []
        let C = classes.count
        let part = parallel.shardRange(val.count)
        if let cache = caches["val"], let cut {
            var s = part.lowerBound
            while s < part.upperBound {
                let idx = Array(s..<min(s + 64, part.upperBound))
                let out = try session.forward([cut.value: cache.batch(idx)], training: false)
                scores += try logitsOf(out, session)
                targets += idx.map { cache.labels[$0] }
                rows += idx
                s += 64
            }
        } else {
            let loader = DataLoader(dataset: val, transform: evalTransform, batchSize: min(config.batchSize, 64), shuffle: false, seed: config.seed)
            let stream = loader.batches(epoch: 0, only: part)
            while let b = try stream.next() {
                let out = try session.forward([inputName: b.tensor], training: false)
                scores += try logitsOf(out, session)
                targets += b.labels
                rows += b.indices
            }
        }
        if parallel.isDistributed {
            scores = try parallel.gather(scores, per: C, total: val.count)
            targets = val.labels
            rows = Array(0..<val.count)
        }
        if let ml = multiLabel { return try ml.figures(logits: scores, rows: rows) }
        let m = try Trainer.metrics(logits: scores, targets: targets, classes: classes, criterion: criterion, C: C)
        return (m.loss, m.accuracy, m.macroAUC)
    }

    func logitsOf(_ out: [String: Tensor], _ session: TrainingSession) throws -> [Float] {
        guard let t = logitsName == outputName ? out[outputName] : session.activation(named: logitsName) else {
            throw WconvError(.runtime, "the model produced no '\(logitsName)'")
        }
        return t.floats()
    }

    static func metrics(logits: [Float], targets: [Int], classes: [String], criterion: CrossEntropyLoss, C: Int, probabilities: Bool = false) throws -> ClassificationMetrics {
        if probabilities {
            // The graph ends in softmax: scores are probabilities already; loss = mean −log p_y.
            var loss = 0.0
            for (i, y) in targets.enumerated() { loss -= _log(max(Double(logits[i * C + y]), 1e-12)) }
            return ClassificationMetrics(scores: logits, targets: targets, classes: classes, loss: loss / Double(max(targets.count, 1)))
        }
        let loss = try criterion.loss(logits: logits, targets: targets, classes: C).loss
        var probs = logits
        for i in 0..<targets.count {
            var mx = -Float.infinity
            for c in 0..<C { mx = max(mx, probs[i * C + c]) }
            var s: Float = 0
            for c in 0..<C { probs[i * C + c] = exp(probs[i * C + c] - mx); s += probs[i * C + c] }
            for c in 0..<C { probs[i * C + c] /= s }
        }
        return ClassificationMetrics(scores: probs, targets: targets, classes: classes, loss: loss)
    }

    /// Eval-mode metrics of a whole graph on a dataset (used after training and by `wconv eval`).
    public static func evaluate(graph: ModelGraph, data: any LabelledDataset, classes: [String], threads: Int = 2, batchSize: Int = 32) throws -> ClassificationMetrics {
        let (scores, rows) = try outputs(graph: graph, data: data, width: classes.count, threads: threads, batchSize: batchSize)
        let labels = data.labels
        return try metrics(logits: scores, targets: rows.map { labels[$0] }, classes: classes, criterion: CrossEntropyLoss(), C: classes.count,
                           probabilities: logitsValue(graph) != graph.outputs.first?.name)
    }

    /// The graph's output (eval mode) for every sample, `width` values each, and the samples' rows.
    static func outputs(graph: ModelGraph, data: any LabelledDataset, width: Int, threads: Int, batchSize: Int) throws -> (values: [Float], rows: [Int]) {
        guard let inp = graph.inputs.first?.name, let outName = graph.outputs.first?.name else { throw WconvError.invalid("the graph has no input or output") }
        let s = try InferenceSession(graph: graph, threads: threads)
        let loader = DataLoader(dataset: data, transform: ImageTransform(mode: .eval, preprocessing: graph.preprocessing ?? .imagenet), batchSize: batchSize, shuffle: false, seed: 0)
        let stream = loader.batches(epoch: 0)
        var values: [Float] = [], rows: [Int] = []
        while let b = try stream.next() {
            guard let o = try s.run([inp: b.tensor])[outName] else { throw WconvError(.runtime, "no output '\(outName)'") }
            guard o.numel == b.count * width else {
                throw WconvError.invalid("the model outputs \(o.shape) but the data has \(width) \(data.isMultiLabel ? "labels" : "classes"); evaluate on data with the model's \(data.isMultiLabel ? "labels" : "classes")")
            }
            values += o.floats()
            rows += b.indices
        }
        return (values, rows)
    }

    func evaluate(graph: ModelGraph, data: any LabelledDataset, classes: [String]) throws -> ClassificationMetrics {
        try Trainer.evaluate(graph: graph, data: data, classes: classes, threads: config.threads, batchSize: min(64, config.batchSize))
    }

    /// Source/target MMD of the penultimate features (eval mode, up to 256 samples each).
    func measureMMD() throws -> [MMDKind: Double] {
        syncGraph()
        guard let fv = featureValue, let target, var split = GraphCut.split(graph, at: fv, rank: 2) else { return [:] }
        split.front.outputs = [ValueInfo(name: fv, shape: [nil, nil])]
        let s = try InferenceSession(graph: split.front, threads: config.threads)
        func feats(_ d: any LabelledDataset) throws -> ([Float], Int) {
            let idx = Array(0..<min(d.count, 256))
            let loader = DataLoader(dataset: d, transform: evalTransform, batchSize: 32, shuffle: false, seed: 0)
            var out: [Float] = []
            var s0 = 0
            while s0 < idx.count {
                let b = try loader.makeBatch(Array(idx[s0..<min(s0 + 32, idx.count)]), epoch: 0)
                out += try s.run([inputName: b.tensor])[fv]!.floats()
                s0 += 32
            }
            return (out, out.count / max(idx.count, 1))
        }
        let (sf, d) = try feats(train)
        let (tf, _) = try feats(target)
        return [.mean: MMD.compute(.mean, source: sf, target: tf, dim: d).value,
                .gaussian: MMD.compute(.gaussian, source: sf, target: tf, dim: d).value]
    }

    // MARK: checkpoints

    struct CheckpointState: Codable {
        var epoch: Int
        var globalStep: Int
        var config: TrainingConfig
        var history: [EpochRecord]
        var baseline: Double?
        var classes: [String]
        var bestEpoch: Int?
        var bestAccuracy: Double?
        var bestLoss: Double?
    }

    /// `dir/last.safetensors` (atomic): model (`model.*`), optimizer (`optim.*`), run state.
    func writeCheckpoint(dir: String, epoch: Int) throws {
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        syncGraph()
        var t = OrderedDictionary<String, Tensor>()
        for (k, v) in graph.parameters { t["model." + k] = v }
        if let b = best { for (k, v) in b.parameters { t["best." + k] = v } }
        for (k, v) in optimizer?.exportState() ?? [:] { t["optim." + k] = v }
        let st = CheckpointState(epoch: epoch, globalStep: globalStep, config: config, history: history, baseline: baseline,
                                 classes: classes, bestEpoch: best?.epoch, bestAccuracy: best?.score, bestLoss: best?.loss)
        let json = String(decoding: try JSONEncoder().encode(st), as: UTF8.self)
        try CheckpointFile.write(t, metadata: ["wconv.checkpoint": json], to: dir + "/last.safetensors")
    }

    /// Restores model, history, counters and the optimizer state (`resumedOptimizerState`);
    /// returns the number of completed epochs. Everything is checked before anything is taken, so a
    /// checkpoint of another run, model or class list, or a corrupt one, is refused by name.
    func loadCheckpoint(_ path: String) throws -> Int {
        let (t, meta) = try CheckpointFile.read(path: path)
        guard let js = meta["wconv.checkpoint"], let st = try? JSONDecoder().decode(CheckpointState.self, from: Data(js.utf8)) else {
            throw WconvError(.invalidInput, "not a wconv training checkpoint (no readable wconv.checkpoint metadata); pass the last.safetensors that --checkpoint-dir wrote", file: path)
        }
        guard st.epoch >= 0, st.history.count == st.epoch, st.bestEpoch.map({ $0 >= BestModel.baselineEpoch && $0 < st.epoch }) ?? true else {
            throw WconvError(.invalidInput, "the checkpoint's run state is inconsistent (epoch \(st.epoch), \(st.history.count) epochs of history, best epoch \(st.bestEpoch.map(String.init) ?? "none")): the file is corrupt", file: path)
        }
        guard st.epoch <= config.epochs else {
            throw WconvError(.usage, "the checkpoint is at epoch \(st.epoch), past --epochs \(config.epochs): pass --epochs \(st.epoch + 1) or more to train on from it (--epochs \(st.epoch) only writes its model)", file: path)
        }
        let enc = JSONEncoder()
        enc.outputFormatting = .sortedKeys
        let a = try enc.encode(st.config), b = try enc.encode(config)
        if a != b {
            var mine = config, theirs = st.config
            mine.epochs = 0; theirs.epochs = 0
            guard try enc.encode(mine) == enc.encode(theirs) else {
                throw WconvError(.usage, "the checkpoint was written with different training flags; resume with the same flags (only --epochs may grow)", file: path)
            }
        }
        guard st.classes == classes else { throw WconvError(.invalidInput, "the checkpoint's classes \(st.classes) differ from the data's \(classes)", file: path) }
        let model = try CheckpointFile.parameters(t, prefix: "model.", of: graph.parameters, path: path)
        var bestParameters = model
        if t.keys.contains(where: { $0.hasPrefix("best.") }) {
            bestParameters = try CheckpointFile.parameters(t, prefix: "best.", of: graph.parameters, path: path)
        }
        var optim = OrderedDictionary<String, Tensor>()
        for (k, v) in t where k.hasPrefix("optim.") { optim[String(k.dropFirst(6))] = v }
        do {
            try Optimizer(kind: config.optimizerKind, groups: []).importState(optim, sizes: graph.parameters.mapValues(\.numel).reduce(into: [:]) { $0[$1.key] = $1.value })
        } catch let e as WconvError { throw e.inFile(path) }
        graph.parameters = model
        if let be = st.bestEpoch, let ba = st.bestAccuracy {
            best = BestModel(score: ba, loss: st.bestLoss, epoch: be, parameters: bestParameters)
        }
        resumedOptimizerState = optim
        history = st.history
        globalStep = st.globalStep
        baseline = st.baseline
        session = nil
        sessionKey = nil
        return st.epoch
    }

    static func duration(_ s: Double) -> String {
        guard s.isFinite else { return "?" }
        let t = Int(s.rounded())
        if t >= 3600 { return "\(t / 3600)h\(String(format: "%02d", (t % 3600) / 60))m" }
        if t >= 60 { return "\(t / 60)m\(String(format: "%02d", t % 60))s" }
        return "\(t)s"
    }
}

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
