import WconvTensor

/// Keras ↔ canonical (PyTorch) weight layouts, and the 'same' padding split. Each import transform
/// is recorded as a `LayoutTransform` so export applies the exact inverse:
/// - `permute` with `perm` (new dim i = source dim perm[i]): Conv2D HWIO → OIHW is [3, 2, 0, 1],
///   Dense (in, out) → (out, in) is [1, 0].
/// - `keras-depthwise`: (kh, kw, C, M) → permute [2, 3, 0, 1] → (C, M, kh, kw) → reshape (C·M, 1, kh, kw);
///   output channel c·M + m, as PyTorch's grouped conv with groups = C orders them.
/// - `reshape`: the values are unchanged, only the shape (a per-channel constant made (C, 1, 1)).
public enum KerasLayouts {
    public static let convPerm = [3, 2, 0, 1]
    public static let densePerm = [1, 0]
    public static let depthwiseKind = "keras-depthwise"

    /// The f32 values of `t` permuted (new dim i = old dim perm[i]), contiguous.
    public static func permute(_ t: Tensor, _ perm: [Int]) throws -> Tensor {
        guard perm.count == t.rank, Set(perm) == Set(0..<t.rank) else {
            throw WconvError.invalid("cannot permute a \(t.shape) tensor by \(perm)")
        }
        let src = t.dtype == .f32 ? t.contiguous() : t.converted(to: .f32).tensor
        let inShape = src.shape
        let outShape = perm.map { inShape[$0] }
        let inStrides = Tensor.contiguousStrides(inShape)
        // Source stride for each output dim; iterate the output in C order.
        let s = perm.map { inStrides[$0] }
        // Ranks above 4 (rare) take the strided view's copy; ranks 0…4 the loop nest below.
        if outShape.count > 4 {
            return try Tensor(dtype: .f32, shape: outShape, strides: s, offset: src.offset, storage: src.storage).contiguous()
        }
        let out = Storage(zeroedByteCount: src.numel * 4)
        let n = src.numel
        if n > 0 {
            let dst = out.mutableBytes!.bindMemory(to: Float.self, capacity: n)
            src.withContiguousBytes { raw in
                let p = raw.bindMemory(to: Float.self).baseAddress!
                // Pad to rank 4 so one loop nest covers ranks 0…4.
                let pad = 4 - outShape.count
                let d = [Int](repeating: 1, count: pad) + outShape
                let st = [Int](repeating: 0, count: pad) + s
                var k = 0
                for a in 0..<d[0] {
                    for b in 0..<d[1] {
                        for c in 0..<d[2] {
                            let base = a * st[0] + b * st[1] + c * st[2]
                            for e in 0..<d[3] {
                                dst[k] = p[base + e * st[3]]
                                k += 1
                            }
                        }
                    }
                }
            }
        }
        return try Tensor(dtype: .f32, shape: outShape, storage: out)
    }

    /// The inverse permutation: applying `perm` then `inverse(perm)` is the identity.
    public static func inverse(_ perm: [Int]) -> [Int] {
        var inv = [Int](repeating: 0, count: perm.count)
        for (i, p) in perm.enumerated() { inv[p] = i }
        return inv
    }

    /// The same values with another shape (f32, contiguous).
    public static func reshaped(_ t: Tensor, _ shape: [Int]) throws -> Tensor {
        let c = t.dtype == .f32 ? t.contiguous() : t.converted(to: .f32).tensor
        guard try Tensor.checkedNumel(shape) == c.numel else {
            throw WconvError.invalid("cannot reshape \(t.shape) to \(shape)")
        }
        return try Tensor(dtype: .f32, shape: shape, strides: nil, offset: c.offset, storage: c.storage)
    }

    /// Applies an import transform (Keras layout → canonical).
    public static func toCanonical(_ t: Tensor, _ tr: LayoutTransform) throws -> Tensor {
        switch tr.kind {
        case "permute":
            return try permute(t, tr.perm ?? [])
        case depthwiseKind:
            let p = try permute(t, [2, 3, 0, 1])  // (C, M, kh, kw)
            return try reshaped(p, [p.shape[0] * p.shape[1], 1, p.shape[2], p.shape[3]])
        case "reshape":
            return t
        default:
            throw WconvError.invalid("unknown layout transform '\(tr.kind)'")
        }
    }

    /// Inverts an import transform (canonical → Keras layout), checking the result's shape.
    public static func toSource(_ t: Tensor, _ tr: LayoutTransform, name: String) throws -> Tensor {
        let out: Tensor
        switch tr.kind {
        case "permute":
            out = try permute(t, inverse(tr.perm ?? []))
        case depthwiseKind:
            guard tr.sourceShape.count == 4 else { throw WconvError.invalid("'\(name)': bad depthwise source shape \(tr.sourceShape)") }
            let (kh, kw, c, m) = (tr.sourceShape[0], tr.sourceShape[1], tr.sourceShape[2], tr.sourceShape[3])
            let cmhw = try reshaped(t, [c, m, kh, kw])
            out = try permute(cmhw, [2, 3, 0, 1])
        case "reshape":
            out = try reshaped(t, tr.sourceShape)
        default:
            throw WconvError.invalid("'\(name)': unknown layout transform '\(tr.kind)'")
        }
        guard out.shape == tr.sourceShape else {
            throw WconvError.invalid("'\(name)' has shape \(t.shape), which does not invert to its recorded source shape \(tr.sourceShape)")
        }
        return out
    }

    /// TensorFlow/Keras 'same' padding along one dim: (before, after). The odd pixel goes after
    /// (bottom/right), as ONNX SAME_UPPER. With an unknown input size the size is assumed to be a
    /// multiple of the stride (exact for stride 1).
    public static func samePadding(input: Int?, kernel: Int, stride: Int, dilation: Int) -> (Int, Int) {
        let effective = (kernel - 1) * dilation + 1
        let total: Int
        if let n = input {
            let out = (n + stride - 1) / stride
            total = max((out - 1) * stride + effective - n, 0)
        } else {
            total = max(effective - stride, 0)
        }
        return (total / 2, total - total / 2)
    }

    /// Output size of a conv/pool along one dim.
    public static func outputSize(input: Int?, kernel: Int, stride: Int, dilation: Int, same: Bool) -> Int? {
        guard let n = input else { return nil }
        if same { return (n + stride - 1) / stride }
        let effective = (kernel - 1) * dilation + 1
        return n >= effective ? (n - effective) / stride + 1 : 0
    }
}
