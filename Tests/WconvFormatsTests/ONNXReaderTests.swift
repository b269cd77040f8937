import Foundation
import XCTest
@testable import WconvFormats
import WconvTensor
import WconvTestSupport

final class ONNXReaderTests: XCTestCase {
    /// Every tensor of every fixture: names in order, dtype, shape and the exact bytes (FNV-1a 64).
    func testEveryTensorOfEveryFixtureMatchesExpected() throws {
        let models = try ONNXFixtures.modelsWithExpected()
        XCTAssertGreaterThan(models.count, 20)
        var checked = 0
        for (path, exp) in models {
            let bundle = try ONNXReader.read(path: path)
            let tensors = exp["tensors"] as! [String: [String: Any]]
            // JSON objects lose order; compare the set here and the initializer order below.
            XCTAssertEqual(Set(bundle.tensors.keys), Set(tensors.keys), path)
            for (name, e) in tensors {
                guard let t = bundle.tensors[name] else { continue }
                XCTAssertEqual(t.dtype.rawValue, e["dtype"] as? String, "\(path): \(name)")
                XCTAssertEqual(t.shape, e["shape"] as? [Int], "\(path): \(name)")
                XCTAssertEqual(t.byteCount, e["nbytes"] as? Int, "\(path): \(name)")
                XCTAssertEqual(ONNXFixtures.fnv(t), e["fnv1a64"] as? String, "\(path): \(name) bytes differ")
                checked += 1
            }
            let aliases = exp["aliases"] as! [String: String]
            XCTAssertEqual(bundle.aliases, aliases, path)
            let model = try ONNXReader.readModel(path: path)
            XCTAssertEqual(model.irVersion, exp["ir_version"] as? Int, path)
            XCTAssertEqual(model.graph.nodes.count, exp["node_count"] as? Int, path)
            var plain: [String: Int] = [:]
            for n in model.graph.nodes { plain[n.opType, default: 0] += 1 }
            XCTAssertEqual(plain, exp["ops"] as? [String: Int], path)
            let skipped = exp["skipped"] as! [String]
            XCTAssertEqual(model.graph.skippedInitializers.map(\.name), skipped, path)
        }
        XCTAssertGreaterThan(checked, 400)
    }

    func testInitializerOrderIsFileOrder() throws {
        let model = try ONNXReader.readModel(path: ONNXFixtures.path("resnet_ts_op17_preserve.onnx"))
        let names = Array(model.graph.initializers.keys)
        XCTAssertEqual(names.first, "conv1.weight")
        XCTAssertTrue(names.contains("layer1.0.bn2.running_var"))
        XCTAssertEqual(names.last, "fc.bias")
    }

    func testTypedFieldValuesForEveryDType() throws {
        let b = try ONNXReader.read(path: ONNXFixtures.path("dtypes.onnx"))
        XCTAssertEqual(b.tensors["typed_i64"]?.doubles(), [-1099511627776, -1, 0, 4611686018427387904])
        XCTAssertEqual(b.tensors["typed_i16"]?.doubles(), [-32768, -1, 32767])
        XCTAssertEqual(b.tensors["typed_i8"]?.doubles(), [-128, -5, 127])
        XCTAssertEqual(b.tensors["typed_u8"]?.doubles(), [0, 200, 255])
        XCTAssertEqual(b.tensors["typed_bool"]?.doubles(), [1, 0, 1])
        XCTAssertEqual(b.tensors["typed_f16"]?.floats().prefix(3).map { $0 }, [1.5, -2.25, 65504])
        XCTAssertEqual(b.tensors["typed_bf16"]?.floats().prefix(2).map { $0 }, [1.0, -3.140625])
        XCTAssertEqual(b.tensors["typed_f8e4m3"]?.floats(), [1.0, -0.5, 448])
        XCTAssertEqual(b.tensors["typed_f8e5m2"]?.floats(), [1.0, -0.5, 57344])
        XCTAssertEqual(b.tensors["typed_scalar"]?.shape, [])
        XCTAssertEqual(b.tensors["typed_scalar"]?.floats(), [3.5])
        XCTAssertEqual(b.tensors["typed_empty"]?.shape, [0, 4])
        XCTAssertEqual(b.tensors["raw_bf16"]?.floats(), [0.5, -2.0])
        XCTAssertNil(b.tensors["unsupported_u16"])
        XCTAssertTrue(b.warnings.contains { $0.contains("unsupported_u16") && $0.contains("UINT16") })
    }

