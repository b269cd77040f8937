import Foundation
import WconvFormats
import WconvGraph
import WconvRuntime
import WconvTensor

/// How much of the network trains (the seed's three strategies, plus training from scratch).
public enum TrainingMode: String, Codable, CaseIterable, Sendable {
    /// Backbone frozen (eval-mode BN), only the (new) head trains.
    case featureExtract = "feature-extract"
    /// Everything trains, with discriminative LRs: backbone below head.
    case finetune
    /// The seed's ProgressiveUnfreezer: head only in epoch 1, then one more group per epoch from
    /// the head down; the optimizer is rebuilt for the new trainable set each time.
    case progressive
    /// Everything re-initialised and trained at one LR (the seed's "from scratch" baseline).
    case scratch

    public var isFineTuning: Bool { self == .finetune || self == .progressive }
}

/// `--bn`: what BatchNorm does while training.
public enum BatchNormPolicy: String, Codable, CaseIterable, Sendable {
    /// Batch statistics in trainable groups, frozen (eval statistics) below them — the default.
    case auto
    /// Batch statistics (and running-stat updates) in every trainable group.
    case train
    /// Eval-mode statistics everywhere; γ and β still train in trainable groups.
    case frozen
    /// Eval-mode statistics and γ, β frozen too.
    case frozenAffine = "frozen-affine"
}

/// Layer-wise learning rates over the structural groups.
public enum LayerLRRule: Codable, Equatable, Sendable {
    /// Backbone groups at `backboneLR`, the head at `lr` (discriminative, two levels).
    case discriminative
    /// The seed's `layerwise_lr`: group i of n gets base·(max/base)^(i/(n−1)), input → output.
    case geometric(base: Double, max: Double)
    /// timm's `layer_decay`: group i of n gets lr·decay^(n−1−i) (the head gets lr).
    case decay(Double)
}

/// Everything a run is configured with (the CLI's training flags).
public struct TrainingConfig: Codable, Sendable {
    public var mode: TrainingMode = .featureExtract
    public var epochs = 10
    public var batchSize = 32
    /// `sgd`, `adam` or `adamw`.
    public var optimizer = "adamw"
    public var momentum = 0.9
    public var nesterov = false
    public var betas = (0.9, 0.999)
    public var eps = 1e-8
    /// Head LR (and the single LR of feature-extract / scratch).
    public var lr = 1e-3
    /// Backbone LR in finetune/progressive; nil = lr/10.
    public var backboneLR: Double?
    public var layerLR: LayerLRRule = .discriminative
    public var weightDecay = 0.01
    /// Decay norms and biases too (off by default, as timm and the usual recipes).
    public var decayNormsAndBiases = false
    public var bn: BatchNormPolicy = .auto
    /// `constant`, `step`, `cosine`, `warmup`, `warmup-cosine`, `warmup-linear`, `onecycle`.
    public var schedule = "cosine"
    public var warmupEpochs = 1
    /// Fraction of all steps that warm up in `warmup-linear` (transformers' `warmup_ratio`, rounded up).
    public var warmupRatio = 0.1
    /// The model takes token ids (BERT family): text guard rails instead of the image ones.
    public var text = false
    /// `--max-grad-norm`: gradients scaled to this global L2 norm when above it (nil: off).
    public var maxGradNorm: Double?
    public var stepEpochs = 3
    public var stepGamma = 0.1
    public var labelSmoothing = 0.0
    /// `auto`, `none` or a comma list.
    public var classWeights = "none"
    /// Replace the head for the data's classes (`new`) or keep it (`keep`).
    public var head = "new"
    public var dropout = 0.2
    public var seed: UInt64 = 0
    public var threads = 2
    /// `--groups` user patterns.
    public var groups: String?
    public var mmdWeight = 0.0
    public var mmdKind: MMDKind = .mean
    /// Rebuild the optimizer with fresh state on unfreezing (the seed), or keep moments.
    public var keepOptimizerStateOnUnfreeze = false
    /// Shuffle the training set each epoch (seeded); off gives the dataset order, as a reference run.
    public var shuffle = true
    /// `--patience N`: stop after N epochs without a better validation metric (nil: off).
    public var patience: Int?
    /// Hand back the best validation epoch's weights (default) rather than the last epoch's.
    public var restoreBest = true
    /// `--pos-weight`, `--uncertain` (used when the data are multi-label).
    public var multiLabel = MultiLabelOptions()
    /// Random crop of training augmentation: `auto` (pad-crop for inputs ≤ 64 px, else
    /// random-resized), `random-resized` or `pad` (see `ImageTransform.Crop`).
    public var trainCrop = "auto"
    /// `--precision bf16`: mixed-precision training, validation and feature caching (TrainingSession).
    public var precision: Precision = .f32

