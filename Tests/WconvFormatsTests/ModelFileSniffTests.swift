import Foundation
import XCTest
@testable import WconvFormats
import WconvTensor
import WconvTestSupport

/// Files made by the real tools (tools/fixtures/sniff/gen.py), many with misleading extensions.
final class ModelFileSniffTests: XCTestCase {
    static let dir = SafetensorsFixtures.root.appendingPathComponent("sniff")

    func testEveryFixtureIsSniffedFromItsBytes() throws {
        let data = try Data(contentsOf: Self.dir.appendingPathComponent("expected.json"))
        let expected = try JSONSerialization.jsonObject(with: data) as! [String: [String: String]]
        XCTAssertGreaterThan(expected.count, 15)
        for (name, want) in expected.sorted(by: { $0.key < $1.key }) {
            let path = Self.dir.appendingPathComponent(name).path
            if let format = want["format"] {
                XCTAssertEqual(try ModelFile.sniff(path: path).rawValue, format, name)
            } else {
                XCTAssertThrowsError(try ModelFile.sniff(path: path), name) { error in
                    let e = error as! WconvError
                    XCTAssertEqual(e.kind, .invalidInput, name)
                    XCTAssertTrue(e.message.contains(want["error"]!), "\(name): \(e.message)")
                    XCTAssertEqual(e.file, path)
                }
            }
        }
    }

    /// One sniffer: a file no reader takes gets the same message from the sniffer and the PyTorch reader.
    func testSniffAndPyTorchReaderRefuseAlike() throws {
        for name in ["empty.pth", "error_page.pth", "lfs_pointer.safetensors", "old_tar.pth"] {
            let path = Self.dir.appendingPathComponent(name).path
            var messages: [String] = []
            for read in [{ _ = try ModelFile.sniff(path: path) }, { _ = try PyTorchReader.read(path: path) }] {
                XCTAssertThrowsError(try read(), name) { messages.append(($0 as! WconvError).description) }
            }
            XCTAssertEqual(messages.count, 2, name)
            XCTAssertEqual(messages.first, messages.last, name)
        }
    }

    func testLoadDispatchesSafetensorsAndRefusesKeyForIt() throws {
        let path = Self.dir.appendingPathComponent("weights.pth").path
        let b = try ModelFile.load(path: path)
        XCTAssertEqual(b.tensors["w"]?.floats(), [0, 1, 2, 3, 4, 5])
        XCTAssertThrowsError(try ModelFile.load(path: path, key: "model")) { XCTAssertEqual(($0 as! WconvError).kind, .usage) }
    }

    func testWriteTargetsWithoutAGraphSaySo() throws {
        let b = try ModelFile.load(path: Self.dir.appendingPathComponent("weights.pth").path)
        for f in [FileFormat.onnx, .kerasH5] {
            XCTAssertThrowsError(try ModelFile.write(b, to: "/tmp/never-written", format: f)) { error in
                XCTAssertTrue((error as! WconvError).message.contains("needs a graph"), "\(error)")
            }
        }
        XCTAssertFalse(FileManager.default.fileExists(atPath: "/tmp/never-written"))
    }

    func testOutputFormatFromExtension() {
        XCTAssertEqual(FileFormat.forOutputPath("a/b/model.safetensors"), .safetensors)
        XCTAssertEqual(FileFormat.forOutputPath("model.pth"), .pytorchZip)
        XCTAssertEqual(FileFormat.forOutputPath("model.bin"), .pytorchZip)
        XCTAssertEqual(FileFormat.forOutputPath("m.onnx"), .onnx)
        XCTAssertEqual(FileFormat.forOutputPath("m.h5"), .kerasH5)
        XCTAssertNil(FileFormat.forOutputPath("model"))
        XCTAssertNil(FileFormat.forOutputPath("model.txt"))
    }

    func testRandomBytesNeverTrapTheSniffer() {
        var rng = SeededGenerator(seed: 13)
        for size in [1, 7, 8, 9, 22, 64, 300, 4096] {
            for _ in 0..<200 {
                var bytes = (0..<size).map { _ in UInt8.random(in: 0...255, using: &rng) }
                if size >= 4 && Bool.random(using: &rng) { bytes[0] = 0x50; bytes[1] = 0x4b; bytes[2] = 5; bytes[3] = 6 }
                _ = bytes.withUnsafeBytes { try? ModelFile.sniff($0, path: "random") }
            }
        }
    }
}
