import WconvGraph
import WconvTensor
import XCTest
@testable import WconvRuntime

/// oneDNN convolutions in inference plans against the im2col + BLAS path (itself checked against the
/// naive convolution in ConvKernelTests, which also runs through oneDNN for its small standalone convs).
final class DNNLConvTests: XCTestCase {
    override func setUp() { DNNL.disabledForTesting = false }
    override func tearDown() { DNNL.disabledForTesting = false }

    /// Runs `g` with and without oneDNN; returns both outputs and the oneDNN plan's summary.
    func both(_ g: ModelGraph, _ x: Tensor) throws -> (dnnl: [Float], reference: [Float], summary: (convolutions: Int, nhwcValues: Int),
                                                       residual: (fused: Int, inPlace: Int)) {
        try XCTSkipUnless(DNNL.isEnabled, "oneDNN is off (WCONV_DNNL=0) or has no CPU engine")
        let on = try InferenceSession(graph: g)
        let y = try on.run(["x": x])[g.outputs[0].name]!.floats()
        let summary = on.executor.dnnlSummary, residual = on.executor.dnnlResidualSummary
        DNNL.disabledForTesting = true
        let off = try InferenceSession(graph: g)
        let ref = try off.run(["x": x])[g.outputs[0].name]!.floats()
        XCTAssertEqual(off.executor.dnnlSummary.convolutions, 0)
        return (y, ref, summary, residual)
    }

    /// Plans `g` again with oneDNN on (after `both`), checks it gives `expected` exactly, and returns
    /// its oneDNN convolutions.
    func convolutions(_ g: ModelGraph, _ x: Tensor, giving expected: [Float]) throws -> [DNNLConv2d] {
        DNNL.disabledForTesting = false
        let on = try InferenceSession(graph: g)
        XCTAssertEqual(try on.run(["x": x])[g.outputs[0].name]!.floats(), expected)
        return on.executor.steps.compactMap { $0.kernel as? DNNLConv2d }
    }

    func testFewLabelResNetKeepsNHWCBetweenConvolutions() throws {
        var rng = TestRNG(11)
        let g = NetBuilder.resnet(blocks: [1, 1, 1, 1], width: 8, classes: 5, bottleneck: false)
        let r = try both(g, rng.tensor([3, 3, 32, 32]))
        assertClose(r.dnnl, r.reference, rtol: 1e-3, atol: 1e-4)
        // 12 convolutions (stem, 2 per block, 3 downsamples): all small, so all on oneDNN; inside each
        // block the first conv's output and the residual sum stay NHWC.
        XCTAssertEqual(r.summary.convolutions, 12)
        XCTAssertGreaterThan(r.summary.nhwcValues, 3)
    }

    /// A large standalone conv (NCHW on both sides) stays on im2col + GEMM, unless it is 3×3 stride 1
    /// where oneDNN has Winograd (AVX-512): fewer multiplies than either path pays for the reorders.
    func testLargeStandaloneConvsTakeOneDNNOnlyForWinograd() {
        func g(k: Int, s: Int = 1, groups: Int = 1) -> ConvGeometry {
            ConvGeometry(n: 1, c: 96, h: 80, w: 80, o: 96, kh: k, kw: k, sh: s, sw: s, pt: k / 2, pl: k / 2, pb: k / 2, pr: k / 2,
                         dh: 1, dw: 1, groups: groups)
        }
        let big = DNNLConv2d.standaloneMaxMACs + 1
        XCTAssertEqual(DNNLConv2d.standaloneStaysOnIm2col(g(k: 3), macs: big), !DNNL.hasWinograd)
        XCTAssertTrue(DNNLConv2d.standaloneStaysOnIm2col(g(k: 1), macs: big))
        XCTAssertTrue(DNNLConv2d.standaloneStaysOnIm2col(g(k: 3, s: 2), macs: big))
        XCTAssertTrue(DNNLConv2d.standaloneStaysOnIm2col(g(k: 3, groups: 2), macs: big))
        XCTAssertFalse(DNNLConv2d.standaloneStaysOnIm2col(g(k: 1), macs: DNNLConv2d.standaloneMaxMACs))
    }

