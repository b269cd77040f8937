import WconvTensor

extension Op {
    public static let relu: Op = "relu"
    public static let relu6: Op = "relu6"
    /// attrs min, max (floats).
    public static let clip: Op = "clip"
    public static let silu: Op = "silu"
    /// attrs approximate: "none" | "tanh".
    public static let gelu: Op = "gelu"
    /// x · relu6(x + 3) / 6 (PyTorch and ONNX agree).
    public static let hardSwish: Op = "hardSwish"
    /// max(0, min(1, alpha·x + beta)); attrs alpha, beta. When absent: PyTorch's 1/6 and 0.5
    /// (ONNX's defaults are 0.2 and 0.5, so builders always set them explicitly).
    public static let hardSigmoid: Op = "hardSigmoid"
    public static let sigmoid: Op = "sigmoid"
    public static let tanh: Op = "tanh"
    /// Identity in eval; attrs ratio.
    public static let dropout: Op = "dropout"
    public static let identity: Op = "identity"
}

/// Activations: one input, same shape (docs/adding-an-op.md).
public enum ActivationOps {
    static let schemas: [OpSchema] = [Op.relu, .relu6, .clip, .silu, .gelu, .hardSwish, .hardSigmoid, .sigmoid, .tanh, .dropout]
        .map { OpSchema($0) { a in [try a.need(0)] } } + [identity]

    static let identity = OpSchema(.identity, fold: { a in try a.reshaped(0) }) { a in [try a.need(0)] }
}
