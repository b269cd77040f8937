import Foundation
import WconvGraph
import WconvTensor
@testable import WconvTraining
import XCTest
import WconvTestSupport

/// End to end through files: PNG/JPEG class folders → decode → random resized crop + flip on the
/// background loader → a ResNet-18 graph → fine-tuning → metrics → report, with a held-out split.
final class ImageFolderTrainingTests: XCTestCase {
    func writeFolder(_ dir: TempDir, perClass: Int) throws {
        var rng = RNG(seed: 4)
        for (ci, cls) in ["red", "green", "blue"].enumerated() {
            try FileManager.default.createDirectory(atPath: dir.path + "/" + cls, withIntermediateDirectories: true)
            for i in 0..<perClass {
                let w = 40 + rng.below(16), h = 36 + rng.below(16)
                var px = [UInt8](repeating: 0, count: w * h * 3)
                for k in 0..<(w * h) {
                    for c in 0..<3 {
                        let base = c == ci ? 170.0 : 70.0
                        px[k * 3 + c] = UInt8(max(0, min(255, base + rng.normal() * 40)))
                    }
                }
                try PNGEncoder.write(RGBImage(width: w, height: h, pixels: px), to: dir.path + "/\(cls)/\(i).png")
            }
        }
    }

    func testFineTuneFromImageFiles() throws {
        let d = TempDir()
        try writeFolder(d, perClass: 12)
        let (train, val) = try TrainingJob.data(train: d.path, val: nil, valSplit: 0.25, seed: 3)
        XCTAssertEqual(val?.count, 9)
        try DatasetCheck.verifyAll(train)
        var g = resnet18Graph(width: 8, classes: 1000, input: 32)
        g.preprocessing = Preprocessing(inputSize: [32, 32], resizeShorter: 36, mean: [0.45, 0.45, 0.45], std: [0.25, 0.25, 0.25])
        var c = TrainingConfig()
        c.mode = .finetune; c.epochs = 3; c.batchSize = 9; c.lr = 0.01; c.backboneLR = 0.001; c.threads = 2; c.bn = .frozen
        var lines: [String] = []
        let t = try Trainer(graph: g, config: c, train: train, val: val, modelName: "resnet18-8", log: { lines.append($0) })
        XCTAssertTrue(t.augment)
        let r = try t.run()
        XCTAssertEqual(r.history.count, 3, lines.joined(separator: "\n"))
        XCTAssertFalse(r.history.contains(where: \.cached))
        XCTAssertEqual(r.graph.parameters["fc.weight"]?.shape, [3, 64])
        XCTAssertEqual(r.metrics?.count, 9)
        XCTAssertTrue(lines.contains { $0.contains("epoch 3/3") })
        XCTAssertTrue(lines.first { $0.hasPrefix("plan:") }?.contains("layer4") ?? false)
        let html = TrainingReport.html(result: r, plan: t.plan, title: "t", trainCount: train.count, valCount: val?.count, wallSeconds: 1)
        XCTAssertTrue(html.contains("layer3"))
        // eval on the split with the trained graph
        let m = try Trainer.evaluate(graph: r.graph, data: val!, classes: train.classes)
        XCTAssertEqual(m.count, 9)
    }
}
