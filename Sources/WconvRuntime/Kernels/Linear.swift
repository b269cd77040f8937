import Foundation

/// y[rows, out] = x[rows, in] · Wᵀ + b, then activation.
func linearForward(_ x: UnsafePointer<Float>, rows: Int, inF: Int, outF: Int, weight: UnsafePointer<Float>,
                   bias: UnsafePointer<Float>?, activation: Activation, _ y: UnsafeMutablePointer<Float>) {
    if let bias {
        for r in 0..<rows { (y + r * outF).update(from: bias, count: outF) }
    }
    sgemm(transA: false, transB: true, m: rows, n: outF, k: inF, a: x, lda: inF, b: weight, ldb: inF,
          beta: bias == nil ? 0 : 1, c: y, ldc: outF)
    applyActivation(activation, y, y, rows * outF)
}

func linearBackward(_ x: UnsafePointer<Float>, rows: Int, inF: Int, outF: Int, weight: UnsafePointer<Float>,
                    dy: UnsafePointer<Float>, dx: UnsafeMutablePointer<Float>?, dw: UnsafeMutablePointer<Float>?,
                    db: UnsafeMutablePointer<Float>?) {
    if let dx {
        sgemm(transA: false, transB: false, m: rows, n: inF, k: outF, a: dy, lda: outF, b: weight, ldb: inF,
              beta: 1, c: dx, ldc: inF)
    }
    if let dw {
        sgemm(transA: true, transB: false, m: outF, n: inF, k: rows, a: dy, lda: outF, b: x, ldb: inF,
              beta: 1, c: dw, ldc: inF)
    }
    if let db {
        for r in 0..<rows { let g = dy + r * outF; for o in 0..<outF { db[o] += g[o] } }
    }
}

/// Batched matmul with numpy semantics: a [..., M, K] · b [..., K, N]; 1-D operands are promoted
/// (and the promoted dim dropped from the result) as numpy/torch do.
struct MatmulPlan {
    var m, k, n: Int
    var batch: Int
    /// Offsets (in elements) of each batch's a / b matrix.
    var aOffsets: [Int]
    var bOffsets: [Int]
    var outShape: [Int]

    init?(_ aShape: [Int], _ bShape: [Int]) {
        guard !aShape.isEmpty, !bShape.isEmpty else { return nil }
        var a = aShape, b = bShape
        let aVec = a.count == 1, bVec = b.count == 1
        if aVec { a = [1, a[0]] }
        if bVec { b = [b[0], 1] }
        m = a[a.count - 2]; k = a[a.count - 1]; n = b[b.count - 1]
        guard b[b.count - 2] == k else { return nil }
        let ab = Array(a.dropLast(2)), bb = Array(b.dropLast(2))
        guard let batchShape = BroadcastPlan.outputShape(ab, bb) else { return nil }
        batch = batchShape.reduce(1, *)
        func offsets(_ s: [Int], matSize: Int) -> [Int] {
            let r = batchShape.count
            let padded = [Int](repeating: 1, count: r - s.count) + s
            var st = [Int](repeating: 0, count: r)
            var acc = matSize
            for i in stride(from: r - 1, through: 0, by: -1) {
                st[i] = padded[i] == 1 ? 0 : acc
                acc *= padded[i]
            }
            var out = [Int](repeating: 0, count: batchShape.reduce(1, *))
            for idx in 0..<out.count {
                var rem = idx, off = 0
                for i in stride(from: r - 1, through: 0, by: -1) {
                    off += (rem % batchShape[i]) * st[i]; rem /= batchShape[i]
                }
                out[idx] = off
            }
            return out
        }
        aOffsets = offsets(ab, matSize: m * k)
        bOffsets = offsets(bb, matSize: k * n)
        var out = batchShape
        if !aVec { out.append(m) }
        if !bVec { out.append(n) }
        outShape = out
    }
}

func matmulForward(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, _ p: MatmulPlan, _ y: UnsafeMutablePointer<Float>) {
    for i in 0..<p.batch {
        sgemm(transA: false, transB: false, m: p.m, n: p.n, k: p.k, a: a + p.aOffsets[i], lda: p.k,
              b: b + p.bOffsets[i], ldb: p.n, beta: 0, c: y + i * p.m * p.n, ldc: p.n)
    }
}

/// dA += dY·Bᵀ, dB += Aᵀ·dY per batch; broadcast batches accumulate into the shared matrix.
func matmulBackward(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, _ p: MatmulPlan, dy: UnsafePointer<Float>,
                    da: UnsafeMutablePointer<Float>?, db: UnsafeMutablePointer<Float>?) {
    for i in 0..<p.batch {
        let g = dy + i * p.m * p.n
        if let da {
            sgemm(transA: false, transB: true, m: p.m, n: p.k, k: p.n, a: g, lda: p.n, b: b + p.bOffsets[i], ldb: p.n,
                  beta: 1, c: da + p.aOffsets[i], ldc: p.k)
        }
        if let db {
            sgemm(transA: true, transB: false, m: p.k, n: p.n, k: p.m, a: a + p.aOffsets[i], lda: p.k, b: g, ldb: p.n,
                  beta: 1, c: db + p.bOffsets[i], ldc: p.n)
        }
    }
}
