import Foundation
import WconvGraph
import WconvTensor

/// Kernels for ONNX-only ops (WconvGraph/ONNX/ONNXOps.swift) that `compileNode` does not handle
/// itself: tile, gatherND, argMax, shape, constantOfShape, range, reductions over non-adjacent
/// axes, f16/bf16-rounding casts and integer division. Every value is held as f32, like the rest
/// of the runtime: integer and bool tensors are exact below 2^24. Ops whose result depends only on
/// shapes (shape, constantOfShape, range, known shape chains) are evaluated when the step is compiled.
enum ONNXUnaryKind { case toHalf, toBFloat16 }
enum ONNXReduceKind { case sum, mean, max }

/// How each of several inputs is read while walking an output shape in row-major order: per-dim
/// strides (0 on broadcast dims), with the last dim walked in an inner loop.
struct NBroadcast: Equatable {
    var outShape: [Int]
    /// strides[input][dim], aligned to outShape.
    var strides: [[Int]]
    var count: Int

    init?(_ inputs: [[Int]], out: [Int]) {
        outShape = out
        count = out.reduce(1, *)
        strides = []
        let r = out.count
        for s in inputs {
            guard s.count <= r else { return nil }
            let padded = [Int](repeating: 1, count: r - s.count) + s
            var st = [Int](repeating: 0, count: r)
            var acc = 1
            for i in stride(from: r - 1, through: 0, by: -1) {
                guard padded[i] == out[i] || padded[i] == 1 else { return nil }
                st[i] = padded[i] == 1 ? 0 : acc
                acc *= padded[i]
            }
            strides.append(st)
        }
    }

    var inner: Int { outShape.last ?? 1 }
    var rows: Int { inner == 0 ? 0 : count / inner }
    /// Stride of input k along the inner (last) dim.
    func innerStride(_ k: Int) -> Int { strides[k].last ?? 0 }

    /// Offset of input k at the start of output row `row`.
    @inline(__always)
    func rowOffset(_ k: Int, _ row: Int) -> Int {
        var rem = row, off = 0
        var i = outShape.count - 2
        let st = strides[k]
        while i >= 0 {
            let d = outShape[i]
            off += (rem % d) * st[i]
            rem /= d
            i -= 1
        }
        return off
    }
}

/// A compiled ONNX-only step.
enum ONNXKernel {
    case unary(ONNXUnaryKind, count: Int)
    /// `map` walks the input; input 0 of the map is the output (reduced dims have stride 0).
    case reduce(ONNXReduceKind, map: NBroadcast, outCount: Int, groupSize: Int)
    case tile(inShape: [Int], outShape: [Int])
    /// Values known when the step was compiled (shape, range).
    case constant([Float])
    case fill(Float, count: Int)
    case gatherND(GatherNDPlan)
    case argMax(outer: Int, axisLen: Int, inner: Int, selectLast: Bool)
    /// ONNX Div on integer tensors: truncates toward zero.
    case intDiv(NBroadcast)
}

struct GatherNDPlan: Equatable {
    var batch: Int
    /// Index tuples per batch entry, tuple length k.
    var tuples: Int
    var k: Int
    /// Data dims addressed by the tuple, and the size of each slice copied.
    var dims: [Int]
    var slice: Int
    /// Data elements per batch entry.
    var batchStride: Int
}

