import Foundation
import Wconv
import WconvTestSupport
import XCTest

/// `--precision bf16` of the inference and training commands: the benches and the training plan say
/// which precision ran; a CPU without bfloat16 arithmetic (simulated) gets a usage error that says
/// to drop the flag.
final class CLIPrecisionTests: XCTestCase {
    let model = CLI.fixture("onnx/resnet_ts_op17.onnx")

    func testBF16IsRefusedOnACPUWithoutIt() throws {
        for args in [["bench", "run", model, "--iters", "1", "--batch", "1"], ["run", model, "--input", "x.npy"]] {
            let r = try CLI.run(args + ["--precision", "bf16"], environment: ["WCONV_DNNL_SIMULATE_NO_BF16": "1"])
            XCTAssertEqual(r.status, 2, r.stderr)
            XCTAssertTrue(r.stderr.contains("no bfloat16 arithmetic") && r.stderr.contains("drop --precision bf16"), r.stderr)
        }
        let version = try CLI.run(["--version"], environment: ["WCONV_DNNL_SIMULATE_NO_BF16": "1"])
        XCTAssertTrue(version.stdout.contains("BF16: no — "), version.stdout)
        let unknown = try CLI.run(["bench", "run", model, "--precision", "fp8"])
        XCTAssertEqual(unknown.status, 2, unknown.stderr)
    }

    func testBF16BenchReportsItsPrecision() throws {
        try XCTSkipIf(Precision.unsupportedReason(.bf16) != nil, Precision.unsupportedReason(.bf16) ?? "")
        let r = try CLI.run(["bench", "run", model, "--precision", "bf16", "--iters", "1", "--batch", "2", "--json"])
        XCTAssertEqual(r.status, 0, r.stderr)
        let doc = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any])
        XCTAssertEqual(doc["precision"] as? String, "bf16")
        let text = try CLI.run(["bench", "run", model, "--precision", "bf16", "--iters", "1", "--batch", "2"])
        XCTAssertTrue(text.stdout.contains("Precision: bf16") && text.stdout.contains("BF16: yes"), text.stdout)
    }

    let fewLabel = CLI.fixture("training/fewlabel")

    func testBF16TrainingIsRefusedOnACPUWithoutIt() throws {
        let data = ["--data", fewLabel + "/train", "--val", fewLabel + "/val"]
        for args in [["finetune", fewLabel + "/pretrained.pth"] + data + ["-o", "never.safetensors"], ["plan", fewLabel + "/pretrained.pth"] + data,
                     ["bench", "train", "--synthetic", "resnet18", "--size", "32", "--batch-size", "2", "--steps", "1"]] {
            let r = try CLI.run(args + ["--precision", "bf16"], environment: ["WCONV_DNNL_SIMULATE_NO_BF16": "1"])
            XCTAssertEqual(r.status, 2, "\(args[0]): \(r.stderr)")
            XCTAssertTrue(r.stderr.contains("no bfloat16 arithmetic") && r.stderr.contains("drop --precision bf16"), r.stderr)
        }
        XCTAssertFalse(FileManager.default.fileExists(atPath: "never.safetensors"))
    }

    func testBF16BenchTrainReportsItsPrecision() throws {
        try XCTSkipIf(Precision.unsupportedReason(.bf16) != nil, Precision.unsupportedReason(.bf16) ?? "")
        let args = ["bench", "train", "--synthetic", "resnet18", "--size", "32", "--batch-size", "2", "--steps", "1", "--epochs", "1", "--precision", "bf16"]
        let r = try CLI.run(args + ["--json"])
        XCTAssertEqual(r.status, 0, r.stderr)
        let doc = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any])
        XCTAssertEqual(doc["precision"] as? String, "bf16")
        let text = try CLI.run(args)
        XCTAssertEqual(text.status, 0, text.stderr)
        XCTAssertTrue(text.stdout.contains("Precision: bf16 (mixed precision"), text.stdout)
        let f32 = try CLI.run(Array(args.dropLast(2)) + ["--json"])
        XCTAssertEqual((try JSONSerialization.jsonObject(with: Data(f32.stdout.utf8)) as? [String: Any])?["precision"] as? String, "f32")
    }

    /// A bf16 fine-tune of the few-label task: the plan says so, and it still learns the task.
    func testBF16FinetunePrintsItsPrecisionAndLearns() throws {
        try XCTSkipIf(Precision.unsupportedReason(.bf16) != nil, Precision.unsupportedReason(.bf16) ?? "")
        let out = TempDir("bf16ft")
        let r = try CLI.run(["finetune", fewLabel + "/pretrained.pth", "--data", fewLabel + "/train", "--val", fewLabel + "/val",
                             "--mode", "finetune", "--epochs", "4", "--precision", "bf16", "--json", "-o", out.path + "/m.safetensors"])
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertTrue(r.stderr.contains("precision: bf16 (mixed precision"), r.stderr)
        let accuracy = try XCTUnwrap((try CLI.json(r)["metrics"] as? [String: Any])?["accuracy"] as? Double, r.stdout)
        // 5 classes: chance is 0.2.
        XCTAssertGreaterThan(accuracy, 0.5, r.stderr)
    }
}
