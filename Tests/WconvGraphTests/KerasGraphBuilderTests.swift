import XCTest
import WconvFormats
@testable import WconvGraph
import WconvTensor

final class KerasGraphBuilderTests: XCTestCase {
    func graph(_ file: String) throws -> (KerasModelFile, ModelGraph) {
        let m = try KerasReader.readModel(path: KerasGraphFixtures.path(file))
        return (m, try KerasGraphBuilder.build(m))
    }

    /// The built graph, run by the naive reference interpreter on the NCHW probe, gives Keras's
    /// output for the NHWC probe.
    func assertParity(_ file: String, expected: String, tolerance: Float = 2e-5, line: UInt = #line) throws {
        let (_, g) = try graph(file)
        let exp = try KerasGraphFixtures.json(expected + ".expected.json")
        let probe = exp["probe"]!
        let x = RefTensor(shape: KerasGraphFixtures.ints(probe["nchw_shape"]), data: KerasGraphFixtures.floats(probe["nchw"]))
        let out = try RefInterpreter.run(g, inputs: [g.inputs[0].name: x])
        let want = KerasGraphFixtures.floats(probe["output"])
        XCTAssertEqual(out[0].shape, KerasGraphFixtures.ints(probe["output_shape"]), file, line: line)
        XCTAssertEqual(out[0].count, want.count, file, line: line)
        let maxErr = zip(out[0].data, want).map { abs($0 - $1) }.max() ?? .infinity
        XCTAssertLessThan(maxErr, tolerance, "\(file): max |wconv − keras| = \(maxErr)", line: line)
    }

    func testParityWithKeras3() throws {
        for m in ["func_small", "small", "resnet_style", "nested"] {
            try assertParity("\(m).keras", expected: m)
            try assertParity("\(m)_legacy.h5", expected: m)
        }
    }

    func testParityWithTfKeras() throws {
        // Keras 2 hard_sigmoid (0.2·x + 0.5), `depthwise_kernel`, batch_input_shape configs.
        try assertParity("tfk_mixed.h5", expected: "tfk_mixed")
        try assertParity("tfk_seq.h5", expected: "tfk_seq")
        let (_, g) = try graph("tfk_mixed.h5")
        XCTAssertEqual(g.nodes.first { $0.op == .hardSigmoid }?.float("alpha"), 0.2)
        XCTAssertNotNil(g.parameters["dw/depthwise_kernel"])
    }

    func testSamePaddingSplitsAndAttributes() throws {
        let (_, g) = try graph("func_small.keras")
        func node(_ n: String) -> GraphNode { g.nodes.first { $0.name == n }! }
        XCTAssertEqual(node("stem_pad").ints("pads"), [0, 0, 0, 0, 0, 0, 1, 1])
        XCTAssertEqual(node("stem_conv").ints("pads"), [0, 0, 0, 0])
        XCTAssertEqual(node("dw").ints("pads"), [1, 1, 1, 1])
        // 6×6, k3, s2 → 3×3: one extra row/column, at the bottom/right (TF SAME_UPPER).
        XCTAssertEqual(node("down_conv").ints("pads"), [0, 0, 1, 1])
        XCTAssertEqual(node("down_conv").string("autoPad"), "SAME_UPPER")
        XCTAssertEqual(node("dw2").ints("pads"), [2, 2, 2, 2])
        XCTAssertEqual(node("maxpool").ints("pads"), [0, 0, 1, 1])
        XCTAssertEqual(node("dw").int("group"), 8)
        XCTAssertEqual(node("stem_bn").float("epsilon"), 1e-3)
        XCTAssertEqual(node("stem_bn").float("momentum")!, 0.1, accuracy: 1e-12)
        XCTAssertEqual(node("dw_bn").float("epsilon"), 1e-5)
        XCTAssertEqual(KerasLayouts.samePadding(input: 7, kernel: 3, stride: 2, dilation: 1).0, 1)
        XCTAssertTrue(KerasLayouts.samePadding(input: 224, kernel: 3, stride: 2, dilation: 1) == (0, 1))
        XCTAssertTrue(KerasLayouts.samePadding(input: 225, kernel: 3, stride: 2, dilation: 1) == (1, 1))
        XCTAssertTrue(KerasLayouts.samePadding(input: 112, kernel: 5, stride: 2, dilation: 1) == (1, 2))
        XCTAssertTrue(KerasLayouts.samePadding(input: 10, kernel: 3, stride: 1, dilation: 2) == (2, 2))
    }

