/// The canonical op vocabulary and its attribute conventions. Inputs in brackets are parameters
/// (names in `ModelGraph.parameters`) or other values; `?` marks optional inputs ("" when absent).
/// Spatial attributes are (height, width); `pads` is [top, left, bottom, right] so asymmetric
/// 'same' padding stays exact.
extension Op {
    /// inputs [x, weight(O, I/group, kH, kW), bias?]; attrs strides, pads, dilations, group.
    public static let conv2d: Op = "conv2d"
    /// inputs [x, weight, bias, running_mean, running_var]; attrs epsilon, momentum (PyTorch meaning).
    public static let batchNorm: Op = "batchNorm"
    /// y = x·Wᵀ + b over the last dim. inputs [x, weight(out, in), bias?].
    public static let linear: Op = "linear"
    /// Batched matrix product with numpy broadcasting. inputs [a, b].
    public static let matmul: Op = "matmul"
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
    /// attrs kernel, strides, pads, dilations, ceilMode (0/1).
    public static let maxPool2d: Op = "maxPool2d"
    /// attrs kernel, strides, pads, ceilMode, countIncludePad (0/1).
    public static let avgPool2d: Op = "avgPool2d"
    /// attrs outputSize [h, w].
    public static let adaptiveAvgPool2d: Op = "adaptiveAvgPool2d"
    /// Mean over H and W; attrs keepdims (0/1).
    public static let globalAvgPool: Op = "globalAvgPool"
    /// Elementwise with numpy broadcasting; inputs may be parameters (constants).
    public static let add: Op = "add"
    public static let sub: Op = "sub"
    public static let mul: Op = "mul"
    public static let div: Op = "div"
    /// attrs axis.
    public static let concat: Op = "concat"
    /// Flattens dims axis..<rank into one (torch.flatten(x, axis)); attrs axis.
    public static let flatten: Op = "flatten"
    /// attrs shape (0 copies the input dim, -1 is inferred, as ONNX Reshape).
    public static let reshape: Op = "reshape"
    /// attrs perm.
    public static let transpose: Op = "transpose"
    /// Identity in eval; attrs ratio.
    public static let dropout: Op = "dropout"
    public static let identity: Op = "identity"
    /// Normalises over the trailing dims of `weight`'s shape. inputs [x, weight?, bias?]; attrs epsilon, axis.
    public static let layerNorm: Op = "layerNorm"
    /// inputs [indices(int), weight(V, D)].
    public static let embedding: Op = "embedding"
    /// inputs [data, indices]; attrs axis (ONNX Gather).
    public static let gather: Op = "gather"
    /// attrs axis.
    public static let softmax: Op = "softmax"
    /// attrs pads [begin..., end...] over all dims, mode "constant", value.
    public static let pad: Op = "pad"
}
