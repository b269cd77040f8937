import Foundation
import WconvGraph
import WconvTensor

/// Ops that move or select elements (docs/adding-an-op.md).
enum ShapeKernels {
    static let all: [OpKernels] = [tile, gatherND]

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
                (y + (b * tuples + t) * slice).update(from: data + b * batchStride + off * slice, count: slice)
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
