import Foundation
import WconvGraph
import WconvTensor

/// A deliberately naive interpreter of the canonical ops the Keras builder emits, straight from
/// their definitions (loops over every output element). It checks that the built graph — layouts,
/// padding splits, flatten order — computes what Keras computed for the fixture probes. It is not
/// the runtime: only a test oracle.
struct RefTensor {
    var shape: [Int]
    var data: [Float]
    var count: Int { data.count }
    static func strides(_ s: [Int]) -> [Int] {
        var st = [Int](repeating: 1, count: s.count)
        var acc = 1
        for i in stride(from: s.count - 1, through: 0, by: -1) { st[i] = acc; acc *= s[i] }
        return st
    }
}

enum RefInterpreter {
    static func run(_ g: ModelGraph, inputs: [String: RefTensor]) throws -> [RefTensor] {
        var v = inputs
        for (k, t) in g.parameters { v[k] = RefTensor(shape: t.shape, data: t.floats()) }
        for n in g.nodes {
            let x = n.inputs.map { $0.isEmpty ? nil : v[$0] }
            guard let x0 = x.first ?? nil else { throw RefError("node \(n.name): missing input \(n.inputs.first ?? "")") }
            v[n.outputs[0]] = try apply(n, x0, Array(x.dropFirst()))
        }
        return try g.outputs.map { o in
            guard let t = v[o.name] else { throw RefError("output \(o.name) not computed") }
            return t
        }
    }

    struct RefError: Error, CustomStringConvertible { var description: String; init(_ s: String) { description = s } }

    static func map(_ x: RefTensor, _ f: (Float) -> Float) -> RefTensor { RefTensor(shape: x.shape, data: x.data.map(f)) }

    static func apply(_ n: GraphNode, _ x: RefTensor, _ rest: [RefTensor?]) throws -> RefTensor {
        switch n.op {
        case .conv2d: return conv(x, rest[0]!, rest[safe: 1] ?? nil, n)
        case .batchNorm:
            let (w, b, m, vr) = (rest[0]!.data, rest[1]!.data, rest[2]!.data, rest[3]!.data)
            let eps = Float(n.float("epsilon")!)
            let c = x.shape[1]
            let inner = x.shape.count > 2 ? x.shape[2...].reduce(1, *) : 1
            var out = x
            for i in 0..<x.count {
                let ch = (i / inner) % c
                out.data[i] = (x.data[i] - m[ch]) / (vr[ch] + eps).squareRoot() * w[ch] + b[ch]
            }
            return out
        case .linear:
            let w = rest[0]!, b = rest[safe: 1] ?? nil
            let (o, inF) = (w.shape[0], w.shape[1])
            let rows = x.count / inF
            var out = [Float](repeating: 0, count: rows * o)
            for r in 0..<rows {
                for j in 0..<o {
                    var s: Float = b?.data[j] ?? 0
                    for k in 0..<inF { s += x.data[r * inF + k] * w.data[j * inF + k] }
                    out[r * o + j] = s
                }
            }
            return RefTensor(shape: Array(x.shape.dropLast()) + [o], data: out)
        case .relu: return map(x) { max($0, 0) }
        case .relu6: return map(x) { min(max($0, 0), 6) }
        case .clip:
            let lo = Float(n.float("min") ?? -.infinity), hi = Float(n.float("max") ?? .infinity)
            return map(x) { min(max($0, lo), hi) }
        case .silu: return map(x) { $0 / (1 + exp(-$0)) }
        case .sigmoid: return map(x) { 1 / (1 + exp(-$0)) }
        case .tanh: return map(x) { Foundation.tanh($0) }
        case .hardSigmoid:
            let a = Float(n.float("alpha")!), b = Float(n.float("beta")!)
            return map(x) { min(max(a * $0 + b, 0), 1) }
        case .hardSwish: return map(x) { $0 * min(max($0 + 3, 0), 6) / 6 }
        case .gelu: return map(x) { 0.5 * $0 * (1 + erf($0 / Float(2).squareRoot())) }
        case .identity, .dropout: return x
        case .softmax:
            var axis = n.int("axis") ?? -1
            if axis < 0 { axis += x.shape.count }
            let st = RefTensor.strides(x.shape)
            var out = x
            let len = x.shape[axis], s = st[axis]
            for i in 0..<x.count where (i / s) % len == 0 {
                var m = -Float.infinity
                for k in 0..<len { m = max(m, x.data[i + k * s]) }
                var sum: Float = 0
                for k in 0..<len { sum += exp(x.data[i + k * s] - m) }
                for k in 0..<len { out.data[i + k * s] = exp(x.data[i + k * s] - m) / sum }
            }
            return out
        case .maxPool2d, .avgPool2d: return pool(x, n, isMax: n.op == .maxPool2d)
        case .globalAvgPool:
            let (nb, c, hw) = (x.shape[0], x.shape[1], x.shape[2] * x.shape[3])
            var out = [Float](repeating: 0, count: nb * c)
            for i in 0..<(nb * c) { out[i] = x.data[(i * hw)..<((i + 1) * hw)].reduce(0, +) / Float(hw) }
            return RefTensor(shape: n.int("keepdims") == 1 ? [nb, c, 1, 1] : [nb, c], data: out)
        case .pad:
            let p = n.ints("pads")!
            let r = x.shape.count
            let os = (0..<r).map { x.shape[$0] + p[$0] + p[$0 + r] }
            var out = RefTensor(shape: os, data: [Float](repeating: Float(n.float("value") ?? 0), count: os.reduce(1, *)))
            let ist = RefTensor.strides(x.shape), ost = RefTensor.strides(os)
            for i in 0..<x.count {
                var o = 0
                for d in 0..<r { o += ((i / ist[d]) % x.shape[d] + p[d]) * ost[d] }
                out.data[o] = x.data[i]
            }
            return out
        case .add, .mul, .sub:
            let y = rest[0]!
            let f: (Float, Float) -> Float = n.op == .add ? (+) : n.op == .mul ? (*) : (-)
            return broadcast(x, y, f)
        case .flatten:
            let axis = n.int("axis") ?? 1
            return RefTensor(shape: Array(x.shape[..<axis]) + [x.shape[axis...].reduce(1, *)], data: x.data)
        case .transpose:
            let perm = n.ints("perm")!
            let os = perm.map { x.shape[$0] }
            let ist = RefTensor.strides(x.shape), ost = RefTensor.strides(os)
            var out = RefTensor(shape: os, data: x.data)
            for o in 0..<x.count {
                var i = 0
                for d in 0..<os.count { i += ((o / ost[d]) % os[d]) * ist[perm[d]] }
                out.data[o] = x.data[i]
            }
            return out
        case .reshape:
            var s = n.ints("shape")!
            for (i, d) in s.enumerated() where d == 0 { s[i] = x.shape[i] }
            if let u = s.firstIndex(of: -1) { s[u] = x.count / s.filter { $0 != -1 }.reduce(1, *) }
            return RefTensor(shape: s, data: x.data)
        default:
            throw RefError("reference interpreter lacks op \(n.op)")
        }
    }

