#if canImport(Glibc)
import Glibc
#else
import Darwin
#endif

/// Maximum mean discrepancy between source features S (ns×d) and target features T (nt×d),
/// with gradients w.r.t. both, for `--adapt-target DIR --mmd-weight λ`.
public enum MMDKind: String, Codable, Sendable {
    /// The seed's `DomainAdaptiveModel.mmd_loss`: ‖mean(S) − mean(T)‖² (a linear-kernel MMD).
    case mean
    /// Multi-bandwidth Gaussian-kernel MMD², biased estimator (diagonals included):
    ///   mean K(S,S) + mean K(T,T) − 2·mean K(S,T),  K(x,y) = Σ_m exp(−‖x−y‖² / (m·b))
    /// over m ∈ {0.25, 0.5, 1, 2, 4}, where b is the median heuristic: the lower median (as
    /// torch.median) of the squared distances between distinct rows of [S; T], treated as a
    /// constant for the gradient (1 when all rows coincide).
    case gaussian
}

public struct MMDResult: Sendable {
    public var value: Double
    /// ns×d and nt×d, row-major.
    public var gradSource: [Float]
    public var gradTarget: [Float]
    /// The median-heuristic base bandwidth b (gaussian only).
    public var bandwidth: Double?
}

public enum MMD {
    public static let bandwidthMultipliers: [Double] = [0.25, 0.5, 1, 2, 4]

    public static func compute(_ kind: MMDKind, source S: [Float], target T: [Float], dim d: Int) -> MMDResult {
        precondition(d > 0 && S.count % d == 0 && T.count % d == 0, "MMD: feature sizes do not match dim \(d)")
        let ns = S.count / d, nt = T.count / d
        switch kind {
        case .mean:
            var delta = [Double](repeating: 0, count: d)
            for i in 0..<ns { for k in 0..<d { delta[k] += Double(S[i * d + k]) / Double(ns) } }
            for j in 0..<nt { for k in 0..<d { delta[k] -= Double(T[j * d + k]) / Double(nt) } }
            let value = delta.reduce(0) { $0 + $1 * $1 }
            var gs = [Float](repeating: 0, count: S.count), gt = [Float](repeating: 0, count: T.count)
            for i in 0..<ns { for k in 0..<d { gs[i * d + k] = Float(2 * delta[k] / Double(ns)) } }
            for j in 0..<nt { for k in 0..<d { gt[j * d + k] = Float(-2 * delta[k] / Double(nt)) } }
            return MMDResult(value: value, gradSource: gs, gradTarget: gt, bandwidth: nil)
        case .gaussian:
            let n = ns + nt
            var z = [Double](repeating: 0, count: n * d)
            for i in 0..<ns { for k in 0..<d { z[i * d + k] = Double(S[i * d + k]) } }
            for j in 0..<nt { for k in 0..<d { z[(ns + j) * d + k] = Double(T[j * d + k]) } }
            var d2 = [Double](repeating: 0, count: n * n)
            var pairs: [Double] = []
            pairs.reserveCapacity(n * (n - 1) / 2)
            for i in 0..<n {
                for j in (i + 1)..<max(n, i + 1) {
                    var s = 0.0
                    for k in 0..<d { let t = z[i * d + k] - z[j * d + k]; s += t * t }
                    d2[i * n + j] = s
                    d2[j * n + i] = s
                    pairs.append(s)
                }
            }
            pairs.sort()
            var base = pairs.isEmpty ? 1 : pairs[(pairs.count - 1) / 2]
            if !(base > 0) { base = 1 }
            // Pair coefficients: 1/ns² (SS), 1/nt² (TT), −1/(ns·nt) (ST and TS, symmetric).
            func coef(_ i: Int, _ j: Int) -> Double {
                let si = i < ns, sj = j < ns
                if si && sj { return 1 / Double(ns * ns) }
                if !si && !sj { return 1 / Double(nt * nt) }
                return -1 / Double(ns * nt)
            }
            var value = 0.0
            var grad = [Double](repeating: 0, count: n * d)
            for i in 0..<n {
                for j in 0..<n {
                    let dd = d2[i * n + j]
                    var k = 0.0, kp = 0.0
                    for m in bandwidthMultipliers {
                        let e = exp(-dd / (m * base))
                        k += e
                        kp -= e / (m * base)
                    }
                    let c = coef(i, j)
                    value += c * k
                    if i != j {
                        // ∂/∂z_i of Σ c_ij f(d²_ij) over both orderings = 4·c_ij·f'·(z_i − z_j).
                        let f = 4 * c * kp
                        for q in 0..<d { grad[i * d + q] += f * (z[i * d + q] - z[j * d + q]) }
                    }
                }
            }
            let gs = (0..<(ns * d)).map { Float(grad[$0]) }
            let gt = (0..<(nt * d)).map { Float(grad[ns * d + $0]) }
            return MMDResult(value: value, gradSource: gs, gradTarget: gt, bandwidth: base)
        }
    }
}
