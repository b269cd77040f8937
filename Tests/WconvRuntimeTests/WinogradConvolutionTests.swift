import CWconvVector
import WconvTensor
import XCTest
@testable import WconvRuntime

/// wconv's Winograd F(4×4, 3×3) (the 3×3 convolutions of CPUs where oneDNN has no Winograd kernel)
/// against the naive float64 convolution, on every vector path this CPU has: channel counts that
/// leave a partial block of 16, maps that leave partial tiles, asymmetric padding, bias, residual
/// in place and ReLU.
final class WinogradConvolutionTests: XCTestCase {
    private var original = ""
    override func setUp() { original = String(cString: wconv_vector_isa()) }
    override func tearDown() { _ = wconv_vector_use(original) }

    var paths: [String] {
        let level = CPUFeatures.current.level
        return ["portable"] + (level >= .avx2 ? ["avx2"] : []) + (level >= .avx512 ? ["avx512"] : [])
    }

    /// NCHW → NHWC.
    func nhwc(_ x: [Float], _ n: Int, _ c: Int, _ h: Int, _ w: Int) -> [Float] {
        var y = [Float](repeating: 0, count: x.count)
        for i in 0..<n { for k in 0..<c { for p in 0..<(h * w) { y[(i * h * w + p) * c + k] = x[(i * c + k) * h * w + p] } } }
        return y
    }

    func check(n: Int, c: Int, o: Int, h: Int, w: Int, pads: [Int], bias: Bool, residual: Bool, relu: Bool, constantWeights: Bool = true) throws {
        var rng = TestRNG(UInt64(c * 131 + o * 7 + h))
        let g = ConvGeometry(n: n, c: c, h: h, w: w, o: o, kh: 3, kw: 3, sh: 1, sw: 1, pt: pads[0], pl: pads[1], pb: pads[2], pr: pads[3], dh: 1, dw: 1, groups: 1)
        let x = rng.tensor([n, c, h, w]).floats(), wt = rng.tensor([o, c, 3, 3]).floats(), b = rng.tensor([o]).floats()
        var (want, _) = naiveConv(x, [n, c, h, w], wt, [o, c, 3, 3], bias ? b : nil, stride: [1, 1], pads: pads, dil: [1, 1], groups: 1)
        want = nhwc(want, n, o, g.ho, g.wo)
        let res = rng.tensor([n * g.ho * g.wo * o]).floats()
        if residual { for i in want.indices { want[i] += res[i] } }
        if relu { want = want.map { max(0, $0) } }
        let xs = nhwc(x, n, c, h, w)
        for path in paths {
            XCTAssertEqual(wconv_vector_use(path), 1)
            let conv = WinogradConvolution(g, constantWeights: constantWeights)
            let scratch = UnsafeMutableRawPointer.allocate(byteCount: conv.scratchBytes, alignment: 64)
            defer { scratch.deallocate() }
            var y = residual ? res : [Float](repeating: .nan, count: want.count)
            xs.withUnsafeBufferPointer { xp in wt.withUnsafeBufferPointer { wp in b.withUnsafeBufferPointer { bp in
                y.withUnsafeMutableBufferPointer { yp in
                    // The residual is the output buffer itself (in place), as the plans pass it.
                    conv.forward(xp.baseAddress!, weight: wp.baseAddress!, bias: bias ? bp.baseAddress! : nil, yp.baseAddress!,
                                 scratch: scratch, residual: residual ? UnsafePointer(yp.baseAddress!) : nil, relu: relu)
                }
            } } }
            assertClose(y, want, rtol: 1e-4, atol: 2e-4, "n\(n) c\(c) o\(o) \(h)×\(w) pads \(pads) at \(path)")
        }
    }

    func testResNetLikeShapes() throws {
        try check(n: 2, c: 16, o: 16, h: 16, w: 16, pads: [1, 1, 1, 1], bias: true, residual: false, relu: true)
        try check(n: 1, c: 32, o: 48, h: 8, w: 8, pads: [1, 1, 1, 1], bias: false, residual: false, relu: false)
    }

