import Foundation
import WconvGraph
import WconvTensor

/// One (source, mode) run of `wconv compare`.
public struct ComparisonRun: Codable, Sendable {
    public var source: String
    public var mode: TrainingMode
    /// `accuracy`, or `macroAUC` for multi-label data.
    public var metricName: String
    /// The returned (best-epoch) model's validation figure.
    public var metric: Double?
    public var accuracy: Double?
    public var macroAUC: Double?
    public var epochs: Int
    public var bestEpoch: Int?
    public var seconds: Double
    public var stopped: String?
    public var history: [EpochRecord]
    public var output: String?

    /// The seed's wording for the strategy.
    public var strategy: String { Comparison.strategy(mode) }
}

/// The seed's benchmark table as a procedure: every (source, mode) pair trained with the same
/// seed, budget and flags on the same data, measured on the same validation set.
public enum Comparison {
    public static func strategy(_ m: TrainingMode) -> String {
        switch m {
        case .scratch: return "from scratch"
        case .featureExtract: return "pretrained, feature extraction"
        case .finetune: return "pretrained, fine-tuned"
        case .progressive: return "pretrained, progressive unfreezing"
        }
    }

    /// The configuration a mode runs with: `config` with the mode set. From scratch, BatchNorm
    /// trains whatever `--bn` says (frozen statistics of a re-initialised network mean nothing).
    public static func config(_ config: TrainingConfig, mode: TrainingMode) -> TrainingConfig {
        var c = config
        c.mode = mode
        if mode == .scratch { c.bn = .train }
        return c
    }

    /// Trains every pair in order (sources outer, modes inner). `done` receives each run with its
    /// result (to save the model and set `output`, print a line) before the next starts.
    public static func run(sources: [(name: String, graph: ModelGraph)], modes: [TrainingMode], config: TrainingConfig,
                           train: any LabelledDataset, val: any LabelledDataset, augment: Bool?,
                           log: @escaping (String) -> Void, done: (inout ComparisonRun, TrainingResult) throws -> Void) throws -> [ComparisonRun] {
        var runs: [ComparisonRun] = []
        for src in sources {
            // Feature extraction and progressive unfreezing's head-only phase run the same frozen
            // front of one source over the same data: computed once, released with the source.
            let caches = FeatureCacheStore()
            for mode in modes {
                let t0 = Date()
                let trainer = try Trainer(graph: src.graph, config: Comparison.config(config, mode: mode), train: train, val: val,
                                          modelName: src.name, augment: augment, log: log)
                // The comparison itself holds the feature-extraction figure.
                trainer.computeBaseline = false
                trainer.featureCaches = caches
                let r = try trainer.run()
                let ml = r.multiLabelMetrics
                var run = ComparisonRun(source: src.name, mode: mode, metricName: train.isMultiLabel ? "macroAUC" : "accuracy",
                                        metric: ml.map { $0.macroAUC } ?? r.metrics?.accuracy, accuracy: ml?.accuracy ?? r.metrics?.accuracy,
                                        macroAUC: ml?.macroAUC ?? r.metrics?.macroAUC, epochs: r.history.count, bestEpoch: r.bestEpoch.map { $0 + 1 },
                                        seconds: Date().timeIntervalSince(t0), stopped: r.stopped, history: r.history, output: nil)
                try done(&run, r)
                runs.append(run)
            }
        }
        return runs
    }

    /// Index of the run with the highest metric (the first on ties).
    public static func best(_ runs: [ComparisonRun]) -> Int? {
        var b: Int?
        for (i, r) in runs.enumerated() { if let m = r.metric, b == nil || m > runs[b!].metric! { b = i } }
        return b
    }

    /// The metric as printed: `0.781` (macro AUC) or `75.0%` (accuracy).
    public static func figure(_ v: Double?, _ name: String) -> String {
        guard let v else { return "–" }
        return name == "macroAUC" ? fmt(v, 3) : fmt(v * 100, 1) + "%"
    }

    /// The seed-style table in Markdown, best row marked.
    public static func markdown(_ runs: [ComparisonRun], title: String) -> String {
        let multi = runs.first?.metricName == "macroAUC"
        let b = best(runs)
        var s = "## \(title)\n\n"
        s += multi ? "| source | strategy | val macro AUC | label accuracy | epochs | time |\n|---|---|---:|---:|---:|---:|\n"
                   : "| source | strategy | val accuracy | macro AUC | epochs | time |\n|---|---|---:|---:|---:|---:|\n"
        for (i, r) in runs.enumerated() {
            var m = figure(r.metric, r.metricName)
            if i == b { m = "**\(m)** ★" }
            let other = multi ? (r.accuracy.map { fmt($0 * 100, 1) + "%" } ?? "–") : (r.macroAUC.map { fmt($0, 3) } ?? "–")
            let ep = "\(r.epochs)\(r.bestEpoch.map { $0 != r.epochs ? " (best \($0))" : "" } ?? "")\(r.stopped != nil ? " (stopped)" : "")"
            s += "| \(r.source) | \(r.strategy) | \(m) | \(other) | \(ep) | \(fmt(r.seconds, 1)) s |\n"
        }
        if let b {
            let r = runs[b]
            s += "\n★ best: \(r.source), \(r.strategy) — \(multi ? "macro AUC " : "accuracy ")\(figure(r.metric, r.metricName)) after \(r.bestEpoch ?? r.epochs) epoch\((r.bestEpoch ?? r.epochs) == 1 ? "" : "s")\n"
        }
        return s
    }
}