    /// A global average pool reads NHWC whether it keeps its 1×1 dims or not ([N, C, 1, 1] and [N, C]
    /// are the same memory either way); with keepdims 0 it used to count as an NCHW reader, which sent
    /// the last block of wconv's synthetic nets (and Keras' GlobalAveragePooling2D) back to NCHW.
    func testGlobalPoolReadsNHWCWithOrWithoutItsUnitDims() {
        XCTAssertEqual(DNNLLayoutPlan.kind(.globalAvgPool, inputShapes: [[2, 8, 4, 4]], outputShape: [2, 8]), .nhwcReader)
        XCTAssertEqual(DNNLLayoutPlan.kind(.globalAvgPool, inputShapes: [[2, 8, 4, 4]], outputShape: [2, 8, 1, 1]), .nhwcReader)
        XCTAssertEqual(DNNLLayoutPlan.kind(.adaptiveAvgPool2d, inputShapes: [[2, 8, 4, 4]], outputShape: [2, 8, 1, 1]), .nhwcReader)
        XCTAssertEqual(DNNLLayoutPlan.kind(.adaptiveAvgPool2d, inputShapes: [[2, 8, 4, 4]], outputShape: [2, 8, 2, 2]), .other)
        XCTAssertEqual(DNNLLayoutPlan.kind(.globalAvgPool, inputShapes: [[2, 8, 16]], outputShape: [2, 8]), .other)
    }

    func testBottleneckResNetMatches() throws {
        var rng = TestRNG(12)
        let g = NetBuilder.resnet(blocks: [2, 1, 1, 1], width: 8, classes: 7)
        let r = try both(g, rng.tensor([2, 3, 40, 40]))
        assertClose(r.dnnl, r.reference, rtol: 1e-3, atol: 1e-4)
        XCTAssertGreaterThan(r.summary.nhwcValues, 5)
        // Every block's residual add (+ ReLU) runs inside its last conv (the downsample conv in the
        // first block of a stage), in place.
        XCTAssertEqual(r.residual.fused, 5)
        XCTAssertEqual(r.residual.inPlace, 5)
    }

    /// Residual adds as oneDNN sum post-ops vs separate adds (oneDNN off): residuals read later, dead
    /// (written in place), the conv's own input; either operand order; with and without an activation.
    func testResidualAddInsideTheConvMatchesTheSeparateAdd() throws {
        var b = NetBuilder(inputShape: [nil, 3, nil, nil]), rng = TestRNG(15)
        var c = b.conv("x", "c0", cin: 3, cout: 8, k: 3)
        let h = b.node(.relu, [c], "r0")
        c = b.conv(h, "c1", cin: 8, cout: 8, k: 3)
        let a = b.node(.relu, [c], "r1")
        c = b.conv(a, "c2", cin: 8, cout: 8, k: 1)
        let s = b.node(.relu, [b.node(.add, [c, h], "add1")], "r2")  // h is read again below: copied
        let d = b.conv(h, "c3", cin: 8, cout: 8, k: 3, bias: true)
        c = b.conv(s, "c4", cin: 8, cout: 8, k: 3)
        let u = b.node(.add, [s, c], "add2")  // the residual is the conv's own input: copied
        c = b.conv(u, "c5", cin: 8, cout: 8, k: 1)
        let v = b.node(.add, [c, d], "add3")  // d's last use: the conv writes into its buffer
        c = b.conv(v, "c6", cin: 8, cout: 8, k: 1)
        let w = b.node(.silu, [b.node(.add, [v, c], "add4")], "act4")
        c = b.conv(w, "c7", cin: 8, cout: 8, k: 1)
        let out = b.node(.globalAvgPool, [b.node(.add, [c, w], "add5")], "gap", attrs: ["keepdims": .int(1)])
        let g = b.finish(out)
        let r = try both(g, rng.tensor([2, 3, 13, 11]))
        assertClose(r.dnnl, r.reference, rtol: 1e-3, atol: 1e-4)
        XCTAssertEqual(r.residual.fused, 5)
        XCTAssertEqual(r.residual.inPlace, 1)
    }

