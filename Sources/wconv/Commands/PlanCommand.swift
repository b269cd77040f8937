import ArgumentParser
import Foundation
import Wconv

struct PlanCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "plan", abstract: "Prints the resolved training plan (groups, trainable epochs, learning rates, BatchNorm policy, warnings) before any compute.")

    @Argument(help: "Model file (any supported format), or a Hugging Face BERT-family folder (text data).") var model: String
    @Option(help: "Training data (ImageFolder directory, .csv or .npz) — gives the classes (or labels) and enables the data checks.") var data: String?
    @Option(help: "Number of classes (or a comma list of names) when no --data is given.") var classes: String?
    @OptionGroup var training: TrainingOptions
    @OptionGroup var text: TextDataOptions
    @Flag(help: "Print the plan as JSON.") var json = false

    func run() throws {
        let flags = try training.config()
        if TextTrainingModel.isFolder(model) { return try runText(TextTrainingModel.load(model, toolVersion: wconvVersion), flags) }
        var graph = try ModelIO.load(path: model, toolVersion: wconvVersion, hashSource: false)
        if TextTrainingModel.isTextGraph(graph) { return try runText(TextTrainingModel(graph: graph, weights: model), flags) }
        let classNames: [String]
        var trainSet: (any LabelledDataset)?
        if let data {
            let d = try TrainingJob.dataset(data)
            classNames = d.classes
            trainSet = d
        } else if let c = classes {
            if let n = Int(c) { classNames = (0..<n).map(String.init) } else { classNames = c.split(separator: ",").map(String.init) }
        } else if let l = graph.labels {
            classNames = l
        } else if let n = HeadReplacement.outputSize(graph) {
            classNames = (0..<n).map(String.init)
        } else {
            throw WconvError(.usage, "give --data DIR or --classes N so the plan knows the number of classes")
        }
        let fit = try DataFit.resolve(graph: graph, config: flags, defaulted: training.defaulted, augment: training.augment, request: training.preprocessing.request(), train: trainSet)
        graph.preprocessing = fit.preprocessing
        let config = fit.config
        let headSize = HeadReplacement.outputSize(graph)
        if config.head == "new" { graph = try HeadReplacement.replace(graph, classes: classNames, dropout: config.dropout, seed: config.seed).graph }
        var plan = try TrainingPlan(graph: graph, config: config, classes: classNames, modelName: modelName(model))
        plan.multiLabel = trainSet?.isMultiLabel ?? false
        try plan.checkData(headOutputs: headSize, dataClasses: classNames.count,
                           channelStats: trainSet.flatMap { TrainingPlan.channelStats($0, preprocessing: fit.preprocessing, seed: config.seed) })
        plan.notes = fit.notes + plan.notes
        plan.warnings += fit.warnings
        if json { printJSON(plan.json) } else { print(plan.render(), terminator: "") }
    }

    /// A text model's plan: needs --data (the classes, lengths and truncation come from it).
    func runText(_ textModel: TextTrainingModel, _ flags: TrainingConfig) throws {
        guard let data else { throw WconvError(.usage, "a text model's plan needs --data train.csv|tsv|jsonl (the classes and text lengths come from it)") }
        let job = try TextJob.prepare(textModel, data: data, val: nil, valSplit: nil, columns: text.columns, maxLength: text.maxLength,
                                      config: flags, defaulted: training.defaulted)
        var plan = try TrainingPlan(graph: job.graph, config: job.config, classes: job.train.classes, modelName: modelName(model))
        plan.annotate(job.fit)
        if json { printJSON(plan.json) } else { print(plan.render(), terminator: "") }
    }
}
