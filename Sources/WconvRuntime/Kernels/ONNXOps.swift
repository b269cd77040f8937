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

/// Compiles tile, gatherND and argMax, or returns nil for any other op. Output shapes come from
/// the graph's shape inference.
func compileONNXNode(_ en: ExecNode, inputShapes s: [[Int]?], outputShapes outs: [[Int]]) throws -> Kernel? {
    let node = en.node
    func fail(_ msg: String) -> WconvError {
        WconvError.invalid("node '\(node.name)' (\(node.op)): \(msg); input shapes \(s.map { $0.map { "\($0)" } ?? "-" })")
    }
    let x = s.first.flatMap { $0 } ?? []
    switch node.op {
    case .tile:
        return .onnx(.tile(inShape: x, outShape: outs[0]))
    case .gatherND:
        guard let data = s[0], let idx = s[1] else { throw fail("missing input") }
        let b = node.int("batchDims") ?? 0, k = idx.last!
        let batch = data.prefix(b).reduce(1, *)
        let plan = GatherNDPlan(batch: batch, tuples: idx.dropFirst(b).dropLast().reduce(1, *), k: k,
                                dims: Array(data[b..<(b + k)]), slice: data[(b + k)...].reduce(1, *),
                                batchStride: data.dropFirst(b).reduce(1, *))
        return .onnx(.gatherND(plan))
    case .argMax:
        let a = node.int("axis") ?? 0, ax = a < 0 ? a + x.count : a
        guard x[ax] > 0 else { throw fail("argMax over an empty dim") }
        return .onnx(.argMax(outer: x[..<ax].reduce(1, *), axisLen: x[ax], inner: x[(ax + 1)...].reduce(1, *),
                             selectLast: (node.int("selectLastIndex") ?? 0) != 0))
    default:
        return nil
    }
}