    /// 3×3 stride-1 convolutions on oneDNN's Winograd kernels (AVX-512): a basic-block ResNet, where
    /// the second conv of an identity block also takes the residual sum (+ ReLU) through the blocked
    /// staging, against im2col + BLAS and against the same plan with every conv direct.
    func testWinogradBasicBlocksMatch() throws {
        try XCTSkipUnless(DNNL.isEnabled && DNNL.hasWinograd, "oneDNN has no AVX-512 Winograd kernels here")
        var rng = TestRNG(17)
        let g = NetBuilder.resnet(blocks: [2, 1, 1, 1], width: 16, classes: 6, bottleneck: false)
        let x = rng.tensor([3, 3, 48, 40])
        let r = try both(g, x)
        let convs = try convolutions(g, x, giving: r.dnnl)
        let wino = convs.filter { $0.conv.implementation.contains("wino") }
        // Stride-1 3×3 convs: 4 in layer1 (2 blocks, 12×10 maps: 27 tiles of 4×4 over the batch),
        // 1 in each later stage (6×5 and smaller: under 16 tiles, direct). The residual goes into
        // the block's last conv: conv2 in layer1's blocks, the 1×1 downsample in the others.
        XCTAssertEqual(wino.count, 4)
        XCTAssertEqual(wino.filter { $0.conv.addsResidual }.count, 2)
        XCTAssertEqual(convs.filter { DNNLConvolution.mayUseWinograd($0.geometry) }.count, 4)
        XCTAssertEqual(r.residual.fused, 5)
        assertClose(r.dnnl, r.reference, rtol: 1e-3, atol: 1e-4)
        DNNLConvolution.winogradEnabled = false
        defer { DNNLConvolution.winogradEnabled = true }
        let direct = try InferenceSession(graph: g)
        let y = try direct.run(["x": x])[g.outputs[0].name]!.floats()
        XCTAssertFalse(direct.executor.steps.contains { ($0.kernel as? DNNLConv2d)?.conv.implementation.contains("wino") == true })
        assertClose(r.dnnl, y, rtol: 1e-4, atol: 1e-5)
    }

    /// wconv's Winograd (the path of CPUs without AVX-512, forced here on any CPU) in an inference
    /// plan: NHWC chain, ReLU in its output transform, the identity blocks' residual summed in place.
    func testWconvWinogradInPlansMatches() throws {
        try XCTSkipUnless(DNNL.isEnabled, "oneDNN is off (WCONV_DNNL=0) or has no CPU engine")
        let minMACs = WinogradConvolution.minMACsPerProduct
        DNNLConvolution.preferOwnWinograd = true
        WinogradConvolution.minMACsPerProduct = 16_384
        defer { DNNLConvolution.preferOwnWinograd = false; WinogradConvolution.minMACsPerProduct = minMACs }
        var rng = TestRNG(19)
        let g = NetBuilder.resnet(blocks: [2, 1, 1, 1], width: 16, classes: 6, bottleneck: false)
        let x = rng.tensor([4, 3, 64, 60])
        let r = try both(g, x)
        let own = try convolutions(g, x, giving: r.dnnl).filter { $0.conv.implementation == WinogradConvolution.implementation }
        // Layer1's four 3×3 convs (16×15 maps, 4 images: 64 tiles × 16 × 16 channels, the lowered
        // minMACsPerProduct) and layer2's stride-1 one (8×8: 16 tiles × 32 × 32); later stages have
        // fewer than 16 tiles. Two of them (layer1's) add their block's residual.
        XCTAssertEqual(own.count, 5)
        XCTAssertEqual(own.filter { $0.conv.addsResidual }.count, 2)
        assertClose(r.dnnl, r.reference, rtol: 1e-3, atol: 1e-4)
    }

