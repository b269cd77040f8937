import Foundation

enum ReduceKind { case sum, mean, max }

/// A reduction over a contiguous block of axes: data viewed as [outer, red, inner].
/// (Other axis sets use the strided reduction of Ops/ReductionKernels.swift.)
struct ReducePlan: Equatable {
    var outer: Int, red: Int, inner: Int
}

func reduceForward(_ kind: ReduceKind, _ x: UnsafePointer<Float>, _ p: ReducePlan, _ y: UnsafeMutablePointer<Float>) {
    Parallel.forRange(p.outer, costPerItem: p.red * p.inner) { range in
        for o in range {
            let dst = y + o * p.inner
            let src = x + o * p.red * p.inner
            switch kind {
            case .sum, .mean:
                dst.update(repeating: 0, count: p.inner)
                for r in 0..<p.red { let s = src + r * p.inner; for i in 0..<p.inner { dst[i] += s[i] } }
                if kind == .mean { let inv = 1 / Float(max(p.red, 1)); for i in 0..<p.inner { dst[i] *= inv } }
            case .max:
                dst.update(repeating: -Float.infinity, count: p.inner)
                for r in 0..<p.red { let s = src + r * p.inner; for i in 0..<p.inner where s[i] > dst[i] || s[i].isNaN { dst[i] = s[i] } }
            }
        }
    }
}

func reduceBackward(_ kind: ReduceKind, _ x: UnsafePointer<Float>, _ p: ReducePlan, y: UnsafePointer<Float>,
                    dy: UnsafePointer<Float>, dx: UnsafeMutablePointer<Float>) {
    Parallel.forRange(p.outer, costPerItem: p.red * p.inner) { range in
        for o in range {
            let g = dy + o * p.inner, yo = y + o * p.inner
            let scale: Float = kind == .mean ? 1 / Float(max(p.red, 1)) : 1
            var taken = [Bool](repeating: false, count: kind == .max ? p.inner : 0)
            for r in 0..<p.red {
                let off = (o * p.red + r) * p.inner
                let d = dx + off, s = x + off
                switch kind {
                case .sum, .mean: for i in 0..<p.inner { d[i] += g[i] * scale }
                case .max:
                    // The first maximal element takes the gradient.
                    for i in 0..<p.inner where !taken[i] && s[i] == yo[i] { d[i] += g[i]; taken[i] = true }
                }
            }
        }
    }
}

enum UnaryKind: Equatable { case erf, sqrt, exp, log, abs, neg, reciprocal, not, isNaN, castInt, castBool }

func unaryForward(_ kind: UnaryKind, _ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, _ n: Int) {
    Parallel.forRange(n, costPerItem: 4) { r in
        let a = x + r.lowerBound, b = y + r.lowerBound, c = r.count
        switch kind {
        case .erf: for i in 0..<c { b[i] = erff(a[i]) }
        case .sqrt: for i in 0..<c { b[i] = a[i].squareRoot() }
        case .exp: for i in 0..<c { b[i] = expf(a[i]) }
        case .log: for i in 0..<c { b[i] = logf(a[i]) }
        case .abs: for i in 0..<c { b[i] = Swift.abs(a[i]) }
        case .neg: for i in 0..<c { b[i] = -a[i] }
        case .reciprocal: for i in 0..<c { b[i] = 1 / a[i] }
        case .not: for i in 0..<c { b[i] = a[i] == 0 ? 1 : 0 }
        case .isNaN: for i in 0..<c { b[i] = a[i].isNaN ? 1 : 0 }
        case .castInt: for i in 0..<c { b[i] = a[i].isFinite ? a[i].rounded(.towardZero) : 0 }
        case .castBool: for i in 0..<c { b[i] = a[i] != 0 ? 1 : 0 }
        }
    }
}

/// Accumulates dx for the differentiable unary ops (comparisons and casts to integers have none).
func unaryBackward(_ kind: UnaryKind, _ x: UnsafePointer<Float>, _ y: UnsafePointer<Float>, dy: UnsafePointer<Float>,
                   dx: UnsafeMutablePointer<Float>, _ n: Int) {
    for i in 0..<n {
        switch kind {
        case .erf: dx[i] += dy[i] * 1.1283791670955126 * expf(-x[i] * x[i])
        case .sqrt: dx[i] += dy[i] * 0.5 / y[i]
        case .exp: dx[i] += dy[i] * y[i]
        case .log: dx[i] += dy[i] / x[i]
        case .abs: dx[i] += x[i] > 0 ? dy[i] : (x[i] < 0 ? -dy[i] : 0)
        case .neg: dx[i] -= dy[i]
        case .reciprocal: dx[i] -= dy[i] * y[i] * y[i]
        case .not, .isNaN, .castInt, .castBool: break
        }
    }
}

/// Walks the `outShape` positions in order, calling `body(i, oc, oa, ob)` with the flat output
/// index and the offsets of cond, a and b under numpy broadcasting (generic index walk; where's
/// tensors are small in practice).
@inline(__always)
func forEachWhere(strides: [[Int]], outShape: [Int], _ body: (_ i: Int, _ oc: Int, _ oa: Int, _ ob: Int) -> Void) {
    let n = outShape.reduce(1, *)
    let r = outShape.count
    var idx = [Int](repeating: 0, count: r)
    var oc = 0, oa = 0, ob = 0
    for i in 0..<n {
        body(i, oc, oa, ob)
        var d = r - 1
        while d >= 0 {
            idx[d] += 1
            oc += strides[0][d]; oa += strides[1][d]; ob += strides[2][d]
            if idx[d] < outShape[d] { break }
            oc -= strides[0][d] * outShape[d]; oa -= strides[1][d] * outShape[d]; ob -= strides[2][d] * outShape[d]
            idx[d] = 0
            d -= 1
        }
    }
}

/// where(cond, a, b) with three-way numpy broadcasting.
func whereForward(_ c: UnsafePointer<Float>, _ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>,
                  strides: [[Int]], outShape: [Int], _ y: UnsafeMutablePointer<Float>) {
    forEachWhere(strides: strides, outShape: outShape) { i, oc, oa, ob in y[i] = c[oc] != 0 ? a[oa] : b[ob] }
}

func whereBackward(_ c: UnsafePointer<Float>, strides: [[Int]], outShape: [Int], dy: UnsafePointer<Float>,
                   da: UnsafeMutablePointer<Float>?, db: UnsafeMutablePointer<Float>?) {
    forEachWhere(strides: strides, outShape: outShape) { i, oc, oa, ob in
        if c[oc] != 0 { da?[oa] += dy[i] } else { db?[ob] += dy[i] }
    }
}

/// Element strides of `shape` broadcast to `out` (0 on broadcast dims).
func broadcastStrides(_ shape: [Int], to out: [Int]) -> [Int] {
    let r = out.count
    let padded = [Int](repeating: 1, count: r - shape.count) + shape
    var st = [Int](repeating: 0, count: r)
    var acc = 1
    for i in stride(from: r - 1, through: 0, by: -1) {
        st[i] = padded[i] == 1 && out[i] != 1 ? 0 : acc
        acc *= padded[i]
    }
    return st
}
