import OrderedCollections
import WconvFormats
import WconvTensor

extension Op {
    /// inputs [x, weight, bias, running_mean, running_var]; attrs epsilon, momentum (PyTorch meaning).
    public static let batchNorm: Op = "batchNorm"
    /// Normalises over the trailing dims of `weight`'s shape. inputs [x, weight?, bias?]; attrs epsilon, axis.
    public static let layerNorm: Op = "layerNorm"
    /// softmax(x) and log(softmax(x)) (computed stably); attrs axis; flattenTo2d (0/1): ONNX opset
    /// < 13, where the input is flattened to 2-D at `axis` and the softmax runs over every dim from
    /// `axis` on.
    public static let softmax: Op = "softmax", logSoftmax: Op = "logSoftmax"
    /// Per (sample, channel) normalisation over the spatial dims, then a per-channel affine.
    /// inputs [x (N, C, …), scale (C), bias (C)]; attrs epsilon (1e-5).
    public static let instanceNorm: Op = "instanceNorm"
    /// Normalisation over groups of channels (and the spatial dims), then a per-channel affine.
    /// inputs [x (N, C, …), scale, bias]: per channel (C), or per group (G) as ONNX opset 18 has them;
    /// attrs groups, epsilon (1e-5).
    public static let groupNorm: Op = "groupNorm"
}

/// Normalisations and softmax (docs/adding-an-op.md).
public enum NormalizationOps {
    static let schemas: [OpSchema] = [batchNorm, layerNorm, softmax, logSoftmax, instanceNorm, groupNorm]

    /// Softmax and LogSoftmax at any opset: before 13 the default axis is 1 and the input is
    /// flattened to 2-D at the axis.
    static func importSoftmax(_ op: Op) -> ONNXImporter {
        { ctx, n in
            var attrs: [String: AttributeValue] = ["axis": .int(n.int("axis") ?? (ctx.opset < 13 ? 1 : -1))]
            if ctx.opset < 13 { attrs["flattenTo2d"] = .int(1) }
            ctx.emit(n, op, inputs: [n.inputs[0]], outputs: [n.outputs[0]], attrs)
        }
    }

    /// Softmax/LogSoftmax at opset 17; opset < 13's flattening at a non-last axis is spelled
    /// Flatten(axis) → op over the last axis → Reshape back to the input's shape.
    static func exportSoftmax(_ opType: String) -> ONNXExporter {
        { e, n in
            let x = n.inputs[0], y = n.outputs[0], r = e.rank(x)
            var axis = n.int("axis") ?? -1
            if axis < 0, let r { axis += r }
            guard (n.int("flattenTo2d") ?? 0) == 1, let r, axis != r - 1 else {
                e.add(opType, n.name, [x], [y], ["axis": .int(n.int("axis") ?? -1)], rank: r)
                return
            }
            let flat = e.fresh(n.name + ".flat"), soft = e.fresh(n.name + ".flatOut"), shape = e.fresh(n.name + ".shape")
            e.add("Flatten", flat, [x], [flat], ["axis": .int(axis)], rank: 2)
            e.add(opType, soft, [flat], [soft], ["axis": .int(-1)], rank: 2)
            e.add("Shape", shape, [x], [shape], rank: 1)
            e.add("Reshape", n.name, [soft, shape], [y], rank: r)
        }
    }

    static let logSoftmax = OpSchema(.logSoftmax, onnx: ["LogSoftmax": importSoftmax(.logSoftmax)], onnxExport: exportSoftmax("LogSoftmax")) { a in
        let x = try a.need(0)
        _ = try a.axis(a.int("axis") ?? -1, rank: x.count)
        return [x]
    }

    /// Shape rule of instance and group normalisation: scale and bias per channel (or per group).
    static func channelNorm(_ a: ShapeArgs, groups: Int) throws -> [[Int]] {
        let x = try a.need(0)
        guard x.count >= 2 else { throw a.fail("expects N, C and optional spatial dims") }
        guard groups >= 1, x[1] % groups == 0 else { throw a.fail("\(x[1]) channels do not split into \(groups) groups") }
        for i in 1...2 {
            let s = try a.need(i)
            guard s.count == 1, s[0] == x[1] || s[0] == groups else {
                throw a.fail("\(i == 1 ? "scale" : "bias") \(s) should be [\(x[1])] (per channel)\(groups > 1 ? " or [\(groups)] (per group)" : "")")
            }
        }
        return [x]
    }

