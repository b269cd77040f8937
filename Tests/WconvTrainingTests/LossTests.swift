@testable import WconvTraining
import XCTest

final class CrossEntropyTests: XCTestCase {
    func testMatchesTorch() throws {
        let f = try XCTUnwrap(Fixture.json("cross_entropy.json") as? [String: Any])
        let logits = floats(f["logits"]), targets = ints(f["targets"])
        let auto = try CrossEntropyLoss.autoWeights(labels: ints(f["labels_for_weights"]), classCount: 4)
        XCTAssertLessThan(relErr(auto, doubles(f["auto_weights"])), 1e-6)
        let cases = f["cases"] as! [[String: Any]]
        XCTAssertEqual(cases.count, 4)
        for c in cases {
            let w = c["weight"] is NSNull ? nil : floats(c["weight"])
            let ce = CrossEntropyLoss(weights: w, labelSmoothing: Float(c["smoothing"] as! Double))
            let (loss, grad) = try ce.loss(logits: logits, targets: targets, classes: 4)
            let el = c["loss"] as! Double
            XCTAssertEqual(loss, el, accuracy: 1e-6 * abs(el), "\(c["smoothing"]!) weighted \(w != nil)")
            XCTAssertLessThan(relErr(grad, doubles(c["grad"])), 1e-6)
        }
    }

    func testStableForHugeLogits() throws {
        let (loss, grad) = try CrossEntropyLoss().loss(logits: [1e30, -1e30, 0, 3e4, 3e4, -3e4], targets: [0, 1], classes: 3)
        XCTAssertTrue(loss.isFinite)
        XCTAssertEqual(loss, log(2) / 2, accuracy: 1e-9)
        XCTAssertTrue(grad.allSatisfy { $0.isFinite })
    }

    func testBadInputs() {
        XCTAssertThrowsError(try CrossEntropyLoss().loss(logits: [0, 1], targets: [2], classes: 2))
        XCTAssertThrowsError(try CrossEntropyLoss(weights: [1]).loss(logits: [0, 1], targets: [0], classes: 2))
        XCTAssertThrowsError(try CrossEntropyLoss.autoWeights(labels: [0, 0, 2], classCount: 3, classNames: ["a", "b", "c"])) { e in
            XCTAssertTrue("\(e)".contains("'b'"))
        }
    }
}

final class MMDTests: XCTestCase {
    func testMatchesTorchAutograd() throws {
        let f = try XCTUnwrap(Fixture.json("mmd.json") as? [String: Any])
        let s = floats(f["source"]), t = floats(f["target"])
        for (kind, key) in [(MMDKind.mean, "mean"), (.gaussian, "gaussian")] {
            let e = f[key] as! [String: Any]
            let r = MMD.compute(kind, source: s, target: t, dim: 5)
            let ev = e["value"] as! Double
            XCTAssertEqual(r.value, ev, accuracy: 1e-6 * abs(ev), key)
            XCTAssertLessThan(relErr(r.gradSource, doubles(e["grad_source"])), 1e-5, key)
            XCTAssertLessThan(relErr(r.gradTarget, doubles(e["grad_target"])), 1e-5, key)
            if kind == .gaussian { XCTAssertEqual(r.bandwidth!, e["bandwidth_base"] as! Double, accuracy: 1e-5) }
        }
    }

    func testFiniteDifferences() {
        var rng = RNG(seed: 9)
        let d = 3
        var s = (0..<(4 * d)).map { _ in Float(rng.normal()) }
        let t = (0..<(5 * d)).map { _ in Float(rng.normal() + 0.5) }
        for kind in [MMDKind.mean, .gaussian] {
            let r = MMD.compute(kind, source: s, target: t, dim: d)
            let b = r.bandwidth
            for i in [0, 4, 11] {
                let h: Float = 1e-2
                let orig = s[i]
                s[i] = orig + h
                var plus = MMD.compute(kind, source: s, target: t, dim: d)
                s[i] = orig - h
                var minus = MMD.compute(kind, source: s, target: t, dim: d)
                s[i] = orig
                if kind == .gaussian {
                    // the bandwidth is a constant for the gradient: skip probes that moved the median pair
                    if plus.bandwidth != b || minus.bandwidth != b { plus.value = 0; minus.value = 0; continue }
                }
                let fd = (plus.value - minus.value) / Double(2 * h)
                XCTAssertEqual(Double(r.gradSource[i]), fd, accuracy: 2e-3 * max(1, abs(fd)), "\(kind) index \(i)")
            }
        }
    }

    func testIdenticalDistributionsGiveZero() {
        let x: [Float] = [1, 2, 3, 4, 5, 6]
        XCTAssertEqual(MMD.compute(.mean, source: x, target: x, dim: 2).value, 0, accuracy: 1e-12)
        XCTAssertEqual(MMD.compute(.gaussian, source: x, target: x, dim: 2).value, 0, accuracy: 1e-12)
    }
}

final class MetricsTests: XCTestCase {
    func testMatchesSklearn() throws {
        let f = try XCTUnwrap(Fixture.json("metrics.json") as? [String: Any])
        let m = ClassificationMetrics(scores: floats(f["probs"]), targets: ints(f["y_true"]), classes: ["a", "b", "c", "d"])
        XCTAssertEqual(m.accuracy, f["accuracy"] as! Double, accuracy: 1e-12)
        XCTAssertEqual(m.confusion, (f["confusion"] as! [[Any]]).map { ints($0) })
        XCTAssertEqual(m.support, ints(f["support"]))
        for (got, exp) in [(m.precision, doubles(f["precision"])), (m.recall, doubles(f["recall"])), (m.f1, doubles(f["f1"]))] {
            for (g, e) in zip(got, exp) { XCTAssertEqual(g, e, accuracy: 1e-12) }
        }
        for (g, e) in zip(m.auc, doubles(f["auc"])) { XCTAssertEqual(g!, e, accuracy: 1e-6) }
        XCTAssertEqual(m.macroAUC!, f["macro_auc"] as! Double, accuracy: 1e-6)
        XCTAssertEqual(m.macroF1, f["macro_f1"] as! Double, accuracy: 1e-12)
        XCTAssertTrue(m.table().contains("confusion"))
    }

    func testAUCUndefinedForAbsentClass() {
        let m = ClassificationMetrics(scores: [0.9, 0.1, 0.2, 0.8], targets: [0, 0], classes: ["x", "y"])
        XCTAssertNil(m.auc[0])
        XCTAssertNil(m.macroAUC)
        XCTAssertEqual(m.accuracy, 0.5)
    }
}
