import Foundation

/// Geometry of one 2-D convolution, NCHW input, OIHW weight. Pads are [top, left, bottom, right].
struct ConvGeometry: Equatable {
    var n, c, h, w: Int
    var o, kh, kw: Int
    var sh, sw, pt, pl, pb, pr, dh, dw, groups: Int
    var ho: Int { (h + pt + pb - dh * (kh - 1) - 1) / sh + 1 }
    var wo: Int { (w + pl + pr - dw * (kw - 1) - 1) / sw + 1 }
    var cg: Int { c / groups }
    var og: Int { o / groups }
    var kcol: Int { cg * kh * kw }
    var hw: Int { h * w }
    var howo: Int { ho * wo }
    var isPointwise: Bool { kh == 1 && kw == 1 && sh == 1 && sw == 1 && pt == 0 && pl == 0 && pb == 0 && pr == 0 }
    /// One input channel per group: a direct loop beats GEMM (tiny K).
    var isDepthwise: Bool { groups > 1 && cg == 1 }

    /// Images per GEMM: small feature maps are batched so the GEMM's N dimension stays large enough
    /// for OpenBLAS to run near its roof; large maps go straight into the output (no staging copy).
    var imagesPerChunk: Int {
        if howo >= 2048 || n == 1 { return 1 }
        let want = (3136 + howo - 1) / howo
        // Cap the column buffer around 64 MB.
        let cap = max(1, (16 << 20) / max(1, kcol * howo))
        return max(1, min(n, want, cap))
    }

    /// Calls `body(img0, count)` for consecutive chunks of `imagesPerChunk` images.
    func forEachImageChunk(_ body: (_ img0: Int, _ count: Int) -> Void) {
        let nb = imagesPerChunk
        var img0 = 0
        while img0 < n {
            let cnt = min(nb, n - img0)
            body(img0, cnt)
            img0 += cnt
        }
    }
}

extension ConvGeometry {
    /// The output columns ow whose input column ow*sw + colOff lies inside the row (0 ≤ … < w), as
    /// [lo, hi) clamped to the output width; colOff = kj*dw − pad_left for kernel column kj.
    func validOutputColumns(_ colOff: Int) -> (lo: Int, hi: Int) {
        let hi = min(colOff >= w ? 0 : (w - 1 - colOff) / sw + 1, wo)
        let lo = colOff < 0 ? (-colOff + sw - 1) / sw : 0
        return (min(lo, hi), hi)
    }
}

/// im2col for images [img0, img0+nb) and channels [c0, c0+cg) into col[kcol, nb*howo].
func im2col(_ x: UnsafePointer<Float>, _ g: ConvGeometry, img0: Int, nb: Int, c0: Int, _ col: UnsafeMutablePointer<Float>) {
    let ho = g.ho, wo = g.wo, howo = g.howo, ncols = nb * howo
    let rows = g.kcol
    Parallel.forRange(rows, costPerItem: ncols) { range in
        for r in range {
            let kj = r % g.kw
            let ki = (r / g.kw) % g.kh
            let ci = r / (g.kw * g.kh)
            let dst = col + r * ncols
            let colOff = kj * g.dw - g.pl
            let (owLo, owHi) = g.validOutputColumns(colOff)
            for img in 0..<nb {
                let src = x + ((img0 + img) * g.c + c0 + ci) * g.hw
                for oh in 0..<ho {
                    let d = dst + img * howo + oh * wo
                    let ih = oh * g.sh - g.pt + ki * g.dh
                    if ih < 0 || ih >= g.h {
                        d.update(repeating: 0, count: wo)
                        continue
                    }
                    if owLo > 0 { d.update(repeating: 0, count: owLo) }
                    let srow = src + ih * g.w + colOff
                    if g.sw == 1 {
                        (d + owLo).update(from: srow + owLo, count: owHi - owLo)
                    } else {
                        var ow = owLo
                        while ow < owHi { d[ow] = srow[ow * g.sw]; ow += 1 }
                    }
                    if owHi < wo { (d + owHi).update(repeating: 0, count: wo - owHi) }
                }
            }
        }
    }
}