/// Compiles an ONNX-only node, or returns nil when `en.node.op` is not one. Output shapes come
/// from the graph's shape rules so both layers agree; value inputs the builder could not turn
/// into attributes are read from constant parameters here.
func compileONNXNode(_ en: ExecNode, inputShapes s: [[Int]?], intConstant: (String) -> [Int]?) throws -> (Kernel, [[Int]])? {
    var node = en.node
    guard ShapeInference.onnxOps.contains(node.op) else { return nil }
    func fail(_ msg: String) -> WconvError {
        WconvError.invalid("node '\(node.name)' (\(node.op)): \(msg); input shapes \(s.map { $0.map { "\($0)" } ?? "-" })")
    }
    // Value inputs that are constant parameters become the attributes the shape rules read.
    switch node.op {
    case .tile where node.ints("repeats") == nil && node.inputs.count > 1:
        if let v = intConstant(node.inputs[1]) { node.attributes["repeats"] = .ints(v) }
    case .constantOfShape where node.ints("shape") == nil && !node.inputs.isEmpty:
        if let v = intConstant(node.inputs[0]) { node.attributes["shape"] = .ints(v) }
    default: break
    }
    let outs = try ShapeInference.outputShapes(node, s)
    let x = s.first.flatMap { $0 } ?? []
    let count = outs[0].reduce(1, *)

    switch node.op {
    case .cast:
        let to = DType(rawValue: node.string("to") ?? "f32") ?? .f32
        if to == .f16 { return (.onnx(.unary(.toHalf, count: count)), outs) }
        if to == .bf16 { return (.onnx(.unary(.toBFloat16, count: count)), outs) }
        return nil
    case .reduceMean, .reduceSum, .reduceMax:
        let axes = try ShapeInference.reducedAxes(node, s, rank: x.count)
        var kept = x
        for a in axes { kept[a] = 1 }
        guard let m = NBroadcast([kept], out: x) else { throw fail("internal: reduce map") }
        let group = axes.reduce(1) { $0 * x[$1] }
        if node.op == .reduceMax && group == 0 { throw fail("max over an empty dim") }
        let kind: ONNXReduceKind = node.op == .reduceMean ? .mean : node.op == .reduceSum ? .sum : .max
        return (.onnx(.reduce(kind, map: m, outCount: count, groupSize: group)), outs)
    case .tile:
        return (.onnx(.tile(inShape: x, outShape: outs[0])), outs)
    case .shape:
        let (a, b) = ShapeInference.shapeRange(node, rank: x.count)
        return (.onnx(.constant(x[a..<b].map { Float($0) })), outs)
    case .constantOfShape:
        return (.onnx(.fill(Float(node.float("value") ?? 0), count: count)), outs)
    case .range:
        guard let start = node.float("start"), let delta = node.float("delta") else { throw fail("start and delta must be constants") }
        guard count <= 1 << 28 else { throw fail("range of \(count) elements is too large") }
        return (.onnx(.constant((0..<count).map { Float(start + Double($0) * delta) })), outs)
    case .gatherND:
        let data = s[0]!, idx = s[1]!
        let b = node.int("batchDims") ?? 0, k = idx.last!
        let batch = data.prefix(b).reduce(1, *)
        let plan = GatherNDPlan(batch: batch, tuples: idx.dropFirst(b).dropLast().reduce(1, *), k: k,
                                dims: Array(data[b..<(b + k)]), slice: data[(b + k)...].reduce(1, *),
                                batchStride: data.dropFirst(b).reduce(1, *))
        return (.onnx(.gatherND(plan)), outs)
    case .argMax:
        let a = node.int("axis") ?? 0, ax = a < 0 ? a + x.count : a
        guard x[ax] > 0 else { throw fail("argMax over an empty dim") }
        return (.onnx(.argMax(outer: x[..<ax].reduce(1, *), axisLen: x[ax], inner: x[(ax + 1)...].reduce(1, *),
                              selectLast: (node.int("selectLastIndex") ?? 0) != 0)), outs)
    default:
        return nil
    }
}

/// `compileNode` for the planner, with shape-derived integer values folded: the node's result is
/// recorded in `known`, and a node whose whole integer result is known (a shape chain) becomes a
/// constant step computed once per planned input shape.
func compileFoldingKnownValues(_ en: ExecNode, inputShapes: [[Int]?], known: inout KnownValues,
                               intConstant: (String) -> [Int]?, constant: (String) -> [Double]?) throws -> (Kernel, [[Int]]) {
    let (kernel, outShapes) = try compileNode(en, inputShapes: inputShapes, intConstant: intConstant, constant: constant)
    known.record(en.node, inputShapes: inputShapes, outputShapes: outShapes)
    if en.node.outputs.count == 1, !en.node.inputs.isEmpty, en.fused == .none, let v = known.values[en.node.outputs[0]] {
        return (.onnx(.constant(v.map { Float($0) })), outShapes)
    }
    if en.node.op == .div, en.node.inputs.count == 2, en.node.inputs.allSatisfy(known.isIntegral),
       let a = inputShapes[0], let b = inputShapes[1], let m = NBroadcast([a, b], out: outShapes[0]) {
        return (.onnx(.intDiv(m)), outShapes)
    }
    return (kernel, outShapes)
}