    func testPartialBlocksAndTiles() throws {
        // 17 and 21 channels: one full block of 16 and a partial one; 13×11 maps: partial tiles.
        try check(n: 3, c: 17, o: 21, h: 13, w: 11, pads: [1, 1, 1, 1], bias: true, residual: true, relu: true)
        try check(n: 1, c: 5, o: 3, h: 7, w: 9, pads: [1, 1, 1, 1], bias: true, residual: false, relu: false)
    }

    func testAsymmetricAndNoPadding() throws {
        try check(n: 2, c: 16, o: 20, h: 10, w: 12, pads: [0, 0, 0, 0], bias: true, residual: false, relu: true)
        try check(n: 2, c: 18, o: 16, h: 9, w: 10, pads: [1, 0, 2, 1], bias: false, residual: true, relu: false)
        try check(n: 1, c: 16, o: 16, h: 6, w: 6, pads: [2, 2, 2, 2], bias: true, residual: false, relu: false)
    }

    /// Tiles transformed in chunks (the scratch cap; VGG's 224×224 maps): 36 tiles in chunks of 20
    /// and 16, and the input gradient likewise.
    func testChunksOfTiles() throws {
        let cap = WinogradConvolution.chunkScratchBytes
        WinogradConvolution.chunkScratchBytes = 36 * (17 + 21) * 4 * 20
        defer { WinogradConvolution.chunkScratchBytes = cap }
        let g = ConvGeometry(n: 3, c: 17, h: 13, w: 11, o: 21, kh: 3, kw: 3, sh: 1, sw: 1, pt: 1, pl: 1, pb: 1, pr: 1, dh: 1, dw: 1, groups: 1)
        XCTAssertEqual(WinogradConvolution(g, constantWeights: true).chunkTiles, 20)
        try check(n: 3, c: 17, o: 21, h: 13, w: 11, pads: [1, 1, 1, 1], bias: true, residual: true, relu: true)
    }

    /// Training weights change in place between calls: without constant weights each call
    /// transforms them again; with constant weights `weightsChanged` does.
    func testWeightsTransformedAgainWhenTheyChange() throws {
        let g = ConvGeometry(n: 1, c: 16, h: 8, w: 8, o: 16, kh: 3, kw: 3, sh: 1, sw: 1, pt: 1, pl: 1, pb: 1, pr: 1, dh: 1, dw: 1, groups: 1)
        var rng = TestRNG(3)
        let x = rng.tensor([1, 8, 8, 16]).floats()
        var w = rng.tensor([16, 16, 3, 3]).floats()
        for constant in [false, true] {
            let conv = WinogradConvolution(g, constantWeights: constant)
            let scratch = UnsafeMutableRawPointer.allocate(byteCount: conv.scratchBytes, alignment: 64)
            defer { scratch.deallocate() }
            var y = [Float](repeating: 0, count: 8 * 8 * 16)
            func run() -> [Float] {
                x.withUnsafeBufferPointer { xp in w.withUnsafeBufferPointer { wp in y.withUnsafeMutableBufferPointer { yp in
                    conv.forward(xp.baseAddress!, weight: wp.baseAddress!, bias: nil, yp.baseAddress!, scratch: scratch, residual: nil, relu: false)
                } } }
                return y
            }
            let first = run()
            w = w.map { $0 * 2 }
            if constant { conv.weightsChanged() }
            let second = run()
            assertClose(second, first.map { $0 * 2 }, rtol: 1e-5, atol: 1e-5, "constant weights \(constant)")
        }
    }

