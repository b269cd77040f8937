import Foundation
import WconvGraph
import WconvTensor

/// Batch norm (train statistics, eval, or folded to a per-channel affine by inference), layer
/// norm and softmax (docs/adding-an-op.md).
enum NormalizationKernels {
    static let all: [OpKernels] = [batchNorm, layerNorm, softmax(.softmax), softmax(.logSoftmax), channelNorm(.instanceNorm), channelNorm(.groupNorm)]

    /// Instance norm is group norm with one channel per group.
    static func channelNorm(_ op: Op) -> OpKernels {
        OpKernels(op) { r in
            let x = try r.shape(0)
            let groups = op == .instanceNorm ? x[1] : (r.node.int("groups") ?? 1)
            let perGroupAffine = try r.shape(1)[0] != x[1]
            return GroupNorm(n: x[0], c: x[1], groups: groups, spatial: x.dropFirst(2).reduce(1, *),
                             epsilon: Float(r.node.float("epsilon") ?? 1e-5), perGroupAffine: perGroupAffine)
        }
    }

    static let batchNorm = OpKernels(.batchNorm) { r in
        let x = try r.shape(0)
        let c = x[1]
        for i in 1..<min(r.inputShapes.count, 5) {
            if let v = r.inputShapes[i], v.reduce(1, *) != c { throw r.fail("parameter \(i) has shape \(v), expected [\(c)]") }
        }
        let inner = x.dropFirst(2).reduce(1, *)
        if r.exec.isAffine { return ChannelAffine(n: x[0], c: c, inner: inner) }
        // Between oneDNN convolutions of a training plan the activations are NHWC (DNNLLayoutPlan).
        if r.layout.nhwcInput {
            return NHWCBatchNorm(n: x[0], c: c, hw: inner, epsilon: Float(r.node.float("epsilon") ?? 1e-5),
                                 momentum: Float(r.node.float("momentum") ?? 0.1))
        }
        return BatchNorm(n: x[0], c: c, inner: inner, epsilon: Float(r.node.float("epsilon") ?? 1e-5),
                         momentum: Float(r.node.float("momentum") ?? 0.1))
    }

    static let layerNorm = OpKernels(.layerNorm) { r in
        let x = try r.shape(0)
        var ax: Int
        if let a = r.node.int("axis") { ax = try r.axis(a, rank: x.count) }
        else if r.inputShapes.count > 1, let w = r.inputShapes[1] { ax = x.count - w.count } else { ax = x.count - 1 }
        guard ax >= 0 else { throw r.fail("weight has more dims than the input") }
        let inner = x[ax...].reduce(1, *)
        for i in 1..<min(r.inputShapes.count, 3) {
            if let v = r.inputShapes[i], v.reduce(1, *) != inner { throw r.fail("parameter \(i) has \(v.reduce(1, *)) values, expected \(inner)") }
        }
        return LayerNorm(rows: x[..<ax].reduce(1, *), inner: inner, epsilon: Float(r.node.float("epsilon") ?? 1e-5))
    }

    /// Over one axis, or (opset < 13, flattenTo2d) over every dim from the axis on.
    static func softmax(_ op: Op) -> OpKernels {
        OpKernels(op) { r in
            let x = try r.shape(0)
            let ax = try r.axis(r.node.int("axis") ?? -1, rank: x.count)
            let flat = (r.node.int("flattenTo2d") ?? 0) != 0
            return Softmax(outer: x[..<ax].reduce(1, *), axisLen: flat ? x[ax...].reduce(1, *) : x[ax],
                           inner: flat ? 1 : x[(ax + 1)...].reduce(1, *), log: op == .logSoftmax)
        }
    }
}

