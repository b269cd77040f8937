import OrderedCollections
import WconvTensor

/// Where an optimizer finds parameter values: `TrainingSession` (runtime) and the trainer's
/// pure-Swift models both provide their f32 buffers by name.
public protocol ParameterAccess: AnyObject {
    func parameterBuffer(named: String) -> UnsafeMutableBufferPointer<Float>?
}

/// One optimizer parameter group, as torch's `param_groups` entries: its own LR and weight decay.
public struct ParamGroup: Codable, Equatable, Sendable {
    /// Layer-group name from the plan (`stem`, `layer3`, `head`, …) plus a `.no_decay` suffix when split.
    public var name: String
    public var parameters: [String]
    public var lr: Double
    public var weightDecay: Double
    public init(name: String, parameters: [String], lr: Double, weightDecay: Double) {
        self.name = name
        self.parameters = parameters
        self.lr = lr
        self.weightDecay = weightDecay
    }
}

/// The update rule, with torch.optim's meaning for every field.
public enum OptimizerKind: Codable, Equatable, Sendable {
    /// torch.optim.SGD: weight decay added to the gradient (L2), momentum buffer initialised to the
    /// first gradient, `buf = momentum·buf + (1−dampening)·g`, nesterov `g + momentum·buf`.
    case sgd(momentum: Double, dampening: Double, nesterov: Bool)
    /// torch.optim.Adam (`decoupled == false`: decay as L2 on the gradient) or AdamW (`decoupled`:
    /// `p ← p·(1 − lr·wd)` before the update), with torch's bias correction and eps placement:
    /// `p ← p − lr/(1−β1ᵗ) · m / (√v/√(1−β2ᵗ) + eps)`.
    case adam(beta1: Double, beta2: Double, eps: Double, decoupled: Bool)

    public var name: String {
        switch self {
        case .sgd(let m, _, let n): return n ? "SGD (nesterov, momentum \(m))" : (m == 0 ? "SGD" : "SGD (momentum \(m))")
        case .adam(_, _, _, let d): return d ? "AdamW" : "Adam"
        }
    }
}

/// SGD / Adam / AdamW over named parameter groups. State (momentum buffers, moments, step counts)
/// is kept per parameter name so groups can be rebuilt (progressive unfreezing) and checkpointed.
public final class Optimizer {
    public var kind: OptimizerKind
    public private(set) var groups: [ParamGroup]
    /// Per-group base LR (the LR the schedule scales); `groups[i].lr` is the current LR.
    public private(set) var baseLRs: [Double]
    /// Per-group momentum override set by a cycling schedule (one-cycle); nil = the kind's value.
    public var momentumOverride: [Double?]

    final class State {
        var step = 0
        var buf1: [Float] = []   // SGD momentum buffer / Adam exp_avg
        var buf2: [Float] = []   // Adam exp_avg_sq
    }
    private var state: [String: State] = [:]

    public init(kind: OptimizerKind, groups: [ParamGroup]) {
        self.kind = kind
        self.groups = groups
        self.baseLRs = groups.map(\.lr)
        self.momentumOverride = groups.map { _ in nil }
    }

    /// Replaces the groups (progressive unfreezing). `keepState: false` starts fresh as the seed's
    /// ProgressiveUnfreezer does by building a new optimizer each epoch; `true` keeps the moments of
    /// parameters that stay trainable.
    public func rebuild(groups: [ParamGroup], keepState: Bool) {
        self.groups = groups
        self.baseLRs = groups.map(\.lr)
        self.momentumOverride = groups.map { _ in nil }
        if !keepState { state = [:] } else {
            let live = Set(groups.flatMap(\.parameters))
            state = state.filter { live.contains($0.key) }
        }
    }

    /// Sets each group's current LR to `schedule(base)`.
    public func applySchedule(_ schedule: LRSchedule, step: Int) {
        for i in groups.indices {
            groups[i].lr = schedule.lr(base: baseLRs[i], step: step)
            momentumOverride[i] = schedule.momentum(step: step)
        }
    }

    /// One update of every parameter that has a gradient. `grads` maps parameter name → gradient
    /// (same element count as the parameter; f32). Parameters without a gradient are skipped, as
    /// torch skips `p.grad is None`.
    public func step(parameters: ParameterAccess, gradients grads: [String: Tensor]) throws {
        for (gi, group) in groups.enumerated() {
            for name in group.parameters {
                guard let g = grads[name] else { continue }
                guard let p = parameters.parameterBuffer(named: name) else {
                    throw WconvError(.runtime, "optimizer: parameter '\(name)' of group '\(group.name)' has no buffer")
                }
                guard g.numel == p.count, g.dtype == .f32 else {
                    throw WconvError(.runtime, "optimizer: gradient of '\(name)' is \(g) but the parameter has \(p.count) f32 values")
                }
                try g.withContiguousBytes { raw in
                    let gp = raw.bindMemory(to: Float.self)
                    update(name: name, p: p, g: gp, lr: group.lr, wd: group.weightDecay, momentumOverride: momentumOverride[gi])
                }
            }
        }
    }

