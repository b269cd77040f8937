import WconvTensor

/// torch.nn.utils.clip_grad_norm_ (what transformers.Trainer applies with max_grad_norm 1.0): when
/// the L2 norm of all gradients together exceeds `maxNorm`, every gradient is scaled by
/// maxNorm / (norm + 1e-6).
public enum GradientClipping {
    /// The global L2 norm of `gradients`: per-tensor norms in f32 (as torch's foreach norm), then the
    /// norm of those.
    public static func norm(_ gradients: [String: Tensor]) -> Float {
        norm(gradients.keys, { name, body in gradients[name]!.floats().withUnsafeBufferPointer(body) })
    }

    public static func clip(_ gradients: [String: Tensor], maxNorm: Double) -> [String: Tensor] {
        guard let coef = coefficient(norm(gradients), maxNorm: maxNorm) else { return gradients }
        return gradients.mapValues { Tensor(shape: $0.shape, floats: $0.floats().map { $0 * coef }) }
    }

    /// The same clipping applied to the gradients a backward left in place (`names` are the
    /// parameters that have one); returns the norm before clipping.
    @discardableResult
    public static func clipInPlace(_ session: GradientAccess, names: some Collection<String>, maxNorm: Double) -> Float {
        let total = norm(names, { name, body in body(UnsafeBufferPointer(session.gradientBuffer(named: name)!)) })
        if let coef = coefficient(total, maxNorm: maxNorm) {
            // Names sharing one buffer (tied parameters) are scaled once.
            var scaled = Set<UnsafeMutablePointer<Float>>()
            for name in names {
                let g = session.gradientBuffer(named: name)!
                guard let base = g.baseAddress, scaled.insert(base).inserted else { continue }
                for i in g.indices { g[i] *= coef }
            }
        }
        return total
    }

    /// torch's clip_coef = max_norm / (total_norm + 1e-6), applied only when below 1.
    private static func coefficient(_ total: Float, maxNorm: Double) -> Float? {
        let coef = Float(maxNorm) / (total + 1e-6)
        return coef < 1 ? coef : nil
    }

    private static func norm(_ names: some Collection<String>, _ values: (String, (UnsafeBufferPointer<Float>) -> Float) -> Float) -> Float {
        var sum: Float = 0
        // Sorted names: a fixed summation order, so runs repeat bit for bit.
        for name in names.sorted() {
            let n = values(name) { $0.reduce(Float(0)) { $0 + $1 * $1 } }.squareRoot()
            sum += n * n
        }
        return sum.squareRoot()
    }
}