    static let instanceNorm = OpSchema(.instanceNorm, onnx: ["InstanceNormalization": { ctx, n in
        ctx.emit(n, .instanceNorm, inputs: Array(n.inputs.prefix(3)), outputs: [n.outputs[0]], ["epsilon": .float(Double(n.float("epsilon") ?? 1e-5))])
    }], onnxExport: { e, n in
        e.add("InstanceNormalization", n.name, n.inputs, [n.outputs[0]], ["epsilon": .float(Float(n.float("epsilon") ?? 1e-5))], rank: e.rank(n.inputs[0]))
    }) { a in try channelNorm(a, groups: 1) }

    static let groupNorm = OpSchema(.groupNorm, onnx: ["GroupNormalization": { ctx, n in
        guard let g = n.int("num_groups") else { ctx.unsupported.append(ctx.unsupportedNode(n, "no num_groups")); return }
        ctx.emit(n, .groupNorm, inputs: Array(n.inputs.prefix(3)), outputs: [n.outputs[0]],
                 ["groups": .int(g), "epsilon": .float(Double(n.float("epsilon") ?? 1e-5))])
    }], onnxExport: exportGroupNorm) { a in try channelNorm(a, groups: a.int("groups") ?? 1) }

    /// GroupNormalization is opset 18 (per-group affine) / 21 (per-channel); opset 17 spells it as
    /// InstanceNormalization over [N, G, −1] and the affine per group on that view, or per channel
    /// after reshaping back to the input's shape.
    static func exportGroupNorm(_ e: inout ONNXExportContext, _ n: GraphNode) {
        let x = n.inputs[0], groups = n.int("groups") ?? 1
        guard let r = e.rank(x), r >= 2, let scale = e.graph.parameters[n.inputs[1]], scale.rank == 1 else {
            e.problems.append("\(n.name) (groupNorm): needs the input's rank and a constant scale"); return
        }
        // A scale of G values is per group (with G = C both readings agree).
        let perGroup = scale.numel == groups
        let grouped = e.fresh(n.name + ".grouped"), normed = e.fresh(n.name + ".normed"), shape = e.fresh(n.name + ".shape")
        e.add("Reshape", grouped, [x, e.ints(n.name + ".groupShape", [0, groups, -1])], [grouped], rank: 3)
        e.add("InstanceNormalization", normed, [grouped, e.constant(n.name + ".ones", Tensor(shape: [groups], floats: [Float](repeating: 1, count: groups))),
                                                e.constant(n.name + ".zeros", Tensor(shape: [groups], floats: [Float](repeating: 0, count: groups)))],
              [normed], ["epsilon": .float(Float(n.float("epsilon") ?? 1e-5))], rank: 3)
        e.add("Shape", shape, [x], [shape], rank: 1)
        let affineShape = e.ints(n.name + ".affineShape", perGroup ? [groups, 1] : [scale.numel] + [Int](repeating: 1, count: r - 2))
        let s = e.fresh(n.name + ".scale"), b = e.fresh(n.name + ".bias"), scaled = e.fresh(n.name + ".scaled")
        e.add("Reshape", s, [n.inputs[1], affineShape], [s], rank: nil)
        e.add("Reshape", b, [n.inputs[2], affineShape], [b], rank: nil)
        if perGroup {
            let shifted = e.fresh(n.name + ".shifted")
            e.add("Mul", scaled, [normed, s], [scaled], rank: 3)
            e.add("Add", shifted, [scaled, b], [shifted], rank: 3)
            e.add("Reshape", n.name, [shifted, shape], [n.outputs[0]], rank: r)
        } else {
            let back = e.fresh(n.name + ".back")
            e.add("Reshape", back, [normed, shape], [back], rank: r)
            e.add("Mul", scaled, [back, s], [scaled], rank: r)
            e.add("Add", n.name, [scaled, b], [n.outputs[0]], rank: r)
        }
    }

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

    static let softmax = OpSchema(.softmax, onnx: ["Softmax": importSoftmax(.softmax)], onnxExport: exportSoftmax("Softmax")) { a in
        let x = try a.need(0)
        _ = try a.axis(a.int("axis") ?? -1, rank: x.count)
        return [x]
    }
}
