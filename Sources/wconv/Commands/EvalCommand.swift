import ArgumentParser
import Foundation
import Wconv

struct EvalCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "eval", abstract: "Evaluates a classifier on a labelled dataset: accuracy, per-class precision/recall/F1, one-vs-rest ROC AUC, confusion matrix; for multi-label CSVs per-label ROC AUC, PR AUC and F1.")

    @Argument(help: "Model file (any supported format), or a Hugging Face BERT-family folder.") var model: String
    @Option(help: "Labelled data: ImageFolder directory, .csv (path + label columns; two or more label columns are multi-label) or .npz with images/labels; for a text model .csv, .tsv or .jsonl with text and label columns.") var data: String
    @Option(help: "Multi-label: decision threshold on every label's probability (default: the per-label thresholds recorded in the model, else 0.5).") var threshold: Double?
    @OptionGroup var cpu: ThreadsOption
    @OptionGroup var arithmetic: PrecisionOption
    @Option(name: .customLong("batch-size"), help: "Batch size (default: 32 at 224 px, more for smaller inputs, up to 256).") var batchSize: Int?
    @OptionGroup var stdout: JSONFlag
    @OptionGroup var preprocessing: PreprocessingOptions
    @OptionGroup var text: TextDataOptions

    func run() throws {
        let precision = try arithmetic.checked()
        if TextTrainingModel.isFolder(model) { return try runText(TextTrainingModel.load(model, toolVersion: wconvVersion)) }
        var graph = try ModelIO.load(path: model, toolVersion: wconvVersion, hashSource: false)
        if TextTrainingModel.isTextGraph(graph) { return try runText(TextTrainingModel(graph: graph, weights: model)) }
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
            let m = try Trainer.evaluateMultiLabel(graph: graph, data: ds, threads: cpu.threads, batchSize: imageBatch(graph), precision: precision, thresholds: th,
                                                   thresholdSource: threshold != nil ? "--threshold" : (recorded != nil ? "the model's wconv.thresholds" : nil))
            if stdout.json { try printJSON(encoding: m) } else { print(m.table(), terminator: "") }
            return
        }
        let m = try Trainer.evaluate(graph: graph, data: ds, classes: ds.classes, threads: cpu.threads, batchSize: imageBatch(graph), precision: precision)
        if stdout.json {
            try printJSON(encoding: m)
        } else {
            if precision != .f32 { print("precision: \(precision.summary)") }
            print(m.table(), terminator: "")
        }
    }

    /// --batch-size, else as large as the input size allows (validation's rule).
    func imageBatch(_ graph: ModelGraph) -> Int {
        batchSize ?? Trainer.evalBatchSize(trainingBatch: 16, inputSize: (graph.preprocessing ?? .imagenet).inputSize)
    }

    /// A text classifier on text data: its classes from config.json's id2label (else the model's
    /// labels), so a label it does not know is refused naming the line.
    func runText(_ textModel: TextTrainingModel) throws {
        let classes = textModel.labels
        guard textModel.graph.outputs.first?.name == "logits", let width = textModel.graph.parameters["classifier.weight"]?.shape.first else {
            throw WconvError.invalid("has no sequence-classification head (no logits output) to evaluate; train one with `wconv finetune`", file: model)
        }
        let tokenizer = try WordPieceTokenizer(model: textModel.weights)
        let maxLength = try TextFit.maxLength(text.maxLength, model: textModel)
        let ds = try text.read(data, model: textModel, tokenizer: tokenizer, maxLength: maxLength, classes: classes)
        if ds.classes.count != width {
            throw WconvError.invalid("the model predicts \(width) classes but the data has \(ds.classes.count); evaluate on data with the model's classes")
        }
        if ds.truncatedCount > 0 { stderrLine("\(ds.truncatedCount) of \(ds.count) texts truncated to --max-length \(maxLength)") }
        let m = try Trainer.evaluate(graph: textModel.graph, data: ds, classes: ds.classes, threads: cpu.threads, batchSize: batchSize ?? 32)
        if stdout.json { try printJSON(encoding: m) } else { print(m.table(), terminator: "") }
    }
}
