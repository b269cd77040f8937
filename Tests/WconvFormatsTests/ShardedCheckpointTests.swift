import Foundation
import XCTest
import WconvTensor
@testable import WconvFormats
import WconvTestSupport

/// Safetensors and PyTorch shards go through one reader: the same fault gets the same error kind
/// whichever format the shards are and whichever entry point reads them.
final class ShardedCheckpointTests: XCTestCase {
    /// (fixture folder, index file, one shard it names, the reader for the format)
    let cases: [(String, String, String, (String) throws -> TensorBundle)] = [
        (SafetensorsFixtures.path("sharded"), "model.safetensors.index.json", "model-00003-of-00003.safetensors",
         { try SafetensorsReader.read(path: $0) }),
        (PTFixtures.path("sharded"), "pytorch_model.bin.index.json", "pytorch_model-00002-of-00002.bin",
         { try PyTorchReader.read(path: $0) }),
    ]

    func copy(_ src: String) throws -> TempDir {
        let dir = TempDir("shards")
        for f in try FileManager.default.contentsOfDirectory(atPath: src) {
            try FileManager.default.copyItem(atPath: src + "/" + f, toPath: dir.file(f))
        }
        return dir
    }

    func assertRefused(_ index: String, _ reader: @escaping (String) throws -> TensorBundle, _ kind: WconvError.Kind, _ fragment: String,
                       line: UInt = #line) {
        for (how, read) in [("format reader", reader), ("ModelFile.load", { try ModelFile.load(path: $0) })] {
            XCTAssertThrowsError(try read(index), how, line: line) { e in
                let w = e as! WconvError
                XCTAssertEqual(w.kind, kind, "\(how): \(w)", line: line)
                XCTAssertTrue(w.message.contains(fragment), "\(how): '\(w.message)' lacks '\(fragment)'", line: line)
                XCTAssertEqual(w.file, index, how, line: line)
            }
        }
    }

    func testShardNamesOutsideTheFolderAreUnsafeInBothFormats() throws {
        for (src, indexName, shard, reader) in cases {
            let tmp = try copy(src), dir = tmp.path
            let index = dir + "/" + indexName
            let original = try String(contentsOfFile: index, encoding: .utf8)
            XCTAssertNoThrow(try reader(index))
            for bad in ["../" + shard, "sub\\\\" + shard, "/" + shard, "..", "other.index.json"] {
                try original.replacingOccurrences(of: "\"\(shard)\"", with: "\"\(bad)\"").write(toFile: index, atomically: true, encoding: .utf8)
                assertRefused(index, reader, .unsafe, "plain file names")
            }
            try original.write(toFile: index, atomically: true, encoding: .utf8)
            try FileManager.default.removeItem(atPath: dir + "/" + shard)
            assertRefused(index, reader, .invalidInput, "shard \"\(shard)\" named in the weight_map cannot be opened")
        }
    }

    func testMapAndShardsMustAgreeInBothFormats() throws {
        for (src, indexName, _, reader) in cases {
            let tmp = try copy(src)
            let index = tmp.file(indexName)
            let original = try String(contentsOfFile: index, encoding: .utf8)
            // A name no shard holds, and a held tensor the map no longer lists.
            let first = try XCTUnwrap(try JSONValue.parse(Array(original.utf8), options: .strict)["weight_map"]?.object?.keys.first)
            try original.replacingOccurrences(of: "\"\(first)\"", with: "\"renamed.\(first)\"").write(toFile: index, atomically: true, encoding: .utf8)
            assertRefused(index, reader, .invalidInput, "weight_map does not list")
            // Duplicate keys in the map.
            let second = try XCTUnwrap(try JSONValue.parse(Array(original.utf8), options: .strict)["weight_map"]?.object?.keys.dropFirst().first)
            try original.replacingOccurrences(of: "\"\(second)\"", with: "\"\(first)\"").write(toFile: index, atomically: true, encoding: .utf8)
            assertRefused(index, reader, .invalidInput, "duplicate key")
        }
    }
}