    func testLayoutTransformsElementwise() throws {
        let (m, g) = try graph("func_small.keras")
        func keras(_ layer: String, _ w: String) -> Tensor { m.layers.first { $0.name == layer }!.weights.first { $0.name == w }!.tensor }
        // Conv2D HWIO → OIHW.
        let k = keras("down_conv", "kernel"), c = g.parameters["down_conv/kernel"]!
        XCTAssertEqual(c.shape, [12, 8, 3, 3])
        let kf = k.floats(), cf = c.floats()
        for o in 0..<12 { for i in 0..<8 { for h in 0..<3 { for w in 0..<3 {
            XCTAssertEqual(cf[((o * 8 + i) * 3 + h) * 3 + w], kf[((h * 3 + w) * 8 + i) * 12 + o])
        } } } }
        XCTAssertEqual(g.layoutTransforms["down_conv/kernel"], LayoutTransform(kind: "permute", perm: [3, 2, 0, 1], sourceShape: [3, 3, 8, 12]))
        // Depthwise (kh, kw, C, M) → (C·M, 1, kh, kw), output channel c·M + m.
        let dk = keras("dw", "kernel").floats(), dc = g.parameters["dw/kernel"]!
        XCTAssertEqual(dc.shape, [16, 1, 3, 3])
        let dcf = dc.floats()
        for ch in 0..<8 { for mm in 0..<2 { for h in 0..<3 { for w in 0..<3 {
            XCTAssertEqual(dcf[((ch * 2 + mm) * 3 + h) * 3 + w], dk[((h * 3 + w) * 8 + ch) * 2 + mm])
        } } } }
        // Dense (in, out) → (out, in).
        let dn = keras("predictions", "kernel").floats(), dt = g.parameters["predictions/kernel"]!
        XCTAssertEqual(dt.shape, [5, 12])
        for o in 0..<5 { for i in 0..<12 { XCTAssertEqual(dt.floats()[o * 12 + i], dn[i * 5 + o]) } }
        // Flatten after conv: a transpose to NHWC first, recorded.
        let (_, sg) = try graph("small.keras")
        let flat = sg.nodes.firstIndex { $0.name == "flat" }!
        XCTAssertEqual(sg.nodes[flat - 1].op, .transpose)
        XCTAssertEqual(sg.nodes[flat - 1].ints("perm"), [0, 2, 3, 1])
        XCTAssertTrue(sg.provenance.notes["keras.transforms"]!.contains("Flatten 'flat'"))
    }

    func testGraphMetadata() throws {
        let (_, g) = try graph("func_small.keras")
        XCTAssertEqual(g.inputs, [ValueInfo(name: "input_image", shape: [nil, 3, 13, 13])])
        XCTAssertEqual(g.outputs, [ValueInfo(name: "predictions", shape: [nil, 5])])
        XCTAssertTrue(g.buffers.contains("stem_bn/moving_mean"))
        XCTAssertFalse(g.buffers.contains("stem_bn/gamma"))
        XCTAssertTrue(g.buffers.contains("norm/count"))
        // First layer is Rescaling: raw 0–255 pixels in.
        XCTAssertEqual(g.preprocessing?.scale, 255)
        XCTAssertEqual(g.preprocessing?.mean, [0, 0, 0])
        XCTAssertEqual(g.provenance.sourceFormat, "keras")
    }

