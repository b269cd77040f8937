import Foundation
import OrderedCollections
import WconvGraph
import WconvRuntime
import WconvTensor

extension TrainingSession: ParameterAccess, GradientAccess {}

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
    /// Feature caches shared with other trainers of the same job (the guard-rail baseline,
    /// `compare`'s runs); nil: this trainer's caches are its own.
    public var featureCaches: FeatureCacheStore?
    /// Ends the run after this many epochs as if killed (after the checkpoint is written): for
    /// resume tests and `--max-epochs-this-run`.
    public var stopAfterEpoch: Int?
    /// The ranks of a data-parallel run (one process by default): see Distributed/.
    public var parallel = DataParallel()
    /// The penultimate features (input of the output linear), for MMD.
    public private(set) var featureValue: String?
    public let preprocessing: Preprocessing
    let inputName: String
    /// Every graph input (a text model's token ids, attention mask and token types).
    let graphInputNames: [String]
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
        self.graphInputNames = source.inputs.map(\.name)
        self.outputName = out.name
        self.logitsName = Trainer.logitsValue(source)
        self.classes = train.classes
        self.augment = augment ?? DataFit.defaultAugment(mode: config.mode, trainCount: train.count)
        if source.preprocessing == nil && !(train is TokenizedTextSet) {
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
                           channelStats: train is TokenizedTextSet ? nil : Trainer.channelStats(train, preprocessing: preprocessing, seed: config.seed))
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

    var session: TrainingSession?
    /// The inference plan validation runs over `session`'s parameters (Trainer+Evaluation).
    var validationPlan: (training: TrainingSession, inference: InferenceSession)?
    var sessionKey: String?
    var optimizer: Optimizer?
    var cut: GraphCut.Split?
    var caches: [String: FeatureCache] = [:]   // "train"/"val"/"target" for the current cut
    var cachedCut: String?
    /// Validation batches decoded once per run when small enough, with the shard they cover
    /// (`forEachValidationBatch`).
    var decodedValidation: (part: Range<Int>, batches: [Batch])?
    /// Whether `run` ends with the validation metrics of the kept weights (the guard-rail baseline's
    /// run needs only its epochs' scores).
    var finalEvaluation = true
    var history: [EpochRecord] = []
    var globalStep = 0
    /// The optimizer state of the checkpoint `run(resume:)` continues from.
    var resumedOptimizerState = OrderedDictionary<String, Tensor>()
    var baseline: Double?
    var best: BestModel?
    /// Weights after the last completed epoch, kept only without validation data (what a NaN
    /// guard hands back when there is no best epoch to fall back on).
    var lastCompleted: (epoch: Int, parameters: OrderedDictionary<String, Tensor>)?

}
