import Foundation
import WconvTensor

/// What a training plan needs besides oneDNN's convolutions to keep activations channels-last
/// (NHWC) between layers (DNNLLayoutPlan with `training`): batch norm in every mode (batch
/// statistics, running statistics, SyncBatchNorm) forward and backward, and the backward of the
/// NHWC pooling and squeeze-excite kernels. Rows are pixels, channels are contiguous, so the inner
/// loops run over channels.
struct NHWCBatchNorm: StepKernel {
    let n: Int, c: Int, hw: Int
    let epsilon: Float, momentum: Float
    var rows: Int { n * hw }

    func extents(inputs: [Int], outputs: [Int]) -> StepExtents {
        BatchNorm(n: n, c: c, inner: hw, epsilon: epsilon, momentum: momentum).extents(inputs: inputs, outputs: outputs)
    }
    /// Mean and 1/σ per channel, then the global batch's count under SyncBatchNorm (as BatchNorm).
    func auxFloats(training: Bool) -> Int { 2 * c + 1 }

    func forward(_ ctx: StepContext) throws {
        let saved = ctx.aux!, x = UnsafePointer(ctx.input(0)!), y = ctx.output(), c = c
        var scale = [Float](repeating: 1, count: c), shift = [Float](repeating: 0, count: c)
        if ctx.training && (ctx.executor.bnMode[ctx.nodeName] ?? .train) == .train {
            // Σ(x − p) and Σ(x − p)² about the first row p (no cancellation when |mean| ≫ σ).
            var sums = [Double](repeating: 0, count: 1 + 2 * c)
            sums[0] = Double(rows)
            var mean = [Double](repeating: 0, count: c), varBiased = [Double](repeating: 0, count: c)
            try sums.withUnsafeMutableBufferPointer { b in
                channelSums(into: b.baseAddress! + 1) { row, s1, s2 in
                    let p = x + row * c
                    for k in 0..<c { let d = p[k] - x[k]; s1[k] += d; s2[k] += d * d }
                }
                let r = Double(rows)
                if let sync = ctx.executor.batchNormSync {
                    // The replicas' pivots differ: they exchange plain Σx and Σx² (as BatchNorm does).
                    for k in 0..<c {
                        let p = Double(x[k]), s1 = b[1 + k]
                        b[1 + c + k] += 2 * p * s1 + r * p * p
                        b[1 + k] = s1 + r * p
                    }
                    try sync.allReduce(b, node: ctx.nodeName, phase: .statistics)
                    for k in 0..<c { mean[k] = b[1 + k] / b[0]; varBiased[k] = max(0, b[1 + c + k] / b[0] - mean[k] * mean[k]) }
                } else {
                    for k in 0..<c {
                        let m = b[1 + k] / r
                        mean[k] = Double(x[k]) + m; varBiased[k] = max(0, b[1 + c + k] / r - m * m)
                    }
                }
            }
            let count = sums[0]
            saved[2 * c] = Float(count)
            for k in 0..<c {
                (scale[k], shift[k]) = batchNormChannelStatistics(k, mean: mean[k], varBiased: varBiased[k], count: count,
                                                                  weight: ctx.input(1), bias: ctx.input(2),
                                                                  runningMean: ctx.input(3), runningVar: ctx.input(4), momentum: momentum,
                                                                  epsilon: epsilon, savedMean: saved, savedInvStd: saved + c)
            }
        } else {
            guard let mean = ctx.input(3), let variance = ctx.input(4) else {
                throw ctx.fail("batchNorm in eval mode needs running_mean and running_var")
            }
            (scale, shift) = foldBatchNorm(weight: ctx.input(1), bias: ctx.input(2), mean: mean, variance: variance, epsilon: epsilon, c: c,
                                           saving: saved)
        }
        // A fused ReLU (TrainingFusion) in the same pass.
        let relu = ctx.fused == .relu
        scale.withUnsafeBufferPointer { sb in
            shift.withUnsafeBufferPointer { hb in
                let sc = sb.baseAddress!, sh = hb.baseAddress!
                Parallel.forRange(rows, costPerItem: c) { r in
                    for row in r {
                        let p = x + row * c, q = y + row * c
                        if relu { for k in 0..<c { q[k] = max(p[k] * sc[k] + sh[k], 0) } } else { for k in 0..<c { q[k] = p[k] * sc[k] + sh[k] } }
                    }
                }
            }
        }
        if !relu { applyActivation(ctx.fused, y, y, rows * c) }
    }

