import WconvGraph
import WconvTensor
@testable import WconvTraining
import XCTest

/// Guard rails advise (issue 11): the output is the best model seen, the baseline guard waits for
/// half the epochs and a trend that is not rising; `--patience` and `--restore-best`.
final class GuardRailTests: XCTestCase {
    func testBaselineGuardWaitsForHalfTheEpochsAndAFlatOrFallingTrend() {
        let below = [0.40, 0.41, 0.40, 0.39]
        XCTAssertFalse(BaselineGuard.trips(scores: Array(below.prefix(3)), totalEpochs: 8, baseline: 0.6, margin: 0.02), "before half the epochs")
        XCTAssertTrue(BaselineGuard.trips(scores: below, totalEpochs: 8, baseline: 0.6, margin: 0.02))
        XCTAssertFalse(BaselineGuard.trips(scores: [0.30, 0.40, 0.45, 0.50], totalEpochs: 8, baseline: 0.6, margin: 0.02), "still rising")
        XCTAssertFalse(BaselineGuard.trips(scores: [0.40, 0.41, 0.62, 0.50], totalEpochs: 8, baseline: 0.6, margin: 0.02), "one of the last two at the baseline")
        XCTAssertTrue(BaselineGuard.trips(scores: [0.70, 0.50, 0.45, 0.40], totalEpochs: 7, baseline: 0.6, margin: 0.02), "falling")
        XCTAssertTrue(BaselineGuard.trendRising([0.5, 0.4, 0.6]))
        XCTAssertFalse(BaselineGuard.trendRising([0.6, 0.4, 0.6]))
    }

    func testPatienceCountsEpochsWithoutImprovement() {
        var p = EarlyStopping(patience: 2)
        XCTAssertFalse(p.record(improved: true))
        XCTAssertFalse(p.record(improved: false))
        XCTAssertFalse(p.record(improved: true))
        XCTAssertFalse(p.record(improved: false))
        XCTAssertTrue(p.record(improved: false))
    }

    func config(_ mode: TrainingMode, epochs: Int, _ edit: (inout TrainingConfig) -> Void = { _ in }) -> TrainingConfig {
        var c = TrainingConfig()
        c.mode = mode; c.epochs = epochs; c.batchSize = 16; c.optimizer = "sgd"; c.threads = 1; c.seed = 7
        c.groups = "stem=a|n,block=c,head=z"; c.dropout = 0
        edit(&c)
        return c
    }

    /// A backbone LR that wrecks the features trips the guard; the run still hands back the best
    /// model seen, which is never worse than the feature-extraction baseline it computed first.
    func testTrippedGuardKeepsTheBestModelSeen() throws {
        let val = try syntheticData(24, seed: 10)
        let t = try Trainer(graph: tinyGraph(), config: config(.finetune, epochs: 6) { $0.lr = 0.05; $0.backboneLR = 5 },
                            train: try syntheticData(48, seed: 9), val: val, log: { _ in })
        let r = try t.run()
        let b = try XCTUnwrap(r.baselineAccuracy)
        XCTAssertTrue(r.guardTripped, "baseline \(b), val \(r.history.map { $0.valAccuracy ?? -1 })")
        XCTAssertGreaterThanOrEqual(r.history.count, 3, "not before half the epochs")
        XCTAssertNotNil(r.kept)
        let m = try XCTUnwrap(r.metrics)
        let bestSeen = max(b, r.history.compactMap(\.valAccuracy).max() ?? 0)
        XCTAssertEqual(m.accuracy, bestSeen, accuracy: 1e-9, "the output scores the best validation accuracy seen")
    }

    /// With no learning at all (updates below float resolution) the metric never improves:
    /// `patience 1` ends the run after epoch 2, and the output is epoch 1's.
    func testPatienceStopsAndRestoresTheBestEpoch() throws {
        let c = config(.featureExtract, epochs: 6) { $0.lr = 1e-30; $0.schedule = "constant"; $0.patience = 1 }
        let t = try Trainer(graph: tinyGraph(), config: c, train: try syntheticData(32, seed: 1), val: try syntheticData(12, seed: 2), log: { _ in })
        let r = try t.run()
        XCTAssertEqual(r.history.count, 2)
        guard case .earlyStopping? = r.stop else { return XCTFail("expected early stopping, got \(String(describing: r.stop))") }
        XCTAssertFalse(r.guardTripped)
        XCTAssertEqual(r.bestEpoch, 0)
        XCTAssertTrue(r.kept?.hasPrefix("epoch 1") ?? false, r.kept ?? "nil")
        XCTAssertThrowsError(try Trainer(graph: tinyGraph(), config: c, train: try syntheticData(32, seed: 1), val: nil, log: { _ in }), "patience needs validation data")
    }