    func testExternalDataIsMappedZeroCopyAndUnalignedOffsetsWork() throws {
        let b = try ONNXReader.read(path: ONNXFixtures.path("external/model.onnx"))
        let w = try XCTUnwrap(b.tensors["fc.weight"])
        XCTAssertTrue(w.storage.isMapped, "aligned external data should be a view of the mapping")
        XCTAssertEqual(w.shape, [16, 64])
        // Odd offsets: read correctly (copied, since f32 loads need 4-byte alignment).
        let u = try ONNXReader.read(path: ONNXFixtures.path("external/external_unaligned.onnx"))
        XCTAssertEqual(u.tensors["fc.weight"]?.shape, [3, 5])
        XCTAssertEqual(u.extras["external_data"], "unaligned.data")
        // The dynamo exporter's default .onnx + .onnx.data pair.
        let d = try ONNXReader.read(path: ONNXFixtures.path("resnet_dynamo_op18_ext.onnx"))
        XCTAssertTrue(d.tensors.values.contains { $0.storage.isMapped })
    }

    func testRawDataIsTakenOverNotCopiedTwice() throws {
        let b = try ONNXReader.read(path: ONNXFixtures.path("resnet_ts_op13.onnx"))
        let w = try XCTUnwrap(b.tensors["fc.weight"])
        // The storage is exactly the tensor (protobuf-c's raw_data buffer), not a slice of a larger copy.
        XCTAssertEqual(w.storage.byteCount, w.byteCount)
        XCTAssertFalse(w.storage.isMapped)
    }

    func testOldIRInitializersListedAsInputs() throws {
        let m = try ONNXReader.readModel(path: ONNXFixtures.path("old_ir.onnx"))
        XCTAssertEqual(m.irVersion, 3)
        XCTAssertEqual(m.graph.inputs.map(\.name), ["x", "fc.weight", "fc.bias"])
        XCTAssertEqual(m.graph.realInputs.map(\.name), ["x"])
    }

    func testConstantAndIdentityChainsResolveToWeights() throws {
        let b = try ONNXReader.read(path: ONNXFixtures.path("constant_identity.onnx"))
        XCTAssertEqual(b.aliases["conv.weight"], "const_w")
        XCTAssertEqual(b.aliases["id_w1"], "const_w")
        XCTAssertEqual(b.aliases["conv.bias"], "bias_src")
        XCTAssertTrue(b.tensors["conv.weight"]!.bitwiseEqual(b.tensors["const_w"]!))
        XCTAssertEqual(b.tensors["cmin"]?.floats(), [0])
        XCTAssertEqual(b.tensors["cmax"]?.floats(), [6])
    }

    func testUnknownOpsStillImportWeights() throws {
        let b = try ONNXReader.read(path: ONNXFixtures.path("unknown_ops.onnx"))
        XCTAssertEqual(Array(b.tensors.keys), ["proj.weight"])
        let m = try ONNXReader.readModel(path: ONNXFixtures.path("unknown_ops.onnx"))
        XCTAssertEqual(m.opset(domain: "com.example"), 1)
        XCTAssertEqual(m.opHistogram["com.example.FancyActivation"], 1)
    }

    func testCorruptAndEscapingFilesAreRefusedWithExitCode3() throws {
        let cases: [(String, String)] = [
            ("truncated.onnx", "claims more bytes"),
            ("random.onnx", "ONNX"),
            ("overlong_field.onnx", "byte 2"),
            ("escape_dotdot.onnx", "'..'"),
            ("escape_abs.onnx", "absolute path"),
            ("escape_nested.onnx", "'..'"),
            ("missing_data.onnx", "not found"),
            ("ext_out_of_range.onnx", "runs past the end"),
            ("raw_too_short.onnx", "raw_data has"),
            ("huge_dims_no_data.onnx", "no data in raw_data or the typed fields"),
            ("empty_huge_dims.onnx", "overflows"),
        ]
        for (name, fragment) in cases {
            let p = ONNXFixtures.path("bad/" + name)
            do {
                _ = try ONNXReader.read(path: p)
                XCTFail("\(name) was accepted")
            } catch let e as WconvError {
                XCTAssertEqual(e.exitCode, 3, name)
                XCTAssertTrue(e.description.contains(fragment), "\(name): \(e.description)")
                XCTAssertTrue(e.description.contains(name), "\(name): message should name the file: \(e.description)")
            }
        }
        do {
            _ = try ONNXReader.read(path: ONNXFixtures.path("bad/escape_abs.onnx"))
        } catch let e as WconvError {
            XCTAssertEqual(e.kind, .unsafe)
        }
    }

    func testDeepNestingIsRefusedBeforeProtobufC() throws {
        // Graph → node → attribute → graph … 2000 levels deep: protobuf-c would recurse without limit.
        var inner: [UInt8] = []
        for _ in 0..<2000 {
            var attr: [UInt8] = [0x32] + varint(inner.count) + inner       // AttributeProto.g (6)
            attr = [0x2A] + varint(attr.count) + attr                      // NodeProto.attribute (5)
            inner = [0x0A] + varint(attr.count) + attr                     // GraphProto.node (1)
        }
        let model: [UInt8] = [0x08, 0x08, 0x3A] + varint(inner.count) + inner
        XCTAssertThrowsError(try model.withUnsafeBytes { try ONNXReader.readModel(bytes: $0, path: nil) }) { e in
            XCTAssertTrue("\(e)".contains("nested more than"), "\(e)")
        }
        model.withUnsafeBytes { fuzzONNXModel($0) }
    }

