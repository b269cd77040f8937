import Foundation
import OrderedCollections
import WconvGraph
import WconvTensor
import XCTest
@testable import WconvRuntime

/// Parity of the zoo layouts (efficientnet_pytorch / Lite, timm, torchvision ConvNeXt and ViT,
/// Hugging Face ViT) against PyTorch: tiny models written by tools/fixtures/models/gen_zoo.py with
/// their eval outputs, recognised from the bare state dict (and config.json where the zoo writes
/// one), run by the inference and training sessions, within 1e-4 relative, 1e-5 absolute.
final class ZooParityTests: XCTestCase {
    let dir = TorchParityTests.fixturesDir().appendingPathComponent("models/zoo")

    func manifest() throws -> [String: [String: Any]] {
        try JSONSerialization.jsonObject(with: Data(contentsOf: dir.appendingPathComponent("manifest.json"))) as! [String: [String: Any]]
    }

    func load(_ name: String) throws -> (ModelGraph, OrderedDictionary<String, Tensor>) {
        let entry = try XCTUnwrap(try manifest()[name], "no zoo fixture \(name)")
        let path = dir.appendingPathComponent((entry["files"] as! [String]).first { $0.hasSuffix(".safetensors") }!)
        var bundle = TensorBundle(format: "safetensors")
        bundle.tensors = try readSafetensorsForTest(path)
        let result = try GraphImporter.importGraph(bundle: bundle, sourcePath: path.path,
                                                   configJSON: ArchitectureRecognizer.configBeside(path: path.path))
        return (result.graph, try readSafetensorsForTest(dir.appendingPathComponent(entry["io"] as! String)))
    }

    /// Runs the fixture and returns the largest relative error (|a-b| / max(|b|, 1e-3)) of its outputs.
    @discardableResult
    func check(_ name: String, file: StaticString = #filePath, line: UInt = #line) throws -> Float {
        let (g, io) = try load(name)
        XCTAssertFalse(g.isWeightsOnly, "\(name) recognised", file: file, line: line)
        let outs = try InferenceSession(graph: g).run([g.inputs[0].name: io["input"]!])
        let first = try XCTUnwrap(outs[g.outputs[0].name])
        XCTAssertEqual(first.shape, io["output"]!.shape, name, file: file, line: line)
        assertClose(first.floats(), io["output"]!.floats(), rtol: 1e-4, atol: 1e-5, "\(name) output", file: file, line: line)
        var worst = relError(first.floats(), io["output"]!.floats())
        for (k, t) in io where k != "input" && k != "output" {
            let o = try XCTUnwrap(outs[k], "\(name) has no output \(k)")
            assertClose(o.floats(), t.floats(), rtol: 1e-4, atol: 1e-5, "\(name) \(k)", file: file, line: line)
            worst = max(worst, relError(o.floats(), t.floats()))
        }
        let ts = try TrainingSession(graph: g, trainable: [])
        let to = try ts.forward([g.inputs[0].name: io["input"]!], training: false)[g.outputs[0].name]!
        assertClose(to.floats(), io["output"]!.floats(), rtol: 1e-4, atol: 1e-5, "\(name) training-session eval", file: file, line: line)
        print("zoo parity \(name) [\(g.variant ?? "-")]: max rel error \(worst)")
        return worst
    }

    func relError(_ a: [Float], _ b: [Float]) -> Float {
        zip(a, b).reduce(0) { max($0, abs($1.0 - $1.1) / max(abs($1.1), 1e-3)) }
    }

    func testEveryZooModel() throws {
        let all = try manifest()
        XCTAssertGreaterThanOrEqual(all.count, 12)
        for name in all.keys.sorted() { try check(name) }
    }

    func testEfficientNetPyTorchB() throws { try check("effnet_pt_b") }
    func testEfficientNetPyTorchLite() throws { try check("effnet_pt_lite") }
    func testTimmEfficientNet() throws { try check("timm_efficientnet_b0") }
    func testTimmTFEfficientNet() throws { try check("timm_tf_efficientnet_b0") }
    func testTimmTFEfficientNetLite() throws { try check("timm_tf_efficientnet_lite0") }
    func testTimmResNetD() throws { try check("timm_resnet_d") }
    func testTimmConvNeXt() throws { try check("timm_convnext") }
    func testTorchvisionConvNeXt() throws { try check("tv_convnext") }
    func testTimmViT() throws { try check("timm_vit") }
    func testTorchvisionViT() throws { try check("tv_vit") }
    func testHFViTForImageClassification() throws { try check("hf_vit_cls") }
    func testHFViTModel() throws { try check("hf_vit_model") }

    /// Gradients reach the ViT's class token and position embedding (through pad and add) and the
    /// ConvNeXt layer scales (mul by a parameter) as finite differences say.
    func testViTAndConvNeXtGradients() throws {
        for (name, params) in [("timm_vit", ["cls_token", "pos_embed", "blocks.1.attn.qkv.weight", "head.weight"]),
                               ("tv_convnext", ["features.1.0.layer_scale", "features.0.1.weight", "classifier.2.weight"])] {
            let (g0, io) = try load(name)
            var g = g0
            g.nodes.append(GraphNode(name: "out", op: .identity, inputs: [g.outputs[0].name], outputs: ["y"]))
            g.outputs = [ValueInfo(name: "y", shape: [])]
            try checkGradients(g, inputs: [g.inputs[0].name: io["input"]!], trainable: params, training: false,
                               eps: 1e-3, tol: 3e-2, samples: 6)
        }
    }
}
