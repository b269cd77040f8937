import Foundation
import XCTest
import WconvTestSupport

/// End to end with the built binary: a zoo layout (efficientnet_lite_pytorch .pth) imports as a
/// graph; plain pickles import, hostile ones exit 3 naming the callable; weights-only Keras files
/// convert weights to weights.
final class CLIZooAndPickleTests: XCTestCase {
    func testEfficientNetLitePthImports() throws {
        let dTemp = TempDir()
        let d = dTemp.path
        let r = try CLI.run(["import", CLI.fixture("models/zoo/effnet_pt_lite/model.pth"), "-o", d + "/m.safetensors", "--json"])
        XCTAssertEqual(r.status, 0, r.stderr)
        let j = try CLI.json(r)
        XCTAssertEqual(j["architecture"] as? String, "efficientnet")
        XCTAssertTrue((j["variant"] as? String ?? "").hasPrefix("efficientnet_pytorch_lite"), "\(j["variant"] ?? "-")")
    }

    func testPlainPickles() throws {
        let dTemp = TempDir()
        let d = dTemp.path
        let ok = try CLI.run(["convert", CLI.fixture("pytorch/plain/detectron2_p2.pkl"), d + "/d2.safetensors"])
        XCTAssertEqual(ok.status, 0, ok.stderr)
        XCTAssertTrue(ok.stdout.contains("pytorch-pickle"), ok.stdout)
        let evil = try CLI.run(["inspect", CLI.fixture("pytorch/plain/evil_system.pkl")])
        XCTAssertEqual(evil.status, 3)
        XCTAssertTrue(evil.stderr.contains("posix.system") && evil.stderr.contains("unsafe"), evil.stderr)
    }

    func testWeightsOnlyKerasConvertsWithoutAGraph() throws {
        let dTemp = TempDir()
        let d = dTemp.path
        let src = CLI.fixture("keras/small_legacy_weights.h5")
        let r = try CLI.run(["convert", src, d + "/w.h5"])
        XCTAssertEqual(r.status, 0, r.stderr)
        let diff = try CLI.run(["diff", src, d + "/w.h5"])
        XCTAssertEqual(diff.status, 0, diff.stdout + diff.stderr)
        XCTAssertTrue(diff.stdout.contains("identical"), diff.stdout)
        // Keras 3 .weights.h5: to safetensors works; to legacy .h5 is refused with the reason.
        let v3 = CLI.fixture("keras/small.weights.h5")
        XCTAssertEqual(try CLI.run(["convert", v3, d + "/w.safetensors"]).status, 0)
        let refused = try CLI.run(["convert", v3, d + "/v3.h5"])
        XCTAssertEqual(refused.status, 3)
        XCTAssertTrue(refused.stderr.contains("model order"), refused.stderr)
    }
}
