import XCTest
@testable import WconvFormats
import WconvTensor
import WconvTestSupport

final class KerasReaderTests: XCTestCase {
    /// Every weight of the file equals the expected values exactly (f32 round-trips through JSON's double).
    func assertWeights(_ file: String, expected name: String, format: String, ordered: Bool = true, line: UInt = #line) throws {
        let bundle = try KerasReader.read(path: KerasFixtures.path(file))
        XCTAssertEqual(bundle.format, format, file, line: line)
        let exp = try KerasFixtures.expected(name)
        let tensors = KerasFixtures.tensors(exp["weights"])
        let order = exp["weight_order"]!.array!.map { $0.string! }
        if ordered {
            XCTAssertEqual(Array(bundle.tensors.keys), order, "\(file): names and Keras order", line: line)
        } else {
            XCTAssertEqual(Set(bundle.tensors.keys), Set(order), "\(file): names", line: line)
        }
        for (k, e) in tensors {
            guard let t = bundle.tensors[k] else { XCTFail("\(file): missing \(k)", line: line); continue }
            XCTAssertEqual(t.shape, e.shape, "\(file): \(k) shape", line: line)
            XCTAssertEqual(t.doubles(), e.values, "\(file): \(k) values", line: line)
        }
    }

    func testKeras3AllLayouts() throws {
        for m in ["func_small", "small", "resnet_style"] {
            try assertWeights("\(m).keras", expected: m, format: "keras")
            // Without its config a .weights.h5 knows no layer order (groups are named by class).
            try assertWeights("\(m).weights.h5", expected: m, format: "keras-weights-h5", ordered: false)
            try assertWeights("\(m)_legacy.h5", expected: m, format: "keras-h5")
            try assertWeights("\(m)_legacy_weights.h5", expected: m, format: "keras-h5-weights")
        }
    }

    func testSplitAttributesAndFixedLengthStrings() throws {
        try assertWeights("func_small_split_attrs.h5", expected: "func_small", format: "keras-h5-weights")
        try assertWeights("func_small_fixedstr.h5", expected: "func_small", format: "keras-h5")
        let m = try KerasReader.readModel(path: KerasFixtures.path("func_small_fixedstr.h5"))
        XCTAssertEqual(m.kerasVersion, "3.15.1")
        XCTAssertEqual(m.config?["config"]?["name"]?.string, "func_small")
    }

    func testTfKerasSpellings() throws {
        try assertWeights("tfk_mixed.h5", expected: "tfk_mixed", format: "keras-h5")
        try assertWeights("tfk_mixed_weights.h5", expected: "tfk_mixed", format: "keras-h5-weights")
        try assertWeights("tfk_seq.h5", expected: "tfk_seq", format: "keras-h5")
        try assertWeights("tfk_seq_weights.h5", expected: "tfk_seq", format: "keras-h5-weights")
        let m = try KerasReader.readModel(path: KerasFixtures.path("tfk_mixed.h5"))
        XCTAssertTrue(m.isKeras2)
        XCTAssertEqual(m.backend, "tensorflow")
        let dw = m.layers.first { $0.name == "dw" }!
        XCTAssertEqual(dw.weights.map(\.name), ["depthwise_kernel", "bias"])
        XCTAssertEqual(dw.weights[0].sourcePath, "/model_weights/dw/dw/depthwise_kernel:0")
        XCTAssertEqual(dw.className, "DepthwiseConv2D")
    }

    func testHalfPrecisionWeights() throws {
        for f in ["half.weights.h5", "half.keras"] {
            let b = try KerasReader.read(path: KerasFixtures.path(f))
            let exp = KerasFixtures.tensors(try KerasFixtures.expected("half")["weights"])
            for (k, e) in exp {
                XCTAssertEqual(b.tensors[k]?.dtype, .f16, "\(f) \(k)")
                XCTAssertEqual(b.tensors[k]?.doubles(), e.values, "\(f) \(k)")
            }
        }
    }

    /// A Functional base model and a Sequential head used as layers: weights named
    /// `model/inner_layer/weight`, from the zip, the legacy model file and the legacy weights file.
    func testNestedModels() throws {
        for (f, format) in [("nested.keras", "keras"), ("nested_legacy.h5", "keras-h5"), ("nested_legacy_weights.h5", "keras-h5-weights")] {
            try assertWeights(f, expected: "nested", format: format, ordered: false)
        }
        // The legacy file lists a nested model's weights trainable first, as Keras saved them.
        let m = try KerasReader.readModel(path: KerasFixtures.path("nested_legacy.h5"))
        let base = m.layers.first { $0.name == "base" }!
        XCTAssertEqual(base.weights.map(\.name), ["c1/kernel", "b1/gamma", "b1/beta", "d2/kernel", "d2/bias", "b2/gamma", "b2/beta",
                                                   "b1/moving_mean", "b1/moving_variance", "b2/moving_mean", "b2/moving_variance"])
    }