    func backward(_ ctx: BackwardContext) throws {
        guard let dy = try ctx.outputGradientThroughReLU() else { return }
        let name = ctx.executor.nodes[ctx.step.node].node.name
        let batchStats = ctx.lastForwardTraining && (ctx.executor.bnMode[name] ?? .train) == .train
        let x = UnsafePointer(ctx.input(0)!), saved = UnsafePointer(ctx.aux!), c = c
        let mean = saved, invStd = saved + c
        // Σdy and Σdy·(x − mean) per channel.
        var sums = [Double](repeating: 0, count: 2 * c)
        sums.withUnsafeMutableBufferPointer { b in
            channelSums(into: b.baseAddress!) { row, s1, s2 in
                let p = x + row * c, g = dy + row * c
                for k in 0..<c { s1[k] += g[k]; s2[k] += g[k] * (p[k] - mean[k]) }
            }
        }
        for k in 0..<c { sums[c + k] *= Double(invStd[k]) }
        if let db = ctx.inputGradient(2) { for k in 0..<c { db[k] += Float(sums[k]) } }
        if let dw = ctx.inputGradient(1) { for k in 0..<c { dw[k] += Float(sums[c + k]) } }
        guard let g = ctx.inputGradientForWriting(0) else { return }
        // dx = γ/σ · (dy − mean(dy) − x̂ · mean(dy·x̂)) = a·dy + b·(x − mean) + d per channel
        // (batch statistics), γ/σ · dy with running statistics.
        let weight = ctx.input(1)
        var coef = [Float](repeating: 0, count: 3 * c)
        var meanDy = [Double](repeating: 0, count: c), meanDyXhat = [Double](repeating: 0, count: c)
        if batchStats {
            var count = Double(rows)
            if let sync = ctx.executor.batchNormSync {
                try sums.withUnsafeMutableBufferPointer { try sync.allReduce($0, node: name, phase: .gradients) }
                count = Double(saved[2 * c])
            }
            for k in 0..<c { meanDy[k] = sums[k] / count; meanDyXhat[k] = sums[c + k] / count }
        }
        for k in 0..<c {
            let gain = Double(weight?[k] ?? 1) * Double(invStd[k]), slope = gain * Double(invStd[k]) * meanDyXhat[k]
            coef[k] = Float(gain)
            coef[c + k] = Float(-slope)
            coef[2 * c + k] = Float(-gain * meanDy[k])
        }
        let dx = g.pointer, fresh = g.fresh
        coef.withUnsafeBufferPointer { cb in
            let a = cb.baseAddress!, b = a + c, d = a + 2 * c
            Parallel.forRange(rows, costPerItem: c * 2) { r in
                for row in r {
                    let p = x + row * c, gy = dy + row * c, out = dx + row * c
                    if fresh {
                        for k in 0..<c { out[k] = a[k] * gy[k] + b[k] * (p[k] - mean[k]) + d[k] }
                    } else {
                        for k in 0..<c { out[k] += a[k] * gy[k] + b[k] * (p[k] - mean[k]) + d[k] }
                    }
                }
            }
        }
    }

    /// Two per-channel sums over all rows: `add(row, s1, s2)` adds one row's terms to float
    /// vectors, which go into double every 32 rows; the totals land in out[0..<c] and out[c..<2c].
    @inline(__always)
    private func channelSums(into out: UnsafeMutablePointer<Double>,
                             _ add: (Int, UnsafeMutablePointer<Float>, UnsafeMutablePointer<Float>) -> Void) {
        let parts = max(1, min(Parallel.width, rows)), c = c, rows = rows
        let partial = UnsafeMutablePointer<Double>.allocate(capacity: parts * 2 * c)
        defer { partial.deallocate() }
        partial.initialize(repeating: 0, count: parts * 2 * c)
        Parallel.forRange(parts, costPerItem: rows / parts * c) { r in
            let f = UnsafeMutablePointer<Float>.allocate(capacity: 2 * c)
            defer { f.deallocate() }
            for part in r {
                let acc = partial + part * 2 * c
                var row = rows * part / parts
                let end = rows * (part + 1) / parts
                while row < end {
                    let stop = min(end, row + 32)
                    f.initialize(repeating: 0, count: 2 * c)
                    while row < stop { add(row, f, f + c); row += 1 }
                    for k in 0..<(2 * c) { acc[k] += Double(f[k]) }
                }
            }
        }
        for k in 0..<(2 * c) {
            var s = 0.0
            for part in 0..<parts { s += partial[part * 2 * c + k] }
            out[k] = s
        }
    }
}

