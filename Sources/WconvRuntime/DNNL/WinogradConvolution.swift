import CWconvDNNL
import CWconvVector
import Foundation

/// Winograd F(4×4, 3×3) for f32 3×3 stride-1 convolutions on NHWC buffers where oneDNN has no
/// Winograd kernel (oneDNN 2.6.3 has one for AVX-512 only): wconv's tile transforms
/// (wconv_winograd.c) around 36 GEMMs in oneDNN's sgemm. 2.25× fewer multiplies than the direct
/// kernel, which already runs at ≈ 91 % of the AVX2 FMA roof, so on an AVX2 CPU this is the only way
/// further on ResNet's 3×3 layers (figures in docs/runtime.md, "Winograd on AVX2").
/// Tests hold it to rtol 1e-4 / atol 2e-4 of a float64 reference (WinogradConvolutionTests).
final class WinogradConvolution {
    /// How reports name it (`--profile`, `bench conv`).
    static let implementation = "wconv:wino_4x3+sgemm"

    /// It runs instead of oneDNN's kernel `implementation` for `g`: oneDNN may take Winograd there
    /// but has no Winograd kernel (a CPU without AVX-512), or wconv's is asked for
    /// (`DNNLConvolution.preferOwnWinograd`). The caller checks layouts and types.
    static func runsInstead(of implementation: String, for g: ConvGeometry) -> Bool {
        DNNLConvolution.mayUseWinograd(g) && (!implementation.contains("wino") || DNNLConvolution.preferOwnWinograd)
    }

    let geometry: ConvGeometry
    private var shape: wconv_wino_geom
    /// 4×4 output tiles over the batch, and how many are transformed at once (`chunkScratchBytes`).
    let tiles: Int, chunkTiles: Int

    /// The transformed tiles' and products' scratch stays under this: the whole batch at once took
    /// 36 × T × (C + O) floats, 925 MB for VGG's 64-channel convs on 224×224 at batch 16 (58 MB for
    /// ResNet-50's largest, 64 channels on 56×56: one chunk). Tests lower it.
    nonisolated(unsafe) static var chunkScratchBytes = 64 << 20
    /// Transformed constant weights, 36 × C × O floats (4× the weights), and the weight buffer they
    /// were made from. Weights that change (training) are transformed every call into the scratch
    /// instead: kept per conv, they are 362 MB (counted) for the 16 convs of ResNet-50, forward and backward
    /// (training peak 2416 MiB against PyTorch's 2408).
    private let u: UnsafeMutablePointer<Float>?
    private var transformedFrom: UnsafeRawPointer?
    private let constantWeights: Bool
    /// The weights passed are the forward convolution's, and this is its input gradient's
    /// convolution (output channels and input channels swapped, kernel rotated by 180°).
    private let flippedWeights: Bool

    /// Fewest multiply-adds in each of the 36 GEMMs (tiles × C × O) for which this beats the direct
    /// kernel: below it the GEMMs are too short for their set-up and thread hand-offs. ResNet-50 held
    /// to AVX2: at batch 1 (only 64 channels on 56×56 qualified by tile count: 196 × 64 × 64 = 0.8 M)
    /// a batch took 61–62 ms against 57–58 direct; at batch 4 (3.2–4.2 M) 194–204 against 205–207;
    /// at batch 16 (12.8–16.8 M) 0.70 against 0.84 s. Tests lower it to run small graphs through here
    /// (`WCONV_WINOGRAD_MIN_MACS=N` for a process).
    nonisolated(unsafe) static var minMACsPerProduct = ProcessInfo.processInfo.environment["WCONV_WINOGRAD_MIN_MACS"].flatMap { Int($0) } ?? 3_000_000

    /// The shapes it takes: 3×3, stride 1, no dilation or groups, ≥ 16 channels each side, ≥ 16
    /// tiles of 4×4 over the batch and `minMACsPerProduct`.
    static func applies(to g: ConvGeometry) -> Bool {
        let tiles = g.n * ((g.ho + 3) / 4) * ((g.wo + 3) / 4)
        return g.groups == 1 && g.kh == 3 && g.kw == 3 && g.sh == 1 && g.sw == 1 && g.dh == 1 && g.dw == 1
            && g.c >= 16 && g.o >= 16 && tiles >= 16 && tiles * g.c * g.o >= minMACsPerProduct
    }

