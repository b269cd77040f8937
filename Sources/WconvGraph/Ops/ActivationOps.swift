import OrderedCollections
import WconvFormats
import WconvTensor

extension Op {
    /// One input, the same shape; the function its name says (PyTorch and ONNX agree).
    public static let relu: Op = "relu", relu6: Op = "relu6", silu: Op = "silu", sigmoid: Op = "sigmoid", tanh: Op = "tanh"
    /// attrs min, max (floats; absent: unbounded). inputs [x] or, while a bound is computed at run
    /// time, [x, min?, max?] with scalar bounds read when the step runs.
    public static let clip: Op = "clip"
    /// x ≥ 0 ? x : alpha·x; attrs alpha (ONNX default 0.01).
    public static let leakyRelu: Op = "leakyRelu"
    /// x · tanh(softplus(x)).
    public static let mish: Op = "mish"
    /// x ≥ 0 ? x : slope·x. inputs [x, slope] with slope broadcast to x (ONNX's unidirectional
    /// broadcasting; PyTorch's (C) slope arrives as (C, 1, 1)).
    public static let prelu: Op = "prelu"
    /// attrs approximate: "none" | "tanh".
    public static let gelu: Op = "gelu"
    /// x · relu6(x + 3) / 6 (PyTorch and ONNX agree).
    public static let hardSwish: Op = "hardSwish"
    /// max(0, min(1, alpha·x + beta)); attrs alpha, beta. When absent: PyTorch's 1/6 and 0.5
    /// (ONNX's defaults are 0.2 and 0.5, so builders always set them explicitly).
    public static let hardSigmoid: Op = "hardSigmoid"
    /// Identity in eval; attrs ratio.
    public static let dropout: Op = "dropout"
    public static let identity: Op = "identity"
}

/// Activations: one input, same shape (docs/adding-an-op.md).
public enum ActivationOps {
    static let schemas: [OpSchema] = [Op.relu, .relu6, .silu, .gelu, .hardSwish, .hardSigmoid, .sigmoid, .tanh, .dropout]
        .map { OpSchema($0) { a in [try a.need(0)] } } + [identity, clip, leakyRelu, mish, prelu]

    static let clip = OpSchema(.clip, valueInputs: [ValueInput(1, "min", .scalar(recordsDType: false)), ValueInput(2, "max", .scalar(recordsDType: false))],
                               onnxExport: { e, n in
        // Bounds still tensors stay inputs; known ones become scalar initializers.
        let x = n.inputs[0]
        let lo = n.inputs.count > 1 && !n.inputs[1].isEmpty ? n.inputs[1] : n.float("min").map { e.scalar(n.name + ".min", $0) } ?? ""
        let hi = n.inputs.count > 2 && !n.inputs[2].isEmpty ? n.inputs[2] : n.float("max").map { e.scalar(n.name + ".max", $0) } ?? ""
        e.add("Clip", n.name, hi.isEmpty ? (lo.isEmpty ? [x] : [x, lo]) : [x, lo, hi], [n.outputs[0]], rank: e.rank(x))
    }) { a in
        let x = try a.need(0)
        for i in 1...2 { if let s = a.optional(i), s.reduce(1, *) != 1 { throw a.fail("bound \(s) must be a scalar") } }
        return [x]
    }

    static let leakyRelu = OpSchema(.leakyRelu, onnx: ["LeakyRelu": { ctx, n in
        ctx.emit(n, .leakyRelu, inputs: [n.inputs[0]], outputs: [n.outputs[0]], ["alpha": .float(Double(n.float("alpha") ?? 0.01))])
    }], onnxExport: { e, n in
        e.add("LeakyRelu", n.name, [n.inputs[0]], [n.outputs[0]], ["alpha": .float(Float(n.float("alpha") ?? 0.01))], rank: e.rank(n.inputs[0]))
    }) { a in [try a.need(0)] }

    static let mish = OpSchema(.mish, onnx: ["Mish": { ctx, n in
        ctx.emit(n, .mish, inputs: [n.inputs[0]], outputs: [n.outputs[0]])
    }], onnxExport: { e, n in
        // Mish is opset 18; opset 17 spells it x · tanh(log(exp(x) + 1)).
        let x = n.inputs[0], r = e.rank(x)
        let ex = e.fresh(n.name + ".exp"), p1 = e.fresh(n.name + ".plus1"), sp = e.fresh(n.name + ".softplus"), th = e.fresh(n.name + ".tanh")
        e.add("Exp", ex, [x], [ex], rank: r)
        e.add("Add", p1, [ex, e.scalar(n.name + ".one", 1)], [p1], rank: r)
        e.add("Log", sp, [p1], [sp], rank: r)
        e.add("Tanh", th, [sp], [th], rank: r)
        e.add("Mul", n.name, [x, th], [n.outputs[0]], rank: r)
    }) { a in [try a.need(0)] }

    static let prelu = OpSchema(.prelu, onnx: ["PRelu": { ctx, n in
        ctx.emit(n, .prelu, inputs: Array(n.inputs.prefix(2)), outputs: [n.outputs[0]])
    }], onnxExport: { e, n in
        e.add("PRelu", n.name, n.inputs, [n.outputs[0]], rank: e.rank(n.inputs[0]))
    }) { a in
        let x = try a.need(0), slope = try a.need(1)
        guard ShapeInference.broadcast(x, slope) == x else { throw a.fail("slope \(slope) does not broadcast to the input \(x)") }
        return [x]
    }

    static let identity = OpSchema(.identity, fold: { a in try a.reshaped(0) }) { a in [try a.need(0)] }
}
