import ArgumentParser
import Foundation
import Wconv

struct CompareCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "compare",
        abstract: "Trains every (source model, mode) pair with the same seed, data and budget and prints the seed's benchmark table.",
        discussion: "The metric is validation accuracy, or macro ROC AUC for multi-label data; the best run is marked. Every training flag applies to every run (--modes replaces --mode); from scratch, BatchNorm trains whatever --bn says. --report writes the table and each source's learning curves as one HTML page.")

    @Option(help: "Pretrained source models, comma-separated (any supported format).") var sources: String
    @Option(help: "Modes to run for each source, comma-separated: scratch, feature-extract, finetune, progressive.") var modes: String = "scratch,feature-extract,finetune,progressive"
    @Option(help: "Training data: ImageFolder directory, .csv (path + label columns) or .npz.") var data: String
    @Option(help: "Validation data (same classes or label columns).") var val: String?
    @Option(name: .customLong("val-split"), help: "Hold out this fraction of --data for validation (seeded).") var valSplit: Double?
    @OptionGroup var training: TrainingOptions
    @Option(name: .customLong("save-dir"), help: "Write each run's model here as <source>.<mode>.safetensors.") var saveDir: String?
    @Option(name: .shortAndLong, help: "Write the table (Markdown) here.") var output: String?
    @Option(help: "Write an HTML report with the table and the learning curves.") var report: String?
    @Flag(help: "Print the runs as JSON on stdout instead of the table.") var json = false
    @Flag(help: "Log every epoch of every run (stderr).") var verbose = false

    var sourcePaths: [String] { sources.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty } }

    func modeList() throws -> [TrainingMode] {
        try modes.split(separator: ",").map { raw -> TrainingMode in
            let m = raw.trimmingCharacters(in: .whitespaces)
            guard let mode = TrainingMode(rawValue: m) else { throw ValidationError("--modes '\(m)': use scratch, feature-extract, finetune or progressive") }
            return mode
        }
    }

    func validate() throws {
        guard !sourcePaths.isEmpty else { throw ValidationError("--sources needs at least one model file") }
        guard try !modeList().isEmpty else { throw ValidationError("--modes needs at least one mode") }
        guard val != nil || valSplit != nil else { throw ValidationError("compare measures every run on validation data: give --val or --val-split") }
    }

    func run() throws {
        let flags = try training.config()
        let sourcePaths = sourcePaths, modeList = try modeList()
        // Names as given, unless two sources share a file name.
        let names = sourcePaths.map(modelName)
        let display = Set(names).count == names.count ? names : sourcePaths
        let (train, valSet) = try TrainingJob.data(train: data, val: val, valSplit: valSplit, seed: flags.seed)
        // Each source gets the preprocessing that fits the data (as finetune does); the budget
        // (batch size, from the data) is the same for every run.
        var graphs: [(name: String, graph: ModelGraph)] = []
        var config = flags
        for (path, name) in zip(sourcePaths, display) {
            // Hashed for the provenance of the models --save-dir writes, only then.
            var g = try ModelIO.load(path: path, toolVersion: wconvVersion, hashSource: saveDir != nil)
            let fit = try DataFit.resolve(graph: g, config: flags, defaulted: training.defaulted, augment: training.augment, request: training.preprocessing.request(), train: train)
            g.preprocessing = fit.preprocessing
            if graphs.isEmpty { config = fit.config }
            for w in fit.warnings { stderrLine("warning: \(name): \(w)") }
            graphs.append((name, g))
        }
        guard let valSet else { throw WconvError(.usage, "compare needs validation data") }
        stderrLine(TrainingJob.summary(train, name: "training"))
        stderrLine(TrainingJob.summary(valSet, name: "validation"))
        try DatasetCheck.verifyAll(train, threads: config.threads)
        try DatasetCheck.verifyAll(valSet, threads: config.threads)
        if let saveDir { try FileManager.default.createDirectory(atPath: saveDir, withIntermediateDirectories: true) }
        let total = graphs.count * modeList.count
        var k = 0
        let runs = try Comparison.run(sources: graphs, modes: modeList, config: config, train: train, val: valSet, augment: training.augment,
                                      log: { line in
                                          // The plan is printed by `wconv plan`; epochs only with --verbose; warnings always.
                                          if line.hasPrefix("plan:") { return }
                                          if verbose || line.hasPrefix("warning") || line.hasPrefix("guard") || line.hasPrefix("early stopping") { stderrLine("    " + line) }
                                      }, done: { run, result in
            k += 1
            if let saveDir {
                let stem = ((run.source as NSString).lastPathComponent as NSString).deletingPathExtension
                let path = saveDir + "/" + stem + "." + run.mode.rawValue + ".safetensors"
                var g = result.graph
                g.provenance.toolVersion = wconvVersion
                try ModelIO.save(g, to: path)
                run.output = path
            }
            let what = run.metricName == "macroAUC" ? "val macro AUC " : "val accuracy "
            stderrLine("[\(k)/\(total)] \(run.source) · \(run.mode.rawValue): \(what)\(Comparison.figure(run.metric, run.metricName)) (best epoch \(run.bestEpoch.map(String.init) ?? "–") of \(run.epochs)), \(fmt(run.seconds, 1)) s")
        })
        let title = "Transfer comparison: \(train.isMultiLabel ? "\(train.classes.count) labels (multi-label)" : "\(train.classes.count) classes"), \(config.epochs) epochs, seed \(config.seed)"
        let table = Comparison.markdown(runs, title: title)
        if let output { try writeText(table, to: output) }
        if let report {
            let sub = "\(display.joined(separator: ", ")) · \(train.count) training / \(valSet.count) validation images · batch \(config.batchSize), \(config.optimizer), lr \(sci(config.lr)), \(config.threads) threads"
            try TrainingReport.write(CompareReport.html(runs, title: title, subtitle: sub), to: report)
            stderrLine("report: \(report)")
        }
        if json {
            var doc: [(String, JSONValue)] = [("metric", .string(runs.first?.metricName ?? "accuracy")),
                                              ("runs", .array(try runs.map { try JSONValue(encoding: $0) }))]
            if let b = Comparison.best(runs) {
                doc.append(("best", .object([("source", .string(runs[b].source)), ("mode", .string(runs[b].mode.rawValue)),
                                             ("output", runs[b].output.map(JSONValue.string) ?? .null)])))
            }
            printJSON(.object(doc))
        } else {
            print(table, terminator: "")
        }
    }

    func writeText(_ s: String, to path: String) throws {
        let w = try AtomicFileWriter(path: path)
        try w.write(s)
        try w.commit()
    }
}