    private func update(name: String, p: UnsafeMutableBufferPointer<Float>, g: UnsafeBufferPointer<Float>,
                        lr: Double, wd: Double, momentumOverride: Double?) {
        let st: State
        if let s = state[name] { st = s } else { st = State(); state[name] = st }
        let n = p.count
        switch kind {
        case .sgd(let m0, let dampening, let nesterov):
            let momentum = Float(momentumOverride ?? m0)
            let fwd = Float(wd), flr = Float(-lr), damp = Float(1 - dampening)
            if momentum == 0 {
                for i in 0..<n { p[i] += flr * (g[i] + fwd * p[i]) }
                return
            }
            let first = st.buf1.isEmpty
            if first { st.buf1 = [Float](repeating: 0, count: n) }
            st.step += 1
            st.buf1.withUnsafeMutableBufferPointer { buf in
                for i in 0..<n {
                    let d = g[i] + fwd * p[i]
                    let b = first ? d : momentum * buf[i] + damp * d
                    buf[i] = b
                    p[i] += flr * (nesterov ? d + momentum * b : b)
                }
            }
        case .adam(let b1d, let beta2, let eps, let decoupled):
            let beta1 = momentumOverride ?? b1d
            if st.buf1.isEmpty {
                st.buf1 = [Float](repeating: 0, count: n)
                st.buf2 = [Float](repeating: 0, count: n)
            }
            st.step += 1
            let t = Double(st.step)
            let bc1 = 1 - _pow(beta1, t), bc2 = 1 - _pow(beta2, t)
            // Scalars as torch computes them (Python doubles, cast to f32 by the kernels), and the
            // element ops in torch's order, so f32 trajectories agree to rounding.
            let stepSize = Float(lr / bc1), bc2sqrt = Float(bc2.squareRoot())
            let fb1w = Float(1 - beta1), fb2 = Float(beta2), fb2w = Float(1 - beta2), feps = Float(eps), fwd = Float(wd)
            let decay = Float(1 - lr * wd)
            st.buf1.withUnsafeMutableBufferPointer { m in
                st.buf2.withUnsafeMutableBufferPointer { v in
                    for i in 0..<n {
                        var gi = g[i]
                        if decoupled { p[i] *= decay } else { gi += fwd * p[i] }
                        // exp_avg.lerp_(grad, 1-β1); exp_avg_sq.mul_(β2).addcmul_(g, g, value=1-β2)
                        m[i] += fb1w * (gi - m[i])
                        v[i] = v[i] * fb2 + fb2w * gi * gi
                        // denom = sqrt(v)/sqrt(bc2) + eps; p.addcdiv_(m, denom, value=-step_size)
                        let denom = v[i].squareRoot() / bc2sqrt + feps
                        p[i] += (-stepSize * m[i]) / denom
                    }
                }
            }
        }
    }

    /// Optimizer state for checkpoints: `<param>.step` (i64 scalar as f32 is not exact, so stored as
    /// a [1] f32 only up to 2^24 steps — enough) and `<param>.buf1`/`.buf2`.
    public func exportState() -> OrderedDictionary<String, Tensor> {
        var out = OrderedDictionary<String, Tensor>()
        for name in state.keys.sorted() {
            guard let st = state[name] else { continue }
            out["\(name).step"] = Tensor(shape: [1], floats: [Float(st.step)])
            if !st.buf1.isEmpty { out["\(name).buf1"] = Tensor(shape: [st.buf1.count], floats: st.buf1) }
            if !st.buf2.isEmpty { out["\(name).buf2"] = Tensor(shape: [st.buf2.count], floats: st.buf2) }
        }
        return out
    }

    /// Restores what `exportState` wrote.
    public func importState(_ tensors: OrderedDictionary<String, Tensor>) throws {
        state = [:]
        for (key, t) in tensors where key.hasSuffix(".step") {
            let name = String(key.dropLast(5))
            let st = State()
            st.step = Int(t.floats().first ?? 0)
            if let b1 = tensors["\(name).buf1"] { st.buf1 = b1.floats() }
            if let b2 = tensors["\(name).buf2"] { st.buf2 = b2.floats() }
            state[name] = st
        }
    }
}

#if canImport(Glibc)
import Glibc
@inline(__always) func _pow(_ a: Double, _ b: Double) -> Double { Glibc.pow(a, b) }
#else
import Darwin
@inline(__always) func _pow(_ a: Double, _ b: Double) -> Double { Darwin.pow(a, b) }
#endif
