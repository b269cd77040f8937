import WconvGraph
import WconvRuntime
import WconvTensor
@testable import WconvTraining
import XCTest
import WconvTestSupport

/// Validation runs through the inference path over the training session's live weights
/// (`Trainer.validationSession`): after every epoch it must give the figures the training session's
/// own eval forward gives (the path used before), up to float reassociation.
final class ValidationPathTests: XCTestCase {
    /// Trains `epochs` epochs by hand; after each, compares the recorded validation figures with the
    /// training session's eval forward over the same batches.
    func check(_ t: Trainer, epochs: Int, file: StaticString = #filePath, line: UInt = #line) throws {
        for e in 0..<epochs {
            try t.prepare(epoch: e)
            let rec = try t.trainEpoch(e)
            let s = t.session!
            var logits: [Float] = [], targets: [Int] = []
            if let cache = t.caches["val"], let cut = t.cut {
                let idx = Array(0..<cache.count)
                _ = try s.forward([cut.value: cache.batch(idx)], training: false)
                targets = idx.map { cache.labels[$0] }
            } else {
                try t.forEachValidationBatch(0..<t.val!.count) { b in
                    _ = try s.forward([t.inputName: b.tensor], training: false)
                    logits += s.activation(named: t.logitsName)!.floats()
                    targets += b.indices.map { t.val!.labels[$0] }
                }
            }
            if t.cut != nil { logits = s.activation(named: t.logitsName)!.floats() }
            let m = try Trainer.metrics(logits: logits, targets: targets, classes: t.classes, criterion: t.criterion, C: t.classes.count)
            // Folded BN and oneDNN reassociate sums: the mean loss agrees to ~1e-7 relative here.
            XCTAssertEqual(rec.valLoss!, m.loss!, accuracy: 1e-5 * max(1, abs(m.loss!)), "epoch \(e + 1)", file: file, line: line)
            XCTAssertEqual(rec.valAccuracy!, m.accuracy, "epoch \(e + 1)", file: file, line: line)
        }
    }

    func config(_ mode: TrainingMode) -> TrainingConfig {
        var c = TrainingConfig()
        c.mode = mode; c.epochs = 3; c.batchSize = 8; c.lr = 0.05; c.backboneLR = 0.01; c.optimizer = "sgd"
        c.threads = 1; c.seed = 3; c.groups = "stem=a|n,block=c,head=z"; c.dropout = 0
        return c
    }

    /// Fine-tuning with BatchNorm training: weights and running statistics change every epoch, and
    /// the graph ends in a softmax (validation scores the logits before it).
    func testFineTuningValidationMatchesTheTrainingSessionsEvalForward() throws {
        var g = tinyGraph(classes: 3)
        g.nodes.append(GraphNode(name: "softmax", op: .softmax, inputs: ["logits"], outputs: ["probs"], attributes: ["axis": .int(1)]))
        g.outputs = [ValueInfo(name: "probs", shape: [nil, 3])]
        var c = config(.finetune)
        c.head = "keep"
        c.bn = .train
        let t = try Trainer(graph: g, config: c, train: try syntheticData(40, seed: 11), val: try syntheticData(30, seed: 12), augment: true, log: { _ in })
        XCTAssertNotEqual(t.logitsName, t.outputName)
        try check(t, epochs: 3)
    }

    /// Feature extraction without augmentation validates on the cached features of the frozen front.
    func testCachedFeatureValidationMatches() throws {
        let t = try Trainer(graph: tinyGraph(classes: 5), config: config(.featureExtract), train: try syntheticData(40, seed: 13),
                            val: try syntheticData(30, seed: 14), augment: false, log: { _ in })
        try check(t, epochs: 2)
        XCTAssertNotNil(t.cut)
    }
}
