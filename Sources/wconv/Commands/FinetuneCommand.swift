import ArgumentParser
import Foundation
import Wconv

struct FinetuneCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "finetune", abstract: "Fine-tunes a model on a labelled dataset and exports it with its labels and preprocessing.")

    @Argument(help: "Model file (any supported format), or a Hugging Face BERT-family folder (text classification).") var model: String
    @Option(help: "Training data: ImageFolder directory (one folder per class), .csv (path + label columns; two or more label columns are multi-label) or .npz with images/labels; for a text model .csv, .tsv or .jsonl with text and label columns.") var data: String
    @Option(help: "Validation data (same classes).") var val: String?
    @Option(name: .customLong("val-split"), help: "Hold out this fraction of --data for validation (seeded, stratified).") var valSplit: Double?
    @Option(name: .customLong("adapt-target"), help: "Unlabeled target-domain images for MMD domain adaptation.") var adaptTarget: String?
    @OptionGroup var training: TrainingOptions
    @OptionGroup var text: TextDataOptions
    @OptionGroup var distributed: DistributedOptions
    @Flag(name: .customLong("no-baseline"), help: "Skip the feature-extraction baseline that guards a fine-tuning run.") var noBaseline = false
    @Flag(name: .customLong("strict-guards"), help: "A tripped guard rail fails the run (exit 1) instead of advising; the best model seen is still written.") var strictGuards = false
    @Option(name: .customLong("checkpoint-dir"), help: "Write an atomic checkpoint here after every epoch.") var checkpointDir: String?
    @Option(help: "Resume from a checkpoint (last.safetensors) written with the same flags.") var resume: String?
    @Option(name: .shortAndLong, help: "Output model: .safetensors | .pth | .onnx | .h5; for a text model, DIR/ (trailing slash) writes a Hugging Face folder.") var output: String
    @Option(help: "Write an HTML training report.") var report: String?
    @Flag(help: "Print the final metrics as JSON on stdout.") var json = false

    func validate() throws {
        // TrainingOptions.validate() has refused an unknown --bn already.
        if let bn = BatchNormPolicy(rawValue: training.bn) { try distributed.check(bn: bn) }
    }

    func run() throws {
        let started = Date()
        if TextTrainingModel.isFolder(model) { return try runText(TextTrainingModel.load(model, toolVersion: wconvVersion), started: started) }
        let flags = try training.config()
        let parallel = try distributed.start()
        var graph = try ModelIO.load(path: model, toolVersion: wconvVersion)
        if TextTrainingModel.isTextGraph(graph) { return try runText(TextTrainingModel(graph: graph, weights: model), started: started, parallel: parallel) }
        let (train, valSet) = try TrainingJob.data(train: data, val: val, valSplit: valSplit, seed: flags.seed)
        let fit = try DataFit.resolve(graph: graph, config: flags, defaulted: training.defaulted, augment: training.augment, request: training.preprocessing.request(), train: train)
        graph.preprocessing = fit.preprocessing
        let config = fit.config
        try distributed.check(config, parallel)
        let target = try adaptTarget.map { try UnlabeledImageDataset(root: $0) }
        stderrLine(TrainingJob.summary(train, name: "training"))
        if let v = valSet { stderrLine(TrainingJob.summary(v, name: "validation")) }
        // Every image is decoded once before training: a bad file stops the run now, not in epoch 7.
        try DatasetCheck.verifyAll(parallel.part(train), threads: config.threads)
        if let v = valSet { try DatasetCheck.verifyAll(parallel.part(v), threads: config.threads) }
        if let t = target { try DatasetCheck.verifyAll(t, threads: config.threads) }
        let trainer = try Trainer(graph: graph, config: config, train: train, val: valSet, target: target, modelName: modelName(model), augment: fit.augment,
                                  log: stderrLine)   // quiet on ranks other than 0
        trainer.annotatePlan(fit)
        trainer.checkpointDir = checkpointDir
        trainer.parallel = parallel
        trainer.computeBaseline = !noBaseline
        showProgress(trainer, total: train.count)
        let result = try trainer.run(resume: resume)
        guard parallel.isRoot else { return }   // rank 0 alone writes the outputs
        try conclude(result, trainer: trainer, trainCount: train.count, valCount: valSet?.count, started: started) { graph in
            var out = graph
            out.provenance.toolVersion = wconvVersion
            try ModelIO.save(out, to: output)
            stderrLine("wrote \(output) (\(out.labels?.count ?? 0) \(train.isMultiLabel ? "labels, multi-label" : "classes"), labels and preprocessing in the metadata)")
        }
    }

    /// A progress bar on stderr when it is a terminal.
    func showProgress(_ trainer: Trainer, total: Int) {
        guard isatty(2) != 0 else { return }
        trainer.progress = { seen, _, loss in
            let w = 30, f = min(w, seen * w / max(total, 1))
            let bar = String(repeating: "█", count: f) + String(repeating: "·", count: w - f)
            FileHandle.standardError.write(Data("\r  \(bar) \(seen)/\(total)  loss \(fmt(loss, 4))   ".utf8))
            if seen >= total { FileHandle.standardError.write(Data("\r".utf8 + Data(repeating: 0x20, count: w + 40) + Data("\r".utf8))) }
        }
    }

    /// The report, the output (`write`), the guard-rail outcome and the final metrics of a run.
    func conclude(_ result: TrainingResult, trainer: Trainer, trainCount: Int, valCount: Int?, started: Date, write: (ModelGraph) throws -> Void) throws {
        let wall = Date().timeIntervalSince(started)
        if let report {
            let html = TrainingReport.html(result: result, plan: trainer.plan, title: "wconv fine-tuning: \(modelName(model))",
                                           trainCount: trainCount, valCount: valCount, wallSeconds: wall)
            try TrainingReport.write(html, to: report)
            stderrLine("report: \(report)")
        }
        guard let kept = result.kept else {
            throw WconvError(.runtime, "guard: \(result.stopped ?? "training ended") — no epoch completed, so there is no model worth writing; \(output) was not written")
        }
        try write(result.graph)
        if result.guardTripped, let why = result.stopped {
            // Advice, not failure: the work is kept; --strict-guards turns it into exit 1.
            let advice = "guard rail tripped at \(why)\n  the best model seen, \(kept), was written to \(output)"
            if strictGuards { throw WconvError(.runtime, advice + " (--strict-guards: exit 1)") }
            stderrLine("warning: " + advice)
        }
        if json {
            var doc: [(String, JSONValue)] = [("output", .string(output)), ("epochs", .int(result.history.count)), ("seconds", .double(wall)),
                                              ("kept", .string(kept))]
            if let why = result.stopped { doc += [("stopped", .string(why)), ("guard_tripped", .bool(result.guardTripped))] }
            if let m = result.metrics { doc.append(("metrics", try JSONValue(encoding: m))) }
            if let m = result.multiLabelMetrics { doc.append(("metrics", try JSONValue(encoding: m))) }
            if let b = result.baselineAccuracy { doc.append(("baseline_accuracy", .double(b))) }
            doc.append(("mmd", .array(result.mmd.map {
                .object([("kind", .string($0.kind.rawValue)), ("before", .double($0.before)), ("after", .double($0.after))])
            })))
            printJSON(.object(doc))
        } else if let m = result.metrics {
            print(m.table(), terminator: "")
        } else if let m = result.multiLabelMetrics {
            print(m.table(), terminator: "")
        }
    }
}
