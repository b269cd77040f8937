import XCTest
import WconvTensor
@testable import WconvFormats

final class PyTorchReaderTests: XCTestCase {
    func readChecked(_ file: String, json: String? = nil, options: PyTorchReadOptions = .init()) throws -> TensorBundle {
        let b = try PyTorchReader.read(path: PTFixtures.path(file), options: options)
        let expected = try PTFixtures.json(json ?? (file.split(separator: ".").dropLast().joined(separator: ".") + ".json"))
        PTFixtures.check(b, against: expected)
        return b
    }

    func testMixedStateDict() throws {
        let b = try readChecked("state_dict.pt")
        // Tied: the same tensor object twice is an alias; the transpose shares the storage object.
        XCTAssertEqual(b.aliases, ["head.weight": "emb.weight"])
        XCTAssertTrue(b.tensors["emb.weight"]!.storage === b.tensors["emb.weight_t"]!.storage)
        XCTAssertTrue(b.tensors["emb.weight"]!.storage === b.tensors["head.weight"]!.storage)
        // Zero-copy: contiguous records are views into the mapping.
        XCTAssertTrue(b.tensors["f32"]!.storage.isMapped)
        XCTAssertEqual(b.tensors["transposed"]!.strides, [1, 6])
        XCTAssertEqual(b.tensors["expanded"]!.strides, [0, 1])
        XCTAssertEqual(b.tensors["slice"]!.offset, 10)
        XCTAssertEqual(b.tensors["slice"]!.storage.byteCount, 400)
        XCTAssertTrue(b.stubbedGlobals.isEmpty)
        XCTAssertTrue(b.globalsSeen.contains("torch._utils._rebuild_tensor_v2"))
        XCTAssertTrue(b.globalsSeen.contains("torch._utils._rebuild_tensor_v3"))
    }

    func testProtocol4() throws { _ = try readChecked("proto4.pt") }
    func testCRCDisabled() throws { _ = try readChecked("nocrc.pt") }
    func testBigEndianIsSwapped() throws {
        let b = try readChecked("bigendian.pt")
        XCTAssertTrue(b.warnings.contains { $0.contains("big-endian") })
    }
    func testDeflatedRepack() throws { _ = try readChecked("deflated.pt") }

    func testLegacyFormat() throws {
        let b = try readChecked("legacy.pt")
        XCTAssertEqual(b.aliases, ["head.weight": "emb.weight"])
        XCTAssertTrue(b.tensors["emb.weight"]!.storage === b.tensors["emb.weight_t"]!.storage)
    }

    func testFullModule() throws {
        let b = try readChecked("module.pt")
        XCTAssertNil(b.tensors["cache"], "non-persistent buffer must be skipped")
        XCTAssertEqual(b.metadata["pytorch.module_class"], "__main__.Net")
        XCTAssertTrue(b.stubbedGlobals.contains("__main__.Net"))
        _ = try readChecked("module_legacy.pt")
    }

    func testTorchScript() throws {
        let b = try readChecked("script.pt")
        XCTAssertTrue(b.warnings.contains { $0.contains("not run") })
    }

    func testCheckpointFindsStateDictAndListsExtras() throws {
        let b = try readChecked("checkpoint.pt")
        XCTAssertEqual(b.metadata["pytorch.state_dict_key"], "model_state_dict")
        XCTAssertEqual(Array(b.extras.keys), ["epoch", "optimizer_state_dict", "loss", "ema", "args", "config"])
        XCTAssertEqual(b.extras["epoch"], "3")
        XCTAssertEqual(b.extras["loss"], "0.25")
        XCTAssertTrue(b.extras["optimizer_state_dict"]!.hasPrefix("optimizer state: 5 parameters"), b.extras["optimizer_state_dict"]!)
        XCTAssertTrue(b.extras["optimizer_state_dict"]!.contains("lr=0.001"))
        XCTAssertTrue(b.warnings.contains { $0.contains("--key ema") })
        XCTAssertEqual(Set(b.stubbedGlobals), ["argparse.Namespace", "__main__.Config"])
    }

    func testCheckpointKeyOption() throws {
        let b = try PyTorchReader.read(path: PTFixtures.path("checkpoint.pt"), options: .init(key: "ema"))
        PTFixtures.check(b, against: try PTFixtures.json("checkpoint_ema.json"))
        XCTAssertThrowsError(try PyTorchReader.read(path: PTFixtures.path("checkpoint.pt"), options: .init(key: "nope"))) { e in
            XCTAssertTrue((e as! WconvError).message.contains("model_state_dict"), "lists the available keys")
        }
    }

    func testShardedIndex() throws {
        let b = try PyTorchReader.read(path: PTFixtures.path("sharded/pytorch_model.bin.index.json"))
        PTFixtures.check(b, against: try PTFixtures.json("sharded/expected.json"))
    }

    func testSniff() throws {
        for (name, want) in [("state_dict.pt", true), ("legacy.pt", true), ("script.pt", true), ("arrays.npz", false),
                             ("html.pt", false), ("random.pt", false), ("empty.pt", false)] {
            let f = try MappedFile(path: PTFixtures.path(name))
            XCTAssertEqual(PyTorchReader.sniff(UnsafeRawBufferPointer(rebasing: f.buffer.prefix(4096))), want, name)
        }
    }

    func testVerifyAllChecksums() throws {
        var o = PyTorchReadOptions()
        o.verifyAllChecksums = true
        _ = try PyTorchReader.read(path: PTFixtures.path("state_dict.pt"), options: o)
    }
}
