import WconvTensor

/// Shape rules for the ops the ONNX importer adds (ONNXOps.swift). Integer and bool values
/// (attention masks, ids, shape vectors) flow through the same rules as floats: shapes do not
/// depend on the element type. Ops whose output shape depends on input *values* (expand, tile,
/// constantOfShape, range) read those values from attributes, which the ONNX builder sets from
/// constant inputs; a value computed at run time cannot fix a static shape and is refused here.
extension ShapeInference {
    public static let onnxUnary: Set<Op> = [.erf, .sqrt, .exp, .log, .abs, .neg, .reciprocal, .not, .isNaN, .cast]
    public static let onnxBinary: Set<Op> = [.pow, .equal, .less, .lessOrEqual, .greater, .greaterOrEqual, .and, .or, .minimum, .maximum]
    /// Every op with a rule in this file.
    public static let onnxOps: Set<Op> = onnxUnary.union(onnxBinary).union(
        [.where, .reduceMean, .reduceSum, .reduceMax, .globalMaxPool, .unsqueeze, .squeeze, .split, .expand, .shape,
         .constantOfShape, .range, .tile, .gatherND, .argMax])

    /// Largest output (elements) an op whose shape comes from values in the file may ask for
    /// (expand, tile, constantOfShape, range): 1 GiB of f32. A few bytes of file must not make the
    /// runtime allocate gigabytes.
    public static let maxValueShapedElements = 1 << 28

    /// Output shapes for an ONNX-only op, or nil when `node.op` is not one of them.
    static func onnxOpShapes(_ node: GraphNode, _ inputs: [[Int]?]) throws -> [[Int]]? {
        func need(_ i: Int) throws -> [Int] {
            guard i < inputs.count, let s = inputs[i] else { throw fail(node, inputs, "input \(i) is required") }
            return s
        }
        func axis(_ a: Int, rank: Int) throws -> Int {
            let r = a < 0 ? a + rank : a
            guard r >= 0 && r < rank else { throw fail(node, inputs, "axis \(a) is out of range for rank \(rank)") }
            return r
        }
        func valueAttr(_ key: String, input: Int) throws -> [Int] {
            if let v = node.ints(key) { return v }
            throw fail(node, inputs, "the \(key) (input \(input)) is computed at run time; wconv needs it constant to fix the output shape")
        }
        func bounded(_ shape: [Int]) throws -> [Int] {
            var n = 1
            for d in shape {
                let (p, o) = n.multipliedReportingOverflow(by: d)
                guard d >= 0, !o, p <= maxValueShapedElements else {
                    throw fail(node, inputs, "output shape \(shape) is negative or larger than \(maxValueShapedElements) elements; the file's constants ask for more than wconv will allocate")
                }
                n = p
            }
            return shape
        }
        let op = node.op
        if onnxUnary.contains(op) { return [try need(0)] }
        if onnxBinary.contains(op) {
            let a = try need(0), b = try need(1)
            guard let out = broadcast(a, b) else { throw fail(node, inputs, "shapes \(a) and \(b) do not broadcast") }
            return [out]
        }
        switch op {
        case .where:
            let c = try need(0), x = try need(1), y = try need(2)
            guard let xy = broadcast(x, y), let out = broadcast(c, xy) else {
                throw fail(node, inputs, "condition \(c), x \(x) and y \(y) do not broadcast")
            }
            return [out]
        case .reduceMean, .reduceSum, .reduceMax:
            let x = try need(0)
            let axes = try reducedAxes(node, inputs, rank: x.count)
            let keep = (node.int("keepdims") ?? 1) != 0
            var out: [Int] = []
            for (i, d) in x.enumerated() {
                if axes.contains(i) { if keep { out.append(1) } } else { out.append(d) }
            }
            return [out]
        case .globalMaxPool:
            let x = try need(0)
            guard x.count >= 3 else { throw fail(node, inputs, "expects N, C and spatial dims") }
            let keep = (node.int("keepdims") ?? 1) != 0
            return [keep ? [x[0], x[1]] + [Int](repeating: 1, count: x.count - 2) : [x[0], x[1]]]
        case .unsqueeze:
            let x = try need(0)
            guard let axes = node.ints("axes"), !axes.isEmpty else { throw fail(node, inputs, "missing attribute axes") }
            let rank = x.count + axes.count
            let norm = try axes.map { try axis($0, rank: rank) }.sorted()
            guard Set(norm).count == norm.count else { throw fail(node, inputs, "axes \(axes) repeat a dim") }
            var out = x
            for a in norm { out.insert(1, at: a) }
            return [out]
        case .squeeze:
            let x = try need(0)
            if let axes = node.ints("axes"), !axes.isEmpty {
                let norm = Set(try axes.map { try axis($0, rank: x.count) })
                for a in norm where x[a] != 1 { throw fail(node, inputs, "cannot squeeze dim \(a) of size \(x[a])") }
                return [x.enumerated().filter { !norm.contains($0.offset) }.map(\.element)]
            }
            return [x.filter { $0 != 1 }]
        case .split:
            let x = try need(0)
            let ax = try axis(node.int("axis") ?? 0, rank: x.count)
            let sizes = try splitSizes(node, inputs, dim: x[ax])
            return sizes.map { var s = x; s[ax] = $0; return s }
        case .expand:
            let x = try need(0)
            let target = try valueAttr("shape", input: 1)
            guard target.allSatisfy({ $0 >= 0 }), let out = broadcast(x, target) else {
                throw fail(node, inputs, "input \(x) cannot be expanded to \(target)")
            }
            return [try bounded(out)]
        case .shape:
            let x = try need(0)
            let (s, e) = shapeRange(node, rank: x.count)
            return [[e - s]]
        case .constantOfShape:
            let target = try valueAttr("shape", input: 0)
            return [try bounded(target)]
        case .range:
            guard let start = node.float("start"), let limit = node.float("limit"), let delta = node.float("delta") else {
                throw fail(node, inputs, "start, limit and delta are computed at run time; wconv needs them constant to fix the output length")
            }
            guard delta != 0 else { throw fail(node, inputs, "delta is 0") }
            return [try bounded([rangeCount(start: start, limit: limit, delta: delta)])]
        case .tile:
            let x = try need(0)
            let reps = try valueAttr("repeats", input: 1)
            guard reps.count == x.count, reps.allSatisfy({ $0 >= 0 }) else {
                throw fail(node, inputs, "repeats \(reps) must have one non-negative value per dim of \(x)")
            }
            var out: [Int] = []
            for (d, r) in zip(x, reps) {
                let (p, o) = d.multipliedReportingOverflow(by: r)
                guard !o else { throw fail(node, inputs, "repeats \(reps) overflow the dims of \(x)") }
                out.append(p)
            }
            return [try bounded(out)]
        case .gatherND:
            let data = try need(0), idx = try need(1)
            let b = node.int("batchDims") ?? 0
            guard let k = idx.last, !idx.isEmpty, b >= 0, b < min(data.count, idx.count), b + k <= data.count,
                  Array(data.prefix(b)) == Array(idx.prefix(b)) else {
                throw fail(node, inputs, "indices \(idx) with batchDims \(b) do not address data \(data)")
            }
            return [Array(idx.dropLast()) + Array(data[(b + k)...])]
        case .argMax:
            let x = try need(0)
            let ax = try axis(node.int("axis") ?? 0, rank: x.count)
            var out = x
            if (node.int("keepdims") ?? 1) != 0 { out[ax] = 1 } else { out.remove(at: ax) }
            return [out]
        default:
            return nil
        }
    }

