import Foundation
import XCTest
@testable import WconvFormats
import WconvTensor
import WconvTestSupport

final class SafetensorsWriterTests: XCTestCase {
    typealias F = SafetensorsFixtures

    func testOutputIsByteIdenticalToPythonSafetensors() throws {
        // Tensors built from the expected bytes (not through the reader), written, compared with
        // the file python's save_file wrote for the same tensors.
        let bundle = F.bundle("all_dtypes", metadata: ["format": "pt"])
        let dirTemp = TempDir()
        let dir = dirTemp.path
        try SafetensorsWriter.write(bundle, to: dir + "/out.safetensors")
        XCTAssertEqual(F.bytes(dir + "/out.safetensors"), F.bytes(F.path("valid/writer_expected.safetensors")))
    }

    func testTiedTensorsAreStoredOnceLikeSaveModel() throws {
        let b = try SafetensorsReader.read(path: F.path("valid/tied.safetensors"))
        let dirTemp = TempDir()
        let dir = dirTemp.path
        try SafetensorsWriter.write(b, to: dir + "/tied.safetensors")
        XCTAssertEqual(F.bytes(dir + "/tied.safetensors"), F.bytes(F.path("valid/tied.safetensors")))

        // Ties made in memory (same Storage, same view) are found without an alias table.
        var fresh = TensorBundle(format: "test")
        let shared = F.Expected((F.section("tied")["tensors"] as! [String: [String: Any]])["emb.weight"]!).tensor()
        fresh.tensors["z.weight"] = shared
        fresh.tensors["a.weight"] = shared
        try SafetensorsWriter.write(fresh, to: dir + "/fresh.safetensors")
        let back = try SafetensorsReader.read(path: dir + "/fresh.safetensors")
        XCTAssertEqual(back.aliases, ["z.weight": "a.weight"])
        XCTAssertTrue(back.tensors["z.weight"]!.storage === back.tensors["a.weight"]!.storage)
        let written = F.bytes(dir + "/fresh.safetensors")
        let n = written.withUnsafeBytes { Int($0.loadUnaligned(as: UInt64.self)) }
        XCTAssertEqual(written.count - 8 - n, shared.byteCount, "the tied data is stored once")
        XCTAssertEqual(back.tensors.count, 2)
    }

    func testShardsAndIndexMatchHuggingfaceHub() throws {
        let s = F.section("sharded")
        let bundle = F.bundle("sharded", metadata: ["format": "pt"])
        let dirTemp = TempDir()
        let dir = dirTemp.path
        let files = try SafetensorsWriter.writeFiles(bundle, to: dir + "/model.safetensors",
                                                     options: SafetensorsWriteOptions(maxShardSize: s["max_shard_size"] as! Int))
        let names = files.map { URL(fileURLWithPath: $0).lastPathComponent }.sorted()
        XCTAssertEqual(names, (s["files"] as! [String]).sorted())
        for name in names {
            XCTAssertEqual(F.bytes(dir + "/" + name), F.bytes(F.path("sharded/" + name)), name)
        }
        let back = try SafetensorsReader.read(path: dir + "/model.safetensors.index.json")
        for (name, t) in bundle.tensors { XCTAssertTrue(back.tensors[name]!.bitwiseEqual(t), name) }
    }

    func testOneShardIsAPlainFile() throws {
        let bundle = F.bundle("sharded", metadata: [:])
        let dirTemp = TempDir()
        let dir = dirTemp.path
        let files = try SafetensorsWriter.writeFiles(bundle, to: dir + "/model.safetensors", options: .init(maxShardSize: 1 << 30))
        XCTAssertEqual(files, [dir + "/model.safetensors"])
        XCTAssertFalse(FileManager.default.fileExists(atPath: dir + "/model.safetensors.index.json"))
    }

