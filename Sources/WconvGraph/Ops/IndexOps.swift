import WconvFormats
import WconvTensor

extension Op {
    /// ONNX OneHot. inputs [indices, depth?, values] (depth moves into attribute `depth` once
    /// known; values [off, on] is read when the step runs); attrs axis (default -1), depth.
    /// Output: indices' shape with a `depth` dim inserted at `axis`, dtype of values. Indices in
    /// [-depth, depth) (negative ones count from the end) select `on`; any other index gives a row of
    /// `off` (ONNX's rule, which onnxruntime follows); a non-integer or non-finite index is a
    /// run-time error naming the node and the value.
    public static let oneHot: Op = "oneHot"
    /// ONNX TopK. inputs [x, k?] (k moves into attribute `k`); attrs axis (-1), largest (1),
    /// sorted (1), k. Outputs values and indices (i64) with `k` along the axis. Ties keep the lower
    /// index first (onnxruntime's order); sorted = 0 gives the same (sorted) order, which ONNX allows.
    public static let topK: Op = "topK"
    /// ONNX CumSum. inputs [x, axis?] (axis moves into attribute `axis`, one int); attrs exclusive
    /// (0/1), reverse (0/1). Sums in Double, so integer values are exact below 2^24.
    public static let cumSum: Op = "cumSum"
}

/// Index and scan ops (docs/adding-an-op.md).
public enum IndexOps {
    static let schemas: [OpSchema] = [oneHot, topK, cumSum]

    /// OneHot's output axis and depth for an indices shape, shared by the shape rule and the kernel.
    public static func oneHotGeometry(_ node: GraphNode, indices: [Int], fail: (String) -> Error) throws -> (axis: Int, depth: Int) {
        guard let d = node.ints("depth")?.first else {
            throw fail("the depth (input 1) is computed from input data at run time; wconv needs it known once the input shapes are known")
        }
        guard d >= 1, d <= 1 << 24 else { throw fail("depth \(d) must be between 1 and 2^24") }
        let rank = indices.count + 1
        let a = node.int("axis") ?? -1
        let ax = a < 0 ? a + rank : a
        guard ax >= 0 && ax < rank else { throw fail("axis \(a) is out of range for an output of rank \(rank)") }
        return (ax, d)
    }

    static let oneHot = OpSchema(.oneHot, valueInputs: [ValueInput(1, "depth")], dtype: .input(2), onnx: ["OneHot": { ctx, n in
        guard n.inputs.count == 3 else { ctx.unsupported.append(ctx.unsupportedNode(n, "expects 3 inputs (indices, depth, values)")); return }
        ctx.emit(n, .oneHot, inputs: n.inputs, outputs: [n.outputs[0]], ["axis": .int(n.int("axis") ?? -1)])
    }], onnxExport: { e, n in
        let depth = n.ints("depth").map { e.constant(n.name + ".depth", ONNXReader.int64Tensor([$0.first ?? 0], shape: [])) } ?? (n.inputs.count > 1 ? n.inputs[1] : "")
        e.add("OneHot", n.name, [n.inputs[0], depth, n.inputs.count > 2 ? n.inputs[2] : ""], [n.outputs[0]],
              ["axis": .int(n.int("axis") ?? -1)], rank: e.rank(n.inputs[0]).map { $0 + 1 })
    }) { a in
        let idx = try a.need(0)
        if let v = a.optional(2), v.reduce(1, *) != 2 { throw a.fail("values \(v) must hold two values [off, on]") }
        if a.optional(2) == nil { throw a.fail("input 2 (values [off, on]) is required") }
        let g = try oneHotGeometry(a.node, indices: idx, fail: a.fail)
        var out = idx
        out.insert(g.depth, at: g.axis)
        return [try a.bounded(out)]
    }

