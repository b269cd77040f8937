import WconvTensor

extension Op {
    /// The shape of the input as an i64 vector; attrs start, end (optional).
    public static let shape: Op = "shape"
    /// inputs [shape(i64)?]; attrs shape once known, value (float), dtype.
    public static let constantOfShape: Op = "constantOfShape"
    /// ONNX Range. inputs [start, limit, delta] until known; attrs start, limit, delta (floats), dtype.
    public static let range: Op = "range"
    /// Integer ramp over one axis of `x`: output i64, shape [x.shape[axis]], value[i] = start + i·step.
    /// inputs [x] (only its shape is read); attrs axis (int, negative counts from the end),
    /// start (int, default 0), step (int, default 1). BERT uses it for position ids (start 0, step 1)
    /// and for all-zero token-type ids (step 0).
    public static let arange: Op = "arange"
}

/// Ops whose values follow from shapes and attributes (docs/adding-an-op.md): they fold as soon as
/// the input shapes are known.
public enum ShapeValueOps {
    static let schemas: [OpSchema] = [shape, constantOfShape, range, arange]

    /// ONNX Shape's [start, end) clamped to the rank.
    public static func shapeRange(_ node: GraphNode, rank: Int) -> (Int, Int) {
        var s = node.int("start") ?? 0, e = node.int("end") ?? rank
        if s < 0 { s += rank }
        if e < 0 { e += rank }
        s = min(max(s, 0), rank)
        e = min(max(e, s), rank)
        return (s, e)
    }

    static let shape = OpSchema(.shape, dtype: .fixed(.i64), fold: { a in
        guard let x = a.shapes.first ?? nil else { return nil }
        let (s, e) = shapeRange(a.node, rank: x.count)
        return a.out(ints: Array(x[s..<e]))
    }, foldsFromShapes: true) { a in
        let x = try a.need(0)
        let (s, e) = shapeRange(a.node, rank: x.count)
        return [[e - s]]
    }

    static let constantOfShape = OpSchema(.constantOfShape, valueInputs: [ValueInput(0, "shape")], dtype: .attribute("dtype"), fold: { a in
        let count = a.outShape.reduce(1, *), v = a.node.float("value") ?? 0
        return a.outDType.isFloatingPoint ? a.out(doubles: [Double](repeating: v, count: count))
            : a.out(ints: [Int](repeating: Int(clamping: v), count: count))
    }) { a in [try a.bounded(try a.valueAttr("shape", input: 0))] }

    /// Number of elements of ONNX Range: max(ceil((limit - start) / delta), 0).
    public static func rangeCount(start: Double, limit: Double, delta: Double) -> Int {
        let n = ((limit - start) / delta).rounded(.up)
        guard n.isFinite, n > 0 else { return 0 }
        return Int(min(n, Double(1 << 40)))
    }

    static let rangeDType = DTypeRule { node, ins in
        if let d = ins.first ?? nil { return [d] }
        if let s = node.string("dtype"), let d = DType(rawValue: s) { return [d] }
        let integral = [node.float("start"), node.float("delta")].allSatisfy { $0.map { $0 == $0.rounded() } ?? false }
        return [integral ? .i64 : .f32]
    }

    static let range = OpSchema(.range, valueInputs: [ValueInput(0, "start", .scalar(recordsDType: true)), ValueInput(1, "limit", .scalar(recordsDType: true)),
                                                      ValueInput(2, "delta", .scalar(recordsDType: true))],
                                dtype: rangeDType, fold: { a in
        guard let s = a.node.float("start"), let d = a.node.float("delta") else { return nil }
        let n = a.outShape[0]
        if !a.outDType.isFloatingPoint, s == s.rounded(), d == d.rounded(), Swift.abs(s) < 1e15, Swift.abs(d) < 1e12 {
            return a.out(ints: (0..<n).map { Int(s) + $0 * Int(d) })
        }
        return a.out(doubles: (0..<n).map { s + Double($0) * d })
    }) { a in
        guard let start = a.node.float("start"), let limit = a.node.float("limit"), let delta = a.node.float("delta") else {
            throw a.fail("start, limit and delta are computed from input data at run time; wconv needs them known once the input shapes are known")
        }
        guard delta != 0, start.isFinite, limit.isFinite, delta.isFinite else { throw a.fail("delta must be non-zero and the bounds finite") }
        return [try a.bounded([rangeCount(start: start, limit: limit, delta: delta)])]
    }

    static let arange = OpSchema(.arange, dtype: .fixed(.i64), fold: { a in
        let start = a.node.int("start") ?? 0, step = a.node.int("step") ?? 1
        return a.out(ints: (0..<a.outShape[0]).map { start + $0 * step })
    }, foldsFromShapes: true) { a in
        let x = try a.need(0)
        let ax = try a.axis(a.int("axis") ?? 0, rank: x.count)
        return [[x[ax]]]
    }
}