    /// Keras 3 before 3.15 wrote no `vars@name`: groups are matched by Keras's class-name rule.
    func testWeightsWithoutLayerNameAttributes() throws {
        try assertWeights("func_small_nonames.keras", expected: "func_small", format: "keras")
        try assertWeights("nested_nonames.keras", expected: "nested", format: "keras", ordered: false)
        // A nested model's .weights.h5 alone, no config: still every weight, by vars@name.
        try assertWeights("nested.weights.h5", expected: "nested", format: "keras-weights-h5", ordered: false)
    }

    func testBFloat16Weights() throws {
        let b = try KerasReader.read(path: KerasFixtures.path("bf16.weights.h5"))
        let exp = KerasFixtures.tensors(try KerasFixtures.expected("bf16")["weights"])
        XCTAssertEqual(Set(b.tensors.keys), Set(exp.keys))
        for (k, e) in exp {
            XCTAssertEqual(b.tensors[k]?.dtype, .bf16, k)
            XCTAssertEqual(b.tensors[k]?.shape, e.shape, k)
            XCTAssertEqual(b.tensors[k]?.doubles(), e.values, k)
        }
    }

    func testLayerTable() throws {
        let m = try KerasReader.readModel(path: KerasFixtures.path("func_small.keras"))
        let rows = m.layerTable
        let stem = rows.first { $0.name == "stem_conv" }!
        XCTAssertEqual(stem.className, "Conv2D")
        XCTAssertEqual(stem.params, 3 * 3 * 3 * 8)
        XCTAssertEqual(stem.outputShape, [6, 6, 8])
        XCTAssertEqual(rows.first?.outputShape, [13, 13, 3])
        XCTAssertEqual(rows.count, m.configLayers.count)
    }

    func testSniff() throws {
        for (f, want) in [("small.keras", true), ("small_legacy.h5", true), ("plain.h5", true), ("small.config.json", false)] {
            let d = try Data(contentsOf: URL(fileURLWithPath: KerasFixtures.path(f)))
            XCTAssertEqual(d.prefix(64).withUnsafeBytes { KerasReader.sniff($0) }, want, f)
        }
    }

    func assertInvalid(_ file: String, mentions: [String], line: UInt = #line) {
        XCTAssertThrowsError(try KerasReader.readModel(path: KerasFixtures.path(file)), file, line: line) { e in
            guard let w = e as? WconvError else { return XCTFail("\(file): \(e)", line: line) }
            XCTAssertEqual(w.exitCode, 3, "\(file): \(w)", line: line)
            for s in mentions { XCTAssertTrue(w.description.contains(s), "\(file): '\(s)' not in: \(w)", line: line) }
        }
    }

    func testBrokenFiles() {
        assertInvalid("broken_missing.h5", mentions: ["/model_weights/fc1/small/fc1/bias", "missing"])
        assertInvalid("broken_truncated.h5", mentions: ["broken_truncated.h5"])
        assertInvalid("broken_truncated.keras", mentions: ["broken_truncated.keras", "zip"])
        assertInvalid("broken_garbage.h5", mentions: ["HDF5"])
        assertInvalid("small.config.json", mentions: ["not an HDF5 file"])
    }
}

/// Truncated copies of every layout at many lengths: always a WconvError with exit code 3, never a
/// crash or a hang.
final class KerasTruncationTests: XCTestCase {
    func testTruncatedFilesAreRefused() throws {
        let dirTemp = TempDir()
        let dir = dirTemp.path
        var refused = 0, accepted = 0
        for f in ["small_legacy.h5", "small.keras", "small.weights.h5", "tfk_seq_weights.h5"] {
            let data = try Data(contentsOf: URL(fileURLWithPath: KerasFixtures.path(f)))
            var cut = 0
            while cut < data.count {
                let p = "\(dir)/\(cut)-\(f)"
                try data.prefix(cut).write(to: URL(fileURLWithPath: p))
                do {
                    _ = try KerasReader.readModel(path: p)
                    accepted += 1  // a cut after the last byte HDF5 needs can still be complete
                } catch let e as WconvError {
                    XCTAssertEqual(e.exitCode, 3, "\(f) cut at \(cut): \(e)")
                    refused += 1
                }
                try? FileManager.default.removeItem(atPath: p)
                cut += 613
            }
        }
        XCTAssertGreaterThan(refused, 100)
        print("truncation sweep: \(refused) refused, \(accepted) still complete")
    }
}
