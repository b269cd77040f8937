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

    /// `config` holds the flags given; `batchSize` is nil when `--batch-size` was not.
    public static func resolve(graph: ModelGraph, config given: TrainingConfig, batchSize: Int?,
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
        if let b = batchSize {
            c.batchSize = b
        } else if let t = train {
            c.batchSize = defaultBatchSize(trainCount: t.count)
            if c.batchSize < 32 { notes.append("batch \(c.batchSize) (default for \(t.count) training images: at most a fifth of the set)") }
        }
        try c.validate()
        if let t = train {
            let steps = max(1, (t.count + c.batchSize - 1) / c.batchSize)
            notes.append("budget: \(c.epochs) epochs × \(steps) steps of batch \(c.batchSize) = \(c.epochs * steps) optimizer steps")
        }
        return DataFit(preprocessing: d.preprocessing, config: c, notes: notes, warnings: d.warnings)
    }
}

extension Trainer {
    /// Adds what was fitted to the data to the plan this run prints and records.
    public func annotatePlan(_ fit: DataFit) {
        plan.notes += fit.notes
        plan.warnings += fit.warnings
    }
}
