import Foundation
import WconvGraph
import WconvTensor

/// Ops that move or select elements (docs/adding-an-op.md).
enum ShapeKernels {
    static let all: [OpKernels] = [Op.unsqueeze, .squeeze, .flatten, .reshape].map { OpKernels($0) { _ in View() } }
        + [tile, gatherND, concat, transpose, gather, embedding, pad, slice, split, expand]

    static let concat = OpKernels(.concat) { r in
        let shapes = try (0..<r.inputShapes.count).map { try r.shape($0) }
        let out = r.outShape
        let ax = try r.axis(r.node.int("axis") ?? 0, rank: out.count)
        guard shapes.map({ $0[ax] }).reduce(0, +) == out[ax] else { throw r.fail("internal: concat lengths") }
        return Concat(lengths: shapes.map { $0[ax] }, outer: out[..<ax].reduce(1, *), inner: out[(ax + 1)...].reduce(1, *))
    }

    static let transpose = OpKernels(.transpose) { r in
        let x = try r.shape(0)
        return Transpose(shape: x, perm: r.node.ints("perm") ?? Array((0..<x.count).reversed()))
    }

    static let gather = OpKernels(.gather) { r in
        let data = try r.shape(0)
        let ax = try r.axis(r.node.int("axis") ?? 0, rank: data.count)
        return Gather(outer: data[..<ax].reduce(1, *), axisLen: data[ax], inner: data[(ax + 1)...].reduce(1, *), dataInput: 0, indexInput: 1)
    }

    /// Embedding is a gather over axis 0 of the weight.
    static let embedding = OpKernels(.embedding) { r in
        let wt = try r.shape(1)
        return Gather(outer: 1, axisLen: wt[0], inner: wt[1], dataInput: 1, indexInput: 0, paddingIndex: r.node.int("paddingIdx"))
    }

    static let pad = OpKernels(.pad) { r in
        let x = try r.shape(0)
        let pads = try ShapeOps.padPlan(r.node, rank: x.count, fail: r.fail)
        return Pad(shape: x, outShape: r.outShape, pads: pads, mode: r.node.string("mode") ?? "constant", value: Float(r.node.float("value") ?? 0))
    }

    static let slice = OpKernels(.slice) { r in
        let x = try r.shape(0)
        let p = try ShapeOps.slicePlan(r.node, x, fail: r.fail)
        try r.agree(p.out)
        return Slice(plan: SlicePlan(inShape: x, starts: p.starts, steps: p.steps, outShape: p.out))
    }

    static let split = OpKernels(.split) { r in
        let x = try r.shape(0)
        let ax = try r.axis(r.node.int("axis") ?? 0, rank: x.count)
        let sizes = r.outputShapes.map { $0[ax] }
        guard sizes.reduce(0, +) == x[ax] else { throw r.fail("internal: split sizes \(sizes) do not cover \(x[ax])") }
        return Split(lengths: sizes, outer: x[..<ax].reduce(1, *), inner: x[(ax + 1)...].reduce(1, *))
    }

    static let expand = OpKernels(.expand) { r in
        guard let p = BroadcastPlan(try r.shape(0), r.outShape), p.outShape == r.outShape else { throw r.fail("internal: expand plan") }
        return Expand(plan: p)
    }

    static let tile = OpKernels(.tile) { r in Tile(inShape: try r.shape(0), outShape: r.outShape) }

    static let gatherND = OpKernels(.gatherND) { r in
        let data = try r.shape(0), idx = try r.shape(1)
        let b = r.node.int("batchDims") ?? 0, k = idx.last!
        return GatherND(batch: data.prefix(b).reduce(1, *), tuples: idx.dropFirst(b).dropLast().reduce(1, *), k: k,
                        dims: Array(data[b..<(b + k)]), slice: data[(b + k)...].reduce(1, *),
                        batchStride: data.dropFirst(b).reduce(1, *))
    }
}

/// ONNX Tile: forward copies x[source] into y[output]; backward accumulates dy[output] into dx[source].
struct Tile: StepKernel {
    let inShape: [Int], outShape: [Int]
    func extents(inputs: [Int], outputs: [Int]) -> StepExtents {
        // Output index d reads input index d mod the input's dim: same rank, no empty input dim.
        var e = StepExtents(inputs: inputs.count, outputs: outputs.count)
        let total = outShape.reduce(1, *)
        let fits = total == 0 || (inShape.count == outShape.count && !inShape.contains(0))
        e.read(0, fits ? (total == 0 ? 0 : inShape.reduce(1, *)) : Int.max); e.write(0, total)
        return e
    }
    func forward(_ c: StepContext) throws { tileCopy(c.input(0)!, inShape: inShape, outShape: outShape, c.output(), backward: false) }
    func backward(_ c: BackwardContext) throws {
        guard let dy = c.outputGradient(), let d = c.inputGradient(0) else { return }
        tileCopy(d, inShape: inShape, outShape: outShape, UnsafeMutablePointer(mutating: dy), backward: true)
    }
}

