import Foundation
import OrderedCollections
import XCTest
import WconvFormats
@testable import WconvGraph
import WconvTensor
import WconvTestSupport

final class ONNXGraphRoundTripTests: XCTestCase {
    /// Exported models land here for tools/interop/check_onnx.py (onnx.checker + onnxruntime).
    static let interopDir = ONNXGraphFixtures.repo + "/.build/interop/onnx"

    override class func setUp() {
        try? FileManager.default.createDirectory(atPath: interopDir, withIntermediateDirectories: true)
    }

    /// import → export → import gives the same ops, attributes, parameters (bitwise) and transforms.
    func testImportExportImportIsEqualForEveryFixture() throws {
        for name in try ONNXGraphFixtures.buildableModels() {
            let g1 = try ONNXGraphFixtures.build(name)
            let out = Self.interopDir + "/" + URL(fileURLWithPath: name).lastPathComponent
            try ONNXGraphExporter.export(g1, to: out)
            let m2 = try ONNXReader.readModel(path: out)
            XCTAssertEqual(m2.irVersion, 8, name)
            XCTAssertEqual(m2.defaultOpset, 17, name)
            let g2 = try ONNXGraphBuilder.build(m2)
            XCTAssertEqual(g2.nodes.map(\.op), g1.nodes.map(\.op), name)
            for (a, b) in zip(g1.nodes, g2.nodes) {
                var aa = a.attributes, bb = b.attributes
                // Softmax's pre-13 flag has no opset-17 spelling; it only matters off the last axis.
                aa["flattenTo2d"] = nil; bb["flattenTo2d"] = nil
                XCTAssertEqual(aa, bb, "\(name): \(a.name)")
                XCTAssertEqual(a.inputs.filter { g1.parameters[$0] != nil }, b.inputs.filter { g2.parameters[$0] != nil }, "\(name): \(a.name)")
            }
            XCTAssertEqual(Array(g2.parameters.keys).sorted(), Array(g1.parameters.keys).sorted(), name)
            for (k, t) in g1.parameters {
                XCTAssertTrue(g2.parameters[k]?.bitwiseEqual(t) ?? false, "\(name): \(k)")
            }
            XCTAssertEqual(g2.layoutTransforms, g1.layoutTransforms, name)
            XCTAssertEqual(g2.inputs.map(\.name), g1.inputs.map(\.name), name)
            XCTAssertEqual(g2.inputs.map(\.dtype), g1.inputs.map(\.dtype), name)
            XCTAssertEqual(g2.outputs.map(\.name), g1.outputs.map(\.name), name)
        }
    }

