#if canImport(Glibc)
import Glibc
#else
import Darwin
#endif

/// Learning-rate schedules, each the closed form of the torch scheduler named, evaluated per
/// optimizer step `t` (0-based) for a group whose configured LR is `base`.
public enum LRSchedule: Codable, Equatable, Sendable {
    case constant
    /// StepLR: base · gamma^⌊t/size⌋.
    case step(size: Int, gamma: Double)
    /// CosineAnnealingLR: etaMin + (base − etaMin)(1 + cos(πt/tMax))/2.
    case cosine(tMax: Int, etaMin: Double)
    /// LinearLR warm-up from startFactor·base to base over `iters` steps, then base.
    case warmup(startFactor: Double, iters: Int)
    /// SequentialLR(LinearLR warm-up, CosineAnnealingLR) with the milestone at `warmup`.
    case warmupCosine(warmup: Int, startFactor: Double, tMax: Int, etaMin: Double)
    /// transformers' get_linear_schedule_with_warmup (the BERT recipe): from 0 up to base over
    /// `warmup` steps, then linearly down to 0 at `total`.
    case warmupLinear(warmup: Int, total: Int)
    /// OneCycleLR (two phases): base is max_lr; from base/div up to base over pctStart of the steps,
    /// then down to base/(div·finalDiv); cosine or linear annealing; momentum cycles 0.95 ↔ 0.85.
    case oneCycle(totalSteps: Int, pctStart: Double, divFactor: Double, finalDivFactor: Double, cosine: Bool)

    public static func oneCycle(totalSteps: Int) -> LRSchedule {
        .oneCycle(totalSteps: totalSteps, pctStart: 0.3, divFactor: 25, finalDivFactor: 1e4, cosine: true)
    }

    public func lr(base: Double, step t: Int) -> Double {
        switch self {
        case .constant: return base
        case .step(let size, let gamma):
            return base * pow(gamma, Double(t / max(size, 1)))
        case .cosine(let tMax, let etaMin):
            return etaMin + (base - etaMin) * (1 + cos(Double.pi * Double(t) / Double(max(tMax, 1)))) / 2
        case .warmup(let f, let iters):
            let k = Double(min(t, iters)) / Double(max(iters, 1))
            return base * (f + (1 - f) * k)
        case .warmupCosine(let w, let f, let tMax, let etaMin):
            if t < w { return LRSchedule.warmup(startFactor: f, iters: w).lr(base: base, step: t) }
            return LRSchedule.cosine(tMax: tMax, etaMin: etaMin).lr(base: base, step: t - w)
        case .warmupLinear(let w, let total):
            if t < w { return base * Double(t) / Double(max(1, w)) }
            return base * max(0, Double(total - t) / Double(max(1, total - w)))
        case .oneCycle(let total, let pct, let div, let finalDiv, let useCos):
            let initial = base / div, minLR = initial / finalDiv
            let end0 = pct * Double(total) - 1, end1 = Double(total - 1)
            let x = Double(t)
            if x <= end0 { return OneCycle.anneal(initial, base, x / end0, cosine: useCos) }
            return OneCycle.anneal(base, minLR, (x - end0) / (end1 - end0), cosine: useCos)
        }
    }

    /// Momentum (SGD) / β1 (Adam) for schedules that cycle it; nil for the others.
    public func momentum(step t: Int) -> Double? {
        guard case .oneCycle(let total, let pct, _, _, let useCos) = self else { return nil }
        let end0 = pct * Double(total) - 1, end1 = Double(total - 1), x = Double(t)
        if x <= end0 { return OneCycle.anneal(0.95, 0.85, x / end0, cosine: useCos) }
        return OneCycle.anneal(0.85, 0.95, (x - end0) / (end1 - end0), cosine: useCos)
    }

    public var summary: String {
        switch self {
        case .constant: return "constant"
        case .step(let s, let g): return "step (×\(g) every \(s) steps)"
        case .cosine(let t, let e): return "cosine (\(t) steps, min \(e))"
        case .warmup(let f, let i): return "linear warm-up (\(i) steps from ×\(f))"
        case .warmupCosine(let w, let f, let t, let e): return "warm-up \(w) steps (from ×\(f)) then cosine \(t) steps (min \(e))"
        case .warmupLinear(let w, let t): return "linear warm-up \(w) steps from 0, then linear decay to 0 at step \(t)"
        case .oneCycle(let n, let p, let d, let fd, let c): return "one-cycle (\(n) steps, peak at \(Int(p * 100))%, div \(d), final div \(fd), \(c ? "cos" : "linear"))"
        }
    }
}

enum OneCycle {
    static func anneal(_ start: Double, _ end: Double, _ pct: Double, cosine: Bool) -> Double {
        cosine ? end + (start - end) / 2 * (cos(Double.pi * pct) + 1) : (end - start) * pct + start
    }
}
