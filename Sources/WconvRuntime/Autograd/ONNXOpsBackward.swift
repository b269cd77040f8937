import Foundation

extension Executor {
    /// Backward of one ONNX-only step: accumulates into the inputs' gradient buffers. argMax,
    /// integer division, gatherND indices and values computed from shapes have no gradient.
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
        case .unary(_, let n):
            // Rounding casts pass the gradient straight through, as PyTorch's .half()/.bfloat16() do.
            guard let d = dx(0) else { return }
            for i in 0..<n { d[i] += dy[i] }
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
