import Foundation
import WconvGraph

enum BinaryKind { case add, sub, mul, div, pow, minimum, maximum, equal, less, lessOrEqual, greater, greaterOrEqual, and, or }

/// The scalar rule of every binary op (the fast paths above cover add/mul; the rest loop through this).
@inline(__always)
func binaryScalar(_ kind: BinaryKind, _ u: Float, _ v: Float) -> Float {
    switch kind {
    case .add: return u + v
    case .sub: return u - v
    case .mul: return u * v
    case .div: return u / v
    case .pow: return powf(u, v)
    case .minimum: return u.isNaN || v.isNaN ? .nan : Swift.min(u, v)
    case .maximum: return u.isNaN || v.isNaN ? .nan : Swift.max(u, v)
    case .equal: return u == v ? 1 : 0
    case .less: return u < v ? 1 : 0
    case .lessOrEqual: return u <= v ? 1 : 0
    case .greater: return u > v ? 1 : 0
    case .greaterOrEqual: return u >= v ? 1 : 0
    case .and: return u != 0 && v != 0 ? 1 : 0
    case .or: return u != 0 || v != 0 ? 1 : 0
    }
}

/// Numpy broadcasting of two operands to one output, with dims coalesced so the inner loop is long.
struct BroadcastPlan {
    /// Coalesced output dims and operand strides (0 on broadcast dims).
    var dims: [Int]
    var sa: [Int]
    var sb: [Int]
    var outShape: [Int]
    var count: Int

    /// Numpy broadcasting: the graph's one rule.
    static func outputShape(_ a: [Int], _ b: [Int]) -> [Int]? { ShapeInference.broadcast(a, b) }

    init?(_ a: [Int], _ b: [Int]) {
        guard let out = BroadcastPlan.outputShape(a, b) else { return nil }
        outShape = out
        count = out.reduce(1, *)
        let r = out.count
        func strides(_ s: [Int]) -> [Int] {
            let padded = [Int](repeating: 1, count: r - s.count) + s
            var st = [Int](repeating: 0, count: r)
            var acc = 1
            for i in stride(from: r - 1, through: 0, by: -1) {
                st[i] = padded[i] == 1 ? 0 : acc
                acc *= padded[i]
            }
            return st
        }
        var d: [Int] = [], xa: [Int] = [], xb: [Int] = []
        let fa = strides(a), fb = strides(b)
        for i in 0..<r where out[i] != 1 {
            if let last = d.last, xa.last! == fa[i] * out[i], xb.last! == fb[i] * out[i] {
                d[d.count - 1] = last * out[i]
                xa[xa.count - 1] = fa[i]
                xb[xb.count - 1] = fb[i]
            } else {
                d.append(out[i]); xa.append(fa[i]); xb.append(fb[i])
            }
        }
        if d.isEmpty { d = [1]; xa = [0]; xb = [0] }
        dims = d; sa = xa; sb = xb
    }

    var inner: Int { dims.last! }
    var rows: Int { count / max(inner, 1) }

    /// Operand offsets of the first element of output row `row`.
    @inline(__always)
    func rowOffsets(_ row: Int) -> (Int, Int) {
        var rem = row, oa = 0, ob = 0
        var i = dims.count - 2
        while i >= 0 {
            let idx = rem % dims[i]
            rem /= dims[i]
            oa += idx * sa[i]; ob += idx * sb[i]
            i -= 1
        }
        return (oa, ob)
    }
}