    public init() {}

    enum CodingKeys: String, CodingKey, CaseIterable {
        case multiLabel
        case mode, epochs, batchSize, optimizer, momentum, nesterov, eps, lr, backboneLR, layerLR, weightDecay,
             decayNormsAndBiases, bn, schedule, warmupEpochs, stepEpochs, stepGamma, labelSmoothing, classWeights,
             head, dropout, seed, threads, groups, mmdWeight, mmdKind, keepOptimizerStateOnUnfreeze, beta1, beta2, shuffle,
             patience, restoreBest, trainCrop, warmupRatio, text, maxGradNorm, precision
    }

    /// One member's key and path: the encoder and the decoder walk the one list below, so a new
    /// member is added in one place. Absent keys keep the member's default (checkpoints written
    /// before the member existed); nil optionals are left out.
    private struct Field {
        let decode: (KeyedDecodingContainer<CodingKeys>, inout TrainingConfig) throws -> Void
        let encode: (TrainingConfig, inout KeyedEncodingContainer<CodingKeys>) throws -> Void
        init<T: Codable>(_ key: CodingKeys, _ path: WritableKeyPath<TrainingConfig, T>) {
            decode = { c, cfg in if let v = try c.decodeIfPresent(T.self, forKey: key) { cfg[keyPath: path] = v } }
            encode = { cfg, c in try c.encode(cfg[keyPath: path], forKey: key) }
        }
        init<T: Codable>(_ key: CodingKeys, _ path: WritableKeyPath<TrainingConfig, T?>) {
            decode = { c, cfg in cfg[keyPath: path] = try c.decodeIfPresent(T.self, forKey: key) }
            encode = { cfg, c in try c.encodeIfPresent(cfg[keyPath: path], forKey: key) }
        }
    }

