import Foundation
import WconvGraph
import WconvTensor

/// Reductions (docs/adding-an-op.md): a contiguous block of axes runs as [outer, red, inner]
/// (Kernels/Reduce.swift); other axis sets walk the input once with a strided map.
enum ReductionKernels {
    static let all: [OpKernels] = [reduce(.reduceMean), reduce(.reduceSum), reduce(.reduceMax), reduce(.globalMaxPool), argReduce(.argMax), argReduce(.argMin)]

    static func reduce(_ op: Op) -> OpKernels {
        OpKernels(op) { r in
            let x = try r.shape(0)
            let axes: [Int]
            if op == .globalMaxPool { axes = Array(2..<x.count) } else {
                if r.node.ints("axes") == nil, r.node.inputs.count > 1, !r.node.inputs[1].isEmpty {
                    throw r.fail("the axes are computed from input data at run time")
                }
                axes = try ReductionOps.reducedAxes(r.node, rank: x.count)
            }
            let kind: ReduceKind = op == .reduceSum ? .sum : op == .reduceMean ? .mean : .max
            let group = axes.reduce(1) { $0 * x[$1] }
            if kind == .max && group == 0 { throw r.fail("max over an empty dim") }
            if let lo = axes.first, let hi = axes.last, hi - lo + 1 == axes.count {
                return BlockReduce(kind: kind, plan: ReducePlan(outer: x[..<lo].reduce(1, *), red: group, inner: x[(hi + 1)...].reduce(1, *)))
            }
            var kept = x
            for a in axes { kept[a] = 1 }
            guard let m = NBroadcast([kept], out: x) else { throw r.fail("internal: reduce map") }
            return StridedReduce(kind: kind, map: m, outCount: r.outCount, groupSize: group)
        }
    }

    static func argReduce(_ op: Op) -> OpKernels {
        OpKernels(op) { r in
            let x = try r.shape(0)
            let ax = try r.axis(r.node.int("axis") ?? 0, rank: x.count)
            guard x[ax] > 0 else { throw r.fail("\(op) over an empty dim") }
            return ArgMax(outer: x[..<ax].reduce(1, *), axisLen: x[ax], inner: x[(ax + 1)...].reduce(1, *),
                          selectLast: (r.node.int("selectLastIndex") ?? 0) != 0, minimum: op == .argMin)
        }
    }
}

/// Reduction over adjacent axes: data viewed as [outer, red, inner].
struct BlockReduce: StepKernel {
    let kind: ReduceKind
    let plan: ReducePlan
    func extents(inputs: [Int], outputs: [Int]) -> StepExtents {
        StepExtents(inputs, outputs) { $0.read(0, plan.outer * plan.red * plan.inner); $0.write(0, plan.outer * plan.inner) }
    }
    func forward(_ c: StepContext) throws { reduceForward(kind, c.input(0)!, plan, c.output()) }
    func backward(_ c: BackwardContext) throws {
        guard let dy = c.outputGradient(), let dx = c.inputGradient(0) else { return }
        reduceBackward(kind, c.input(0)!, plan, y: c.output(), dy: dy, dx: dx)
    }
}

/// Reduction over any axis set: `map` walks the input in order; input 0 of the map is the output
/// index (reduced dims have stride 0). Sums accumulate in Double so long reductions match
/// onnxruntime's pairwise sums closely.
struct StridedReduce: StepKernel {
    let kind: ReduceKind
    let map: NBroadcast
    let outCount: Int
    let groupSize: Int

    func extents(inputs: [Int], outputs: [Int]) -> StepExtents {
        StepExtents(inputs, outputs) { $0.read(0, map.count); $0.write(0, max(outCount, stridedSpan(map.outShape, map.strides[0]))) }
    }
    func forward(_ c: StepContext) throws {
        let x = c.input(0)!, y = c.output(), m = map
        let inner = m.inner, so = m.innerStride(0)
        if kind == .max {
            fillFloats(y, with: -.infinity, count: outCount)
            for row in 0..<m.rows {
                let py = y + m.rowOffset(0, row), px = x + row * inner
                for i in 0..<inner { let v = px[i]; if v > py[i * so] || v.isNaN { py[i * so] = v } }
            }
            return
        }
        var acc = [Double](repeating: 0, count: outCount)
        acc.withUnsafeMutableBufferPointer { a in
            let pa = a.baseAddress!
            for row in 0..<m.rows {
                let po = pa + m.rowOffset(0, row), px = x + row * inner
                for i in 0..<inner { po[i * so] += Double(px[i]) }
            }
            let scale = kind == .mean ? 1 / Double(Swift.max(groupSize, 1)) : 1
            for i in 0..<outCount { y[i] = Float(pa[i] * scale) }
        }
    }

    func backward(_ c: BackwardContext) throws {
        guard let dy = c.outputGradient(), let d = c.inputGradient(0) else { return }
        let m = map, y = c.output()
        let inner = m.inner, so = m.innerStride(0)
        switch kind {
        case .sum, .mean:
            let scale: Float = kind == .mean ? 1 / Float(max(groupSize, 1)) : 1
            for row in 0..<m.rows {
                let g = dy + m.rowOffset(0, row), pd = d + row * inner
                for i in 0..<inner { pd[i] += g[i * so] * scale }
            }
        case .max:
            // Ties share the gradient evenly (PyTorch's amax).
            let xv = c.input(0)!
            var ties = [Float](repeating: 0, count: outCount)
            for row in 0..<m.rows {
                let o = m.rowOffset(0, row), px = xv + row * inner
                for i in 0..<inner where px[i] == y[o + i * so] { ties[o + i * so] += 1 }
            }
            for row in 0..<m.rows {
                let o = m.rowOffset(0, row), px = xv + row * inner, pd = d + row * inner
                for i in 0..<inner where px[i] == y[o + i * so] { pd[i] += dy[o + i * so] / ties[o + i * so] }
            }
        }
    }
}

/// Index of the maximum (or with `minimum` the minimum) along one axis: the first of equal
/// values, or the last with selectLast; not differentiable.
struct ArgMax: StepKernel {
    let outer: Int, axisLen: Int, inner: Int
    let selectLast: Bool
    let minimum: Bool
    func extents(inputs: [Int], outputs: [Int]) -> StepExtents {
        StepExtents(inputs, outputs) { $0.read(0, outer * axisLen * inner); $0.write(0, outer * inner) }
    }
    func forward(_ c: StepContext) throws {
        let x = c.input(0)!, y = c.output()
        for o in 0..<outer {
            for i in 0..<inner {
                let base = x + o * axisLen * inner + i
                // The minimum is the maximum of the negated values.
                var best = minimum ? -base[0] : base[0], at = 0
                for a in 1..<max(axisLen, 1) {
                    let v = minimum ? -base[a * inner] : base[a * inner]
                    if v > best || (selectLast && v == best) { best = v; at = a }
                }
                y[o * inner + i] = Float(at)
            }
        }
    }
}
