import OrderedCollections
import WconvTensor

/// Where an optimizer finds parameter values: `TrainingSession` (runtime) and the trainer's
/// pure-Swift models both provide their f32 buffers by name.
public protocol ParameterAccess: AnyObject {
    func parameterBuffer(named: String) -> UnsafeMutableBufferPointer<Float>?
}

/// Gradients left in place by a backward pass (a training session's own buffers).
public protocol GradientAccess: AnyObject {
    /// The gradient of a trainable parameter the last backward reached, or nil.
    func gradientBuffer(named: String) -> UnsafeMutableBufferPointer<Float>?
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
        try step(parameters: parameters) { name, body in
            guard let g = grads[name] else { return false }
            guard g.dtype == .f32 else { throw WconvError(.runtime, "optimizer: gradient of '\(name)' is \(g), not f32") }
            try g.withContiguousBytes { try body($0.bindMemory(to: Float.self)) }
            return true
        }
    }

    /// The same update reading the gradients where the session's backward left them
    /// (`TrainingSession.backwardInPlace`): no copy per parameter per step, which is a model's size
    /// of memory (440 MB for BERT-base).
    public func step(parameters: ParameterAccess, gradients session: GradientAccess) throws {
        try step(parameters: parameters) { name, body in
            guard let g = session.gradientBuffer(named: name) else { return false }
            try body(UnsafeBufferPointer(g))
            return true
        }
    }

    /// `gradient(name, body)` calls body with the parameter's gradient and returns true, or returns
    /// false when the parameter has none.
    private func step(parameters: ParameterAccess,
                      gradient: (String, (UnsafeBufferPointer<Float>) throws -> Void) throws -> Bool) throws {
        for (gi, group) in groups.enumerated() {
            for name in group.parameters {
                _ = try gradient(name) { g in
                    guard let p = parameters.parameterBuffer(named: name) else {
                        throw WconvError(.runtime, "optimizer: parameter '\(name)' of group '\(group.name)' has no buffer")
                    }
                    guard g.count == p.count else {
                        throw WconvError(.runtime, "optimizer: gradient of '\(name)' has \(g.count) values but the parameter \(p.count)")
                    }
                    if let st = state[name], !st.buf1.isEmpty, st.buf1.count != p.count {
                        throw WconvError(.runtime, "optimizer: state of '\(name)' has \(st.buf1.count) values but the parameter \(p.count)")
                    }
                    update(name: name, p: p, g: g, lr: group.lr, wd: group.weightDecay, momentumOverride: momentumOverride[gi])
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

    /// Restores what `exportState` wrote, refusing (as `.invalidInput`) state that could not come from
    /// it: a step that is not a whole number in 0...2²⁴, non-finite buffers, an Adam moment without
    /// its pair, or — given the parameters' element counts `sizes` — a parameter the model lacks or
    /// a buffer of another length.
    public func importState(_ tensors: OrderedDictionary<String, Tensor>, sizes: [String: Int]? = nil) throws {
        var restored: [String: State] = [:]
        for key in tensors.keys {
            guard let dot = key.lastIndex(of: "."), ["step", "buf1", "buf2"].contains(key[key.index(after: dot)...]),
                  tensors[String(key[..<dot]) + ".step"] != nil else {
                throw WconvError.invalid("optimizer state '\(key)' is not one wconv writes (<parameter>.step, .buf1, .buf2)")
            }
        }
        for (key, t) in tensors where key.hasSuffix(".step") {
            let name = String(key.dropLast(5))
            if let sizes, sizes[name] == nil { throw WconvError.invalid("optimizer state names parameter '\(name)', which the model does not have") }
            let v = t.floats()
            guard v.count == 1, v[0] >= 0, v[0] <= 16_777_216, v[0] == v[0].rounded() else {
                throw WconvError.invalid("optimizer step count '\(key)' is \(v.prefix(4)), expected one whole number in 0...16777216")
            }
            let st = State()
            st.step = Int(v[0])
            for (field, suffix) in [(\State.buf1, "buf1"), (\State.buf2, "buf2")] {
                guard let b = tensors["\(name).\(suffix)"] else { continue }
                let f = b.floats()
                if let n = sizes?[name], f.count != n {
                    throw WconvError.invalid("optimizer state '\(name).\(suffix)' has \(f.count) values, the parameter \(n)")
                }
                guard f.allSatisfy(\.isFinite) else { throw WconvError.invalid("optimizer state '\(name).\(suffix)' holds NaN or infinite values") }
                st[keyPath: field] = f
            }
            let adam: Bool
            if case .adam = kind { adam = true } else { adam = false }
            guard adam ? st.buf1.count == st.buf2.count : st.buf2.isEmpty else {
                throw WconvError.invalid("optimizer state of '\(name)' does not fit \(kind.name): buf1 has \(st.buf1.count) values, buf2 \(st.buf2.count)")
            }
            restored[name] = st
        }
        state = restored
    }
}

#if canImport(Glibc)
import Glibc
@inline(__always) func _pow(_ a: Double, _ b: Double) -> Double { Glibc.pow(a, b) }
#else
import Darwin
@inline(__always) func _pow(_ a: Double, _ b: Double) -> Double { Darwin.pow(a, b) }
#endif