/// col2im: accumulates col[kcol, nb*howo] into dx (images img0..<img0+nb, channels c0..<c0+cg).
/// Parallel over input channels so no two threads write the same plane.
func col2im(_ col: UnsafePointer<Float>, _ g: ConvGeometry, img0: Int, nb: Int, c0: Int, _ dx: UnsafeMutablePointer<Float>) {
    let ho = g.ho, wo = g.wo, howo = g.howo, ncols = nb * howo
    let kk = g.kh * g.kw
    Parallel.forRange(g.cg, costPerItem: kk * ncols) { range in
        for ci in range {
            for kidx in 0..<kk {
                let ki = kidx / g.kw, kj = kidx % g.kw
                let src = col + (ci * kk + kidx) * ncols
                let colOff = kj * g.dw - g.pl
                let (owLo, owHi) = g.validOutputColumns(colOff)
                if owLo >= owHi { continue }
                for img in 0..<nb {
                    let dst = dx + ((img0 + img) * g.c + c0 + ci) * g.hw
                    for oh in 0..<ho {
                        let ih = oh * g.sh - g.pt + ki * g.dh
                        if ih < 0 || ih >= g.h { continue }
                        let s = src + img * howo + oh * wo
                        let drow = dst + ih * g.w + colOff
                        var ow = owLo
                        while ow < owHi { drow[ow * g.sw] += s[ow]; ow += 1 }
                    }
                }
            }
        }
    }
}

/// Forward convolution with a fused epilogue (bias, then activation).
/// `weight` is OIHW (already BN-folded when fused), `bias` has O entries or is nil.
func conv2dForward(_ x: UnsafePointer<Float>, _ g: ConvGeometry, weight: UnsafePointer<Float>,
                   bias: UnsafePointer<Float>?, activation: Activation,
                   _ y: UnsafeMutablePointer<Float>, workspace: Workspace, staging: Workspace) {
    if g.isDepthwise {
        depthwiseForward(x, g, weight: weight, bias: bias, activation: activation, y)
        return
    }
    let howo = g.howo
    g.forEachImageChunk { img0, cnt in
        let ncols = cnt * howo
        let direct = cnt == 1
        // GEMM output: straight into y for one image, else a staging [O, ncols] buffer.
        let gout: UnsafeMutablePointer<Float> = direct ? y + img0 * g.o * howo : staging.get(g.o * ncols)
        for grp in 0..<g.groups {
            let a = weight + grp * g.og * g.kcol
            let bmat: UnsafePointer<Float>
            if g.isPointwise && direct {
                bmat = x + (img0 * g.c + grp * g.cg) * g.hw
            } else {
                let col = workspace.get(g.kcol * ncols)
                im2col(x, g, img0: img0, nb: cnt, c0: grp * g.cg, col)
                bmat = UnsafePointer(col)
            }
            sgemm(transA: false, transB: false, m: g.og, n: ncols, k: g.kcol, a: a, lda: g.kcol,
                  b: bmat, ldb: ncols, beta: 0, c: gout + grp * g.og * ncols, ldc: ncols)
        }
        // Epilogue: bias + activation, scattering [O, cnt, howo] → NCHW when staged.
        let o = g.o
        Parallel.forRange(o * cnt, costPerItem: howo) { range in
            for idx in range {
                let oc = idx / cnt, img = idx % cnt
                let src = UnsafePointer(gout + oc * ncols + img * howo)
                let dst = y + ((img0 + img) * o + oc) * howo
                if let bias {
                    let bv = bias[oc]
                    // One pass for the common epilogues (bias, bias+ReLU); two otherwise.
                    switch activation {
                    case .relu: for p in 0..<howo { dst[p] = max(src[p] + bv, 0) }
                    case .none: for p in 0..<howo { dst[p] = src[p] + bv }
                    default:
                        for p in 0..<howo { dst[p] = src[p] + bv }
                        activation.apply(dst, dst, howo)
                    }
                } else {
                    activation.apply(src, dst, howo)
                }
            }
        }
    }
}