    /// A graph that did not come from ONNX (built by hand, as the Keras/PyTorch importers do):
    /// decomposed ops (SiLU, GELU, ReLU6), flatten at axis 2, keepdims-0 pooling, linear on 3-D input.
    func testExportOfAHandBuiltGraph() throws {
        var g = ModelGraph()
        g.inputs = [ValueInfo(name: "image", shape: [nil, 3, 8, 8])]
        g.outputs = [ValueInfo(name: "logits", shape: [nil, 5]), ValueInfo(name: "tokens", shape: [nil, 4, 6])]
        var rng = SeededGenerator(seed: 20261203)  // deterministic, so a failure reproduces
        func rand(_ shape: [Int]) -> Tensor { Tensor(shape: shape, floats: (0..<shape.reduce(1, *)).map { _ in Float.random(in: -0.5...0.5, using: &rng) }) }
        g.parameters = ["stem.weight": rand([4, 3, 3, 3]), "bn.weight": rand([4]), "bn.bias": rand([4]),
                        "bn.running_mean": rand([4]), "bn.running_var": Tensor(shape: [4], floats: [1, 1.5, 0.5, 2]),
                        "head.weight": rand([5, 4]), "head.bias": rand([5]), "tok.weight": rand([6, 4])]
        g.buffers = ["bn.running_mean", "bn.running_var"]
        g.nodes = [
            GraphNode(name: "stem", op: .conv2d, inputs: ["image", "stem.weight"], outputs: ["c"],
                      attributes: ["strides": .ints([2, 2]), "pads": .ints([0, 0, 1, 1]), "dilations": .ints([1, 1]), "group": .int(1)]),
            GraphNode(name: "bn", op: .batchNorm, inputs: ["c", "bn.weight", "bn.bias", "bn.running_mean", "bn.running_var"], outputs: ["b"],
                      attributes: ["epsilon": .float(1e-3), "momentum": .float(0.01)]),
            GraphNode(name: "act", op: .silu, inputs: ["b"], outputs: ["s"]),
            GraphNode(name: "act6", op: .relu6, inputs: ["s"], outputs: ["r"]),
            GraphNode(name: "gelu", op: .gelu, inputs: ["r"], outputs: ["e"], attributes: ["approximate": .string("tanh")]),
            GraphNode(name: "pool", op: .globalAvgPool, inputs: ["e"], outputs: ["p"], attributes: ["keepdims": .int(0)]),
            GraphNode(name: "head", op: .linear, inputs: ["p", "head.weight", "head.bias"], outputs: ["logits"]),
            GraphNode(name: "flat", op: .flatten, inputs: ["e"], outputs: ["f"], attributes: ["axis": .int(2)]),
            GraphNode(name: "perm", op: .transpose, inputs: ["f"], outputs: ["ft"], attributes: ["perm": .ints([0, 2, 1])]),
            GraphNode(name: "gelu2", op: .gelu, inputs: ["ft"], outputs: ["g2"], attributes: ["approximate": .string("none")]),
            GraphNode(name: "tok", op: .linear, inputs: ["g2", "tok.weight"], outputs: ["t0"]),
            GraphNode(name: "soft", op: .softmax, inputs: ["t0"], outputs: ["tsoft"], attributes: ["axis": .int(-1)]),
            GraphNode(name: "slice", op: .slice, inputs: ["tsoft"], outputs: ["tokens"],
                      attributes: ["starts": .ints([0]), "ends": .ints([4]), "axes": .ints([1])]),
        ]
        g.architecture = "handmade"
        let out = Self.interopDir + "/handmade.onnx"
        try ONNXGraphExporter.export(g, to: out)
        let back = try ONNXGraphBuilder.build(try ONNXReader.readModel(path: out))
        // SiLU comes back fused; GELU decomposes into erf/tanh arithmetic in opset 17.
        XCTAssertEqual(back.nodes.filter { $0.op == .silu }.count, 1)
        XCTAssertEqual(back.nodes.filter { $0.op == .relu6 }.count, 1)
        XCTAssertEqual(back.nodes.filter { $0.op == .batchNorm }.first?.float("momentum") ?? 0, 0.01, accuracy: 1e-6)
        XCTAssertTrue(back.parameters["head.weight"]!.bitwiseEqual(g.parameters["head.weight"]!))
        XCTAssertTrue(back.parameters["tok.weight"]!.bitwiseEqual(g.parameters["tok.weight"]!))
        XCTAssertEqual(back.outputs.map(\.name), ["logits", "tokens"])
    }

    func testWeightsOnlyBundleNeedsAGraph() {
        let g = ModelGraph(parameters: ["w": Tensor(zeros: [2])])
        XCTAssertThrowsError(try ONNXGraphExporter.export(g, to: NSTemporaryDirectory() + "never.onnx")) { e in
            guard let e = e as? WconvError else { return XCTFail("\(e)") }
            XCTAssertEqual(e.exitCode, 3)
            XCTAssertTrue(e.message.contains("weights-only") && e.message.contains("graph"), e.message)
        }
        XCTAssertFalse(FileManager.default.fileExists(atPath: NSTemporaryDirectory() + "never.onnx"))
    }

    func testOpsWithoutAnONNXSpellingAreListed() {
        var g = ModelGraph(inputs: [ValueInfo(name: "x", shape: [1, 4])], outputs: [ValueInfo(name: "y", shape: [1, 4])])
        g.nodes = [GraphNode(name: "mystery", op: Op("mysteryOp"), inputs: ["x"], outputs: ["h"]),
                   GraphNode(name: "other", op: Op("otherOp"), inputs: ["h"], outputs: ["y"])]
        XCTAssertThrowsError(try ONNXGraphExporter.model(g)) { e in
            XCTAssertTrue("\(e)".contains("mystery (mysteryOp)") && "\(e)".contains("other (otherOp)"), "\(e)")
        }
    }
}
