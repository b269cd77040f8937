import Foundation
import WconvGraph
import WconvTensor
import XCTest
@testable import WconvRuntime

/// Naive PyTorch-semantics pooling (max, or avg with count_include_pad), written independently of the kernels.
func naivePool(_ x: [Float], _ s: [Int], k: [Int], st: [Int], p: [Int], ceil: Bool, isMax: Bool, includePad: Bool, dil: [Int] = [1, 1]) -> ([Float], [Int]) {
    func outSize(_ n: Int, _ k: Int, _ s: Int, _ pb: Int, _ pe: Int, _ d: Int) -> Int {
        let num = Double(n + pb + pe - d * (k - 1) - 1) / Double(s)
        var o = Int(ceil ? num.rounded(.up) : num.rounded(.down)) + 1
        if ceil && (o - 1) * s >= n + pb { o -= 1 }
        return o
    }
    let ho = outSize(s[2], k[0], st[0], p[0], p[2], dil[0]), wo = outSize(s[3], k[1], st[1], p[1], p[3], dil[1])
    var y = [Float]()
    for plane in 0..<(s[0] * s[1]) {
        for oh in 0..<ho { for ow in 0..<wo {
            var best = -Float.infinity; var sum: Float = 0; var cnt = 0
            for ki in 0..<k[0] { for kj in 0..<k[1] {
                let ih = oh * st[0] - p[0] + ki * dil[0], iw = ow * st[1] - p[1] + kj * dil[1]
                if ih >= 0 && ih < s[2] && iw >= 0 && iw < s[3] {
                    let v = x[(plane * s[2] + ih) * s[3] + iw]; best = max(best, v); sum += v; cnt += 1
                }
            } }
            if isMax { y.append(best) } else {
                // count_include_pad: window clipped to the padded extent (not beyond it).
                let hs = oh * st[0] - p[0], ws = ow * st[1] - p[1]
                let he = min(hs + k[0], s[2] + p[2]), we = min(ws + k[1], s[3] + p[3])
                y.append(sum / Float(includePad ? (he - hs) * (we - ws) : cnt))
            }
        } }
    }
    return (y, [s[0], s[1], ho, wo])
}

final class OpKernelTests: XCTestCase {
    struct PoolCase { var s: [Int]; var k: [Int]; var st: [Int]; var p: [Int]; var ceil: Bool; var inc: Bool }
    let pools: [PoolCase] = [
        PoolCase(s: [2, 3, 7, 7], k: [3, 3], st: [2, 2], p: [1, 1, 1, 1], ceil: false, inc: true),
        PoolCase(s: [1, 2, 6, 6], k: [3, 3], st: [2, 2], p: [0, 0, 0, 0], ceil: true, inc: true),   // ceil adds a partial window
        PoolCase(s: [1, 2, 5, 5], k: [2, 2], st: [2, 2], p: [1, 1, 1, 1], ceil: true, inc: false),  // last-window-starts-inside rule
        PoolCase(s: [1, 1, 8, 5], k: [3, 2], st: [3, 2], p: [1, 0, 1, 1], ceil: true, inc: true),   // asymmetric
        PoolCase(s: [2, 2, 4, 4], k: [2, 2], st: [1, 1], p: [0, 0, 0, 0], ceil: false, inc: true),
    ]

    func testPoolsMatchNaive() throws {
        var rng = TestRNG(3)
        for (i, c) in pools.enumerated() {
            let x = rng.tensor(c.s)
            for isMax in [true, false] {
                let g = singleNodeGraph(isMax ? .maxPool2d : .avgPool2d,
                                        attrs: ["kernel": .ints(c.k), "strides": .ints(c.st), "pads": .ints(c.p),
                                                "ceilMode": .int(c.ceil ? 1 : 0), "countIncludePad": .int(c.inc ? 1 : 0)],
                                        inputShapes: [c.s])
                let y = try runGraph(g, ["x": x])
                let (ref, shape) = naivePool(x.floats(), c.s, k: c.k, st: c.st, p: c.p, ceil: c.ceil, isMax: isMax, includePad: c.inc)
                XCTAssertEqual(y.shape, shape, "case \(i) max=\(isMax)")
                assertClose(y.floats(), ref, "case \(i) max=\(isMax)")
                try checkGradients(withOffset(g, c.s), inputs: ["x": x], trainable: ["dx"], eps: 1e-3)
            }
        }
    }

