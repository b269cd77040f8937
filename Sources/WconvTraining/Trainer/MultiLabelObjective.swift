import Foundation
import WconvFormats
import WconvGraph
import WconvRuntime
import WconvTensor

/// The multi-label side of the trainer (data with two or more label columns): sigmoid outputs
/// trained with BCE-with-logits, `--pos-weight`, `--uncertain`, and the figures an epoch reports
/// (label accuracy at 0.5, macro ROC AUC). The graph's output stays the logits, so the export is
/// the architecture with a `Linear(…, L)` head, as torchvision builds it.
struct MultiLabelObjective {
    let labels: [String]
    /// N×L raw targets of the training and validation sets.
    let train: [Float]
    let val: [Float]?
    let loss: BCEWithLogitsLoss

    /// nil for single-label data.
    init?(config: TrainingConfig, train: any LabelledDataset, val: (any LabelledDataset)?) throws {
        guard let t = train.multiLabelTargets else { return nil }
        if config.classWeights != "none" {
            throw WconvError(.usage, "--class-weights is for single-label data; multi-label data (\(train.classes.count) label columns) takes --pos-weight auto|none|w1,w2,…")
        }
        if config.labelSmoothing > 0 { throw WconvError(.usage, "--label-smoothing is for single-label data; multi-label training uses BCE-with-logits") }
        labels = train.classes
        self.train = t
        self.val = val?.multiLabelTargets
        let o = config.multiLabel
        loss = BCEWithLogitsLoss(posWeight: try BCEWithLogitsLoss.posWeight(o.posWeight, targets: t, labels: train.classes, policy: o.uncertain),
                                 uncertain: o.uncertain)
    }

    var L: Int { labels.count }

    func rows(_ targets: [Float], _ rows: [Int]) -> [Float] {
        rows.flatMap { targets[($0 * L)..<(($0 + 1) * L)] }
    }

    /// Loss and gradient of a training batch (dataset rows `rows`), and the number of samples'
    /// worth of right label decisions at 0.5 (each sample adds the fraction of its certain labels right).
    func step(logits: UnsafeBufferPointer<Float>, rows r: [Int], gradient: UnsafeMutableBufferPointer<Float>) throws -> (loss: Double, correct: Double) {
        let t = rows(train, r)
        let l = try loss(logits: logits, targets: t, labels: L, gradient: gradient)
        var correct = 0.0
        for i in 0..<r.count {
            var right = 0, n = 0
            for j in 0..<L where t[i * L + j] >= 0 {
                n += 1
                if (logits[i * L + j] >= 0) == (t[i * L + j] > 0) { right += 1 }
            }
            if n > 0 { correct += Double(right) / Double(n) }
        }
        return (l, correct)
    }

    /// An epoch's validation figures from the logits of validation rows `r`.
    func figures(logits: [Float], rows r: [Int]) throws -> (loss: Double?, accuracy: Double, macroAUC: Double?) {
        guard let val else { throw WconvError(.runtime, "multi-label validation data without targets") }
        let t = rows(val, r)
        let l = try loss.loss(logits: logits, targets: t, labels: L).loss
        let m = MultiLabelMetrics(probabilities: MultiLabelObjective.sigmoid(logits), targets: t, labels: labels, loss: l)
        return (m.loss, m.accuracy, m.macroAUC)
    }

    static func sigmoid(_ x: [Float]) -> [Float] {
        x.map { v in v >= 0 ? 1 / (1 + exp(-v)) : exp(v) / (1 + exp(v)) }
    }

    /// The graph with a trailing softmax removed (Keras heads end in one): multi-label outputs are
    /// per-label logits.
    static func logitsGraph(_ g: ModelGraph) -> ModelGraph {
        let x = Trainer.logitsValue(g)
        guard let out = g.outputs.first?.name, x != out else { return g }
        var h = g
        h.nodes.removeAll { $0.outputs.contains(out) }
        h.outputs[0].name = x
        return h
    }

    /// Metadata keys of a multi-label export (in the provenance notes; the canonical safetensors
    /// file keeps them in `wconv.provenance`, ONNX in metadata_props).
    static let taskKey = "wconv.task"
    static let thresholdsKey = "wconv.thresholds"

    /// Marks `graph` as multi-label and records the per-label thresholds (label → threshold).
    static func annotate(_ graph: inout ModelGraph, labels: [String], thresholds: [Double]?) {
        graph.provenance.notes[taskKey] = "multilabel"
        if let th = thresholds {
            graph.provenance.notes[thresholdsKey] = JSONValue.object(zip(labels, th).sorted { $0.0 < $1.0 }.map { ($0.0, .double($0.1)) }).serialized
        }
    }
}

extension Trainer {
    /// Best epoch and guard rails look at this validation figure: accuracy, or macro ROC AUC for
    /// multi-label data.
    func selectionScore(_ r: EpochRecord) -> Double? { multiLabel != nil ? r.valMacroAUC : r.valAccuracy }

    /// Thresholds recorded in a model's metadata (`wconv.thresholds`), in the order of `labels`.
    public static func recordedThresholds(_ graph: ModelGraph, labels: [String]) -> [Double]? {
        guard let s = graph.provenance.notes[MultiLabelObjective.thresholdsKey],
              let d = try? JSONValue.parse(s, what: MultiLabelObjective.thresholdsKey, file: nil) else { return nil }
        let v = labels.compactMap { d[$0]?.double }
        return v.count == labels.count ? v : nil
    }

    /// Whether a model was trained multi-label by wconv (`wconv.task` in its metadata).
    public static func isMultiLabelModel(_ graph: ModelGraph) -> Bool { graph.provenance.notes[MultiLabelObjective.taskKey] == "multilabel" }

    /// Eval-mode multi-label metrics of a whole graph on a dataset (`wconv eval`, and after
    /// training). Thresholds: the given ones; else, with `bestOnData`, the best F1 per label on
    /// these data; else 0.5.
    public static func evaluateMultiLabel(graph: ModelGraph, data: any LabelledDataset, threads: Int = 2, batchSize: Int = 32, precision: Precision = .f32,
                                          thresholds: [Double]? = nil, thresholdSource: String? = nil, bestOnData: Bool = false) throws -> MultiLabelMetrics {
        guard let targets = data.multiLabelTargets else { throw WconvError.invalid("the data are single-label") }
        let L = data.classes.count
        let (logits, rows) = try outputs(graph: MultiLabelObjective.logitsGraph(graph), data: data, width: L, threads: threads, batchSize: batchSize, precision: precision)
        let t = rows.flatMap { targets[($0 * L)..<(($0 + 1) * L)] }
        let p = MultiLabelObjective.sigmoid(logits)
        let loss = try BCEWithLogitsLoss().loss(logits: logits, targets: t, labels: L).loss
        if let thresholds {
            guard thresholds.count == L else { throw WconvError(.usage, "\(thresholds.count) thresholds for \(L) labels") }
            return MultiLabelMetrics(probabilities: p, targets: t, labels: data.classes, thresholds: thresholds, thresholdSource: thresholdSource, loss: loss)
        }
        if bestOnData {
            return MultiLabelMetrics(probabilities: p, targets: t, labels: data.classes, thresholds: MultiLabelMetrics.bestThresholds(probabilities: p, targets: t, labels: L),
                                     thresholdSource: "best F1 per label on these data", loss: loss)
        }
        return MultiLabelMetrics(probabilities: p, targets: t, labels: data.classes, loss: loss)
    }
}
