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
    func both(_ g: ModelGraph, _ x: Tensor) throws -> (dnnl: [Float], reference: [Float], summary: (convolutions: Int, nhwcValues: Int)) {
        try XCTSkipUnless(DNNL.isEnabled, "oneDNN is off (WCONV_DNNL=0) or has no CPU engine")
        let on = try InferenceSession(graph: g)
        let y = try on.run(["x": x])[g.outputs[0].name]!.floats()
        let summary = on.executor.dnnlSummary
        DNNL.disabledForTesting = true
        let off = try InferenceSession(graph: g)
        let ref = try off.run(["x": x])[g.outputs[0].name]!.floats()
        XCTAssertEqual(off.executor.dnnlSummary.convolutions, 0)
        return (y, ref, summary)
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

    func testBottleneckResNetMatches() throws {
        var rng = TestRNG(12)
        let g = NetBuilder.resnet(blocks: [2, 1, 1, 1], width: 8, classes: 7)
        let r = try both(g, rng.tensor([2, 3, 40, 40]))
        assertClose(r.dnnl, r.reference, rtol: 1e-3, atol: 1e-4)
        XCTAssertGreaterThan(r.summary.nhwcValues, 5)
    }

    func testEfficientNetDepthwiseAndSqueezeExciteMatch() throws {
        var rng = TestRNG(13)
        let g = NetBuilder.efficientnetB0(classes: 6, div: 8)
        let r = try both(g, rng.tensor([2, 3, 48, 48]))
        assertClose(r.dnnl, r.reference, rtol: 1e-3, atol: 1e-4)
        XCTAssertGreaterThan(r.summary.convolutions, 20)
        // Expand and depthwise outputs stay NHWC through the squeeze-excite (pool and scale read NHWC).
        XCTAssertGreaterThan(r.summary.nhwcValues, 10)
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
}
