import Foundation
import WconvFormats
import WconvGraph
import WconvTensor
@testable import WconvTraining
import XCTest

/// The seed's comparison on the demo data (fixtures/training/demo, gen_demo.py): a ResNet pretrained
/// by torch on a source task (4 shapes) transferred to 3 new shapes with 12 labels per class.
/// The weights come from the .npz twin of the demo's .pth (the .pth importer is another branch's).
final class DemoComparisonTests: XCTestCase {
    func pretrained() throws -> ModelGraph {
        var g = SyntheticModels.resnet(blocks: [1, 1, 1, 1], widths: [8, 16, 32, 64], classes: 4, input: 64)
        let w = try NumpyArchive.read(path: Fixture.path("demo/source_resnet.npz"))
        for (k, t) in w where !k.hasSuffix("num_batches_tracked") {
            let old = try XCTUnwrap(g.parameters[k], "demo weight \(k) is not in the graph")
            XCTAssertEqual(old.shape, t.shape, k)
            g.parameters[k] = t
        }
        g.preprocessing = Preprocessing(inputSize: [64, 64], resizeShorter: nil, mean: [0.5, 0.5, 0.5], std: [0.25, 0.25, 0.25])
        return g
    }

    func testTransferBeatsScratch() throws {
        let g = try pretrained()
        let train = try ImageFolderDataset(root: Fixture.path("demo/target/train"))
        let val = try ImageFolderDataset(root: Fixture.path("demo/target/val"), classes: train.classes)
        XCTAssertEqual(train.classes, ["bar", "diamond", "ring"])
        var rows: [(String, Double, Double, Double)] = []
        func run(_ name: String, _ mode: TrainingMode, augment: Bool = false, _ edit: (inout TrainingConfig) -> Void = { _ in }) throws -> TrainingResult {
            var c = TrainingConfig()
            c.mode = mode; c.epochs = 15; c.batchSize = 12; c.lr = 1e-2; c.backboneLR = 1e-4; c.bn = .frozen
            c.threads = 2; c.seed = 1; c.dropout = 0.1; c.schedule = "cosine"
            edit(&c)
            let t = try Trainer(graph: g, config: c, train: train, val: val, modelName: "demo", augment: augment, log: { _ in })
            t.computeBaseline = false
            let t0 = Date()
            let r = try t.run()
            rows.append((name, r.metrics!.accuracy, r.metrics!.macroAUC ?? .nan, Date().timeIntervalSince(t0)))
            return r
        }
        let scratch = try run("from scratch", .scratch) { $0.lr = 2e-3 }
        let fe = try run("feature extraction", .featureExtract)
        let ft = try run("fine-tuning", .finetune)
        let pr = try run("progressive unfreezing", .progressive)
        let shifted = try UnlabeledImageDataset(root: Fixture.path("demo/target/shifted"))
        let t = try Trainer(graph: g, config: { var c = TrainingConfig(); c.mode = .finetune; c.epochs = 15; c.batchSize = 12; c.lr = 1e-2; c.backboneLR = 1e-4; c.bn = .frozen; c.threads = 2; c.seed = 1; c.dropout = 0.1; c.mmdWeight = 1; c.mmdKind = .gaussian; return c }(),
                            train: train, val: val, target: shifted, modelName: "demo", augment: false, log: { _ in })
        t.computeBaseline = false
        let t0 = Date()
        let mmd = try t.run()
        rows.append(("fine-tuning + MMD (gaussian)", mmd.metrics!.accuracy, mmd.metrics!.macroAUC ?? .nan, Date().timeIntervalSince(t0)))
        for r in rows { print("demo: \(r.0.padding(toLength: 30, withPad: " ", startingAt: 0)) accuracy \(fmt(r.1 * 100, 1))%  macro AUC \(fmt(r.2, 3))  \(fmt(r.3, 1))s") }
        let shiftedVal = try ImageFolderDataset(root: Fixture.path("demo/target/shifted_val"), classes: train.classes)
        let ftShift = try Trainer.evaluate(graph: ft.graph, data: shiftedVal, classes: train.classes)
        let mmdShift = try Trainer.evaluate(graph: mmd.graph, data: shiftedVal, classes: train.classes)
        print("demo: on the shifted domain: fine-tuning \(fmt(ftShift.accuracy * 100, 1))% (AUC \(fmt(ftShift.macroAUC ?? .nan, 3))), with MMD \(fmt(mmdShift.accuracy * 100, 1))% (AUC \(fmt(mmdShift.macroAUC ?? .nan, 3)))")
        for m in mmd.mmd { print("demo: MMD \(m.kind.rawValue) source/target \(fmt(m.before, 5)) → \(fmt(m.after, 5))") }
        XCTAssertGreaterThan(fe.metrics!.accuracy, scratch.metrics!.accuracy + 0.1)
        XCTAssertGreaterThan(ft.metrics!.accuracy, scratch.metrics!.accuracy + 0.1)
        XCTAssertGreaterThan(pr.metrics!.accuracy, scratch.metrics!.accuracy)
        XCTAssertEqual(mmd.mmd.count, 2)
        // MMD training did what it is for: the measured source/target discrepancy shrinks (torch's run:
        // gaussian 1.40 → 0.30, mean 32.9 → 1.3), and the adapted model still ranks the shifted domain
        // better than chance.
        for m in mmd.mmd { XCTAssertLessThan(m.after, m.before / 2, "MMD \(m.kind.rawValue) \(m.before) → \(m.after)") }
        XCTAssertGreaterThan(mmdShift.macroAUC ?? 0, 0.5)
    }
}
