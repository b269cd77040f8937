import Foundation
import WconvGraph
import WconvTensor

/// Index and scan ops (docs/adding-an-op.md): OneHot, TopK, CumSum. Every tensor is stored as f32
/// (integers exact below 2^24); index values are checked when the step runs.
enum IndexKernels {
    static let all: [OpKernels] = [oneHot, topK, cumSum]

    /// [outer, axis, inner] around one axis of `shape`.
    static func around(_ shape: [Int], _ axis: Int) -> (outer: Int, len: Int, inner: Int) {
        (shape[..<axis].reduce(1, *), shape[axis], shape[(axis + 1)...].reduce(1, *))
    }

    static let oneHot = OpKernels(.oneHot) { r in
        let idx = try r.shape(0)
        guard r.inputShapes.count > 2, let v = r.inputShapes[2], v.reduce(1, *) == 2 else { throw r.fail("values [off, on] (input 2) must hold two values") }
        let g = try IndexOps.oneHotGeometry(r.node, indices: idx, fail: r.fail)
        var out = idx
        out.insert(g.depth, at: g.axis)
        try r.agree(out)
        // The inserted dim splits the indices at the axis: [outer, depth, inner].
        return OneHot(outer: idx[..<g.axis].reduce(1, *), depth: g.depth, inner: idx[g.axis...].reduce(1, *))
    }

    static let topK = OpKernels(.topK) { r in
        let x = try r.shape(0)
        let g = try IndexOps.topKGeometry(r.node, x, fail: r.fail)
        var out = x
        out[g.axis] = g.k
        try r.agree(out, 0)
        try r.agree(out, 1)
        let a = around(x, g.axis)
        return TopK(outer: a.outer, len: a.len, inner: a.inner, k: g.k, largest: (r.node.int("largest") ?? 1) != 0)
    }

    static let cumSum = OpKernels(.cumSum) { r in
        let x = try r.shape(0)
        let ax = try IndexOps.cumSumAxis(r.node, rank: x.count, fail: r.fail)
        try r.agree(x)
        let a = around(x, ax)
        return CumSum(outer: a.outer, len: a.len, inner: a.inner, exclusive: (r.node.int("exclusive") ?? 0) != 0,
                      reverse: (r.node.int("reverse") ?? 0) != 0)
    }
}

/// y[o, d, i] = index[o, i] == d ? on : off, with negative indices counting from `depth` and any
/// index outside [-depth, depth) giving `off` everywhere (ONNX). Not differentiable.
struct OneHot: StepKernel {
    let outer: Int, depth: Int, inner: Int
    func extents(inputs: [Int], outputs: [Int]) -> StepExtents {
        StepExtents(inputs, outputs) { $0.read(0, outer * inner); $0.read(2, 2); $0.write(0, outer * depth * inner) }
    }
    func forward(_ c: StepContext) throws {
        let idx = c.input(0)!, values = c.input(2)!, y = c.output()
        let off = values[0], on = values[1]
        fillFloats(y, with: off, count: outer * depth * inner)
        for o in 0..<outer {
            for i in 0..<inner {
                let f = idx[o * inner + i]
                guard f.isFinite, f == f.rounded() else {
                    throw c.fail("one-hot index \(f) at position \(o * inner + i) is not an integer")
                }
                guard Swift.abs(f) < Float(depth) || f == -Float(depth) else { continue }
                var d = Int(f)
                if d < 0 { d += depth }
                y[(o * depth + d) * inner + i] = on
            }
        }
    }
}

/// The k largest (or smallest) values along an axis with their indices, in order; equal values
/// keep the lower index first. NaN counts as larger than any number (onnxruntime's order).
struct TopK: StepKernel {
    let outer: Int, len: Int, inner: Int, k: Int
    let largest: Bool
    func extents(inputs: [Int], outputs: [Int]) -> StepExtents {
        StepExtents(inputs, outputs) { $0.read(0, outer * len * inner); $0.write(0, outer * k * inner); $0.write(1, outer * k * inner) }
    }
    /// Index order of one row: best first.
    func order(_ base: UnsafePointer<Float>) -> [Int] {
        var ix = Array(0..<len)
        let big = largest
        ix.sort { a, b in
            let va = base[a * inner], vb = base[b * inner]
            if va.isNaN || vb.isNaN { return va.isNaN && !vb.isNaN ? big : (!va.isNaN && vb.isNaN ? !big : a < b) }
            if va != vb { return big ? va > vb : va < vb }
            return a < b
        }
        return ix
    }
    func forward(_ c: StepContext) throws {
        let x = c.input(0)!, values = c.output(0), indices = c.output(1)
        for o in 0..<outer {
            for i in 0..<inner {
                let base = UnsafePointer(x + o * len * inner + i)
                let ix = order(base)
                for j in 0..<k {
                    values[(o * k + j) * inner + i] = base[ix[j] * inner]
                    indices[(o * k + j) * inner + i] = Float(ix[j])
                }
            }
        }
    }
    /// The values' gradient goes back to the positions they came from.
    func backward(_ c: BackwardContext) throws {
        guard let dy = c.outputGradient(0), let dx = c.inputGradient(0) else { return }
        let indices = c.output(1)
        for o in 0..<outer {
            for i in 0..<inner {
                for j in 0..<k {
                    let at = Int(indices[(o * k + j) * inner + i])
                    guard at >= 0 && at < len else { throw WconvError.invalid("topK: saved index \(at) outside the axis of \(len)") }
                    dx[(o * len + at) * inner + i] += dy[(o * k + j) * inner + i]
                }
            }
        }
    }
}

/// Running sum along an axis (reverse: from the end; exclusive: without the element itself), in Double.
struct CumSum: StepKernel {
    let outer: Int, len: Int, inner: Int
    let exclusive: Bool, reverse: Bool

    static func scan(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, outer: Int, len: Int, inner: Int,
                     exclusive: Bool, reverse: Bool, accumulate: Bool) {
        for o in 0..<outer {
            for i in 0..<inner {
                var acc = 0.0
                for s in 0..<len {
                    let a = reverse ? len - 1 - s : s
                    let at = (o * len + a) * inner + i
                    if exclusive {
                        let v = Float(acc)
                        if accumulate { y[at] += v } else { y[at] = v }
                        acc += Double(x[at])
                    } else {
                        acc += Double(x[at])
                        if accumulate { y[at] += Float(acc) } else { y[at] = Float(acc) }
                    }
                }
            }
        }
    }
    func forward(_ c: StepContext) throws {
        CumSum.scan(c.input(0)!, c.output(), outer: outer, len: len, inner: inner, exclusive: exclusive, reverse: reverse, accumulate: false)
    }
    /// dx is the cumulative sum of dy in the other direction (same exclusiveness).
    func backward(_ c: BackwardContext) throws {
        guard let dy = c.outputGradient(), let dx = c.inputGradient(0) else { return }
        CumSum.scan(dy, dx, outer: outer, len: len, inner: inner, exclusive: exclusive, reverse: !reverse, accumulate: true)
    }
}