    private func varint(_ n: Int) -> [UInt8] {
        var v = UInt64(n), out: [UInt8] = []
        while v >= 0x80 { out.append(UInt8(v & 0x7F) | 0x80); v >>= 7 }
        out.append(UInt8(v))
        return out
    }

    func testSniff() throws {
        for (p, _) in try ONNXFixtures.modelsWithExpected() {
            let f = try MappedFile(path: p)
            XCTAssertTrue(ONNXReader.sniff(UnsafeRawBufferPointer(rebasing: f.buffer.prefix(64))), p)
        }
        for head in [Array("PK\u{3}\u{4}rest".utf8), [0x80, 0x02, 0x63], Array("{\"a\":1}".utf8), [UInt8](repeating: 0, count: 16),
                     Array("\u{89}HDF\r\n".utf8)] {
            XCTAssertFalse(head.withUnsafeBytes { ONNXReader.sniff($0) }, "\(head)")
        }
    }

    func testSummaryAndHistogram() throws {
        let m = try ONNXReader.readModel(path: ONNXFixtures.path("resnet_ts_op13.onnx"))
        XCTAssertEqual(m.defaultOpset, 13)
        XCTAssertEqual(m.opHistogram["Conv"], 7)
        XCTAssertTrue(m.summary.contains("opset ai.onnx 13"), m.summary)
        XCTAssertTrue(m.summary.contains("input: f32[1, 3, 16, 16]"), m.summary)
    }

    func testWriterRoundTripKeepsEveryTensorAndNode() throws {
        let dirTemp = TempDir()
        let dir = dirTemp.path
        for name in ["resnet_ts_op17_preserve.onnx", "bert_ts_op14.onnx", "dtypes.onnx", "constant_identity.onnx", "attrs_op9.onnx"] {
            let m = try ONNXReader.readModel(path: ONNXFixtures.path(name))
            let out = dir + "/" + name
            try ONNXWriter.write(m, to: out)
            let back = try ONNXReader.readModel(path: out)
            XCTAssertEqual(back.graph.initializers.keys, m.graph.initializers.keys, name)
            for (k, t) in m.graph.initializers { XCTAssertTrue(back.graph.initializers[k]!.bitwiseEqual(t), "\(name): \(k)") }
            XCTAssertEqual(back.graph.nodes.map(\.opType), m.graph.nodes.map(\.opType), name)
            XCTAssertEqual(back.graph.nodes.map(\.inputs), m.graph.nodes.map(\.inputs), name)
            XCTAssertEqual(back.graph.inputs, m.graph.inputs, name)
            XCTAssertEqual(back.graph.outputs, m.graph.outputs, name)
            XCTAssertEqual(back.opsetImports, m.opsetImports, name)
            XCTAssertEqual(back.irVersion, m.irVersion, name)
            let a = ONNXReader.bundle(m), b = ONNXReader.bundle(back)
            XCTAssertEqual(a.tensors.keys, b.tensors.keys, name)
        }
    }

    func testWriterMovesLargeTensorsToExternalData() throws {
        let dirTemp = TempDir()
        let dir = dirTemp.path
        let m = try ONNXReader.readModel(path: ONNXFixtures.path("resnet_ts_op13.onnx"))
        let out = dir + "/big.onnx"
        try ONNXWriter.write(m, to: out, externalDataThreshold: 0)
        XCTAssertTrue(FileManager.default.fileExists(atPath: dir + "/big.onnx.data"))
        let back = try ONNXReader.readModel(path: out)
        for (k, t) in m.graph.initializers { XCTAssertTrue(back.graph.initializers[k]!.bitwiseEqual(t), k) }
        XCTAssertFalse(back.graph.externalLocations.isEmpty)
        XCTAssertTrue(back.graph.initializers.values.contains { $0.storage.isMapped })
    }

    /// A quick in-process fuzz: truncations and byte flips of real models never crash.
    func testFuzzEntrySurvivesMutations() throws {
        let f = try MappedFile(path: ONNXFixtures.path("effnet_ts_op13.onnx"))
        var bytes = Array(f.buffer)
        for cut in stride(from: 0, to: bytes.count, by: max(1, bytes.count / 300)) {
            bytes.withUnsafeBytes { fuzzONNXModel(UnsafeRawBufferPointer(rebasing: $0.prefix(cut))) }
        }
        var rng = SeededGenerator(seed: 20261203)  // deterministic, so a failure reproduces
        for _ in 0..<300 {
            var m = bytes
            for _ in 0..<4 { m[Int.random(in: 0..<m.count, using: &rng)] = UInt8.random(in: 0...255, using: &rng) }
            m.withUnsafeBytes { fuzzONNXModel($0) }
        }
        bytes = []
    }
}
