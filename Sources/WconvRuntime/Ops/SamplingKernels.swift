import Foundation
import WconvGraph
import WconvTensor

/// Resize (docs/adding-an-op.md): nearest, n-linear and n-cubic interpolation as one separable
/// pass per resized axis, each output index reading a few weighted input indices. Coordinates are
/// computed in float32 exactly as onnxruntime does, so ties round the same way.
enum SamplingKernels {
    static let all: [OpKernels] = [resize]

    static let resize = OpKernels(.resize) { r in
        let x = try r.shape(0)
        let g = try SamplingOps.resizeGeometry(r.node, x, fail: r.fail)
        try r.agree(g.outShape)
        let node = r.node
        let mode = node.string("mode") ?? "nearest"
        let coordinate = node.string("coordinateMode") ?? "half_pixel"
        let crop = coordinate == "tf_crop_and_resize"
        var axes: [ResizeAxis] = []
        for d in x.indices {
            // onnxruntime leaves a dim with scale 1 untouched whatever the coordinate mode (with
            // tf_half_pixel_for_nn or round_prefer_ceil the formula alone would shift it).
            let fullRoi = g.roi[d] == 0 && g.roi[x.count + d] == 1
            if g.scales[d] == 1 && x[d] == g.outShape[d] && (!crop || fullRoi) { continue }
            let taps = ResizeAxis.taps(inLen: x[d], outLen: g.outShape[d], scale: g.scales[d], roiStart: g.roi[d], roiEnd: g.roi[x.count + d],
                                       mode: mode, coordinate: coordinate, nearest: node.string("nearestMode") ?? "round_prefer_floor",
                                       cubicA: Float(node.float("cubicA") ?? -0.75), excludeOutside: (node.int("excludeOutside") ?? 0) != 0)
            var axis = ResizeAxis(dim: d, inLen: x[d], outLen: g.outShape[d], tapsPer: taps.tapsPer, index: taps.index, weight: taps.weight,
                                  outside: crop ? taps.outside : [])
            if axis.isIdentity && axis.outside.allSatisfy({ !$0 }) { continue }
            axis.outside = crop ? axis.outside : []
            axes.append(axis)
        }
        return Resize(inShape: x, outShape: g.outShape, axes: axes, extrapolation: Float(node.float("extrapolation") ?? 0))
    }
}

/// One resized axis: for output index j, `tapsPer` (input index, weight) pairs.
struct ResizeAxis {
    let dim: Int, inLen: Int, outLen: Int, tapsPer: Int
    let index: [Int], weight: [Float]
    /// tf_crop_and_resize: output positions outside the input take the extrapolation value.
    var outside: [Bool]

    var isIdentity: Bool {
        inLen == outLen && tapsPer == 1 && (0..<outLen).allSatisfy { index[$0] == $0 && weight[$0] == 1 }
    }

    /// onnxruntime's original coordinate for output index `o` (float32, same operation order).
    static func original(_ o: Int, inLen: Int, outLen: Int, scale: Float, roiStart: Float, roiEnd: Float, coordinate: String) -> Float {
        let x = Float(o), lenIn = Float(inLen), lenOut = Float(outLen)
        switch coordinate {
        case "asymmetric": return x / scale
        case "pytorch_half_pixel": return outLen > 1 ? (x + 0.5) / scale - 0.5 : 0
        case "tf_half_pixel_for_nn": return (x + 0.5) / scale
        case "align_corners": return outLen == 1 ? 0 : x * (lenIn - 1) / (lenOut - 1)
        case "tf_crop_and_resize":
            return outLen > 1 ? roiStart * (lenIn - 1) + (x * (roiEnd - roiStart) * (lenIn - 1)) / (lenOut - 1)
                : 0.5 * (roiStart + roiEnd) * (lenIn - 1)
        case "half_pixel_symmetric":
            let adjustment = lenOut / (scale * lenIn)
            let offset = lenIn / 2 * (1 - adjustment)
            return offset + (x + 0.5) / scale - 0.5
        default: return (x + 0.5) / scale - 0.5  // half_pixel
        }
    }

    static func cubicCoefficients(_ ratio: Float, _ a: Float) -> [Float] {
        let s = Swift.abs(ratio)
        return [((a * (s + 1) - 5 * a) * (s + 1) + 8 * a) * (s + 1) - 4 * a,
                ((a + 2) * s - (a + 3)) * s * s + 1,
                ((a + 2) * (1 - s) - (a + 3)) * (1 - s) * (1 - s) + 1,
                ((a * (2 - s) - 5 * a) * (2 - s) + 8 * a) * (2 - s) - 4 * a]
    }

