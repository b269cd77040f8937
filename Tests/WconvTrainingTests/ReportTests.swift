import Foundation
import WconvGraph
@testable import WconvTraining
import XCTest
import WconvTestSupport

final class ReportTests: XCTestCase {
    func testReportHasCurvesConfusionBarsAndPlan() throws {
        var c = TrainingConfig()
        c.mode = .progressive; c.epochs = 5; c.batchSize = 16; c.lr = 0.05; c.backboneLR = 0.005; c.optimizer = "sgd"
        c.threads = 1; c.groups = "stem=a|n,block=c,head=z"; c.dropout = 0.1; c.classWeights = "auto"
        let t = try Trainer(graph: tinyGraph(), config: c, train: try syntheticData(60, seed: 1), val: try syntheticData(30, seed: 2), modelName: "tiny.safetensors", augment: false, log: { _ in })
        let r = try t.run()
        let html = TrainingReport.html(result: r, plan: t.plan, title: "wconv fine-tuning: tiny", trainCount: 60, valCount: 30, wallSeconds: 1.5)
        XCTAssertEqual(html.components(separatedBy: "<svg").count - 1, 4)
        XCTAssertTrue(html.contains("Confusion matrix"))
        XCTAssertTrue(html.contains("feature-extract baseline"))
        XCTAssertTrue(html.contains("stem"))
        let d = TempDir()
        try TrainingReport.write(html, to: d.path + "/r.html")
        XCTAssertTrue(FileManager.default.fileExists(atPath: d.path + "/r.html"))
        if let sample = ProcessInfo.processInfo.environment["WCONV_REPORT_SAMPLE"] { try TrainingReport.write(html, to: sample) }
    }
}