    /// Makes the input gradient checkable: y = op(x + dx) with dx a trainable zero tensor.
    func withOffset(_ g0: ModelGraph, _ shape: [Int], input: String = "x") -> ModelGraph {
        var g = g0
        g.parameters["dx"] = Tensor(zeros: shape)
        g.nodes.insert(GraphNode(name: "off", op: .add, inputs: [input, "dx"], outputs: ["x_off"]), at: 0)
        for k in 1..<g.nodes.count { g.nodes[k].inputs = g.nodes[k].inputs.map { $0 == input ? "x_off" : $0 } }
        return g
    }

    func testAdaptiveAndGlobalPool() throws {
        var rng = TestRNG(4)
        let x = rng.tensor([2, 3, 7, 5])
        let g = singleNodeGraph(.adaptiveAvgPool2d, attrs: ["outputSize": .ints([3, 2])], inputShapes: [[2, 3, 7, 5]])
        let y = try runGraph(g, ["x": x]).floats()
        let xv = x.floats()
        var ref = [Float]()
        for plane in 0..<6 { for i in 0..<3 { for j in 0..<2 {
            let hs = Int(floor(Double(i * 7) / 3)), he = Int(ceil(Double((i + 1) * 7) / 3))
            let ws = Int(floor(Double(j * 5) / 2)), we = Int(ceil(Double((j + 1) * 5) / 2))
            var s: Float = 0
            for a in hs..<he { for b in ws..<we { s += xv[(plane * 7 + a) * 5 + b] } }
            ref.append(s / Float((he - hs) * (we - ws)))
        } } }
        assertClose(y, ref)
        try checkGradients(withOffset(g, [2, 3, 7, 5]), inputs: ["x": x], trainable: ["dx"], eps: 1e-2)
        let gg = singleNodeGraph(.globalAvgPool, attrs: ["keepdims": .int(0)], inputShapes: [[2, 3, 7, 5]])
        let yg = try runGraph(gg, ["x": x])
        XCTAssertEqual(yg.shape, [2, 3])
        assertClose(yg.floats(), (0..<6).map { p in xv[(p * 35)..<(p * 35 + 35)].reduce(0, +) / 35 })
    }

    func testActivations() throws {
        var rng = TestRNG(5)
        let x = rng.tensor([2, 3, 4, 5], scale: 5)
        let xv = x.floats().map(Double.init)
        let refs: [(Op, [String: AttributeValue], (Double) -> Double)] = [
            (.relu, [:], { max($0, 0) }), (.relu6, [:], { min(max($0, 0), 6) }),
            (.clip, ["min": .float(-1), "max": .float(2)], { min(max($0, -1), 2) }),
            (.silu, [:], { $0 / (1 + exp(-$0)) }), (.sigmoid, [:], { 1 / (1 + exp(-$0)) }), (.tanh, [:], { Foundation.tanh($0) }),
            (.gelu, [:], { 0.5 * $0 * (1 + erf($0 / 2.0.squareRoot())) }),
            (.gelu, ["approximate": .string("tanh")], { 0.5 * $0 * (1 + Foundation.tanh((2 / Double.pi).squareRoot() * ($0 + 0.044715 * $0 * $0 * $0))) }),
            (.hardSwish, [:], { $0 * min(max($0 + 3, 0), 6) / 6 }), (.hardSigmoid, [:], { min(max($0 + 3, 0), 6) / 6 }),
            (.hardSigmoid, ["alpha": .float(0.2), "beta": .float(0.5)], { min(max(0.2 * $0 + 0.5, 0), 1) }),
        ]
        for (op, attrs, f) in refs {
            let g = singleNodeGraph(op, attrs: attrs, inputShapes: [[2, 3, 4, 5]])
            let y = try runGraph(g, ["x": x]).floats()
            assertClose(y, xv.map { Float(f($0)) }, "\(op) \(attrs)")
            try checkGradients(withOffset(g, [2, 3, 4, 5]), inputs: ["x": x], trainable: ["dx"], eps: 1e-3, tol: 2e-2)
        }
    }

