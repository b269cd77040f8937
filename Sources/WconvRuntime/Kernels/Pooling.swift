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

    /// The input rows of output row `oh` clipped to the input, and how many count towards the
    /// divisor (PyTorch's: the padded window with countIncludePad).
    @inline(__always)
    func rows(_ oh: Int) -> (Range<Int>, count: Int) {
        axisWindow(oh * sh - pt, k: kh, size: h, padEnd: pb)
    }
    @inline(__always)
    func columns(_ ow: Int) -> (Range<Int>, count: Int) {
        axisWindow(ow * sw - pl, k: kw, size: w, padEnd: pr)
    }
    @inline(__always)
    private func axisWindow(_ start: Int, k: Int, size: Int, padEnd: Int) -> (Range<Int>, count: Int) {
        let padded = min(start + k, size + padEnd)
        let s = max(start, 0), e = max(min(padded, size), s)
        return (s..<e, countIncludePad ? padded - start : e - s)
    }
    @inline(__always)
    func divisor(_ rows: Int, _ columns: Int) -> Float { Float(max(rows * columns, 1)) }
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
        StepExtents(inputs, outputs) { $0.read(0, planes * h * w); $0.write(0, planes * ho * wo) }
    }
}

/// Poolings that average a window: the input rows of each output row and columns of each output
/// column (clipped to the input), and the divisor from how many of each count.
protocol AveragingWindows: PoolPlanes {
    func rows(_ oh: Int) -> (Range<Int>, count: Int)
    func columns(_ ow: Int) -> (Range<Int>, count: Int)
    func divisor(_ rows: Int, _ columns: Int) -> Float
}

extension AveragingWindows {
    /// Calls `body(offset of the input plane, output index, rows, columns, divisor)` for every
    /// output; the column windows are worked out once, the row windows once a row.
    @inline(__always)
    func forEachWindow(_ body: (_ plane: Int, _ out: Int, _ rows: Range<Int>, _ columns: Range<Int>, _ divisor: Float) -> Void) {
        let cols = (0..<wo).map(columns)
        Parallel.forRange(planes, costPerItem: costPerPlane) { range in
            for plane in range {
                for oh in 0..<ho {
                    let r = rows(oh)
                    for ow in 0..<wo { body(plane * h * w, (plane * ho + oh) * wo + ow, r.0, cols[ow].0, divisor(r.count, cols[ow].count)) }
                }
            }
        }
    }
}

extension PoolGeometry: PoolPlanes, AveragingWindows {}

/// PyTorch's adaptive pooling windows: start = ⌊i·in/out⌋, end = ⌈(i+1)·in/out⌉.
struct AdaptiveWindows: AveragingWindows, Equatable {
    let planes: Int, h: Int, w: Int, ho: Int, wo: Int
    var costPerPlane: Int { h * w }

    @inline(__always) func rows(_ oh: Int) -> (Range<Int>, count: Int) { Self.window(oh, h, ho) }
    @inline(__always) func columns(_ ow: Int) -> (Range<Int>, count: Int) { Self.window(ow, w, wo) }
    @inline(__always) func divisor(_ rows: Int, _ columns: Int) -> Float { Float(rows * columns) }
    @inline(__always)
    static func window(_ i: Int, _ inSize: Int, _ outSize: Int) -> (Range<Int>, count: Int) {
        let s = (i * inSize) / outSize, e = ((i + 1) * inSize + outSize - 1) / outSize
        return (s..<e, e - s)
    }
}

extension PoolGeometry {
    /// Calls `body` with the in-bounds input positions (row, column) of the window of output
    /// (oh, ow), in row-major order (dilated taps, padding skipped); stops when `body` returns false.
    /// The NCHW and NHWC max-pooling kernels share this walk.
    @inline(__always)
    func forEachTap(_ oh: Int, _ ow: Int, _ body: (_ ih: Int, _ iw: Int) -> Bool) {
        for ki in 0..<kh {
            let ih = oh * sh - pt + ki * dh
            if ih < 0 || ih >= h { continue }
            for kj in 0..<kw {
                let iw = ow * sw - pl + kj * dw
                if iw < 0 || iw >= w { continue }
                if !body(ih, iw) { return }
            }
        }
    }
}

/// The index in its plane of the first maximal input of the window of output (oh, ow) — a NaN
/// wins, as PyTorch propagates it — or -1 for a window wholly in the padding.
@inline(__always)
func maxWindowArgument(_ src: UnsafePointer<Float>, _ g: PoolGeometry, _ oh: Int, _ ow: Int) -> Int {
    var best = -Float.infinity
    var arg = -1
    g.forEachTap(oh, ow) { ih, iw in
        let v = src[ih * g.w + iw]
        if v.isNaN { arg = ih * g.w + iw; return false }
        if v > best || arg < 0 { best = v; arg = ih * g.w + iw }
        return true
    }
    return arg
}

func maxPoolForward(_ x: UnsafePointer<Float>, _ g: PoolGeometry, _ y: UnsafeMutablePointer<Float>) {
    if g.dh == 1 && g.dw == 1 { return maxPoolForwardContiguous(x, g, y) }
    g.forEachOutput { i, o, oh, ow in
        let a = maxWindowArgument(x + i, g, oh, ow)
        y[o] = a >= 0 ? x[i + a] : -.infinity
    }
}

/// Without dilation a window is a clipped rectangle: plain loops over it, the maximum kept with a
/// select (a NaN wins). The per-tap closure walk took 1.3 ms for MTCNN ONet's three pools at batch 1.
private func maxPoolForwardContiguous(_ x: UnsafePointer<Float>, _ g: PoolGeometry, _ y: UnsafeMutablePointer<Float>) {
    let c0 = (0..<g.wo).map { max($0 * g.sw - g.pl, 0) }, c1 = (0..<g.wo).map { min($0 * g.sw - g.pl + g.kw, g.w) }
    Parallel.forRange(g.planes, costPerItem: g.costPerPlane) { range in
        for plane in range {
            let src = x + plane * g.h * g.w, dst = y + plane * g.ho * g.wo
            for oh in 0..<g.ho {
                let r0 = max(oh * g.sh - g.pt, 0), r1 = min(oh * g.sh - g.pt + g.kh, g.h)
                for ow in 0..<g.wo {
                    var m = -Float.infinity  // a window wholly in the padding
                    for ih in r0..<max(r0, r1) {
                        let row = src + ih * g.w
                        for iw in c0[ow]..<max(c0[ow], c1[ow]) { let v = row[iw]; m = v > m || v != v ? v : m }
                    }
                    dst[oh * g.wo + ow] = m
                }
            }
        }
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
    g.forEachWindow { i, o, rows, cols, div in
        var s: Float = 0
        for ih in rows { for iw in cols { s += x[i + ih * g.w + iw] } }
        y[o] = s / div
    }
}

func avgPoolBackward<W: AveragingWindows>(_ g: W, dy: UnsafePointer<Float>, dx: UnsafeMutablePointer<Float>) {
    g.forEachWindow { i, o, rows, cols, div in
        if rows.isEmpty || cols.isEmpty { return }
        let v = dy[o] / div
        for ih in rows { for iw in cols { dx[i + ih * g.w + iw] += v } }
    }
}
