import Foundation
import WconvFormats
import WconvGraph
import WconvTensor
import XCTest
@testable import WconvRuntime

/// 1-D convolution beyond the generated parity and gradient fixtures (fixtures/onnx/ops, gen_ops.py
/// group `conv1d`, with 1-D ConvTranspose and pooling): what the importer refuses and how, and shape
/// errors naming the node.
final class Conv1dTests: XCTestCase {
    func testUnmappableConvAndControlFlowAreRefusedNamingTheNode() throws {
        var g = ONNXGraph(name: "conv1d")
        g.inputs = [ONNXValueInfo(name: "x", elemType: 1, shape: [.value(1), .value(2), .value(9)]),
                    ONNXValueInfo(name: "flag", elemType: 9, shape: [])]
        g.outputs = ["a", "b", "c"].map { ONNXValueInfo(name: $0, elemType: 1, shape: nil) }
        var rng = TestRNG(4)
        g.initializers["W"] = rng.tensor([3, 2, 3])
        g.nodes = [
            ONNXNode(name: "conv_kernel", opType: "Conv", inputs: ["x", "W"], outputs: ["a"], attributes: ["kernel_shape": .ints([5])]),
            ONNXNode(name: "conv_two_strides", opType: "Conv", inputs: ["x", "W"], outputs: ["b"], attributes: ["strides": .ints([1, 2])]),
            ONNXNode(name: "branch", opType: "If", inputs: ["flag"], outputs: ["c"]),
        ]
        let model = ONNXModel(irVersion: 8, opsetImports: [ONNXOpsetImport(domain: "", version: 17)], graph: g)
        XCTAssertThrowsError(try ONNXGraphBuilder.build(model)) { e in
            let m = "\(e)"
            for part in ["3 nodes", "'conv_kernel'", "kernel_shape [3]", "'conv_two_strides'", "one positive stride",
                         "'branch'", "control flow"] {
                XCTAssertTrue(m.contains(part), "\(part) missing from: \(m)")
            }
        }
    }

    func testBadConv1dShapesNameTheNode() throws {
        let g = singleNodeGraph(.conv1d, attrs: ["group": .int(2)], inputShapes: [[1, 3, 7]], params: [("w", Tensor(zeros: [4, 2, 3]))])
        XCTAssertThrowsError(try runGraph(g, ["x": Tensor(zeros: [1, 3, 7])])) { e in
            XCTAssertTrue("\(e)".contains("n0"), "\(e)")
            XCTAssertTrue("\(e)".contains("[1, 3, 7]"), "\(e)")
        }
        let long = singleNodeGraph(.conv1d, attrs: ["dilations": .ints([4])], inputShapes: [[1, 2, 7]], params: [("w", Tensor(zeros: [4, 2, 3]))])
        XCTAssertThrowsError(try runGraph(long, ["x": Tensor(zeros: [1, 2, 7])])) { e in
            XCTAssertTrue("\(e)".contains("smaller than the kernel extent 9"), "\(e)")
        }
    }

    func testBadTransposedAndPooling1dAttributesNameTheNode() throws {
        let t = singleNodeGraph(.convTranspose1d, attrs: ["strides": .ints([2, 2])], inputShapes: [[1, 2, 5]], params: [("w", Tensor(zeros: [2, 3, 3]))])
        XCTAssertThrowsError(try runGraph(t, ["x": Tensor(zeros: [1, 2, 5])])) { e in
            XCTAssertTrue("\(e)".contains("n0") && "\(e)".contains("strides needs 1 value"), "\(e)")
        }
        let big = singleNodeGraph(.convTranspose1d, attrs: ["outputShape": .ints([40])], inputShapes: [[1, 2, 5]], params: [("w", Tensor(zeros: [2, 3, 3]))])
        XCTAssertThrowsError(try runGraph(big, ["x": Tensor(zeros: [1, 2, 5])])) { e in
            XCTAssertTrue("\(e)".contains("output size 40 is larger than the 7"), "\(e)")
        }
        let pool = singleNodeGraph(.maxPool1d, attrs: ["kernel": .ints([3]), "pads": .ints([2, 0])], inputShapes: [[1, 2, 5]], params: [])
        XCTAssertThrowsError(try runGraph(pool, ["x": Tensor(zeros: [1, 2, 5])])) { e in
            XCTAssertTrue("\(e)".contains("n0") && "\(e)".contains("exceeds half the kernel"), "\(e)")
        }
    }
}
