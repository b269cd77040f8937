import Foundation
import OrderedCollections
import WconvGraph
import WconvTensor
import XCTest
@testable import WconvRuntime

/// A minimal safetensors reader for the test fixtures only (the product's reader lives in
/// WconvFormats); it trusts nothing beyond what the fixture generator wrote.
func readSafetensorsForTest(_ url: URL) throws -> OrderedDictionary<String, Tensor> {
    let data = try Data(contentsOf: url)
    guard data.count >= 8 else { throw WconvError.invalid("short file", file: url.path) }
    let n = Int(data.withUnsafeBytes { $0.loadUnaligned(as: UInt64.self) })
    guard n <= data.count - 8 else { throw WconvError.invalid("bad header length", file: url.path) }
    let header = try JSONSerialization.jsonObject(with: data[8..<(8 + n)]) as! [String: Any]
    var out: OrderedDictionary<String, Tensor> = [:]
    let entries = header.filter { $0.key != "__metadata__" }.sorted { (($0.value as! [String: Any])["data_offsets"] as! [Int])[0] < (($1.value as! [String: Any])["data_offsets"] as! [Int])[0] }
    for (name, v) in entries {
        let e = v as! [String: Any]
        let dtype = DType(safetensorsName: e["dtype"] as! String)!
        let shape = e["shape"] as! [Int]
        let off = e["data_offsets"] as! [Int]
        let bytes = data[(8 + n + off[0])..<(8 + n + off[1])]
        let storage = bytes.withUnsafeBytes { Storage(copying: $0) }
        out[name] = try Tensor(dtype: dtype, shape: shape, storage: storage)
    }
    return out
}

/// Whole-model parity: every family the graph recognisers know, built from the fixture state dicts
/// that tools/fixtures/models/gen.py wrote with PyTorch, run by the runtime, compared with torch's
/// eval outputs (within 1e-4 relative, 1e-5 absolute).
final class ModelParityTests: XCTestCase {
    let dir = TorchParityTests.fixturesDir().appendingPathComponent("models")

    func load(_ name: String) throws -> (ModelGraph, OrderedDictionary<String, Tensor>) {
        let manifest = try JSONSerialization.jsonObject(with: Data(contentsOf: dir.appendingPathComponent("manifest.json"))) as! [String: Any]
        let entry = manifest[name] as! [String: Any]
        let file = (entry["files"] as! [String]).first { $0.hasSuffix(".safetensors") }!
        let path = dir.appendingPathComponent(file)
        var bundle = TensorBundle(format: "safetensors")
        bundle.tensors = try readSafetensorsForTest(path)
        let result = try GraphImporter.importGraph(bundle: bundle, sourcePath: path.path,
                                                   configJSON: ArchitectureRecognizer.configBeside(path: path.path))
        let io = try readSafetensorsForTest(dir.appendingPathComponent(entry["io"] as! String))
        return (result.graph, io)
    }

    func check(_ name: String, file: StaticString = #filePath, line: UInt = #line) throws {
        let (g, io) = try load(name)
        XCTAssertFalse(g.isWeightsOnly, "\(name) recognised", file: file, line: line)
        let sess = try InferenceSession(graph: g)
        // The fixtures' text inputs are unpadded rows: mask all ones, token types 0.
        let feeds = g.unpaddedTextFeeds([g.inputs[0].name: io["input"]!]).feeds
        let outs = try sess.run(feeds)
        // The fixture's "output" is the graph's first output; any further named outputs match by name.
        let first = outs[g.outputs[0].name]!
        XCTAssertEqual(first.shape, io["output"]!.shape, name, file: file, line: line)
        assertClose(first.floats(), io["output"]!.floats(), rtol: 1e-4, atol: 1e-5, "\(name) output", file: file, line: line)
        for (k, t) in io where k != "input" && k != "output" {
            if let o = outs[k] { assertClose(o.floats(), t.floats(), rtol: 1e-4, atol: 1e-5, "\(name) \(k)", file: file, line: line) }
        }
        // The training session's eval forward (no folding, no fusion) agrees as well.
        let ts = try TrainingSession(graph: g, trainable: [])
        let to = try ts.forward(feeds, training: false)[g.outputs[0].name]!
        assertClose(to.floats(), io["output"]!.floats(), rtol: 1e-4, atol: 1e-5, "\(name) training-session eval", file: file, line: line)
    }

    func testResNetBasic() throws { try check("resnet_basic") }
    func testResNeXtBottleneck() throws { try check("resnext_bottleneck") }
    func testEfficientNet() throws { try check("efficientnet") }
    func testMobileNetV2() throws { try check("mobilenet_v2") }
    func testMobileNetV3Large() throws { try check("mobilenet_v3_large") }
    func testMobileNetV3Small() throws { try check("mobilenet_v3_small") }
    func testVGG() throws { try check("vgg") }
    func testVGGBN() throws { try check("vgg_bn") }
    func testDenseNet() throws { try check("densenet") }
    func testBERT() throws { try check("bert_cls") }
    func testMiniLMNoConfig() throws { try check("minilm_noconfig") }
    func testDistilBERT() throws { try check("distilbert") }
    func testEfficientNetV2() throws { try check("efficientnet_v2") }

    /// Every model the graph fixtures list, so a newly recognised family is covered without a new test.
    func testEveryManifestModel() throws {
        let manifest = try JSONSerialization.jsonObject(with: Data(contentsOf: dir.appendingPathComponent("manifest.json"))) as! [String: Any]
        XCTAssertGreaterThanOrEqual(manifest.count, 12)
        for name in manifest.keys.sorted() { try check(name) }
    }

    /// Backward through a whole recognised model: a finite-difference spot check on the head and
    /// (small eps: with train-mode BN and ReLU/max-pool kinks, 1e-2 steps leave the linear regime)
    /// on a stem parameter of the narrow ResNet (train-mode BN).
    func testResNetGradientsSpotCheck() throws {
        let (g, io) = try load("resnet_basic")
        let x = io["input"]!
        let head = g.parameters.keys.filter { $0.hasPrefix("fc.") }
        try checkGradientsNamedOutput(g, input: x, trainable: Array(head) + ["conv1.weight"])
    }

    func checkGradientsNamedOutput(_ g0: ModelGraph, input: Tensor, trainable: [String]) throws {
        var g = g0
        // Rename the output to "y" through an identity so checkGradients can address it.
        g.nodes.append(GraphNode(name: "out", op: .identity, inputs: [g.outputs[0].name], outputs: ["y"]))
        g.outputs = [ValueInfo(name: "y", shape: [])]
        try checkGradients(g, inputs: [g.inputs[0].name: input], trainable: trainable, training: true, eps: 1e-4, tol: 3e-2, samples: 6)
    }
}