    func testBroadcastBinaryOps() throws {
        var rng = TestRNG(6)
        let shapes: [([Int], [Int])] = [([2, 3, 4, 5], [2, 3, 4, 5]), ([2, 3, 4, 5], [2, 3, 1, 1]), ([2, 3, 4, 5], [5]),
                                        ([3, 1, 5], [3, 4, 1]), ([1], [2, 3]), ([2, 3, 4, 5], [1, 3, 1, 5])]
        for (sa, sb) in shapes {
            for op in [Op.add, .sub, .mul, .div] {
                let a = rng.tensor(sa), b = op == .div ? rng.positive(sb) : rng.tensor(sb)
                var g = singleNodeGraph(op, inputShapes: [sa], params: [("b", b)])
                let y = try runGraph(g, ["x": a])
                let out = BroadcastPlan.outputShape(sa, sb)!
                XCTAssertEqual(y.shape, out)
                // Reference by explicit index arithmetic.
                let av = a.floats(), bv = b.floats()
                var ref = [Float]()
                let r = out.count
                let pa = [Int](repeating: 1, count: r - sa.count) + sa, pb = [Int](repeating: 1, count: r - sb.count) + sb
                for flat in 0..<out.reduce(1, *) {
                    var rem = flat, ia = 0, ib = 0, ma = 1, mb = 1
                    for d in stride(from: r - 1, through: 0, by: -1) {
                        let idx = rem % out[d]; rem /= out[d]
                        ia += (pa[d] == 1 ? 0 : idx) * ma; ma *= pa[d]
                        ib += (pb[d] == 1 ? 0 : idx) * mb; mb *= pb[d]
                    }
                    let u = av[ia], v = bv[ib]
                    ref.append(op == .add ? u + v : op == .sub ? u - v : op == .mul ? u * v : u / v)
                }
                assertClose(y.floats(), ref, "\(op) \(sa) \(sb)")
                g = withOffset(g, sa)
                try checkGradients(g, inputs: ["x": a], trainable: ["dx", "b"], eps: 1e-2)
            }
        }
    }

    func testLinearMatmul() throws {
        var rng = TestRNG(7)
        let x = rng.tensor([2, 3, 5]), w = rng.tensor([4, 5]), b = rng.tensor([4])
        let g = singleNodeGraph(.linear, inputShapes: [[2, 3, 5]], params: [("w", w), ("b", b)])
        let y = try runGraph(g, ["x": x])
        XCTAssertEqual(y.shape, [2, 3, 4])
        let xv = x.floats(), wv = w.floats(), bv = b.floats()
        var ref = [Float]()
        for r in 0..<6 { for o in 0..<4 { var s = bv[o]; for i in 0..<5 { s += xv[r * 5 + i] * wv[o * 5 + i] }; ref.append(s) } }
        assertClose(y.floats(), ref)
        try checkGradients(withOffset(g, [2, 3, 5]), inputs: ["x": x], trainable: ["dx", "w", "b"])
        // Batched matmul with broadcast batch dims: [2,1,3,4]·[3,4,2] → [2,3,3,2].
        let a = rng.tensor([2, 1, 3, 4]), m = rng.tensor([3, 4, 2])
        let gm = singleNodeGraph(.matmul, inputShapes: [[2, 1, 3, 4]], params: [("m", m)])
        let ym = try runGraph(gm, ["x": a])
        XCTAssertEqual(ym.shape, [2, 3, 3, 2])
        let av = a.floats(), mv = m.floats()
        var refm = [Float]()
        for i in 0..<2 { for j in 0..<3 { for r in 0..<3 { for c in 0..<2 {
            var s: Float = 0
            for k in 0..<4 { s += av[(i * 3 + r) * 4 + k] * mv[(j * 4 + k) * 2 + c] }
            refm.append(s)
        } } } }
        assertClose(ym.floats(), refm)
        try checkGradients(withOffset(gm, [2, 1, 3, 4]), inputs: ["x": a], trainable: ["dx", "m"])
        // 1-D operand.
        let gv = singleNodeGraph(.matmul, inputShapes: [[3, 4]], params: [("v", rng.tensor([4]))])
        XCTAssertEqual(try runGraph(gv, ["x": rng.tensor([3, 4])]).shape, [3])
    }

