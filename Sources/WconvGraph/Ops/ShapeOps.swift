import OrderedCollections
import WconvFormats
import WconvTensor

extension Op {
    /// attrs axis.
    public static let concat: Op = "concat"
    /// torch.flatten(x, axis, end): dims axis...end merged into one; attrs axis (default 1), end
    /// (default -1); negative values count from the end. ONNX Flatten(1) is flatten(axis 1); other
    /// ONNX axes import as flatten(axis a) then flatten(axis 0, end a − 1), 2-D like ONNX's.
    public static let flatten: Op = "flatten"
    /// attrs shape (0 copies the input dim unless allowzero, -1 is inferred, as ONNX Reshape);
    /// inputs [x, shape?] until the shape is known.
    public static let reshape: Op = "reshape"
    /// attrs perm.
    public static let transpose: Op = "transpose"
    /// inputs [indices(int), weight(V, D)]; attrs paddingIdx (optional): that row of the weight gets
    /// no gradient (PyTorch's Embedding padding_idx; the forward is a plain lookup).
    public static let embedding: Op = "embedding"
    /// inputs [data, indices]; attrs axis (ONNX Gather).
    public static let gather: Op = "gather"
    /// attrs pads [begin…, end…] over `axes` (default every dim; negative pads crop), mode
    /// "constant" | "reflect" | "edge" | "wrap", value (constant mode). inputs [x] or, until known,
    /// [x, pads?, value?, axes?].
    public static let pad: Op = "pad"
    /// ONNX Slice. inputs [x] (or [x, starts, ends, axes?, steps?] until known); attrs starts,
    /// ends, axes (default 0..<count), steps (default 1, negative steps walk backwards). Negative
    /// starts/ends count from the end; bounds are clamped to the dim, so INT64_MAX/MIN-like values
    /// mean "to the edge".
    public static let slice: Op = "slice"
    /// attrs axes.
    public static let unsqueeze: Op = "unsqueeze"
    /// attrs axes (absent: every size-1 dim).
    public static let squeeze: Op = "squeeze"
    /// attrs axis, split (sizes) or numOutputs; one output per piece.
    public static let split: Op = "split"
    /// Broadcast to a shape. inputs [x, shape(i64)?]; attrs shape once known.
    public static let expand: Op = "expand"
    /// inputs [x, repeats?]; attrs repeats once known.
    public static let tile: Op = "tile"
    /// inputs [data, indices]; attrs batchDims (ONNX GatherND).
    public static let gatherND: Op = "gatherND"
}

/// Ops that move or select elements (docs/adding-an-op.md). Shape-only ops fold exactly, so shape
/// vectors computed from them stay i64.
public enum ShapeOps {
    static let schemas: [OpSchema] = [concat, flatten, reshape, transpose, embedding, gather, pad, slice, unsqueeze,
                                      squeeze, split, expand, tile, gatherND]

    static let concat = OpSchema(.concat, fold: { a in
        let ax = (a.node.int("axis") ?? 0) < 0 ? (a.node.int("axis") ?? 0) + a.outShape.count : (a.node.int("axis") ?? 0)
        let outer = a.outShape[..<ax].reduce(1, *), inner = a.outShape[(ax + 1)...].reduce(1, *)
        let ins = try (0..<a.node.inputs.count).map { try a.value($0) }
        let float = ins.contains { $0.dtype.isFloatingPoint }
        var ints: [Int] = [], doubles: [Double] = []
        let iv = ins.map { $0.exactInts() }, dv = ins.map { $0.doubles() }
        for o in 0..<outer {
            for (k, t) in ins.enumerated() {
                let len = t.shape[ax] * inner
                if float { doubles += dv[k][(o * len)..<((o + 1) * len)] } else { ints += iv[k][(o * len)..<((o + 1) * len)] }
            }
        }
        return float ? a.out(doubles: doubles) : a.out(ints: ints)
    }) { a in
        let shapes = try (0..<a.inputs.count).map { try a.need($0) }
        guard let first = shapes.first else { throw a.fail("needs at least one input") }
        let ax = try a.axis(a.int("axis") ?? 0, rank: first.count)
        var out = first
        for s in shapes.dropFirst() {
            guard s.count == first.count, (0..<s.count).allSatisfy({ $0 == ax || s[$0] == first[$0] }) else {
                throw a.fail("shapes differ outside axis \(ax)")
            }
            out[ax] = try a.sum(out[ax], s[ax])
        }
        return [out]
    }

