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

/// Eval-mode scale/shift from BN parameters; `saving` (when given) receives the mean and 1/σ
/// (c each) that a training plan's backward reads.
func foldBatchNorm(weight: UnsafePointer<Float>?, bias: UnsafePointer<Float>?, mean: UnsafePointer<Float>,
                   variance: UnsafePointer<Float>, epsilon: Float, c: Int,
                   saving saved: UnsafeMutablePointer<Float>? = nil) -> (scale: [Float], shift: [Float]) {
    var scale = [Float](repeating: 0, count: c), shift = [Float](repeating: 0, count: c)
    for i in 0..<c {
        // Computed in double so folding adds no rounding beyond PyTorch's own.
        let inv = 1 / (Double(variance[i]) + Double(epsilon)).squareRoot()
        saved?[i] = mean[i]
        saved?[c + i] = Float(inv)
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
            normaliseChannel(ch, mean: mean, varBiased: sq / Double(count), count: Double(count), x, n: n, c: c, inner: inner,
                             weight: weight, bias: bias, runningMean: runningMean, runningVar: runningVar, momentum: momentum,
                             epsilon: epsilon, savedMean: savedMean, savedInvStd: savedInvStd, y)
        }
    }
}

/// This replica's per-channel Σx and Σx² (accumulated in double), written to `sums[0..<c]` and
/// `sums[c..<2c]`: what SyncBatchNorm adds up over the replicas of a data-parallel run.
func batchNormSums(_ x: UnsafePointer<Float>, n: Int, c: Int, inner: Int, into sums: UnsafeMutablePointer<Double>) {
    Parallel.forRange(c, costPerItem: n * inner * 2) { range in
        for ch in range {
            var s1 = 0.0, s2 = 0.0
            for img in 0..<n {
                let p = x + (img * c + ch) * inner
                for i in 0..<inner { let v = Double(p[i]); s1 += v; s2 += v * v }
            }
            sums[ch] = s1
            sums[c + ch] = s2
        }
    }
}

/// Training-mode BN forward with the statistics of the global batch (SyncBatchNorm): `sums` as
/// `batchNormSums` wrote them, added up over the replicas, which together hold `count` values
/// per channel. The same normalisation and running-stat update as `batchNormTrainForward`.
func batchNormSyncedForward(sums: UnsafePointer<Double>, count: Double, _ x: UnsafePointer<Float>, n: Int, c: Int, inner: Int,
                            weight: UnsafePointer<Float>?, bias: UnsafePointer<Float>?,
                            runningMean: UnsafeMutablePointer<Float>?, runningVar: UnsafeMutablePointer<Float>?,
                            momentum: Float, epsilon: Float,
                            savedMean: UnsafeMutablePointer<Float>, savedInvStd: UnsafeMutablePointer<Float>,
                            _ y: UnsafeMutablePointer<Float>) {
    Parallel.forRange(c, costPerItem: n * inner) { range in
        for ch in range {
            let mean = sums[ch] / count
            normaliseChannel(ch, mean: mean, varBiased: max(0, sums[c + ch] / count - mean * mean), count: count, x, n: n, c: c, inner: inner,
                             weight: weight, bias: bias, runningMean: runningMean, runningVar: runningVar, momentum: momentum,
                             epsilon: epsilon, savedMean: savedMean, savedInvStd: savedInvStd, y)
        }
    }
}

/// One channel of a training-mode BN forward given its batch mean and biased variance over
/// `count` values: saves mean and 1/σ, updates the running statistics, writes y.
@inline(__always)
private func normaliseChannel(_ ch: Int, mean: Double, varBiased: Double, count: Double, _ x: UnsafePointer<Float>, n: Int, c: Int, inner: Int,
                              weight: UnsafePointer<Float>?, bias: UnsafePointer<Float>?,
                              runningMean: UnsafeMutablePointer<Float>?, runningVar: UnsafeMutablePointer<Float>?,
                              momentum: Float, epsilon: Float,
                              savedMean: UnsafeMutablePointer<Float>, savedInvStd: UnsafeMutablePointer<Float>,
                              _ y: UnsafeMutablePointer<Float>) {
    let (s, b) = batchNormChannelStatistics(ch, mean: mean, varBiased: varBiased, count: count, weight: weight, bias: bias,
                                            runningMean: runningMean, runningVar: runningVar, momentum: momentum, epsilon: epsilon,
                                            savedMean: savedMean, savedInvStd: savedInvStd)
    for img in 0..<n {
        let p = x + (img * c + ch) * inner, q = y + (img * c + ch) * inner
        for i in 0..<inner { q[i] = p[i] * s + b }
    }
}

