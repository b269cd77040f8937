import Foundation
import WconvGraph
import WconvTensor
import XCTest
@testable import WconvRuntime

/// The ONNX-only ops: values against direct formulas, gradients by finite differences.
final class ONNXOpTests: XCTestCase {
    func offset(_ g0: ModelGraph, _ shape: [Int]) -> ModelGraph {
        var g = g0
        g.parameters["dx"] = Tensor(zeros: shape)
        g.nodes.insert(GraphNode(name: "off", op: .add, inputs: ["x", "dx"], outputs: ["x_off"]), at: 0)
        for k in 1..<g.nodes.count { g.nodes[k].inputs = g.nodes[k].inputs.map { $0 == "x" ? "x_off" : $0 } }
        return g
    }

    func testReduceUnaryBinary() throws {
        var rng = TestRNG(41)
        let x = rng.positive([2, 3, 4])
        let xv = x.floats()
        for (op, keep) in [(Op.reduceMean, 1), (.reduceSum, 0), (.reduceMax, 1)] {
            let g = singleNodeGraph(op, attrs: ["axes": .ints([1, 2]), "keepdims": .int(keep)], inputShapes: [[2, 3, 4]])
            let y = try runGraph(g, ["x": x])
            XCTAssertEqual(y.shape, keep == 1 ? [2, 1, 1] : [2])
            let ref = (0..<2).map { n -> Float in
                let s = xv[(n * 12)..<(n * 12 + 12)]
                return op == .reduceMax ? s.max()! : s.reduce(0, +) / (op == .reduceMean ? 12 : 1)
            }
            assertClose(y.floats(), ref, "\(op)")
            try checkGradients(offset(g, [2, 3, 4]), inputs: ["x": x], trainable: ["dx"], eps: 1e-3)
        }
        let refs: [(Op, (Float) -> Float)] = [(.erf, { erff($0) }), (.sqrt, { $0.squareRoot() }), (.exp, { expf($0) }), (.log, { logf($0) }),
                                              (.neg, { -$0 }), (.reciprocal, { 1 / $0 }), (.abs, { Swift.abs($0) })]
        for (op, f) in refs {
            let g = singleNodeGraph(op, inputShapes: [[2, 3, 4]])
            assertClose(try runGraph(g, ["x": x]).floats(), xv.map(f), "\(op)")
            try checkGradients(offset(g, [2, 3, 4]), inputs: ["x": x], trainable: ["dx"], eps: 1e-3)
        }
        let b = rng.positive([3, 1])
        for op in [Op.pow, .minimum, .maximum] {
            let g = singleNodeGraph(op, inputShapes: [[2, 3, 4]], params: [("b", b)])
            let bv = b.floats()
            let y = try runGraph(g, ["x": x]).floats()
            for i in 0..<24 {
                let v = bv[(i / 4) % 3]
                let r = op == .pow ? powf(xv[i], v) : op == .minimum ? Swift.min(xv[i], v) : Swift.max(xv[i], v)
                XCTAssertEqual(y[i], r, accuracy: 1e-5)
            }
            try checkGradients(offset(g, [2, 3, 4]), inputs: ["x": x], trainable: ["dx", "b"], eps: 1e-3)
        }
        let gl = singleNodeGraph(.less, inputShapes: [[2, 3, 4]], params: [("b", b)])
        XCTAssertEqual(try runGraph(gl, ["x": x]).floats(), (0..<24).map { xv[$0] < b.floats()[($0 / 4) % 3] ? 1 : 0 })
    }

    func testWhereExpandSplitSqueeze() throws {
        var rng = TestRNG(42)
        let x = rng.tensor([2, 3, 4])
        let xv = x.floats()
        let cond = Tensor(shape: [3, 1], floats: [1, 0, 1]), other = rng.tensor([4])
        let gw = singleNodeGraph(.where, inputShapes: [[3, 1]], params: [("a", x), ("o", other)])
        let yw = try runGraph(gw, ["x": cond]).floats()
        let ov = other.floats()
        XCTAssertEqual(yw, (0..<24).map { i in [1, 0, 1][(i / 4) % 3] == 1 ? xv[i] : ov[i % 4] })
        try checkGradients(gw, inputs: ["x": cond], trainable: ["a", "o"])
        let ge = singleNodeGraph(.expand, inputShapes: [[3, 1]], params: [("s", Tensor(shape: [3], floats: [2, 3, 4]))])
        let c = rng.tensor([3, 1])
        let ye = try runGraph(ge, ["x": c])
        XCTAssertEqual(ye.shape, [2, 3, 4])
        XCTAssertEqual(ye.floats(), (0..<24).map { c.floats()[($0 / 4) % 3] })
        try checkGradients(offset(ge, [3, 1]), inputs: ["x": c], trainable: ["dx"])
        var gs = singleNodeGraph(.split, attrs: ["axis": .int(2), "split": .ints([1, 3])], inputShapes: [[2, 3, 4]])
        gs.nodes[0].outputs = ["y0", "y1"]
        gs.nodes.append(GraphNode(name: "m", op: .mul, inputs: ["y0", "y1"], outputs: ["y"]))
        let ys = try runGraph(gs, ["x": x]).floats()
        XCTAssertEqual(ys, (0..<18).map { i in let r = i / 3, k = i % 3; return xv[r * 4] * xv[r * 4 + 1 + k] })
        try checkGradients(offset(gs, [2, 3, 4]), inputs: ["x": x], trainable: ["dx"])
        let gu = singleNodeGraph(.unsqueeze, attrs: ["axes": .ints([0, -1])], inputShapes: [[2, 3, 4]])
        XCTAssertEqual(try runGraph(gu, ["x": x]).shape, [1, 2, 3, 4, 1])
        let gq = singleNodeGraph(.squeeze, attrs: ["axes": .ints([1])], inputShapes: [[2, 1, 4]])
        XCTAssertEqual(try runGraph(gq, ["x": Tensor(zeros: [2, 1, 4])]).shape, [2, 4])
        let gc = singleNodeGraph(.cast, attrs: ["to": .string("i64")], inputShapes: [[3]])
        XCTAssertEqual(try runGraph(gc, ["x": Tensor(shape: [3], floats: [1.7, -2.5, 3])]).floats(), [1, -2, 3])
    }
}