    /// Which geometries may take Winograd: 3×3 stride 1 undilated ungrouped, ≥ 16 channels, and
    /// enough 4×4 output tiles per call to pay for the weights' transform.
    func testWinogradShapeRule() {
        func g(n: Int, c: Int = 512, hw: Int, k: Int = 3, s: Int = 1, d: Int = 1, groups: Int = 1) -> ConvGeometry {
            ConvGeometry(n: n, c: c, h: hw, w: hw, o: c, kh: k, kw: k, sh: s, sw: s, pt: d, pl: d, pb: d, pr: d, dh: d, dw: d, groups: groups)
        }
        XCTAssertTrue(DNNLConvolution.mayUseWinograd(g(n: 16, hw: 7)))   // 16 × 2 × 2 tiles
        XCTAssertFalse(DNNLConvolution.mayUseWinograd(g(n: 1, hw: 7)))   // 4 tiles
        XCTAssertTrue(DNNLConvolution.mayUseWinograd(g(n: 1, c: 256, hw: 14)))
        XCTAssertFalse(DNNLConvolution.mayUseWinograd(g(n: 16, hw: 14, s: 2)))
        XCTAssertFalse(DNNLConvolution.mayUseWinograd(g(n: 16, hw: 14, d: 2)))
        XCTAssertFalse(DNNLConvolution.mayUseWinograd(g(n: 16, hw: 14, k: 1)))
        XCTAssertFalse(DNNLConvolution.mayUseWinograd(g(n: 16, hw: 14, groups: 512)))
        XCTAssertFalse(DNNLConvolution.mayUseWinograd(g(n: 16, c: 8, hw: 56)))
    }

    func testEfficientNetDepthwiseAndSqueezeExciteMatch() throws {
        var rng = TestRNG(13)
        let g = NetBuilder.efficientnetB0(classes: 6, div: 8)
        // Each squeeze-excite scales the depthwise output in place (nothing else reads it after).
        try XCTSkipUnless(DNNL.isEnabled, "oneDNN is off (WCONV_DNNL=0) or has no CPU engine")
        let session = try InferenceSession(graph: g)
        _ = try session.run(["x": rng.tensor([2, 3, 48, 48])])
        let scales = session.executor.channelScaleSummary
        XCTAssertEqual(scales.steps, 16)
        XCTAssertEqual(scales.inPlace, scales.steps)
        // Where SiLU runs as wconv's own pass after the conv, that pass also computes the pool: the 16
        // squeeze-excite pools and the head's (keepdims 0, an [N, C] output read from NHWC too).
        XCTAssertEqual(session.executor.pooledConvolutions, DNNLConvolution.runsAfter(.silu, bf16Output: false) ? 17 : 0)
        // One image: the pooled pass splits its pixels between the threads.
        let one = try both(g, rng.tensor([1, 3, 48, 48]))
        assertClose(one.dnnl, one.reference, rtol: 1e-3, atol: 1e-4)
        DNNL.disabledForTesting = false
        let r = try both(g, rng.tensor([2, 3, 48, 48]))
        assertClose(r.dnnl, r.reference, rtol: 1e-3, atol: 1e-4)
        XCTAssertGreaterThan(r.summary.convolutions, 20)
        // Expand and depthwise outputs stay NHWC through the squeeze-excite (pool and scale read NHWC).
        XCTAssertGreaterThan(r.summary.nhwcValues, 10)
    }

    /// A conv + BN + SiLU read by a global pool: where SiLU runs as wconv's own pass, that pass
    /// computes the pool too (by images, or one image's pixels split between the threads).
    func testGlobalPoolFoldedIntoConvSiLUPass() throws {
        var rng = TestRNG(15)
        var b = NetBuilder(inputShape: [nil, 3, nil, nil])
        let h = b.node(.silu, [b.bn(b.conv("x", "c1", cin: 3, cout: 24, k: 3), "bn1", c: 24)], "act")
        let g = b.finish(b.node(.globalAvgPool, [h], "gap", attrs: ["keepdims": .int(1)]))
        for n in [1, 3] {
            DNNL.disabledForTesting = false
            let session = try InferenceSession(graph: g)
            _ = try session.run(["x": rng.tensor([n, 3, 9, 11])])
            XCTAssertEqual(session.executor.pooledConvolutions, DNNLConvolution.runsAfter(.silu, bf16Output: false) ? 1 : 0)
            let r = try both(g, rng.tensor([n, 3, 9, 11]))
            XCTAssertEqual(r.dnnl.count, n * 24)
            assertClose(r.dnnl, r.reference, rtol: 1e-5, atol: 1e-6)
        }
    }