func binaryForward(_ kind: BinaryKind, _ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>,
                   _ p: BroadcastPlan, _ y: UnsafeMutablePointer<Float>) {
    let inner = p.inner
    let ia = p.sa.last!, ib = p.sb.last!
    Parallel.forRange(p.rows, costPerItem: inner) { range in
        for row in range {
            let (oa, ob) = p.rowOffsets(row)
            let pa = a + oa, pb = b + ob, py = y + row * inner
            switch (kind, ia, ib) {
            // Training's residual adds write over an operand: mapFloats / zipFloats keep those loops vectorised.
            case (.add, 1, 1): zipFloats(pa, pb, py, inner, +)
            case (.add, 1, 0): let v = pb[0]; mapFloats(pa, py, inner) { $0 + v }
            case (.mul, 1, 1): zipFloats(pa, pb, py, inner, *)
            case (.mul, 1, 0): let v = pb[0]; mapFloats(pa, py, inner) { $0 * v }
            case (.mul, 0, 1): let v = pa[0]; mapFloats(pb, py, inner) { v * $0 }
            // Sub and div too (hard-swish written out in ONNX, x · clip(x + 3, 0, 6) / 6, is add, clip,
            // mul and div by a scalar: PaddleOCR's recogniser spent 5.7 ms of 29 in the strided loop below).
            case (.add, 0, 1): let v = pa[0]; mapFloats(pb, py, inner) { v + $0 }
            case (.sub, 1, 1): zipFloats(pa, pb, py, inner, -)
            case (.sub, 1, 0): let v = pb[0]; mapFloats(pa, py, inner) { $0 - v }
            case (.sub, 0, 1): let v = pa[0]; mapFloats(pb, py, inner) { v - $0 }
            case (.div, 1, 1): zipFloats(pa, pb, py, inner, /)
            case (.div, 1, 0): let v = pb[0]; mapFloats(pa, py, inner) { $0 / v }
            case (.div, 0, 1): let v = pa[0]; mapFloats(pb, py, inner) { v / $0 }
            case (.add, _, _): for i in 0..<inner { py[i] = pa[i * ia] + pb[i * ib] }
            case (.sub, _, _): for i in 0..<inner { py[i] = pa[i * ia] - pb[i * ib] }
            case (.mul, _, _): for i in 0..<inner { py[i] = pa[i * ia] * pb[i * ib] }
            case (.div, _, _): for i in 0..<inner { py[i] = pa[i * ia] / pb[i * ib] }
            default: for i in 0..<inner { py[i] = binaryScalar(kind, pa[i * ia], pb[i * ib]) }
            }
        }
    }
}

/// Accumulates gradients of y = a ∘ b into da / db (each reduced over its broadcast dims).
func binaryBackward(_ kind: BinaryKind, _ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>,
                    _ p: BroadcastPlan, dy: UnsafePointer<Float>,
                    da: UnsafeMutablePointer<Float>?, db: UnsafeMutablePointer<Float>?) {
    let inner = p.inner
    let ia = p.sa.last!, ib = p.sb.last!
    // An operand with the output's full size has no reduction: its rows are disjoint → parallel.
    func run(_ target: UnsafeMutablePointer<Float>, isA: Bool) {
        let full = isA ? !p.sa.contains(0) || p.dims == [1] : !p.sb.contains(0) || p.dims == [1]
        let body: (Range<Int>) -> Void = { range in
            for row in range {
                let (oa, ob) = p.rowOffsets(row)
                let pa = a + oa, pb = b + ob, g = dy + row * inner
                let t = target + (isA ? oa : ob)
                let st = isA ? ia : ib
                switch kind {
                case .add: for i in 0..<inner { t[i * st] += g[i] }
                case .sub: if isA { for i in 0..<inner { t[i * st] += g[i] } } else { for i in 0..<inner { t[i * st] -= g[i] } }
                case .mul: if isA { for i in 0..<inner { t[i * st] += g[i] * pb[i * ib] } } else { for i in 0..<inner { t[i * st] += g[i] * pa[i * ia] } }
                case .div:
                    if isA { for i in 0..<inner { t[i * st] += g[i] / pb[i * ib] } }
                    else { for i in 0..<inner { let bv = pb[i * ib]; t[i * st] -= g[i] * pa[i * ia] / (bv * bv) } }
                case .pow:
                    if isA { for i in 0..<inner { let u = pa[i * ia], v = pb[i * ib]; t[i * st] += g[i] * v * powf(u, v - 1) } }
                    else { for i in 0..<inner { let u = pa[i * ia], v = pb[i * ib]; if u > 0 { t[i * st] += g[i] * logf(u) * powf(u, v) } } }
                case .minimum, .maximum:
                    // The selected operand takes the gradient (ties go to a, as torch.minimum splits… we pick a).
                    for i in 0..<inner {
                        let u = pa[i * ia], v = pb[i * ib]
                        let pickA = kind == .minimum ? u <= v : u >= v
                        if pickA == isA { t[i * st] += g[i] }
                    }
                default: break
                }
            }
        }
        if full { Parallel.forRange(p.rows, costPerItem: inner, body) } else { body(0..<p.rows) }
    }
    if let da { run(da, isA: true) }
    if let db { run(db, isA: false) }
}

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