    func testWrongShapeAndMissingConfig() throws {
        let m = try KerasReader.readModel(path: KerasGraphFixtures.path("broken_shape.h5"))
        XCTAssertThrowsError(try KerasGraphBuilder.build(m)) { e in
            let w = e as! WconvError
            XCTAssertEqual(w.exitCode, 3)
            XCTAssertTrue(w.message.contains("/model_weights/conv_a/small/conv_a/kernel"), w.message)
            XCTAssertTrue(w.message.contains("[3, 3, 2, 5]") && w.message.contains("[3, 3, 2, 4]"), w.message)
        }
        let weightsOnly = try KerasReader.readModel(path: KerasGraphFixtures.path("small_legacy_weights.h5"))
        XCTAssertThrowsError(try KerasGraphBuilder.build(weightsOnly)) { e in
            XCTAssertTrue("\(e)".contains("no model config"), "\(e)")
        }
    }

    func testUnsupportedLayersListedAtOnce() throws {
        let cfg = try JSONValue.parse("""
        {"class_name":"Sequential","config":{"name":"x","layers":[
          {"class_name":"InputLayer","config":{"name":"in","batch_shape":[null,4,4,2]}},
          {"class_name":"LSTM","config":{"name":"lstm"}},
          {"class_name":"Activation","config":{"name":"act","activation":"mish"}}]}}
        """, what: "test", file: nil)
        let m = KerasModelFile(path: "x.keras", layout: .kerasZip, config: cfg, kerasVersion: "3.15.1", backend: nil, layers: [])
        XCTAssertThrowsError(try KerasGraphBuilder.build(m)) { e in
            XCTAssertTrue("\(e)".contains("lstm (LSTM)") && "\(e)".contains("act (activation 'mish')"), "\(e)")
        }
    }
}

/// Hostile configs: every layer-config value of a real model replaced by wrong types, negative,
/// zero and huge numbers. Building either succeeds or throws a WconvError; it never traps.
final class KerasConfigMutationTests: XCTestCase {
    func testMutatedConfigsNeverCrash() throws {
        let base = try KerasReader.readModel(path: KerasGraphFixtures.path("func_small.keras"))
        let cfg = base.config!
        let bad: [JSONValue] = [.int(-1), .int(0), .int(1 << 40), .string("x"), .null, .array([]), .array([.int(1), .int(2), .int(3)]),
                                .array([.int(0), .int(0)]), .double(.nan)]
        // The keys the builder reads (initializers and regularizers are ignored).
        let read: Set<String> = ["filters", "kernel_size", "strides", "padding", "dilation_rate", "groups", "activation", "use_bias",
                                 "depth_multiplier", "units", "axis", "epsilon", "momentum", "center", "scale", "pool_size", "keepdims",
                                 "target_shape", "rate", "max_value", "negative_slope", "threshold", "offset", "mean", "variance",
                                 "invert", "data_format", "batch_shape"]
        var thrown = 0, built = 0
        let layers = cfg["config"]!["layers"]!.array!
        for (li, layer) in layers.enumerated() {
            for key in layer["config"]?.object?.keys ?? [] where read.contains(key) {
                for v in bad {
                    var l = layer.object!
                    var c = l["config"]!.object!
                    c[key] = v
                    l["config"] = .object(c)
                    var ls = layers
                    ls[li] = .object(l)
                    var top = cfg.object!
                    var inner = top["config"]!.object!
                    inner["layers"] = .array(ls)
                    top["config"] = .object(inner)
                    for mode in [KerasGraphBuilder.MissingWeights.error, .zeros] {
                        var m = base
                        m.config = .object(top)
                        if mode == .zeros { m.layers = [] }
                        do { _ = try KerasGraphBuilder.build(m, missingWeights: mode); built += 1 } catch is WconvError { thrown += 1 }
                    }
                }
            }
        }
        XCTAssertGreaterThan(thrown, 100)
        print("mutated configs: \(built) built, \(thrown) refused")
    }
}