    func testBatchNormTrainAndEval() throws {
        var rng = TestRNG(8)
        let x = rng.tensor([4, 3, 2, 3], scale: 2)
        let params: [(String, Tensor)] = [("w", rng.positive([3])), ("b", rng.tensor([3])), ("rm", rng.tensor([3])), ("rv", rng.positive([3]))]
        var g = singleNodeGraph(.batchNorm, attrs: ["epsilon": .float(1e-5), "momentum": .float(0.1)], inputShapes: [[4, 3, 2, 3]], params: params)
        g.buffers = ["rm", "rv"]
        // Eval: (x − rm)/√(rv+ε)·w + b.
        let y = try runGraph(g, ["x": x]).floats()
        let xv = x.floats(), wv = params[0].1.floats(), bv = params[1].1.floats(), rm = params[2].1.floats(), rv = params[3].1.floats()
        var ref = [Float]()
        for i in 0..<xv.count { let c = (i / 6) % 3; ref.append((xv[i] - rm[c]) / (rv[c] + 1e-5).squareRoot() * wv[c] + bv[c]) }
        assertClose(y, ref)
        // Train: batch stats; running stats updated with momentum and unbiased variance.
        let s = try TrainingSession(graph: g, trainable: ["w", "b"])
        let yt = try s.forward(["x": x], training: true)["y"]!.floats()
        let newRm = Array(s.parameterBuffer(named: "rm")!), newRv = Array(s.parameterBuffer(named: "rv")!)
        var refT = [Float](repeating: 0, count: xv.count)
        for c in 0..<3 {
            var vals = [Double]()
            for n in 0..<4 { for k in 0..<6 { vals.append(Double(xv[(n * 3 + c) * 6 + k])) } }
            let mean = vals.reduce(0, +) / 24
            let v = vals.map { ($0 - mean) * ($0 - mean) }.reduce(0, +)
            XCTAssertEqual(Double(newRm[c]), 0.9 * Double(rm[c]) + 0.1 * mean, accuracy: 1e-5)
            XCTAssertEqual(Double(newRv[c]), 0.9 * Double(rv[c]) + 0.1 * v / 23, accuracy: 1e-5)
            for n in 0..<4 { for k in 0..<6 {
                let i = (n * 3 + c) * 6 + k
                refT[i] = Float((Double(xv[i]) - mean) / (v / 24 + 1e-5).squareRoot()) * wv[c] + bv[c]
            } }
        }
        assertClose(yt, refT)
        let go = withOffset(g, [4, 3, 2, 3])
        try checkGradients(go, inputs: ["x": x], trainable: ["dx", "w", "b"], training: true, eps: 1e-2)
        try checkGradients(go, inputs: ["x": x], trainable: ["dx", "w", "b"], training: true, bnMode: ["n0": .frozen], eps: 1e-2)
        try checkGradients(go, inputs: ["x": x], trainable: ["dx"], training: false, eps: 1e-2)
        // frozenAffine drops γ, β from the trainable set.
        let fa = try TrainingSession(graph: go, trainable: ["dx", "w", "b"], bnMode: ["n0": .frozenAffine])
        XCTAssertEqual(fa.trainable, ["dx"])
        try fa.setBatchNormModes(["n0": .train])
        XCTAssertEqual(fa.trainable, ["dx", "w", "b"], "unfreezing BN restores its affine parameters")
        XCTAssertThrowsError(try fa.setBatchNormModes(["nope": .frozen]))
    }

