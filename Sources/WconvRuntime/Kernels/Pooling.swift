import Foundation

/// Pooling window geometry; pads [top, left, bottom, right].
struct PoolGeometry: Equatable {
    var n, c, h, w: Int
    var kh, kw, sh, sw, pt, pl, pb, pr, dh, dw: Int
    var ceilMode: Bool
    var countIncludePad: Bool
    var ho: Int
    var wo: Int

    /// PyTorch's pooling_output_shape, including the rule that the last window must start inside
    /// the input or its left padding (only relevant with ceil_mode).
    static func outputSize(_ size: Int, k: Int, s: Int, padBegin: Int, padEnd: Int, d: Int, ceil: Bool) -> Int {
        let span = size + padBegin + padEnd - d * (k - 1) - 1
        if span < 0 { return 0 }
        var out = (ceil ? (span + s - 1) / s : span / s) + 1
        if ceil && (out - 1) * s >= size + padBegin { out -= 1 }
        return out
    }

    init(n: Int, c: Int, h: Int, w: Int, kernel: [Int], strides: [Int], pads: [Int], dilations: [Int],
         ceilMode: Bool, countIncludePad: Bool) {
        self.n = n; self.c = c; self.h = h; self.w = w
        kh = kernel[0]; kw = kernel[1]; sh = strides[0]; sw = strides[1]
        pt = pads[0]; pl = pads[1]; pb = pads[2]; pr = pads[3]
        dh = dilations[0]; dw = dilations[1]
        self.ceilMode = ceilMode; self.countIncludePad = countIncludePad
        ho = PoolGeometry.outputSize(h, k: kh, s: sh, padBegin: pt, padEnd: pb, d: dh, ceil: ceilMode)
        wo = PoolGeometry.outputSize(w, k: kw, s: sw, padBegin: pl, padEnd: pr, d: dw, ceil: ceilMode)
    }

    var planes: Int { n * c }
    var costPerPlane: Int { ho * wo * kh * kw }

    /// The window of output (oh, ow) clipped to the input, and PyTorch's divisor for it.
    @inline(__always)
    func window(_ oh: Int, _ ow: Int) -> (hs: Int, he: Int, ws: Int, we: Int, divisor: Float) {
        var hs = oh * sh - pt, ws = ow * sw - pl
        var he = min(hs + kh, h + pb), we = min(ws + kw, w + pr)
        let poolSize = (he - hs) * (we - ws)
        hs = max(hs, 0); ws = max(ws, 0); he = min(he, h); we = min(we, w)
        let div = countIncludePad ? poolSize : (he - hs) * (we - ws)
        return (hs, he, ws, we, Float(max(div, 1)))
    }
}

/// The planes of a 2-D pooling: `planes` inputs of h × w pooled to ho × wo each. Max, average and
/// adaptive pooling differ only in their windows, so they share the walk over the outputs.
protocol PoolPlanes {
    var planes: Int { get }
    var h: Int { get }
    var w: Int { get }
    var ho: Int { get }
    var wo: Int { get }
    /// Work per plane, for Parallel's split.
    var costPerPlane: Int { get }
}

extension PoolPlanes {
    /// Calls `body(offset of the input plane, output index, oh, ow)` for every output, planes split
    /// across threads.
    @inline(__always)
    func forEachOutput(_ body: (_ plane: Int, _ out: Int, _ oh: Int, _ ow: Int) -> Void) {
        Parallel.forRange(planes, costPerItem: costPerPlane) { range in
            for plane in range {
                for oh in 0..<ho { for ow in 0..<wo { body(plane * h * w, (plane * ho + oh) * wo + ow, oh, ow) } }
            }
        }
    }

    /// Input and output element counts (the whole tensors).
    func extents(inputs: [Int], outputs: [Int]) -> StepExtents {
        var e = StepExtents(inputs: inputs.count, outputs: outputs.count)
        e.read(0, planes * h * w); e.write(0, planes * ho * wo)
        return e
    }
}