    /// Scale first (torchvision writes `scale * input`), a max pool between convolutions, and a
    /// global pool reading NHWC.
    func testNHWCPoolingAndScaleInEitherOperandOrder() throws {
        var rng = TestRNG(14)
        var b = NetBuilder(inputShape: [nil, 3, nil, nil])
        var h = b.conv("x", "c1", cin: 3, cout: 16, k: 3)
        h = b.node(.relu, [h], "r1")
        h = b.node(.maxPool2d, [h], "mp", attrs: ["kernel": .ints([3, 3]), "strides": .ints([2, 2]), "pads": .ints([1, 1, 1, 1])])
        h = b.conv(h, "c2", cin: 16, cout: 16, k: 3)
        var se = b.node(.globalAvgPool, [h], "gap", attrs: ["keepdims": .int(1)])
        se = b.conv(se, "fc", cin: 16, cout: 16, k: 1, bias: true)
        se = b.node(.sigmoid, [se], "sig")
        h = b.node(.mul, [se, h], "scale")
        h = b.conv(h, "c3", cin: 16, cout: 8, k: 1)
        h = b.node(.globalAvgPool, [h], "gap2", attrs: ["keepdims": .int(1)])
        let g = b.finish(h)
        let r = try both(g, rng.tensor([2, 3, 17, 15]))
        assertClose(r.dnnl, r.reference, rtol: 1e-3, atol: 1e-5)
        // c1 → max pool → c2 → scale → c3 → pool: c1, c2, c3 write NHWC.
        XCTAssertEqual(r.summary.nhwcValues, 3)
    }

    /// bf16 linear layers (oneDNN matmul, f32 accumulation) in a bf16 inference plan: an MLP with a
    /// fused GELU and a bias-free layer, against the f32 plan (bf16's ~3 significant digits); every
    /// linear step runs on oneDNN in bf16, and the f32 plan keeps them on OpenBLAS.
    func testBF16LinearLayersMatchF32WithinTolerance() throws {
        try XCTSkipIf(Precision.unsupportedReason(.bf16) != nil, Precision.unsupportedReason(.bf16) ?? "")
        var rng = TestRNG(21)
        var b = NetBuilder(inputShape: [nil, 5, 48])
        b.param("fc1.weight", [96, 48], scale: 0.25); b.param("fc1.bias", [96], scale: 0.1)
        b.param("fc2.weight", [33, 96], scale: 0.2)
        var h = b.node(.linear, ["x", "fc1.weight", "fc1.bias"], "fc1")
        h = b.node(.gelu, [h], "act")
        let g = b.finish(b.node(.linear, [h, "fc2.weight", ""], "fc2"))
        let x = rng.tensor([3, 5, 48])
        let f32Session = try InferenceSession(graph: g)
        let f32 = try f32Session.run(["x": x])[g.outputs[0].name]!.floats()
        XCTAssertFalse(f32Session.executor.steps.contains { $0.kernel is DNNLLinearBF16 })
        let session = try InferenceSession(graph: g, precision: .bf16)
        let bf16 = try session.run(["x": x])[g.outputs[0].name]!.floats()
        XCTAssertEqual(bf16.count, 3 * 5 * 33)
        XCTAssertEqual(session.executor.steps.filter { $0.kernel is DNNLLinearBF16 }.count, 2)
        let scale = f32.map { abs($0) }.max()!, worst = zip(bf16, f32).map { abs($0 - $1) }.max()!
        XCTAssertLessThan(worst, 0.02 * scale, "max |bf16 − f32| \(worst) vs max |f32| \(scale)")
        XCTAssertGreaterThan(worst, 0, "bf16 arithmetic should differ from f32 somewhere")
        // A second run reuses the converted weights; new inputs give new outputs.
        let again = try session.run(["x": x])[g.outputs[0].name]!.floats()
        XCTAssertEqual(again, bf16)
    }