    /// The input gradient as a Winograd convolution of dy with the forward weights rotated (training
    /// on CPUs without AVX-512): dx[c][y][x] = Σ dy[o][y + pt − i][x + pl − j] · w[o][c][i][j], added to
    /// what dx holds, on every vector path.
    func testInputGradientMatchesTheDefinition() throws {
        let minMACs = WinogradConvolution.minMACsPerProduct
        WinogradConvolution.minMACsPerProduct = 0
        defer { WinogradConvolution.minMACsPerProduct = minMACs }
        for pads in [[1, 1, 1, 1], [1, 0, 2, 1], [0, 0, 0, 0]] {
            let (n, c, o, h, w) = (4, 17, 20, 17, 15)   // ≥ 64 tiles of 4×4
            let g = ConvGeometry(n: n, c: c, h: h, w: w, o: o, kh: 3, kw: 3, sh: 1, sw: 1, pt: pads[0], pl: pads[1], pb: pads[2], pr: pads[3], dh: 1, dw: 1, groups: 1)
            guard let t = WinogradConvolution.inputGradient(of: g) else { return XCTFail("no input-gradient geometry for pads \(pads)") }
            XCTAssertEqual([t.c, t.o, t.h, t.w, t.ho, t.wo], [o, c, g.ho, g.wo, h, w])
            var rng = TestRNG(41)
            let dy = rng.tensor([n, g.ho, g.wo, o]).floats(), wt = rng.tensor([o, c, 3, 3]).floats(), prior = rng.tensor([n * h * w * c]).floats()
            var want = prior
            for i in 0..<n { for y in 0..<h { for x in 0..<w { for k in 0..<c {
                var s = 0.0
                for ki in 0..<3 { for kj in 0..<3 {
                    let oy = y + pads[0] - ki, ox = x + pads[1] - kj
                    guard oy >= 0, oy < g.ho, ox >= 0, ox < g.wo else { continue }
                    for j in 0..<o { s += Double(dy[((i * g.ho + oy) * g.wo + ox) * o + j]) * Double(wt[((j * c + k) * 3 + ki) * 3 + kj]) }
                } }
                want[((i * h + y) * w + x) * c + k] += Float(s)
            } } } }
            for path in paths {
                XCTAssertEqual(wconv_vector_use(path), 1)
                let conv = WinogradConvolution(t, constantWeights: false, flippedWeights: true)
                let scratch = UnsafeMutableRawPointer.allocate(byteCount: conv.scratchBytes, alignment: 64)
                defer { scratch.deallocate() }
                var dx = prior
                dy.withUnsafeBufferPointer { dp in wt.withUnsafeBufferPointer { wp in dx.withUnsafeMutableBufferPointer { xp in
                    conv.forward(dp.baseAddress!, weight: wp.baseAddress!, bias: nil, xp.baseAddress!, scratch: scratch,
                                 residual: UnsafePointer(xp.baseAddress!), relu: false)
                } } }
                assertClose(dx, want, rtol: 1e-4, atol: 2e-4, "pads \(pads) at \(path)")
            }
        }
        // Padding over 2 has no such geometry.
        XCTAssertNil(WinogradConvolution.inputGradient(of: ConvGeometry(n: 16, c: 16, h: 14, w: 14, o: 16, kh: 3, kw: 3, sh: 1, sw: 1, pt: 3, pl: 3, pb: 3, pr: 3, dh: 1, dw: 1, groups: 1)))
    }

