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
}

func maxPoolForward(_ x: UnsafePointer<Float>, _ g: PoolGeometry, _ y: UnsafeMutablePointer<Float>) {
    Parallel.forRange(g.n * g.c, costPerItem: g.ho * g.wo * g.kh * g.kw) { range in
        for plane in range {
            let src = x + plane * g.h * g.w, dst = y + plane * g.ho * g.wo
            for oh in 0..<g.ho {
                for ow in 0..<g.wo {
                    var best = -Float.infinity
                    var any = false
                    for ki in 0..<g.kh {
                        let ih = oh * g.sh - g.pt + ki * g.dh
                        if ih < 0 || ih >= g.h { continue }
                        for kj in 0..<g.kw {
                            let iw = ow * g.sw - g.pl + kj * g.dw
                            if iw < 0 || iw >= g.w { continue }
                            let v = src[ih * g.w + iw]
                            // PyTorch propagates NaN: a NaN wins.
                            if v > best || v.isNaN || !any { best = v; any = true }
                            if v.isNaN { break }
                        }
                    }
                    dst[oh * g.wo + ow] = best
                }
            }
        }
    }
}

/// Routes each output gradient to the first maximal input of its window (PyTorch's choice).
func maxPoolBackward(_ x: UnsafePointer<Float>, _ g: PoolGeometry, dy: UnsafePointer<Float>, dx: UnsafeMutablePointer<Float>) {
    Parallel.forRange(g.n * g.c, costPerItem: g.ho * g.wo * g.kh * g.kw) { range in
        for plane in range {
            let src = x + plane * g.h * g.w, gy = dy + plane * g.ho * g.wo, gx = dx + plane * g.h * g.w
            for oh in 0..<g.ho {
                for ow in 0..<g.wo {
                    var best = -Float.infinity
                    var arg = -1
                    outer: for ki in 0..<g.kh {
                        let ih = oh * g.sh - g.pt + ki * g.dh
                        if ih < 0 || ih >= g.h { continue }
                        for kj in 0..<g.kw {
                            let iw = ow * g.sw - g.pl + kj * g.dw
                            if iw < 0 || iw >= g.w { continue }
                            let v = src[ih * g.w + iw]
                            if v > best || v.isNaN || arg < 0 { best = v; arg = ih * g.w + iw }
                            if v.isNaN { break outer }
                        }
                    }
                    if arg >= 0 { gx[arg] += gy[oh * g.wo + ow] }
                }
            }
        }
    }
}

/// The window [hs, he) × [ws, we) clipped to the input, and PyTorch's divisor for it.
@inline(__always)
func avgWindow(_ g: PoolGeometry, _ oh: Int, _ ow: Int) -> (Int, Int, Int, Int, Float) {
    var hs = oh * g.sh - g.pt, ws = ow * g.sw - g.pl
    var he = min(hs + g.kh, g.h + g.pb), we = min(ws + g.kw, g.w + g.pr)
    let poolSize = (he - hs) * (we - ws)
    hs = max(hs, 0); ws = max(ws, 0); he = min(he, g.h); we = min(we, g.w)
    let div = g.countIncludePad ? poolSize : (he - hs) * (we - ws)
    return (hs, he, ws, we, Float(max(div, 1)))
}

func avgPoolForward(_ x: UnsafePointer<Float>, _ g: PoolGeometry, _ y: UnsafeMutablePointer<Float>) {
    Parallel.forRange(g.n * g.c, costPerItem: g.ho * g.wo * g.kh * g.kw) { range in
        for plane in range {
            let src = x + plane * g.h * g.w, dst = y + plane * g.ho * g.wo
            for oh in 0..<g.ho {
                for ow in 0..<g.wo {
                    let (hs, he, ws, we, div) = avgWindow(g, oh, ow)
                    var s: Float = 0
                    if hs < he && ws < we {
                        for ih in hs..<he { for iw in ws..<we { s += src[ih * g.w + iw] } }
                    }
                    dst[oh * g.wo + ow] = s / div
                }
            }
        }
    }
}

func avgPoolBackward(_ g: PoolGeometry, dy: UnsafePointer<Float>, dx: UnsafeMutablePointer<Float>) {
    Parallel.forRange(g.n * g.c, costPerItem: g.ho * g.wo * g.kh * g.kw) { range in
        for plane in range {
            let gy = dy + plane * g.ho * g.wo, gx = dx + plane * g.h * g.w
            for oh in 0..<g.ho {
                for ow in 0..<g.wo {
                    let (hs, he, ws, we, div) = avgWindow(g, oh, ow)
                    if hs >= he || ws >= we { continue }
                    let v = gy[oh * g.wo + ow] / div
                    for ih in hs..<he { for iw in ws..<we { gx[ih * g.w + iw] += v } }
                }
            }
        }
    }
}

/// PyTorch's adaptive pooling bounds: start = ⌊i·in/out⌋, end = ⌈(i+1)·in/out⌉.
@inline(__always) func adaptiveStart(_ i: Int, _ inSize: Int, _ outSize: Int) -> Int { (i * inSize) / outSize }
@inline(__always) func adaptiveEnd(_ i: Int, _ inSize: Int, _ outSize: Int) -> Int { ((i + 1) * inSize + outSize - 1) / outSize }

func adaptiveAvgPoolForward(_ x: UnsafePointer<Float>, planes: Int, h: Int, w: Int, oh: Int, ow: Int, _ y: UnsafeMutablePointer<Float>) {
    Parallel.forRange(planes, costPerItem: h * w) { range in
        for plane in range {
            let src = x + plane * h * w, dst = y + plane * oh * ow
            for i in 0..<oh {
                let hs = adaptiveStart(i, h, oh), he = adaptiveEnd(i, h, oh)
                for j in 0..<ow {
                    let ws = adaptiveStart(j, w, ow), we = adaptiveEnd(j, w, ow)
                    var s: Float = 0
                    for ih in hs..<he { for iw in ws..<we { s += src[ih * w + iw] } }
                    dst[i * ow + j] = s / Float((he - hs) * (we - ws))
                }
            }
        }
    }
}

func adaptiveAvgPoolBackward(planes: Int, h: Int, w: Int, oh: Int, ow: Int, dy: UnsafePointer<Float>, dx: UnsafeMutablePointer<Float>) {
    Parallel.forRange(planes, costPerItem: h * w) { range in
        for plane in range {
            let gx = dx + plane * h * w, gy = dy + plane * oh * ow
            for i in 0..<oh {
                let hs = adaptiveStart(i, h, oh), he = adaptiveEnd(i, h, oh)
                for j in 0..<ow {
                    let ws = adaptiveStart(j, w, ow), we = adaptiveEnd(j, w, ow)
                    let v = gy[i * ow + j] / Float((he - hs) * (we - ws))
                    for ih in hs..<he { for iw in ws..<we { gx[ih * w + iw] += v } }
                }
            }
        }
    }
}
