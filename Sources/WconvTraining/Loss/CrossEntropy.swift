#if canImport(Glibc)
import Glibc
#else
import Darwin
#endif
import WconvTensor

/// Cross-entropy exactly as `torch.nn.CrossEntropyLoss(weight, label_smoothing, reduction="mean")`:
/// with logp = log_softmax(z) (computed stably), a target y and class weights w,
///   nll_i = −w[y_i]·logp[i, y_i],   smooth_i = −Σ_c w[c]·logp[i, c],
///   loss  = ((1−ε)·Σ nll_i + ε/C·Σ smooth_i) / Σ_i w[y_i]
/// (torch's weighted mean divides by the sum of the targets' weights, also for the smoothing term).
public struct CrossEntropyLoss: Sendable {
    public var weights: [Float]?
    public var labelSmoothing: Float

    public init(weights: [Float]? = nil, labelSmoothing: Float = 0) {
        self.weights = weights
        self.labelSmoothing = labelSmoothing
    }

    /// The seed's class weights: w_c = N / count_c, then normalised so Σ w = C. A class with no
    /// samples is refused (its weight would be infinite) with the class named.
    public static func autoWeights(labels: [Int], classCount: Int, classNames: [String]? = nil) throws -> [Float] {
        var counts = [Int](repeating: 0, count: classCount)
        for l in labels {
            guard l >= 0, l < classCount else { throw WconvError.invalid("label \(l) outside 0..<\(classCount)") }
            counts[l] += 1
        }
        if let empty = counts.firstIndex(of: 0) {
            let name = classNames.map { $0.indices.contains(empty) ? "'\($0[empty])'" : "\(empty)" } ?? "\(empty)"
            throw WconvError.invalid("class \(name) has no training samples, so its inverse-frequency weight is undefined; add samples or pass --class-weights none or an explicit list")
        }
        let total = Double(labels.count)
        let w = counts.map { total / Double($0) }
        let s = w.reduce(0, +)
        return w.map { Float($0 / s * Double(classCount)) }
    }

    /// Loss and gradient w.r.t. the logits (N×C, row-major) for integer targets.
    public func callAsFunction(logits: UnsafeBufferPointer<Float>, targets: [Int], classes C: Int,
                               gradient: UnsafeMutableBufferPointer<Float>?) throws -> Double {
        let N = targets.count
        guard logits.count == N * C, C > 0 else {
            throw WconvError(.runtime, "cross-entropy: logits hold \(logits.count) values, expected \(N)×\(C)")
        }
        if let w = weights, w.count != C {
            throw WconvError.invalid("cross-entropy: \(w.count) class weights for \(C) classes; give one weight per class")
        }
        let eps = Double(labelSmoothing)
        var denom = 0.0, nll = 0.0, smooth = 0.0
        var wsum = 0.0
        if let w = weights { for c in 0..<C { wsum += Double(w[c]) } } else { wsum = Double(C) }
        var logp = [Double](repeating: 0, count: C)
        for i in 0..<N {
            let y = targets[i]
            guard y >= 0, y < C else { throw WconvError.invalid("cross-entropy: target \(y) at row \(i) outside 0..<\(C)") }
            let row = i * C
            var mx = -Double.infinity
            for c in 0..<C { mx = max(mx, Double(logits[row + c])) }
            var se = 0.0
            for c in 0..<C { se += exp(Double(logits[row + c]) - mx) }
            let lse = mx + log(se)
            var sm = 0.0
            for c in 0..<C {
                logp[c] = Double(logits[row + c]) - lse
                sm -= Double(weights?[c] ?? 1) * logp[c]
            }
            let wy = Double(weights?[y] ?? 1)
            denom += wy
            nll -= wy * logp[y]
            smooth += sm
        }
        guard denom > 0 else { throw WconvError.invalid("cross-entropy: the targets' weights sum to 0") }
        let loss = ((1 - eps) * nll + eps / Double(C) * smooth) / denom
        if let g = gradient {
            guard g.count == N * C else { throw WconvError(.runtime, "cross-entropy: gradient buffer has \(g.count) values, expected \(N * C)") }
            // d/dz of −Σ_c a_c·logp_c is p·Σa − a, with a_c = (1−ε)·w_y·[c=y] + ε/C·w_c.
            for i in 0..<N {
                let y = targets[i], row = i * C
                var mx = -Double.infinity
                for c in 0..<C { mx = max(mx, Double(logits[row + c])) }
                var se = 0.0
                for c in 0..<C { se += exp(Double(logits[row + c]) - mx) }
                let wy = Double(weights?[y] ?? 1)
                let asum = (1 - eps) * wy + eps / Double(C) * wsum
                for c in 0..<C {
                    let p = exp(Double(logits[row + c]) - mx) / se
                    var a = eps / Double(C) * Double(weights?[c] ?? 1)
                    if c == y { a += (1 - eps) * wy }
                    g[row + c] = Float((p * asum - a) / denom)
                }
            }
        }
        return loss
    }

    /// Convenience over arrays.
    public func loss(logits: [Float], targets: [Int], classes: Int) throws -> (loss: Double, gradient: [Float]) {
        var grad = [Float](repeating: 0, count: logits.count)
        let l = try logits.withUnsafeBufferPointer { lp in
            try grad.withUnsafeMutableBufferPointer { gp in
                try callAsFunction(logits: lp, targets: targets, classes: classes, gradient: gp)
            }
        }
        return (l, grad)
    }
}
