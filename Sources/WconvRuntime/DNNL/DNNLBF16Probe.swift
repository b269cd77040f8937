import Foundation

/// How fast bfloat16 convolutions run on this CPU compared with f32, measured once per process.
///
/// Having AVX512_BF16 does not make bf16 faster everywhere: on Zen 4 oneDNN's bf16 convolutions run
/// 1.6–1.8× f32 (docs/runtime.md), but on an Intel Xeon that reports AVX512_BF16 without AMX
/// (family 6 model 207 under KVM, AMX hidden) VDPBF16PS does no more multiply-adds per cycle than
/// two f32 FMAs and ResNet-50 inference ran at 0.52× f32. CPUID cannot tell the two apart, so a user
/// who asks for `--precision bf16` gets two small convolutions timed both ways (≈ 30–60 ms, once)
/// and a warning with the figures when bf16 is the slower one.
public enum BF16SpeedProbe {
    /// Milliseconds per call, best of a few, of the probe's convolutions in each precision.
    public struct Measurement: Sendable {
        public let f32: Double, bf16: Double
        public init(f32: Double, bf16: Double) { self.f32 = f32; self.bf16 = bf16 }
        /// bf16's speed relative to f32 (> 1: bf16 is faster).
        public var speedup: Double { f32 / bf16 }
        /// What the probe ran, for messages.
        public static let shapes = "1×1 256→256 and 3×3 128→128 convolutions at 28×28, batch 8"
    }

    /// The measurement (taken on the first call; nil when bf16 convolutions cannot run here).
    public static var measurement: Measurement? { cached }
    private static let cached: Measurement? = try? measure()

    /// A warning for `--precision bf16` users when bf16 is slower than f32 here, else nil.
    public static func advice(_ m: Measurement) -> String? {
        guard m.speedup < 0.9 else { return nil }
        return String(format: "--precision bf16 runs at %.2f× the speed of f32 on this CPU (measured just now: %@ take %.1f ms in bf16, %.1f ms in f32; "
                      + "bfloat16 pays off with AMX, or where AVX512_BF16 outruns the f32 FMAs, as on Zen 4): drop --precision bf16 for speed; "
                      + "the run goes on in bf16 as asked (it still holds activations in half the memory)",
                      m.speedup, Measurement.shapes, m.bf16, m.f32)
    }

    static func measure() throws -> Measurement {
        let shapes = [ConvGeometry(n: 8, c: 256, h: 28, w: 28, o: 256, kh: 1, kw: 1, sh: 1, sw: 1, pt: 0, pl: 0, pb: 0, pr: 0, dh: 1, dw: 1, groups: 1),
                      ConvGeometry(n: 8, c: 128, h: 28, w: 28, o: 128, kh: 3, kw: 3, sh: 1, sw: 1, pt: 1, pl: 1, pb: 1, pr: 1, dh: 1, dw: 1, groups: 1)]
        var f32 = 0.0, bf16 = 0.0
        for g in shapes {
            // The layouts a plan uses: NHWC f32 between f32 convs, NHWC bf16 between bf16 ones.
            let a = try DNNLConvolution(g, activation: .relu, hasBias: true, layout: .nhwc, nchwInput: false, nchwOutput: false)
            let b = try DNNLConvolution(g, activation: .relu, hasBias: true, layout: .nhwc, nchwInput: false, nchwOutput: false,
                                        bf16: true, bf16Input: true, bf16Output: true)
            var r = SplitMix64(seed: 7)
            let x = (0..<g.n * g.c * g.h * g.w).map { _ in r.nextGaussian() * 0.5 }
            // The bf16 input as a bf16 plan holds it: each value's upper half, two to a Float slot.
            var xb = [Float](repeating: 0, count: (x.count + 1) / 2)
            xb.withUnsafeMutableBytes { raw in
                BF16Vector.narrow(x, raw.baseAddress!.assumingMemoryBound(to: UInt16.self), x.count)
            }
            let w = [Float](repeating: 0.01, count: g.o * g.kcol), bias = [Float](repeating: 0, count: g.o)
            var y = [Float](repeating: 0, count: g.n * g.o * g.howo)
            let scratchBytes = max(a.srcStagingBytes + a.dstStagingBytes, b.srcStagingBytes + b.dstStagingBytes) + 128
            let scratch = UnsafeMutableRawPointer.allocate(byteCount: scratchBytes, alignment: 64)
            defer { scratch.deallocate() }
            // Alternated, so a busy moment of the machine hits both; the best of four after a warm-up.
            let runs = [(a, x), (b, xb)]
            var best = [Double.infinity, .infinity]
            for rep in 0..<5 {
                for (i, (conv, input)) in runs.enumerated() {
                    let t0 = DispatchTime.now().uptimeNanoseconds
                    conv.forward(input, weight: w, bias: bias, &y, scratch: scratch)
                    if rep > 0 { best[i] = min(best[i], Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e6) }
                }
            }
            f32 += best[0]; bf16 += best[1]
        }
        return Measurement(f32: f32, bf16: bf16)
    }
}
