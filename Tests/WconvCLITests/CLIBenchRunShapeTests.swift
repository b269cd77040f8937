import Foundation
import XCTest

/// `wconv bench run --input-shape`: a non-square (or otherwise exact) input for the timing, as
/// tools/bench-realworld passes each real-world case's own input; a shape of the wrong rank is a
/// usage error naming the input.
final class CLIBenchRunShapeTests: XCTestCase {
    func testInputShapeSetsTheBenchmarkedShape() throws {
        // An OCR-style head whose input is declared [-1, 3, ?, ?].
        let model = CLI.fixture("onnx/ops/dynamic_inputs_op17.onnx")
        let r = try CLI.run(["bench", "run", model, "--input-shape", "2,3,8,40", "--iters", "1", "--json"])
        XCTAssertEqual(r.status, 0, r.stderr)
        let doc = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any])
        XCTAssertEqual((doc["inputShapes"] as? [String: [Int]])?.values.first, [2, 3, 8, 40])
        XCTAssertEqual(doc["batch"] as? Int, 2)
        let bad = try CLI.run(["bench", "run", model, "--input-shape", "3,24,40"])
        XCTAssertEqual(bad.status, 2, bad.stderr)
        XCTAssertTrue(bad.stderr.contains("--input-shape '3,24,40'") && bad.stderr.contains("4 positive"), bad.stderr)
    }

    func testOtherInputsKeepTheFirstDimTheyDeclare() throws {
        // a [2, 3, 4], b [3, 1], ids [2, 4], all static: b keeps its 3 (an RNN state [2, 1, 128] likewise).
        let r = try CLI.run(["bench", "run", CLI.fixture("onnx/ops/binary_op13.onnx"), "--input-shape", "2,3,4", "--iters", "1", "--json"])
        XCTAssertEqual(r.status, 0, r.stderr)
        let doc = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any])
        XCTAssertEqual(doc["inputShapes"] as? [String: [Int]], ["a": [2, 3, 4], "b": [3, 1], "ids": [2, 4]])
    }

    func testInputsDeclaredLikeTheFirstTakeItsShape() throws {
        // A BERT export with input_ids and attention_mask both declared [batch, sequence]: the mask
        // must be [2, 12] too, not a [2, 1] that broadcasts (another model's timing).
        let r = try CLI.run(["bench", "run", CLI.fixture("onnx/bert_ts_op17_dynamic.onnx"), "--input-shape", "2,12", "--iters", "1", "--json"])
        XCTAssertEqual(r.status, 0, r.stderr)
        let doc = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any])
        XCTAssertEqual(doc["inputShapes"] as? [String: [Int]], ["input_ids": [2, 12], "attention_mask": [2, 12]])
    }
}
