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
    /// An op from the kernel catalog (Ops/*Kernels.swift): selection, forward and backward in one place.
    case op(any StepKernel)
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

/// Kernel selection for one node. Output shapes come from the graph's shape inference
/// (`ModelGraph.specialize`), never recomputed here; a kernel whose own geometry disagrees with them
/// is refused, so no kernel can write outside the buffer planned for its output.
func compileNode(_ en: ExecNode, inputShapes s: [[Int]?], outputShapes outs: [[Int]], dtypes: [DType?], training: Bool) throws -> Kernel {
    let node = en.node
    func fail(_ msg: String) -> WconvError {
        WconvError.invalid("node '\(node.name)' (\(node.op)): \(msg); input shapes \(s.map { $0.map { "\($0)" } ?? "-" })")
    }
    func shape(_ i: Int) throws -> [Int] {
        guard i < s.count, let v = s[i] else { throw fail("missing input \(i)") }
        return v
    }
    func attr(_ key: String, _ count: Int, _ dflt: Int) throws -> [Int] {
        guard let v = node.ints(key, count: count, default: dflt) else { throw fail("attribute \(key) must have 1 or \(count) values, has \(node.ints(key) ?? [])") }
        return v
    }
    func axis(_ a: Int, rank: Int) throws -> Int {
        let r = a < 0 ? a + rank : a
        guard r >= 0 && r < max(rank, 1) else { throw fail("axis \(a) out of range for rank \(rank)") }
        return r
    }
    /// The kernel's own output size must be the one planned.
    func agree(_ got: [Int], _ k: Int = 0) throws {
        guard k < outs.count, outs[k] == got else { throw fail("internal: kernel geometry gives \(got), shape inference \(k < outs.count ? "\(outs[k])" : "nothing")") }
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
    let out0 = outs.first ?? []
    let count0 = out0.reduce(1, *)
    if let kernels = KernelCatalog.byOp[node.op] {
        return .op(try kernels.select(KernelRequest(exec: en, inputShapes: s, outputShapes: outs, inputDTypes: dtypes, training: training)))
    }

    switch node.op {
    case .conv2d:
        let x = try shape(0), wt = try shape(1)
        guard x.count == 4, wt.count == 4, wt.allSatisfy({ $0 > 0 }) else { throw fail("conv2d expects an NCHW input and an OIHW weight with positive dims") }
        let groups = node.int("group") ?? 1
        guard groups >= 1, x[1] % groups == 0, wt[0] % groups == 0, wt[1] * groups == x[1] else {
            throw fail("weight \(wt) with group \(groups) does not fit \(x[1]) input channels")
        }
        if s.count > 2, let b = s[2], b.reduce(1, *) != wt[0] { throw fail("bias shape \(b) must be [\(wt[0])]") }
        let st = try attr("strides", 2, 1), d = try attr("dilations", 2, 1), p = try attr("pads", 4, 0)
        let g = ConvGeometry(n: x[0], c: x[1], h: x[2], w: x[3], o: wt[0], kh: wt[2], kw: wt[3], sh: st[0], sw: st[1],
                             pt: p[0], pl: p[1], pb: p[2], pr: p[3], dh: d[0], dw: d[1], groups: groups)
        try agree([g.n, g.o, g.ho, g.wo])
        return .conv(g, act)

    case .batchNorm:
        let x = try shape(0)
        let c = x[1]
        for i in 1..<min(s.count, 5) { if let v = s[i], v.reduce(1, *) != c { throw fail("parameter \(i) has shape \(v), expected [\(c)]") } }
        let inner = x.dropFirst(2).reduce(1, *)
        if en.isAffine { return .affine(n: x[0], c: c, inner: inner, act) }
        return .batchNorm(n: x[0], c: c, inner: inner, epsilon: Float(node.float("epsilon") ?? 1e-5),
                          momentum: Float(node.float("momentum") ?? 0.1), act)

    case .linear:
        let x = try shape(0), wt = try shape(1)
        if s.count > 2, let b = s[2], b.reduce(1, *) != wt[0] { throw fail("bias shape \(b) must be [\(wt[0])]") }
        try agree(Array(x.dropLast()) + [wt[0]])
        return .linear(rows: x.dropLast().reduce(1, *), inF: wt[1], outF: wt[0], act)

    case .matmul:
        guard let p = MatmulPlan(try shape(0), try shape(1)) else { throw fail("matmul shapes do not fit") }
        try agree(p.outShape)
        return .matmul(p)

    case .relu, .relu6, .clip, .silu, .gelu, .hardSwish, .hardSigmoid, .sigmoid, .tanh:
        return .activation(Activation.from(node)!, count: count0)

    case .maxPool2d, .avgPool2d:
        let x = try shape(0)
        let kernel = try attr("kernel", 2, 0)
        let st = node.ints("strides") == nil ? kernel : try attr("strides", 2, 1), p = try attr("pads", 4, 0), d = try attr("dilations", 2, 1)
        let g = PoolGeometry(n: x[0], c: x[1], h: x[2], w: x[3], kernel: kernel, strides: st, pads: p, dilations: d,
                             ceilMode: (node.int("ceilMode") ?? 0) != 0, countIncludePad: (node.int("countIncludePad") ?? 1) != 0)
        try agree([g.n, g.c, g.ho, g.wo])
        return node.op == .maxPool2d ? .maxPool(g) : .avgPool(g)

    case .adaptiveAvgPool2d:
        let x = try shape(0)
        return .adaptiveAvgPool(planes: x[0] * x[1], h: x[2], w: x[3], oh: out0[2], ow: out0[3])

    case .globalAvgPool:
        // Any number of spatial dims: one plane of all spatial elements per (n, c).
        let x = try shape(0)
        return .adaptiveAvgPool(planes: x[0] * x[1], h: x.dropFirst(2).reduce(1, *), w: 1, oh: 1, ow: 1)

    case .unsqueeze, .squeeze, .flatten, .reshape, .identity:
        return .view

    case .split:
        let x = try shape(0)
        let ax = try axis(node.int("axis") ?? 0, rank: x.count)
        let sizes = outs.map { $0[ax] }
        guard sizes.reduce(0, +) == x[ax] else { throw fail("internal: split sizes \(sizes) do not cover \(x[ax])") }
        return .split(lengths: sizes, outer: x[..<ax].reduce(1, *), inner: x[(ax + 1)...].reduce(1, *))

    case .shape:
        let x = try shape(0)
        let (a, b) = ShapeValueOps.shapeRange(node, rank: x.count)
        return .constant(x[a..<b].map { Float($0) })

    case .constantOfShape:
        return .fill(value: Float(node.float("value") ?? 0), count: count0)

    case .range:
        guard let a = node.float("start"), let d = node.float("delta") else { throw fail("range needs start, limit and delta known before running") }
        return .range(start: Float(a), delta: Float(d), count: count0)

    case .arange:
        return .arange(count: count0, start: node.int("start") ?? 0, step: node.int("step") ?? 1)

    case .expand:
        guard let p = BroadcastPlan(try shape(0), out0), p.outShape == out0 else { throw fail("internal: expand plan") }
        return .expand(p)

    case .concat:
        let shapes = try (0..<s.count).map { try shape($0) }
        let ax = try axis(node.int("axis") ?? 0, rank: out0.count)
        return .concat(lengths: shapes.map { $0[ax] }, outer: out0[..<ax].reduce(1, *), inner: out0[(ax + 1)...].reduce(1, *))

    case .transpose:
        let x = try shape(0)
        let perm = node.ints("perm") ?? Array((0..<x.count).reversed())
        return .transpose(shape: x, perm: perm)

    case .dropout:
        let ratio = Float(node.float("ratio") ?? 0.5)
        guard ratio >= 0 && ratio < 1 else { throw fail("dropout ratio \(ratio) outside [0, 1)") }
        return .dropout(ratio: ratio, count: count0)

    case .layerNorm:
        let x = try shape(0)
        var ax: Int
        if let a = node.int("axis") { ax = try axis(a, rank: x.count) }
        else if s.count > 1, let w = s[1] { ax = x.count - w.count } else { ax = x.count - 1 }
        guard ax >= 0 else { throw fail("weight has more dims than the input") }
        let inner = x[ax...].reduce(1, *)
        for i in 1..<min(s.count, 3) { if let v = s[i], v.reduce(1, *) != inner { throw fail("parameter \(i) has \(v.reduce(1, *)) values, expected \(inner)") } }
        return .layerNorm(rows: x[..<ax].reduce(1, *), inner: inner, epsilon: Float(node.float("epsilon") ?? 1e-5))

    case .embedding:
        let wt = try shape(1)
        return .gather(outer: 1, axisLen: wt[0], inner: wt[1], dataInput: 1, indexInput: 0)

    case .gather:
        let data = try shape(0)
        let ax = try axis(node.int("axis") ?? 0, rank: data.count)
        return .gather(outer: data[..<ax].reduce(1, *), axisLen: data[ax], inner: data[(ax + 1)...].reduce(1, *), dataInput: 0, indexInput: 1)

    case .softmax:
        let x = try shape(0)
        let ax = try axis(node.int("axis") ?? -1, rank: x.count)
        return .softmax(outer: x[..<ax].reduce(1, *), axisLen: x[ax], inner: x[(ax + 1)...].reduce(1, *))

    case .pad:
        let x = try shape(0)
        guard let pads = node.ints("pads"), pads.count == 2 * x.count else { throw fail("pads must be known and have 2×rank values") }
        guard pads.allSatisfy({ $0 >= 0 }) else { throw fail("negative pads (cropping) are not supported") }
        let mode = node.string("mode") ?? "constant"
        guard mode == "constant" else { throw fail("pad mode '\(mode)' is not supported (only constant)") }
        return .pad(shape: x, pads: pads, value: Float(node.float("value") ?? 0))

    case .attention:
        let q = try shape(0), k = try shape(1)
        let heads = node.int("heads") ?? 1
        let g = AttentionGeometry(b: q[0], tq: q[1], tk: k[1], d: q[2], heads: heads, kvBatch: k[0],
                                  scale: Float(node.float("scale") ?? 1 / Double(q[2] / heads).squareRoot()))
        return .attention(g, maskShape: s.count > 3 ? s[3] : nil)

    case .slice:
        let x = try shape(0)
        let p = try ShapeOps.slicePlan(node, x, fail: fail)
        try agree(p.out)
        return .slice(SlicePlan(inShape: x, starts: p.starts, steps: p.steps, outShape: p.out))

    default:
        throw WconvError.invalid("node '\(node.name)': op '\(node.op)' is not supported by the runtime")
    }
}
