import ArgumentParser
import Foundation
import Wconv

struct EvalCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "eval", abstract: "Evaluates a classifier on a labelled dataset: accuracy, per-class precision/recall/F1, one-vs-rest ROC AUC, confusion matrix; for multi-label CSVs per-label ROC AUC, PR AUC and F1.")

    @Argument(help: "Model file (any supported format).") var model: String
    @Option(help: "Labelled data: ImageFolder directory, .csv (path + label columns; two or more label columns are multi-label) or .npz with images/labels.") var data: String
    @Option(help: "Multi-label: decision threshold on every label's probability (default: the per-label thresholds recorded in the model, else 0.5).") var threshold: Double?
    @OptionGroup var cpu: ThreadsOption
    @Option(name: .customLong("batch-size"), help: "Batch size.") var batchSize: Int = 32
    @OptionGroup var stdout: JSONFlag
    @OptionGroup var preprocessing: PreprocessingOptions

    func run() throws {
        var graph = try ModelIO.load(path: model, toolVersion: wconvVersion)
        let ds = try TrainingJob.dataset(data, classes: graph.labels, multiLabel: Trainer.isMultiLabelModel(graph) ? true : nil)
        let request = try preprocessing.request()
        if request.inputSize != nil || request.resize != nil || request.mean != nil || request.std != nil {
            let d = try InputSizing.resolve(graph: graph, request: request, survey: request.inputSize == .auto ? ImageSizeSurvey(ds) : nil)
            graph.preprocessing = d.preprocessing
            for w in d.warnings { stderrLine("warning: " + w) }
        }
        let what = ds.isMultiLabel ? "labels" : "classes"
        if let n = HeadReplacement.outputSize(graph), n != ds.classes.count {
            throw WconvError.invalid("the model predicts \(n) \(what) but the data has \(ds.classes.count) (\(ds.classes.prefix(8).joined(separator: ", "))); evaluate on data with the model's \(what)")
        }
        try DatasetCheck.verifyAll(ds, threads: cpu.threads)
        if ds.isMultiLabel {
            if let t = threshold, !(t > 0 && t < 1) { throw WconvError(.usage, "--threshold must be between 0 and 1 (a probability), got \(t)") }
            let recorded = Trainer.recordedThresholds(graph, labels: ds.classes)
            let th = threshold.map { [Double](repeating: $0, count: ds.classes.count) } ?? recorded
            let m = try Trainer.evaluateMultiLabel(graph: graph, data: ds, threads: cpu.threads, batchSize: batchSize, thresholds: th,
                                                   thresholdSource: threshold != nil ? "--threshold" : (recorded != nil ? "the model's wconv.thresholds" : nil))
            if stdout.json { try printJSON(encoding: m) } else { print(m.table(), terminator: "") }
            return
        }
        let m = try Trainer.evaluate(graph: graph, data: ds, classes: ds.classes, threads: cpu.threads, batchSize: batchSize)
        if stdout.json {
            try printJSON(encoding: m)
        } else {
            print(m.table(), terminator: "")
        }
    }
}
