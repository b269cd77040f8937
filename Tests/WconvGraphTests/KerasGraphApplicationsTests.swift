import XCTest
import WconvFormats
@testable import WconvGraph
import WconvTensor

/// keras.applications ResNet50, MobileNetV2 and EfficientNetB0: their real configs (written by
/// Keras, weights=None; the weights would be megabytes) build into graphs whose parameters have
/// exactly the Keras weights' names, shapes and count, with zero weights standing in.
final class KerasGraphApplicationsTests: XCTestCase {
    func build(_ app: String) throws -> (ModelGraph, JSONValue) {
        let cfg = try KerasGraphFixtures.json("app_\(app).config.json")
        let file = KerasModelFile(path: "app_\(app).config.json", layout: .kerasZip, config: cfg, kerasVersion: "3.15.1", backend: "jax", layers: [])
        let g = try KerasGraphBuilder.build(file, missingWeights: .zeros)
        return (g, try KerasGraphFixtures.json("app_\(app).expected.json"))
    }

    func assertKerasWeights(_ g: ModelGraph, _ exp: JSONValue, line: UInt = #line) {
        var total = 0
        let weights = exp["weights"]!.object!
        for (name, shape) in weights {
            guard let t = g.parameters[name] else { XCTFail("missing \(name)", line: line); continue }
            let kerasShape = g.layoutTransforms[name]?.sourceShape ?? t.shape
            XCTAssertEqual(kerasShape, KerasGraphFixtures.ints(shape), name, line: line)
            total += t.numel
        }
        XCTAssertEqual(total, exp["params"]!.int!, "parameter count", line: line)
        let exported = g.parameters.keys.filter { !$0.contains("/__") }
        XCTAssertEqual(Set(exported), Set(weights.keys), line: line)
        XCTAssertEqual(g.outputs.first?.shape, [nil, 1000], line: line)
    }

    func histogram(_ g: ModelGraph) -> [Op: Int] { g.nodes.reduce(into: [:]) { $0[$1.op, default: 0] += 1 } }

    func testResNet50() throws {
        let (g, exp) = try build("resnet50")
        assertKerasWeights(g, exp)
        let h = histogram(g)
        XCTAssertEqual(h[.conv2d], 53)
        XCTAssertEqual(h[.batchNorm], 53)
        XCTAssertEqual(h[.add], 16)
        XCTAssertEqual(h[.pad], 2)
        XCTAssertEqual(g.nodes.first { $0.name == "conv1_bn" }?.float("epsilon"), 1.001e-5)
        XCTAssertEqual(g.nodes.first { $0.name == "conv1_conv" }?.ints("pads"), [0, 0, 0, 0])
        let p = try XCTUnwrap(g.preprocessing)
        XCTAssertEqual(p.channelOrder, "bgr")
        XCTAssertEqual(p.mean, [103.939, 116.779, 123.68])
        XCTAssertEqual(p.scale, 255)
        XCTAssertEqual(p.inputSize, [224, 224])
    }

    func testMobileNetV2() throws {
        let (g, exp) = try build("mobilenetv2")
        assertKerasWeights(g, exp)
        let h = histogram(g)
        XCTAssertEqual(h[.conv2d], 52)
        XCTAssertEqual(h[.relu6], 35)
        XCTAssertEqual(h[.pad], 4)
        let dw = try XCTUnwrap(g.nodes.first { $0.name == "block_1_depthwise" })
        XCTAssertEqual(dw.int("group"), 96)
        XCTAssertEqual(g.parameters["block_1_depthwise/kernel"]?.shape, [96, 1, 3, 3])
        XCTAssertEqual(try XCTUnwrap(g.nodes.first { $0.name == "bn_Conv1" }?.float("momentum")), 0.001, accuracy: 1e-12)
        let p = try XCTUnwrap(g.preprocessing)
        XCTAssertEqual(p.mean, [127.5, 127.5, 127.5])
        XCTAssertEqual(p.std, [127.5, 127.5, 127.5])
    }

