import Foundation
import XCTest
import WconvTensor
@testable import WconvFormats

/// Plain `pickle.dump` files (fixtures/pytorch/plain, written by tools/fixtures/pytorch/gen_pickles.py):
/// torch tensors and numpy arrays read inertly, hostile ones refused naming the callable.
final class PlainPickleTests: XCTestCase {
    func testStateDictsAndNumpyArrays() throws {
        for name in ["state_dict_p2", "state_dict_p4", "detectron2_p2", "numpy_p5"] {
            let path = PTFixtures.path("plain/\(name).pkl")
            XCTAssertEqual(try ModelFile.sniff(path: path), .pytorchPickle, name)
            let bundle = try ModelFile.load(path: path)
            let expected = try PTFixtures.json("plain/\(name).json")
            PTFixtures.check(bundle, against: expected)
            if let aliases = expected["aliases"] as? [String: String] { XCTAssertEqual(bundle.aliases, aliases, name) }
        }
        // The detectron2 checkpoint's state dict is found under "model"; the rest is reported, not lost.
        let d2 = try ModelFile.load(path: PTFixtures.path("plain/detectron2_p2.pkl"))
        XCTAssertEqual(d2.metadata["pytorch.state_dict_key"], "model")
    }

    func testHostilePlainPickleIsNamed() throws {
        try? FileManager.default.removeItem(atPath: "/tmp/wconv-pickle-payload-ran")
        for name in ["plain/evil_system.pkl", "evil_subprocess.pkl"] {
            XCTAssertThrowsError(try ModelFile.load(path: PTFixtures.path(name)), name) { error in
                guard let e = error as? WconvError else { return XCTFail("\(error)") }
                XCTAssertEqual(e.kind, .unsafe, name)
                XCTAssertEqual(e.exitCode, 3)
                XCTAssertTrue(e.message.contains("posix.system") || e.message.contains("commands.call"), e.message)
            }
        }
        XCTAssertFalse(FileManager.default.fileExists(atPath: "/tmp/wconv-pickle-payload-ran"))
    }

    /// A storage image inside `_load_from_bytes` that lies about its size is refused, not read past.
    func testTruncatedEmbeddedStorage() throws {
        var bytes = try [UInt8](Data(contentsOf: URL(fileURLWithPath: PTFixtures.path("plain/state_dict_p4.pkl"))))
        // The first storage's element count follows its key list; make it claim more than the image holds.
        let magic: [UInt8] = [0x8a, 0x0a, 0x6c, 0xfc, 0x9c, 0x46]
        let at = try XCTUnwrap((0..<(bytes.count - 6)).first { Array(bytes[$0..<($0 + 6)]) == magic })
        let countAt = try XCTUnwrap((at..<(bytes.count - 8)).first { i in bytes[i] == 0x2e && bytes[i + 1] == 12 && bytes[i + 2] == 0 })
        bytes[countAt + 1] = 200
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("wconv-bad-embedded.pkl")
        try Data(bytes).write(to: url)
        XCTAssertThrowsError(try ModelFile.load(path: url.path)) { error in
            XCTAssertEqual((error as? WconvError)?.exitCode, 3, "\(error)")
        }
    }
}