    func testLayerNormSoftmax() throws {
        var rng = TestRNG(9)
        let x = rng.tensor([2, 3, 6], scale: 3)
        let g = singleNodeGraph(.layerNorm, attrs: ["epsilon": .float(1e-5), "axis": .int(-1)], inputShapes: [[2, 3, 6]],
                                params: [("w", rng.positive([6])), ("b", rng.tensor([6]))])
        let y = try runGraph(g, ["x": x]).floats()
        let xv = x.floats(), wv = g.parameters["w"]!.floats(), bv = g.parameters["b"]!.floats()
        var ref = [Float]()
        for r in 0..<6 {
            let row = xv[(r * 6)..<(r * 6 + 6)].map(Double.init)
            let m = row.reduce(0, +) / 6, v = row.map { ($0 - m) * ($0 - m) }.reduce(0, +) / 6
            for i in 0..<6 { ref.append(Float((row[i] - m) / (v + 1e-5).squareRoot()) * wv[i] + bv[i]) }
        }
        assertClose(y, ref)
        try checkGradients(withOffset(g, [2, 3, 6]), inputs: ["x": x], trainable: ["dx", "w", "b"], eps: 1e-2)
        for axis in [1, -1] {
            let gs = singleNodeGraph(.softmax, attrs: ["axis": .int(axis)], inputShapes: [[2, 3, 6]])
            let ys = try runGraph(gs, ["x": x]).floats()
            var refs = [Float](repeating: 0, count: 36)
            for a in 0..<2 { for b in 0..<(axis == 1 ? 6 : 3) {
                let idx: [Int] = axis == 1 ? (0..<3).map { (a * 3 + $0) * 6 + b } : (0..<6).map { (a * 3 + b) * 6 + $0 }
                let e = idx.map { exp(Double(xv[$0])) }
                let s = e.reduce(0, +)
                for (k, i) in idx.enumerated() { refs[i] = Float(e[k] / s) }
            } }
            assertClose(ys, refs)
            try checkGradients(withOffset(gs, [2, 3, 6]), inputs: ["x": x], trainable: ["dx"], eps: 1e-2)
        }
    }