    static let flatten = OpSchema(.flatten, fold: { a in try a.reshaped(0) }) { a in
        let x = try a.need(0)
        // A scalar flattens to [1] (torch); otherwise start and end are dims of x.
        if x.isEmpty { return [[1]] }
        let start = try a.axis(a.int("axis") ?? 1, rank: x.count), end = try a.axis(a.int("end") ?? -1, rank: x.count)
        guard start <= end else { throw a.fail("flatten start dim \(start) is after end dim \(end)") }
        return [Array(x[..<start]) + [try a.prod(x[start...end])] + Array(x[(end + 1)...])]
    }

    static let reshape = OpSchema(.reshape, valueInputs: [ValueInput(1, "shape")], fold: { a in try a.reshaped(0) }) { a in
        let x = try a.need(0)
        let shape = try a.valueAttr("shape", input: 1)
        let allowZero = (a.int("allowzero") ?? 0) != 0
        var out = [Int]()
        var infer = -1
        for (i, d) in shape.enumerated() {
            if d == 0 && !allowZero {
                guard i < x.count else { throw a.fail("shape \(shape) copies dim \(i) which the input lacks") }
                out.append(x[i])
            } else if d == -1 {
                guard infer < 0 else { throw a.fail("shape \(shape) has two -1 dims") }
                infer = i; out.append(1)
            } else if d >= 0 { out.append(d) } else { throw a.fail("shape \(shape) has a negative dim") }
        }
        let total = try a.prod(x[...]), known = try a.prod(out[...])
        if infer >= 0 {
            guard known > 0, total % known == 0 else { throw a.fail("cannot reshape \(total) elements to \(shape)") }
            out[infer] = total / known
        }
        guard try a.prod(out[...]) == total else { throw a.fail("cannot reshape \(total) elements to \(shape)") }
        return [out]
    }

    static let transpose = OpSchema(.transpose, fold: { a in
        let x = try a.value(0)
        let perm = a.node.ints("perm") ?? Array((0..<x.rank).reversed())
        let inStrides = Tensor.contiguousStrides(x.shape)
        let index = try a.broadcastIndex([a.outShape], to: a.outShape).indices.map { flat -> Int in
            var rem = flat, off = 0
            for d in stride(from: a.outShape.count - 1, through: 0, by: -1) {
                off += (rem % a.outShape[d]) * inStrides[perm[d]]
                rem /= a.outShape[d]
            }
            return off
        }
        return x.dtype.isFloatingPoint ? a.out(doubles: index.map { x.doubles()[$0] }) : a.out(ints: index.map { x.exactInts()[$0] })
    }) { a in
        let x = try a.need(0)
        let perm = a.node.ints("perm") ?? Array((0..<x.count).reversed())
        guard perm.count == x.count, Set(perm) == Set(0..<x.count) else {
            throw a.fail("perm \(perm) is not a permutation of \(x.count) dims")
        }
        return [perm.map { x[$0] }]
    }

    static let embedding = OpSchema(.embedding, dtype: .input(1)) { a in
        let idx = try a.need(0), w = try a.need(1)
        guard w.count == 2 else { throw a.fail("weight must be (vocabulary, dim)") }
        return [idx + [w[1]]]
    }