    private static let fields: [Field] = [
        Field(.multiLabel, \.multiLabel), Field(.mode, \.mode), Field(.epochs, \.epochs), Field(.batchSize, \.batchSize),
        Field(.optimizer, \.optimizer), Field(.momentum, \.momentum), Field(.nesterov, \.nesterov), Field(.eps, \.eps), Field(.lr, \.lr),
        Field(.backboneLR, \.backboneLR), Field(.layerLR, \.layerLR), Field(.weightDecay, \.weightDecay),
        Field(.decayNormsAndBiases, \.decayNormsAndBiases), Field(.bn, \.bn), Field(.schedule, \.schedule),
        Field(.warmupEpochs, \.warmupEpochs), Field(.stepEpochs, \.stepEpochs), Field(.stepGamma, \.stepGamma),
        Field(.labelSmoothing, \.labelSmoothing), Field(.classWeights, \.classWeights), Field(.head, \.head), Field(.dropout, \.dropout),
        Field(.seed, \.seed), Field(.threads, \.threads), Field(.groups, \.groups), Field(.mmdWeight, \.mmdWeight), Field(.mmdKind, \.mmdKind),
        Field(.keepOptimizerStateOnUnfreeze, \.keepOptimizerStateOnUnfreeze), Field(.beta1, \.betas.0), Field(.beta2, \.betas.1),
        Field(.shuffle, \.shuffle), Field(.patience, \.patience), Field(.restoreBest, \.restoreBest), Field(.trainCrop, \.trainCrop),
        Field(.warmupRatio, \.warmupRatio), Field(.text, \.text), Field(.maxGradNorm, \.maxGradNorm),
        Field(.precision, \.precision),
    ]

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        for f in Self.fields { try f.decode(c, &self) }
    }
    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        for f in Self.fields { try f.encode(self, &c) }
    }

    public var optimizerKind: OptimizerKind {
        switch optimizer {
        case "sgd": return .sgd(momentum: momentum, dampening: 0, nesterov: nesterov)
        case "adam": return .adam(beta1: betas.0, beta2: betas.1, eps: eps, decoupled: false)
        default: return .adam(beta1: betas.0, beta2: betas.1, eps: eps, decoupled: true)
        }
    }

    /// The schedule over `stepsPerEpoch × epochs` optimizer steps.
    public func lrSchedule(stepsPerEpoch: Int) throws -> LRSchedule {
        let total = max(1, stepsPerEpoch * epochs)
        switch schedule {
        case "constant": return .constant
        case "step": return .step(size: max(1, stepEpochs * stepsPerEpoch), gamma: stepGamma)
        case "cosine": return .cosine(tMax: total, etaMin: 0)
        case "warmup": return .warmup(startFactor: 0.1, iters: max(1, warmupEpochs * stepsPerEpoch))
        case "warmup-cosine":
            let w = min(total - 1, max(1, warmupEpochs * stepsPerEpoch))
            return .warmupCosine(warmup: w, startFactor: 0.01, tMax: max(1, total - w), etaMin: 0)
        case "warmup-linear": return .warmupLinear(warmup: Int((warmupRatio * Double(total)).rounded(.up)), total: total)
        case "onecycle": return .oneCycle(totalSteps: total)
        default: throw WconvError(.usage, "--schedule '\(schedule)': use constant, step, cosine, warmup, warmup-cosine, warmup-linear or onecycle")
        }
    }

    public func validate() throws {
        guard epochs >= 1 else { throw WconvError(.usage, "--epochs must be at least 1") }
        guard batchSize >= 1 else { throw WconvError(.usage, "--batch-size must be at least 1") }
        guard ["sgd", "adam", "adamw"].contains(optimizer) else { throw WconvError(.usage, "--optimizer '\(optimizer)': use sgd, adam or adamw") }
        guard lr > 0, lr.isFinite else { throw WconvError(.usage, "--lr must be positive") }
        guard trainCrop == "auto" || ImageTransform.Crop(rawValue: trainCrop) != nil else { throw WconvError(.usage, "--train-crop '\(trainCrop)': use auto, random-resized or pad") }
        if let p = patience, p < 1 { throw WconvError(.usage, "--patience must be at least 1 epoch") }
        guard ["new", "keep"].contains(head) else { throw WconvError(.usage, "--head '\(head)': use new or keep") }
        guard dropout >= 0, dropout < 1 else { throw WconvError(.usage, "--dropout must be in [0, 1)") }
        guard labelSmoothing >= 0, labelSmoothing < 1 else { throw WconvError(.usage, "--label-smoothing must be in [0, 1)") }
        if case .geometric(let b, let m) = layerLR, !(b > 0 && m > 0) { throw WconvError(.usage, "--base-lr and --max-lr must be positive") }
        if case .decay(let d) = layerLR, !(d > 0 && d <= 1) { throw WconvError(.usage, "--layer-decay must be in (0, 1]") }
        guard warmupRatio >= 0, warmupRatio < 1 else { throw WconvError(.usage, "--warmup-ratio must be in [0, 1)") }
        if let m = maxGradNorm, !(m > 0 && m.isFinite) { throw WconvError(.usage, "--max-grad-norm must be positive") }
        _ = try lrSchedule(stepsPerEpoch: 1)
    }
}

/// One epoch of the plan.
public struct EpochPlan: Codable, Sendable {
    public var epoch: Int
    /// Names of trainable groups.
    public var trainable: [String]
}

/// The resolved plan: groups, per-epoch trainable sets, LRs, weight decay and BN policy, printed
/// before any compute and stored in the export's provenance.
public struct TrainingPlan: Sendable {
    public var config: TrainingConfig
    public var grouping: LayerGrouping
    public var epochs: [EpochPlan]
    /// LR of each group (before the schedule scales it).
    public var groupLR: [String: Double]
    public var warnings: [String] = []
    /// What was fitted to the data (image sizes, input size, normalisation, step budget), printed
    /// under the plan's header.
    public var notes: [String] = []
    public var parameterRank: [String: Int]
    public var modelName: String
    public var classes: [String]
    /// Multi-label data: `classes` are labels, the loss is BCE-with-logits.
    public var multiLabel = false

