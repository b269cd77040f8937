import Foundation
import Wconv

/// `finetune` on a BERT-family model and text data: the same trainer, modes and guard rails as
/// images, fed token batches; `-o DIR/` writes a Hugging Face folder.
extension FinetuneCommand {
    func runText(_ textModel: TextTrainingModel, started: Date, parallel given: DataParallel? = nil) throws {
        let parallel = try given ?? distributed.start()
        if adaptTarget != nil { throw WconvError(.usage, "--adapt-target (MMD domain adaptation) takes images; it is not available for text models") }
        if parallel.isDistributed { throw WconvError(.usage, "data-parallel (mpirun) training of text models is not supported yet; run one process (--threads N)") }
        let flags = try training.config()
        let folderOutput = output.hasSuffix("/") || TextTrainingModel.isFolder(output)
        if !folderOutput && ModelIO.Format(path: output) == nil {
            throw WconvError(.usage, "cannot tell the output format from '\(output)': end it with / for a Hugging Face folder, or use .safetensors, .pth or .onnx")
        }
        let job = try TextJob.prepare(textModel, data: data, val: val, valSplit: valSplit, columns: text.columns, maxLength: text.maxLength,
                                      config: flags, defaulted: training.defaulted)
        let (train, valSet, config) = (job.train, job.val, job.config)
        try distributed.check(config, parallel)
        stderrLine(TrainingJob.summary(train, name: "training", unit: "texts"))
        if let v = valSet { stderrLine(TrainingJob.summary(v, name: "validation", unit: "texts")) }
        let trainer = try Trainer(graph: job.graph, config: config, train: train, val: valSet, modelName: modelName(model), augment: false, log: stderrLine)
        trainer.annotatePlan(job.fit)
        if trainer.plan.encoderLRTooHigh && strictGuards {
            stderrLine(trainer.plan.render())
            throw WconvError(.runtime, "guard rail: the encoder learning rate is far above BERT's 2e-5–5e-5 (see the plan's warning); --strict-guards refuses the run, nothing was trained or written")
        }
        trainer.checkpointDir = checkpointDir
        trainer.parallel = parallel
        trainer.computeBaseline = !noBaseline
        showProgress(trainer, total: train.count)
        let result = try trainer.run(resume: resume)
        guard parallel.isRoot else { return }
        try conclude(result, trainer: trainer, trainCount: train.count, valCount: valSet?.count, started: started) { out in
            if folderOutput {
                try HFExport.write(out, model: textModel, classes: train.classes, to: output)
                stderrLine("wrote \(output): a Hugging Face \(textModel.family == .bert ? "BertForSequenceClassification" : "DistilBertForSequenceClassification") folder (model.safetensors, config.json with id2label, tokenizer files)")
            } else {
                var g = out
                g.provenance.toolVersion = wconvVersion
                try ModelIO.save(g, to: output)
                stderrLine("wrote \(output) (\(train.classes.count) classes in the metadata)")
            }
        }
    }
}