/// inputs [x, weight?, bias?, mean, var]. Saved state: mean and 1/std per channel.
struct BatchNorm: StepKernel {
    let n: Int, c: Int, inner: Int
    let epsilon: Float, momentum: Float
    func extents(inputs: [Int], outputs: [Int]) -> StepExtents {
        var e = StepExtents(inputs: inputs.count, outputs: outputs.count)
        e.read(0, n * c * inner); for k in 1..<5 { e.read(k, c) }
        e.write(0, n * c * inner)
        return e
    }
    /// Mean and 1/σ per channel, then the global batch's count under SyncBatchNorm.
    func auxFloats(training: Bool) -> Int { 2 * c + 1 }

    func forward(_ ctx: StepContext) throws {
        let saved = ctx.aux!, y = ctx.output(), x = ctx.input(0)!
        let mode = ctx.executor.bnMode[ctx.nodeName] ?? .train
        if ctx.training && mode == .train, let sync = ctx.executor.batchNormSync {
            // SyncBatchNorm: the global batch's statistics; the count is saved for backward.
            var sums = [Double](repeating: 0, count: 1 + 2 * c)
            sums[0] = Double(n * inner)
            try sums.withUnsafeMutableBufferPointer { b in
                batchNormSums(x, n: n, c: c, inner: inner, into: b.baseAddress! + 1)
                try sync.allReduce(b, node: ctx.nodeName, phase: .statistics)
                saved[2 * c] = Float(b[0])
                batchNormSyncedForward(sums: b.baseAddress! + 1, count: b[0], x, n: n, c: c, inner: inner, weight: ctx.input(1), bias: ctx.input(2),
                                       runningMean: ctx.input(3), runningVar: ctx.input(4), momentum: momentum, epsilon: epsilon,
                                       savedMean: saved, savedInvStd: saved + c, y)
            }
            applyActivation(ctx.fused, y, y, n * c * inner)
        } else if ctx.training && mode == .train {
            batchNormTrainForward(x, n: n, c: c, inner: inner, weight: ctx.input(1), bias: ctx.input(2),
                                  runningMean: ctx.input(3), runningVar: ctx.input(4), momentum: momentum, epsilon: epsilon,
                                  savedMean: saved, savedInvStd: saved + c, y)
            applyActivation(ctx.fused, y, y, n * c * inner)
        } else {
            guard let mean = ctx.input(3), let variance = ctx.input(4) else {
                throw ctx.fail("batchNorm in eval mode needs running_mean and running_var")
            }
            let (scale, shift) = foldBatchNorm(weight: ctx.input(1), bias: ctx.input(2), mean: mean, variance: variance, epsilon: epsilon, c: c,
                                               saving: saved)
            channelAffine(x, n: n, c: c, inner: inner, scale: scale, shift: shift, activation: ctx.fused, y)
        }
    }

    func backward(_ ctx: BackwardContext) throws {
        guard let dy = try ctx.outputGradientThroughReLU() else { return }
        let name = ctx.executor.nodes[ctx.step.node].node.name
        let batchStats = ctx.lastForwardTraining && (ctx.executor.bnMode[name] ?? .train) == .train
        let saved = ctx.aux!
        if batchStats, let sync = ctx.executor.batchNormSync {
            var sums = [Double](repeating: 0, count: 2 * c)
            try sums.withUnsafeMutableBufferPointer { b in
                batchNormGradientSums(ctx.input(0)!, dy: dy, n: n, c: c, inner: inner, mean: saved, invStd: saved + c, into: b.baseAddress!,
                                      dweight: ctx.inputGradient(1), dbias: ctx.inputGradient(2))
                // Whether x needs a gradient is the same on every replica, so they all skip or all reduce.
                guard let dx = ctx.inputGradient(0) else { return }
                try sync.allReduce(b, node: name, phase: .gradients)
                batchNormSyncedInputGradient(ctx.input(0)!, dy: dy, n: n, c: c, inner: inner, weight: ctx.input(1), mean: saved, invStd: saved + c,
                                             sums: b.baseAddress!, count: Double(saved[2 * c]), dx: dx)
            }
            return
        }
        batchNormBackward(ctx.input(0)!, dy: dy, n: n, c: c, inner: inner, weight: ctx.input(1), mean: saved, invStd: saved + c,
                          batchStats: batchStats, dx: ctx.inputGradient(0), dweight: ctx.inputGradient(1), dbias: ctx.inputGradient(2))
    }
}

