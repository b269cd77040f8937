import OrderedCollections
import WconvFormats
import WconvGraph
import WconvRuntime
import WconvTensor
@testable import WconvTraining
import XCTest
import WconvTestSupport

/// Three classes told apart by which channel is bright; float images (already network input).
func syntheticData(_ n: Int, seed: UInt64, shift: Float = 0, size: Int = 8) throws -> TensorDataset {
    var rng = RNG(seed: seed)
    var v = [Float](), labels = [Int]()
    for i in 0..<n {
        let c = i % 3
        labels.append(c)
        for ch in 0..<3 { for _ in 0..<(size * size) { v.append(Float(rng.normal()) * 0.5 + (ch == c ? 1.2 : -0.4) + shift) } }
    }
    let t = Tensor(shape: [n, 3, size, size], floats: v)
    return try TensorDataset(images: t, labels: labels, classes: ["r", "g", "b"], name: "synthetic")
}

final class TrainerTests: XCTestCase {
    func config(_ mode: TrainingMode, epochs: Int = 4, _ edit: (inout TrainingConfig) -> Void = { _ in }) -> TrainingConfig {
        var c = TrainingConfig()
        c.mode = mode
        c.epochs = epochs
        c.batchSize = 16
        c.lr = 0.05
        c.backboneLR = 0.005
        c.optimizer = "sgd"
        c.threads = 1
        c.seed = 7
        c.groups = "stem=a|n,block=c,head=z"
        c.dropout = 0
        edit(&c)
        return c
    }

    func testFeatureExtractionCachesAndTrainsOnlyTheHead() throws {
        let g = tinyGraph(classes: 5)
        let train = try syntheticData(48, seed: 1), val = try syntheticData(24, seed: 2)
        var lines: [String] = []
        // Small sets augment by default (DataFit.defaultAugment); without augmentation the frozen features are cached.
        let t = try Trainer(graph: g, config: config(.featureExtract, epochs: 12) { $0.lr = 0.5 }, train: train, val: val, augment: false, log: { lines.append($0) })
        let r = try t.run()
        XCTAssertTrue(r.history.allSatisfy(\.cached))
        XCTAssertTrue(lines.contains { $0.contains("cached frozen features at 'feat'") }, lines.joined(separator: "\n"))
        XCTAssertLessThan(r.history.last!.trainLoss, r.history.first!.trainLoss)
        XCTAssertGreaterThan(r.metrics!.accuracy, 0.6, lines.joined(separator: "\n"))
        for k in ["a.w", "a.b", "c.w", "n.rm", "n.rv", "n.w"] { XCTAssertTrue(r.graph.parameters[k]!.bitwiseEqual(g.parameters[k]!), k) }
        XCTAssertEqual(r.graph.parameters["z.w"]!.shape, [3, 6])
        XCTAssertEqual(r.graph.labels, ["r", "g", "b"])
        XCTAssertNotNil(r.graph.provenance.notes["wconv.training.plan"])
    }

    func testSameSeedIsBitIdenticalAndResumeContinuesExactly() throws {
        let g = tinyGraph(classes: 3)
        let train = try syntheticData(40, seed: 3), val = try syntheticData(12, seed: 4)
        let cfg = config(.progressive, epochs: 4) { $0.optimizer = "adamw"; $0.lr = 0.01; $0.backboneLR = 0.001 }
        func run(_ stopAfter: Int? = nil, resume: String? = nil, dir: String? = nil) throws -> TrainingResult {
            let t = try Trainer(graph: g, config: cfg, train: train, val: val, augment: false, log: { _ in })
            t.checkpointDir = dir
            t.stopAfterEpoch = stopAfter
            return try t.run(resume: resume)
        }
        let a = try run(), b = try run()
        for (k, v) in a.graph.parameters { XCTAssertTrue(v.bitwiseEqual(b.graph.parameters[k]!), k) }
        XCTAssertEqual(a.history.map(\.trainableGroups.count), [1, 2, 3, 3])
        XCTAssertEqual(a.history.map(\.cached), [true, true, false, false])
        let d = TempDir()
        _ = try run(2, dir: d.path)
        let resumed = try run(resume: d.path + "/last.safetensors", dir: d.path)
        XCTAssertEqual(resumed.history.count, 4)
        for (k, v) in a.graph.parameters { XCTAssertTrue(v.bitwiseEqual(resumed.graph.parameters[k]!), "resume differs at \(k)") }
        XCTAssertEqual(a.history.map(\.trainLoss), resumed.history.map(\.trainLoss))
        // The history note lists each epoch's members in declaration order on every run.
        let note = try XCTUnwrap(a.graph.provenance.notes["wconv.training.history"])
        let h = try JSONValue.parse(note, what: "the history note", file: nil, options: .strict)
        XCTAssertEqual(h.array?.count, 4)
        let declared = ["epoch", "trainLoss", "trainAccuracy", "valLoss", "valAccuracy", "valMacroAUC", "headLR", "seconds",
                        "imagesPerSecond", "trainableGroups", "mmd", "cached"]
        let keys = Array(try XCTUnwrap(h[0]?.object).keys)
        XCTAssertEqual(keys, declared.filter(keys.contains))
        XCTAssertEqual(h[3]?["trainLoss"]?.double, a.history[3].trainLoss)
    }

