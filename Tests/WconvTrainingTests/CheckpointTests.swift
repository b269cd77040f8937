import Foundation
import OrderedCollections
import WconvTensor
@testable import WconvTraining
import XCTest
import WconvTestSupport

final class CheckpointTests: XCTestCase {
    func testRoundTripAndCorruptFilesNeverCrash() throws {
        let d = TempDir()
        var t = OrderedDictionary<String, Tensor>()
        t["model.w"] = Tensor(shape: [2, 3], floats: [1, 2, 3, 4, 5, 6])
        t["optim.w.step"] = Tensor(shape: [1], floats: [7])
        let path = d.path + "/c.safetensors"
        try CheckpointFile.write(t, metadata: ["k": "v"], to: path)
        let (back, meta) = try CheckpointFile.read(path: path)
        XCTAssertEqual(meta["k"], "v")
        XCTAssertEqual(back["model.w"]?.floats(), [1, 2, 3, 4, 5, 6])
        let bytes = try Data(contentsOf: URL(fileURLWithPath: path))
        var rng = RNG(seed: 2)
        for k in 0..<80 {
            var b = bytes
            if k % 3 == 0 { b = b.prefix(rng.below(b.count)) } else {
                for _ in 0..<3 { let i = rng.below(b.count); b[i] = UInt8(truncatingIfNeeded: rng.next32()) }
            }
            let p = d.path + "/f\(k).safetensors"
            try b.write(to: URL(fileURLWithPath: p))
            _ = try? CheckpointFile.read(path: p)
        }
    }

    func testConfigRoundTrip() throws {
        var c = TrainingConfig()
        c.mode = .progressive; c.layerLR = .geometric(base: 1e-6, max: 1e-3); c.betas = (0.8, 0.99); c.groups = "a=b"; c.shuffle = false
        let enc = JSONEncoder()
        enc.outputFormatting = .sortedKeys
        let back = try JSONDecoder().decode(TrainingConfig.self, from: enc.encode(c))
        XCTAssertEqual(try enc.encode(back), try enc.encode(c))
        XCTAssertEqual(back.betas.0, 0.8)
        XCTAssertEqual(back.layerLR, .geometric(base: 1e-6, max: 1e-3))
    }

    func testResumeRefusesDifferentFlags() throws {
        let d = TempDir()
        var c = TrainingConfig()
        c.mode = .finetune; c.epochs = 1; c.batchSize = 8; c.threads = 1; c.groups = "stem=a|n,block=c,head=z"
        let data = try syntheticData(16, seed: 1)
        let t = try Trainer(graph: tinyGraph(), config: c, train: data, val: nil, log: { _ in })
        t.checkpointDir = d.path
        _ = try t.run()
        c.lr = 0.5
        let t2 = try Trainer(graph: tinyGraph(), config: c, train: data, val: nil, log: { _ in })
        XCTAssertThrowsError(try t2.run(resume: d.path + "/last.safetensors")) { XCTAssertTrue("\($0)".contains("same flags")) }
        c.lr = TrainingConfig().lr; c.epochs = 2
        let t3 = try Trainer(graph: tinyGraph(), config: c, train: data, val: nil, log: { _ in })
        XCTAssertEqual(try t3.run(resume: d.path + "/last.safetensors").history.count, 2)
    }
}