    public init(graph: ModelGraph, config: TrainingConfig, classes: [String], modelName: String = "model") throws {
        try config.validate()
        self.config = config
        self.classes = classes
        self.modelName = modelName
        grouping = try LayerGrouping(graph: graph, userGroups: config.groups)
        parameterRank = Dictionary(uniqueKeysWithValues: graph.parameters.map { ($0.key, $0.value.rank) })
        let gs = grouping.groups
        let n = gs.count
        var lrs: [String: Double] = [:]
        let backbone = config.backboneLR ?? config.lr / 10
        for (i, g) in gs.enumerated() {
            switch (config.mode, config.layerLR) {
            case (.featureExtract, _), (.scratch, _): lrs[g.name] = config.lr
            case (_, .geometric(let b, let m)):
                lrs[g.name] = n > 1 ? b * pow(m / b, Double(i) / Double(n - 1)) : m
            case (_, .decay(let d)):
                lrs[g.name] = config.lr * pow(d, Double(n - 1 - i))
            case (_, .discriminative):
                lrs[g.name] = g.kind == .head ? config.lr : backbone
            }
        }
        groupLR = lrs
        var plans: [EpochPlan] = []
        let order = gs.map(\.name)
        for e in 0..<config.epochs {
            let names: [String]
            switch config.mode {
            case .featureExtract: names = gs.filter { $0.kind == .head }.map(\.name)
            case .finetune, .scratch: names = order
            case .progressive:
                // Head group(s) first, then one more group per epoch from the top down.
                let heads = gs.filter { $0.kind == .head }.map(\.name)
                let body = gs.filter { $0.kind != .head }.map(\.name)
                names = body.suffix(min(e, body.count)) + heads
            }
            plans.append(EpochPlan(epoch: e, trainable: names))
        }
        epochs = plans
        warnings = staticWarnings()
        if config.bn == .auto && config.batchSize < 16 && trainsBatchNorm {
            // Advice rather than a warning: on few-label data, batch statistics on small batches
            // adapt BN to the new domain and measured better than frozen statistics (issue 11).
            notes.append("BatchNorm: batch statistics on batches of \(config.batchSize) in trainable groups (auto); if validation jumps between epochs, try --bn frozen")
        }
    }

    /// Optimizer groups of epoch `e`: each trainable layer group split into decayed (rank ≥ 2)
    /// and non-decayed (norms and biases) parameters.
    public func parameterGroups(epoch e: Int) -> [ParamGroup] {
        let live = Set(epochs[min(e, epochs.count - 1)].trainable)
        var out: [ParamGroup] = []
        for g in grouping.groups where live.contains(g.name) {
            let lr = groupLR[g.name] ?? config.lr
            let noDecay = config.decayNormsAndBiases ? [] : g.parameters.filter { (parameterRank[$0] ?? 2) <= 1 }
            let decay = g.parameters.filter { !noDecay.contains($0) }
            if !decay.isEmpty { out.append(ParamGroup(name: g.name, parameters: decay, lr: lr, weightDecay: config.weightDecay)) }
            if !noDecay.isEmpty { out.append(ParamGroup(name: g.name + ".no_decay", parameters: noDecay, lr: lr, weightDecay: 0)) }
        }
        return out
    }

    /// Trainable parameter names of epoch `e`.
    public func trainableParameters(epoch e: Int) -> Set<String> {
        Set(parameterGroups(epoch: e).flatMap(\.parameters))
    }

    /// BatchNorm mode of every BN node in epoch `e` (for `TrainingSession`).
    public func batchNormModes(epoch e: Int) -> [String: BatchNormMode] {
        let live = Set(epochs[min(e, epochs.count - 1)].trainable)
        var out: [String: BatchNormMode] = [:]
        for g in grouping.groups {
            for bn in g.batchNormNodes {
                if !live.contains(g.name) { out[bn] = .frozen; continue }
                switch config.bn {
                case .auto, .train: out[bn] = .train
                case .frozen: out[bn] = .frozen
                case .frozenAffine: out[bn] = .frozenAffine
                }
            }
        }
        return out
    }

    func bnPolicyText(_ g: LayerGroup, trainableAt: [Int]) -> String {
        if g.batchNormNodes.isEmpty { return "-" }
        if trainableAt.isEmpty { return "frozen (eval stats)" }
        switch config.bn {
        case .auto, .train: return trainableAt.count == config.epochs ? "train (batch stats)" : "frozen, then train"
        case .frozen: return "frozen stats, γβ train"
        case .frozenAffine: return "frozen stats and γβ"
        }
    }

    /// Some epoch trains a group with BatchNorm (from the graph's nodes, or from running-stat
    /// buffers in a weights-only bundle).
    var trainsBatchNorm: Bool {
        func hasBN(_ g: LayerGroup) -> Bool {
            !g.batchNormNodes.isEmpty || g.buffers.contains { $0.hasSuffix("running_mean") || $0.hasSuffix("moving_mean") }
        }
        return epochs.contains { e in grouping.groups.contains { g in e.trainable.contains(g.name) && hasBN(g) } }
    }