    func testShapeOps() throws {
        var rng = TestRNG(10)
        let x = rng.tensor([2, 3, 4])
        let xv = x.floats()
        // transpose
        let gt = singleNodeGraph(.transpose, attrs: ["perm": .ints([2, 0, 1])], inputShapes: [[2, 3, 4]])
        let yt = try runGraph(gt, ["x": x])
        XCTAssertEqual(yt.shape, [4, 2, 3])
        var reft = [Float]()
        for k in 0..<4 { for i in 0..<2 { for j in 0..<3 { reft.append(xv[(i * 3 + j) * 4 + k]) } } }
        assertClose(yt.floats(), reft)
        try checkGradients(withOffset(gt, [2, 3, 4]), inputs: ["x": x], trainable: ["dx"])
        // concat with a parameter along axis 1
        let c = rng.tensor([2, 2, 4])
        let gc = singleNodeGraph(.concat, attrs: ["axis": .int(1)], inputShapes: [[2, 3, 4]], params: [("c", c)])
        let yc = try runGraph(gc, ["x": x])
        XCTAssertEqual(yc.shape, [2, 5, 4])
        let cv = c.floats()
        assertClose(yc.floats(), Array(xv[0..<12] + cv[0..<8] + xv[12..<24] + cv[8..<16]))
        try checkGradients(withOffset(gc, [2, 3, 4]), inputs: ["x": x], trainable: ["dx", "c"])
        // flatten / reshape are views
        let gf = singleNodeGraph(.flatten, attrs: ["axis": .int(1)], inputShapes: [[2, 3, 4]])
        XCTAssertEqual(try runGraph(gf, ["x": x]).shape, [2, 12])
        let gr = singleNodeGraph(.reshape, attrs: ["shape": .ints([0, -1, 2])], inputShapes: [[2, 3, 4]])
        let yr = try runGraph(gr, ["x": x])
        XCTAssertEqual(yr.shape, [2, 6, 2])
        assertClose(yr.floats(), xv)
        try checkGradients(withOffset(gr, [2, 3, 4]), inputs: ["x": x], trainable: ["dx"])
        // pad
        let gp = singleNodeGraph(.pad, attrs: ["pads": .ints([0, 1, 0, 0, 2, 1]), "value": .float(0.5)], inputShapes: [[2, 3, 4]])
        let yp = try runGraph(gp, ["x": x])
        XCTAssertEqual(yp.shape, [2, 6, 5])
        let pv = yp.floats()
        XCTAssertEqual(pv[0], 0.5)
        XCTAssertEqual(pv[5], xv[0])
        XCTAssertEqual(pv[5 + 3], xv[3])
        XCTAssertEqual(pv[4], 0.5)
        try checkGradients(withOffset(gp, [2, 3, 4]), inputs: ["x": x], trainable: ["dx"])
        // gather along axis 1 with negative index, embedding
        let gg = singleNodeGraph(.gather, attrs: ["axis": .int(1)], inputShapes: [[2, 3, 4]], params: [("i", Tensor(shape: [2], floats: [2, -3]))])
        let yg = try runGraph(gg, ["x": x])
        XCTAssertEqual(yg.shape, [2, 2, 4])
        assertClose(yg.floats(), Array(xv[8..<12] + xv[0..<4] + xv[20..<24] + xv[12..<16]))
        try checkGradients(withOffset(gg, [2, 3, 4]), inputs: ["x": x], trainable: ["dx"])
        var ge = ModelGraph()
        ge.inputs = [ValueInfo(name: "ids", shape: [2, 2])]
        ge.parameters["E"] = rng.tensor([5, 3])
        ge.nodes = [GraphNode(name: "emb", op: .embedding, inputs: ["ids", "E"], outputs: ["y"])]
        ge.outputs = [ValueInfo(name: "y", shape: [])]
        let ids = Tensor(shape: [2, 2], floats: [4, 0, 4, 2])
        let ye = try InferenceSession(graph: ge).run(["ids": ids])["y"]!
        XCTAssertEqual(ye.shape, [2, 2, 3])
        let ev = ge.parameters["E"]!.floats()
        assertClose(ye.floats(), Array(ev[12..<15] + ev[0..<3] + ev[12..<15] + ev[6..<9]))
        try checkGradients(ge, inputs: ["ids": ids], trainable: ["E"], inputGradients: false)  // ids are indices
        XCTAssertThrowsError(try InferenceSession(graph: ge).run(["ids": Tensor(shape: [2, 2], floats: [5, 0, 0, 0])]))
    }

    func testDropout() throws {
        var rng = TestRNG(11)
        let x = rng.tensor([4, 100])
        let g = singleNodeGraph(.dropout, attrs: ["ratio": .float(0.3)], inputShapes: [[4, 100]])
        assertClose(try runGraph(g, ["x": x]).floats(), x.floats())
        let s = try TrainingSession(graph: withOffset(g, [4, 100]), trainable: ["dx"])
        s.seedDropout(1)
        let y1 = try s.forward(["x": x], training: true)["y"]!.floats()
        s.seedDropout(1)
        let y2 = try s.forward(["x": x], training: true)["y"]!.floats()
        XCTAssertEqual(y1, y2, "same seed, same mask")
        let zeros = y1.filter { $0 == 0 }.count
        XCTAssertTrue(zeros > 60 && zeros < 180, "about 30% dropped, got \(zeros)")
        let xv = x.floats()
        for i in 0..<400 where y1[i] != 0 { XCTAssertEqual(y1[i], xv[i] / 0.7, accuracy: 1e-5) }
        try checkGradients(withOffset(g, [4, 100]), inputs: ["x": x], trainable: ["dx"], training: true)
    }
}