func tileCopy(_ x: UnsafeMutablePointer<Float>, inShape: [Int], outShape: [Int], _ y: UnsafeMutablePointer<Float>, backward: Bool) {
    let r = outShape.count
    let total = outShape.reduce(1, *)
    guard total > 0 else { return }
    guard r > 0 else { if backward { x[0] += y[0] } else { y[0] = x[0] }; return }
    var inStrides = [Int](repeating: 1, count: r)
    for i in stride(from: r - 2, through: 0, by: -1) { inStrides[i] = inStrides[i + 1] * inShape[i + 1] }
    let inner = outShape[r - 1], innerIn = inShape[r - 1]
    var idx = [Int](repeating: 0, count: r)
    var o = 0
    while o < total {
        var base = 0
        for d in 0..<(r - 1) { base += (idx[d] % inShape[d]) * inStrides[d] }
        let px = x + base, py = y + o
        if backward { for j in 0..<inner { px[j % innerIn] += py[j] } } else { for j in 0..<inner { py[j] = px[j % innerIn] } }
        o += inner
        var d = r - 2
        while d >= 0 { idx[d] += 1; if idx[d] < outShape[d] { break }; idx[d] = 0; d -= 1 }
    }
}

/// ONNX GatherND with batch_dims: index tuples of length k address slices of the data; indices
/// are checked (integral, in range) when the step runs.
struct GatherND: StepKernel {
    var batch: Int
    /// Index tuples per batch entry, tuple length k.
    var tuples: Int
    var k: Int
    /// Data dims addressed by the tuple, and the size of each slice copied.
    var dims: [Int]
    var slice: Int
    /// Data elements per batch entry.
    var batchStride: Int

    /// Element offset of tuple t of batch b within its batch entry.
    func extents(inputs: [Int], outputs: [Int]) -> StepExtents {
        var e = StepExtents(inputs: inputs.count, outputs: outputs.count)
        let fits = dims.reduce(1, *) * slice <= batchStride
        e.read(0, fits ? batch * batchStride : Int.max); e.read(1, batch * tuples * k)
        e.write(0, batch * tuples * slice)
        return e
    }
    func offset(_ idx: UnsafePointer<Float>, _ b: Int, _ t: Int, name: String) throws -> Int {
        let tuple = idx + (b * tuples + t) * k
        var off = 0
        for d in 0..<k {
            let f = tuple[d]
            guard f.isFinite, f == f.rounded(), Swift.abs(f) < 9e18 else { throw WconvError.invalid("node '\(name)': index \(f) is not an integer") }
            var v = Int(f)
            if v < 0 { v += dims[d] }
            guard v >= 0 && v < dims[d] else {
                throw WconvError.invalid("node '\(name)': index \(Int(f)) out of range for a dimension of size \(dims[d])")
            }
            off = off * dims[d] + v
        }
        return off
    }

    func forward(_ c: StepContext) throws {
        let data = c.input(0)!, idx = c.input(1)!, y = c.output()
        for b in 0..<batch {
            for t in 0..<tuples {
                let off = try offset(idx, b, t, name: c.nodeName)
                copyFloats(y + (b * tuples + t) * slice, from: data + b * batchStride + off * slice, count: slice)
            }
        }
    }

    func backward(_ c: BackwardContext) throws {
        guard let dy = c.outputGradient(), let d = c.inputGradient(0) else { return }
        let idx = c.input(1)!
        for b in 0..<batch {
            for t in 0..<tuples {
                let off = try offset(idx, b, t, name: "gatherND")
                let dst = d + b * batchStride + off * slice, src = dy + (b * tuples + t) * slice
                for i in 0..<slice { dst[i] += src[i] }
            }
        }
    }
}

/// One output along an axis from several inputs: data viewed as [outer, Σ lengths, inner].
struct Concat: StepKernel {
    let lengths: [Int], outer: Int, inner: Int
    func extents(inputs: [Int], outputs: [Int]) -> StepExtents {
        var e = StepExtents(inputs: inputs.count, outputs: outputs.count)
        for (k, len) in lengths.enumerated() { e.read(k, outer * len * inner) }
        e.write(0, outer * lengths.reduce(0, +) * inner)
        return e
    }
    func forward(_ c: StepContext) throws {
        concatForward((0..<lengths.count).map { UnsafePointer(c.input($0)!) }, lengths: lengths, outer: outer, inner: inner, c.output())
    }
    func backward(_ c: BackwardContext) throws {
        guard let dy = c.outputGradient() else { return }
        concatBackward(dy, lengths: lengths, outer: outer, inner: inner, dxs: (0..<lengths.count).map { c.inputGradient($0) })
    }
}

