import Foundation
import WconvGraph
import WconvTensor

/// Activations, dropout and identity (docs/adding-an-op.md).
enum ActivationKernels {
    static let all: [OpKernels] = [Op.relu, .relu6, .clip, .silu, .gelu, .hardSwish, .hardSigmoid, .sigmoid, .tanh, .leakyRelu, .mish].map { op in
        OpKernels(op) { r in
            // Clip whose bounds are still tensors reads them when it runs.
            if op == .clip, let tensorBounds = TensorClip(r) { return tensorBounds }
            guard let act = Activation.from(r.node) else { throw r.fail("internal: not an activation") }
            return ActivationKernel(activation: act, count: r.outCount)
        }
    } + [dropout, OpKernels(.identity) { _ in View() }, prelu]

    static let prelu = OpKernels(.prelu) { r in
        guard let m = NBroadcast([try r.shape(0), try r.shape(1)], out: r.outShape) else { throw r.fail("slope does not broadcast") }
        return PRelu(map: m)
    }

    static let dropout = OpKernels(.dropout) { r in
        let ratio = Float(r.node.float("ratio") ?? 0.5)
        guard ratio >= 0 && ratio < 1 else { throw r.fail("dropout ratio \(ratio) outside [0, 1)") }
        return Dropout(ratio: ratio, count: r.outCount)
    }
}

struct ActivationKernel: PointwiseKernel {
    let activation: Activation
    let count: Int
    func apply(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>) { applyActivation(activation, x, y, count) }
    func accumulateGradient(x: UnsafePointer<Float>, y: UnsafePointer<Float>, dy: UnsafePointer<Float>, dx: UnsafeMutablePointer<Float>) {
        activationBackward(activation, x: x, dy: dy, dx: dx, count)
    }
    /// ReLU and SiLU usually are the first to reach their input's gradient: they then write it (no
    /// zeroing pass, no read); other activations and later arrivals add (PointwiseKernel).
    func backward(_ c: BackwardContext) throws {
        guard let dy = c.outputGradient() else { return }
        guard activation == .relu || activation == .silu, let g = c.inputGradientForWriting(0) else {
            if let dx = c.inputGradient(0) { accumulateGradient(x: c.input(0)!, y: c.output(), dy: dy, dx: dx) }
            return
        }
        let x = UnsafePointer(c.input(0)!), dx = g.pointer, fresh = g.fresh, relu = activation == .relu
        Parallel.forRange(count, costPerItem: relu ? 4 : 20) { r in
            let (v, gy, d) = (x + r.lowerBound, dy + r.lowerBound, dx + r.lowerBound)
            if relu { reluGradient(v, dy: gy, dx: d, r.count, accumulate: !fresh) } else { siluGradient(v, dy: gy, dx: d, r.count, accumulate: !fresh) }
        }
    }
}

/// Training: a seeded mask per step (kept for backward); eval: a copy.
struct Dropout: StepKernel {
    let ratio: Float
    let count: Int
    func extents(inputs: [Int], outputs: [Int]) -> StepExtents { elementwise(count, inputs: inputs, outputs: outputs) }
    func auxFloats(training: Bool) -> Int { training ? count : 0 }
    func forward(_ c: StepContext) throws {
        let x = c.input(0)!, y = c.output()
        if c.training && ratio > 0, let mask = c.aux {
            dropoutMask(mask, count: count, ratio: ratio, rng: &c.executor.rng)
            Parallel.forRange(count) { r in for i in r { y[i] = x[i] * mask[i] } }
        } else if UnsafePointer(y) != UnsafePointer(x) {
            copyFloats(y, from: x, count: count)
        }
    }
    func backward(_ c: BackwardContext) throws {
        guard let dy = c.outputGradient(), let d = c.inputGradient(0) else { return }
        if c.lastForwardTraining && ratio > 0, let mask = c.aux {
            for i in 0..<count { d[i] += dy[i] * mask[i] }
        } else {
            for i in 0..<count { d[i] += dy[i] }
        }
    }
}

/// Clip with scalar bounds read from tensors when the step runs (bounds computed from data).
struct TensorClip: StepKernel {
    let count: Int
    let hasMin: Bool, hasMax: Bool
    func extents(inputs: [Int], outputs: [Int]) -> StepExtents {
        var e = elementwise(count, inputs: inputs, outputs: outputs)
        if hasMin { e.read(1, 1) }
        if hasMax { e.read(2, 1) }
        return e
    }
    init?(_ r: KernelRequest) {
        let ins = r.node.inputs
        guard ins.dropFirst().contains(where: { !$0.isEmpty }) else { return nil }
        count = r.outCount
        hasMin = ins.count > 1 && !ins[1].isEmpty
        hasMax = ins.count > 2 && !ins[2].isEmpty
    }
    func bounds(_ input: (Int) -> UnsafeMutablePointer<Float>?) -> (Float, Float) {
        (hasMin ? input(1)![0] : -.infinity, hasMax ? input(2)![0] : .infinity)
    }
    func forward(_ c: StepContext) throws {
        let (lo, hi) = bounds(c.input)
        applyActivation(.clip(lo, hi), c.input(0)!, c.output(), count)
    }
    func backward(_ c: BackwardContext) throws {
        guard let dy = c.outputGradient(), let d = c.inputGradient(0) else { return }
        let (lo, hi) = bounds(c.input)
        activationBackward(.clip(lo, hi), x: c.input(0)!, dy: dy, dx: d, count)
    }
}

/// x ≥ 0 ? x : slope·x with the slope broadcast (map input 0: x, input 1: slope).
struct PRelu: BroadcastKernel {
    let map: NBroadcast
    func forward(_ c: StepContext) throws {
        let x = c.input(0)!, s = c.input(1)!, y = c.output(), m = map
        let inner = m.inner, ss = m.innerStride(1)
        for row in 0..<m.rows {
            let px = x + row * inner, ps = s + m.rowOffset(1, row), py = y + row * inner
            for i in 0..<inner { let v = px[i]; py[i] = v >= 0 ? v : ps[i * ss] * v }
        }
    }
    func backward(_ c: BackwardContext) throws {
        guard let dy = c.outputGradient() else { return }
        let x = c.input(0)!, s = c.input(1)!, m = map, dx = c.inputGradient(0), ds = c.inputGradient(1)
        let inner = m.inner, ss = m.innerStride(1)
        for row in 0..<m.rows {
            let px = x + row * inner, g = dy + row * inner, so = m.rowOffset(1, row)
            for i in 0..<inner {
                let v = px[i]
                if v >= 0 { dx?[row * inner + i] += g[i] } else {
                    dx?[row * inner + i] += s[so + i * ss] * g[i]
                    ds?[so + i * ss] += v * g[i]
                }
            }
        }
    }
}