/// Depthwise (one input channel per group, any multiplier) as a direct loop: row-wise axpy so the
/// inner loop vectorises for stride 1.
func depthwiseForward(_ x: UnsafePointer<Float>, _ g: ConvGeometry, weight: UnsafePointer<Float>,
                      bias: UnsafePointer<Float>?, activation: Activation, _ y: UnsafeMutablePointer<Float>) {
    let ho = g.ho, wo = g.wo, howo = g.howo
    let mult = g.og
    let kk = g.kh * g.kw
    Parallel.forRange(g.n * g.o, costPerItem: howo * kk) { range in
        for plane in range {
            let img = plane / g.o, oc = plane % g.o
            let ic = oc / mult
            let src = x + (img * g.c + ic) * g.hw
            let dst = y + plane * howo
            let wk = weight + oc * kk
            dst.update(repeating: bias?[oc] ?? 0, count: howo)
            for kj in 0..<g.kw {
                let colOff = kj * g.dw - g.pl
                let (owLo, owHi) = g.validOutputColumns(colOff)
                if owLo >= owHi { continue }
                for ki in 0..<g.kh {
                    let wv = wk[ki * g.kw + kj]
                    for oh in 0..<ho {
                        let ih = oh * g.sh - g.pt + ki * g.dh
                        if ih < 0 || ih >= g.h { continue }
                        let srow = src + ih * g.w + colOff
                        let drow = dst + oh * wo
                        if g.sw == 1 {
                            for ow in owLo..<owHi { drow[ow] += wv * srow[ow] }
                        } else {
                            for ow in owLo..<owHi { drow[ow] += wv * srow[ow * g.sw] }
                        }
                    }
                }
            }
            activation.apply(dst, dst, howo)
        }
    }
}

/// Convolution backward. `dy` is the gradient of the conv output (before any activation).
/// Computes dx (accumulated, `dx += …`) when dx is non-nil, dw (accumulated) and db (accumulated)
/// when non-nil.
func conv2dBackward(_ x: UnsafePointer<Float>, _ g: ConvGeometry, weight: UnsafePointer<Float>,
                    dy: UnsafePointer<Float>, dx: UnsafeMutablePointer<Float>?,
                    dw: UnsafeMutablePointer<Float>?, db: UnsafeMutablePointer<Float>?,
                    workspace: Workspace, staging: Workspace, staging2: Workspace) {
    let howo = g.howo
    if let db {
        Parallel.forRange(g.o, costPerItem: g.n * howo) { range in
            for oc in range {
                var s: Float = 0
                for img in 0..<g.n {
                    let p = dy + (img * g.o + oc) * howo
                    for i in 0..<howo { s += p[i] }
                }
                db[oc] += s
            }
        }
    }
    if dx == nil && dw == nil { return }
    if g.isDepthwise {
        depthwiseBackward(x, g, weight: weight, dy: dy, dx: dx, dw: dw)
        return
    }
    g.forEachImageChunk { img0, cnt in
        let ncols = cnt * howo
        let direct = cnt == 1
        // dy for this chunk as [O, ncols].
        let dyc: UnsafePointer<Float>
        if direct {
            dyc = dy + img0 * g.o * howo
        } else {
            let s = staging.get(g.o * ncols)
            let o = g.o
            Parallel.forRange(o * cnt, costPerItem: howo) { range in
                for idx in range {
                    let oc = idx / cnt, img = idx % cnt
                    (s + oc * ncols + img * howo).update(from: dy + ((img0 + img) * o + oc) * howo, count: howo)
                }
            }
            dyc = UnsafePointer(s)
        }
        for grp in 0..<g.groups {
            let dyg = dyc + grp * g.og * ncols
            let pointDirect = g.isPointwise && direct
            if let dw {
                let bmat: UnsafePointer<Float>
                if pointDirect {
                    bmat = x + (img0 * g.c + grp * g.cg) * g.hw
                } else {
                    let col = workspace.get(g.kcol * ncols)
                    im2col(x, g, img0: img0, nb: cnt, c0: grp * g.cg, col)
                    bmat = UnsafePointer(col)
                }
                // dW[og, kcol] += dy[og, ncols] · col[kcol, ncols]ᵀ
                sgemm(transA: false, transB: true, m: g.og, n: g.kcol, k: ncols, a: dyg, lda: ncols,
                      b: bmat, ldb: ncols, beta: 1, c: dw + grp * g.og * g.kcol, ldc: g.kcol)
            }
            if let dx {
                let wg = weight + grp * g.og * g.kcol
                if pointDirect {
                    // dx[cg, hw] += Wᵀ[cg, og] · dy[og, hw]
                    sgemm(transA: true, transB: false, m: g.cg, n: ncols, k: g.og, a: wg, lda: g.kcol,
                          b: dyg, ldb: ncols, beta: 1, c: dx + (img0 * g.c + grp * g.cg) * g.hw, ldc: ncols)
                } else {
                    let dcol = staging2.get(g.kcol * ncols)
                    sgemm(transA: true, transB: false, m: g.kcol, n: ncols, k: g.og, a: wg, lda: g.kcol,
                          b: dyg, ldb: ncols, beta: 0, c: dcol, ldc: ncols)
                    col2im(dcol, g, img0: img0, nb: cnt, c0: grp * g.cg, dx)
                }
            }
        }
    }
}

