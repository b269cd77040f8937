import WconvTensor

/// torch.nn.utils.clip_grad_norm_ (what transformers.Trainer applies with max_grad_norm 1.0): when
/// the L2 norm of all gradients together exceeds `maxNorm`, every gradient is scaled by
/// maxNorm / (norm + 1e-6).
public enum GradientClipping {
    /// The global L2 norm of `gradients`: per-tensor norms in f32 (as torch's foreach norm), then the
    /// norm of those.
    public static func norm(_ gradients: [String: Tensor]) -> Float {
        var sum: Float = 0
        // Sorted names: a fixed summation order, so runs repeat bit for bit.
        for name in gradients.keys.sorted() {
            let n = gradients[name]!.floats().reduce(Float(0)) { $0 + $1 * $1 }.squareRoot()
            sum += n * n
        }
        return sum.squareRoot()
    }

    public static func clip(_ gradients: [String: Tensor], maxNorm: Double) -> [String: Tensor] {
        let total = norm(gradients)
        let coef = Float(maxNorm) / (total + 1e-6)
        guard coef < 1 else { return gradients }
        return gradients.mapValues { Tensor(shape: $0.shape, floats: $0.floats().map { $0 * coef }) }
    }
}
