import ArgumentParser
import Foundation
import Wconv

/// The training flags `plan` and `finetune` share (one definition, so `plan` prints exactly what
/// `finetune` will do).
struct TrainingOptions: ParsableArguments {
    @Option(help: "feature-extract | finetune | progressive | scratch") var mode: String = "feature-extract"
    @Option(help: "Epochs (default 10; 15 for fewer than 1000 training images).") var epochs: Int?
    @Option(name: .customLong("batch-size"), help: "Batch size (default 32, at most a fifth of the training set).") var batchSize: Int?
    @Option(help: "sgd | adam | adamw") var optimizer: String = "adamw"
    @Option(help: "SGD momentum.") var momentum: Double = 0.9
    @Flag(help: "Nesterov momentum (SGD).") var nesterov = false
    @Option(name: [.customLong("lr"), .customLong("head-lr")], help: "Head learning rate, the single LR of feature-extract/scratch (default 1e-3; 3e-3 for fewer than 1000 training images).") var lr: Double?
    @Option(name: .customLong("backbone-lr"), help: "Backbone learning rate in finetune/progressive (default: head LR / 10).") var backboneLR: Double?
    @Option(name: .customLong("layer-lr"), help: "Layer-wise LR rule: geometric (the seed's base·(max/base)^(i/(n−1))).") var layerLR: String?
    @Option(name: .customLong("base-lr"), help: "First group's LR for --layer-lr geometric.") var baseLR: Double = 1e-6
    @Option(name: .customLong("max-lr"), help: "Last group's LR for --layer-lr geometric.") var maxLR: Double = 1e-3
    @Option(name: .customLong("layer-decay"), help: "timm-style layer decay: group i of n gets lr·decay^(n−1−i).") var layerDecay: Double?
    @Option(name: .customLong("weight-decay"), help: "Weight decay (not on norms and biases unless --decay-norms).") var weightDecay: Double = 0.01
    @Flag(name: .customLong("decay-norms"), help: "Apply weight decay to norms and biases too.") var decayNorms = false
    @Option(help: "BatchNorm policy: auto | train | frozen | frozen-affine") var bn: String = "auto"
    @Option(help: "LR schedule: constant | step | cosine | warmup | warmup-cosine | warmup-linear | onecycle (default cosine; warmup-linear for text models, the BERT recipe).") var schedule: String?
    @Option(name: .customLong("max-grad-norm"), help: "Clip gradients to this global L2 norm (default: none; 1.0 for text models, as transformers.Trainer).") var maxGradNorm: Double?
    @Option(name: .customLong("warmup-ratio"), help: "Fraction of the steps that warm up in warmup-linear (default 0.1).") var warmupRatio: Double = 0.1
    @Option(name: .customLong("warmup-epochs"), help: "Warm-up epochs for warmup / warmup-cosine.") var warmupEpochs: Int = 1
    @Option(name: .customLong("step-epochs"), help: "Epochs between LR drops (step schedule).") var stepEpochs: Int = 3
    @Option(name: .customLong("label-smoothing"), help: "Label smoothing ε.") var labelSmoothing: Double = 0
    @Option(name: .customLong("class-weights"), help: "auto | none | w1,w2,… (auto: inverse frequency normalised to sum to the class count).") var classWeights: String = "none"
    @Option(help: "new: replace the head for the data's classes (dropout + linear); keep: train the existing head.") var head: String = "new"
    @Option(help: "Dropout before the new head.") var dropout: Double = 0.2
    @Option(help: "Random seed (same seed + thread count → bit-identical results).") var seed: UInt64 = 0
    @OptionGroup var cpu: ThreadsOption
    @OptionGroup var arithmetic: PrecisionOption
    @Option(help: "Layer groups as name=pattern|pattern,… (input → output; the last, or the one named head, is the head).") var groups: String?
    @Option(name: .customLong("mmd-weight"), help: "Weight λ of the MMD domain-adaptation term (needs --adapt-target).") var mmdWeight: Double = 0
    @Option(help: "MMD kind: mean (the seed's) | gaussian (multi-bandwidth kernel)") var mmd: String = "mean"
    @Flag(name: .customLong("keep-optimizer-state"), help: "Keep optimizer moments when progressive unfreezing rebuilds the groups.") var keepOptimizerState = false
    @Flag(name: .customLong("no-shuffle"), help: "Keep the dataset order (reference runs).") var noShuffle = false
    @Flag(inversion: .prefixedNo, help: "Training augmentation: random crop (--train-crop) + flip. Default on, except feature-extract on 1000 or more images, where it is off so frozen features are cached.") var augment: Bool?
    @Option(name: .customLong("train-crop"), help: "Random crop of training augmentation: auto (pad for inputs ≤ 64 px, else random-resized) | random-resized | pad") var trainCrop: String = "auto"
    @Option(help: "Early stopping: end the run after N epochs without a better validation metric (needs validation data).") var patience: Int?
    @Flag(name: .customLong("restore-best"), inversion: .prefixedNo, help: "Output the best validation epoch's weights (default) rather than the last epoch's; a tripped guard always outputs the best.") var restoreBest = true
    @OptionGroup var preprocessing: PreprocessingOptions
    @OptionGroup var multiLabel: MultiLabelFlags

