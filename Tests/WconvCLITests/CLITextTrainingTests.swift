import Foundation
import XCTest
import WconvTestSupport

/// `wconv finetune` and `wconv eval` on a BERT folder and text files (fixtures/text/train).
final class CLITextTrainingTests: XCTestCase {
    let model = CLI.fixture("text/train/bert_cls")
    let train = CLI.fixture("text/train/train.csv")
    let val = CLI.fixture("text/train/val.jsonl")

    /// finetune → a Hugging Face folder → eval --json on it: accuracy, per-class figures, AUC;
    /// the plan names the recipe and counts truncated texts.
    func testFinetuneWritesFolderThatEvalReads() throws {
        let tmp = TempDir()
        let out = tmp.file("clf") + "/"
        var r = try CLI.run(["finetune", model, "--data", train, "--val", val, "--mode", "feature-extract", "--epochs", "2",
                             "--max-length", "32", "-o", out, "--json"])
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertTrue(r.stderr.contains("6 truncated to --max-length 32"), r.stderr)
        XCTAssertTrue(r.stderr.contains("length-bucketed"), r.stderr)
        XCTAssertTrue(r.stderr.contains("cached frozen features"), r.stderr)
        let doc = try CLI.json(r)
        let acc = try XCTUnwrap((doc["metrics"] as? [String: Any])?["accuracy"] as? Double)
        for f in ["model.safetensors", "config.json", "vocab.txt", "tokenizer.json", "tokenizer_config.json"] {
            XCTAssertTrue(FileManager.default.fileExists(atPath: out + f), f)
        }
        // Other batches than finetune's (32, not 24): the masks make the padding irrelevant.
        r = try CLI.run(["eval", out, "--data", val, "--max-length", "32", "--json"])
        XCTAssertEqual(r.status, 0, r.stderr)
        let m = try CLI.json(r)
        XCTAssertEqual(try XCTUnwrap(m["accuracy"] as? Double), acc, accuracy: 1e-9)
        XCTAssertNotNil(m["macro_auc"] ?? m["macroAUC"], "\(m.keys.sorted())")
        XCTAssertEqual((m["classes"] as? [Any])?.count ?? (m["per_class"] as? [Any])?.count, 3, "\(m.keys.sorted())")
        // `wconv run --text` on the folder names the classes from its id2label.
        r = try CLI.run(["run", out, "--text", "rain and snow today", "--top", "3"])
        XCTAssertEqual(r.status, 0, r.stderr)
        for c in ["food", "sports", "weather"] { XCTAssertTrue(r.stdout.contains(c), r.stdout) }
    }

    /// Finetune mode with the BERT defaults: encoder 2e-5, head 2e-4, linear warm-up; an encoder LR
    /// far above 5e-5 warns, and --strict-guards refuses the run before training (exit 1).
    func testRecipeDefaultsAndEncoderLRGuard() throws {
        let tmp = TempDir()
        var r = try CLI.run(["finetune", model, "--data", train, "--mode", "finetune", "--epochs", "1", "--max-length", "32", "-o", tmp.file("a") + "/"])
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertTrue(r.stderr.contains("encoder LR 2.0e-05, head LR 2.0e-04"), r.stderr)
        XCTAssertTrue(r.stderr.contains("schedule warmup-linear"), r.stderr)
        XCTAssertFalse(r.stderr.contains("far above"), r.stderr)
        r = try CLI.run(["finetune", model, "--data", train, "--mode", "finetune", "--epochs", "1", "--backbone-lr", "1e-3",
                         "--max-length", "32", "--strict-guards", "-o", tmp.file("b") + "/"])
        XCTAssertEqual(r.status, 1, r.stderr)
        XCTAssertTrue(r.stderr.contains("encoder learning rate 1.0e-03 is far above"), r.stderr)
        XCTAssertFalse(FileManager.default.fileExists(atPath: tmp.file("b")), "nothing written")
    }

    /// Bad text input is refused naming the file and line; a length beyond the positions is a usage error.
    func testRefusals() throws {
        let tmp = TempDir()
        let unseen = tmp.write("val.csv", "text,label\nrain and snow,weather\nchess match,games\n")
        var r = try CLI.run(["finetune", model, "--data", train, "--val", unseen, "-o", tmp.file("o") + "/"])
        XCTAssertEqual(r.status, 3, r.stderr)
        XCTAssertTrue(r.stderr.contains("line 3: label \"games\" is not one of the 3 training classes"), r.stderr)
        let bad = tmp.write("bad.csv", Array("text,label\ngood,food\n".utf8) + [0x62, 0xFF, 0x2C, 0x61, 0x0A])
        r = try CLI.run(["finetune", model, "--data", bad, "-o", tmp.file("o") + "/"])
        XCTAssertEqual(r.status, 3, r.stderr)
        XCTAssertTrue(r.stderr.contains("line 3 is not valid UTF-8"), r.stderr)
        r = try CLI.run(["finetune", model, "--data", train, "--max-length", "100", "-o", tmp.file("o") + "/"])
        XCTAssertEqual(r.status, 2, r.stderr)
        XCTAssertTrue(r.stderr.contains("more than the 64 positions"), r.stderr)
        r = try CLI.run(["eval", model, "--data", unseen])
        XCTAssertEqual(r.status, 3, r.stderr)
        XCTAssertTrue(r.stderr.contains("line 3"), r.stderr)
    }
}
