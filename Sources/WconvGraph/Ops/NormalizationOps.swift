import WconvTensor

extension Op {
    /// inputs [x, weight, bias, running_mean, running_var]; attrs epsilon, momentum (PyTorch meaning).
    public static let batchNorm: Op = "batchNorm"
    /// Normalises over the trailing dims of `weight`'s shape. inputs [x, weight?, bias?]; attrs epsilon, axis.
    public static let layerNorm: Op = "layerNorm"
    /// attrs axis.
    public static let softmax: Op = "softmax"
}

/// Normalisations and softmax (docs/adding-an-op.md).
public enum NormalizationOps {
    static let schemas: [OpSchema] = [batchNorm, layerNorm, softmax]

    static let batchNorm = OpSchema(.batchNorm) { a in
        let x = try a.need(0)
        guard x.count >= 2 else { throw a.fail("expects at least 2 dims (N, C, …)") }
        for i in 1..<5 {
            if let s = a.optional(i), s != [x[1]] {
                throw a.fail("parameter \(a.node.inputs[i]) has shape \(s), expected [\(x[1])] for \(x[1]) channels")
            }
        }
        guard a.optional(3) != nil, a.optional(4) != nil else { throw a.fail("needs running_mean and running_var inputs") }
        return [x]
    }

    static let layerNorm = OpSchema(.layerNorm) { a in
        let x = try a.need(0)
        if let w = a.optional(1) {
            guard w.count <= x.count, Array(x.suffix(w.count)) == w else {
                throw a.fail("weight \(w) does not match the trailing dims of the input")
            }
            if let b = a.optional(2), b != w { throw a.fail("bias \(b) differs from weight \(w)") }
        }
        _ = try a.axis(a.int("axis") ?? -1, rank: x.count)
        return [x]
    }

    static let softmax = OpSchema(.softmax) { a in
        let x = try a.need(0)
        _ = try a.axis(a.int("axis") ?? -1, rank: x.count)
        return [x]
    }
}
