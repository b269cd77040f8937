import CWconvVector
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

        /// The same walk on bfloat16 (the maximum of rounded values is exact: no rounding here).
        private func forwardBF16(_ c: StepContext) {
            let g = geometry, ch = g.c
            let x = UnsafeRawPointer(c.input(0)!).assumingMemoryBound(to: UInt16.self)
            let y = UnsafeMutableRawPointer(c.output()).assumingMemoryBound(to: UInt16.self)
            Parallel.forRange(g.n * g.ho, costPerItem: g.wo * g.kh * g.kw * ch) { range in
                let a = UnsafeMutablePointer<Float>.allocate(capacity: 2 * ch), tap = a + ch
                defer { a.deallocate() }
                for row in range {
                    let img = row / g.ho, oh = row % g.ho
                    for ow in 0..<g.wo {
                        a.update(repeating: -Float.infinity, count: ch)
                        g.forEachTap(oh, ow) { ih, iw in
                            BF16Vector.widen(x + ((img * g.h + ih) * g.w + iw) * ch, tap, ch)
                            for k in 0..<ch { let v = tap[k], d = a[k]; a[k] = v > d || v != v ? v : d }
                            return true
                        }
                        BF16Vector.narrow(a, y + ((img * g.ho + oh) * g.wo + ow) * ch, ch)
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
            StepExtents(inputs, outputs) { $0.read(0, n * c * hw); $0.write(0, n * c) }
        }
        func forward(_ ctx: StepContext) throws {
            let x = UnsafePointer(ctx.input(0)!), y = ctx.output(), c = c, hw = hw
            guard bf16 else {
                Parallel.forRange(n, costPerItem: c * hw) { wconv_channel_means(x, y, $0.lowerBound, $0.upperBound, hw, c) }
                return
            }
            let xb = UnsafeRawPointer(x).assumingMemoryBound(to: UInt16.self)
            Parallel.forRange(n, costPerItem: c * hw) { range in
                for img in range {
                    let dst = y + img * c
                    dst.update(repeating: 0, count: c)
                    for p in 0..<hw { let src = xb + (img * hw + p) * c; for k in 0..<c { dst[k] += DTypeConversion.bf16ToFloat(src[k]) } }
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
            StepExtents(inputs, outputs) { $0.read(full, n * c * hw); $0.read(1 - full, n * c); $0.write(0, n * c * hw) }
        }
        func forward(_ ctx: StepContext) throws {
            let x = UnsafePointer(ctx.input(full)!), s = UnsafePointer(ctx.input(1 - full)!), y = ctx.output()
            let c = c, hw = hw, act = activation
            if bf16 {
                let xb = UnsafeRawPointer(x).assumingMemoryBound(to: UInt16.self), yb = UnsafeMutableRawPointer(y).assumingMemoryBound(to: UInt16.self)
                let hasActivation = act != .none
                Parallel.forRange(n * hw, costPerItem: c) { range in
                    let t = UnsafeMutablePointer<Float>.allocate(capacity: c)
                    defer { t.deallocate() }
                    for pix in range {
                        let sc = s + pix / hw * c
                        BF16Vector.widen(xb + pix * c, t, c)
                        for k in 0..<c { t[k] *= sc[k] }
                        if hasActivation { act.apply(t, t, c) }
                        BF16Vector.narrow(t, yb + pix * c, c)
                    }
                }
                return
            }
            Parallel.forRange(n * hw, costPerItem: c) { range in
                wconv_scale_channels(x, s, y, range.lowerBound, range.upperBound, hw, c)
                if act != .none { act.apply(y + range.lowerBound * c, y + range.lowerBound * c, range.count * c) }
            }
        }
    }
}

/// bfloat16 ↔ f32 over contiguous runs, 16 lanes at a time (DTypeConversion's rounding:
/// round-to-nearest-even, NaN kept quiet).
enum BF16Vector {
    static func widen(_ src: UnsafePointer<UInt16>, _ dst: UnsafeMutablePointer<Float>, _ n: Int) {
        var i = 0
        let s = UnsafeRawPointer(src), d = UnsafeMutableRawPointer(dst)
        while i + 16 <= n {
            let h = s.loadUnaligned(fromByteOffset: 2 * i, as: SIMD16<UInt16>.self)
            d.storeBytes(of: SIMD16<UInt32>(truncatingIfNeeded: h) &<< 16, toByteOffset: 4 * i, as: SIMD16<UInt32>.self)
            i += 16
        }
        while i < n { dst[i] = DTypeConversion.bf16ToFloat(src[i]); i += 1 }
    }

    static func narrow(_ src: UnsafePointer<Float>, _ dst: UnsafeMutablePointer<UInt16>, _ n: Int) {
        var i = 0
        let s = UnsafeRawPointer(src), d = UnsafeMutableRawPointer(dst)
        while i + 16 <= n {
            let f = s.loadUnaligned(fromByteOffset: 4 * i, as: SIMD16<Float>.self)
            let u = unsafeBitCast(f, to: SIMD16<UInt32>.self)
            var r = (u &+ 0x7FFF &+ ((u &>> 16) & 1)) &>> 16
            r.replace(with: (u &>> 16) | 0x40, where: f .!= f)
            d.storeBytes(of: SIMD16<UInt16>(truncatingIfNeeded: r), toByteOffset: 2 * i, as: SIMD16<UInt16>.self)
            i += 16
        }
        while i < n { dst[i] = DTypeConversion.floatToBF16(src[i]); i += 1 }
    }
}