/// Poolings that average a window: its rows [hs, he) and columns [ws, we) clipped to the input,
/// and the divisor.
protocol AveragingWindows: PoolPlanes {
    func window(_ oh: Int, _ ow: Int) -> (hs: Int, he: Int, ws: Int, we: Int, divisor: Float)
}

extension PoolGeometry: PoolPlanes, AveragingWindows {}

/// PyTorch's adaptive pooling windows: start = ⌊i·in/out⌋, end = ⌈(i+1)·in/out⌉.
struct AdaptiveWindows: AveragingWindows, Equatable {
    let planes: Int, h: Int, w: Int, ho: Int, wo: Int
    var costPerPlane: Int { h * w }

    @inline(__always)
    func window(_ oh: Int, _ ow: Int) -> (hs: Int, he: Int, ws: Int, we: Int, divisor: Float) {
        let hs = (oh * h) / ho, he = ((oh + 1) * h + ho - 1) / ho
        let ws = (ow * w) / wo, we = ((ow + 1) * w + wo - 1) / wo
        return (hs, he, ws, we, Float((he - hs) * (we - ws)))
    }
}

/// The index in its plane of the first maximal input of the window of output (oh, ow) — a NaN
/// wins, as PyTorch propagates it — or -1 for a window wholly in the padding.
@inline(__always)
func maxWindowArgument(_ src: UnsafePointer<Float>, _ g: PoolGeometry, _ oh: Int, _ ow: Int) -> Int {
    var best = -Float.infinity
    var arg = -1
    for ki in 0..<g.kh {
        let ih = oh * g.sh - g.pt + ki * g.dh
        if ih < 0 || ih >= g.h { continue }
        for kj in 0..<g.kw {
            let iw = ow * g.sw - g.pl + kj * g.dw
            if iw < 0 || iw >= g.w { continue }
            let v = src[ih * g.w + iw]
            if v.isNaN { return ih * g.w + iw }
            if v > best || arg < 0 { best = v; arg = ih * g.w + iw }
        }
    }
    return arg
}

func maxPoolForward(_ x: UnsafePointer<Float>, _ g: PoolGeometry, _ y: UnsafeMutablePointer<Float>) {
    g.forEachOutput { i, o, oh, ow in
        let a = maxWindowArgument(x + i, g, oh, ow)
        y[o] = a >= 0 ? x[i + a] : -.infinity
    }
}

/// Routes each output gradient to the first maximal input of its window (PyTorch's choice).
func maxPoolBackward(_ x: UnsafePointer<Float>, _ g: PoolGeometry, dy: UnsafePointer<Float>, dx: UnsafeMutablePointer<Float>) {
    g.forEachOutput { i, o, oh, ow in
        let a = maxWindowArgument(x + i, g, oh, ow)
        if a >= 0 { dx[i + a] += dy[o] }
    }
}

func avgPoolForward<W: AveragingWindows>(_ x: UnsafePointer<Float>, _ g: W, _ y: UnsafeMutablePointer<Float>) {
    g.forEachOutput { i, o, oh, ow in
        let (hs, he, ws, we, div) = g.window(oh, ow)
        var s: Float = 0
        if hs < he && ws < we {
            for ih in hs..<he { for iw in ws..<we { s += x[i + ih * g.w + iw] } }
        }
        y[o] = s / div
    }
}

func avgPoolBackward<W: AveragingWindows>(_ g: W, dy: UnsafePointer<Float>, dx: UnsafeMutablePointer<Float>) {
    g.forEachOutput { i, o, oh, ow in
        let (hs, he, ws, we, div) = g.window(oh, ow)
        if hs >= he || ws >= we { return }
        let v = dy[o] / div
        for ih in hs..<he { for iw in ws..<we { dx[i + ih * g.w + iw] += v } }
    }
}