    func testNoRestoreBestKeepsTheLastEpoch() throws {
        let c = config(.featureExtract, epochs: 3) { $0.lr = 0.5; $0.restoreBest = false }
        let r = try Trainer(graph: tinyGraph(), config: c, train: try syntheticData(32, seed: 1), val: try syntheticData(12, seed: 2), log: { _ in }).run()
        XCTAssertTrue(r.kept?.hasPrefix("epoch 3, the last") ?? false, r.kept ?? "nil")
        XCTAssertEqual(r.metrics?.accuracy ?? -1, r.history.last?.valAccuracy ?? -2, accuracy: 1e-9)
    }
}

/// Preprocessing that fits the data (issue 11 §3).
final class InputSizingTests: XCTestCase {
    func testTotalStrideOfAResNetIs32() {
        XCTAssertEqual(InputSizing.totalStride(resnet18Graph(width: 8, classes: 3, input: 64)), 32)
        XCTAssertEqual(InputSizing.totalStride(tinyGraph()), 1)
    }

    func testImageHeadersGiveTheDecodedSizes() throws {
        let expected = try XCTUnwrap(Fixture.json("images.json") as? [String: [String: Any]])
        var checked = 0
        for (name, e) in expected {
            guard let w = e["width"] as? Int, let h = e["height"] as? Int else { continue }
            let d = try XCTUnwrap(ImageDecoder.dimensions(path: Fixture.path("images/" + name)), name)
            XCTAssertEqual(d.width, w, name)
            XCTAssertEqual(d.height, h, name)
            checked += 1
        }
        XCTAssertGreaterThanOrEqual(checked, 5)
        XCTAssertNil(ImageDecoder.dimensions([0x00, 0x01, 0x02]))
    }

    func graph(assumed: Bool) -> ModelGraph {
        var g = resnet18Graph(width: 8, classes: 3, input: 64)
        g.inputs[0].shape = [nil, 3, nil, nil]
        g.preprocessing = .imagenet
        g.preprocessing?.assumed = assumed ? true : nil
        return g
    }

    func survey(_ sizes: [[Int]]) -> ImageSizeSurvey { ImageSizeSurvey(sizes: sizes, total: sizes.count) }

    func testAutoPicksTheNativeSizeRoundedToTheStrideForAModelWithoutMetadata() throws {
        let d = try InputSizing.resolve(graph: graph(assumed: true), request: PreprocessingRequest(), survey: survey([[30, 30], [32, 32], [40, 36]]))
        XCTAssertEqual(d.preprocessing.inputSize, [32, 32])
        XCTAssertEqual(d.preprocessing.resizeShorter, 32)
        XCTAssertNil(d.preprocessing.assumed)
        XCTAssertTrue(d.notes[0].contains("auto") && d.notes[0].contains("stride 32"), d.notes[0])
        XCTAssertTrue(d.notes.contains { $0.hasPrefix("normalisation: mean [0.485, 0.456, 0.406]") }, "\(d.notes)")
        XCTAssertTrue(d.warnings.isEmpty)
        // Large images keep the default; 50-pixel images round to 64.
        XCTAssertEqual(try InputSizing.resolve(graph: graph(assumed: true), request: PreprocessingRequest(), survey: survey([[500, 375]])).preprocessing.inputSize, [224, 224])
        XCTAssertEqual(try InputSizing.resolve(graph: graph(assumed: true), request: PreprocessingRequest(), survey: survey([[50, 50]])).preprocessing.inputSize, [64, 64])
    }

    func testRecordedPreprocessingIsKeptAndContradictingFlagsWarn() throws {
        let kept = try InputSizing.resolve(graph: graph(assumed: false), request: PreprocessingRequest(), survey: survey([[32, 32]]))
        XCTAssertEqual(kept.preprocessing, .imagenet)
        XCTAssertTrue(kept.warnings.isEmpty)
        let d = try InputSizing.resolve(graph: graph(assumed: false), request: PreprocessingRequest(inputSize: .fixed(64), mean: [0.5, 0.5, 0.5]), survey: nil)
        XCTAssertEqual(d.preprocessing.inputSize, [64, 64])
        XCTAssertEqual(d.warnings.count, 2, "\(d.warnings)")
        XCTAssertTrue(d.warnings.contains { $0.contains("--mean [0.5, 0.5, 0.5] contradicts") })
    }

    func testSmallDatasetsGetAFifthOfTheSetAsBatch() {
        XCTAssertEqual(DataFit.defaultBatchSize(trainCount: 50), 10)
        XCTAssertEqual(DataFit.defaultBatchSize(trainCount: 3), 1)
        XCTAssertEqual(DataFit.defaultBatchSize(trainCount: 10_000), 32)
    }
}