/// Eval BN folded to per-channel scale/shift by inference. inputs [x, scale, shift].
struct ChannelAffine: StepKernel {
    let n: Int, c: Int, inner: Int
    func extents(inputs: [Int], outputs: [Int]) -> StepExtents {
        StepExtents(inputs, outputs) { $0.read(0, n * c * inner); $0.read(1, c); $0.read(2, c); $0.write(0, n * c * inner) }
    }
    func forward(_ ctx: StepContext) throws {
        channelAffine(ctx.input(0)!, n: n, c: c, inner: inner, scale: ctx.input(1)!, shift: ctx.input(2)!, activation: ctx.fused, ctx.output())
    }
    func backward(_ ctx: BackwardContext) throws {
        throw WconvError(.runtime, "internal: folded batchNorm has no backward (training sessions do not fold)")
    }
}

/// Saved state: mean and 1/std per row.
struct LayerNorm: StepKernel {
    let rows: Int, inner: Int
    let epsilon: Float
    func extents(inputs: [Int], outputs: [Int]) -> StepExtents {
        StepExtents(inputs, outputs) { $0.read(0, rows * inner); $0.read(1, inner); $0.read(2, inner); $0.write(0, rows * inner) }
    }
    /// At least one float: an empty input (rows 0) still gets the saved-state pointer forward unwraps.
    func auxFloats(training: Bool) -> Int { max(2 * rows, 1) }
    func forward(_ c: StepContext) throws {
        let saved = c.aux!
        layerNormForward(c.input(0)!, rows: rows, inner: inner, weight: c.input(1), bias: c.input(2), epsilon: epsilon, c.output(),
                         savedMean: saved, savedInvStd: saved + rows)
    }
    func backward(_ c: BackwardContext) throws {
        guard let dy = c.outputGradient() else { return }
        let saved = c.aux!
        layerNormBackward(c.input(0)!, rows: rows, inner: inner, weight: c.input(1), mean: saved, invStd: saved + rows, dy: dy,
                          dx: c.inputGradient(0), dw: c.inputGradient(1), db: c.inputGradient(2))
    }
}

/// Softmax or log-softmax along an axis: data viewed as [outer, axisLen, inner].
struct Softmax: StepKernel {
    let outer: Int, axisLen: Int, inner: Int
    let log: Bool
    func extents(inputs: [Int], outputs: [Int]) -> StepExtents {
        StepExtents(inputs, outputs) { $0.read(0, outer * axisLen * inner); $0.write(0, outer * axisLen * inner) }
    }
    func forward(_ c: StepContext) throws {
        let x = c.input(0)!, y = c.output()
        if !log { softmaxForward(x, outer: outer, axisLen: axisLen, inner: inner, y); return }
        let (n, inn) = (axisLen, inner)
        Parallel.forRange(outer * inner, costPerItem: axisLen * 3) { range in
            for idx in range {
                let base = (idx / inn) * n * inn + idx % inn
                var mx = -Float.infinity
                for a in 0..<n { mx = max(mx, x[base + a * inn]) }
                var s: Float = 0
                for a in 0..<n { s += expf(x[base + a * inn] - mx) }
                let lse = mx + logf(s)
                for a in 0..<n { y[base + a * inn] = x[base + a * inn] - lse }
            }
        }
    }
    func backward(_ c: BackwardContext) throws {
        guard let dy = c.outputGradient(), let d = c.inputGradient(0) else { return }
        let y = c.output()
        if !log { softmaxBackward(y, dy: dy, outer: outer, axisLen: axisLen, inner: inner, dx: d); return }
        // dx = dy − softmax · Σ dy, with softmax = exp(y).
        let (n, inn) = (axisLen, inner)
        Parallel.forRange(outer * inner, costPerItem: axisLen * 3) { range in
            for idx in range {
                let base = (idx / inn) * n * inn + idx % inn
                var s: Float = 0
                for a in 0..<n { s += dy[base + a * inn] }
                for a in 0..<n { let j = base + a * inn; d[j] += dy[j] - expf(y[j]) * s }
            }
        }
    }
}