    func testNaNLossStopsWithTheCause() throws {
        let t = try Trainer(graph: tinyGraph(), config: config(.finetune) { $0.lr = 1e30; $0.backboneLR = 1e29 },
                            train: try syntheticData(32, seed: 5), val: nil, log: { _ in })
        let r = try t.run()
        XCTAssertNotNil(r.stopped)
        XCTAssertTrue(r.stopped!.contains("loss became"), r.stopped!)
        // A non-finite loss in the history note is a string, so the note stays strict JSON.
        let note = try XCTUnwrap(r.graph.provenance.notes["wconv.training.history"])
        XCTAssertNoThrow(try JSONValue.parse(note, what: "the history note", file: nil, options: .strict), note)
    }

    func testMMDIsReportedBeforeAndAfter() throws {
        let t = try Trainer(graph: tinyGraph(), config: config(.finetune, epochs: 2) { $0.mmdWeight = 1; $0.mmdKind = .gaussian },
                            train: try syntheticData(30, seed: 6), val: try syntheticData(9, seed: 7), target: try syntheticData(20, seed: 8, shift: 0.8), log: { _ in })
        let r = try t.run()
        XCTAssertEqual(r.mmd.count, 2)
        XCTAssertTrue(r.mmd.allSatisfy { $0.before.isFinite && $0.after.isFinite && $0.before > 0 })
        XCTAssertNotNil(r.history.last?.mmd)
    }

    /// Progressive unfreezing drops the feature cache once the whole network trains: the MMD target
    /// batches must then be images too, not the stale cached features (which crashed the step).
    func testMMDTargetsFollowTheCutWhenProgressiveUnfreezingEndsIt() throws {
        let cfg = config(.progressive, epochs: 4) { $0.mmdWeight = 0.5 }
        let t = try Trainer(graph: tinyGraph(), config: cfg, train: try syntheticData(30, seed: 6), val: try syntheticData(9, seed: 7),
                            target: try syntheticData(20, seed: 8, shift: 0.8), augment: false, log: { _ in })
        let r = try t.run()
        XCTAssertEqual(r.history.map(\.cached), [true, true, false, false])
        XCTAssertTrue(r.history.allSatisfy { $0.mmd?.isFinite == true }, "\(r.history.map(\.mmd))")
        XCTAssertNil(r.stop)
    }

    func testScratchReinitialises() throws {
        let g = tinyGraph()
        let t = try Trainer(graph: g, config: config(.scratch, epochs: 1), train: try syntheticData(16, seed: 1), val: nil, log: { _ in })
        let r = try t.run()
        XCTAssertFalse(r.graph.parameters["a.w"]!.bitwiseEqual(g.parameters["a.w"]!))
    }
}

final class DeterminismTests: XCTestCase {
    /// Two threads: still bit-identical for the same seed (and different for another seed).
    func testTwoThreadsBitIdentical() throws {
        func run(_ seed: UInt64) throws -> ModelGraph {
            var c = TrainingConfig()
            c.mode = .finetune; c.epochs = 2; c.batchSize = 8; c.threads = 2; c.seed = seed; c.dropout = 0.3
            let t = try Trainer(graph: resnet18Graph(width: 8, classes: 3, input: 32), config: c,
                                train: try syntheticData(24, seed: 2, size: 32), val: nil, log: { _ in })
            t.computeBaseline = false
            return try t.run().graph
        }
        let a = try run(1), b = try run(1), c = try run(2)
        for (k, v) in a.parameters { XCTAssertTrue(v.bitwiseEqual(b.parameters[k]!), k) }
        XCTAssertFalse(a.parameters["fc.weight"]!.bitwiseEqual(c.parameters["fc.weight"]!))
    }
}

final class SoftmaxHeadTests: XCTestCase {
    /// A graph ending in softmax (Keras style) trains on the logits before it, as torch would on the
    /// same network without the softmax: identical weights.
    func testSoftmaxOutputTrainsOnLogits() throws {
        var sm = tinyGraph()
        sm.nodes.append(GraphNode(name: "softmax", op: .softmax, inputs: ["logits"], outputs: ["probs"], attributes: ["axis": .int(1)]))
        sm.outputs = [ValueInfo(name: "probs", shape: [nil, 4])]
        var c = TrainingConfig()
        c.mode = .finetune; c.epochs = 2; c.batchSize = 8; c.threads = 1; c.head = "keep"; c.groups = "stem=a|n,block=c,head=z"
        let data = try syntheticData(24, seed: 3), val = try syntheticData(12, seed: 4)
        func run(_ g: ModelGraph) throws -> TrainingResult {
            let t = try Trainer(graph: g, config: c, train: try TensorDataset(images: data.images, labels: data.labels, classes: ["a", "b", "c", "d"], name: "d"),
                                val: try TensorDataset(images: val.images, labels: val.labels, classes: ["a", "b", "c", "d"], name: "v"), log: { _ in })
            t.computeBaseline = false
            return try t.run()
        }
        let a = try run(sm), b = try run(tinyGraph())
        XCTAssertTrue(a.graph.parameters["z.w"]!.bitwiseEqual(b.graph.parameters["z.w"]!))
        XCTAssertEqual(a.metrics!.loss!, b.metrics!.loss!, accuracy: 1e-5)
        XCTAssertEqual(a.metrics!.accuracy, b.metrics!.accuracy)
    }
}
