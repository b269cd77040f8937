import Foundation
import WconvTensor

extension Executor {
    /// Forward of one ONNX-only step (see ONNXOps.swift).
    func runONNX(_ kernel: ONNXKernel, _ st: Step) throws {
        func inp(_ k: Int) -> UnsafePointer<Float> { UnsafePointer(ptrs[st.inputs[k]]!) }
        let y = ptrs[st.outputs[0]]!
        switch kernel {
        case .unary(let kind, let count):
            onnxUnaryForward(kind, inp(0), y, count)
        case .reduce(let kind, let m, let outCount, let group):
            onnxReduceForward(kind, inp(0), map: m, outCount: outCount, groupSize: group, y)
        case .tile(let inShape, let outShape):
            tileCopy(ptrs[st.inputs[0]]!, inShape: inShape, outShape: outShape, y, backward: false)
        case .constant(let values):
            copyFloats(y, from: values)
        case .fill(let v, let count):
            fillFloats(y, with: v, count: count)
        case .gatherND(let p):
            let data = inp(0), idx = ptrs[st.inputs[1]]!
            let name = nodes[st.node].node.name
            for b in 0..<p.batch {
                for t in 0..<p.tuples {
                    let tuple = idx + (b * p.tuples + t) * p.k
                    var off = 0
                    for d in 0..<p.k {
                        let f = tuple[d]
                        guard f.isFinite, f == f.rounded(), Swift.abs(f) < 9e18 else { throw WconvError.invalid("node '\(name)': index \(f) is not an integer") }
                        var v = Int(f)
                        if v < 0 { v += p.dims[d] }
                        guard v >= 0 && v < p.dims[d] else {
                            throw WconvError.invalid("node '\(name)': index \(Int(f)) out of range for a dimension of size \(p.dims[d])")
                        }
                        off = off * p.dims[d] + v
                    }
                    copyFloats(y + (b * p.tuples + t) * p.slice, from: data + b * p.batchStride + off * p.slice, count: p.slice)
                }
            }
        case .intDiv(let m):
            let a = inp(0), b = inp(1)
            let name = nodes[st.node].node.name
            let inner = m.inner, ia = m.innerStride(0), ib = m.innerStride(1)
            for row in 0..<m.rows {
                let pa = a + m.rowOffset(0, row), pb = b + m.rowOffset(1, row), py = y + row * inner
                for i in 0..<inner {
                    let d = pb[i * ib]
                    guard d != 0 else { throw WconvError.invalid("node '\(name)': integer division by zero") }
                    py[i] = Float((Double(pa[i * ia]) / Double(d)).rounded(.towardZero))
                }
            }
        case .argMax(let outer, let axisLen, let inner, let selectLast):
            let x = inp(0)
            for o in 0..<outer {
                for i in 0..<inner {
                    let base = x + o * axisLen * inner + i
                    var best = base[0], at = 0
                    for a in 1..<max(axisLen, 1) {
                        let v = base[a * inner]
                        if v > best || (selectLast && v == best) { best = v; at = a }
                    }
                    y[o * inner + i] = Float(at)
                }
            }
        }
    }
}

/// Casts that round to a narrower float type, as onnxruntime's Cast does.
func onnxUnaryForward(_ kind: ONNXUnaryKind, _ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, _ n: Int) {
    Parallel.forRange(n, costPerItem: 4) { r in
        switch kind {
        case .toHalf: for i in r { y[i] = Float(Float16(x[i])) }
        case .toBFloat16:
            // Round to nearest even on the top 16 bits.
            for i in r {
                let v = x[i]
                if v.isNaN { y[i] = v; continue }
                let b = v.bitPattern
                y[i] = Float(bitPattern: (b &+ 0x7FFF &+ ((b >> 16) & 1)) & 0xFFFF_0000)
            }
        }
    }
}

/// Reductions: `map` walks the input in order; input 0 of the map is the output index.
/// Sums accumulate in Double so long reductions match onnxruntime's pairwise sums closely.
func onnxReduceForward(_ kind: ONNXReduceKind, _ x: UnsafePointer<Float>, map m: NBroadcast, outCount: Int, groupSize: Int,
                       _ y: UnsafeMutablePointer<Float>) {
    let inner = m.inner, so = m.innerStride(0)
    if kind == .max {
        y.update(repeating: -.infinity, count: outCount)
        for row in 0..<m.rows {
            let py = y + m.rowOffset(0, row), px = x + row * inner
            for i in 0..<inner { let v = px[i]; if v > py[i * so] || v.isNaN { py[i * so] = v } }
        }
        return
    }
    var acc = [Double](repeating: 0, count: outCount)
    acc.withUnsafeMutableBufferPointer { a in
        let pa = a.baseAddress!
        for row in 0..<m.rows {
            let po = pa + m.rowOffset(0, row), px = x + row * inner
            for i in 0..<inner { po[i * so] += Double(px[i]) }
        }
        let scale = kind == .mean ? 1 / Double(Swift.max(groupSize, 1)) : 1
        for i in 0..<outCount { y[i] = Float(pa[i] * scale) }
    }
}

/// Tile: forward copies x[source] into y[output]; backward accumulates dy[output] into dx[source].
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
