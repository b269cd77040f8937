import Foundation
import Wconv
import XCTest

/// `--precision bf16` of the inference commands: the bench says which precision ran; a CPU without
/// bfloat16 arithmetic (simulated) gets a usage error that says to drop the flag.
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
}
