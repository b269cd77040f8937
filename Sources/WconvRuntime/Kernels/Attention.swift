import Foundation

/// Multi-head scaled dot-product attention on unsplit projections (the `attention` op):
/// q [B, Tq, D], k/v [Bk, Tk, D] with Bk ∈ {1, B}; head h uses channels h·dh ..< (h+1)·dh.
struct AttentionGeometry: Equatable {
    var b, tq, tk, d, heads: Int
    var kvBatch: Int
    var scale: Float
    var dh: Int { d / heads }
    var probsPerHead: Int { tq * tk }
}

/// Dropout on the probabilities: the mask [B, H, Tq, Tk] (0 or 1/(1−ratio)) and a [Tq, Tk]
/// buffer for one head's dropped probabilities.
struct Dropped {
    let mask: UnsafePointer<Float>
    let scratch: UnsafeMutablePointer<Float>
    init(mask: UnsafeMutablePointer<Float>, scratch: UnsafeMutablePointer<Float>) { self.mask = UnsafePointer(mask); self.scratch = scratch }
}

/// Forward. `probs` receives softmax(q·kᵀ·scale + mask) for every (batch, head): [B, H, Tq, Tk].
/// `mask` is additive, read through `maskStrides` over [B, H, Tq, Tk] (0 on broadcast dims), so a
/// padding mask [B, 1, 1, Tk] is never expanded.
func attentionForward(_ q: UnsafePointer<Float>, _ k: UnsafePointer<Float>, _ v: UnsafePointer<Float>,
                      mask: UnsafePointer<Float>?, maskStrides: [Int], _ g: AttentionGeometry, probs: UnsafeMutablePointer<Float>,
                      dropout: Dropped? = nil, _ y: UnsafeMutablePointer<Float>) {
    let dh = g.dh
    for bi in 0..<g.b {
        let kb = g.kvBatch == 1 ? 0 : bi
        for h in 0..<g.heads {
            let p = probs + (bi * g.heads + h) * g.probsPerHead
            let qh = q + bi * g.tq * g.d + h * dh
            let kh = k + kb * g.tk * g.d + h * dh
            let vh = v + kb * g.tk * g.d + h * dh
            sgemm(transA: false, transB: true, m: g.tq, n: g.tk, k: dh, alpha: g.scale, a: qh, lda: g.d, b: kh, ldb: g.d,
                  beta: 0, c: p, ldc: g.tk)
            if let mask {
                let m = mask + bi * maskStrides[0] + h * maskStrides[1]
                let (si, sj) = (maskStrides[2], maskStrides[3])
                for i in 0..<g.tq {
                    let row = p + i * g.tk, mrow = m + i * si
                    if sj == 1 { for j in 0..<g.tk { row[j] += mrow[j] } } else { for j in 0..<g.tk { row[j] += mrow[j * sj] } }
                }
            }
            softmaxForward(p, outer: g.tq, axisLen: g.tk, inner: 1, p)
            // v is weighted by the dropped probabilities; `probs` keeps the softmax for backward.
            var weights = UnsafePointer(p)
            if let dropout {
                let m = dropout.mask + (bi * g.heads + h) * g.probsPerHead
                for i in 0..<g.probsPerHead { dropout.scratch[i] = p[i] * m[i] }
                weights = UnsafePointer(dropout.scratch)
            }
            sgemm(transA: false, transB: false, m: g.tq, n: dh, k: g.tk, a: weights, lda: g.tk, b: vh, ldb: g.d,
                  beta: 0, c: y + bi * g.tq * g.d + h * dh, ldc: g.d)
        }
    }
}

