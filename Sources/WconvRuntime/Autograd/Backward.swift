import Foundation
import WconvTensor

/// Reverse-mode pass over the executor's steps. Gradient buffers are keyed by root value (views
/// share their source's buffer, so their backward is free); only values that depend on a trainable
/// parameter get one, so nothing below the lowest trainable node is ever computed.
final class GradientState {
    var requiresGrad: [Bool] = []
    var grad: [Int: UnsafeMutablePointer<Float>] = [:]
    var gradCount: [Int: Int] = [:]
    var touched = Set<Int>()
    /// Steps whose backward did work in the last pass (tests check frozen parts cost nothing).
    var stepsRun = 0

    deinit { for p in grad.values { p.deallocate() } }

    func release() {
        for p in grad.values { p.deallocate() }
        grad = [:]; gradCount = [:]; touched = []
    }

    /// Zeroed gradient buffer of a root value, allocated on first use for the planned shapes.
    func buffer(_ root: Int, count: Int) -> UnsafeMutablePointer<Float> {
        if let p = grad[root] {
            if !touched.contains(root) { p.update(repeating: 0, count: count); touched.insert(root) }
            return p
        }
        let p = UnsafeMutablePointer<Float>.allocate(capacity: max(count, 1))
        p.initialize(repeating: 0, count: max(count, 1))
        grad[root] = p; gradCount[root] = count
        touched.insert(root)
        return p
    }
}

extension Executor {
    /// Which values depend on a trainable parameter (value ids of `trainable` seed the set).
    func computeRequiresGrad(trainableValues: Set<Int>) -> [Bool] {
        var rg = [Bool](repeating: false, count: valueNames.count)
        for v in trainableValues { rg[v] = true }
        for st in steps where st.inputs.contains(where: { $0 >= 0 && rg[$0] }) {
            for o in st.outputs { rg[o] = true }
        }
        return rg
    }

