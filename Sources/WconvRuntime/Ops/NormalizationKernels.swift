import Foundation
import WconvGraph
import WconvTensor

/// Batch norm (train statistics, eval, or folded to a per-channel affine by inference), layer
/// norm and softmax (docs/adding-an-op.md).
enum NormalizationKernels {
    static let all: [OpKernels] = [batchNorm, layerNorm, softmax]

    static let batchNorm = OpKernels(.batchNorm) { r in
        let x = try r.shape(0)
        let c = x[1]
        for i in 1..<min(r.inputShapes.count, 5) {
            if let v = r.inputShapes[i], v.reduce(1, *) != c { throw r.fail("parameter \(i) has shape \(v), expected [\(c)]") }
        }
        let inner = x.dropFirst(2).reduce(1, *)
        if r.exec.isAffine { return ChannelAffine(n: x[0], c: c, inner: inner) }
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

    static let softmax = OpKernels(.softmax) { r in
        let x = try r.shape(0)
        let ax = try r.axis(r.node.int("axis") ?? -1, rank: x.count)
        return Softmax(outer: x[..<ax].reduce(1, *), axisLen: x[ax], inner: x[(ax + 1)...].reduce(1, *))
    }
}

/// inputs [x, weight?, bias?, mean, var]. Saved state: mean and 1/std per channel.
struct BatchNorm: StepKernel {
    let n: Int, c: Int, inner: Int
    let epsilon: Float, momentum: Float
    func auxFloats(training: Bool) -> Int { 2 * c }

    func forward(_ ctx: StepContext) throws {
        let saved = ctx.aux!, y = ctx.output(), x = ctx.input(0)!
        let mode = ctx.executor.bnMode[ctx.nodeName] ?? .train
        if ctx.training && mode == .train {
            batchNormTrainForward(x, n: n, c: c, inner: inner, weight: ctx.input(1), bias: ctx.input(2),
                                  runningMean: ctx.input(3), runningVar: ctx.input(4), momentum: momentum, epsilon: epsilon,
                                  savedMean: saved, savedInvStd: saved + c, y)
            applyActivation(ctx.fused, y, y, n * c * inner)
        } else {
            guard let mean = ctx.input(3), let variance = ctx.input(4) else {
                throw ctx.fail("batchNorm in eval mode needs running_mean and running_var")
            }
            for ch in 0..<c {
                saved[ch] = mean[ch]
                saved[c + ch] = Float(1 / (Double(variance[ch]) + Double(epsilon)).squareRoot())
            }
            let (scale, shift) = foldBatchNorm(weight: ctx.input(1), bias: ctx.input(2), mean: mean, variance: variance, epsilon: epsilon, c: c)
            channelAffine(x, n: n, c: c, inner: inner, scale: scale, shift: shift, activation: ctx.fused, y)
        }
    }

    func backward(_ ctx: BackwardContext) throws {
        guard let dy = ctx.outputGradient() else { return }
        let name = ctx.executor.nodes[ctx.step.node].node.name
        let batchStats = ctx.lastForwardTraining && (ctx.executor.bnMode[name] ?? .train) == .train
        let saved = ctx.aux!
        batchNormBackward(ctx.input(0)!, dy: dy, n: n, c: c, inner: inner, weight: ctx.input(1), mean: saved, invStd: saved + c,
                          batchStats: batchStats, dx: ctx.inputGradient(0), dweight: ctx.inputGradient(1), dbias: ctx.inputGradient(2))
    }
}

/// Eval BN folded to per-channel scale/shift by inference. inputs [x, scale, shift].
struct ChannelAffine: StepKernel {
    let n: Int, c: Int, inner: Int
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
    func auxFloats(training: Bool) -> Int { 2 * rows }
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

struct Softmax: StepKernel {
    let outer: Int, axisLen: Int, inner: Int
    func forward(_ c: StepContext) throws { softmaxForward(c.input(0)!, outer: outer, axisLen: axisLen, inner: inner, c.output()) }
    func backward(_ c: BackwardContext) throws {
        guard let dy = c.outputGradient(), let d = c.inputGradient(0) else { return }
        softmaxBackward(c.output(), dy: dy, outer: outer, axisLen: axisLen, inner: inner, dx: d)
    }
}
