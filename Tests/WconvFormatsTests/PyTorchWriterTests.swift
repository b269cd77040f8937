import Foundation
import XCTest
import WconvTensor
@testable import WconvFormats
import WconvTestSupport

final class PyTorchWriterTests: XCTestCase {
    var temp: TempDir!
    var tmpDir: String { temp.path }

    override func setUpWithError() throws { temp = TempDir("ptwriter") }
    override func tearDown() { temp = nil }

    /// Reads a fixture, writes it with PyTorchWriter, reads that back: same names, dtypes, shapes and
    /// bytes as the expected JSON written by torch. When WCONV_INTEROP_OUT is set, the written files
    /// are kept there for tools/interop/check_pth.py (torch.load(weights_only=True) on them).
    func roundTrip(_ fixture: String) throws -> TensorBundle {
        let original = try PyTorchReader.read(path: PTFixtures.path(fixture))
        let stem = String(fixture.split(separator: ".").first!)
        let out = tmpDir + "/\(stem).wconv.pth"
        try PyTorchWriter.write(original, to: out)
        let back = try PyTorchReader.read(path: out)
        var expected = try PTFixtures.json(stem + ".json")
        expected["format"] = "pytorch-zip"
        PTFixtures.check(back, against: expected)
        for (name, t) in original.tensors { XCTAssertTrue(t.bitwiseEqual(back.tensors[name]!), name) }
        if let dir = ProcessInfo.processInfo.environment["WCONV_INTEROP_OUT"], !dir.isEmpty {
            try? FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
            let dst = dir + "/\(stem).wconv.pth"
            try? FileManager.default.removeItem(atPath: dst)
            try FileManager.default.copyItem(atPath: out, toPath: dst)
        }
        return back
    }

    func testStateDictRoundTripKeepsTiesAndAlignment() throws {
        let back = try roundTrip("state_dict.pt")
        XCTAssertTrue(back.tensors["emb.weight"]!.storage === back.tensors["head.weight"]!.storage)
        XCTAssertTrue(back.tensors["emb.weight"]!.storage === back.tensors["emb.weight_t"]!.storage)
        XCTAssertEqual(back.aliases, ["head.weight": "emb.weight"])
        // Non-contiguous tensors that do not share storage are written contiguous.
        XCTAssertTrue(back.tensors["transposed"]!.isContiguous)
        XCTAssertEqual(back.tensors["slice"]!.storage.byteCount, 10 * 4)
        // Every record payload is 64-byte aligned.
        let zip = try ZipArchive(file: try MappedFile(path: tmpDir + "/state_dict.wconv.pth"))
        for e in zip.entries where e.name.contains("/data/") {
            XCTAssertEqual(e.dataOffset % 64, 0, e.name)
            try zip.verifyChecksum(of: e)
        }
        XCTAssertEqual(zip.entries.first?.name, "state_dict.wconv/data.pkl")
    }

    func testOtherFormatsRoundTrip() throws {
        for f in ["legacy.pt", "module.pt", "script.pt", "checkpoint.pt", "bigendian.pt", "deflated.pt"] {
            _ = try roundTrip(f)
        }
    }

    func testAtomicWriteLeavesNoTempOnFailure() throws {
        let bad = tmpDir + "/missing-dir/x.pth"
        XCTAssertThrowsError(try PyTorchWriter.write(TensorBundle(format: "x"), to: bad))
        let left = try FileManager.default.contentsOfDirectory(atPath: tmpDir)
        XCTAssertTrue(left.isEmpty, "\(left)")
    }

    func testPrefixLikeTorch() {
        XCTAssertEqual(PyTorchWriter.archivePrefix("/a/b/model.v1.pth"), "model.v1/")
        XCTAssertEqual(PyTorchWriter.archivePrefix("weights"), "weights/")
        XCTAssertEqual(PyTorchWriter.archivePrefix(".pth"), ".pth/")
    }
}
