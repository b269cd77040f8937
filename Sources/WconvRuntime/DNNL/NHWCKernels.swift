import Foundation

/// The steps besides convolutions that read channels-last (NHWC) activations in an inference plan
/// (DNNLLayoutPlan), so a ResNet or an EfficientNet block stays NHWC from its first conv to its last
/// pooling: max pooling, global average pooling (and adaptive to 1×1) and the squeeze-excite scale
/// x[N,C,H,W] · s[N,C,1,1]. Inner loops run over channels, which are contiguous in NHWC.
enum NHWCKernels {
    /// Max pooling with PyTorch's windows (PoolGeometry) and NaN propagation; NHWC in and out.
    struct MaxPool: StepKernel {
        let geometry: PoolGeometry
        func extents(inputs: [Int], outputs: [Int]) -> StepExtents { Pool(max: true, geometry: geometry).extents(inputs: inputs, outputs: outputs) }
        func forward(_ c: StepContext) throws {
            let g = geometry, x = UnsafePointer(c.input(0)!), y = c.output(), ch = g.c
            Parallel.forRange(g.n * g.ho, costPerItem: g.wo * g.kh * g.kw * ch) { range in
                for row in range {
                    let img = row / g.ho, oh = row % g.ho
                    for ow in 0..<g.wo {
                        let dst = y + ((img * g.ho + oh) * g.wo + ow) * ch
                        var first = true
                        g.forEachTap(oh, ow) { ih, iw in
                            let src = x + ((img * g.h + ih) * g.w + iw) * ch
                            if first {
                                dst.update(from: src, count: ch)
                                first = false
                            } else {
                                // A NaN wins, as in PyTorch (and the NCHW kernel): v > NaN is false, so a NaN stays.
                                // A select, not a branch, so the channel loop vectorises (it was 13 % of a
                                // few-label job's samples as a branchy scalar loop).
                                for k in 0..<ch { let v = src[k], d = dst[k]; dst[k] = (v > d) || (v != v) ? v : d }
                            }
                            return true
                        }
                        if first { dst.update(repeating: -Float.infinity, count: ch) }
                    }
                }
            }
        }
    }

    /// Mean over H×W of an NHWC input; the [N, C, 1, 1] output is the same memory in either layout.
    struct GlobalAvgPool: StepKernel {
        let n: Int, c: Int, hw: Int
        func extents(inputs: [Int], outputs: [Int]) -> StepExtents {
            StepExtents(inputs, outputs) { $0.read(0, n * c * hw); $0.write(0, n * c) }
        }
        func forward(_ ctx: StepContext) throws {
            let x = UnsafePointer(ctx.input(0)!), y = ctx.output(), c = c, hw = hw
            Parallel.forRange(n, costPerItem: c * hw) { range in
                for img in range {
                    let dst = y + img * c
                    dst.update(repeating: 0, count: c)
                    for p in 0..<hw { let src = x + (img * hw + p) * c; for k in 0..<c { dst[k] += src[k] } }
                    let inv = 1 / Float(hw)
                    for k in 0..<c { dst[k] *= inv }
                }
            }
        }
    }

    /// y = x · s with x NHWC [N, C, H, W] and s [N, C, 1, 1] (either operand order), with the fused
    /// activation applied after.
    struct ChannelScale: StepKernel {
        let n: Int, c: Int, hw: Int
        /// Input index of the full-size operand (the other is the per-channel scale).
        let full: Int
        let activation: Activation
        func extents(inputs: [Int], outputs: [Int]) -> StepExtents {
            StepExtents(inputs, outputs) { $0.read(full, n * c * hw); $0.read(1 - full, n * c); $0.write(0, n * c * hw) }
        }
        func forward(_ ctx: StepContext) throws {
            let x = UnsafePointer(ctx.input(full)!), s = UnsafePointer(ctx.input(1 - full)!), y = ctx.output()
            let c = c, hw = hw, act = activation
            Parallel.forRange(n * hw, costPerItem: c) { range in
                for pix in range {
                    let img = pix / hw, src = x + pix * c, dst = y + pix * c, sc = s + img * c
                    for k in 0..<c { dst[k] = src[k] * sc[k] }
                    if act != .none { act.apply(dst, dst, c) }
                }
            }
        }
    }
}