    static func taps(inLen: Int, outLen: Int, scale: Float, roiStart: Float, roiEnd: Float, mode: String, coordinate: String,
                     nearest: String, cubicA: Float, excludeOutside: Bool) -> (tapsPer: Int, index: [Int], weight: [Float], outside: [Bool]) {
        let tapsPer = mode == "nearest" ? 1 : mode == "linear" ? 2 : 4
        var index = [Int](), weight = [Float](), outside = [Bool]()
        index.reserveCapacity(outLen * tapsPer); weight.reserveCapacity(outLen * tapsPer)
        let last = max(inLen - 1, 0)
        func clamp(_ i: Int) -> Int { min(max(i, 0), last) }
        for o in 0..<outLen {
            var x = original(o, inLen: inLen, outLen: outLen, scale: scale, roiStart: roiStart, roiEnd: roiEnd, coordinate: coordinate)
            outside.append(coordinate == "tf_crop_and_resize" && (x < 0 || x > Float(inLen - 1)))
            switch mode {
            case "nearest":
                let i: Int
                switch nearest {
                case "round_prefer_ceil": i = Int(clamping: Double(x.rounded(.toNearestOrAwayFromZero)))
                case "floor": i = Int(clamping: Double(x.rounded(.down)))
                case "ceil": i = Int(clamping: Double(x.rounded(.up)))
                case "simple": i = scale < 1 ? Int(clamping: Double(x.rounded(.up))) : Int(clamping: Double(x.rounded(.towardZero)))
                default:  // round_prefer_floor
                    let t = x.rounded(.towardZero)
                    i = x == t + 0.5 ? Int(clamping: Double(x.rounded(.down))) : Int(clamping: Double(x.rounded(.toNearestOrAwayFromZero)))
                }
                index.append(clamp(i)); weight.append(1)
            case "linear":
                if coordinate != "tf_crop_and_resize" { x = max(0, min(x, Float(last))) }
                let x1 = clamp(Int(clamping: Double(x.rounded(.towardZero)))), x2 = clamp(x1 + 1)
                var d1 = Swift.abs(x - Float(x1)), d2 = Swift.abs(x - Float(x2))
                if x1 == x2 { d1 = 0.5; d2 = 0.5 }
                index += [x1, x2]; weight += [d2, d1]
            default:  // cubic
                let base = x.rounded(.down)
                var c = cubicCoefficients(x - base, cubicA)
                let b = Int(clamping: Double(base))
                if excludeOutside {
                    for k in 0..<4 where b - 1 + k < 0 || b - 1 + k > last { c[k] = 0 }
                    let sum = c.reduce(0, +)
                    if sum != 0 { c = c.map { $0 / sum } }
                }
                for k in 0..<4 { index.append(clamp(b - 1 + k)); weight.append(c[k]) }
            }
        }
        return (tapsPer, index, weight, outside)
    }
}

/// Resize as separable passes, one per resized axis (input → scratch → … → output); backward runs
/// the adjoint passes in reverse order.
struct Resize: StepKernel {
    let inShape: [Int], outShape: [Int]
    let axes: [ResizeAxis]
    let extrapolation: Float

    /// Shape after the first `k` passes.
    func extents(inputs: [Int], outputs: [Int]) -> StepExtents {
        // Every pass's source indices must lie inside the axis it reads.
        var e = StepExtents(inputs: inputs.count, outputs: outputs.count)
        var inside = shape(after: axes.count) == outShape
        for (k, a) in axes.enumerated() {
            let s = shape(after: k)
            inside = inside && a.dim < s.count && s[a.dim] == a.inLen && a.index.count == a.outLen * a.tapsPer
                && a.weight.count == a.index.count && a.index.allSatisfy { $0 >= 0 && $0 < a.inLen }
        }
        e.read(0, inside ? inShape.reduce(1, *) : Int.max); e.write(0, outShape.reduce(1, *))
        return e
    }
    func shape(after k: Int) -> [Int] {
        var s = inShape
        for a in axes.prefix(k) { s[a.dim] = a.outLen }
        return s
    }

