import Foundation
import WconvGraph
import WconvTensor
@testable import WconvTraining
import XCTest

final class FeatureCacheTests: XCTestCase {
    func data(_ n: Int, size: Int, seed: UInt64) throws -> TensorDataset {
        var rng = RNG(seed: seed)
        var v = [Float](), labels = [Int]()
        for i in 0..<n {
            labels.append(i % 4)
            for ch in 0..<3 { for _ in 0..<(size * size) { v.append(Float(rng.normal()) + (ch == i % 4 ? 0.8 : 0)) } }
        }
        return try TensorDataset(images: Tensor(shape: [n, 3, size, size], floats: v), labels: labels, classes: ["a", "b", "c", "d"], name: "synthetic")
    }

    /// Feature extraction on a ResNet-18 graph: the cached run (frozen backbone once) against the
    /// uncached one (full forward every epoch): same head weights, far less time.
    func testCachedFeatureExtractionMatchesAndIsFaster() throws {
        let g = resnet18Graph(width: 16, classes: 10, input: 64)
        let train = try data(64, size: 64, seed: 1)
        var cfg = TrainingConfig()
        cfg.mode = .featureExtract; cfg.epochs = 10; cfg.batchSize = 16; cfg.lr = 0.01; cfg.threads = 2; cfg.dropout = 0; cfg.shuffle = true
        func run(cached: Bool) throws -> (TrainingResult, Double) {
            let t = try Trainer(graph: g, config: cfg, train: train, val: nil, augment: !cached, log: { _ in })
            let t0 = Date()
            let r = try t.run()
            return (r, Date().timeIntervalSince(t0))
        }
        let (a, ta) = try run(cached: true)
        let (b, tb) = try run(cached: false)
        XCTAssertTrue(a.history.allSatisfy(\.cached))
        XCTAssertFalse(b.history.contains(where: \.cached))
        // The cache runs the frozen part through the inference session (BN folded into convs):
        // equal to float rounding, not bitwise.
        XCTAssertLessThan(relErr(a.graph.parameters["fc.weight"]!.floats(), b.graph.parameters["fc.weight"]!.floats().map(Double.init)), 1e-3)
        print("feature-extract 10 epochs, ResNet-18/16 at 64×64, 64 images: cached \(fmt(ta, 2))s, uncached \(fmt(tb, 2))s, ×\(fmt(tb / ta, 1))")
        XCTAssertLessThan(ta * 2, tb)
    }

    func testDiskBackedCache() throws {
        let c = try FeatureCache(count: 10, sampleShape: [4], labels: Array(0..<10), memoryLimit: 16)
        XCTAssertTrue(c.onDisk)
        for i in 0..<10 { _ = c.sample(i).initialize(from: [Float](repeating: Float(i), count: 4)) }
        XCTAssertEqual(c.batch([3, 7]).floats(), [3, 3, 3, 3, 7, 7, 7, 7])
    }

    func testGraphCutRefusesSkipConnections() {
        let g = resnet18Graph(width: 8, classes: 3, input: 32)
        // Inside a residual block the shortcut crosses the cut: no split.
        XCTAssertNil(GraphCut.split(g, at: "v5", rank: 4))
        let v = GraphCut.cutValue(g, trainable: ["fc.weight", "fc.bias"])
        XCTAssertNotNil(v)
        XCTAssertNotNil(GraphCut.split(g, at: v!, rank: 2))
        // Cut before layer4: trainable layer4 + fc.
        let l4 = Set(g.parameters.keys.filter { $0.hasPrefix("layer4") && !g.buffers.contains($0) } + ["fc.weight", "fc.bias"])
        let c4 = GraphCut.cutValue(g, trainable: l4)!
        XCTAssertNotNil(GraphCut.split(g, at: c4, rank: 4))
    }
}