/// One channel of a training-mode BN forward, whatever the layout: saves the batch mean and 1/σ,
/// updates the running statistics (PyTorch's momentum, unbiased variance) and returns the scale
/// and shift that normalise the channel.
@inline(__always)
func batchNormChannelStatistics(_ ch: Int, mean: Double, varBiased: Double, count: Double,
                                weight: UnsafePointer<Float>?, bias: UnsafePointer<Float>?,
                                runningMean: UnsafeMutablePointer<Float>?, runningVar: UnsafeMutablePointer<Float>?,
                                momentum: Float, epsilon: Float,
                                savedMean: UnsafeMutablePointer<Float>, savedInvStd: UnsafeMutablePointer<Float>) -> (scale: Float, shift: Float) {
    let mf = Float(mean)
    let invStd = 1 / (varBiased + Double(epsilon)).squareRoot()
    savedMean[ch] = mf
    savedInvStd[ch] = Float(invStd)
    if let runningMean, let runningVar {
        let unbiased = count > 1 ? varBiased * count / (count - 1) : varBiased
        runningMean[ch] = Float((1 - Double(momentum)) * Double(runningMean[ch]) + Double(momentum) * mean)
        runningVar[ch] = Float((1 - Double(momentum)) * Double(runningVar[ch]) + Double(momentum) * unbiased)
    }
    let s = Float(Double(weight?[ch] ?? 1) * invStd)
    return (s, (bias?[ch] ?? 0) - mf * s)
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
            let (sumDy, sumDyXhat) = channelGradientSums(ch, x, dy: dy, n: n, c: c, inner: inner, mean: mean, invStd: invStd)
            dbias?[ch] += Float(sumDy)
            dweight?[ch] += Float(sumDyXhat)
            guard let dx else { continue }
            if batchStats {
                channelInputGradient(ch, x, dy: dy, n: n, c: c, inner: inner, weight: weight, mean: mean, invStd: invStd,
                                     meanDy: Float(sumDy / Double(count)), meanDyXhat: Float(sumDyXhat / Double(count)), dx)
            } else {
                let k = (weight?[ch] ?? 1) * invStd[ch]
                for img in 0..<n {
                    let g = dy + (img * c + ch) * inner, d = dx + (img * c + ch) * inner
                    for i in 0..<inner { d[i] += k * g[i] }
                }
            }
        }
    }
}

/// SyncBatchNorm backward, first half: this replica's per-channel Σdy and Σdy·x̂, written to
/// `sums[0..<c]` and `sums[c..<2c]` and accumulated into dbias and dweight (the parameters'
/// gradients stay per replica; the data-parallel reduction adds them up with all the others).
func batchNormGradientSums(_ x: UnsafePointer<Float>, dy: UnsafePointer<Float>, n: Int, c: Int, inner: Int,
                           mean: UnsafePointer<Float>, invStd: UnsafePointer<Float>, into sums: UnsafeMutablePointer<Double>,
                           dweight: UnsafeMutablePointer<Float>?, dbias: UnsafeMutablePointer<Float>?) {
    Parallel.forRange(c, costPerItem: n * inner * 2) { range in
        for ch in range {
            let (sumDy, sumDyXhat) = channelGradientSums(ch, x, dy: dy, n: n, c: c, inner: inner, mean: mean, invStd: invStd)
            sums[ch] = sumDy
            sums[c + ch] = sumDyXhat
            dbias?[ch] += Float(sumDy)
            dweight?[ch] += Float(sumDyXhat)
        }
    }
}

/// SyncBatchNorm backward, second half: dx from the sums of all replicas (`count` values per
/// channel in the global batch).
func batchNormSyncedInputGradient(_ x: UnsafePointer<Float>, dy: UnsafePointer<Float>, n: Int, c: Int, inner: Int,
                                  weight: UnsafePointer<Float>?, mean: UnsafePointer<Float>, invStd: UnsafePointer<Float>,
                                  sums: UnsafePointer<Double>, count: Double, dx: UnsafeMutablePointer<Float>) {
    Parallel.forRange(c, costPerItem: n * inner * 2) { range in
        for ch in range {
            channelInputGradient(ch, x, dy: dy, n: n, c: c, inner: inner, weight: weight, mean: mean, invStd: invStd,
                                 meanDy: Float(sums[ch] / count), meanDyXhat: Float(sums[c + ch] / count), dx)
        }
    }
}

/// Σdy and Σdy·x̂ of one channel (float within a plane, double across planes).
@inline(__always)
private func channelGradientSums(_ ch: Int, _ x: UnsafePointer<Float>, dy: UnsafePointer<Float>, n: Int, c: Int, inner: Int,
                                 mean: UnsafePointer<Float>, invStd: UnsafePointer<Float>) -> (Double, Double) {
    let m = mean[ch]
    var sumDy = 0.0, sumDyXmu = 0.0
    for img in 0..<n {
        let p = x + (img * c + ch) * inner, g = dy + (img * c + ch) * inner
        var s1: Float = 0, s2: Float = 0
        for i in 0..<inner { s1 += g[i]; s2 += g[i] * (p[i] - m) }
        sumDy += Double(s1); sumDyXmu += Double(s2)
    }
    return (sumDy, sumDyXmu * Double(invStd[ch]))
}

/// dx += γ/σ · (dy − mean(dy) − x̂ · mean(dy·x̂)) over one channel: the batch-statistics BN backward.
@inline(__always)
private func channelInputGradient(_ ch: Int, _ x: UnsafePointer<Float>, dy: UnsafePointer<Float>, n: Int, c: Int, inner: Int,
                                  weight: UnsafePointer<Float>?, mean: UnsafePointer<Float>, invStd: UnsafePointer<Float>,
                                  meanDy: Float, meanDyXhat: Float, _ dx: UnsafeMutablePointer<Float>) {
    let m = mean[ch], inv = invStd[ch]
    let k = (weight?[ch] ?? 1) * inv
    for img in 0..<n {
        let p = x + (img * c + ch) * inner, g = dy + (img * c + ch) * inner, d = dx + (img * c + ch) * inner
        for i in 0..<inner {
            let xhat = (p[i] - m) * inv
            d[i] += k * (g[i] - meanDy - xhat * meanDyXhat)
        }
    }
}