    func testHeaderIsPaddedAndDataAligned() throws {
        let bundle = F.bundle("all_dtypes", metadata: ["a": "b\"c\\\n", "é": "ü"])
        let dirTemp = TempDir()
        let dir = dirTemp.path
        try SafetensorsWriter.write(bundle, to: dir + "/m.safetensors")
        let bytes = F.bytes(dir + "/m.safetensors")
        let n = bytes.withUnsafeBytes { Int($0.loadUnaligned(as: UInt64.self)) }
        XCTAssertEqual(n % 8, 0)
        XCTAssertNotEqual(bytes[8 + n - 1], 0x00)
        let back = try SafetensorsReader.read(path: dir + "/m.safetensors")
        XCTAssertEqual(back.metadata, bundle.metadata)
        for (name, t) in bundle.tensors {
            XCTAssertTrue(back.tensors[name]!.bitwiseEqual(t), name)
            XCTAssertTrue(back.tensors[name]!.storage.isMapped, "\(name) aligned, so not copied")
        }
    }

    func testNonContiguousViewsAreWrittenInCOrder() throws {
        let base = Tensor(shape: [2, 3], floats: [0, 1, 2, 3, 4, 5])
        var b = TensorBundle(format: "test")
        b.tensors["t"] = try Tensor(dtype: .f32, shape: [3, 2], strides: [1, 3], storage: base.storage)
        b.tensors["base"] = base
        let dirTemp = TempDir()
        let dir = dirTemp.path
        try SafetensorsWriter.write(b, to: dir + "/v.safetensors")
        let back = try SafetensorsReader.read(path: dir + "/v.safetensors")
        XCTAssertEqual(back.tensors["t"]!.floats(), [0, 3, 1, 4, 2, 5])
        XCTAssertEqual(back.tensors["base"]!.floats(), [0, 1, 2, 3, 4, 5])
        XCTAssertTrue(back.aliases.isEmpty, "different views of one storage are not ties")
    }

    func testFailedWriteLeavesNoFile() throws {
        let b = F.bundle("sharded", metadata: [:])
        XCTAssertThrowsError(try SafetensorsWriter.write(b, to: "/nonexistent-dir-wconv/x.safetensors")) {
            XCTAssertEqual(($0 as! WconvError).kind, .runtime)
        }
    }
}

extension SafetensorsWriterTests {
    /// The writer queues contiguous tensors for one gathered write and copies a strided view to C
    /// order when its turn comes: a bundle larger than one write call (1 MiB), with strided views
    /// between contiguous tensors, odd sizes and several dtypes, must read back bit for bit, and
    /// writing it again from the file's mapping (what `convert` does) must give the same bytes.
    func testGatheredWriteWithStridedViewsBetweenContiguousTensors() throws {
        let big = Tensor(shape: [300_001], floats: (0..<300_001).map { Float($0) * 0.5 })
        let grid = Tensor(shape: [513, 700], floats: (0..<(513 * 700)).map { Float($0 % 9973) - 17 })
        var b = TensorBundle(format: "test")
        b.tensors["a.big"] = big
        b.tensors["b.transposed"] = try Tensor(dtype: .f32, shape: [700, 513], strides: [1, 700], storage: grid.storage)
        b.tensors["c.grid"] = grid
        b.tensors["d.bytes"] = Tensor(shape: [3], floats: [1, 2, 3]).converted(to: .u8).tensor
        b.tensors["e.half"] = Tensor(shape: [5, 3], floats: (0..<15).map { Float($0) / 3 }).converted(to: .f16).tensor
        b.tensors["f.column"] = try Tensor(dtype: .f32, shape: [513], strides: [700], offset: 3, storage: grid.storage)
        let dir = TempDir()
        let first = dir.file("first.safetensors")
        try SafetensorsWriter.write(b, to: first)
        let back = try SafetensorsReader.read(path: first)
        XCTAssertEqual(Set(back.tensors.keys), Set(b.tensors.keys))
        for (name, t) in b.tensors {
            XCTAssertTrue(back.tensors[name]!.bitwiseEqual(t), name)
        }
        let bytes = F.bytes(first)
        let headerLength = bytes.withUnsafeBytes { Int($0.loadUnaligned(as: UInt64.self)) }
        XCTAssertEqual(bytes.count, 8 + headerLength + b.tensors.values.reduce(0) { $0 + $1.byteCount })

        let second = dir.file("second.safetensors")
        try SafetensorsWriter.write(back, to: second)
        XCTAssertEqual(F.bytes(second), bytes)
    }
}
