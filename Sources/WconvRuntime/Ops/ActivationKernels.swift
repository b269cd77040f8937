import Foundation
import WconvGraph
import WconvTensor

/// Activations, dropout and identity (docs/adding-an-op.md).
enum ActivationKernels {
    static let all: [OpKernels] = [Op.relu, .relu6, .clip, .silu, .gelu, .hardSwish, .hardSigmoid, .sigmoid, .tanh].map { op in
        OpKernels(op) { r in
            guard let act = Activation.from(r.node) else { throw r.fail("internal: not an activation") }
            return ActivationKernel(activation: act, count: r.outCount)
        }
    } + [dropout, OpKernels(.identity) { _ in View() }]

    static let dropout = OpKernels(.dropout) { r in
        let ratio = Float(r.node.float("ratio") ?? 0.5)
        guard ratio >= 0 && ratio < 1 else { throw r.fail("dropout ratio \(ratio) outside [0, 1)") }
        return Dropout(ratio: ratio, count: r.outCount)
    }
}

struct ActivationKernel: StepKernel {
    let activation: Activation
    let count: Int
    func forward(_ c: StepContext) throws { applyActivation(activation, c.input(0)!, c.output(), count) }
    func backward(_ c: BackwardContext) throws {
        guard let dy = c.outputGradient(), let d = c.inputGradient(0) else { return }
        activationBackward(activation, x: c.input(0)!, dy: dy, dx: d, count)
    }
}

/// Training: a seeded mask per step (kept for backward); eval: a copy.
struct Dropout: StepKernel {
    let ratio: Float
    let count: Int
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