    init(_ g: ConvGeometry, constantWeights: Bool, flippedWeights: Bool = false) {
        geometry = g
        self.constantWeights = constantWeights
        self.flippedWeights = flippedWeights
        let tilesH = (g.ho + 3) / 4, tilesW = (g.wo + 3) / 4, t = g.n * tilesH * tilesW
        tiles = t
        chunkTiles = min(t, max(16, WinogradConvolution.chunkScratchBytes / (36 * (g.c + g.o) * 4)))
        shape = wconv_wino_geom(n: g.n, h: g.h, w: g.w, c: g.c, o: g.o, ho: g.ho, wo: g.wo, pt: g.pt, pl: g.pl,
                                tiles_h: tilesH, tiles_w: tilesW, chunk_start: 0, chunk_tiles: chunkTiles)
        u = constantWeights ? .allocate(capacity: 36 * g.c * g.o) : nil
    }

    deinit { u?.deallocate() }

    /// The input gradient of the 3×3 stride-1 convolution `g` as a convolution of dy (the same kind,
    /// padding 2 − p on each side so its output is x's size), or nil when that is not one
    /// `applies(to:)` takes (padding over 2).
    static func inputGradient(of g: ConvGeometry) -> ConvGeometry? {
        guard applies(to: g), [g.pt, g.pl, g.pb, g.pr].allSatisfy({ $0 <= 2 }) else { return nil }
        let t = ConvGeometry(n: g.n, c: g.o, h: g.ho, w: g.wo, o: g.c, kh: 3, kw: 3, sh: 1, sw: 1,
                             pt: 2 - g.pt, pl: 2 - g.pl, pb: 2 - g.pb, pr: 2 - g.pr, dh: 1, dw: 1, groups: 1)
        return applies(to: t) && t.ho == g.h && t.wo == g.w ? t : nil
    }

    private var vBytes: Int { (36 * chunkTiles * geometry.c * 4 + 63) / 64 * 64 }
    private var mBytes: Int { (36 * chunkTiles * geometry.o * 4 + 63) / 64 * 64 }

    /// Scratch `forward` needs: a chunk's transformed input (36 × chunk × C) and products (36 × chunk × O) and,
    /// for weights that change, their transform (36 × C × O), in bytes.
    var scratchBytes: Int { vBytes + mBytes + (u == nil ? 36 * geometry.c * geometry.o * 4 : 0) }

    /// The constant weights' values changed: the next call transforms them again.
    func weightsChanged() { transformedFrom = nil }

    /// y = conv(x, w) + b (+ residual), max(0, ·) when `relu`; x, y, residual NHWC f32, weights OIHW.
    /// `scratch` holds `scratchBytes`.
    func forward(_ x: UnsafePointer<Float>, weight: UnsafePointer<Float>, bias: UnsafePointer<Float>?, _ y: UnsafeMutablePointer<Float>,
                 scratch: UnsafeMutableRawPointer, residual: UnsafePointer<Float>?, relu: Bool) {
        let c = geometry.c, o = geometry.o
        let v = scratch.bindMemory(to: Float.self, capacity: 36 * chunkTiles * c)
        let m = (scratch + vBytes).bindMemory(to: Float.self, capacity: 36 * chunkTiles * o)
        let u = self.u ?? (scratch + vBytes + mBytes).bindMemory(to: Float.self, capacity: 36 * c * o)
        if !constantWeights || transformedFrom != UnsafeRawPointer(weight) {
            Parallel.forRange(c, costPerItem: o * 400) { r in
                wconv_wino43_weights(weight, u, r.lowerBound, r.upperBound, o, c, flippedWeights ? 1 : 0)
            }
            transformedFrom = UnsafeRawPointer(weight)
        }
        forEachChunk { start, t, gp in
            Parallel.forRange(t, costPerItem: c * 36 * 8) { r in wconv_wino43_input(x, v, start + r.lowerBound, start + r.upperBound, gp) }
            // Row-major: M[ξ] (t × O) = V[ξ] (t × C) · U[ξ] (C × O).
            for xi in 0..<36 { Self.gemm(false, m: t, n: o, k: c, v + xi * t * c, u + xi * c * o, beta: 0, m + xi * t * o) }
            Parallel.forRange(t, costPerItem: o * 36 * 8) { r in
                wconv_wino43_output(m, y, bias, residual, relu ? 1 : 0, start + r.lowerBound, start + r.upperBound, gp)
            }
        }
    }

