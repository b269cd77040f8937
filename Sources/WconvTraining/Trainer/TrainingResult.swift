import WconvGraph

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