    static func broadcast(_ a: RefTensor, _ b: RefTensor, _ f: (Float, Float) -> Float) -> RefTensor {
        let r = max(a.shape.count, b.shape.count)
        let sa = [Int](repeating: 1, count: r - a.shape.count) + a.shape
        let sb = [Int](repeating: 1, count: r - b.shape.count) + b.shape
        let os = zip(sa, sb).map { max($0, $1) }
        let ost = RefTensor.strides(os), ast = RefTensor.strides(sa), bst = RefTensor.strides(sb)
        let n = os.reduce(1, *)
        var out = [Float](repeating: 0, count: n)
        for o in 0..<n {
            var ia = 0, ib = 0
            for d in 0..<r {
                let k = (o / ost[d]) % os[d]
                if sa[d] != 1 { ia += k * ast[d] }
                if sb[d] != 1 { ib += k * bst[d] }
            }
            out[o] = f(a.data[ia], b.data[ib])
        }
        return RefTensor(shape: os, data: out)
    }

    static func conv(_ x: RefTensor, _ w: RefTensor, _ b: RefTensor?, _ n: GraphNode) -> RefTensor {
        let s = n.ints("strides") ?? [1, 1], d = n.ints("dilations") ?? [1, 1], p = n.ints("pads") ?? [0, 0, 0, 0]
        let g = n.int("group") ?? 1
        let (nb, c, h, wd) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
        let (o, cg, kh, kw) = (w.shape[0], w.shape[1], w.shape[2], w.shape[3])
        let oh = (h + p[0] + p[2] - ((kh - 1) * d[0] + 1)) / s[0] + 1
        let ow = (wd + p[1] + p[3] - ((kw - 1) * d[1] + 1)) / s[1] + 1
        let og = o / g
        var out = [Float](repeating: 0, count: nb * o * oh * ow)
        for bi in 0..<nb { for oc in 0..<o { for y in 0..<oh { for xx in 0..<ow {
            var acc: Float = b?.data[oc] ?? 0
            let grp = oc / og
            for ic in 0..<cg {
                let cin = grp * cg + ic
                for ky in 0..<kh {
                    let iy = y * s[0] - p[0] + ky * d[0]
                    if iy < 0 || iy >= h { continue }
                    for kx in 0..<kw {
                        let ix = xx * s[1] - p[1] + kx * d[1]
                        if ix < 0 || ix >= wd { continue }
                        acc += x.data[((bi * c + cin) * h + iy) * wd + ix] * w.data[((oc * cg + ic) * kh + ky) * kw + kx]
                    }
                }
            }
            out[((bi * o + oc) * oh + y) * ow + xx] = acc
        } } } }
        return RefTensor(shape: [nb, o, oh, ow], data: out)
    }

    static func pool(_ x: RefTensor, _ n: GraphNode, isMax: Bool) -> RefTensor {
        let k = n.ints("kernel")!, s = n.ints("strides") ?? k, p = n.ints("pads") ?? [0, 0, 0, 0]
        let (nb, c, h, w) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
        let oh = (h + p[0] + p[2] - k[0]) / s[0] + 1, ow = (w + p[1] + p[3] - k[1]) / s[1] + 1
        let includePad = n.int("countIncludePad") == 1
        var out = [Float](repeating: 0, count: nb * c * oh * ow)
        for bc in 0..<(nb * c) { for y in 0..<oh { for xx in 0..<ow {
            var m = -Float.infinity, sum: Float = 0, cnt = 0
            for ky in 0..<k[0] { for kx in 0..<k[1] {
                let iy = y * s[0] - p[0] + ky, ix = xx * s[1] - p[1] + kx
                if iy < 0 || iy >= h || ix < 0 || ix >= w { if includePad { cnt += 1 }; continue }
                let val = x.data[(bc * h + iy) * w + ix]
                m = max(m, val); sum += val; cnt += 1
            } }
            out[(bc * oh + y) * ow + xx] = isMax ? m : sum / Float(cnt)
        } } }
        return RefTensor(shape: [nb, c, oh, ow], data: out)
    }
}

extension Array {
    subscript(safe i: Int) -> Element? { i >= 0 && i < count ? self[i] : nil }
}
