import Foundation
import WconvGraph
import WconvTensor

/// A node compiled against concrete input shapes: everything a kernel needs, resolved once.
enum Kernel {
    /// inputs [x, weight, bias?]
    case conv(ConvGeometry, Activation)
    /// inputs [x, weight?, bias?, mean, var]; `inner` = spatial size.
    case batchNorm(n: Int, c: Int, inner: Int, epsilon: Float, momentum: Float, Activation)
    /// Eval BN folded to scale/shift (inference only). inputs [x, scale, shift]
    case affine(n: Int, c: Int, inner: Int, Activation)
    /// inputs [x, weight, bias?]
    case linear(rows: Int, inF: Int, outF: Int, Activation)
    case matmul(MatmulPlan)
    case activation(Activation, count: Int)
    case maxPool(PoolGeometry)
    case avgPool(PoolGeometry)
    case adaptiveAvgPool(planes: Int, h: Int, w: Int, oh: Int, ow: Int)
    case binary(BinaryKind, BroadcastPlan)
    case concat(lengths: [Int], outer: Int, inner: Int)
    /// Output shares the input's buffer (flatten, reshape, identity, eval dropout).
    case view
    case transpose(shape: [Int], perm: [Int])
    case dropout(ratio: Float, count: Int)
    case layerNorm(rows: Int, inner: Int, epsilon: Float)
    /// inputs [data, indices] (gather) — embedding is compiled as gather over axis 0 of the weight.
    case gather(outer: Int, axisLen: Int, inner: Int, dataInput: Int, indexInput: Int)
    case softmax(outer: Int, axisLen: Int, inner: Int)
    case pad(shape: [Int], pads: [Int], value: Float)
    /// inputs [q, k, v, mask?]
    case attention(AttentionGeometry, maskShape: [Int]?)
    case slice(SlicePlan)
    case arange(count: Int, start: Int, step: Int)
    case reduce(ReduceKind, ReducePlan)
    case unary(UnaryKind, count: Int)
    /// inputs [cond, a, b]; strides of each operand against the output.
    case whereSelect(strides: [[Int]], outShape: [Int])
    /// x broadcast to the output (inputs [x, shape]).
    case expand(BroadcastPlan)
    /// One output per piece along an axis: data viewed as [outer, Σ lengths, inner].
    case split(lengths: [Int], outer: Int, inner: Int)
    /// Values known from shapes alone (ONNX Shape); folded at plan time.
    case constant([Float])
    /// ONNX ConstantOfShape.
    case fill(value: Float, count: Int)
    /// ONNX Range with constant bounds.
    case range(start: Float, delta: Float, count: Int)
    /// Ops the ONNX importer adds (Kernels/ONNXOps.swift).
    case onnx(ONNXKernel)
}

/// One compiled step: the kernel and the value ids it reads and writes (-1 for an omitted input).
struct Step {
    var node: Int
    var kernel: Kernel
    var inputs: [Int]
    var outputs: [Int]
}

/// A node as the executor sees it: the graph node plus what fusion attached to it.
struct ExecNode {
    var node: GraphNode
    /// Activation fused into the node's epilogue (conv, affine, linear).
    var fused: Activation = .none
    /// The node is a BN folded to per-channel scale/shift (inputs rewritten to [x, scale, shift]).
    var isAffine = false
}