    static let gather = OpSchema(.gather, dtype: .input(0), fold: { a in
        let data = try a.value(0), idx = try a.ints(1)
        let ax = (a.node.int("axis") ?? 0) < 0 ? (a.node.int("axis") ?? 0) + data.rank : (a.node.int("axis") ?? 0)
        let outer = data.shape[..<ax].reduce(1, *), n = data.shape[ax], inner = data.shape[(ax + 1)...].reduce(1, *)
        var src: [Int] = []
        for o in 0..<outer {
            for i in idx {
                let j = i < 0 ? i + n : i
                guard j >= 0 && j < n else { throw FoldArgs.NotFoldable() }
                for k in 0..<inner { src.append((o * n + j) * inner + k) }
            }
        }
        return data.dtype.isFloatingPoint ? a.out(doubles: src.map { data.doubles()[$0] }) : a.out(ints: src.map { data.exactInts()[$0] })
    }) { a in
        let data = try a.need(0), idx = try a.need(1)
        let ax = try a.axis(a.int("axis") ?? 0, rank: data.count)
        return [Array(data[..<ax]) + idx + Array(data[(ax + 1)...])]
    }

    /// Pads over every dim ([begin…, end…], negative crops) from `pads` given over `axes` (default all).
    public static func padPlan(_ node: GraphNode, rank r: Int, fail: (String) -> Error) throws -> [Int] {
        guard let p = node.ints("pads") else { throw fail("the pads are computed from input data at run time; wconv needs them known once the input shapes are known") }
        let mode = node.string("mode") ?? "constant"
        guard ["constant", "reflect", "edge", "wrap"].contains(mode) else { throw fail("pad mode '\(mode)' is not constant, reflect, edge or wrap") }
        guard node.inputs.dropFirst().allSatisfy(\.isEmpty) else { throw fail("the pad value or axes are computed from input data at run time") }
        var axes: [Int] = []
        for a in node.ints("axes") ?? Array(0..<r) {
            let n = a < 0 ? a + r : a
            guard n >= 0 && n < r, !axes.contains(n) else { throw fail("axes \(node.ints("axes") ?? []) do not name distinct dims of rank \(r)") }
            axes.append(n)
        }
        guard p.count == 2 * axes.count else { throw fail("pads must list \(2 * axes.count) values (begin…, end…)") }
        guard p.allSatisfy({ Swift.abs($0) < 1 << 32 }) else { throw fail("pads \(p) are out of range") }
        var full = [Int](repeating: 0, count: 2 * r)
        for (i, a) in axes.enumerated() { full[a] = p[i]; full[r + a] = p[axes.count + i] }
        return full
    }

    static let pad = OpSchema(.pad, valueInputs: [ValueInput(1, "pads"), ValueInput(2, "value", .scalar(recordsDType: false)), ValueInput(3, "axes")],
                              onnxExport: exportPad) { a in
        let x = try a.need(0)
        let p = try padPlan(a.node, rank: x.count, fail: a.fail)
        let mode = a.node.string("mode") ?? "constant"
        let out = try (0..<x.count).map { try a.sum(try a.sum(x[$0], p[$0]), p[$0 + x.count]) }
        guard out.allSatisfy({ $0 >= 0 }) else { throw a.fail("pads \(p) make a negative size") }
        _ = try a.bounded(out)
        if mode == "reflect" {
            for d in x.indices where p[d] > 0 || p[d + x.count] > 0 {
                guard max(p[d], p[d + x.count]) < x[d] else { throw a.fail("reflect padding \(max(p[d], p[d + x.count])) must be smaller than the dim \(x[d])") }
            }
        }
        if mode == "edge" || mode == "wrap" {
            for d in x.indices where (p[d] > 0 || p[d + x.count] > 0) && x[d] == 0 { throw a.fail("\(mode) padding of an empty dim") }
        }
        return [out]
    }

    static func exportPad(_ e: inout ONNXExportContext, _ n: GraphNode) {
        let x = n.inputs[0]
        guard let r = e.rank(x), let pads = try? padPlan(n, rank: r, fail: { WconvError.invalid($0) }) else {
            e.problems.append("\(n.name) (pad): pads need the input's rank and known values"); return
        }
        e.add("Pad", n.name, [x, e.ints(n.name + ".pads", pads), e.scalar(n.name + ".value", n.float("value") ?? 0)], [n.outputs[0]],
              ["mode": .string(n.string("mode") ?? "constant")], rank: r)
    }

