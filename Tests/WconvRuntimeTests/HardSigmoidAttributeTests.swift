import XCTest
import WconvGraph
import WconvRuntime
import WconvTensor

/// hardSigmoid reads alpha/beta: Keras 2 files use 0.2, PyTorch and Keras 3 use 1/6.
final class HardSigmoidAttributeTests: XCTestCase {
    func run(_ attrs: [String: AttributeValue], _ x: [Float]) throws -> [Float] {
        let g = ModelGraph(nodes: [GraphNode(name: "hs", op: .hardSigmoid, inputs: ["x"], outputs: ["y"], attributes: attrs)],
                           inputs: [ValueInfo(name: "x", shape: [1, x.count])], outputs: [ValueInfo(name: "y", shape: [1, x.count])])
        let s = try InferenceSession(graph: g, threads: 1)
        return try XCTUnwrap(s.run(["x": Tensor(shape: [1, x.count], floats: x)])["y"]).floats()
    }

    func testKeras2AlphaAndPyTorchDefault() throws {
        let x: [Float] = [-3, 0, 1, 2.5, 3]
        let keras2 = try run(["alpha": .float(0.2), "beta": .float(0.5)], x)
        for (a, b) in zip(keras2, [0, 0.5, 0.7, 1, 1] as [Float]) { XCTAssertEqual(a, b, accuracy: 1e-6) }
        let torch = try run([:], x)
        for (a, b) in zip(torch, [0, 0.5, 4.0 / 6, 5.5 / 6, 1] as [Float]) { XCTAssertEqual(a, b, accuracy: 1e-6) }
    }
}
