#if canImport(Glibc)
import Glibc
#else
import Darwin
#endif
import WconvTensor

/// What an uncertain (−1) label trains as: the CheXpert paper's U-Ones, U-Zeros, U-Ignore.
public enum UncertainPolicy: String, Codable, CaseIterable, Sendable {
    /// −1 → 1.
    case ones
    /// −1 → 0.
    case zeros
    /// −1 → no loss term (masked out of the mean).
    case ignore
}

/// The multi-label flags (`--pos-weight`, `--uncertain`), part of `TrainingConfig`.
public struct MultiLabelOptions: Codable, Equatable, Sendable {
    /// `none`, `auto` (neg/pos per label over the training targets) or a comma list.
    public var posWeight = "none"
    public var uncertain: UncertainPolicy = .ignore
    public init(posWeight: String = "none", uncertain: UncertainPolicy = .ignore) {
        self.posWeight = posWeight
        self.uncertain = uncertain
    }
}

/// `torch.nn.BCEWithLogitsLoss(pos_weight=p, reduction="none")` per element, averaged over the
/// elements that count: all of them, or, with U-Ignore, those whose label is not uncertain
/// (Σ mask·ℓ / Σ mask, the usual masked mean). Per element, with lw = 1 + (p − 1)·y,
///   ℓ = (1 − y)·x + lw·(log1p(exp(−|x|)) + max(−x, 0))        (torch's stable form)
///   ∂ℓ/∂x = (1 − y) − lw·σ(−x).
public struct BCEWithLogitsLoss: Sendable {
    public var posWeight: [Float]?
    public var uncertain: UncertainPolicy

    public init(posWeight: [Float]? = nil, uncertain: UncertainPolicy = .ignore) {
        self.posWeight = posWeight
        self.uncertain = uncertain
    }

    /// The training target and whether the term counts, for a raw label (1, 0 or −1).
    @inline(__always)
    public static func resolve(_ t: Float, _ policy: UncertainPolicy) -> (y: Float, counts: Bool) {
        guard t < 0 else { return (t, true) }
        switch policy {
        case .ones: return (1, true)
        case .zeros: return (0, true)
        case .ignore: return (0, false)
        }
    }

    /// `--pos-weight auto`: neg/pos per label over the training targets after the uncertain
    /// policy (torch's recommended pos_weight). A label with no positive is refused by name.
    public static func autoPosWeight(targets: [Float], labels: [String], policy: UncertainPolicy) throws -> [Float] {
        let L = labels.count
        var pos = [Double](repeating: 0, count: L), neg = [Double](repeating: 0, count: L)
        for (k, t) in targets.enumerated() {
            let r = resolve(t, policy)
            guard r.counts else { continue }
            if r.y > 0 { pos[k % L] += 1 } else { neg[k % L] += 1 }
        }
        if let j = pos.firstIndex(of: 0) {
            throw WconvError.invalid("label '\(labels[j])' has no positive training sample (with --uncertain \(policy.rawValue)), so its pos-weight neg/pos is undefined; add positives, use --pos-weight none or give the weights as a list")
        }
        return (0..<L).map { Float(neg[$0] / pos[$0]) }
    }

    /// The weights `MultiLabelOptions.posWeight` asks for (nil for `none`).
    public static func posWeight(_ option: String, targets: [Float], labels: [String], policy: UncertainPolicy) throws -> [Float]? {
        switch option {
        case "none": return nil
        case "auto": return try autoPosWeight(targets: targets, labels: labels, policy: policy)
        default:
            let w = option.split(separator: ",").compactMap { Float($0.trimmingCharacters(in: .whitespaces)) }
            guard w.count == labels.count, w.allSatisfy({ $0 > 0 && $0.isFinite }) else {
                throw WconvError(.usage, "--pos-weight needs auto, none or \(labels.count) positive numbers (one per label: \(labels.joined(separator: ", "))), got '\(option)'")
            }
            return w
        }
    }

    /// Loss and gradient w.r.t. the logits (N×L row-major); `targets` holds the raw labels.
    public func callAsFunction(logits: UnsafeBufferPointer<Float>, targets: [Float], labels L: Int,
                               gradient: UnsafeMutableBufferPointer<Float>?) throws -> Double {
        guard L > 0, logits.count == targets.count, logits.count % L == 0 else {
            throw WconvError(.runtime, "BCE-with-logits: \(logits.count) logits for \(targets.count) targets of \(L) labels")
        }
        if let p = posWeight, p.count != L { throw WconvError.invalid("BCE-with-logits: \(p.count) pos-weights for \(L) labels") }
        var sum = 0.0, n = 0.0
        for k in 0..<logits.count {
            let r = BCEWithLogitsLoss.resolve(targets[k], uncertain)
            if r.counts { n += 1 }
            guard r.counts else { continue }
            let x = Double(logits[k]), y = Double(r.y)
            let lw = 1 + (Double(posWeight?[k % L] ?? 1) - 1) * y
            sum += (1 - y) * x + lw * (log1p(exp(-abs(x))) + max(-x, 0))
        }
        if let g = gradient {
            guard g.count == logits.count else { throw WconvError(.runtime, "BCE-with-logits: gradient buffer of \(g.count) for \(logits.count) logits") }
            for k in 0..<logits.count {
                let r = BCEWithLogitsLoss.resolve(targets[k], uncertain)
                guard r.counts, n > 0 else { g[k] = 0; continue }
                let x = Double(logits[k]), y = Double(r.y)
                let lw = 1 + (Double(posWeight?[k % L] ?? 1) - 1) * y
                // σ(−x) without overflow for either sign.
                let sNeg = x >= 0 ? exp(-x) / (1 + exp(-x)) : 1 / (1 + exp(x))
                g[k] = Float(((1 - y) - lw * sNeg) / n)
            }
        }
        // A batch whose every label is uncertain under U-Ignore has no term: loss 0, no gradient.
        return n > 0 ? sum / n : 0
    }

    /// Convenience over arrays.
    public func loss(logits: [Float], targets: [Float], labels L: Int) throws -> (loss: Double, gradient: [Float]) {
        var grad = [Float](repeating: 0, count: logits.count)
        let l = try logits.withUnsafeBufferPointer { lp in
            try grad.withUnsafeMutableBufferPointer { gp in try callAsFunction(logits: lp, targets: targets, labels: L, gradient: gp) }
        }
        return (l, grad)
    }
}
