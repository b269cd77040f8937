import WconvTensor

extension Op {
    /// attrs axes, keepdims (0/1). Axes empty means all dims. inputs [x, axes?] until known.
    public static let reduceMean: Op = "reduceMean", reduceSum: Op = "reduceSum", reduceMax: Op = "reduceMax"
    /// attrs axis (0), keepdims (1), selectLastIndex (0: the first of equal maxima). Output i64.
    public static let argMax: Op = "argMax"
    /// As argMax, for the minimum (ONNX ArgMin).
    public static let argMin: Op = "argMin"
}

/// Reductions (docs/adding-an-op.md).
public enum ReductionOps {
    static let schemas: [OpSchema] = [reduce(.reduceMean), reduce(.reduceSum), reduce(.reduceMax), argReduce(.argMax, "ArgMax"), argReduce(.argMin, "ArgMin")]

    /// Normalised, sorted reduce axes; empty `axes` means every dim.
    public static func reducedAxes(_ node: GraphNode, rank: Int) throws -> [Int] {
        let axes = node.ints("axes") ?? []
        if axes.isEmpty { return Array(0..<rank) }
        var out: [Int] = []
        for a in axes {
            let r = a < 0 ? a + rank : a
            guard r >= 0 && r < rank else { throw WconvError.invalid("node '\(node.name)' (op \(node.op)): axis \(a) is out of range for rank \(rank)") }
            if !out.contains(r) { out.append(r) }
        }
        return out.sorted()
    }

    static func reduce(_ op: Op) -> OpSchema {
        OpSchema(op, valueInputs: [ValueInput(1, "axes")]) { a in
            let x = try a.need(0)
            let axes = try reducedAxes(a.node, rank: x.count)
            let keep = (a.int("keepdims") ?? 1) != 0
            var out: [Int] = []
            for (i, d) in x.enumerated() {
                if axes.contains(i) { if keep { out.append(1) } } else { out.append(d) }
            }
            return [out]
        }
    }

    static func argReduce(_ op: Op, _ onnxType: String) -> OpSchema {
        OpSchema(op, dtype: .fixed(.i64), onnx: [onnxType: { ctx, n in
            ctx.emit(n, op, inputs: [n.inputs[0]], outputs: [n.outputs[0]], ["axis": .int(n.int("axis") ?? 0), "keepdims": .int(n.int("keepdims") ?? 1),
                                                                              "selectLastIndex": .int(n.int("select_last_index") ?? 0)])
        }], onnxExport: { e, n in
            e.add(onnxType, n.name, [n.inputs[0]], [n.outputs[0]], ["axis": .int(n.int("axis") ?? 0), "keepdims": .int(n.int("keepdims") ?? 1),
                                                                    "select_last_index": .int(n.int("selectLastIndex") ?? 0)],
                  rank: e.rank(n.inputs[0]).map { (n.int("keepdims") ?? 1) == 1 ? $0 : $0 - 1 })
        }) { a in
            let x = try a.need(0)
            let ax = try a.axis(a.int("axis") ?? 0, rank: x.count)
            var out = x
            if (a.int("keepdims") ?? 1) != 0 { out[ax] = 1 } else { out.remove(at: ax) }
            return [out]
        }
    }
}
