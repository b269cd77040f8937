import Foundation
import WconvTensor

/// The steps besides convolutions that read channels-last (NHWC) activations in an inference plan
/// (DNNLLayoutPlan), so a ResNet or an EfficientNet block stays NHWC from its first conv to its last
/// pooling: max pooling, global average pooling (and adaptive to 1×1) and the squeeze-excite scale
/// x[N,C,H,W] · s[N,C,1,1]. Inner loops run over channels, which are contiguous in NHWC.
enum NHWCKernels {
    /// Max pooling with PyTorch's windows (PoolGeometry) and NaN propagation; NHWC in and out.
    struct MaxPool: StepKernel {
        let geometry: PoolGeometry
        /// Input and output hold bfloat16 (a bf16 plan, DNNLPrecisionPlan).
        var bf16 = false
        func extents(inputs: [Int], outputs: [Int]) -> StepExtents { Pool(max: true, geometry: geometry).extents(inputs: inputs, outputs: outputs) }
        func forward(_ c: StepContext) throws {
            if bf16 { return forwardBF16(c) }
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
                                // Select and store every lane (no branch), so the loop vectorises.
                                for k in 0..<ch { let v = src[k], d = dst[k]; dst[k] = v > d || v != v ? v : d }
                            }
                            return true
                        }
                        if first { dst.update(repeating: -Float.infinity, count: ch) }
                    }
                }
            }
        }

        /// The same walk on bfloat16 (the maximum of rounded values is exact: no rounding here).
        private func forwardBF16(_ c: StepContext) {
            let g = geometry, ch = g.c
            let x = UnsafeRawPointer(c.input(0)!).assumingMemoryBound(to: UInt16.self)
            let y = UnsafeMutableRawPointer(c.output()).assumingMemoryBound(to: UInt16.self)
            Parallel.forRange(g.n * g.ho, costPerItem: g.wo * g.kh * g.kw * ch) { range in
                var acc = [Float](repeating: 0, count: ch)
                for row in range {
                    let img = row / g.ho, oh = row % g.ho
                    for ow in 0..<g.wo {
                        acc.withUnsafeMutableBufferPointer { a in
                            a.update(repeating: -Float.infinity)
                            g.forEachTap(oh, ow) { ih, iw in
                                let src = x + ((img * g.h + ih) * g.w + iw) * ch
                                for k in 0..<ch { let v = DTypeConversion.bf16ToFloat(src[k]), d = a[k]; a[k] = v > d || v != v ? v : d }
                                return true
                            }
                            let dst = y + ((img * g.ho + oh) * g.wo + ow) * ch
                            for k in 0..<ch { dst[k] = DTypeConversion.floatToBF16(a[k]) }
                        }
                    }
                }
            }
        }
    }

    /// Mean over H×W of an NHWC input; the [N, C, 1, 1] output is the same memory in either layout.
    struct GlobalAvgPool: StepKernel {
        let n: Int, c: Int, hw: Int
        /// The input holds bfloat16 (the output is f32).
        var bf16 = false
        func extents(inputs: [Int], outputs: [Int]) -> StepExtents {
            var e = StepExtents(inputs: inputs.count, outputs: outputs.count)
            e.read(0, n * c * hw); e.write(0, n * c)
            return e
        }
        func forward(_ ctx: StepContext) throws {
            let x = UnsafePointer(ctx.input(0)!), y = ctx.output(), c = c, hw = hw
            Parallel.forRange(n, costPerItem: c * hw) { range in
                for img in range {
                    let dst = y + img * c
                    dst.update(repeating: 0, count: c)
                    if bf16 {
                        let xb = UnsafeRawPointer(x).assumingMemoryBound(to: UInt16.self)
                        for p in 0..<hw { let src = xb + (img * hw + p) * c; for k in 0..<c { dst[k] += DTypeConversion.bf16ToFloat(src[k]) } }
                    } else {
                        for p in 0..<hw { let src = x + (img * hw + p) * c; for k in 0..<c { dst[k] += src[k] } }
                    }
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
        /// The full-size input and the output hold bfloat16 (the scale is f32).
        var bf16 = false
        func extents(inputs: [Int], outputs: [Int]) -> StepExtents {
            var e = StepExtents(inputs: inputs.count, outputs: outputs.count)
            e.read(full, n * c * hw); e.read(1 - full, n * c); e.write(0, n * c * hw)
            return e
        }
        func forward(_ ctx: StepContext) throws {
            let x = UnsafePointer(ctx.input(full)!), s = UnsafePointer(ctx.input(1 - full)!), y = ctx.output()
            let c = c, hw = hw, act = activation
            if bf16 {
                let xb = UnsafeRawPointer(x).assumingMemoryBound(to: UInt16.self), yb = UnsafeMutableRawPointer(y).assumingMemoryBound(to: UInt16.self)
                Parallel.forRange(n * hw, costPerItem: c) { range in
                    var row = [Float](repeating: 0, count: c)
                    row.withUnsafeMutableBufferPointer { t in
                        let t = t.baseAddress!
                        for pix in range {
                            let src = xb + pix * c, dst = yb + pix * c, sc = s + pix / hw * c
                            for k in 0..<c { t[k] = DTypeConversion.bf16ToFloat(src[k]) * sc[k] }
                            if act != .none { act.apply(t, t, c) }
                            for k in 0..<c { dst[k] = DTypeConversion.floatToBF16(t[k]) }
                        }
                    }
                }
                return
            }
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