    /// The weight gradient (training on CPUs without AVX-512): dW[o][c][i][j] = Σ dy[o][y][x] ·
    /// x[c][y + i − pt][x + j − pl], written into a fresh buffer or added to what it holds, with the
    /// tiles in one chunk and in several (the sums then accumulate across chunks), on every vector path.
    func testWeightGradientMatchesTheDefinition() throws {
        let minMACs = WinogradConvolution.minMACsPerProduct, cap = WinogradConvolution.chunkScratchBytes
        WinogradConvolution.minMACsPerProduct = 0
        defer { WinogradConvolution.minMACsPerProduct = minMACs; WinogradConvolution.chunkScratchBytes = cap }
        for (pads, chunk) in [([1, 1, 1, 1], cap), ([1, 0, 2, 1], 36 * (17 + 20) * 4 * 24), ([0, 0, 0, 0], cap)] {
            WinogradConvolution.chunkScratchBytes = chunk
            let (n, c, o, h, w) = (4, 17, 20, 17, 15)
            let g = ConvGeometry(n: n, c: c, h: h, w: w, o: o, kh: 3, kw: 3, sh: 1, sw: 1, pt: pads[0], pl: pads[1], pb: pads[2], pr: pads[3], dh: 1, dw: 1, groups: 1)
            var rng = TestRNG(43)
            let x = rng.tensor([n, h, w, c]).floats(), dy = rng.tensor([n, g.ho, g.wo, o]).floats(), prior = rng.tensor([o * c * 9]).floats()
            var want = [Float](repeating: 0, count: o * c * 9)
            for j in 0..<o { for k in 0..<c { for ki in 0..<3 { for kj in 0..<3 {
                var s = 0.0
                for i in 0..<n { for oy in 0..<g.ho { for ox in 0..<g.wo {
                    let iy = oy + ki - pads[0], ix = ox + kj - pads[1]
                    guard iy >= 0, iy < h, ix >= 0, ix < w else { continue }
                    s += Double(dy[((i * g.ho + oy) * g.wo + ox) * o + j]) * Double(x[((i * h + iy) * w + ix) * c + k])
                } } }
                want[((j * c + k) * 3 + ki) * 3 + kj] = Float(s)
            } } } }
            for path in paths {
                XCTAssertEqual(wconv_vector_use(path), 1)
                let conv = WinogradConvolution(g, constantWeights: false)
                if chunk != cap { XCTAssertLessThan(conv.chunkTiles, conv.tiles) }
                let scratch = UnsafeMutableRawPointer.allocate(byteCount: conv.scratchBytes, alignment: 64)
                defer { scratch.deallocate() }
                for accumulate in [false, true] {
                    var dw = accumulate ? prior : [Float](repeating: .nan, count: prior.count)
                    x.withUnsafeBufferPointer { xp in dy.withUnsafeBufferPointer { dp in dw.withUnsafeMutableBufferPointer { wp in
                        conv.weightGradient(x: xp.baseAddress!, dy: dp.baseAddress!, wp.baseAddress!, accumulate: accumulate, scratch: scratch)
                    } } }
                    let expected = accumulate ? zip(want, prior).map { $0 + $1 } : want
                    assertClose(dw, expected, rtol: 1e-4, atol: 1e-3, "pads \(pads), chunks of \(conv.chunkTiles) of \(conv.tiles) tiles, accumulate \(accumulate) at \(path)")
                }
            }
        }
    }

    /// The shape rule: 3×3 stride 1, no dilation or groups, ≥ 16 channels, ≥ 16 tiles of 4×4 and
    /// 3 M multiply-adds in each of the 36 GEMMs.
    func testShapeRule() {
        func g(n: Int, c: Int = 256, hw: Int, s: Int = 1, groups: Int = 1) -> ConvGeometry {
            ConvGeometry(n: n, c: c, h: hw, w: hw, o: c, kh: 3, kw: 3, sh: s, sw: s, pt: 1, pl: 1, pb: 1, pr: 1, dh: 1, dw: 1, groups: groups)
        }
        XCTAssertTrue(WinogradConvolution.applies(to: g(n: 16, hw: 7)))           // 64 tiles × 256²: 4.2 M
        XCTAssertFalse(WinogradConvolution.applies(to: g(n: 8, hw: 7)))           // 2.1 M
        XCTAssertTrue(WinogradConvolution.applies(to: g(n: 4, c: 64, hw: 56)))    // 784 tiles × 64²: 3.2 M
        XCTAssertFalse(WinogradConvolution.applies(to: g(n: 1, c: 64, hw: 56)))   // 0.8 M (batch 1 ran slower)
        XCTAssertFalse(WinogradConvolution.applies(to: g(n: 1, c: 1024, hw: 7)))  // 4 tiles
        XCTAssertFalse(WinogradConvolution.applies(to: g(n: 16, hw: 14, s: 2)))
        XCTAssertFalse(WinogradConvolution.applies(to: g(n: 16, hw: 14, groups: 256)))
        XCTAssertFalse(WinogradConvolution.applies(to: g(n: 16, c: 8, hw: 56)))
    }
}
