import Foundation

/// Per-channel affine y = act(x·scale[c] + shift[c]) over NC(spatial) data: BN in eval mode,
/// with scale = γ/√(var+ε) and shift = β − mean·scale folded once.
func channelAffine(_ x: UnsafePointer<Float>, n: Int, c: Int, inner: Int,
                   scale: UnsafePointer<Float>, shift: UnsafePointer<Float>, activation: Activation,
                   _ y: UnsafeMutablePointer<Float>) {
    Parallel.forRange(n * c, costPerItem: inner) { range in
        for plane in range {
            let ch = plane % c
            let s = scale[ch], b = shift[ch]
            let src = x + plane * inner, dst = y + plane * inner
            for i in 0..<inner { dst[i] = src[i] * s + b }
            activation.apply(dst, dst, inner)
        }
    }
}

/// Eval-mode scale/shift from BN parameters.
func foldBatchNorm(weight: UnsafePointer<Float>?, bias: UnsafePointer<Float>?, mean: UnsafePointer<Float>,
                   variance: UnsafePointer<Float>, epsilon: Float, c: Int) -> (scale: [Float], shift: [Float]) {
    var scale = [Float](repeating: 0, count: c), shift = [Float](repeating: 0, count: c)
    for i in 0..<c {
        // Computed in double so folding adds no rounding beyond PyTorch's own.
        let inv = 1 / (Double(variance[i]) + Double(epsilon)).squareRoot()
        let s = Double(weight?[i] ?? 1) * inv
        scale[i] = Float(s)
        shift[i] = Float(Double(bias?[i] ?? 0) - Double(mean[i]) * s)
    }
    return (scale, shift)
}

/// Training-mode BN forward: batch statistics per channel (biased variance for normalising),
/// running-stat update with PyTorch's momentum and unbiased variance. Saves mean and 1/σ.
func batchNormTrainForward(_ x: UnsafePointer<Float>, n: Int, c: Int, inner: Int,
                           weight: UnsafePointer<Float>?, bias: UnsafePointer<Float>?,
                           runningMean: UnsafeMutablePointer<Float>?, runningVar: UnsafeMutablePointer<Float>?,
                           momentum: Float, epsilon: Float,
                           savedMean: UnsafeMutablePointer<Float>, savedInvStd: UnsafeMutablePointer<Float>,
                           _ y: UnsafeMutablePointer<Float>) {
    let count = n * inner
    Parallel.forRange(c, costPerItem: count * 3) { range in
        for ch in range {
            // Two-pass in double: mean, then centred sum of squares (stable for large counts).
            var sum = 0.0
            for img in 0..<n {
                let p = x + (img * c + ch) * inner
                var s: Float = 0
                for i in 0..<inner { s += p[i] }
                sum += Double(s)
            }
            let mean = sum / Double(count)
            let mf = Float(mean)
            var sq = 0.0
            for img in 0..<n {
                let p = x + (img * c + ch) * inner
                var s: Float = 0
                for i in 0..<inner { let d = p[i] - mf; s += d * d }
                sq += Double(s)
            }
            let varBiased = sq / Double(count)
            let invStd = 1 / (varBiased + Double(epsilon)).squareRoot()
            savedMean[ch] = mf
            savedInvStd[ch] = Float(invStd)
            if let runningMean, let runningVar {
                let unbiased = count > 1 ? sq / Double(count - 1) : varBiased
                runningMean[ch] = Float((1 - Double(momentum)) * Double(runningMean[ch]) + Double(momentum) * mean)
                runningVar[ch] = Float((1 - Double(momentum)) * Double(runningVar[ch]) + Double(momentum) * unbiased)
            }
            let s = Float(Double(weight?[ch] ?? 1) * invStd)
            let b = (bias?[ch] ?? 0) - mf * s
            for img in 0..<n {
                let p = x + (img * c + ch) * inner, q = y + (img * c + ch) * inner
                for i in 0..<inner { q[i] = p[i] * s + b }
            }
        }
    }
}

/// BN backward given the statistics used in forward (batch statistics when `batchStats`, else the
/// running ones passed as mean/invStd). Accumulates into dx, dweight, dbias when non-nil.
func batchNormBackward(_ x: UnsafePointer<Float>, dy: UnsafePointer<Float>, n: Int, c: Int, inner: Int,
                       weight: UnsafePointer<Float>?, mean: UnsafePointer<Float>, invStd: UnsafePointer<Float>,
                       batchStats: Bool, dx: UnsafeMutablePointer<Float>?,
                       dweight: UnsafeMutablePointer<Float>?, dbias: UnsafeMutablePointer<Float>?) {
    let count = n * inner
    Parallel.forRange(c, costPerItem: count * 4) { range in
        for ch in range {
            let m = mean[ch], inv = invStd[ch]
            var sumDy = 0.0, sumDyXhat = 0.0
            for img in 0..<n {
                let p = x + (img * c + ch) * inner, g = dy + (img * c + ch) * inner
                var s1: Float = 0, s2: Float = 0
                for i in 0..<inner { s1 += g[i]; s2 += g[i] * (p[i] - m) }
                sumDy += Double(s1); sumDyXhat += Double(s2)
            }
            sumDyXhat *= Double(inv)
            dbias?[ch] += Float(sumDy)
            dweight?[ch] += Float(sumDyXhat)
            guard let dx else { continue }
            let wv = weight?[ch] ?? 1
            if batchStats {
                let k = wv * inv
                let meanDy = Float(sumDy / Double(count)), meanDyXhat = Float(sumDyXhat / Double(count))
                for img in 0..<n {
                    let p = x + (img * c + ch) * inner, g = dy + (img * c + ch) * inner, d = dx + (img * c + ch) * inner
                    for i in 0..<inner {
                        let xhat = (p[i] - m) * inv
                        d[i] += k * (g[i] - meanDy - xhat * meanDyXhat)
                    }
                }
            } else {
                let k = wv * inv
                for img in 0..<n {
                    let g = dy + (img * c + ch) * inner, d = dx + (img * c + ch) * inner
                    for i in 0..<inner { d[i] += k * g[i] }
                }
            }
        }
    }
}
