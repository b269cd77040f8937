import Foundation
import WconvGraph
import WconvTensor
import WconvTestSupport
@testable import WconvTraining
import XCTest

final class CSVDatasetTests: XCTestCase {
    func write(_ dir: TempDir, _ name: String, _ text: String) -> String {
        let p = dir.path + "/" + name
        FileManager.default.createFile(atPath: p, contents: Data(text.utf8))
        return p
    }

    func images(_ dir: TempDir, _ names: [String]) throws {
        let png = try Data(contentsOf: URL(fileURLWithPath: Fixture.path("images/rgb.png")))
        try FileManager.default.createDirectory(atPath: dir.path + "/img", withIntermediateDirectories: true)
        for n in names { FileManager.default.createFile(atPath: dir.path + "/img/" + n, contents: png) }
    }

    func testMultiLabelValuesAndColumnOrder() throws {
        let dir = TempDir()
        try images(dir, ["a.png", "b,c.png"])
        let train = try CSVDataset(path: write(dir, "train.csv", "Path,x,y\nimg/a.png,1.0,\n\"img/b,c.png\",-1,0\n"))
        XCTAssertEqual(train.classes, ["x", "y"])
        XCTAssertEqual(train.multiLabelTargets, [1, 0, -1, 0])
        XCTAssertEqual(train.files, [dir.path + "/img/a.png", dir.path + "/img/b,c.png"])
        // Validation columns are matched by name.
        let val = try CSVDataset(path: write(dir, "val.csv", "y,path,x\n1,img/a.png,0\n"), classes: train.classes, multiLabel: true)
        XCTAssertEqual(val.multiLabelTargets, [0, 1])
        XCTAssertThrowsError(try CSVDataset(path: write(dir, "v2.csv", "path,x,z\nimg/a.png,1,0\n"), classes: train.classes, multiLabel: true)) { e in
            XCTAssertTrue("\(e)".contains("missing y") && "\(e)".contains("not in training z"), "\(e)")
        }
        let sub = SubsetDataset(train, indices: [1])
        XCTAssertEqual(sub.multiLabelTargets, [-1, 0])
    }

    func testSingleLabelCSV() throws {
        let dir = TempDir()
        try images(dir, ["a.png", "b.png", "c.png"])
        let d = try CSVDataset(path: write(dir, "t.csv", "path,label\nimg/a.png,dog\nimg/b.png,cat\nimg/c.png,dog\n"))
        XCTAssertFalse(d.isMultiLabel)
        XCTAssertEqual(d.classes, ["cat", "dog"])
        XCTAssertEqual(d.labels, [1, 0, 1])
        XCTAssertThrowsError(try CSVDataset(path: write(dir, "v.csv", "path,label\nimg/a.png,cow\n"), classes: d.classes, multiLabel: false))
        XCTAssertThrowsError(try CSVDataset(path: write(dir, "e.csv", "path,label\nimg/a.png,\nimg/b.png,cat\n"))) { e in
            XCTAssertTrue("\(e)".contains("line 2"), "\(e)")
        }
    }

    func testBadRowsNameLineAndColumn() throws {
        let dir = TempDir()
        try images(dir, ["a.png"])
        XCTAssertThrowsError(try CSVDataset(path: write(dir, "m.csv", "path,x,y\nimg/a.png,1,0\nimg/gone.png,1,0\n\nimg,0,0\n"))) { e in
            let s = "\(e)"
            XCTAssertEqual((e as? WconvError)?.kind, .invalidInput)
            XCTAssertTrue(s.contains("2 of 3 rows name no image"), s)
            XCTAssertTrue(s.contains("line 3: \(dir.path)/img/gone.png not found"), s)
            XCTAssertTrue(s.contains("line 5: \(dir.path)/img is a directory"), s)
        }
        XCTAssertThrowsError(try CSVDataset(path: write(dir, "v.csv", "path,x,Sex\nimg/a.png,1,Male\nimg/a.png,2,0\nimg/a.png,−1,1.0\n"))) { e in
            let s = "\(e)"
            XCTAssertEqual((e as? WconvError)?.kind, .invalidInput)
            XCTAssertTrue(s.contains("2 label value(s)"), s)
            XCTAssertTrue(s.contains("line 2, column 'Sex': 'Male'"), s)
            XCTAssertTrue(s.contains("line 3, column 'x': '2'"), s)
        }
        XCTAssertThrowsError(try CSVDataset(path: write(dir, "n.csv", "file,x,y\nimg/a.png,1,0\n"))) { e in XCTAssertTrue("\(e)".contains("no 'path' column"), "\(e)") }
    }
}

