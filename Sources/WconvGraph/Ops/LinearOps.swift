import WconvTensor

extension Op {
    /// y = x·Wᵀ + b over the last dim. inputs [x, weight(out, in), bias?].
    public static let linear: Op = "linear"
    /// Batched matrix product with numpy broadcasting. inputs [a, b].
    public static let matmul: Op = "matmul"
}

/// Linear layers and matrix products (docs/adding-an-op.md).
public enum LinearOps {
    static let schemas: [OpSchema] = [linear, matmul]

    static let linear = OpSchema(.linear) { a in
        let x = try a.need(0), w = try a.need(1)
        guard w.count == 2, let last = x.last, last == w[1] else {
            throw a.fail("weight \(w) expects \(w.count == 2 ? w[1] : -1) input features but the input's last dim is \(x.last.map(String.init) ?? "missing")")
        }
        if let b = a.optional(2), b != [w[0]] { throw a.fail("bias shape \(b) should be [\(w[0])]") }
        return [Array(x.dropLast()) + [w[0]]]
    }

    static let matmul = OpSchema(.matmul) { a in
        var x = try a.need(0), y = try a.need(1)
        guard !x.isEmpty, !y.isEmpty else { throw a.fail("scalars cannot be multiplied as matrices") }
        let xVec = x.count == 1, yVec = y.count == 1
        if xVec { x = [1] + x }
        if yVec { y = y + [1] }
        guard x[x.count - 1] == y[y.count - 2] else { throw a.fail("inner dims differ: \(x[x.count - 1]) vs \(y[y.count - 2])") }
        guard let batch = ShapeInference.broadcast(Array(x.dropLast(2)), Array(y.dropLast(2))) else {
            throw a.fail("batch dims do not broadcast")
        }
        var out = batch
        if !xVec { out.append(x[x.count - 2]) }
        if !yVec { out.append(y[y.count - 1]) }
        return [out]
    }
}