    /// bf16 convolutions (f32 accumulation) against the f32 plan: every conv computes in bf16 and the
    /// values between them are bf16; outputs agree to bf16's ~3 significant digits, accumulated over
    /// the layers (tolerance: 3 % of the largest |output|).
    func testBF16PlanMatchesF32WithinTolerance() throws {
        try XCTSkipIf(Precision.unsupportedReason(.bf16) != nil, Precision.unsupportedReason(.bf16) ?? "")
        var rng = TestRNG(16)
        // NHWC values an f32-only step also touches stay f32: a conv reads f32 NHWC (converted on the
        // way in) and writes f32 with an f32 residual.
        var b = NetBuilder(inputShape: [nil, 3, nil, nil])
        let h = b.conv("x", "c0", cin: 3, cout: 8, k: 3)
        let r = b.node(.relu, [h], "r")
        let s = b.node(.add, [b.conv(h, "c1", cin: 8, cout: 8, k: 3), r], "add")
        let mixed = b.finish(b.node(.globalAvgPool, [b.conv(s, "c2", cin: 8, cout: 8, k: 1)], "gap", attrs: ["keepdims": .int(1)]))
        for (g, x, minBF16Outputs) in [(NetBuilder.resnet(blocks: [2, 1, 1, 1], width: 8, classes: 7), rng.tensor([2, 3, 40, 40]), 10),
                                       (NetBuilder.efficientnetB0(classes: 6, div: 8), rng.tensor([2, 3, 48, 48]), 20),
                                       (mixed, rng.tensor([2, 3, 12, 10]), 1)] {
            let f32 = try InferenceSession(graph: g).run(["x": x])[g.outputs[0].name]!.floats()
            let session = try InferenceSession(graph: g, precision: .bf16)
            let bf16 = try session.run(["x": x])[g.outputs[0].name]!.floats()
            let scale = f32.map { abs($0) }.max()!
            let worst = zip(bf16, f32).map { abs($0 - $1) }.max()!
            XCTAssertLessThan(worst, 0.03 * scale, "max |bf16 − f32| \(worst) vs max |f32| \(scale)")
            XCTAssertGreaterThan(worst, 0, "bf16 arithmetic should differ from f32 somewhere")
            let summary = session.executor.dnnlBF16Summary
            XCTAssertEqual(summary.convolutions, session.executor.dnnlSummary.convolutions)
            XCTAssertGreaterThanOrEqual(summary.bf16Outputs, minBF16Outputs)
            // Same plan again (a second run reuses the converted weights).
            XCTAssertEqual(try session.run(["x": x])[g.outputs[0].name]!.floats(), bf16)
        }
    }

    /// A CPU without AVX512_BF16 / AMX (simulated) refuses bf16 with a usage error saying what to do.
    func testBF16RefusedWithoutCPUSupport() throws {
        setenv("WCONV_DNNL_SIMULATE_NO_BF16", "1", 1)
        defer { unsetenv("WCONV_DNNL_SIMULATE_NO_BF16") }
        let g = NetBuilder.resnet(blocks: [1, 1, 1, 1], width: 8, classes: 5, bottleneck: false)
        XCTAssertThrowsError(try InferenceSession(graph: g, precision: .bf16)) { e in
            let w = e as? WconvError
            XCTAssertEqual(w?.kind, .usage)
            XCTAssertTrue(w?.message.contains("drop --precision bf16") == true, "\(e)")
        }
        XCTAssertNoThrow(try InferenceSession(graph: g))
    }

    /// bf16 against f32 is measured, not assumed from CPUID: the probe times real convolutions both
    /// ways, and only a bf16 slower than f32 (AVX512_BF16 without AMX on Intel) draws the warning.
    func testBF16SpeedProbeMeasuresBothPrecisions() throws {
        try XCTSkipIf(Precision.unsupportedReason(.bf16) != nil, Precision.unsupportedReason(.bf16) ?? "")
        let m = try XCTUnwrap(BF16SpeedProbe.measurement)
        XCTAssertTrue(m.f32 > 0 && m.f32.isFinite && m.bf16 > 0 && m.bf16.isFinite, "\(m)")
        XCTAssertEqual(BF16SpeedProbe.advice(m) == nil, m.speedup >= 0.9)
        let slow = try XCTUnwrap(BF16SpeedProbe.advice(.init(f32: 8.4, bf16: 17.1)))
        XCTAssertTrue(slow.contains("0.49×") && slow.contains("17.1 ms in bf16") && slow.contains("8.4 ms in f32")
                      && slow.contains("drop --precision bf16"), slow)
        XCTAssertNil(BF16SpeedProbe.advice(.init(f32: 10, bf16: 6)))
    }
}