    /// Runs `body(first tile, tile count, geometry)` for each chunk of tiles, the geometry's chunk set to it.
    private func forEachChunk(_ body: (Int, Int, UnsafePointer<wconv_wino_geom>) -> Void) {
        for start in stride(from: 0, to: tiles, by: chunkTiles) {
            shape.chunk_start = start
            shape.chunk_tiles = min(chunkTiles, tiles - start)
            withUnsafePointer(to: &shape) { body(start, $0.pointee.chunk_tiles, $0) }
        }
    }

    /// Row-major C (m × n) = op(A)·B + β·C with A m × k (k × m stored when `transA`), B k × n, all
    /// dense, in oneDNN's sgemm. Only invalid arguments fail, and the shapes come from one geometry.
    private static func gemm(_ transA: Bool, m: Int, n: Int, k: Int, _ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>,
                             beta: Float, _ c: UnsafeMutablePointer<Float>) {
        let status = dnnl_sgemm(CChar(UInt8(ascii: transA ? "T" : "N")), CChar(UInt8(ascii: "N")), Int64(m), Int64(n), Int64(k), 1,
                                a, Int64(transA ? m : k), b, Int64(n), beta, c, Int64(n))
        assert(status == dnnl_success, "dnnl_sgemm \(m)×\(k)·\(k)×\(n): \(status)")
    }

    /// dW (OIHW) of this convolution for input x and output gradient dy (NHWC f32), written, or
    /// added when `accumulate`: dW = Gᵀ[Σ_tiles (A dY Aᵀ) ⊙ (Bᵀ x B)]G, the sum over tiles as 36
    /// GEMMs (C × O, K = tiles of a chunk) that accumulate across chunks. `scratch` holds
    /// `scratchBytes` of an instance made with `constantWeights: false` (a chunk's transformed x and
    /// dy, and the 36 × C × O sums).
    func weightGradient(x: UnsafePointer<Float>, dy: UnsafePointer<Float>, _ dw: UnsafeMutablePointer<Float>, accumulate: Bool,
                        scratch: UnsafeMutableRawPointer) {
        precondition(u == nil, "internal: the weight gradient's sums live where changing weights' transform does")
        let c = geometry.c, o = geometry.o
        let v = scratch.bindMemory(to: Float.self, capacity: 36 * chunkTiles * c)
        let w = (scratch + vBytes).bindMemory(to: Float.self, capacity: 36 * chunkTiles * o)
        let m = (scratch + vBytes + mBytes).bindMemory(to: Float.self, capacity: 36 * c * o)
        forEachChunk { start, t, gp in
            Parallel.forRange(t, costPerItem: (c + o) * 36 * 8) { r in
                wconv_wino43_input(x, v, start + r.lowerBound, start + r.upperBound, gp)
                wconv_wino43_dy(dy, w, start + r.lowerBound, start + r.upperBound, gp)
            }
            // Row-major: M[ξ] (C × O) (+)= V[ξ]ᵀ (C × t) · W[ξ] (t × O).
            for xi in 0..<36 { Self.gemm(true, m: c, n: o, k: t, v + xi * t * c, w + xi * t * o, beta: start == 0 ? 0 : 1, m + xi * c * o) }
        }
        Parallel.forRange(c, costPerItem: o * 400) { r in
            wconv_wino43_weight_grad(m, dw, r.lowerBound, r.upperBound, o, c, accumulate ? 1 : 0)
        }
    }
}