struct Transpose: StepKernel {
    let shape: [Int], perm: [Int]
    func extents(inputs: [Int], outputs: [Int]) -> StepExtents {
        var e = StepExtents(inputs: inputs.count, outputs: outputs.count)
        let n = Set(perm) == Set(shape.indices) && perm.count == shape.count ? shape.reduce(1, *) : Int.max
        e.read(0, n); e.write(0, shape.reduce(1, *))
        return e
    }
    func forward(_ c: StepContext) throws { transposeForward(c.input(0)!, shape: shape, perm: perm, c.output()) }
    func backward(_ c: BackwardContext) throws {
        guard let dy = c.outputGradient(), let d = c.inputGradient(0) else { return }
        transposeForward(dy, shape: perm.map { shape[$0] }, perm: inversePermutation(perm), d, accumulate: true)
    }
}

/// Gather along one axis (and embedding lookup); indices are checked when the step runs.
struct Gather: StepKernel {
    let outer: Int, axisLen: Int, inner: Int
    let dataInput: Int, indexInput: Int
    /// Embedding's padding_idx: that row gets no gradient.
    var paddingIndex: Int? = nil

    func extents(inputs: [Int], outputs: [Int]) -> StepExtents {
        // One output row of `inner` per index and outer block; index values are checked (constant
        // ones at plan time, others when the step runs).
        StepExtents(inputs, outputs) {
            $0.read(dataInput, outer * axisLen * inner)
            $0.write(0, outer * (indexInput < inputs.count ? inputs[indexInput] : 0) * inner)
            $0.indices = [(indexInput, axisLen)]
        }
    }
    static func indices(_ p: UnsafePointer<Float>, count: Int, bound: Int, node: String) throws -> [Int] {
        var out = [Int](repeating: 0, count: count)
        for i in 0..<count {
            let f = p[i]
            guard f.isFinite, f == f.rounded(), Swift.abs(f) < 9e18 else { throw WconvError.invalid("node '\(node)': index \(f) is not an integer") }
            var v = Int(f)
            if v < 0 { v += bound }
            guard v >= 0 && v < bound else {
                throw WconvError.invalid("node '\(node)': index \(Int(f)) out of range for a dimension of size \(bound)")
            }
            out[i] = v
        }
        return out
    }

    func forward(_ c: StepContext) throws {
        let n = c.executor.shapes[c.step.inputs[indexInput]]!.reduce(1, *)
        let idx = try Gather.indices(c.input(indexInput)!, count: n, bound: axisLen, node: c.nodeName)
        gatherForward(c.input(dataInput)!, outer: outer, axisLen: axisLen, inner: inner, indices: idx, c.output())
    }
    func backward(_ c: BackwardContext) throws {
        guard let dy = c.outputGradient(), let d = c.inputGradient(dataInput) else { return }
        let n = c.executor.shapes[c.step.inputs[indexInput]]!.reduce(1, *)
        let idx = try Gather.indices(c.input(indexInput)!, count: n, bound: axisLen, node: "gather")
        gatherBackward(dy: dy, outer: outer, axisLen: axisLen, inner: inner, indices: idx, dData: d, skipping: paddingIndex)
    }
}

/// Pad in every ONNX mode, negative pads cropping: each output index reads one input index per dim
/// (constant mode: none outside the input, which takes the value).
struct Pad: StepKernel {
    /// source[d][o]: the input index output index o of dim d reads, −1 for the constant.
    let source: [[Int]]
    let inShape: [Int], outShape: [Int]
    let value: Float

    func extents(inputs: [Int], outputs: [Int]) -> StepExtents {
        // Every output index reads one input index per dim (or the constant): all inside the input.
        var e = StepExtents(inputs: inputs.count, outputs: outputs.count)
        let inside = source.count == inShape.count && outShape.count == inShape.count
            && inShape.indices.allSatisfy { d in source[d].count == outShape[d] && source[d].allSatisfy { $0 < inShape[d] } }
        e.read(0, inside ? inShape.reduce(1, *) : Int.max); e.write(0, outShape.reduce(1, *))
        return e
    }
    init(shape: [Int], outShape: [Int], pads: [Int], mode: String, value: Float) {
        let r = shape.count
        inShape = shape; self.outShape = outShape; self.value = value
        source = (0..<r).map { d in
            let n = shape[d]
            return (0..<outShape[d]).map { o -> Int in
                let i = o - pads[d]
                if i >= 0 && i < n { return i }
                switch mode {
                case "reflect": return i < 0 ? min(-i, n - 1) : max(2 * (n - 1) - i, 0)
                case "edge": return i < 0 ? 0 : n - 1
                case "wrap": return ((i % n) + n) % n
                default: return -1
                }
            }
        }
    }

