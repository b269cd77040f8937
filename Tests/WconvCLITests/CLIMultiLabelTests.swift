import Foundation
import WconvTestSupport
import XCTest

/// CheXpert-style multi-label data through the binary: finetune on a CSV, eval the export (per-label
/// AUC, PR AUC, F1 at the recorded thresholds), compare sources × modes, and bad CSVs refused (exit 3).
final class CLIMultiLabelTests: XCTestCase {
    static let ml = CLI.fixture("training/multilabel")
    static let prep = ["--input-size", "32", "--resize", "0", "--mean", "0.5,0.5,0.5", "--std", "0.25,0.25,0.25"]

    func testFinetuneEvalCompare() throws {
        let dirTemp = TempDir()
        let dir = dirTemp.path
        let ml = CLIMultiLabelTests.ml, prep = CLIMultiLabelTests.prep
        let out = dir + "/ml.safetensors"
        let ft = try CLI.run(["finetune", ml + "/pretrained.pth", "--data", ml + "/train.csv", "--val", ml + "/val.csv", "--mode", "finetune",
                              "--epochs", "4", "--lr", "3e-3", "--backbone-lr", "3e-4", "--schedule", "constant", "--batch-size", "16", "--no-shuffle",
                              "--no-augment", "--pos-weight", "auto", "--uncertain", "ones", "--no-baseline", "--report", dir + "/r.html",
                              "--json", "-o", out] + prep)
        XCTAssertEqual(ft.status, 0, ft.stderr)
        XCTAssertTrue(ft.stderr.contains("5 labels, multi-label (positives+uncertain?"), ft.stderr)
        XCTAssertTrue(ft.stderr.contains("loss BCE-with-logits, pos-weight auto, uncertain labels (−1): ones"), ft.stderr)
        let fm = try XCTUnwrap(try CLI.json(ft)["metrics"] as? [String: Any])
        let trainedAUC = try XCTUnwrap(fm["macroAUC"] as? Double)
        XCTAssertGreaterThan(trainedAUC, 0.6)
        let html = try String(contentsOfFile: dir + "/r.html", encoding: .utf8)
        XCTAssertTrue(html.contains("Per-label figures") && html.contains("<svg"))

        // eval of the export: the thresholds come from its metadata, the figures equal the run's.
        let ev = try CLI.run(["eval", out, "--data", ml + "/val.csv", "--json"])
        XCTAssertEqual(ev.status, 0, ev.stderr)
        let m = try CLI.json(ev)
        XCTAssertEqual(m["task"] as? String, "multilabel")
        XCTAssertEqual(m["labels"] as? [String], ["disc", "ring", "bar", "cross", "triangle"])
        XCTAssertEqual(try XCTUnwrap(m["macroAUC"] as? Double), trainedAUC, accuracy: 1e-9)
        XCTAssertEqual((m["auc"] as? [Any])?.count, 5)
        XCTAssertEqual((m["prAUC"] as? [Any])?.count, 5)
        XCTAssertEqual((m["f1"] as? [Any])?.count, 5)
        XCTAssertEqual(m["thresholdSource"] as? String, "the model's wconv.thresholds")
        XCTAssertEqual(m["thresholds"] as? [Double], fm["thresholds"] as? [Double])
        let ev2 = try CLI.run(["eval", out, "--data", ml + "/val.csv", "--json", "--threshold", "0.5"])
        XCTAssertEqual(try CLI.json(ev2)["thresholds"] as? [Double], [Double](repeating: 0.5, count: 5))
        // The .pth export (a plain state dict) evaluates the same given the preprocessing.
        XCTAssertEqual(try CLI.run(["convert", out, dir + "/ml.pth"]).status, 0)
        let ev3 = try CLI.run(["eval", dir + "/ml.pth", "--data", ml + "/val.csv", "--json"] + prep)
        XCTAssertEqual(ev3.status, 0, ev3.stderr)
        XCTAssertEqual(try XCTUnwrap(try CLI.json(ev3)["macroAUC"] as? Double), trainedAUC, accuracy: 1e-6)

        // compare: two sources × two modes, same seed and budget, best marked, curves in the report.
        let cmp = try CLI.run(["compare", "--sources", ml + "/pretrained.pth," + out, "--modes", "feature-extract,finetune",
                               "--data", ml + "/train.csv", "--val", ml + "/val.csv", "--epochs", "2", "--batch-size", "16",
                               "--lr", "3e-3", "--backbone-lr", "3e-4", "--no-augment", "--pos-weight", "auto",
                               "-o", dir + "/table.md", "--report", dir + "/compare.html", "--json", "--save-dir", dir + "/runs"] + prep)
        XCTAssertEqual(cmp.status, 0, cmp.stderr)
        let c = try CLI.json(cmp)
        XCTAssertEqual(c["metric"] as? String, "macroAUC")
        let runs = try XCTUnwrap(c["runs"] as? [[String: Any]])
        XCTAssertEqual(runs.map { "\($0["source"]!)/\($0["mode"]!)" }, ["pretrained.pth/feature-extract", "pretrained.pth/finetune",
                                                                        "ml.safetensors/feature-extract", "ml.safetensors/finetune"])
        XCTAssertTrue(runs.allSatisfy { ($0["epochs"] as? Int) == 2 && $0["metric"] is Double && FileManager.default.fileExists(atPath: $0["output"] as? String ?? "") })
        let best = try XCTUnwrap(c["best"] as? [String: Any])
        let bestAUC = runs.compactMap { $0["metric"] as? Double }.max()!
        XCTAssertEqual(runs.first { "\($0["source"]!)" == "\(best["source"]!)" && "\($0["mode"]!)" == "\(best["mode"]!)" }?["metric"] as? Double, bestAUC)
        let table = try String(contentsOfFile: dir + "/table.md", encoding: .utf8)
        XCTAssertTrue(table.contains("| source | strategy | val macro AUC |"), table)
        XCTAssertEqual(table.components(separatedBy: "★").count - 1, 2, table)  // the best row and the summary line
        XCTAssertTrue(table.contains("pretrained, fine-tuned"), table)
        let report = try String(contentsOfFile: dir + "/compare.html", encoding: .utf8)
        XCTAssertEqual(report.components(separatedBy: "<svg").count - 1, 4, "a metric and a loss chart per source")
    }

