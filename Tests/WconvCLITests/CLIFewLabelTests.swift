import Foundation
import WconvTestSupport
import XCTest

/// Issue 11's few-label task through the binary, with default flags: a bare state dict pretrained
/// by PyTorch on 5 source shapes, 10 labelled 32×32 images for each of 5 new shapes, 250 for
/// validation (fixtures/training/fewlabel, written by tools/fixtures/training/gen_fewlabel.py with
/// PyTorch's own accuracies for the same task). wconv must fit the input to the data, pick
/// small-data defaults, end at least as good as feature extraction, and fine-tune to within 3 points
/// of PyTorch's recipe.
final class CLIFewLabelTests: XCTestCase {
    let dir = CLI.fixture("training/fewlabel")
    let temp = TempDir("cli")
    var tmp: String { temp.path }

    func reference() throws -> [String: Any] {
        let d = try Data(contentsOf: URL(fileURLWithPath: dir + "/reference.json"))
        return try XCTUnwrap(JSONSerialization.jsonObject(with: d) as? [String: Any])
    }

    func meanFinal(_ ref: [String: Any], _ mode: String) throws -> Double {
        try XCTUnwrap((ref[mode] as? [String: Any])?["mean_final"] as? Double, "reference.json lacks \(mode).mean_final")
    }

    /// Runs `finetune` with only the given flags; returns (validation accuracy of the output, stderr).
    func finetune(_ extra: [String], output: String) throws -> (accuracy: Double, log: String) {
        let r = try CLI.run(["finetune", dir + "/pretrained.pth", "--data", dir + "/train", "--val", dir + "/val", "--json", "-o", output] + extra)
        XCTAssertEqual(r.status, 0, r.stderr)
        let metrics = try XCTUnwrap(try CLI.json(r)["metrics"] as? [String: Any], r.stdout)
        return (try XCTUnwrap(metrics["accuracy"] as? Double), r.stderr)
    }

    func testDefaultFlagsMatchPyTorchOnTheFewLabelTask() throws {
        let ref = try reference()
        let fe = try finetune([], output: tmp + "/fe.safetensors")
        XCTAssertTrue(fe.log.contains("input 32×32 (auto"), "the input size fits the 32×32 data:\n\(fe.log)")
        XCTAssertTrue(fe.log.contains("normalisation: mean"), fe.log)
        XCTAssertTrue(fe.log.contains("small dataset (50 < 1000 images): batch 10"), fe.log)
        XCTAssertTrue(fe.log.contains("optimizer steps"), fe.log)
        let ft = try finetune(["--mode", "finetune"], output: tmp + "/ft.safetensors")
        let torchFE = try meanFinal(ref, "feature_extract"), torchFT = try meanFinal(ref, "finetune")
        let figures = "wconv feature extraction \(fe.accuracy), fine-tuning \(ft.accuracy); PyTorch \(torchFE), \(torchFT)"
        XCTAssertGreaterThanOrEqual(fe.accuracy, torchFE - 0.03, figures)
        XCTAssertGreaterThanOrEqual(ft.accuracy, fe.accuracy, "fine-tuning ends at least as good as feature extraction: " + figures)
        XCTAssertGreaterThanOrEqual(ft.accuracy, torchFT - 0.03, "within 3 points of PyTorch's fine-tuning: " + figures)
    }

    /// A backbone LR that destroys the pretrained features trips the baseline guard: the best model
    /// seen is still written and the run exits 0 with the advice; `--strict-guards` exits 1 and
    /// still writes it, saying where.
    func testTrippedGuardWritesTheBestModelAndExits0UnlessStrict() throws {
        let wreck = ["--mode", "finetune", "--epochs", "4", "--lr", "0.05", "--backbone-lr", "0.5", "--optimizer", "sgd"]
        let out = tmp + "/guarded.safetensors"
        let r = try CLI.run(["finetune", dir + "/pretrained.pth", "--data", dir + "/train", "--val", dir + "/val", "-o", out] + wreck)
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertTrue(r.stderr.contains("guard rail tripped"), r.stderr)
        XCTAssertTrue(r.stderr.contains("was written to \(out)"), r.stderr)
        XCTAssertTrue(FileManager.default.fileExists(atPath: out))
        let kept = try XCTUnwrap(r.stderr.components(separatedBy: "\n").first { $0.hasPrefix("kept: ") }, r.stderr)
        let e = try CLI.run(["eval", out, "--data", dir + "/val", "--json"])
        XCTAssertEqual(e.status, 0, e.stderr)
        let acc = try XCTUnwrap(try CLI.json(e)["accuracy"] as? Double)
        XCTAssertTrue(kept.contains(String(format: "%.1f%%", acc * 100)), "the written model is the one the log names: \(kept), eval \(acc)")

        let strictOut = tmp + "/strict.safetensors"
        let s = try CLI.run(["finetune", dir + "/pretrained.pth", "--data", dir + "/train", "--val", dir + "/val", "-o", strictOut, "--strict-guards"] + wreck)
        XCTAssertEqual(s.status, 1, s.stderr)
        XCTAssertTrue(s.stderr.contains("was written to \(strictOut)"), s.stderr)
        XCTAssertTrue(FileManager.default.fileExists(atPath: strictOut))
    }
}