    /// Plan-time guard rails (the seed's anti-patterns), each with its fix.
    func staticWarnings() -> [String] {
        var w: [String] = []
        if config.mode.isFineTuning && config.text {
            w += textWarnings()
        } else if config.mode.isFineTuning {
            let headLR = grouping.groups.filter { $0.kind == .head }.compactMap { groupLR[$0.name] }.max() ?? config.lr
            let bbMax = grouping.backbone.compactMap { groupLR[$0.name] }.max() ?? 0
            if bbMax > 0, headLR / bbMax < 10 * (1 - 1e-9) {
                w.append("backbone learning rate \(sci(bbMax)) is only \(fmt(headLR / bbMax, 1))× below the head's \(sci(headLR)): the seed's most common failure (validation accuracy ends below feature extraction). Fix: --backbone-lr \(sci(headLR / 10)) or lower (10–100× below the head).")
            }
        }
        let bnTrains = config.bn == .auto || config.bn == .train
        if bnTrains && trainsBatchNorm && config.batchSize < 16 && config.bn == .train {
            w.append("BatchNorm would train on batches of \(config.batchSize) (< 16): its batch statistics are noisy and the pretrained running statistics drift. Fix: --bn frozen (eval-mode statistics while γ, β train) or --batch-size 16 or more.")
        }
        return w
    }

    /// Data-dependent guard rails: class count vs head, and normalisation seen on a sample.
    public mutating func checkData(headOutputs: Int?, dataClasses: Int, channelStats: [(mean: Double, std: Double)]?) throws {
        if let h = headOutputs, h != dataClasses, config.head == "keep" {
            throw WconvError.invalid("the model's head predicts \(h) classes but the data has \(dataClasses) class folders; use --head new to replace the head for \(dataClasses) classes, or point --data at a dataset with \(h) classes")
        }
        if let stats = channelStats {
            // Loose bounds: bright or dark datasets sit a standard deviation or more off zero after
            // a correct normalisation; a missing or doubled scaling lands far outside.
            let bad = stats.enumerated().filter { abs($0.element.mean) > 2.0 || $0.element.std < 0.25 || $0.element.std > 4 }
            if !bad.isEmpty {
                let desc = stats.enumerated().map { "ch\($0.offset) mean \(fmt($0.element.mean, 2)) std \(fmt($0.element.std, 2))" }.joined(separator: ", ")
                warnings.append("after the model's normalisation the data is far from zero mean / unit variance (\(desc)): the model expects different inputs (the seed's 'not normalizing inputs correctly'). Fix: check the model's preprocessing metadata (`wconv inspect`) or pass --mean/--std matching the pretrained weights.")
            }
        }
    }