/// BCE-with-logits, pos-weight and the uncertain policies against torch's values and autograd.
final class BCEWithLogitsTests: XCTestCase {
    func testMatchesTorch() throws {
        let f = try XCTUnwrap(Fixture.json("bce.json") as? [String: Any])
        let logits = floats(f["logits"]), targets = floats(f["targets"]), L = f["l"] as! Int
        let cases = try XCTUnwrap(f["cases"] as? [[String: Any]])
        XCTAssertEqual(cases.count, 6)
        for c in cases {
            let policy = try XCTUnwrap(UncertainPolicy(rawValue: c["policy"] as! String))
            let w = c["pos_weight"] is NSNull ? nil : floats(c["pos_weight"])
            let (loss, grad) = try BCEWithLogitsLoss(posWeight: w, uncertain: policy).loss(logits: logits, targets: targets, labels: L)
            let el = c["loss"] as! Double
            XCTAssertEqual(loss, el, accuracy: 1e-6 * abs(el), "\(policy) weighted \(w != nil)")
            XCTAssertLessThan(relErr(grad, doubles(c["gradient"])), 1e-6, "\(policy) weighted \(w != nil)")
            XCTAssertTrue(grad.allSatisfy(\.isFinite))
        }
        let auto = try XCTUnwrap(f["auto_pos_weight"] as? [String: Any])
        for p in UncertainPolicy.allCases {
            let w = try BCEWithLogitsLoss.autoPosWeight(targets: targets, labels: ["a", "b", "c", "d"], policy: p)
            XCTAssertLessThan(relErr(w, doubles(auto[p.rawValue])), 1e-6, p.rawValue)
        }
    }

    func testRefusals() {
        XCTAssertThrowsError(try BCEWithLogitsLoss.autoPosWeight(targets: [1, 0, 0, -1], labels: ["a", "b"], policy: .zeros)) { e in
            XCTAssertTrue("\(e)".contains("label 'b' has no positive"), "\(e)")
        }
        XCTAssertThrowsError(try BCEWithLogitsLoss.posWeight("1,2,3", targets: [1, 0], labels: ["a", "b"], policy: .ignore))
        // Every term masked: no loss, no gradient (torch's masked mean would be 0/0).
        let (l, g) = try! BCEWithLogitsLoss(uncertain: .ignore).loss(logits: [3, -2], targets: [-1, -1], labels: 2)
        XCTAssertEqual(l, 0)
        XCTAssertEqual(g, [0, 0])
    }
}