extension NHWCKernels.MaxPool {
    /// Routes each output gradient to the first maximal input of its window (a NaN wins), per
    /// channel; parallel over images, whose windows never share inputs.
    func backward(_ ctx: BackwardContext) throws {
        guard let dy = ctx.outputGradient(), let dx = ctx.inputGradient(0) else { return }
        let g = geometry, x = UnsafePointer(ctx.input(0)!), ch = g.c
        Parallel.forRange(g.n, costPerItem: g.ho * g.wo * g.kh * g.kw * ch) { range in
            let best = UnsafeMutablePointer<Float>.allocate(capacity: ch), arg = UnsafeMutablePointer<Int32>.allocate(capacity: ch)
            defer { best.deallocate(); arg.deallocate() }
            for img in range {
                let plane = x + img * g.h * g.w * ch
                for oh in 0..<g.ho {
                    for ow in 0..<g.wo {
                        var first = true
                        g.forEachTap(oh, ow) { ih, iw in
                            let pix = ih * g.w + iw, src = plane + pix * ch
                            if first {
                                best.update(from: src, count: ch)
                                arg.update(repeating: Int32(pix), count: ch)
                                first = false
                                return true
                            }
                            Self.keepMaxima(src, best, arg, Int32(pix), ch)
                            return true
                        }
                        if first { continue }
                        let gy = dy + ((img * g.ho + oh) * g.wo + ow) * ch, d = dx + img * g.h * g.w * ch
                        for k in 0..<ch { d[Int(arg[k]) * ch + k] += gy[k] }
                    }
                }
            }
        }
    }

    /// best[k], arg[k] ← v[k], pix where v[k] > best[k] or v[k] is the first NaN; 16 channels at a
    /// time (measured: 18–42 ms per ResNet stem pool backward at b16 against 110–170 ms for the
    /// branchy loop and for a select loop, which did not vectorise inside the window walk).
    @inline(__always)
    static func keepMaxima(_ v: UnsafePointer<Float>, _ best: UnsafeMutablePointer<Float>, _ arg: UnsafeMutablePointer<Int32>, _ pix: Int32, _ ch: Int) {
        let p = SIMD16<Int32>(repeating: pix)
        var k = 0
        while k + 16 <= ch {
            let a = UnsafeRawPointer(v + k).loadUnaligned(as: SIMD16<Float>.self)
            let b = UnsafeRawPointer(best + k).loadUnaligned(as: SIMD16<Float>.self)
            let take = (a .> b) .| ((a .!= a) .& (b .== b))
            UnsafeMutableRawPointer(best + k).storeBytes(of: b.replacing(with: a, where: take), as: SIMD16<Float>.self)
            let i = UnsafeRawPointer(arg + k).loadUnaligned(as: SIMD16<Int32>.self)
            UnsafeMutableRawPointer(arg + k).storeBytes(of: i.replacing(with: p, where: take), as: SIMD16<Int32>.self)
            k += 16
        }
        while k < ch {
            let a = v[k], b = best[k]
            if a > b || (a.isNaN && !b.isNaN) { best[k] = a; arg[k] = pix }
            k += 1
        }
    }
}

extension NHWCKernels.GlobalAvgPool {
    /// dx[n, p, c] += dy[n, c] / (H·W).
    func backward(_ ctx: BackwardContext) throws {
        guard let dy = ctx.outputGradient(), let dx = ctx.inputGradient(0) else { return }
        let c = c, hw = hw, inv = 1 / Float(hw)
        Parallel.forRange(n * hw, costPerItem: c) { range in
            for pix in range {
                let g = dy + pix / hw * c, d = dx + pix * c
                for k in 0..<c { d[k] += g[k] * inv }
            }
        }
    }
}

extension NHWCKernels.ChannelScale {
    /// y = x · s: dx += dy · s, ds[n, c] += Σ_p dy · x; parallel over images (each owns its ds row).
    func backward(_ ctx: BackwardContext) throws {
        guard let dy = ctx.outputGradient() else { return }
        guard activation == .none else { throw WconvError(.runtime, "internal: a fused activation in a training plan's channel scale") }
        let x = UnsafePointer(ctx.input(full)!), s = UnsafePointer(ctx.input(1 - full)!)
        let dx = ctx.inputGradient(full), ds = ctx.inputGradient(1 - full), c = c, hw = hw
        Parallel.forRange(n, costPerItem: hw * c * 2) { range in
            for img in range {
                let sc = s + img * c
                for p in 0..<hw {
                    let off = (img * hw + p) * c, g = dy + off
                    if let dx { let d = dx + off; for k in 0..<c { d[k] += g[k] * sc[k] } }
                    if let ds { let d = ds + img * c, v = x + off; for k in 0..<c { d[k] += g[k] * v[k] } }
                }
            }
        }
    }
}
