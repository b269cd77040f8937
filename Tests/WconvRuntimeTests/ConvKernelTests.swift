import WconvGraph
import WconvTensor
import XCTest
@testable import WconvRuntime

/// Naive direct convolution (the reference every conv path is checked against).
func naiveConv(_ x: [Float], _ xs: [Int], _ w: [Float], _ ws: [Int], _ b: [Float]?, stride: [Int], pads: [Int],
               dil: [Int], groups: Int) -> ([Float], [Int]) {
    let (n, c, h, wd) = (xs[0], xs[1], xs[2], xs[3])
    let (o, cg, kh, kw) = (ws[0], ws[1], ws[2], ws[3])
    let ho = (h + pads[0] + pads[2] - dil[0] * (kh - 1) - 1) / stride[0] + 1
    let wo = (wd + pads[1] + pads[3] - dil[1] * (kw - 1) - 1) / stride[1] + 1
    let og = o / groups
    var y = [Float](repeating: 0, count: n * o * ho * wo)
    for img in 0..<n { for oc in 0..<o { let grp = oc / og
        for oh in 0..<ho { for ow in 0..<wo {
            var s = Double(b?[oc] ?? 0)
            for ci in 0..<cg { for ki in 0..<kh { for kj in 0..<kw {
                let ih = oh * stride[0] - pads[0] + ki * dil[0], iw = ow * stride[1] - pads[1] + kj * dil[1]
                if ih < 0 || ih >= h || iw < 0 || iw >= wd { continue }
                s += Double(x[((img * c + grp * cg + ci) * h + ih) * wd + iw]) * Double(w[((oc * cg + ci) * kh + ki) * kw + kj])
            } } }
            y[((img * o + oc) * ho + oh) * wo + ow] = Float(s)
        } }
    } }
    return (y, [n, o, ho, wo])
}

final class ConvKernelTests: XCTestCase {
    struct Case { var x: [Int]; var w: [Int]; var stride: [Int]; var pads: [Int]; var dil: [Int]; var groups: Int; var bias: Bool }
    let cases: [Case] = [
        Case(x: [2, 3, 9, 8], w: [4, 3, 3, 3], stride: [1, 1], pads: [1, 1, 1, 1], dil: [1, 1], groups: 1, bias: true),
        Case(x: [3, 4, 7, 7], w: [6, 4, 1, 1], stride: [1, 1], pads: [0, 0, 0, 0], dil: [1, 1], groups: 1, bias: false),   // pointwise, batched chunk
        Case(x: [1, 4, 9, 9], w: [5, 4, 1, 1], stride: [2, 2], pads: [0, 0, 0, 0], dil: [1, 1], groups: 1, bias: true),    // strided 1×1
        Case(x: [2, 4, 10, 9], w: [6, 2, 3, 2], stride: [2, 1], pads: [0, 1, 2, 1], dil: [2, 1], groups: 2, bias: true),  // groups, dilation, asymmetric
        Case(x: [2, 6, 8, 8], w: [6, 1, 3, 3], stride: [1, 1], pads: [1, 1, 1, 1], dil: [1, 1], groups: 6, bias: true),   // depthwise
        Case(x: [2, 3, 9, 9], w: [6, 1, 5, 5], stride: [2, 2], pads: [1, 2, 2, 1], dil: [1, 1], groups: 3, bias: false),  // depthwise ×2 multiplier
        Case(x: [1, 2, 7, 7], w: [2, 1, 3, 3], stride: [2, 2], pads: [2, 2, 2, 2], dil: [2, 2], groups: 2, bias: true),   // depthwise dilated
        Case(x: [2, 3, 13, 12], w: [4, 3, 7, 7], stride: [2, 2], pads: [3, 3, 3, 3], dil: [1, 1], groups: 1, bias: false), // stem-like
    ]

    func graph(_ c: Case, _ rng: inout TestRNG) -> (ModelGraph, Tensor) {
        var params: [(String, Tensor)] = [("w", rng.tensor(c.w))]
        if c.bias { params.append(("b", rng.tensor([c.w[0]]))) }
        let g = singleNodeGraph(.conv2d, attrs: ["strides": .ints(c.stride), "pads": .ints(c.pads), "dilations": .ints(c.dil), "group": .int(c.groups)],
                                inputShapes: [c.x], params: params)
        return (g, rng.tensor(c.x))
    }

    func testConvMatchesNaive() throws {
        var rng = TestRNG(1)
        for (k, c) in cases.enumerated() {
            let (g, x) = graph(c, &rng)
            let y = try runGraph(g, ["x": x])
            let (ref, shape) = naiveConv(x.floats(), c.x, g.parameters["w"]!.floats(), c.w, g.parameters["b"]?.floats(),
                                         stride: c.stride, pads: c.pads, dil: c.dil, groups: c.groups)
            XCTAssertEqual(y.shape, shape, "case \(k)")
            assertClose(y.floats(), ref, "case \(k)")
        }
    }

    func testConvGradients() throws {
        var rng = TestRNG(2)
        for c in cases {
            let (g0, x) = graph(c, &rng)
            // The input gradient is checked through a trainable additive offset on x.
            var g = g0
            g.parameters["dx"] = Tensor(zeros: c.x)
            g.nodes.insert(GraphNode(name: "off", op: .add, inputs: ["x", "dx"], outputs: ["x1"]), at: 0)
            g.nodes[1].inputs[0] = "x1"
            try checkGradients(g, inputs: ["x": x], trainable: ["w", "dx"] + (c.bias ? ["b"] : []), eps: 1e-2, tol: 1e-2)
        }
    }

    func testBadConvShapesNameTheNode() throws {
        let g = singleNodeGraph(.conv2d, attrs: ["group": .int(2)], inputShapes: [[1, 3, 5, 5]], params: [("w", Tensor(zeros: [4, 2, 3, 3]))])
        XCTAssertThrowsError(try runGraph(g, ["x": Tensor(zeros: [1, 3, 5, 5])])) { e in
            XCTAssertTrue("\(e)".contains("n0"), "\(e)")
            XCTAssertTrue("\(e)".contains("[1, 3, 5, 5]"), "\(e)")
        }
    }
}