/// Per-label ROC AUC, average precision and F1 against scikit-learn (uncertain entries masked).
final class MultiLabelMetricsTests: XCTestCase {
    func testMatchesSklearn() throws {
        let f = try XCTUnwrap(Fixture.json("multilabel_metrics.json") as? [String: Any])
        let L = f["l"] as! Int
        let scores = floats(f["scores"]), targets = floats(f["targets"])
        let expected = try XCTUnwrap(f["labels"] as? [[String: Any]])
        let names = (0..<L).map { "l\($0)" }
        for th in [0.5, 0.3] {
            let m = MultiLabelMetrics(probabilities: scores, targets: targets, labels: names, thresholds: [Double](repeating: th, count: L))
            for j in 0..<L {
                let e = expected[j]
                XCTAssertEqual(m.evaluated[j], e["count"] as! Int)
                XCTAssertEqual(m.positives[j], e["positives"] as! Int)
                if let auc = e["auc"] as? Double { XCTAssertEqual(try XCTUnwrap(m.auc[j]), auc, accuracy: 1e-12, "label \(j)") } else { XCTAssertNil(m.auc[j]) }
                if let ap = e["ap"] as? Double { XCTAssertEqual(try XCTUnwrap(m.prAUC[j]), ap, accuracy: 1e-12, "label \(j)") } else { XCTAssertNil(m.prAUC[j]) }
                XCTAssertEqual(m.f1[j], e["f1@\(th)"] as! Double, accuracy: 1e-12, "label \(j) at \(th)")
                XCTAssertEqual(m.precision[j], e["precision@\(th)"] as! Double, accuracy: 1e-12)
                XCTAssertEqual(m.recall[j], e["recall@\(th)"] as! Double, accuracy: 1e-12)
            }
            XCTAssertEqual(try XCTUnwrap(m.macroAUC), f["macro_auc"] as! Double, accuracy: 1e-12)
        }
        // The per-label best thresholds reach sklearn's best F1 over all thresholds.
        let best = MultiLabelMetrics.bestThresholds(probabilities: scores, targets: targets, labels: L)
        let m = MultiLabelMetrics(probabilities: scores, targets: targets, labels: names, thresholds: best)
        for j in 0..<L { XCTAssertEqual(m.f1[j], expected[j]["best_f1"] as! Double, accuracy: 1e-12, "label \(j)") }
    }
}

/// The "done when" of issue 11: wconv's multi-label run of the recipe in
/// fixtures/training/multilabel/reference.json (same initial weights, data order, no augmentation)
/// reaches torch's macro AUC. With WCONV_INTEROP_OUT set, the exports and wconv's validation
/// logits are left in $WCONV_INTEROP_OUT/multilabel/ for tools/interop/check_multilabel.py.
final class MultiLabelTrainingTests: XCTestCase {
    func testMatchesTorchReference() throws {
        let ref = try XCTUnwrap(Fixture.json("multilabel/reference.json") as? [String: Any])
        let recipe = try XCTUnwrap(ref["recipe"] as? [String: Any])
        var g = try ModelIO.load(path: Fixture.path("multilabel/pretrained.pth"))
        g.preprocessing = Preprocessing(inputSize: [32, 32], resizeShorter: nil, mean: [0.5, 0.5, 0.5], std: [0.25, 0.25, 0.25])
        let train = try CSVDataset(path: Fixture.path("multilabel/train.csv"))
        let val = try CSVDataset(path: Fixture.path("multilabel/val.csv"), classes: train.classes, multiLabel: true)
        XCTAssertEqual(train.classes, ref["findings"] as? [String])
        var c = TrainingConfig()
        c.mode = .finetune; c.head = "keep"; c.optimizer = "adamw"
        c.lr = recipe["lr"] as! Double; c.backboneLR = recipe["backbone_lr"] as? Double; c.weightDecay = recipe["weight_decay"] as! Double
        c.schedule = "constant"; c.batchSize = recipe["batch_size"] as! Int; c.epochs = recipe["epochs"] as! Int
        c.shuffle = false; c.bn = .auto; c.threads = 2
        c.multiLabel = MultiLabelOptions(posWeight: "auto", uncertain: .ignore)
        var lines: [String] = []
        let t = try Trainer(graph: g, config: c, train: train, val: val, modelName: "pretrained.pth", augment: false, log: { lines.append($0) })
        t.computeBaseline = false
        XCTAssertLessThan(relErr(try XCTUnwrap(t.multiLabel?.loss.posWeight), doubles(ref["pos_weight"])), 1e-6)
        let r = try t.run()
        let m = try XCTUnwrap(r.multiLabelMetrics)
        let torchAUC = ref["best_macro_auc"] as! Double
        let auc = try XCTUnwrap(m.macroAUC)
        print("multi-label recipe: wconv macro AUC \(fmt(auc, 4)) (best epoch \((r.bestEpoch ?? -1) + 1)), torch \(fmt(torchAUC, 4)) (best epoch \(ref["best_epoch"]!))")
        XCTAssertEqual(auc, torchAUC, accuracy: 0.03, lines.joined(separator: "\n"))
        // Per epoch too: the same recipe follows the same curve.
        let curve = doubles(ref["val_macro_auc_per_epoch"])
        for (e, rec) in r.history.enumerated() { XCTAssertEqual(try XCTUnwrap(rec.valMacroAUC), curve[e], accuracy: 0.03, "epoch \(e + 1)") }
        XCTAssertTrue(Trainer.isMultiLabelModel(r.graph))
        let recorded = try XCTUnwrap(Trainer.recordedThresholds(r.graph, labels: train.classes))
        for (a, b) in zip(recorded, m.thresholds) { XCTAssertEqual(a, b, accuracy: 1e-12) }

        guard let dir = ProcessInfo.processInfo.environment["WCONV_INTEROP_OUT"], !dir.isEmpty else { return }
        let out = dir + "/multilabel"
        try FileManager.default.createDirectory(atPath: out, withIntermediateDirectories: true)
        try ModelIO.save(r.graph, to: out + "/multilabel.safetensors")
        try ModelIO.save(r.graph, to: out + "/multilabel.pth")
        let (logits, rows) = try Trainer.outputs(graph: r.graph, data: val, width: train.classes.count, threads: 2, batchSize: 32)
        let doc: [String: Any] = ["rows": rows, "logits": logits.map(Double.init), "macro_auc": auc, "labels": train.classes]
        try JSONSerialization.data(withJSONObject: doc).write(to: URL(fileURLWithPath: out + "/wconv_val.json"))
    }

