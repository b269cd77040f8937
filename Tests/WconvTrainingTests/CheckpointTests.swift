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

    /// Every member is written (with its optionals set) and read back; a key a checkpoint lacks
    /// (written before the member existed) keeps the member's default.
    func testConfigWritesEveryKeyAndDefaultsAbsentOnes() throws {
        var c = TrainingConfig()
        c.backboneLR = 1e-5; c.groups = "a=b"; c.patience = 3; c.maxGradNorm = 1; c.warmupRatio = 0.25; c.text = true
        let object = try XCTUnwrap(JSONSerialization.jsonObject(with: JSONEncoder().encode(c)) as? [String: Any])
        XCTAssertEqual(Set(object.keys), Set(TrainingConfig.CodingKeys.allCases.map(\.stringValue)))
        let back = try JSONDecoder().decode(TrainingConfig.self, from: Data(#"{"epochs": 4, "beta2": 0.95}"#.utf8))
        XCTAssertEqual(back.epochs, 4)
        XCTAssertEqual(back.betas.1, 0.95)
        XCTAssertEqual(back.betas.0, 0.9)
        XCTAssertEqual(back.warmupRatio, 0.1)
        XCTAssertNil(back.maxGradNorm)
        XCTAssertTrue(back.shuffle)
    }

    /// The run state goes through the one JSON: a seed of 2^64 − 1 keeps every digit and resumes,
    /// and a checkpoint in the layout Foundation's JSONEncoder wrote (sorted keys) still loads.
    func testSeedBeyondInt64RoundTripsAndOlderLayoutLoads() throws {
        let d = TempDir()
        var c = TrainingConfig()
        c.mode = .finetune; c.epochs = 1; c.batchSize = 8; c.threads = 1; c.groups = "stem=a|n,block=c,head=z"
        c.seed = .max
        let data = try syntheticData(16, seed: 1)
        let t = try Trainer(graph: tinyGraph(), config: c, train: data, val: nil, log: { _ in })
        t.checkpointDir = d.path
        _ = try t.run()
        let ck = d.path + "/last.safetensors"
        let (tensors, meta) = try CheckpointFile.read(path: ck)
        let json = try XCTUnwrap(meta["wconv.checkpoint"])
        XCTAssertTrue(json.contains("\"seed\":18446744073709551615"), json)
        XCTAssertEqual(try Trainer.CheckpointState(json: json).config.seed, .max)
        c.epochs = 2
        XCTAssertEqual(try Trainer(graph: tinyGraph(), config: c, train: data, val: nil, log: { _ in }).run(resume: ck).history.count, 2,
                       "the same flags, seed included, resume")

        let enc = JSONEncoder()
        enc.outputFormatting = .sortedKeys
        let older = String(decoding: try enc.encode(try Trainer.CheckpointState(json: json)), as: UTF8.self)
        XCTAssertNotEqual(older, json, "the older layout differs in key order")
        let p = d.path + "/older.safetensors"
        try CheckpointFile.write(tensors, metadata: ["wconv.checkpoint": older], to: p)
        XCTAssertEqual(try Trainer(graph: tinyGraph(), config: c, train: data, val: nil, log: { _ in }).run(resume: p).history.count, 2)
        c.seed = .max - 1
        XCTAssertThrowsError(try Trainer(graph: tinyGraph(), config: c, train: data, val: nil, log: { _ in }).run(resume: ck)) {
            XCTAssertTrue("\($0)".contains("same flags"), "a seed one below differs")
        }
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

    /// A checkpoint further on than `--epochs`, of another model or class list, or corrupt, is a
    /// clear usage or input error before anything trains, never a trap.
    func testResumeRefusesPastEpochsForeignAndCorruptCheckpoints() throws {
        let d = TempDir()
        var c = TrainingConfig()
        c.mode = .finetune; c.epochs = 2; c.batchSize = 8; c.threads = 1; c.groups = "stem=a|n,block=c,head=z"
        let data = try syntheticData(16, seed: 1)
        let t = try Trainer(graph: tinyGraph(classes: 3), config: c, train: data, val: nil, log: { _ in })
        t.checkpointDir = d.path
        _ = try t.run()
        let ck = d.path + "/last.safetensors"
        func resume(_ path: String, epochs: Int = 3) throws -> TrainingResult {
            var c2 = c
            c2.epochs = epochs
            return try Trainer(graph: tinyGraph(classes: 3), config: c2, train: data, val: nil, log: { _ in }).run(resume: path)
        }
        func refused(_ path: String, epochs: Int = 3, _ kind: WconvError.Kind, _ says: String, line: UInt = #line) {
            XCTAssertThrowsError(try resume(path, epochs: epochs), line: line) { e in
                XCTAssertEqual((e as? WconvError)?.kind, kind, "\(e)", line: line)
                XCTAssertTrue("\(e)".contains(says), "\(e)", line: line)
            }
        }
        refused(ck, epochs: 1, .usage, "the checkpoint is at epoch 2, past --epochs 1: pass --epochs 3 or more")
        XCTAssertEqual(try resume(ck, epochs: 2).history.count, 2, "--epochs at the checkpoint's epoch trains nothing")
        XCTAssertEqual(try resume(ck).history.count, 3)

        let (tensors, meta) = try CheckpointFile.read(path: ck)
        func variant(_ name: String, _ edit: (inout OrderedDictionary<String, Tensor>, inout [String: String]) -> Void) throws -> String {
            var t = tensors, m = meta
            edit(&t, &m)
            let p = d.path + "/" + name + ".safetensors"
            try CheckpointFile.write(t, metadata: m, to: p)
            return p
        }
        refused(try variant("nan") { t, _ in t["model.c.w"] = Tensor(shape: [6, 4, 3, 3], floats: [.nan] + [Float](repeating: 0, count: 215)) },
                .invalidInput, "'model.c.w' holds NaN")
        refused(try variant("other-model") { t, _ in t.removeValue(forKey: "model.c.w"); t["model.q.w"] = Tensor(zeros: [2]) },
                .invalidInput, "'model.q.w' (f32 [2]) does not match the model (no such tensor)")
        refused(try variant("missing") { t, _ in t.removeValue(forKey: "model.z.b") }, .invalidInput, "lacks 1 of the model's tensors (model.z.b")
        refused(try variant("shape") { t, _ in t["model.z.b"] = Tensor(zeros: [4]) }, .invalidInput, "'model.z.b' (f32 [4]) does not match the model (f32 [3])")
        refused(try variant("classes") { _, m in m["wconv.checkpoint"] = m["wconv.checkpoint"]!.replacingOccurrences(of: "\"r\"", with: "\"red\"") },
                .invalidInput, "classes")
        refused(try variant("state") { _, m in m["wconv.checkpoint"] = m["wconv.checkpoint"]!.replacingOccurrences(of: "\"epoch\":2", with: "\"epoch\":-5") },
                .invalidInput, "inconsistent")
        refused(try variant("json") { _, m in m["wconv.checkpoint"] = "{\"epoch\": 1" }, .invalidInput, "not a wconv training checkpoint")
        let buf = try XCTUnwrap(tensors.keys.first { $0.hasPrefix("optim.") && $0.hasSuffix(".buf1") })
        refused(try variant("optim-size") { t, _ in t[buf] = Tensor(zeros: [1]) }, .invalidInput, "has 1 values, the parameter")
        let step = buf.dropLast(5) + ".step"
        refused(try variant("optim-step") { t, _ in t[String(step)] = Tensor(shape: [1], floats: [.infinity]) }, .invalidInput, "step count")
        refused(try variant("optim-pair") { t, _ in t.removeValue(forKey: String(buf.dropLast(5) + ".buf2")) }, .invalidInput, "does not fit AdamW")

        // Random damage to a real checkpoint: refused or resumed, never a crash.
        let bytes = try Data(contentsOf: URL(fileURLWithPath: ck))
        var rng = RNG(seed: 9)
        for k in 0..<24 {
            var b = bytes
            for _ in 0..<4 { let i = rng.below(b.count); b[i] = UInt8(truncatingIfNeeded: rng.next32()) }
            let p = d.path + "/damaged\(k).safetensors"
            try b.write(to: URL(fileURLWithPath: p))
            do { _ = try resume(p) } catch is WconvError {} catch { XCTFail("damaged checkpoint \(k): \(error)") }
        }
    }
}
