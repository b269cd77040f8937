import Foundation
import XCTest
@testable import WconvFormats
import WconvTensor
import WconvTestSupport

final class SafetensorsReaderTests: XCTestCase {
    typealias F = SafetensorsFixtures

    func testEveryDTypeZeroDAndZeroSizeMatchPythonValues() throws {
        let s = F.section("all_dtypes")
        let b = try SafetensorsReader.read(path: F.path(s["file"] as! String))
        XCTAssertEqual(b.format, "safetensors")
        let want = F.tensors(s)
        XCTAssertEqual(Set(b.tensors.keys), Set(want.keys))
        for (name, e) in want { F.assertMatches(b.tensors[name], e, name) }
        XCTAssertEqual(b.metadata, s["metadata"] as! [String: String])
        XCTAssertTrue(b.aliases.isEmpty)
    }

    func testTensorsAreZeroCopyViewsIntoTheMapping() throws {
        let b = try SafetensorsReader.read(path: F.path("valid/all_dtypes.safetensors"))
        for (name, t) in b.tensors {
            XCTAssertTrue(t.storage.isMapped, "\(name) was copied")
            XCTAssertEqual(Int(bitPattern: t.storage.bytes) % t.dtype.byteSize, 0, "\(name) misaligned")
        }
    }

    func testHeaderOrderIsKept() throws {
        // The reference writer orders the header by dtype (descending enum order), then name.
        let b = try SafetensorsReader.read(path: F.path("valid/all_dtypes.safetensors"))
        let ranks = b.tensors.values.map { SafetensorsDType.rank($0.dtype) }
        XCTAssertEqual(ranks, ranks.sorted(by: >))
    }

    func testTiedTensorsFromSaveModelShareOneStorage() throws {
        let s = F.section("tied")
        let b = try SafetensorsReader.read(path: F.path(s["file"] as! String))
        XCTAssertEqual(b.aliases, s["aliases"] as! [String: String])
        XCTAssertTrue(b.tensors["head.weight"]!.storage === b.tensors["emb.weight"]!.storage)
        XCTAssertNil(b.metadata["head.weight"], "alias entries are not plain metadata")
        for (name, e) in F.tensors(s) { F.assertMatches(b.tensors[name], e, name) }
    }

    func testShardedCheckpointWrittenByHuggingfaceHub() throws {
        let s = F.section("sharded")
        let b = try SafetensorsReader.read(path: F.path(s["index"] as! String))
        XCTAssertEqual(b.format, "safetensors-sharded")
        let want = F.tensors(s)
        XCTAssertEqual(Set(b.tensors.keys), Set(want.keys))
        for (name, e) in want { F.assertMatches(b.tensors[name], e, name) }
        XCTAssertEqual(b.metadata["format"], "pt")
    }

    func testShardedCheckpointWithMissingShardIsRefused() throws {
        let dirTemp = TempDir()
        let dir = dirTemp.path
        let src = F.dir.appendingPathComponent("sharded").path
        for f in try FileManager.default.contentsOfDirectory(atPath: src) where !f.hasSuffix("00002-of-00003.safetensors") {
            try FileManager.default.copyItem(atPath: src + "/" + f, toPath: dir + "/" + f)
        }
        XCTAssertThrowsError(try SafetensorsReader.read(path: dir + "/model.safetensors.index.json")) { error in
            let e = error as! WconvError
            XCTAssertEqual(e.kind, .invalidInput)
            XCTAssertTrue(e.message.contains("model-00002-of-00003.safetensors"), e.message)
        }
    }

    func testIndexMustMatchShardHeaders() throws {
        let dirTemp = TempDir()
        let dir = dirTemp.path
        let src = F.dir.appendingPathComponent("sharded").path
        for f in try FileManager.default.contentsOfDirectory(atPath: src) {
            try FileManager.default.copyItem(atPath: src + "/" + f, toPath: dir + "/" + f)
        }
        let indexPath = dir + "/model.safetensors.index.json"
        let original = try String(contentsOfFile: indexPath, encoding: .utf8)
        // A name the shards do not hold.
        try original.replacingOccurrences(of: "\"layer4.weight\"", with: "\"layer9.weight\"").write(toFile: indexPath, atomically: true, encoding: .utf8)
        XCTAssertThrowsError(try SafetensorsReader.read(path: indexPath)) { XCTAssertEqual(($0 as! WconvError).kind, .invalidInput) }
        // A tensor listed in the wrong shard.
        try original.replacingOccurrences(of: "\"layer0.bias\": \"model-00003-of-00003.safetensors\"", with: "\"layer0.bias\": \"model-00001-of-00003.safetensors\"").write(toFile: indexPath, atomically: true, encoding: .utf8)
        XCTAssertThrowsError(try SafetensorsReader.read(path: indexPath)) { XCTAssertEqual(($0 as! WconvError).kind, .invalidInput) }
        // A shard path that leaves the directory.
        try original.replacingOccurrences(of: "\"layer0.bias\": \"model-00003-of-00003.safetensors\"", with: "\"layer0.bias\": \"../model-00003-of-00003.safetensors\"").write(toFile: indexPath, atomically: true, encoding: .utf8)
        XCTAssertThrowsError(try SafetensorsReader.read(path: indexPath)) { XCTAssertEqual(($0 as! WconvError).kind, .unsafe) }
        // Duplicate names in the weight_map.
        try original.replacingOccurrences(of: "\"layer1.weight\"", with: "\"layer0.weight\"").write(toFile: indexPath, atomically: true, encoding: .utf8)
        XCTAssertThrowsError(try SafetensorsReader.read(path: indexPath)) { XCTAssertTrue(($0 as! WconvError).message.contains("duplicate"), "\($0)") }
    }

    func testSniff() throws {
        let bytes = F.bytes(F.path("valid/all_dtypes.safetensors"))
        XCTAssertTrue(bytes.withUnsafeBytes { SafetensorsReader.sniff($0, fileSize: bytes.count) })
        let head = Array(bytes.prefix(64))
        XCTAssertTrue(head.withUnsafeBytes { SafetensorsReader.sniff($0, fileSize: bytes.count) })
        XCTAssertFalse(head.withUnsafeBytes { SafetensorsReader.sniff($0, fileSize: 20) }, "header longer than the file")
        let zip = F.bytes(F.root.appendingPathComponent("sniff/zip_state_dict.bin").path)
        XCTAssertFalse(zip.withUnsafeBytes { SafetensorsReader.sniff($0, fileSize: zip.count) })
    }
}