    /// Start, step and length per dim of a slice over `x` (shared by the shape rule, the value rule
    /// and the runtime's kernel selection).
    public static func slicePlan(_ node: GraphNode, _ x: [Int], fail: (String) -> Error) throws -> (starts: [Int], steps: [Int], out: [Int]) {
        guard let starts = node.ints("starts"), let ends = node.ints("ends"), starts.count == ends.count else {
            throw fail("starts and ends must have the same length")
        }
        let axes = node.ints("axes") ?? Array(0..<starts.count)
        let steps = node.ints("steps") ?? [Int](repeating: 1, count: starts.count)
        guard axes.count == starts.count, steps.count == starts.count else {
            throw fail("axes/steps length differs from starts")
        }
        var st = [Int](repeating: 0, count: x.count), sp = [Int](repeating: 1, count: x.count), out = x
        for i in 0..<starts.count {
            let a = axes[i] < 0 ? axes[i] + x.count : axes[i]
            guard a >= 0 && a < x.count else { throw fail("axis \(axes[i]) is out of range for rank \(x.count)") }
            let step = steps[i]
            guard step != 0, Swift.abs(step) < 1 << 40 else { throw fail("step \(step) must be non-zero") }
            let n = x[a]
            // Negative values count from the end (bounds may be INT64_MIN/MAX "to the edge" markers).
            func fromEnd(_ v: Int) -> Int { v >= 0 ? v : (v < -n ? -1 : v + n) }
            if step > 0 {
                let s = min(max(fromEnd(starts[i]), 0), n), e = min(max(fromEnd(ends[i]), 0), n)
                st[a] = s
                out[a] = e > s ? (e - s + step - 1) / step : 0
            } else {
                // ONNX: with a negative step the start is clamped to [0, n − 1] and the end to [−1, n − 1].
                let s = min(max(fromEnd(starts[i]), 0), n - 1), e = min(max(fromEnd(ends[i]), -1), n - 1)
                st[a] = max(s, 0)
                out[a] = s > e ? (s - e - step - 1) / -step : 0
            }
            sp[a] = step
        }
        return (st, sp, out)
    }

    static let slice = OpSchema(.slice, valueInputs: [ValueInput(1, "starts"), ValueInput(2, "ends"), ValueInput(3, "axes"), ValueInput(4, "steps")],
                                fold: { a in
        let x = try a.value(0)
        let plan = try slicePlan(a.node, x.shape) { _ in FoldArgs.NotFoldable() }
        let inStrides = Tensor.contiguousStrides(x.shape)
        let src = try a.broadcastIndex([a.outShape], to: a.outShape).indices.map { flat -> Int in
            var rem = flat, off = 0
            for d in stride(from: plan.out.count - 1, through: 0, by: -1) {
                off += (plan.starts[d] + (rem % plan.out[d]) * plan.steps[d]) * inStrides[d]
                rem /= plan.out[d]
            }
            return off
        }
        return x.dtype.isFloatingPoint ? a.out(doubles: src.map { x.doubles()[$0] }) : a.out(ints: src.map { x.exactInts()[$0] })
    }) { a in
        let x = try a.need(0)
        return [try slicePlan(a.node, x, fail: a.fail).out]
    }

    static let unsqueeze = OpSchema(.unsqueeze, valueInputs: [ValueInput(1, "axes")], fold: { a in try a.reshaped(0) }) { a in
        let x = try a.need(0)
        guard let axes = a.node.ints("axes"), !axes.isEmpty else { throw a.fail("missing attribute axes") }
        let rank = x.count + axes.count
        let norm = try axes.map { try a.axis($0, rank: rank) }.sorted()
        guard Set(norm).count == norm.count else { throw a.fail("axes \(axes) repeat a dim") }
        var out = x
        for ax in norm { out.insert(1, at: ax) }
        return [out]
    }

