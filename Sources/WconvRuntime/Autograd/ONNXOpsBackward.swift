import Foundation

extension Executor {
    /// Backward of one ONNX-only step: accumulates into the inputs' gradient buffers. Comparisons,
    /// logic, casts to integers/bools, argMax, gatherND indices and values computed from shapes have
    /// no gradient (as in PyTorch); where's condition has none either.
    func backwardONNX(_ kernel: ONNXKernel, _ st: Step, gs: GradientState) {
        func x(_ k: Int) -> UnsafePointer<Float> { UnsafePointer(ptrs[st.inputs[k]]!) }
        func dx(_ k: Int) -> UnsafeMutablePointer<Float>? {
            guard k < st.inputs.count, st.inputs[k] >= 0, gs.requiresGrad[st.inputs[k]] else { return nil }
            let v = st.inputs[k]
            return gs.buffer(root[v], count: shapes[v]!.reduce(1, *))
        }
        func dyOf(_ k: Int) -> UnsafePointer<Float>? {
            let r = root[st.outputs[k]]
            guard gs.touched.contains(r), let g = gs.grad[r] else { return nil }
            return UnsafePointer(g)
        }
        guard let dy = (0..<st.outputs.count).lazy.compactMap({ dyOf($0) }).first else { return }
        let y = UnsafePointer(ptrs[st.outputs[0]]!)
        switch kernel {
        case .unary(let kind, let n):
            guard let d = dx(0) else { return }
            let xv = x(0)
            switch kind {
            case .erf:
                let c = Float(2 / Double.pi.squareRoot())
                for i in 0..<n { d[i] += dy[i] * c * Foundation.exp(-xv[i] * xv[i]) }
            case .sqrt: for i in 0..<n { d[i] += dy[i] * 0.5 / y[i] }
            case .exp: for i in 0..<n { d[i] += dy[i] * y[i] }
            case .log: for i in 0..<n { d[i] += dy[i] / xv[i] }
            case .abs: for i in 0..<n { d[i] += xv[i] > 0 ? dy[i] : xv[i] < 0 ? -dy[i] : 0 }
            case .neg: for i in 0..<n { d[i] -= dy[i] }
            case .reciprocal: for i in 0..<n { d[i] -= dy[i] * y[i] * y[i] }
            // Rounding casts pass the gradient straight through, as PyTorch's .half()/.bfloat16() do.
            case .toHalf, .toBFloat16: for i in 0..<n { d[i] += dy[i] }
            case .not, .isNaN, .truncInt, .toBool: break
            }
        case .binary(let kind, let m):
            let da = dx(0), db = dx(1)
            guard da != nil || db != nil else { return }
            let a = x(0), b = x(1)
            let inner = m.inner, ia = m.innerStride(0), ib = m.innerStride(1)
            for row in 0..<m.rows {
                let oa = m.rowOffset(0, row), ob = m.rowOffset(1, row)
                let pa = a + oa, pb = b + ob, g = dy + row * inner, py = y + row * inner
                switch kind {
                case .pow:
                    for i in 0..<inner {
                        let u = pa[i * ia], e = pb[i * ib]
                        if let da { da[oa + i * ia] += g[i] * e * Foundation.pow(u, e - 1) }
                        if let db, u > 0 { db[ob + i * ib] += g[i] * py[i] * Foundation.log(u) }
                    }
                case .minimum, .maximum:
                    // Ties split the gradient evenly, as PyTorch's minimum/maximum do.
                    for i in 0..<inner {
                        let u = pa[i * ia], v = pb[i * ib]
                        let aWins = kind == .maximum ? u > v : u < v
                        let wa: Float = u == v ? 0.5 : aWins ? 1 : 0
                        if let da { da[oa + i * ia] += g[i] * wa }
                        if let db { db[ob + i * ib] += g[i] * (1 - wa) }
                    }
                default:
                    break
                }
            }
        case .select(let m):
            let da = dx(1), db = dx(2)
            guard da != nil || db != nil else { return }
            let c = x(0)
            let inner = m.inner, sc = m.innerStride(0), sa = m.innerStride(1), sb = m.innerStride(2)
            for row in 0..<m.rows {
                let pc = c + m.rowOffset(0, row), oa = m.rowOffset(1, row), ob = m.rowOffset(2, row), g = dy + row * inner
                for i in 0..<inner {
                    if pc[i * sc] != 0 { da?[oa + i * sa] += g[i] } else { db?[ob + i * sb] += g[i] }
                }
            }
        case .reduce(let kind, let m, let outCount, let group):
            guard let d = dx(0) else { return }
            let inner = m.inner, so = m.innerStride(0)
            switch kind {
            case .sum, .mean:
                let scale: Float = kind == .mean ? 1 / Float(max(group, 1)) : 1
                for row in 0..<m.rows {
                    let g = dy + m.rowOffset(0, row), pd = d + row * inner
                    for i in 0..<inner { pd[i] += g[i * so] * scale }
                }
            case .max:
                // Ties share the gradient evenly (PyTorch's amax).
                let xv = x(0)
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
        case .globalMaxPool(let planes, let size):
            guard let d = dx(0) else { return }
            let xv = x(0)
            for p in 0..<planes {
                let px = xv + p * size
                if let at = (0..<size).first(where: { px[$0] == y[p] }) { d[p * size + at] += dy[p] }
            }
        case .split(let lengths, let outer, let inner):
            guard let d = dx(0) else { return }
            let total = lengths.reduce(0, +)
            var start = 0
            for (k, len) in lengths.enumerated() {
                defer { start += len }
                guard let g = dyOf(k) else { continue }
                let n = len * inner
                for o in 0..<outer {
                    let src = g + o * n, dst = d + (o * total + start) * inner
                    for i in 0..<n { dst[i] += src[i] }
                }
            }
        case .expand(let m):
            guard let d = dx(0) else { return }
            let inner = m.inner, sx = m.innerStride(0)
            for row in 0..<m.rows {
                let pd = d + m.rowOffset(0, row), g = dy + row * inner
                for i in 0..<inner { pd[i * sx] += g[i] }
            }
        case .tile(let inShape, let outShape):
            guard let d = dx(0) else { return }
            tileCopy(d, inShape: inShape, outShape: outShape, UnsafeMutablePointer(mutating: dy), backward: true)
        case .gatherND(let p):
            guard let d = dx(0) else { return }
            let idx = x(1)
            for b in 0..<p.batch {
                for t in 0..<p.tuples {
                    let tuple = idx + (b * p.tuples + t) * p.k
                    var off = 0
                    for k in 0..<p.k { var v = Int(tuple[k]); if v < 0 { v += p.dims[k] }; off = off * p.dims[k] + v }
                    let dst = d + b * p.batchStride + off * p.slice, src = dy + (b * p.tuples + t) * p.slice
                    for i in 0..<p.slice { dst[i] += src[i] }
                }
            }
        case .constant, .fill, .argMax, .intDiv:
            break
        }
    }
}