/// Group normalisation of x viewed as [N, C, S]: statistics per (sample, group of C/G channels)
/// over C/G·S elements (biased variance), then scale and bias per channel or per group. Saved state:
/// mean and 1/std per (sample, group).
struct GroupNorm: StepKernel {
    let n: Int, c: Int, groups: Int, spatial: Int
    let epsilon: Float
    let perGroupAffine: Bool
    var rows: Int { n * groups }
    var rowLen: Int { c / groups * spatial }
    func extents(inputs: [Int], outputs: [Int]) -> StepExtents {
        var e = StepExtents(inputs: inputs.count, outputs: outputs.count)
        let affine = perGroupAffine ? groups : c
        e.read(0, rows * rowLen); e.read(1, affine); e.read(2, affine); e.write(0, rows * rowLen)
        return e
    }
    /// At least one float: an empty input (rows 0) still gets the saved-state pointer forward unwraps.
    func auxFloats(training: Bool) -> Int { max(2 * rows, 1) }
    func affineIndex(_ ch: Int) -> Int { perGroupAffine ? ch / (c / groups) : ch }

    func forward(_ ctx: StepContext) throws {
        let x = ctx.input(0)!, scale = ctx.input(1)!, bias = ctx.input(2)!, y = ctx.output(), saved = ctx.aux!
        let len = rowLen, cpg = c / groups, sp = spatial
        Parallel.forRange(rows, costPerItem: len * 3) { range in
            for row in range {
                let px = x + row * len, py = y + row * len
                var mean = 0.0
                for i in 0..<len { mean += Double(px[i]) }
                mean /= Double(max(len, 1))
                var v = 0.0
                for i in 0..<len { let d = Double(px[i]) - mean; v += d * d }
                let inv = Float(1 / (v / Double(max(len, 1)) + Double(epsilon)).squareRoot())
                saved[row] = Float(mean); saved[rows + row] = inv
                let g = row % groups
                for k in 0..<cpg {
                    let a = affineIndex(g * cpg + k), sc = scale[a] * inv, sh = bias[a]
                    let m = Float(mean), off = k * sp
                    for i in 0..<sp { py[off + i] = (px[off + i] - m) * sc + sh }
                }
            }
        }
    }

    func backward(_ ctx: BackwardContext) throws {
        guard let dy = ctx.outputGradient() else { return }
        let x = ctx.input(0)!, scale = ctx.input(1)!, saved = ctx.aux!
        let dx = ctx.inputGradient(0), ds = ctx.inputGradient(1), db = ctx.inputGradient(2)
        let len = rowLen, cpg = c / groups, sp = spatial
        for row in 0..<rows {
            let px = x + row * len, g = dy + row * len, mean = saved[row], inv = saved[rows + row]
            let grp = row % groups
            // Σ dxhat and Σ dxhat·xhat over the row, with dxhat = dy · scale.
            var s1: Float = 0, s2: Float = 0
            for k in 0..<cpg {
                let a = affineIndex(grp * cpg + k), w = scale[a]
                var sdb: Float = 0, sds: Float = 0
                for i in 0..<sp {
                    let j = k * sp + i, xhat = (px[j] - mean) * inv, gy = g[j]
                    s1 += gy * w; s2 += gy * w * xhat
                    sdb += gy; sds += gy * xhat
                }
                db?[a] += sdb; ds?[a] += sds
            }
            guard let dx else { continue }
            let nf = Float(len), d = dx + row * len
            for k in 0..<cpg {
                let w = scale[affineIndex(grp * cpg + k)]
                for i in 0..<sp {
                    let j = k * sp + i, xhat = (px[j] - mean) * inv
                    d[j] += inv * (g[j] * w - s1 / nf - xhat * s2 / nf)
                }
            }
        }
    }
}