func depthwiseBackward(_ x: UnsafePointer<Float>, _ g: ConvGeometry, weight: UnsafePointer<Float>,
                       dy: UnsafePointer<Float>, dx: UnsafeMutablePointer<Float>?, dw: UnsafeMutablePointer<Float>?) {
    let ho = g.ho, wo = g.wo, howo = g.howo, mult = g.og, kk = g.kh * g.kw
    // Parallel over output channels: each owns its dw row; dx planes are shared only within a
    // channel's multiplier group, which is processed by the same chunk (channels split by group).
    Parallel.forRange(g.c, costPerItem: g.n * howo * kk * mult) { range in
        for ic in range {
            for m in 0..<mult {
                let oc = ic * mult + m
                let wk = weight + oc * kk
                for img in 0..<g.n {
                    let src = x + (img * g.c + ic) * g.hw
                    let dsrc = dx.map { $0 + (img * g.c + ic) * g.hw }
                    let gy = dy + (img * g.o + oc) * howo
                    for ki in 0..<g.kh {
                        for kj in 0..<g.kw {
                            let colOff = kj * g.dw - g.pl
                            let (owLo, owHi) = g.validOutputColumns(colOff)
                            if owLo >= owHi { continue }
                            let wv = wk[ki * g.kw + kj]
                            var acc: Float = 0
                            for oh in 0..<ho {
                                let ih = oh * g.sh - g.pt + ki * g.dh
                                if ih < 0 || ih >= g.h { continue }
                                let grow = gy + oh * wo
                                let off = ih * g.w + colOff
                                let srow = src + off
                                if g.sw == 1 {
                                    for ow in owLo..<owHi { acc += grow[ow] * srow[ow] }
                                    if let d = dsrc { let drow = d + off; for ow in owLo..<owHi { drow[ow] += wv * grow[ow] } }
                                } else {
                                    for ow in owLo..<owHi { acc += grow[ow] * srow[ow * g.sw] }
                                    if let d = dsrc { let drow = d + off; for ow in owLo..<owHi { drow[ow * g.sw] += wv * grow[ow] } }
                                }
                            }
                            if let dw { dw[oc * kk + ki * g.kw + kj] += acc }
                        }
                    }
                }
            }
        }
    }
}