    static let squeeze = OpSchema(.squeeze, valueInputs: [ValueInput(1, "axes")], fold: { a in try a.reshaped(0) }) { a in
        let x = try a.need(0)
        if let axes = a.node.ints("axes"), !axes.isEmpty {
            let norm = Set(try axes.map { try a.axis($0, rank: x.count) })
            for ax in norm where x[ax] != 1 { throw a.fail("cannot squeeze dim \(ax) of size \(x[ax])") }
            return [x.enumerated().filter { !norm.contains($0.offset) }.map(\.element)]
        }
        return [x.filter { $0 != 1 }]
    }

    /// Piece sizes of a split: attrs `split`, else `numOutputs` (or the node's output count) equal
    /// pieces, the last one smaller when the dim does not divide (ONNX opset 18).
    static func splitSizes(_ a: ShapeArgs, dim: Int) throws -> [Int] {
        let node = a.node
        if let s = node.ints("split"), !s.isEmpty {
            guard s.count == node.outputs.count || node.outputs.isEmpty, s.allSatisfy({ $0 >= 0 && $0 <= dim }),
                  s.reduce(0, { $0 + $1 }) == dim else {
                throw a.fail("split sizes \(s) do not add up to the dim \(dim)")
            }
            return s
        }
        let k = node.int("numOutputs") ?? node.outputs.count
        guard k >= 1, k == node.outputs.count else { throw a.fail("split into \(k) pieces but the node has \(node.outputs.count) outputs") }
        let piece = (dim + k - 1) / k
        guard piece * (k - 1) <= dim else { throw a.fail("dim \(dim) cannot be split into \(k) pieces") }
        return (0..<k).map { $0 < k - 1 ? piece : dim - piece * (k - 1) }
    }

    static let split = OpSchema(.split, valueInputs: [ValueInput(1, "split")]) { a in
        let x = try a.need(0)
        let ax = try a.axis(a.int("axis") ?? 0, rank: x.count)
        return try splitSizes(a, dim: x[ax]).map { var s = x; s[ax] = $0; return s }
    }

    static let expand = OpSchema(.expand, valueInputs: [ValueInput(1, "shape")], fold: { a in
        let x = try a.value(0)
        let src = try a.broadcastIndex([x.shape], to: a.outShape).map { $0[0] }
        return x.dtype.isFloatingPoint ? a.out(doubles: src.map { x.doubles()[$0] }) : a.out(ints: src.map { x.exactInts()[$0] })
    }) { a in
        let x = try a.need(0)
        let target = try a.valueAttr("shape", input: 1)
        guard target.allSatisfy({ $0 >= 0 }), let out = ShapeInference.broadcast(x, target) else {
            throw a.fail("input \(x) cannot be expanded to \(target)")
        }
        return [try a.bounded(out)]
    }

    static let tile = OpSchema(.tile, valueInputs: [ValueInput(1, "repeats")]) { a in
        let x = try a.need(0)
        let reps = try a.valueAttr("repeats", input: 1)
        guard reps.count == x.count, reps.allSatisfy({ $0 >= 0 }) else {
            throw a.fail("repeats \(reps) must have one non-negative value per dim of \(x)")
        }
        var out: [Int] = []
        for (d, r) in zip(x, reps) {
            let (p, o) = d.multipliedReportingOverflow(by: r)
            guard !o else { throw a.fail("repeats \(reps) overflow the dims of \(x)") }
            out.append(p)
        }
        return [try a.bounded(out)]
    }

    static let gatherND = OpSchema(.gatherND, dtype: .input(0)) { a in
        let data = try a.need(0), idx = try a.need(1)
        let b = a.int("batchDims") ?? 0
        guard let k = idx.last, !idx.isEmpty, b >= 0, b < min(data.count, idx.count), k >= 0, b + k <= data.count,
              Array(data.prefix(b)) == Array(idx.prefix(b)) else {
            throw a.fail("indices \(idx) with batchDims \(b) do not address data \(data)")
        }
        return [Array(idx.dropLast()) + Array(data[(b + k)...])]
    }
}