/// Backward from the saved probabilities (and the forward's dropout mask on them, if any);
/// accumulates into dq, dk, dv where non-nil.
func attentionBackward(_ q: UnsafePointer<Float>, _ k: UnsafePointer<Float>, _ v: UnsafePointer<Float>,
                       _ g: AttentionGeometry, probs: UnsafePointer<Float>, dropoutMask: UnsafePointer<Float>? = nil, dy: UnsafePointer<Float>,
                       dq: UnsafeMutablePointer<Float>?, dk: UnsafeMutablePointer<Float>?, dv: UnsafeMutablePointer<Float>?,
                       scratch: Workspace) {
    let dh = g.dh
    let dp = scratch.get(2 * g.probsPerHead)
    let ds = dp + g.probsPerHead
    for bi in 0..<g.b {
        let kb = g.kvBatch == 1 ? 0 : bi
        for h in 0..<g.heads {
            let p = probs + (bi * g.heads + h) * g.probsPerHead
            let off = bi * g.tq * g.d + h * dh, koff = kb * g.tk * g.d + h * dh
            let gy = dy + off
            let dm = dropoutMask.map { $0 + (bi * g.heads + h) * g.probsPerHead }
            if let dv {
                // dV += P'ᵀ · dY with P' the dropped probabilities (built in ds, free until dS)
                var weights = p
                if let dm {
                    for i in 0..<g.probsPerHead { ds[i] = p[i] * dm[i] }
                    weights = UnsafePointer(ds)
                }
                sgemm(transA: true, transB: false, m: g.tk, n: dh, k: g.tq, a: weights, lda: g.tk, b: gy, ldb: g.d,
                      beta: 1, c: dv + koff, ldc: g.d)
            }
            if dq == nil && dk == nil { continue }
            // dP = dY · Vᵀ; dS = P ⊙ (dP − rowsum(dP ⊙ P))
            sgemm(transA: false, transB: true, m: g.tq, n: g.tk, k: dh, a: gy, lda: g.d, b: v + koff, ldb: g.d,
                  beta: 0, c: dp, ldc: g.tk)
            // through the dropout: dP = dP' ⊙ mask
            if let dm { for i in 0..<g.probsPerHead { dp[i] *= dm[i] } }
            ds.update(repeating: 0, count: g.probsPerHead)
            softmaxBackward(p, dy: dp, outer: g.tq, axisLen: g.tk, inner: 1, dx: ds)
            if let dq {
                sgemm(transA: false, transB: false, m: g.tq, n: dh, k: g.tk, alpha: g.scale, a: ds, lda: g.tk, b: k + koff, ldb: g.d,
                      beta: 1, c: dq + off, ldc: g.d)
            }
            if let dk {
                sgemm(transA: true, transB: false, m: g.tk, n: dh, k: g.tq, alpha: g.scale, a: ds, lda: g.tk, b: q + off, ldb: g.d,
                      beta: 1, c: dk + koff, ldc: g.d)
            }
        }
    }
}

/// Slice: per dim start, step (negative walks backwards) and output size.
struct SlicePlan: Equatable {
    var inShape: [Int]
    var starts: [Int]
    var steps: [Int]
    var outShape: [Int]
}

/// Copies the slice (forward) or adds dy back into dx (backward).
func sliceCopy(_ x: UnsafeMutablePointer<Float>, _ p: SlicePlan, _ y: UnsafeMutablePointer<Float>, backward: Bool) {
    let r = p.inShape.count
    let count = p.outShape.reduce(1, *)
    if count == 0 { return }
    let inStrides = Tensor_contiguousStrides(p.inShape)
    let inner = p.outShape[r - 1]
    let rows = count / inner
    let innerStep = p.steps[r - 1] * inStrides[r - 1]
    for row in 0..<rows {
        var rem = row, off = p.starts[r - 1] * inStrides[r - 1]
        var i = r - 2
        while i >= 0 {
            off += (p.starts[i] + (rem % p.outShape[i]) * p.steps[i]) * inStrides[i]
            rem /= p.outShape[i]; i -= 1
        }
        let s = x + off, d = y + row * inner
        if backward { for j in 0..<inner { s[j * innerStep] += d[j] } }
        else { for j in 0..<inner { d[j] = s[j * innerStep] } }
    }
}
