import WconvGraph
import WconvTensor
import XCTest
@testable import WconvRuntime

/// What the index ops refuse, each error naming the node and the value or equation (their numbers
/// against onnxruntime: fixtures/onnx/ops/index_*, ONNXOpsParityTests).
final class IndexOpRefusalTests: XCTestCase {
    func oneHot(depth: Int?) -> ModelGraph {
        var g = singleNodeGraph(.oneHot, attrs: depth.map { ["depth": .ints([$0])] } ?? [:], inputShapes: [[3]],
                                params: [("values", Tensor(shape: [2], floats: [0, 1]))])
        g.nodes[0].inputs = ["x", depth == nil ? "x" : "", "values"]
        g.inputs[0] = ValueInfo(name: "x", dtype: .i64, shape: [3])
        return g
    }

    func testOneHotIndicesCheckedWhenTheStepRuns() throws {
        let s = try InferenceSession(graph: oneHot(depth: 3))
        // Negative indices count from the end; out-of-range ones give a row of `off` (ONNX, onnxruntime).
        XCTAssertEqual(try s.run(["x": Tensor(shape: [3], floats: [2, -1, 7])])["y"]?.floats(), [0, 0, 1, 0, 0, 1, 0, 0, 0])
        for bad: Float in [0.5, .nan, .infinity] {
            XCTAssertThrowsError(try s.run(["x": Tensor(shape: [3], floats: [0, bad, 1])])) { e in
                XCTAssertTrue("\(e)".contains("node 'n0'") && "\(e)".contains("index \(bad)"), "\(e)")
            }
        }
    }

    func testOneHotDepthMustBeKnownAndSane() throws {
        XCTAssertThrowsError(try InferenceSession(graph: oneHot(depth: nil)).run(["x": Tensor(shape: [3], floats: [0, 1, 2])])) { e in
            XCTAssertTrue("\(e)".contains("'n0'") && "\(e)".contains("depth (input 1) is computed from input data"), "\(e)")
        }
        XCTAssertThrowsError(try InferenceSession(graph: oneHot(depth: 0)).run(["x": Tensor(shape: [3], floats: [0, 1, 2])])) { e in
            XCTAssertTrue("\(e)".contains("'n0'") && "\(e)".contains("depth 0"), "\(e)")
        }
    }

    func testTopKWithKBeyondTheAxisIsRefused() throws {
        var g = singleNodeGraph(.topK, attrs: ["k": .ints([5]), "axis": .int(1)], inputShapes: [[2, 3]])
        g.nodes[0].outputs = ["y", "i"]
        XCTAssertThrowsError(try runGraph(g, ["x": Tensor(shape: [2, 3], floats: [1, 2, 3, 4, 5, 6])])) { e in
            XCTAssertTrue("\(e)".contains("'n0'") && "\(e)".contains("k = 5"), "\(e)")
        }
    }

    func testEinsumRefusalsNameTheEquation() throws {
        for (eq, why) in [("...ij,...jk->...ik", "ellipsis"), ("ij,jk->iz", "output letter 'z'"), ("ij,ij->ij", "has size 3 and 4"),
                          ("ijk->i", "rank 2")] {
            let shapes = eq.contains(",") ? [[2, 3], [eq.hasPrefix("ij,ij") ? 2 : 3, 4]] : [[2, 3]]
            let g = singleNodeGraph(.einsum, attrs: ["equation": .string(eq)], inputShapes: shapes)
            var feeds: [String: Tensor] = [:]
            for (k, s) in shapes.enumerated() { feeds[k == 0 ? "x" : "x\(k + 1)"] = Tensor(shape: s, floats: [Float](repeating: 1, count: s.reduce(1, *))) }
            XCTAssertThrowsError(try runGraph(g, feeds)) { e in
                XCTAssertTrue("\(e)".contains("'n0'") && "\(e)".contains("'\(eq)'") && "\(e)".contains(why), "\(eq): \(e)")
            }
        }
    }
}
