import CWconvVector
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

/// Forward. `probs` receives softmax(q·kᵀ·scale + mask) for every (batch, head): [B, H, Tq, Tk].
/// `mask` is additive, read through `maskStrides` over [B, H, Tq, Tk] (0 on broadcast dims), so a
/// padding mask [B, 1, 1, Tk] is never expanded. The (batch, head) pairs are split between the
/// runtime's threads, each head's GEMMs on one OpenBLAS thread (a 128×128×32 product is too small
/// to share: MiniLM-L6 b16×128 attention took 75 ms with threaded GEMMs per head).
func attentionForward(_ q: UnsafePointer<Float>, _ k: UnsafePointer<Float>, _ v: UnsafePointer<Float>,
                      mask: UnsafePointer<Float>?, maskStrides: [Int], _ g: AttentionGeometry, probs: UnsafeMutablePointer<Float>,
                      dropoutMask: UnsafePointer<Float>? = nil, _ y: UnsafeMutablePointer<Float>) {
    let dh = g.dh, pairs = g.b * g.heads
    withSingleThreadedBLAS {
        Parallel.forRange(pairs, costPerItem: g.probsPerHead * (4 * dh + 40)) { range in
            // The dropped probabilities of one head (v is weighted by them; `probs` keeps the softmax).
            let dropped = dropoutMask == nil ? nil : UnsafeMutablePointer<Float>.allocate(capacity: g.probsPerHead)
            defer { dropped?.deallocate() }
            for pair in range {
                let bi = pair / g.heads, h = pair % g.heads, kb = g.kvBatch == 1 ? 0 : bi
                let p = probs + pair * g.probsPerHead
                let qh = q + bi * g.tq * g.d + h * dh
                let kh = k + kb * g.tk * g.d + h * dh
                let vh = v + kb * g.tk * g.d + h * dh
                sgemm(transA: false, transB: true, m: g.tq, n: g.tk, k: dh, alpha: g.scale, a: qh, lda: g.d, b: kh, ldb: g.d,
                      beta: 0, c: p, ldc: g.tk)
                if let mask, maskStrides[3] == 1 {
                    // A padding mask [B, 1, 1, Tk] (row stride 0) or a full one: added in C, vectorised (the
                    // Swift loop here took ≈ 3 % of MiniLM-L6's inference samples).
                    wconv_softmax_rows_masked(p, mask + bi * maskStrides[0] + h * maskStrides[1], maskStrides[2], p, g.tq, g.tk)
                } else {
                    if let mask {
                        let m = mask + bi * maskStrides[0] + h * maskStrides[1], (si, sj) = (maskStrides[2], maskStrides[3])
                        for i in 0..<g.tq {
                            let row = p + i * g.tk, mrow = m + i * si
                            for j in 0..<g.tk { row[j] += mrow[j * sj] }
                        }
                    }
                    wconv_softmax_rows(p, p, g.tq, g.tk)
                }
                var weights = UnsafePointer(p)
                if let dropoutMask, let dropped {
                    let m = dropoutMask + pair * g.probsPerHead
                    for i in 0..<g.probsPerHead { dropped[i] = p[i] * m[i] }
                    weights = UnsafePointer(dropped)
                }
                sgemm(transA: false, transB: false, m: g.tq, n: dh, k: g.tk, a: weights, lda: g.tk, b: vh, ldb: g.d,
                      beta: 0, c: y + bi * g.tq * g.d + h * dh, ldc: g.d)
            }
        }
    }
}

/// Backward from the saved probabilities (and the forward's dropout mask on them, if any);
/// accumulates into dq, dk, dv where non-nil. Heads are split between the runtime's threads (each
/// head owns its channels of dq, dk and dv, also when k and v are shared across the batch), the
/// batch walked inside, GEMMs on one OpenBLAS thread each.
func attentionBackward(_ q: UnsafePointer<Float>, _ k: UnsafePointer<Float>, _ v: UnsafePointer<Float>,
                       _ g: AttentionGeometry, probs: UnsafePointer<Float>, dropoutMask: UnsafePointer<Float>? = nil, dy: UnsafePointer<Float>,
                       dq: UnsafeMutablePointer<Float>?, dk: UnsafeMutablePointer<Float>?, dv: UnsafeMutablePointer<Float>?) {
    let dh = g.dh
    withSingleThreadedBLAS {
        Parallel.forRange(g.heads, costPerItem: g.b * g.probsPerHead * (8 * dh + 20)) { range in
            let dp = UnsafeMutablePointer<Float>.allocate(capacity: 2 * g.probsPerHead)
            defer { dp.deallocate() }
            let ds = dp + g.probsPerHead
            for h in range {
                for bi in 0..<g.b {
                    let kb = g.kvBatch == 1 ? 0 : bi
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
                    softmaxGradientRows(p, dy: dp, rows: g.tq, n: g.tk, dx: ds, accumulate: false)
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
    }
}

/// Slice: per dim start, step (negative walks backwards) and output size.
struct SlicePlan: Equatable {
    var inShape: [Int]
    var starts: [Int]
    var steps: [Int]
    var outShape: [Int]
}

/// Copies the slice (forward) or adds dy back into dx (backward). Trailing dims taken whole (start 0,
/// step 1, full extent) are one contiguous block per element of the last dim that is sliced, so a
/// row is copied block by block (one block when that dim's step is 1), not value by value: magika's
/// two slices of [2, 512, 508, 1] on the last-but-one dim took 6 ms value by value.
func sliceCopy(_ x: UnsafeMutablePointer<Float>, _ p: SlicePlan, _ y: UnsafeMutablePointer<Float>, backward: Bool) {
    let r = p.inShape.count
    let count = p.outShape.reduce(1, *)
    if count == 0 { return }
    let inStrides = Tensor_contiguousStrides(p.inShape)
    var k = r - 1, block = 1
    while k > 0 && p.starts[k] == 0 && p.steps[k] == 1 && p.outShape[k] == p.inShape[k] { block *= p.inShape[k]; k -= 1 }
    let elements = p.outShape[k], step = p.steps[k] * inStrides[k]
    // One run of `run` contiguous values per element of dim k, or the whole row as one run.
    let run = p.steps[k] == 1 ? elements * block : block, runs = p.steps[k] == 1 ? 1 : elements
    let rowLength = elements * block, rows = count / rowLength
    Parallel.forRange(rows, costPerItem: rowLength) { range in
        for row in range {
            var rem = row, off = p.starts[k] * inStrides[k]
            var i = k - 1
            while i >= 0 {
                off += (p.starts[i] + (rem % p.outShape[i]) * p.steps[i]) * inStrides[i]
                rem /= p.outShape[i]; i -= 1
            }
            for e in 0..<runs {
                let s = x + off + e * step, d = y + row * rowLength + e * run
                if backward { for j in 0..<run { s[j] += d[j] } } else { d.update(from: s, count: run) }
            }
        }
    }
}
