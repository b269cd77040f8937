import Foundation
import WconvGraph
import WconvTensor
import XCTest
@testable import WconvRuntime

final class TransformerOpTests: XCTestCase {
    func testAttentionMatchesNaiveAndGradients() throws {
        var rng = TestRNG(21)
        let (b, t, d, heads) = (2, 3, 4, 2)
        let q = rng.tensor([b, t, d]), k = rng.tensor([b, 5, d]), v = rng.tensor([b, 5, d]), m = rng.tensor([b, 1, 1, 5])
        let g = singleNodeGraph(.attention, attrs: ["heads": .int(heads)], inputShapes: [[b, t, d]], params: [("k", k), ("v", v), ("m", m)])
        let y = try runGraph(g, ["x": q])
        XCTAssertEqual(y.shape, [b, t, d])
        let qv = q.floats(), kv = k.floats(), vv = v.floats(), mv = m.floats()
        var ref = [Float](repeating: 0, count: b * t * d)
        let dh = d / heads
        for bi in 0..<b { for h in 0..<heads { for i in 0..<t {
            var s = (0..<5).map { j -> Double in
                var acc = 0.0
                for c in 0..<dh { acc += Double(qv[(bi * t + i) * d + h * dh + c]) * Double(kv[(bi * 5 + j) * d + h * dh + c]) }
                return acc / Double(dh).squareRoot() + Double(mv[bi * 5 + j])
            }
            let mx = s.max()!
            s = s.map { exp($0 - mx) }
            let sum = s.reduce(0, +)
            for c in 0..<dh {
                var acc = 0.0
                for j in 0..<5 { acc += s[j] / sum * Double(vv[(bi * 5 + j) * d + h * dh + c]) }
                ref[(bi * t + i) * d + h * dh + c] = Float(acc)
            }
        } } }
        assertClose(y.floats(), ref)
        var gq = g
        gq.parameters["dx"] = Tensor(zeros: [b, t, d])
        gq.nodes.insert(GraphNode(name: "off", op: .add, inputs: ["x", "dx"], outputs: ["x1"]), at: 0)
        gq.nodes[1].inputs[0] = "x1"
        try checkGradients(gq, inputs: ["x": q], trainable: ["dx", "k", "v"], eps: 1e-2)
    }

    /// Dropout on the probabilities (HF's attention_probs_dropout_prob): eval ignores it; a training
    /// forward drops weights of v (the output changes, with one seed the same way twice) and the
    /// gradients through the dropped probabilities match finite differences.
    func testAttentionProbabilityDropout() throws {
        var rng = TestRNG(22)
        let (b, t, d, heads) = (2, 3, 4, 2)
        let q = rng.tensor([b, t, d]), k = rng.tensor([b, 5, d]), v = rng.tensor([b, 5, d]), m = rng.tensor([b, 1, 1, 5])
        func graph(_ attrs: [String: AttributeValue]) -> ModelGraph {
            singleNodeGraph(.attention, attrs: attrs, inputShapes: [[b, t, d]], params: [("k", k), ("v", v), ("m", m)])
        }
        let plain = graph(["heads": .int(heads)]), dropped = graph(["heads": .int(heads), "dropout": .float(0.5)])
        XCTAssertEqual(try runGraph(dropped, ["x": q]).floats(), try runGraph(plain, ["x": q]).floats(), "eval ignores the ratio")
        let s = try TrainingSession(graph: dropped, trainable: ["v"])
        s.seedDropout(5)
        let y1 = try s.forward(["x": q], training: true)["y"]!.floats()
        s.seedDropout(5)
        let y2 = try s.forward(["x": q], training: true)["y"]!.floats()
        XCTAssertEqual(y1, y2)
        let y0 = try runGraph(plain, ["x": q]).floats()
        XCTAssertGreaterThan(zip(y1, y0).map { abs($0 - $1) }.max()!, 1e-3, "training drops probabilities")
        XCTAssertEqual(try s.forward(["x": q], training: false)["y"]!.floats(), y0, "an eval forward of the session ignores it")
        var gq = dropped
        gq.parameters["dx"] = Tensor(zeros: [b, t, d])
        gq.nodes.insert(GraphNode(name: "off", op: .add, inputs: ["x", "dx"], outputs: ["x1"]), at: 0)
        gq.nodes[1].inputs[0] = "x1"
        try checkGradients(gq, inputs: ["x": q], trainable: ["dx", "k", "v"], eps: 1e-2)
    }