    func backwardStep(_ si: Int, gs: GradientState, lastForwardTraining: Bool) throws {
        let st = steps[si]
        let outs = st.outputs.filter { gs.touched.contains(root[$0]) }
        guard let outV = outs.first else { return }
        let needs = st.inputs.map { $0 >= 0 && gs.requiresGrad[$0] }
        guard needs.contains(true) else { return }
        gs.stepsRun += 1
        let dy = UnsafePointer(gs.grad[root[outV]]!)
        func x(_ k: Int) -> UnsafeMutablePointer<Float>? { k < st.inputs.count && st.inputs[k] >= 0 ? ptrs[st.inputs[k]] : nil }
        func dx(_ k: Int) -> UnsafeMutablePointer<Float>? {
            guard k < st.inputs.count, needs[k] else { return nil }
            let v = st.inputs[k]
            return gs.buffer(root[v], count: shapes[v]!.reduce(1, *))
        }
        let yv = ptrs[outV]!
        switch st.kernel {
        case .conv(let g, _):
            conv2dBackward(x(0)!, g, weight: x(1)!, dy: dy, dx: dx(0), dw: dx(1), db: dx(2),
                           workspace: workspace, staging: staging, staging2: staging2)
        case .batchNorm(let n, let c, let inner, _, _, _):
            let name = nodes[st.node].node.name
            let batchStats = lastForwardTraining && (bnMode[name] ?? .train) == .train
            let saved = aux[si]!
            batchNormBackward(x(0)!, dy: dy, n: n, c: c, inner: inner, weight: x(1), mean: saved, invStd: saved + c,
                              batchStats: batchStats, dx: dx(0), dweight: dx(1), dbias: dx(2))
        case .affine:
            throw WconvError(.runtime, "internal: folded batchNorm has no backward (training sessions do not fold)")
        case .linear(let rows, let inF, let outF, _):
            linearBackward(x(0)!, rows: rows, inF: inF, outF: outF, weight: x(1)!, dy: dy, dx: dx(0), dw: dx(1), db: dx(2))
        case .matmul(let p):
            matmulBackward(x(0)!, x(1)!, p, dy: dy, da: dx(0), db: dx(1))
        case .activation(let act, let count):
            if let d = dx(0) { activationBackward(act, x: x(0)!, dy: dy, dx: d, count) }
        case .maxPool(let g):
            if let d = dx(0) { maxPoolBackward(x(0)!, g, dy: dy, dx: d) }
        case .avgPool(let g):
            if let d = dx(0) { avgPoolBackward(g, dy: dy, dx: d) }
        case .adaptiveAvgPool(let planes, let h, let w, let oh, let ow):
            if let d = dx(0) { adaptiveAvgPoolBackward(planes: planes, h: h, w: w, oh: oh, ow: ow, dy: dy, dx: d) }
        case .concat(let lengths, let outer, let inner):
            concatBackward(dy, lengths: lengths, outer: outer, inner: inner, dxs: (0..<st.inputs.count).map { dx($0) })
        case .view:
            // Shares its source's gradient buffer: contributions already landed there.
            _ = dx(0)
        case .transpose(let shape, let perm):
            if let d = dx(0) {
                let outShape = perm.map { shape[$0] }
                transposeForward(dy, shape: outShape, perm: inversePermutation(perm), d, accumulate: true)
            }
        case .dropout(let ratio, let count):
            if let d = dx(0) {
                if lastForwardTraining && ratio > 0, let mask = aux[si] {
                    for i in 0..<count { d[i] += dy[i] * mask[i] }
                } else {
                    for i in 0..<count { d[i] += dy[i] }
                }
            }
        case .layerNorm(let rows, let inner, _):
            let saved = aux[si]!
            layerNormBackward(x(0)!, rows: rows, inner: inner, weight: x(1), mean: saved, invStd: saved + rows, dy: dy,
                              dx: dx(0), dw: dx(1), db: dx(2))
        case .gather(let outer, let axisLen, let inner, let di, let ii):
            if let d = dx(di) {
                let iv = st.inputs[ii]
                let n = shapes[iv]!.reduce(1, *)
                let p = ptrs[iv]!
                let idx = (0..<n).map { i -> Int in let v = Int(p[i]); return v < 0 ? v + axisLen : v }
                gatherBackward(dy: dy, outer: outer, axisLen: axisLen, inner: inner, indices: idx, dData: d)
            }
        case .softmax(let outer, let axisLen, let inner):
            if let d = dx(0) { softmaxBackward(yv, dy: dy, outer: outer, axisLen: axisLen, inner: inner, dx: d) }
        case .attention(let g, _):
            attentionBackward(x(0)!, x(1)!, x(2)!, g, probs: aux[si]!, dy: dy, dq: dx(0), dk: dx(1), dv: dx(2), scratch: staging)
        case .slice(let plan):
            if let d = dx(0) { sliceCopy(d, plan, UnsafeMutablePointer(mutating: dy), backward: true) }
        case .arange, .constant, .fill, .range:
            break
        case .split(let lengths, let outer, let inner):
            if let d = dx(0) {
                let total = lengths.reduce(0, +)
                var off = 0
                for (k, len) in lengths.enumerated() {
                    let ov = st.outputs[k]
                    if gs.touched.contains(root[ov]), let g = gs.grad[root[ov]] {
                        for o in 0..<outer {
                            let s = g + o * len * inner, t = d + (o * total + off) * inner
                            for i in 0..<(len * inner) { t[i] += s[i] }
                        }
                    }
                    off += len
                }
            }
        case .expand(let plan):
            if let d = dx(0) { binaryBackward(.add, x(0)!, x(0)!, plan, dy: dy, da: d, db: nil) }
        case .op(let k):
            try k.backward(BackwardContext(executor: self, step: st, index: si, gradients: gs, lastForwardTraining: lastForwardTraining))
        case .pad(let shape, let pads, _):
            if let d = dx(0) {
                let r = shape.count
                let outShape = (0..<r).map { shape[$0] + pads[$0] + pads[$0 + r] }
                padCopy(d, shape: shape, pads: pads, UnsafeMutablePointer(mutating: dy), outShape: outShape, backward: true)
            }
        }
    }
}
