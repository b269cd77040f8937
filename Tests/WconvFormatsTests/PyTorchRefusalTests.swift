import Foundation
import XCTest
import WconvTensor
@testable import WconvFormats
import WconvTestSupport

/// Hostile, broken and foreign files: refused with exit-code-3 kinds and a message saying what they are.
final class PyTorchRefusalTests: XCTestCase {
    func testEveryRefusedFixture() throws {
        let doc = try PTFixtures.json("refused.json")
        let marker = doc["marker"] as! String
        try? FileManager.default.removeItem(atPath: marker)
        for f in doc["files"] as! [[String: String]] {
            let name = f["file"]!
            XCTAssertThrowsError(try PyTorchReader.read(path: PTFixtures.path(name)), name) { error in
                guard let e = error as? WconvError else { return XCTFail("\(name): \(error)") }
                XCTAssertEqual(e.exitCode, 3, name)
                XCTAssertEqual(e.kind == .unsafe ? "unsafe" : (e.kind == .invalidInput ? "invalid" : "other"), f["kind"]!, "\(name): \(e)")
                XCTAssertTrue(e.description.contains(f["contains"]!), "\(name): '\(e)' should mention '\(f["contains"]!)'")
                XCTAssertTrue(e.description.contains(name), "\(name): message names the file")
            }
        }
        // The payloads would have created the marker had anything been executed.
        XCTAssertFalse(FileManager.default.fileExists(atPath: marker), "a pickle payload ran")
    }

    func testUnsafeMessageNamesTheGlobal() {
        XCTAssertThrowsError(try PyTorchReader.read(path: PTFixtures.path("evil_system.pt"))) { e in
            let m = (e as! WconvError).message
            XCTAssertTrue(m.contains("posix.system") || m.contains("os.system"), m)
        }
        XCTAssertThrowsError(try PyTorchReader.read(path: PTFixtures.path("evil_eval.pt"))) { e in
            XCTAssertTrue((e as! WconvError).message.contains("builtins.eval"))
        }
    }

    func testDirectoryAndMissingFile() {
        XCTAssertThrowsError(try PyTorchReader.read(path: PTFixtures.dir)) { XCTAssertEqual(($0 as! WconvError).exitCode, 3) }
        XCTAssertThrowsError(try PyTorchReader.read(path: PTFixtures.path("does-not-exist.pt"))) { XCTAssertEqual(($0 as! WconvError).exitCode, 3) }
    }

    /// Every prefix of a real file must fail cleanly (no crash, no hang).
    func testEveryTruncationOfSmallFilesFailsCleanly() throws {
        for name in ["state_dict.pt", "legacy.pt", "script.pt"] {
            let full = try Data(contentsOf: URL(fileURLWithPath: PTFixtures.path(name)))
            let tmpDir = TempDir("trunc")
            let tmp = tmpDir.file(name)
            for cut in stride(from: 0, to: full.count, by: max(1, full.count / 300)) {
                try full.prefix(cut).write(to: URL(fileURLWithPath: tmp))
                do { _ = try PyTorchReader.read(path: tmp) } catch let e as WconvError {
                    XCTAssertEqual(e.exitCode, 3, "\(name) cut at \(cut): \(e)")
                }
            }
        }
    }
}