    /// The flags left at their defaults, which small datasets adapt (`DataFit`).
    var defaulted: DataFit.Defaulted {
        var d: DataFit.Defaulted = []
        if batchSize == nil { d.insert(.batchSize) }
        if epochs == nil { d.insert(.epochs) }
        if lr == nil { d.insert(.lr) }
        if schedule == nil { d.insert(.schedule) }
        if maxGradNorm == nil { d.insert(.maxGradNorm) }
        return d
    }

    func validate() throws { try usageCheck { _ = try config() } }

    func config() throws -> TrainingConfig {
        var c = TrainingConfig()
        guard let m = TrainingMode(rawValue: mode) else { throw WconvError(.usage, "--mode '\(mode)': use feature-extract, finetune, progressive or scratch") }
        guard let b = BatchNormPolicy(rawValue: bn) else { throw WconvError(.usage, "--bn '\(bn)': use auto, train, frozen or frozen-affine") }
        guard let k = MMDKind(rawValue: mmd) else { throw WconvError(.usage, "--mmd '\(mmd)': use mean or gaussian") }
        c.mode = m; c.bn = b; c.mmdKind = k
        c.epochs = epochs ?? 10; c.batchSize = batchSize ?? 32; c.optimizer = optimizer; c.momentum = momentum; c.nesterov = nesterov
        c.lr = lr ?? 1e-3; c.backboneLR = backboneLR; c.weightDecay = weightDecay; c.decayNormsAndBiases = decayNorms
        c.schedule = schedule ?? "cosine"; c.warmupRatio = warmupRatio; c.maxGradNorm = maxGradNorm; c.warmupEpochs = warmupEpochs; c.stepEpochs = stepEpochs; c.labelSmoothing = labelSmoothing
        c.classWeights = classWeights; c.head = head; c.dropout = dropout; c.seed = seed; c.threads = cpu.threads; c.groups = groups
        c.mmdWeight = mmdWeight; c.keepOptimizerStateOnUnfreeze = keepOptimizerState; c.shuffle = !noShuffle
        c.patience = patience; c.restoreBest = restoreBest; c.trainCrop = trainCrop
        c.precision = try arithmetic.checked()
        if let l = layerLR {
            guard l == "geometric" else { throw WconvError(.usage, "--layer-lr '\(l)': only geometric is defined") }
            guard layerDecay == nil else { throw WconvError(.usage, "give --layer-lr geometric or --layer-decay, not both") }
            c.layerLR = .geometric(base: baseLR, max: maxLR)
        } else if let d = layerDecay {
            c.layerLR = .decay(d)
        }
        try multiLabel.apply(to: &c)
        try c.validate()
        return c
    }
}