    /// Calls `body(o, inner)` for each outer slice o of a pass along `a` over data [outer, len,
    /// inner]; slices split across threads.
    @inline(__always)
    static func forEachSlice(_ a: ResizeAxis, _ shape: [Int], _ body: (_ o: Int, _ inner: Int) -> Void) {
        let outer = shape[..<a.dim].reduce(1, *), inner = shape[(a.dim + 1)...].reduce(1, *)
        Parallel.forRange(outer, costPerItem: a.outLen * inner * a.tapsPer) { range in
            for o in range { body(o, inner) }
        }
    }

    /// One pass: data [outer, inLen, inner] → [outer, outLen, inner].
    static func pass(_ a: ResizeAxis, _ shape: [Int], _ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>) {
        forEachSlice(a, shape) { o, inner in
            let src = x + o * a.inLen * inner, dst = y + o * a.outLen * inner
            for j in 0..<a.outLen {
                let d = dst + j * inner
                let t0 = j * a.tapsPer
                let s0 = src + a.index[t0] * inner, w0 = a.weight[t0]
                for i in 0..<inner { d[i] = w0 * s0[i] }
                for t in (t0 + 1)..<(t0 + a.tapsPer) {
                    let s = src + a.index[t] * inner, w = a.weight[t]
                    for i in 0..<inner { d[i] += w * s[i] }
                }
            }
        }
    }

    /// The adjoint of `pass`: dx[o, index, i] += weight · dy[o, j, i].
    static func passBackward(_ a: ResizeAxis, _ shape: [Int], _ dy: UnsafePointer<Float>, _ dx: UnsafeMutablePointer<Float>) {
        forEachSlice(a, shape) { o, inner in
            let g = dy + o * a.outLen * inner, d = dx + o * a.inLen * inner
            for j in 0..<a.outLen {
                let gj = g + j * inner
                for t in (j * a.tapsPer)..<((j + 1) * a.tapsPer) {
                    let dt = d + a.index[t] * inner, w = a.weight[t]
                    for i in 0..<inner { dt[i] += w * gj[i] }
                }
            }
        }
    }

    /// Calls `body` with the flat output index of every position outside the crop region.
    func forEachOutside(_ body: (Int) -> Void) {
        let cropped = axes.filter { !$0.outside.isEmpty && $0.outside.contains(true) }
        guard !cropped.isEmpty else { return }
        let strides = Tensor.contiguousStrides(outShape)
        let count = outShape.reduce(1, *)
        for flat in 0..<count {
            if cropped.contains(where: { $0.outside[(flat / strides[$0.dim]) % outShape[$0.dim]] }) { body(flat) }
        }
    }

    func forward(_ c: StepContext) throws {
        let x = c.input(0)!, y = c.output()
        let e = c.executor
        if axes.isEmpty { copyFloats(y, from: x, count: outShape.reduce(1, *)) } else {
            var src = UnsafePointer(x)
            for (k, a) in axes.enumerated() {
                let last = k == axes.count - 1
                let dst = last ? y : (k % 2 == 0 ? e.staging : e.staging2).get(max(shape(after: k + 1).reduce(1, *), 1))
                Resize.pass(a, shape(after: k), src, dst)
                src = UnsafePointer(dst)
            }
        }
        forEachOutside { y[$0] = extrapolation }
    }

    func backward(_ c: BackwardContext) throws {
        guard let dy0 = c.outputGradient(), let dx = c.inputGradient(0) else { return }
        let e = c.executor
        let n = outShape.reduce(1, *)
        var dy = dy0
        var masked: [Float] = []
        if axes.contains(where: { $0.outside.contains(true) }) {
            masked = Array(UnsafeBufferPointer(start: dy0, count: n))
            forEachOutside { masked[$0] = 0 }
        }
        masked.withUnsafeBufferPointer { m in
            if !masked.isEmpty { dy = m.baseAddress! }
            if axes.isEmpty { for i in 0..<n { dx[i] += dy[i] }; return }
            var g = dy
            for k in stride(from: axes.count - 1, through: 0, by: -1) {
                let a = axes[k], inShapeK = shape(after: k)
                if k == 0 { Resize.passBackward(a, inShapeK, g, dx); break }
                let count = max(inShapeK.reduce(1, *), 1)
                let buf = (k % 2 == 0 ? e.staging : e.staging2).get(count)
                fillFloats(buf, with: 0, count: count)
                Resize.passBackward(a, inShapeK, g, buf)
                g = UnsafePointer(buf)
            }
        }
    }
}