    func testEfficientNetB0() throws {
        let (g, exp) = try build("efficientnetb0")
        assertKerasWeights(g, exp)
        let h = histogram(g)
        // Every swish in the config — Activation layers and convs with activation='swish' — is a silu.
        let swish = exp.object == nil ? 0 : (try KerasGraphFixtures.json("app_efficientnetb0.config.json"))["config"]!["layers"]!.array!
            .filter { ["swish", "silu"].contains($0["config"]?["activation"]?.string ?? "") }.count
        XCTAssertEqual(h[.silu], swish)
        XCTAssertEqual(swish, 49)
        XCTAssertEqual(h[.sigmoid], 16)
        XCTAssertEqual(h[.mul]! , 16 + 1, "SE excites and the Rescaling")
        XCTAssertEqual(h[.pad], 5)
        // SE: GAP → Reshape(1, 1, C) is a single reshape to (N, C, 1, 1), no transpose.
        let se = try XCTUnwrap(g.nodes.first { $0.name == "block2a_se_reshape" })
        XCTAssertEqual(se.op, .reshape)
        XCTAssertEqual(se.ints("shape"), [0, 96, 1, 1])
        // 'same' stride-2 depthwise 3×3 on 112×112: pad 0 top/left, 1 bottom/right — but Keras
        // EfficientNet pads explicitly and uses 'valid' there; the stride-1 5×5 ones are 'same' 2/2.
        XCTAssertEqual(g.nodes.first { $0.name == "block2a_dwconv" }?.ints("pads"), [0, 0, 0, 0])
        XCTAssertEqual(g.nodes.first { $0.name == "block3b_dwconv" }?.ints("pads"), [2, 2, 2, 2])
        let p = try XCTUnwrap(g.preprocessing)
        XCTAssertEqual(p.mean, [0, 0, 0])
        XCTAssertEqual(p.scale, 255)
    }

    /// Import speed for the largest: ResNet50's 25.6M parameters with every layout transform.
    func testResNet50BuildTime() throws {
        let cfg = try KerasGraphFixtures.json("app_resnet50.config.json")
        let file = KerasModelFile(path: "resnet50", layout: .kerasZip, config: cfg, kerasVersion: "3.15.1", backend: "jax", layers: [])
        let t0 = Date()
        let g = try KerasGraphBuilder.build(file, missingWeights: .zeros)
        let dt = Date().timeIntervalSince(t0)
        print("ResNet50 graph build (\(g.parameters.count) tensors, \(g.parameters.values.reduce(0) { $0 + $1.numel }) values): \(String(format: "%.3f", dt)) s")
        XCTAssertLessThan(dt, 30)
    }

    /// Full applications with real (random) weights, from tools/fixtures/keras/gen_apps.py (too big
    /// to commit): set WCONV_KERAS_APPS to its output folder. Both the .keras zip and the legacy
    /// .h5, built into graphs and run by the reference interpreter, match Keras's predictions.
    func testApplicationsParity() throws {
        guard let dir = ProcessInfo.processInfo.environment["WCONV_KERAS_APPS"] else {
            throw XCTSkip("set WCONV_KERAS_APPS to the folder tools/fixtures/keras/gen_apps.py wrote")
        }
        for app in ["mobilenetv2", "efficientnetb0", "resnet50"] {
            let exp = try JSONValue.parse(try String(contentsOfFile: "\(dir)/\(app).expected.json"), what: app, file: nil)
            let x = RefTensor(shape: KerasGraphFixtures.ints(exp["nchw_shape"]), data: KerasGraphFixtures.floats(exp["nchw"]))
            let want = KerasGraphFixtures.floats(exp["output"])
            for ext in ["keras", "h5"] {
                let t0 = Date()
                let m = try KerasReader.readModel(path: "\(dir)/\(app).\(ext)")
                let t1 = Date()
                let g = try KerasGraphBuilder.build(m)
                let t2 = Date()
                let out = try RefInterpreter.run(g, inputs: [g.inputs[0].name: x])
                let err = zip(out[0].data, want).map { abs($0 - $1) }.max() ?? .infinity
                print("\(app).\(ext): read \(String(format: "%.3f", t1.timeIntervalSince(t0))) s, build \(String(format: "%.3f", t2.timeIntervalSince(t1))) s, max |wconv − keras| = \(err)")
                XCTAssertEqual(out[0].shape, KerasGraphFixtures.ints(exp["output_shape"]))
                XCTAssertLessThan(err, 1e-4, "\(app).\(ext)")
            }
        }
    }
}
