import Foundation
import XCTest
import WconvTestSupport

/// The main job through the binary: fine-tune a .pth on an image folder, then `wconv run` the
/// export on image files and get class names from its metadata.
final class CLITransferTests: XCTestCase {
    func testFinetuneThenRunImagesPrintsClassNames() throws {
        let dirTemp = TempDir()
        let dir = dirTemp.path
        let demo = CLI.fixture("training/demo")
        let out = dir + "/adapted.safetensors"
        let ft = try CLI.run(["finetune", demo + "/source_resnet.pth", "--data", demo + "/target/train", "--mode", "feature-extract",
                              "--epochs", "2", "--input-size", "64", "--resize", "0", "--mean", "0.5,0.5,0.5", "--std", "0.25,0.25,0.25",
                              "--batch-size", "12", "--seed", "1", "--no-augment", "-o", out])
        XCTAssertEqual(ft.status, 0, ft.stderr)
        let classes = try FileManager.default.contentsOfDirectory(atPath: demo + "/target/val").sorted()
        let ring = demo + "/target/val/ring/" + (try FileManager.default.contentsOfDirectory(atPath: demo + "/target/val/ring").sorted()[0])
        let r = try CLI.run(["run", out, "--input", ring, "--top", "3", "--json"])
        XCTAssertEqual(r.status, 0, r.stderr)
        let top = try XCTUnwrap((try CLI.json(r))["top"] as? [[[String: Any]]])
        XCTAssertEqual(top.count, 1)
        XCTAssertEqual(Set(top[0].compactMap { $0["label"] as? String }), Set(classes))
        let probs = top[0].compactMap { $0["probability"] as? Double }
        XCTAssertEqual(probs.reduce(0, +), 1, accuracy: 1e-6)
        let bad = try CLI.run(["run", out, "--input", CLI.fixture("sniff/lfs_pointer.safetensors") + ".png"])
        XCTAssertNotEqual(bad.status, 0)
    }
}
