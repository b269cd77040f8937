import Foundation
import WconvGraph
import WconvTensor
import XCTest
@testable import WconvRuntime
import WconvTestSupport

/// Op-level parity with PyTorch: fixtures/runtime/ops.json, written by tools/fixtures/runtime/gen.py.
final class TorchParityTests: XCTestCase {
    struct JTensor: Decodable { var shape: [Int]; var data: [Float]; var tensor: Tensor { Tensor(shape: shape, floats: data) } }
    struct JAttr: Decodable {
        var value: AttributeValue
        init(from decoder: Decoder) throws {
            let c = try decoder.singleValueContainer()
            if let i = try? c.decode(Int.self) { value = .int(i) }
            else if let d = try? c.decode(Double.self) { value = .float(d) }
            else if let s = try? c.decode(String.self) { value = .string(s) }
            else { value = .ints(try c.decode([Int].self)) }
        }
    }
    struct Param: Decodable {
        var name: String; var t: JTensor
        init(from decoder: Decoder) throws { var c = try decoder.unkeyedContainer(); name = try c.decode(String.self); t = try c.decode(JTensor.self) }
    }
    struct Case: Decodable {
        var name: String; var op: String; var attrs: [String: JAttr]; var training: Bool
        var x: JTensor; var params: [Param]; var buffers: [String]; var trainable: [String]
        var r: JTensor; var y: JTensor; var grads: [String: JTensor]; var after: [String: JTensor]?
    }
    struct File: Decodable { var cases: [Case] }

    static func fixturesDir() -> URL { Repo.fixtures }

    func testOpsMatchPyTorch() throws {
        let data = try Data(contentsOf: Self.fixturesDir().appendingPathComponent("runtime/ops.json"))
        let file = try JSONDecoder().decode(File.self, from: data)
        XCTAssertGreaterThan(file.cases.count, 30)
        for c in file.cases {
            var g = ModelGraph()
            g.inputs = [ValueInfo(name: "x", shape: c.x.shape.map { $0 })]
            g.parameters["dx"] = Tensor(zeros: c.x.shape)
            for p in c.params { g.parameters[p.name] = p.t.tensor }
            g.buffers = Set(c.buffers)
            g.nodes = [
                GraphNode(name: "offset", op: .add, inputs: ["x", "dx"], outputs: ["x1"]),
                GraphNode(name: c.name, op: Op(c.op), inputs: ["x1"] + c.params.map(\.name), outputs: ["y"],
                          attributes: c.attrs.mapValues(\.value)),
            ]
            g.outputs = [ValueInfo(name: "y", shape: c.y.shape.map { $0 })]
            let s = try TrainingSession(graph: g, trainable: Set(["dx"] + c.trainable))
            let y = try s.forward(["x": c.x.tensor], training: c.training)["y"]!
            XCTAssertEqual(y.shape, c.y.shape, c.name)
            assertClose(y.floats(), c.y.data, "\(c.name) output")
            let grads = try s.backward(outputGradients: ["y": c.r.tensor])
            for (name, expected) in c.grads {
                let key = name == "x" ? "dx" : name
                assertClose(grads[key]?.floats() ?? [], expected.data, rtol: 1e-4, atol: 2e-5, "\(c.name) grad \(name)")
            }
            for (name, expected) in c.after ?? [:] {
                assertClose(Array(s.parameterBuffer(named: name)!), expected.data, "\(c.name) \(name) after step")
            }
            if !c.training {
                // The inference path (BN folded, activations fused) must agree too.
                let yi = try InferenceSession(graph: g).run(["x": c.x.tensor])["y"]!
                assertClose(yi.floats(), c.y.data, "\(c.name) inference")
            }
        }
    }
}