    /// The human-readable plan.
    public func render() -> String {
        let total = grouping.groups.reduce(0) { $0 + $1.parameterCount }
        var s = "plan: \(modelName) → \(classes.count) \(multiLabel ? "labels" : "classes") (\(classes.prefix(6).joined(separator: ", "))\(classes.count > 6 ? ", …" : ""))\n"
        s += "  mode \(config.mode.rawValue), \(config.epochs) epochs, batch \(config.batchSize), \(config.optimizerKind.name) wd \(config.weightDecay)\(config.decayNormsAndBiases ? "" : " (none on norms/biases)"), schedule \(config.schedule)\(config.maxGradNorm.map { ", gradients clipped to norm \($0)" } ?? ""), seed \(config.seed), \(config.threads) threads\n"
        if config.precision != .f32 { s += "  precision: \(config.precision.trainingSummary)\n" }
        for n in notes { s += "  \(n)\n" }
        s += "  output: \(config.restoreBest ? "the best validation epoch's weights (the last epoch's without validation data)" : "the last epoch's weights (--no-restore-best)")"
        s += config.patience.map { "; early stopping after \($0) epochs without a better validation metric\n" } ?? "\n"
        if multiLabel {
            s += "  multi-label: \(classes.count) sigmoid outputs, loss BCE-with-logits, pos-weight \(config.multiLabel.posWeight), uncertain labels (−1): \(config.multiLabel.uncertain.rawValue)\n"
        } else if config.labelSmoothing > 0 || config.classWeights != "none" { s += "  loss: cross-entropy, class weights \(config.classWeights), label smoothing \(config.labelSmoothing)\n" }
        if config.mmdWeight > 0 { s += "  domain adaptation: \(config.mmdKind.rawValue) MMD on penultimate features, weight \(config.mmdWeight)\n" }
        if case .geometric(let b, let m) = config.layerLR { s += "  layer-wise LR: geometric \(sci(b)) → \(sci(m)) over \(grouping.groups.count) groups\n" }
        if case .decay(let d) = config.layerLR { s += "  layer-wise LR: decay \(d) per group from the head\n" }
        s += "  groups (input → output, found by \(grouping.method)), \(human(total)) trainable parameters:\n"
        let nameW = max(8, grouping.groups.map(\.name.count).max() ?? 8)
        s += "    " + "group".padding(toLength: nameW, withPad: " ", startingAt: 0) + "  kind   params  tensors  BN  trainable epochs  lr        BatchNorm\n"
        for g in grouping.groups {
            let at = epochs.filter { $0.trainable.contains(g.name) }.map(\.epoch)
            let when = at.isEmpty ? "frozen" : (at.count == config.epochs ? "all" : "\(at.first! + 1)–\(config.epochs)")
            s += "    " + g.name.padding(toLength: nameW, withPad: " ", startingAt: 0) + "  " + g.kind.rawValue.padding(toLength: 5, withPad: " ", startingAt: 0)
            s += pad(human(g.parameterCount), 8) + pad(String(g.parameters.count), 9) + pad(String(g.batchNormNodes.count), 4)
            s += "  " + when.padding(toLength: 16, withPad: " ", startingAt: 0)
            s += (at.isEmpty ? "-" : sci(groupLR[g.name] ?? 0)).padding(toLength: 10, withPad: " ", startingAt: 0)
            s += bnPolicyText(g, trainableAt: at) + "\n"
        }
        if !warnings.isEmpty {
            s += "  warnings:\n" + warnings.map { "    ⚠ " + $0 }.joined(separator: "\n") + "\n"
        }
        return s
    }

    /// JSON form (for `--json` and provenance): model, classes, multi_label, config (TrainingConfig's keys), grouping,
    /// groups (name, kind, parameters, parameter_count, batchnorm_nodes, lr, trainable_epochs), warnings, notes.
    public var json: JSONValue {
        .object([
            ("model", .string(modelName)), ("classes", .array(classes.map(JSONValue.string))), ("multi_label", .bool(multiLabel)),
            // Encoding a struct of strings and numbers cannot fail.
            ("config", (try? JSONValue(encoding: config)) ?? .null), ("grouping", .string(grouping.method)),
            ("groups", .array(grouping.groups.map { g in
                .object([
                    ("name", .string(g.name)), ("kind", .string(g.kind.rawValue)), ("parameters", .array(g.parameters.map(JSONValue.string))),
                    ("parameter_count", .int(g.parameterCount)), ("batchnorm_nodes", .array(g.batchNormNodes.map(JSONValue.string))),
                    ("lr", .double(groupLR[g.name] ?? 0)),
                    ("trainable_epochs", .array(epochs.filter { $0.trainable.contains(g.name) }.map { .int($0.epoch + 1) })),
                ])
            })),
            ("warnings", .array(warnings.map(JSONValue.string))), ("notes", .array(notes.map(JSONValue.string))),
        ])
    }

    /// `json` as compact text (the provenance note of a trained model).
    public func jsonString() -> String { json.serialized }
}

/// 1.5K / 11.7M style counts.
public func human(_ n: Int) -> String {
    let d = Double(n)
    if d >= 1e9 { return fmt(d / 1e9, 1) + "G" }
    if d >= 1e6 { return fmt(d / 1e6, 1) + "M" }
    if d >= 1e3 { return fmt(d / 1e3, 1) + "K" }
    return String(n)
}

/// 1.0e-04 style.
public func sci(_ x: Double) -> String {
    guard x != 0, x.isFinite else { return x == 0 ? "0" : "\(x)" }
    let e = Int(floor(log10(abs(x))))
    var m = x / pow(10, Double(e))
    var ee = e
    if abs(m) >= 9.95 { m /= 10; ee += 1 }
    return fmt(m, 1) + "e" + (ee < 0 ? "-" : "+") + (abs(ee) < 10 ? "0" : "") + String(abs(ee))
}

extension TrainingPlan {
    /// Per-channel mean/std of up to 32 images after the model's normalisation (for `checkData`).
    public static func channelStats(_ data: any LabelledDataset, preprocessing: Preprocessing, seed: UInt64) -> [(mean: Double, std: Double)]? {
        Trainer.channelStats(data, preprocessing: preprocessing, seed: seed)
    }
}