    /// Calls body(output row, input row offset or nil) for every output row (all dims but the last).
    func rows(_ body: (Int, Int?) -> Void) {
        let r = outShape.count
        guard r > 0 else { body(0, 0); return }
        let inStrides = Tensor.contiguousStrides(inShape)
        let rows = outShape.dropLast().reduce(1, *)
        for row in 0..<rows {
            var rem = row, off = 0, inside = true
            for d in stride(from: r - 2, through: 0, by: -1) {
                let src = source[d][rem % outShape[d]]
                rem /= outShape[d]
                if src < 0 { inside = false; break }
                off += src * inStrides[d]
            }
            body(row, inside ? off : nil)
        }
    }

    func forward(_ c: StepContext) throws {
        let x = c.input(0)!, y = c.output()
        let inner = outShape.last ?? 1, last = source.last ?? [0]
        rows { row, off in
            let py = y + row * inner
            guard let off else { for j in 0..<inner { py[j] = value }; return }
            for j in 0..<inner { let s = last[j]; py[j] = s < 0 ? value : x[off + s] }
        }
    }

    func backward(_ c: BackwardContext) throws {
        guard let dy = c.outputGradient(), let dx = c.inputGradient(0) else { return }
        let inner = outShape.last ?? 1, last = source.last ?? [0]
        rows { row, off in
            guard let off else { return }
            let g = dy + row * inner
            for j in 0..<inner where last[j] >= 0 { dx[off + last[j]] += g[j] }
        }
    }
}

struct Slice: StepKernel {
    let plan: SlicePlan
    func extents(inputs: [Int], outputs: [Int]) -> StepExtents {
        // The first and last element read along each axis (steps may be negative) lie inside it.
        let p = plan, r = p.inShape.count
        var e = StepExtents(inputs: inputs.count, outputs: outputs.count)
        let ranks = p.outShape.count == r && p.starts.count == r && p.steps.count == r
        let inside = ranks && (p.outShape.contains(0) || (0..<r).allSatisfy { a in
            let first = p.starts[a], last = first + (p.outShape[a] - 1) * p.steps[a]
            return first >= 0 && first < p.inShape[a] && last >= 0 && last < p.inShape[a]
        })
        e.read(0, inside ? p.inShape.reduce(1, *) : Int.max); e.write(0, p.outShape.reduce(1, *))
        return e
    }
    func forward(_ c: StepContext) throws { sliceCopy(c.input(0)!, plan, c.output(), backward: false) }
    func backward(_ c: BackwardContext) throws {
        guard let dy = c.outputGradient(), let d = c.inputGradient(0) else { return }
        sliceCopy(d, plan, UnsafeMutablePointer(mutating: dy), backward: true)
    }
}

/// One output per piece along an axis: data viewed as [outer, Σ lengths, inner].
struct Split: StepKernel {
    let lengths: [Int], outer: Int, inner: Int
    func extents(inputs: [Int], outputs: [Int]) -> StepExtents {
        var e = StepExtents(inputs: inputs.count, outputs: outputs.count)
        e.read(0, outer * lengths.reduce(0, +) * inner)
        for (k, len) in lengths.enumerated() { e.write(k, outer * len * inner) }
        return e
    }
    func forward(_ c: StepContext) throws {
        let x = c.input(0)!
        let total = lengths.reduce(0, +)
        var off = 0
        for (k, len) in lengths.enumerated() {
            let dst = c.output(k)
            for o in 0..<outer { copyFloats(dst + o * len * inner, from: x + (o * total + off) * inner, count: len * inner) }
            off += len
        }
    }
    func backward(_ c: BackwardContext) throws {
        guard let d = c.inputGradient(0) else { return }
        let total = lengths.reduce(0, +)
        var off = 0
        for (k, len) in lengths.enumerated() {
            if let g = c.outputGradient(k) {
                for o in 0..<outer {
                    let s = g + o * len * inner, t = d + (o * total + off) * inner
                    for i in 0..<(len * inner) { t[i] += s[i] }
                }
            }
            off += len
        }
    }
}

/// x broadcast to the output.
struct Expand: StepKernel {
    let plan: BroadcastPlan
    func extents(inputs: [Int], outputs: [Int]) -> StepExtents {
        StepExtents(inputs, outputs) { $0.read(0, stridedSpan(plan.dims, plan.sa)); $0.write(0, plan.count) }
    }
    func forward(_ c: StepContext) throws {
        let y = c.output()
        fillFloats(y, with: 0, count: plan.count)
        binaryForward(.add, c.input(0)!, y, plan, y)
    }
    func backward(_ c: BackwardContext) throws {
        guard let dy = c.outputGradient(), let d = c.inputGradient(0) else { return }
        binaryBackward(.add, c.input(0)!, c.input(0)!, plan, dy: dy, da: d, db: nil)
    }
}