    /// Normalised, sorted reduce axes; empty `axes` means every dim.
    public static func reducedAxes(_ node: GraphNode, _ inputs: [[Int]?], rank: Int) throws -> [Int] {
        let axes = node.ints("axes") ?? []
        if axes.isEmpty { return Array(0..<rank) }
        var out: [Int] = []
        for a in axes {
            let r = a < 0 ? a + rank : a
            guard r >= 0 && r < rank else { throw fail(node, inputs, "axis \(a) is out of range for rank \(rank)") }
            if !out.contains(r) { out.append(r) }
        }
        return out.sorted()
    }

    /// Piece sizes of a split: attrs `split`, else `numOutputs` (or the node's output count) equal
    /// pieces, the last one smaller when the dim does not divide (ONNX opset 18).
    static func splitSizes(_ node: GraphNode, _ inputs: [[Int]?], dim: Int) throws -> [Int] {
        if let s = node.ints("split"), !s.isEmpty {
            guard s.count == node.outputs.count || node.outputs.isEmpty, s.allSatisfy({ $0 >= 0 && $0 <= dim }),
                  s.reduce(0, { $0 + $1 }) == dim else {
                throw fail(node, inputs, "split sizes \(s) do not add up to the dim \(dim)")
            }
            return s
        }
        let k = node.int("numOutputs") ?? node.outputs.count
        guard k >= 1, k == node.outputs.count else {
            throw fail(node, inputs, "split into \(k) pieces but the node has \(node.outputs.count) outputs")
        }
        let piece = (dim + k - 1) / k
        guard piece * (k - 1) <= dim else { throw fail(node, inputs, "dim \(dim) cannot be split into \(k) pieces") }
        return (0..<k).map { $0 < k - 1 ? piece : dim - piece * (k - 1) }
    }

    /// ONNX Shape's [start, end) clamped to the rank.
    public static func shapeRange(_ node: GraphNode, rank: Int) -> (Int, Int) {
        var s = node.int("start") ?? 0, e = node.int("end") ?? rank
        if s < 0 { s += rank }
        if e < 0 { e += rank }
        s = min(max(s, 0), rank)
        e = min(max(e, s), rank)
        return (s, e)
    }

    /// Number of elements of ONNX Range: max(ceil((limit - start) / delta), 0).
    public static func rangeCount(start: Double, limit: Double, delta: Double) -> Int {
        let n = ((limit - start) / delta).rounded(.up)
        guard n.isFinite, n > 0 else { return 0 }
        return Int(min(n, Double(1 << 40)))
    }
}
