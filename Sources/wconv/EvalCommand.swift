import ArgumentParser
import Foundation
import Wconv

struct EvalCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "eval", abstract: "Evaluates a classifier on a labelled dataset: accuracy, per-class precision/recall/F1, one-vs-rest ROC AUC, confusion matrix.")

    @Argument(help: "Model file (any supported format).") var model: String
    @Option(help: "Labelled data: ImageFolder directory or .npz with images/labels.") var data: String
    @Option(help: "CPU threads.") var threads: Int = 2
    @Option(name: .customLong("batch-size"), help: "Batch size.") var batchSize: Int = 32
    @Flag(help: "Print one JSON document on stdout.") var json = false
    @OptionGroup var preprocessing: PreprocessingOptions

    func run() throws {
        var graph = try ModelIO.load(path: model, toolVersion: wconvVersion)
        let ds = try TrainingJob.dataset(data, classes: graph.labels)
        let request = try preprocessing.request()
        if request.inputSize != nil || request.resize != nil || request.mean != nil || request.std != nil {
            let d = try InputSizing.resolve(graph: graph, request: request, survey: request.inputSize == .auto ? ImageSizeSurvey(ds) : nil)
            graph.preprocessing = d.preprocessing
            for w in d.warnings { stderrLine("warning: " + w) }
        }
        if let n = HeadReplacement.outputSize(graph), n != ds.classes.count {
            throw WconvError.invalid("the model predicts \(n) classes but the data has \(ds.classes.count) (\(ds.classes.prefix(8).joined(separator: ", "))); evaluate on data with the model's classes")
        }
        try DatasetCheck.verifyAll(ds, threads: threads)
        let m = try Trainer.evaluate(graph: graph, data: ds, classes: ds.classes, threads: threads, batchSize: batchSize)
        if json {
            let d = try JSONEncoder().encode(m)
            FileHandle.standardOutput.write(d)
            FileHandle.standardOutput.write(Data("\n".utf8))
        } else {
            print(m.table(), terminator: "")
        }
    }
}
