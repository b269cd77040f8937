import Foundation
import WconvGraph
import WconvTensor

/// What `plan` and `finetune` fit to the training data before any compute: the preprocessing
/// (`InputSizing`), small-data defaults for the flags not given, and the plan lines saying so.
public struct DataFit: Sendable {
    public var preprocessing: Preprocessing
    public var config: TrainingConfig
    public var notes: [String]
    public var warnings: [String]

    /// Fewer training images than this get the small-data defaults.
    public static let smallDataset = 1000

    /// Augment by default in every mode but feature extraction on a large set, where caching the
    /// frozen features (no augmentation) is the speed-up that matters; a small set gains more from
    /// augmentation than from the cache.
    public static func defaultAugment(mode: TrainingMode, trainCount: Int) -> Bool {
        mode != .featureExtract || trainCount < smallDataset
    }

    /// `auto`: pad-crop for inputs of 64 pixels or less, random-resized crop above.
    public static func trainCrop(_ setting: String, preprocessing p: Preprocessing) -> ImageTransform.Crop {
        if let c = ImageTransform.Crop(rawValue: setting) { return c }
        return (p.inputSize.min() ?? 224) <= 64 ? .pad : .randomResized
    }

    /// Default batch size for `n` training images: 32, but at most a fifth of the set (at least
    /// 1), so even ten images per class give several optimizer steps per epoch.
    public static func defaultBatchSize(trainCount n: Int) -> Int { max(1, min(32, n / 5)) }

    /// Small-data epochs and head learning rate. A batch of a fifth of the set makes an epoch five
    /// optimizer steps; at the usual 10 epochs and 1e-3, AdamW moves a freshly initialised head
    /// too little in 50 steps (issue 11: 32 % where PyTorch's recipe reaches 74 %). 15 epochs at
    /// 3e-3 (backbone 3e-4) reach PyTorch's figures on the few-label fixture.
    public static let smallDataEpochs = 15
    public static let smallDataLR = 3e-3

    /// The training flags left at their defaults (the CLI's optionals that were not given).
    public struct Defaulted: OptionSet, Sendable {
        public let rawValue: Int
        public init(rawValue: Int) { self.rawValue = rawValue }
        public static let batchSize = Defaulted(rawValue: 1)
        public static let epochs = Defaulted(rawValue: 2)
        public static let lr = Defaulted(rawValue: 4)
        public static let schedule = Defaulted(rawValue: 8)
        public static let maxGradNorm = Defaulted(rawValue: 16)
    }

    /// Whether training augments (`--augment`/`--no-augment`, else `defaultAugment`).
    public var augment: Bool

    /// `config` holds the flags as given (defaults where `defaulted` says so); `augment` is nil
    /// unless `--augment`/`--no-augment` was given.
    public static func resolve(graph: ModelGraph, config given: TrainingConfig, defaulted: Defaulted, augment: Bool? = nil,
                               request: PreprocessingRequest, train: (any LabelledDataset)?) throws -> DataFit {
        var c = given
        var notes: [String] = []
        let survey = train.map { ImageSizeSurvey($0) }
        if let t = train {
            let sizes = survey.map { $0.isEmpty ? "" : ", sizes \($0.text)" } ?? ""
            notes.append("data: \(t.count) training images\(sizes)")
        }
        let d = try InputSizing.resolve(graph: graph, request: request, survey: survey)
        notes += d.notes
        if let t = train, t.count < smallDataset {
            var chosen: [String] = []
            if defaulted.contains(.batchSize) { c.batchSize = defaultBatchSize(trainCount: t.count); chosen.append("batch \(c.batchSize) (a fifth of the set)") }
            if defaulted.contains(.epochs) { c.epochs = smallDataEpochs; chosen.append("\(c.epochs) epochs") }
            if defaulted.contains(.lr) {
                c.lr = smallDataLR
                chosen.append("head LR \(sci(c.lr))" + (c.mode.isFineTuning && c.backboneLR == nil ? " (backbone \(sci(c.lr / 10)))" : ""))
            }
            if !chosen.isEmpty { notes.append("small dataset (\(t.count) < \(smallDataset) images): " + chosen.joined(separator: ", ")) }
        }
        try c.validate()
        let aug = augment ?? defaultAugment(mode: c.mode, trainCount: train?.count ?? smallDataset)
        if aug {
            let crop = trainCrop(c.trainCrop, preprocessing: d.preprocessing)
            let side = d.preprocessing.inputSize.min() ?? 224
            notes.append("augmentation: " + (crop == .pad ? "pad-crop (\(max(1, side / 8)) px reflect) + flip" : "random resized crop + flip"))
        } else {
            notes.append("augmentation: none" + (c.mode == .featureExtract && augment == nil ? " (frozen features are cached)" : ""))
        }
        if let t = train {
            let steps = max(1, (t.count + c.batchSize - 1) / c.batchSize)
            notes.append("budget: \(c.epochs) epochs × \(steps) steps of batch \(c.batchSize) = \(c.epochs * steps) optimizer steps")
        }
        return DataFit(preprocessing: d.preprocessing, config: c, notes: notes, warnings: d.warnings, augment: aug)
    }
}

extension Trainer {
    /// Adds what was fitted to the data to the plan this run prints and records.
    public func annotatePlan(_ fit: DataFit) {
        plan.notes = fit.notes + plan.notes
        plan.warnings += fit.warnings
    }
}