    /// TopK's axis and k for an input shape, shared by the shape rule and the kernel.
    public static func topKGeometry(_ node: GraphNode, _ x: [Int], fail: (String) -> Error) throws -> (axis: Int, k: Int) {
        guard let k = node.ints("k")?.first else {
            throw fail("k (input 1) is computed from input data at run time; wconv needs it known once the input shapes are known")
        }
        let a = node.int("axis") ?? -1
        let ax = a < 0 ? a + x.count : a
        guard ax >= 0 && ax < x.count else { throw fail("axis \(a) is out of range for rank \(x.count)") }
        guard k >= 0, k <= x[ax] else { throw fail("k = \(k) must be between 0 and the axis size \(x[ax])") }
        return (ax, k)
    }

    static let topK = OpSchema(.topK, valueInputs: [ValueInput(1, "k")], dtype: DTypeRule { _, ins in [ins.first.flatMap { $0 } ?? .f32, .i64] },
                               onnx: ["TopK": { ctx, n in
        var attrs: [String: AttributeValue] = ["axis": .int(n.int("axis") ?? -1), "largest": .int(n.int("largest") ?? 1),
                                               "sorted": .int(n.int("sorted") ?? 1)]
        // Opset 1–9: k is an attribute.
        if ctx.opset < 10 { attrs["k"] = .ints([n.int("k") ?? 0]) }
        ctx.emit(n, .topK, inputs: ctx.opset < 10 ? [n.inputs[0]] : Array(n.inputs.prefix(2)), outputs: n.outputs, attrs)
    }], onnxExport: { e, n in
        let k = n.ints("k").map { e.ints(n.name + ".k", [$0.first ?? 0]) } ?? (n.inputs.count > 1 ? n.inputs[1] : "")
        e.add("TopK", n.name, [n.inputs[0], k], n.outputs, ["axis": .int(n.int("axis") ?? -1), "largest": .int(n.int("largest") ?? 1),
                                                            "sorted": .int(n.int("sorted") ?? 1)], rank: e.rank(n.inputs[0]))
    }) { a in
        let x = try a.need(0)
        let g = try topKGeometry(a.node, x, fail: a.fail)
        var out = x
        out[g.axis] = g.k
        return [out, out]
    }

    /// CumSum's axis for a rank, shared by the shape rule and the kernel.
    public static func cumSumAxis(_ node: GraphNode, rank: Int, fail: (String) -> Error) throws -> Int {
        guard let v = node.ints("axis"), v.count == 1 else {
            throw fail("the axis (input 1) is computed from input data at run time or is not one value; wconv needs one axis known once the input shapes are known")
        }
        let ax = v[0] < 0 ? v[0] + rank : v[0]
        guard ax >= 0 && ax < rank else { throw fail("axis \(v[0]) is out of range for rank \(rank)") }
        return ax
    }

    static let cumSum = OpSchema(.cumSum, valueInputs: [ValueInput(1, "axis")], onnx: ["CumSum": { ctx, n in
        guard n.inputs.count == 2 else { ctx.unsupported.append(ctx.unsupportedNode(n, "expects 2 inputs (x, axis)")); return }
        ctx.emit(n, .cumSum, inputs: n.inputs, outputs: [n.outputs[0]], ["exclusive": .int(n.int("exclusive") ?? 0), "reverse": .int(n.int("reverse") ?? 0)])
    }], onnxExport: { e, n in
        let axis = n.ints("axis").map { e.constant(n.name + ".axis", ONNXReader.int64Tensor([$0.first ?? 0], shape: [])) } ?? (n.inputs.count > 1 ? n.inputs[1] : "")
        e.add("CumSum", n.name, [n.inputs[0], axis], [n.outputs[0]], ["exclusive": .int(n.int("exclusive") ?? 0), "reverse": .int(n.int("reverse") ?? 0)],
              rank: e.rank(n.inputs[0]))
    }) { a in
        let x = try a.need(0)
        _ = try cumSumAxis(a.node, rank: x.count, fail: a.fail)
        return [x]
    }
}