    func testBadCSVsAreRefusedWithRowAndColumn() throws {
        let dirTemp = TempDir()
        let dir = dirTemp.path
        let ml = CLIMultiLabelTests.ml
        func csv(_ name: String, _ text: String) -> String {
            let p = dir + "/" + name
            FileManager.default.createFile(atPath: p, contents: Data(text.utf8))
            return p
        }
        let img = ml + "/images/train/000.png"
        let missing = try CLI.run(["finetune", ml + "/pretrained.pth", "--data", csv("m.csv", "path,a,b\n\(img),1,0\n\(dir)/gone.png,0,1\n"), "-o", dir + "/x.safetensors"])
        XCTAssertEqual(missing.status, 3, missing.stderr)
        XCTAssertTrue(missing.stderr.contains("m.csv: 1 of 2 rows name no image") && missing.stderr.contains("line 3: \(dir)/gone.png not found"), missing.stderr)
        let bad = try CLI.run(["eval", ml + "/pretrained.pth", "--data", csv("b.csv", "path,a,b\n\(img),1,0\n\(img),0,maybe\n")])
        XCTAssertEqual(bad.status, 3, bad.stderr)
        XCTAssertTrue(bad.stderr.contains("line 3, column 'b': 'maybe'"), bad.stderr)
        let weights = try CLI.run(["finetune", ml + "/pretrained.pth", "--data", ml + "/train.csv", "--class-weights", "auto", "-o", dir + "/x.safetensors"])
        XCTAssertEqual(weights.status, 2, weights.stderr)
        XCTAssertTrue(weights.stderr.contains("--pos-weight"), weights.stderr)
        XCTAssertFalse(FileManager.default.fileExists(atPath: dir + "/x.safetensors"))
    }
}
