import Foundation
import XCTest
import WconvTestSupport

/// pth → safetensors → pth, bit-exact, through the binary. Needs the PyTorch reader and writer
/// (another branch of issue 2); until they are merged the binary says "not merged yet" and the test
/// skips with that reason.
final class CLIPyTorchRoundTripTests: XCTestCase {
    func testPthToSafetensorsToPthIsBitExact() throws {
        let dirTemp = TempDir()
        let dir = dirTemp.path
        let pth = CLI.fixture("demo/tiny_cnn.pth")
        let st = dir + "/tiny.safetensors", back = dir + "/tiny.pth"
        let c1 = try CLI.run(["convert", pth, st])
        if c1.stderr.contains("not merged yet") { throw XCTSkip("PyTorch reader not merged into this branch yet") }
        XCTAssertEqual(c1.status, 0, c1.stderr)
        let c2 = try CLI.run(["convert", st, back])
        XCTAssertEqual(c2.status, 0, c2.stderr)
        let d = try CLI.run(["diff", pth, back, "--json"])
        XCTAssertEqual(d.status, 0, d.stdout)
        XCTAssertEqual(try CLI.json(d)["bit_exact"] as? Bool, true)
        // And against the file python's safetensors wrote from the same state dict.
        XCTAssertEqual(try CLI.run(["diff", pth, CLI.fixture("demo/tiny_cnn.safetensors")]).status, 0)
        let i = try CLI.run(["inspect", pth, "--json"])
        XCTAssertEqual(try CLI.json(i)["format"] as? String, "pytorch-zip")
    }
}