    /// Masks of every broadcast pattern are read in place (strides), as if expanded to [B, H, Tq, Tk].
    func testAttentionMaskBroadcasts() throws {
        var rng = TestRNG(23)
        let (b, t, tk, d, heads) = (2, 3, 4, 4, 2)
        let dh = d / heads
        let q = rng.tensor([b, t, d]), k = rng.tensor([b, tk, d]), v = rng.tensor([b, tk, d])
        for shape in [[b, heads, t, tk], [1, 1, t, tk], [b, 1, t, 1], [heads, 1, tk], [tk]] {
            let m = rng.tensor(shape, scale: 3)
            let g = singleNodeGraph(.attention, attrs: ["heads": .int(heads)], inputShapes: [[b, t, d]], params: [("k", k), ("v", v), ("m", m)])
            let y = try runGraph(g, ["x": q]).floats()
            let full = [1, 1, 1, 1].dropLast(shape.count) + shape
            func mask(_ bi: Int, _ h: Int, _ i: Int, _ j: Int) -> Double {
                let idx = [bi, h, i, j].enumerated().reduce(0) { acc, e in acc * full[e.offset] + (full[e.offset] == 1 ? 0 : e.element) }
                return Double(m.floats()[idx])
            }
            var ref = [Float](repeating: 0, count: b * t * d)
            let qv = q.floats(), kv = k.floats(), vv = v.floats()
            for bi in 0..<b { for h in 0..<heads { for i in 0..<t {
                var s = (0..<tk).map { j -> Double in
                    var acc = 0.0
                    for c in 0..<dh { acc += Double(qv[(bi * t + i) * d + h * dh + c]) * Double(kv[(bi * tk + j) * d + h * dh + c]) }
                    return acc / Double(dh).squareRoot() + mask(bi, h, i, j)
                }
                let mx = s.max()!
                s = s.map { exp($0 - mx) }
                let sum = s.reduce(0, +)
                for c in 0..<dh {
                    ref[(bi * t + i) * d + h * dh + c] = Float((0..<tk).reduce(0.0) { $0 + s[$1] / sum * Double(vv[(bi * tk + $1) * d + h * dh + c]) })
                }
            } } }
            assertClose(y, ref, rtol: 1e-4, atol: 1e-5, "mask \(shape)")
        }
    }

    func testSliceAndArange() throws {
        var rng = TestRNG(22)
        let x = rng.tensor([2, 5, 3])
        let g = singleNodeGraph(.slice, attrs: ["starts": .ints([1, -2]), "ends": .ints([Int(Int32.max), 3]), "axes": .ints([1, 2]), "steps": .ints([2, 1])],
                                inputShapes: [[2, 5, 3]])
        let y = try runGraph(g, ["x": x])
        XCTAssertEqual(y.shape, [2, 2, 2])
        let xv = x.floats()
        var ref = [Float]()
        for a in 0..<2 { for i in [1, 3] { for j in [1, 2] { ref.append(xv[(a * 5 + i) * 3 + j]) } } }
        assertClose(y.floats(), ref)
        var gs = g
        gs.parameters["dx"] = Tensor(zeros: [2, 5, 3])
        gs.nodes.insert(GraphNode(name: "off", op: .add, inputs: ["x", "dx"], outputs: ["x1"]), at: 0)
        gs.nodes[1].inputs[0] = "x1"
        try checkGradients(gs, inputs: ["x": x], trainable: ["dx"])
        let ga = singleNodeGraph(.arange, attrs: ["axis": .int(1), "start": .int(2), "step": .int(3)], inputShapes: [[2, 4]])
        XCTAssertEqual(try runGraph(ga, ["x": Tensor(zeros: [2, 4])]).floats(), [2, 5, 8, 11])
    }
}