/// Shape inference + kernel selection for one node. Throws errors naming the node and shapes.
func compileNode(_ en: ExecNode, inputShapes s: [[Int]?], intConstant: (String) -> [Int]?, constant: (String) -> [Double]? = { _ in nil }) throws -> (Kernel, [[Int]]) {
    let node = en.node
    func fail(_ msg: String) -> WconvError {
        WconvError.invalid("node '\(node.name)' (\(node.op)): \(msg); input shapes \(s.map { $0.map { "\($0)" } ?? "-" })")
    }
    func shape(_ i: Int) throws -> [Int] {
        guard i < s.count, let v = s[i] else { throw fail("missing input \(i)") }
        return v
    }
    func pair(_ key: String, _ dflt: [Int]) throws -> [Int] {
        guard let v = node.ints(key) else { return dflt }
        if v.count == 1 { return [v[0], v[0]] }
        guard v.count == 2 else { throw fail("attribute \(key) must have 2 values, has \(v)") }
        return v
    }
    func pads4() throws -> [Int] {
        guard let v = node.ints("pads") else { return [0, 0, 0, 0] }
        switch v.count {
        case 1: return [v[0], v[0], v[0], v[0]]
        case 2: return [v[0], v[1], v[0], v[1]]
        case 4: return v
        default: throw fail("attribute pads must have 1, 2 or 4 values, has \(v)")
        }
    }
    func axis(_ a: Int, rank: Int) throws -> Int {
        let r = a < 0 ? a + rank : a
        guard r >= 0 && r < max(rank, 1) else { throw fail("axis \(a) out of range for rank \(rank)") }
        return r
    }
    let act = en.fused
    // Attributes come from files: bound them so no geometry arithmetic below can overflow.
    // (Slice bounds may be Int.max-like "to the end" markers; they are clamped where used.)
    for (key, value) in node.attributes where key != "starts" && key != "ends" {
        let ints: [Int] = value.intsValue ?? []
        if let bad = ints.first(where: { $0 > 1 << 32 || $0 < -(1 << 32) }) { throw fail("attribute \(key) value \(bad) is out of range") }
    }
    for case let sh? in s {
        guard sh.allSatisfy({ $0 >= 0 }), (try? Tensor.checkedNumel(sh)) != nil else { throw fail("input shape \(sh) is invalid") }
    }

    switch node.op {
    case .conv2d:
        let x = try shape(0), wt = try shape(1)
        guard x.count == 4 else { throw fail("conv2d expects NCHW input") }
        guard wt.count == 4, wt.allSatisfy({ $0 > 0 }) else { throw fail("conv2d weight must be OIHW with positive dims") }
        let groups = node.int("group") ?? 1
        guard groups >= 1, x[1] % groups == 0, wt[0] % groups == 0, wt[1] * groups == x[1] else {
            throw fail("weight \(wt) with group \(groups) does not fit \(x[1]) input channels")
        }
        if s.count > 2, let b = s[2], b != [wt[0]] { throw fail("bias shape \(b) must be [\(wt[0])]") }
        let st = try pair("strides", [1, 1]), d = try pair("dilations", [1, 1]), p = try pads4()
        guard st.allSatisfy({ $0 > 0 }), d.allSatisfy({ $0 > 0 }), p.allSatisfy({ $0 >= 0 }) else { throw fail("strides/dilations must be positive and pads non-negative") }
        let g = ConvGeometry(n: x[0], c: x[1], h: x[2], w: x[3], o: wt[0], kh: wt[2], kw: wt[3], sh: st[0], sw: st[1],
                             pt: p[0], pl: p[1], pb: p[2], pr: p[3], dh: d[0], dw: d[1], groups: groups)
        guard g.ho > 0, g.wo > 0 else { throw fail("kernel \(wt[2])×\(wt[3]) (dilation \(d)) is larger than the padded input") }
        return (.conv(g, act), [[g.n, g.o, g.ho, g.wo]])

    case .batchNorm:
        let x = try shape(0)
        guard x.count >= 2 else { throw fail("batchNorm expects at least 2 dims") }
        let c = x[1]
        for i in 1..<min(s.count, 5) { if let v = s[i], v.reduce(1, *) != c { throw fail("parameter \(i) has shape \(v), expected [\(c)]") } }
        let inner = x.dropFirst(2).reduce(1, *)
        if en.isAffine { return (.affine(n: x[0], c: c, inner: inner, act), [x]) }
        return (.batchNorm(n: x[0], c: c, inner: inner, epsilon: Float(node.float("epsilon") ?? 1e-5),
                           momentum: Float(node.float("momentum") ?? 0.1), act), [x])

    case .linear:
        let x = try shape(0), wt = try shape(1)
        guard wt.count == 2, let last = x.last, last == wt[1] else { throw fail("linear weight \(wt) does not fit input features") }
        if s.count > 2, let b = s[2], b.reduce(1, *) != wt[0] { throw fail("bias shape \(b) must be [\(wt[0])]") }
        let rows = x.dropLast().reduce(1, *)
        return (.linear(rows: rows, inF: wt[1], outF: wt[0], act), [Array(x.dropLast()) + [wt[0]]])

    case .matmul:
        let a = try shape(0), b = try shape(1)
        guard let p = MatmulPlan(a, b) else { throw fail("matmul shapes do not fit") }
        return (.matmul(p), [p.outShape])

    case .relu, .relu6, .clip, .silu, .gelu, .hardSwish, .hardSigmoid, .sigmoid, .tanh:
        let x = try shape(0)
        return (.activation(Activation.from(node)!, count: x.reduce(1, *)), [x])

    case .maxPool2d, .avgPool2d:
        let x = try shape(0)
        guard x.count == 4 else { throw fail("pooling expects NCHW input") }
        guard let k = node.ints("kernel") else { throw fail("missing attribute kernel") }
        let kernel = k.count == 1 ? [k[0], k[0]] : k
        guard kernel.count == 2, kernel.allSatisfy({ $0 > 0 }) else { throw fail("bad kernel \(k)") }
        let st = try pair("strides", kernel), p = try pads4(), d = try pair("dilations", [1, 1])
        guard st.allSatisfy({ $0 > 0 }), d.allSatisfy({ $0 > 0 }), p.allSatisfy({ $0 >= 0 }) else { throw fail("strides and dilations must be positive, pads non-negative") }
        // PyTorch: pad must be at most half the kernel.
        guard p[0] * 2 <= kernel[0] * d[0] + 1, p[1] * 2 <= kernel[1] * d[1] + 1 else { throw fail("pads \(p) exceed half the kernel \(kernel)") }
        let g = PoolGeometry(n: x[0], c: x[1], h: x[2], w: x[3], kernel: kernel, strides: st, pads: p, dilations: d,
                             ceilMode: (node.int("ceilMode") ?? 0) != 0, countIncludePad: (node.int("countIncludePad") ?? 1) != 0)
        guard g.ho > 0, g.wo > 0 else { throw fail("pooling window larger than the input") }
        return (node.op == .maxPool2d ? .maxPool(g) : .avgPool(g), [[g.n, g.c, g.ho, g.wo]])

    case .adaptiveAvgPool2d, .globalAvgPool:
        let x = try shape(0)
        guard x.count == 4 else { throw fail("expects NCHW input") }
        var oh = 1, ow = 1
        if node.op == .adaptiveAvgPool2d {
            let o = node.ints("outputSize") ?? [1, 1]
            oh = o[0]; ow = o.count > 1 ? o[1] : o[0]
            guard oh > 0, ow > 0 else { throw fail("outputSize must be positive") }
        }
        var out = [x[0], x[1], oh, ow]
        if node.op == .globalAvgPool && (node.int("keepdims") ?? 1) == 0 { out = [x[0], x[1]] }
        return (.adaptiveAvgPool(planes: x[0] * x[1], h: x[2], w: x[3], oh: oh, ow: ow), [out])

    case .add, .sub, .mul, .div, .pow, .minimum, .maximum, .equal, .less, .lessOrEqual, .greater, .greaterOrEqual, .and, .or:
        let a = try shape(0), b = try shape(1)
        guard let p = BroadcastPlan(a, b) else { throw fail("shapes do not broadcast") }
        let kinds: [Op: BinaryKind] = [.add: .add, .sub: .sub, .mul: .mul, .div: .div, .pow: .pow, .minimum: .minimum, .maximum: .maximum,
                                       .equal: .equal, .less: .less, .lessOrEqual: .lessOrEqual, .greater: .greater,
                                       .greaterOrEqual: .greaterOrEqual, .and: .and, .or: .or]
        return (.binary(kinds[node.op]!, p), [p.outShape])

    case .erf, .sqrt, .exp, .log, .abs, .neg, .reciprocal, .not, .isNaN:
        let x = try shape(0)
        let kinds: [Op: UnaryKind] = [.erf: .erf, .sqrt: .sqrt, .exp: .exp, .log: .log, .abs: .abs, .neg: .neg,
                                      .reciprocal: .reciprocal, .not: .not, .isNaN: .isNaN]
        return (.unary(kinds[node.op]!, count: x.reduce(1, *)), [x])

    case .cast:
        let x = try shape(0)
        let to = DType(rawValue: node.string("to") ?? "f32") ?? .f32
        if to == .bool { return (.unary(.castBool, count: x.reduce(1, *)), [x]) }
        if !to.isFloatingPoint { return (.unary(.castInt, count: x.reduce(1, *)), [x]) }
        // f16/bf16 casts round like onnxruntime (Kernels/ONNXOps.swift).
        if to == .f16 || to == .bf16, let rounded = try compileONNXNode(en, inputShapes: s, intConstant: intConstant) { return rounded }
        // Activations are f32 inside the runtime: float casts keep the values.
        return (.view, [x])

    case .unsqueeze:
        var x = try shape(0)
        guard let axes = node.ints("axes") ?? (node.inputs.count > 1 ? intConstant(node.inputs[1]) : nil) else { throw fail("unsqueeze needs axes") }
        let r = x.count + axes.count
        for a in try axes.map({ try axis($0, rank: r) }).sorted() { x.insert(1, at: a) }
        return (.view, [x])

    case .squeeze:
        let x = try shape(0)
        let given = node.ints("axes") ?? (node.inputs.count > 1 ? intConstant(node.inputs[1]) : nil)
        let axes = try given.map { try $0.map { try axis($0, rank: x.count) } } ?? x.indices.filter { x[$0] == 1 }
        for a in axes where x[a] != 1 { throw fail("cannot squeeze axis \(a) of size \(x[a])") }
        return (.view, [x.enumerated().filter { !axes.contains($0.offset) }.map(\.element)])

    case .reduceMean, .reduceSum, .reduceMax, .globalMaxPool:
        let x = try shape(0)
        var axes: [Int]
        if node.op == .globalMaxPool { axes = Array(2..<x.count) }
        else {
            let given = node.ints("axes") ?? (node.inputs.count > 1 ? intConstant(node.inputs[1]) : nil) ?? []
            axes = given.isEmpty ? Array(0..<x.count) : try given.map { try axis($0, rank: x.count) }
        }
        axes = Array(Set(axes)).sorted()
        guard let lo = axes.first, let hi = axes.last, hi - lo + 1 == axes.count else {
            // Non-adjacent axes: the general strided reduction (Kernels/ONNXOps.swift).
            if let general = try compileONNXNode(en, inputShapes: s, intConstant: intConstant) { return general }
            throw fail("reduction over non-adjacent axes \(axes) is not supported")
        }
        let keep = (node.int("keepdims") ?? 1) != 0
        var out: [Int] = []
        for (i, d) in x.enumerated() { if axes.contains(i) { if keep { out.append(1) } } else { out.append(d) } }
        let kind: ReduceKind = node.op == .reduceSum ? .sum : (node.op == .reduceMean ? .mean : .max)
        return (.reduce(kind, ReducePlan(outer: x[..<lo].reduce(1, *), red: x[lo...hi].reduce(1, *), inner: x[(hi + 1)...].reduce(1, *))), [out])

    case .where:
        let c = try shape(0), a = try shape(1), b = try shape(2)
        guard let ab = BroadcastPlan.outputShape(a, b), let out = BroadcastPlan.outputShape(c, ab) else { throw fail("shapes do not broadcast") }
        return (.whereSelect(strides: [c, a, b].map { broadcastStrides($0, to: out) }, outShape: out), [out])

    case .split:
        let x = try shape(0)
        let ax = try axis(node.int("axis") ?? 0, rank: x.count)
        let pieces = node.outputs.count
        var sizes = node.ints("split") ?? (node.inputs.count > 1 ? intConstant(node.inputs[1]) : nil) ?? []
        if sizes.isEmpty {
            guard pieces > 0 else { throw fail("split has no outputs") }
            let each = (x[ax] + pieces - 1) / pieces
            sizes = (0..<pieces).map { min(each, max(0, x[ax] - $0 * each)) }
        }
        guard sizes.count == pieces, sizes.allSatisfy({ $0 >= 0 }), sizes.reduce(0, +) == x[ax] else {
            throw fail("split sizes \(sizes) do not cover axis \(ax) of size \(x[ax]) in \(pieces) outputs")
        }
        let outs = sizes.map { n -> [Int] in var o = x; o[ax] = n; return o }
        return (.split(lengths: sizes, outer: x[..<ax].reduce(1, *), inner: x[(ax + 1)...].reduce(1, *)), outs)

    case .shape:
        let x = try shape(0)
        let r = x.count
        func clamp(_ v: Int) -> Int { let a = v < 0 ? v + r : v; return min(max(a, 0), r) }
        let st = clamp(node.int("start") ?? 0), e = clamp(node.int("end") ?? r)
        let vals = st < e ? x[st..<e].map { Float($0) } : []
        return (.constant(vals), [[vals.count]])

    case .constantOfShape:
        guard let dims = node.ints("shape") ?? node.inputs.first.flatMap(intConstant) else { throw fail("constantOfShape needs a shape known before running") }
        guard dims.allSatisfy({ $0 >= 0 }), let n = try? Tensor.checkedNumel(dims), n <= 1 << 30 else { throw fail("bad shape \(dims)") }
        return (.fill(value: Float(node.float("value") ?? 0), count: n), [dims])

    case .range:
        // Bounds as attributes (the ONNX builder's constant form) or as known inputs.
        func bound(_ key: String, _ i: Int) -> Double? { node.float(key) ?? (i < node.inputs.count ? constant(node.inputs[i])?.first : nil) }
        guard let a = bound("start", 0), let b = bound("limit", 1), let d = bound("delta", 2) else {
            throw fail("range needs start, limit and delta known before running")
        }
        guard d != 0, a.isFinite, b.isFinite, d.isFinite else { throw fail("range delta must be non-zero and bounds finite") }
        let count = max(Int(((b - a) / d).rounded(.up)), 0)
        guard count <= 1 << 30 else { throw fail("range of \(count) values is too large") }
        return (.range(start: Float(a), delta: Float(d), count: count), [[count]])

    case .expand:
        let x = try shape(0)
        guard let target = node.ints("shape") ?? (node.inputs.count > 1 ? intConstant(node.inputs[1]) : nil) else { throw fail("expand needs a constant shape input") }
        guard let out = BroadcastPlan.outputShape(x, target), let p = BroadcastPlan(x, out) else { throw fail("shape \(x) does not expand to \(target)") }
        return (.expand(p), [out])

    case .concat:
        let shapes = try (0..<s.count).map { try shape($0) }
        guard let first = shapes.first else { throw fail("concat needs inputs") }
        let ax = try axis(node.int("axis") ?? 1, rank: first.count)
        for sh in shapes where sh.count != first.count || (0..<first.count).contains(where: { $0 != ax && sh[$0] != first[$0] }) {
            throw fail("inputs differ outside axis \(ax)")
        }
        var out = first
        out[ax] = shapes.reduce(0) { $0 + $1[ax] }
        return (.concat(lengths: shapes.map { $0[ax] }, outer: first[..<ax].reduce(1, *), inner: first[(ax + 1)...].reduce(1, *)), [out])

    case .flatten:
        let x = try shape(0)
        let ax = x.isEmpty ? 0 : try axis(node.int("axis") ?? 1, rank: x.count + 1)
        return (.view, [[x[..<ax].reduce(1, *), x[ax...].reduce(1, *)]])

    case .reshape:
        let x = try shape(0)
        var target = node.ints("shape")
        if target == nil, node.inputs.count > 1 { target = intConstant(node.inputs[1]) }
        guard let t = target else { throw fail("reshape needs a shape attribute or constant shape input") }
        var out = [Int]()
        var infer = -1
        for (i, v) in t.enumerated() {
            if v == 0 { guard i < x.count else { throw fail("shape \(t) copies dim \(i) that the input lacks") }; out.append(x[i]) }
            else if v == -1 { guard infer < 0 else { throw fail("shape \(t) has two -1") }; infer = i; out.append(1) }
            else if v > 0 { out.append(v) } else { throw fail("bad shape \(t)") }
        }
        let total = x.reduce(1, *)
        guard let known = try? Tensor.checkedNumel(out) else { throw fail("reshape target \(t) overflows") }
        if infer >= 0 {
            guard known > 0, total % known == 0 else { throw fail("cannot infer -1 in \(t) for \(total) elements") }
            out[infer] = total / known
        }
        guard out.reduce(1, *) == total else { throw fail("reshape to \(t) changes the element count \(total)") }
        return (.view, [out])

    case .transpose:
        let x = try shape(0)
        let perm = node.ints("perm") ?? Array((0..<x.count).reversed())
        guard perm.count == x.count, Set(perm) == Set(0..<x.count) else { throw fail("perm \(perm) is not a permutation of \(x.count) dims") }
        return (.transpose(shape: x, perm: perm), [perm.map { x[$0] }])

    case .dropout:
        let x = try shape(0)
        let ratio = Float(node.float("ratio") ?? 0.5)
        guard ratio >= 0 && ratio < 1 else { throw fail("dropout ratio \(ratio) outside [0, 1)") }
        return (.dropout(ratio: ratio, count: x.reduce(1, *)), [x])

    case .identity:
        return (.view, [try shape(0)])

    case .layerNorm:
        let x = try shape(0)
        var ax: Int
        if let a = node.int("axis") { ax = try axis(a, rank: x.count) }
        else if s.count > 1, let w = s[1] { ax = x.count - w.count } else { ax = x.count - 1 }
        guard ax >= 0 else { throw fail("weight has more dims than the input") }
        let inner = x[ax...].reduce(1, *)
        for i in 1..<min(s.count, 3) { if let v = s[i], v.reduce(1, *) != inner { throw fail("parameter \(i) has \(v.reduce(1, *)) values, expected \(inner)") } }
        return (.layerNorm(rows: x[..<ax].reduce(1, *), inner: inner, epsilon: Float(node.float("epsilon") ?? 1e-5)), [x])

    case .embedding:
        let idx = try shape(0), wt = try shape(1)
        guard wt.count == 2 else { throw fail("embedding weight must be (V, D)") }
        return (.gather(outer: 1, axisLen: wt[0], inner: wt[1], dataInput: 1, indexInput: 0), [idx + [wt[1]]])

    case .gather:
        let data = try shape(0), idx = try shape(1)
        let ax = try axis(node.int("axis") ?? 0, rank: data.count)
        return (.gather(outer: data[..<ax].reduce(1, *), axisLen: data[ax], inner: data[(ax + 1)...].reduce(1, *), dataInput: 0, indexInput: 1),
                [Array(data[..<ax]) + idx + Array(data[(ax + 1)...])])

    case .softmax:
        let x = try shape(0)
        let ax = try axis(node.int("axis") ?? -1, rank: x.count)
        return (.softmax(outer: x[..<ax].reduce(1, *), axisLen: x[ax], inner: x[(ax + 1)...].reduce(1, *)), [x])

    case .pad:
        let x = try shape(0)
        var pads = node.ints("pads") ?? []
        if pads.isEmpty, node.inputs.count > 1, let c = intConstant(node.inputs[1]) { pads = c }
        guard pads.count == 2 * x.count else { throw fail("pads \(pads) must have 2×rank values") }
        guard pads.allSatisfy({ $0 >= 0 }) else { throw fail("negative pads (cropping) are not supported") }
        let mode = node.string("mode") ?? "constant"
        guard mode == "constant" else { throw fail("pad mode '\(mode)' is not supported (only constant)") }
        let out = (0..<x.count).map { x[$0] + pads[$0] + pads[$0 + x.count] }
        return (.pad(shape: x, pads: pads, value: Float(node.float("value") ?? 0)), [out])

    case .attention:
        let q = try shape(0), k = try shape(1), v = try shape(2)
        guard q.count == 3, k.count == 3, v.count == 3, k[2] == q[2], v[2] == q[2], k[1] == v[1], k[0] == v[0],
              k[0] == q[0] || k[0] == 1 else { throw fail("q, k, v must be [B, T, D] with matching D and k/v lengths") }
        guard let heads = node.int("heads"), heads >= 1, q[2] % heads == 0 else { throw fail("heads must divide the model dim \(q[2])") }
        let dh = q[2] / heads
        let g = AttentionGeometry(b: q[0], tq: q[1], tk: k[1], d: q[2], heads: heads, kvBatch: k[0],
                                  scale: Float(node.float("scale") ?? 1 / Double(dh).squareRoot()))
        var maskShape: [Int]? = nil
        if s.count > 3, let m = s[3] {
            guard BroadcastPlan(m, [q[0], heads, q[1], k[1]])?.outShape == [q[0], heads, q[1], k[1]] else {
                throw fail("mask \(m) does not broadcast to [\(q[0]), \(heads), \(q[1]), \(k[1])]")
            }
            maskShape = m
        }
        return (.attention(g, maskShape: maskShape), [q])

    case .slice:
        let x = try shape(0)
        guard let starts = node.ints("starts"), let ends = node.ints("ends"), starts.count == ends.count else {
            throw fail("starts and ends must have the same length")
        }
        let axes = node.ints("axes") ?? Array(0..<starts.count)
        let steps = node.ints("steps") ?? [Int](repeating: 1, count: starts.count)
        guard axes.count == starts.count, steps.count == starts.count else { throw fail("axes/steps length differs from starts") }
        var plan = SlicePlan(inShape: x, starts: [Int](repeating: 0, count: x.count), steps: [Int](repeating: 1, count: x.count), outShape: x)
        for i in 0..<starts.count {
            let a = try axis(axes[i], rank: x.count)
            guard steps[i] > 0 else { throw fail("step \(steps[i]) must be positive") }
            let n = x[a]
            func clamp(_ v: Int) -> Int { let r = v < 0 ? v + n : v; return min(max(r, 0), n) }
            let st = clamp(starts[i]), e = clamp(ends[i])
            plan.starts[a] = st; plan.steps[a] = steps[i]
            plan.outShape[a] = e > st ? (e - st + steps[i] - 1) / steps[i] : 0
        }
        return (.slice(plan), [plan.outShape])

    case .arange:
        let x = try shape(0)
        let ax = try axis(node.int("axis") ?? 0, rank: x.count)
        return (.arange(count: x[ax], start: node.int("start") ?? 0, step: node.int("step") ?? 1), [[x[ax]]])

    default:
        if let compiled = try compileONNXNode(en, inputShapes: s, intConstant: intConstant) { return compiled }
        throw WconvError.invalid("node '\(node.name)': op '\(node.op)' is not supported by the runtime")
    }
}
