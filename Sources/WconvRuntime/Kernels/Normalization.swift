import CWconvVector
import Foundation

/// Layer norm over the trailing `inner` values of each of `rows` rows; saves mean and 1/σ per row.
func layerNormForward(_ x: UnsafePointer<Float>, rows: Int, inner: Int, weight: UnsafePointer<Float>?,
                      bias: UnsafePointer<Float>?, epsilon: Float, _ y: UnsafeMutablePointer<Float>,
                      savedMean: UnsafeMutablePointer<Float>?, savedInvStd: UnsafeMutablePointer<Float>?) {
    // C (wconv_vector.h): the double sums 8 lanes wide with AVX-512 (the scalar double loops took
    // 1 ns per value: 12 ms of a MiniLM-L6 b16×128 forward).
    Parallel.forRange(rows, costPerItem: inner * 3) { range in
        wconv_layer_norm_rows(x + range.lowerBound * inner, y + range.lowerBound * inner, range.count, inner, weight, bias, epsilon,
                              savedMean.map { $0 + range.lowerBound }, savedInvStd.map { $0 + range.lowerBound })
    }
}

func layerNormBackward(_ x: UnsafePointer<Float>, rows: Int, inner: Int, weight: UnsafePointer<Float>?,
                       mean: UnsafePointer<Float>, invStd: UnsafePointer<Float>, dy: UnsafePointer<Float>,
                       dx: UnsafeMutablePointer<Float>?, dw: UnsafeMutablePointer<Float>?, db: UnsafeMutablePointer<Float>?) {
    // Parameter gradients reduce over rows: serial over rows to keep one writer.
    if dw != nil || db != nil {
        for r in 0..<rows {
            let p = x + r * inner, g = dy + r * inner
            let m = mean[r], inv = invStd[r]
            if let dw { for i in 0..<inner { dw[i] += g[i] * (p[i] - m) * inv } }
            if let db { for i in 0..<inner { db[i] += g[i] } }
        }
    }
    guard let dx else { return }
    Parallel.forRange(rows, costPerItem: inner * 4) { range in
        for r in range {
            let p = x + r * inner, g = dy + r * inner, d = dx + r * inner
            let m = mean[r], inv = invStd[r]
            var s1: Float = 0, s2: Float = 0
            for i in 0..<inner {
                let gh = g[i] * (weight?[i] ?? 1)
                s1 += gh; s2 += gh * (p[i] - m) * inv
            }
            let n = Float(inner)
            for i in 0..<inner {
                let gh = g[i] * (weight?[i] ?? 1)
                let xhat = (p[i] - m) * inv
                d[i] += inv * (gh - s1 / n - xhat * s2 / n)
            }
        }
    }
}

/// Softmax along an axis: data viewed as [outer, axisLen, inner].
func softmaxForward(_ x: UnsafePointer<Float>, outer: Int, axisLen: Int, inner: Int, _ y: UnsafeMutablePointer<Float>) {
    if inner == 1 {
        // Contiguous rows (attention, classifier heads): C, 16 lanes with AVX-512 (wconv_vector.h).
        Parallel.forRange(outer, costPerItem: axisLen * 8) { r in
            wconv_softmax_rows(x + r.lowerBound * axisLen, y + r.lowerBound * axisLen, r.count, axisLen)
        }
        return
    }
    Parallel.forRange(outer * inner, costPerItem: axisLen * 3) { range in
        for idx in range {
            let o = idx / inner, i = idx % inner
            let base = o * axisLen * inner + i
            var mx = -Float.infinity
            for a in 0..<axisLen { mx = max(mx, x[base + a * inner]) }
            var s: Float = 0
            for a in 0..<axisLen { let e = expf(x[base + a * inner] - mx); y[base + a * inner] = e; s += e }
            let inv = 1 / s
            for a in 0..<axisLen { y[base + a * inner] *= inv }
        }
    }
}

/// dx = y ⊙ (dy − Σ dy·y) (or `accumulate`: dx +=) over `rows` contiguous rows of n values, on the
/// calling thread (attention's heads run this inside their own workers).
func softmaxGradientRows(_ y: UnsafePointer<Float>, dy: UnsafePointer<Float>, rows: Int, n: Int, dx: UnsafeMutablePointer<Float>,
                         accumulate: Bool) {
    for r in 0..<rows {
        let yr = y + r * n, gr = dy + r * n, dr = dx + r * n
        var s: Float = 0
        for j in 0..<n { s += gr[j] * yr[j] }
        if accumulate { for j in 0..<n { dr[j] += yr[j] * (gr[j] - s) } } else { for j in 0..<n { dr[j] = yr[j] * (gr[j] - s) } }
    }
}

/// dx += y ⊙ (dy − Σ dy·y) from the saved output y.
func softmaxBackward(_ y: UnsafePointer<Float>, dy: UnsafePointer<Float>, outer: Int, axisLen: Int, inner: Int,
                     dx: UnsafeMutablePointer<Float>) {
    if inner == 1 {
        Parallel.forRange(outer, costPerItem: axisLen * 3) { r in
            let at = r.lowerBound * axisLen
            softmaxGradientRows(y + at, dy: dy + at, rows: r.count, n: axisLen, dx: dx + at, accumulate: true)
        }
        return
    }
    Parallel.forRange(outer * inner, costPerItem: axisLen * 3) { range in
        for idx in range {
            let o = idx / inner, i = idx % inner
            let base = o * axisLen * inner + i
            var s: Float = 0
            for a in 0..<axisLen { s += dy[base + a * inner] * y[base + a * inner] }
            for a in 0..<axisLen { let j = base + a * inner; dx[j] += y[j] * (dy[j] - s) }
        }
    }
}