    /// Every mode, the feature cache and MMD run on multi-label data and report multi-label figures.
    func testEveryModeCacheAndMMD() throws {
        var g = try ModelIO.load(path: Fixture.path("multilabel/pretrained.pth"))
        g.preprocessing = Preprocessing(inputSize: [32, 32], resizeShorter: nil, mean: [0.5, 0.5, 0.5], std: [0.25, 0.25, 0.25])
        let all = try CSVDataset(path: Fixture.path("multilabel/train.csv"))
        let train = SubsetDataset(all, indices: Array(0..<64)), val = SubsetDataset(all, indices: Array(64..<112))
        let target = try UnlabeledImageDataset(root: Fixture.path("multilabel/images/val"))
        for (mode, mmd) in [(TrainingMode.featureExtract, false), (.progressive, false), (.scratch, false), (.finetune, true)] {
            var c = TrainingConfig()
            c.mode = mode; c.epochs = 2; c.batchSize = 16; c.lr = 3e-3; c.threads = 2
            c.multiLabel = MultiLabelOptions(posWeight: "auto", uncertain: .ones)
            if mmd { c.mmdWeight = 1; c.mmdKind = .gaussian }
            let t = try Trainer(graph: g, config: c, train: train, val: val, target: mmd ? target : nil, augment: mode == .scratch, log: { _ in })
            t.computeBaseline = false
            let r = try t.run()
            XCTAssertEqual(r.history.count, 2, "\(mode)")
            XCTAssertNil(r.metrics)
            let m = try XCTUnwrap(r.multiLabelMetrics, "\(mode)")
            XCTAssertEqual(m.count, 48)
            XCTAssertNotNil(m.macroAUC)
            XCTAssertTrue(r.history.allSatisfy { $0.trainLoss.isFinite && $0.valMacroAUC != nil }, "\(mode)")
            // Frozen features are cached whenever part of the network is frozen and inputs are not augmented.
            XCTAssertEqual(r.history.last?.cached, mode == .featureExtract || mode == .progressive, "\(mode)")
            XCTAssertEqual(r.graph.parameters["fc.weight"]?.shape, [5, 32])
            if mmd { XCTAssertEqual(r.mmd.count, 2); XCTAssertNotNil(r.history.last?.mmd) }
        }
    }
}
