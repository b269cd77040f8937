import Foundation
import WconvGraph
import WconvTensor
import WconvText

/// What `finetune` fits to a text model and its data before any compute: the maximum length, the
/// BERT recipe's defaults for the flags not given, the layer groups, and the plan lines saying so.
public struct TextFit {
    public var config: TrainingConfig
    public var maxLength: Int
    /// The groups are the recipe's (`--groups` not given).
    public var recipeGroups = true
    public var notes: [String] = []

    /// transformers' and the BERT paper's fine-tuning LR for the encoder.
    public static let encoderLR = 2e-5
    /// The head's LR when the encoder fine-tunes with discriminative LRs (10× the encoder's, the
    /// seed's ratio); feature extraction trains the head at the image default, 1e-3.
    public static let headLR = 2e-4
    /// Default `--max-length` (clamped to the model's positions).
    public static let defaultMaxLength = 128

    /// The maximum length: `requested` (refused above the model's positions), else 128 or the
    /// positions when fewer.
    public static func maxLength(_ requested: Int?, model: TextTrainingModel) throws -> Int {
        let positions = model.maxPositions ?? Int.max
        if let r = requested {
            guard r >= 1 else { throw WconvError(.usage, "--max-length must be at least 1") }
            guard r <= positions else {
                throw WconvError(.usage, "--max-length \(r) is more than the \(positions) positions the model has; use --max-length \(positions) or less")
            }
            return r
        }
        return min(defaultMaxLength, positions)
    }

    /// `given` holds the flags as given (`defaulted` says which were left at their defaults).
    public static func resolve(model: TextTrainingModel, config given: TrainingConfig, defaulted: DataFit.Defaulted, maxLength: Int,
                               train: TokenizedTextSet, val: TokenizedTextSet?) throws -> TextFit {
        var c = given
        c.text = true
        let recipeGroups = c.groups == nil
        if recipeGroups { c.groups = model.groupSpec }
        var chosen: [String] = []
        if defaulted.contains(.batchSize) { c.batchSize = DataFit.defaultBatchSize(trainCount: train.count); chosen.append("batch \(c.batchSize)") }
        if defaulted.contains(.epochs) {
            // Progressive unfreezing needs one epoch per group to reach the embeddings.
            c.epochs = c.mode == .featureExtract ? 10 : c.mode == .progressive ? model.layerCount + 2 : 3
            chosen.append("\(c.epochs) epochs")
        }
        if c.mode.isFineTuning {
            if c.backboneLR == nil, case .discriminative = c.layerLR { c.backboneLR = encoderLR; chosen.append("encoder LR \(sci(encoderLR))") }
            if defaulted.contains(.lr) {
                // Layer decay scales down from the head's LR: the head and top layer sit at the encoder's.
                if case .decay = c.layerLR { c.lr = encoderLR } else { c.lr = headLR }
                chosen.append("head LR \(sci(c.lr))")
            }
        } else if defaulted.contains(.lr) {
            c.lr = 1e-3
        }
        if defaulted.contains(.schedule) { c.schedule = "warmup-linear"; chosen.append("linear warm-up over \(Int(c.warmupRatio * 100))% of the steps, then linear decay") }
        if defaulted.contains(.maxGradNorm) { c.maxGradNorm = 1.0; chosen.append("gradients clipped to norm 1.0") }
        try c.validate()
        var fit = TextFit(config: c, maxLength: maxLength, recipeGroups: recipeGroups)
        let positions = model.maxPositions.map { " of the model's \($0) positions" } ?? ""
        for (name, set) in [("training", train), ("validation", val)] {
            guard let set else { continue }
            let mean = Double((0..<set.count).reduce(0) { $0 + set.length($1) }) / Double(max(set.count, 1))
            fit.notes.append("\(name) texts: \(set.count), mean \(fmt(mean, 1)) tokens; \(set.truncatedCount) truncated to --max-length \(maxLength)\(positions)")
        }
        let bucketed = train.epochBatches(epoch: 0, batchSize: c.batchSize, shuffle: c.shuffle, seed: c.seed)
        let plain = TokenizedTextSet.chunks(Array(0..<train.count), c.batchSize)
        fit.notes.append("dynamic padding per batch, \(c.shuffle ? "length-bucketed" : "in dataset order (--no-shuffle)"): \(fmt(train.paddingFraction(bucketed) * 100, 1))% padding tokens (\(fmt(train.paddingFraction(plain) * 100, 1))% in file order)")
        if !chosen.isEmpty { fit.notes.append("BERT recipe defaults: " + chosen.joined(separator: ", ")) }
        let steps = max(1, (train.count + c.batchSize - 1) / c.batchSize)
        fit.notes.append("budget: \(c.epochs) epochs × \(steps) steps of batch \(c.batchSize) = \(c.epochs * steps) optimizer steps")
        return fit
    }
}

extension TrainingPlan {
    /// Encoder LRs above this are "far above" the 2e-5–5e-5 BERT fine-tuning uses.
    public static let textEncoderLRLimit = 1e-4

    /// The text guard rails of finetune/progressive runs (the image ones compare head and backbone LRs;
    /// BERT recipes train both at about the same LR, so only the encoder's own LR is checked).
    func textWarnings() -> [String] {
        let encoder = grouping.backbone.compactMap { groupLR[$0.name] }.max() ?? 0
        guard encoder > TrainingPlan.textEncoderLRLimit else { return [] }
        return ["encoder learning rate \(sci(encoder)) is far above the 2e-5–5e-5 BERT fine-tuning uses: the seed's first anti-pattern (the pretrained encoder is wrecked in the first steps and accuracy falls towards chance). Fix: --backbone-lr 2e-5 (with --layer-decay: --lr 2e-5)."]
    }

    /// True when a text guard rail warns about the encoder LR (`--strict-guards` refuses the run).
    public var encoderLRTooHigh: Bool { config.text && config.mode.isFineTuning && !textWarnings().isEmpty }
}

extension Trainer {
    /// Adds what was fitted to the text data to the plan this run prints and records.
    public func annotatePlan(_ fit: TextFit) {
        plan.annotate(fit)
    }
}

extension TrainingPlan {
    /// The notes of `fit`, and the groups named for the text recipe unless `--groups` set them.
    public mutating func annotate(_ fit: TextFit) {
        notes = fit.notes + notes
        if fit.recipeGroups { grouping.method = "the BERT recipe: embeddings, encoder layers, head" }
    }
}

extension TextDataset {
    /// A seeded, stratified split of the examples (`--val-split`), as image data are split.
    public func split(fraction: Double, seed: UInt64) throws -> (train: TextDataset, val: TextDataset) {
        let (tr, va) = try DatasetSplit.stratified(labels: labels, classCount: classes.count, fraction: fraction, seed: seed)
        var a = self, b = self
        a.examples = tr.map { examples[$0] }
        b.examples = va.map { examples[$0] }
        return (a, b)
    }
}
