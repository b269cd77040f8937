import WconvGraph
import WconvTensor
import XCTest
@testable import WconvRuntime

/// Training plans on oneDNN (DNNLTrainConv2d forward + backward-data + backward-weights, NHWC
/// activations between layers with NHWC batch norm, pooling and squeeze-excite backward) against
/// the im2col + BLAS / NCHW path of the same session type (itself checked against torch fixtures
/// and finite differences), and oneDNN's gradients against finite differences directly.
final class DNNLTrainingTests: XCTestCase {
    /// Small graphs: their convs run on oneDNN although a plan would keep them on im2col.
    private var minMACs = 0
    override func setUp() { DNNL.disabledForTesting = false; minMACs = DNNLTrainConv2d.minMACs; DNNLTrainConv2d.minMACs = 0 }
    override func tearDown() { DNNL.disabledForTesting = false; DNNLTrainConv2d.minMACs = minMACs }

    struct Step {
        /// Output, then every trainable parameter's gradient and every BN running statistic, by name.
        var values: [String: [Float]] = [:]
        var convolutionsOnDNNL = 0
        /// Convolutions whose forward and backward run on oneDNN's Winograd kernels.
        var winograd = 0
        var nhwcValues = 0
        var backwardNodes = 0
    }

    /// One training step (forward in train mode, backward of a fixed random output gradient).
    func step(_ g: ModelGraph, _ inputs: [String: Tensor], trainable: Set<String>, bnMode: [String: BatchNormMode] = [:],
              dnnl: Bool, activations: [String] = []) throws -> Step {
        DNNL.disabledForTesting = !dnnl
        defer { DNNL.disabledForTesting = false }
        let s = try TrainingSession(graph: g, trainable: trainable, bnMode: bnMode)
        let y = try s.forward(inputs, training: true)[g.outputs[0].name]!
        var rng = TestRNG(5)
        let grads = try s.backward(outputGradients: [g.outputs[0].name: rng.tensor(y.shape)])
        var r = Step()
        r.values["y"] = y.floats()
        for (name, t) in grads { r.values["grad " + name] = t.floats() }
        for name in g.buffers { r.values[name] = Array(s.parameterBuffer(named: name)!) }
        for name in activations { r.values["activation " + name] = s.activation(named: name)!.floats() }
        let convs = s.executor.steps.compactMap { $0.kernel as? DNNLTrainConv2d }
        r.convolutionsOnDNNL = convs.count
        r.winograd = convs.filter {
            $0.forwardKernel.conv.implementation.contains("wino") && $0.backwardConv.implementation.components(separatedBy: "wino").count == 3
        }.count
        r.nhwcValues = s.executor.nhwcValues.count
        r.backwardNodes = s.lastBackwardNodeCount
        return r
    }

    /// The step with and without oneDNN; every value must agree.
    @discardableResult
    func compare(_ g: ModelGraph, _ inputs: [String: Tensor], trainable: Set<String>? = nil, bnMode: [String: BatchNormMode] = [:],
                 activations: [String] = [], rtol: Float = 2e-3, atol: Float = 2e-4,
                 file: StaticString = #filePath, line: UInt = #line) throws -> Step {
        try XCTSkipUnless(DNNL.isEnabled, "oneDNN is off (WCONV_DNNL=0) or has no CPU engine")
        let names = trainable ?? Set(g.parameters.keys).subtracting(g.buffers)
        let on = try step(g, inputs, trainable: names, bnMode: bnMode, dnnl: true, activations: activations)
        let off = try step(g, inputs, trainable: names, bnMode: bnMode, dnnl: false, activations: activations)
        XCTAssertEqual(off.convolutionsOnDNNL, 0, file: file, line: line)
        XCTAssertEqual(Set(on.values.keys), Set(off.values.keys), file: file, line: line)
        XCTAssertEqual(on.backwardNodes, off.backwardNodes, "frozen parts must stay free", file: file, line: line)
        for (name, ref) in off.values.sorted(by: { $0.key < $1.key }) {
            // Gradients are compared relative to their own scale (sums of many products).
            let scale = ref.map { abs($0) }.max() ?? 1
            assertClose(on.values[name] ?? [], ref, rtol: rtol, atol: max(atol, scale * 1e-4), name, file: file, line: line)
        }
        return on
    }

    /// Turns the graph input into a trainable parameter, so the first conv's input gradient is checked too.
    func inputAsParameter(_ g: ModelGraph, _ x: Tensor) -> ModelGraph {
        var g = g
        g.parameters["x"] = x
        g.inputs = []
        return g
    }

    /// Every geometry, as the middle of x → conv → BN → ReLU → 1×1 conv: the conv reads NCHW (a
    /// parameter) and writes NHWC, the 1×1 conv reads NHWC and writes NCHW (the graph output).
    func testConvGeometriesMatchIm2col() throws {
        struct Case { var cin = 6, cout = 8, k = 3, stride = [1, 1], pads = [1, 1, 1, 1], dil = [1, 1], groups = 1, bias = false }
        let cases: [(String, Case)] = [
            ("plain padded", Case()),
            ("strided, bias", Case(stride: [2, 2], bias: true)),
            ("asymmetric pads, rectangular stride", Case(k: 3, stride: [2, 1], pads: [0, 1, 2, 1])),
            ("dilated", Case(k: 3, pads: [2, 2, 2, 2], dil: [2, 2])),
            ("grouped", Case(cin: 6, cout: 9, groups: 3, bias: true)),
            ("depthwise", Case(cin: 8, cout: 8, groups: 8)),
            ("depthwise ×2 multiplier, strided, dilated", Case(cin: 4, cout: 8, k: 5, stride: [2, 2], pads: [4, 4, 4, 4], dil: [2, 2], groups: 4)),
            ("pointwise", Case(k: 1, pads: [0, 0, 0, 0], bias: true)),
            ("pointwise 8 → 16", Case(cin: 8, cout: 16, k: 1, pads: [0, 0, 0, 0])),
            ("pointwise strided (ResNet downsample)", Case(cin: 8, cout: 16, k: 1, stride: [2, 2], pads: [0, 0, 0, 0])),
        ]
        for (name, cs) in cases {
            var rng = TestRNG(21)
            var b = NetBuilder(inputShape: [nil, cs.cin, nil, nil])
            b.param("c.weight", [cs.cout, cs.cin / cs.groups, cs.k, cs.k], scale: 0.3)
            if cs.bias { b.param("c.bias", [cs.cout], scale: 0.1) }
            var h = b.node(.conv2d, ["x", "c.weight", cs.bias ? "c.bias" : ""], "c",
                           attrs: ["strides": .ints(cs.stride), "pads": .ints(cs.pads), "dilations": .ints(cs.dil), "group": .int(cs.groups)])
            h = b.bn(h, "bn", c: cs.cout)
            h = b.node(.relu, [h], "relu")
            h = b.conv(h, "head", cin: cs.cout, cout: 4, k: 1, bias: true)
            let g = inputAsParameter(b.finish(h), rng.tensor([7, cs.cin, 16, 16]))
            let on = try compare(g, [:])
            XCTAssertEqual(on.convolutionsOnDNNL, 2, name)
            // conv → BN+ReLU (TrainingFusion) → conv: two NHWC values between the convs.
            XCTAssertGreaterThanOrEqual(on.nhwcValues, 2, name)
        }
    }

    /// 3×3 stride-1 convs of ≥ 16 channels train on oneDNN's Winograd kernels (AVX-512): forward,
    /// backward data and weights on its blocked layout, x and dy staged in, dx staged out (added
    /// to the block input's gradient where the residual also writes it).
    func testWinogradResNetStepMatches() throws {
        try XCTSkipUnless(DNNL.isEnabled && DNNL.hasWinograd, "oneDNN has no AVX-512 Winograd kernels here")
        var rng = TestRNG(23)
        let g = inputAsParameter(NetBuilder.resnet(blocks: [2, 1, 1, 1], width: 16, classes: 5, bottleneck: false), rng.tensor([3, 3, 64, 48]))
        let on = try compare(g, [:])
        XCTAssertEqual(on.convolutionsOnDNNL, 14)
        // Layer1's four 3×3 convs (16×12 maps, 3 images: 36 tiles of 4×4); later stages have
        // under 16 tiles per call and stay direct (DNNLConvolution.mayUseWinograd).
        XCTAssertEqual(on.winograd, 4)
    }

    /// wconv's Winograd (CPUs without AVX-512; forced here) in a training step: forward, input
    /// gradient and weight gradient, weights transformed every call; every gradient must agree.
    func testWconvWinogradInTrainingStepMatches() throws {
        let minMACs = WinogradConvolution.minMACsPerProduct
        DNNLConvolution.preferOwnWinograd = true
        WinogradConvolution.minMACsPerProduct = 16_384
        defer { DNNLConvolution.preferOwnWinograd = false; WinogradConvolution.minMACsPerProduct = minMACs }
        var rng = TestRNG(29)
        let g = inputAsParameter(NetBuilder.resnet(blocks: [2, 1, 1, 1], width: 16, classes: 5, bottleneck: false), rng.tensor([4, 3, 64, 60]))
        DNNL.disabledForTesting = false
        let s = try TrainingSession(graph: g, trainable: Set(g.parameters.keys).subtracting(g.buffers))
        _ = try s.forward([:], training: true)
        let own = s.executor.steps.compactMap { $0.kernel as? DNNLTrainConv2d }.filter { $0.forwardKernel.conv.implementation == WinogradConvolution.implementation }
        // Layer1's four 3×3 convs and layer2's stride-1 one (as in DNNLConvTests.testWconvWinogradInPlansMatches).
        XCTAssertEqual(own.count, 5)
        // Their input gradients (a Winograd convolution of dy) and weight gradients (no bias) too.
        let both = "\(WinogradConvolution.implementation), \(WinogradConvolution.implementation)"
        XCTAssertEqual(own.filter { $0.backwardConv.implementation == both }.count, 5)
        _ = try compare(g, [:])
    }

    /// oneDNN 2.6's jit_1x1 backward kernels corrupted the heap on strided 1×1 convs at odd batches
    /// (ResNet downsample convs at batch 9 crashed `wconv finetune`): they are passed over there,
    /// and kept for unit-stride 1×1 convs.
    func testStridedPointwiseBackwardAvoidsJit1x1() throws {
        try XCTSkipUnless(DNNL.isEnabled, "oneDNN is off")
        let strided = ConvGeometry(n: 9, c: 8, h: 16, w: 16, o: 16, kh: 1, kw: 1, sh: 2, sw: 2, pt: 0, pl: 0, pb: 0, pr: 0, dh: 1, dw: 1, groups: 1)
        let back = try DNNLConvBackward(strided, hasBias: false, nchwInput: false, nchwOutput: false)
        XCTAssertFalse(back.implementation.contains("jit_1x1"), back.implementation)
        var unit = strided
        unit.sh = 1; unit.sw = 1
        let plain = try DNNLConvBackward(unit, hasBias: false, nchwInput: false, nchwOutput: false)
        // The avoidance is targeted: where oneDNN has its AVX-512 1×1 kernels, unit stride keeps them.
        if DNNL.summary.contains("ISA avx512_core") {
            XCTAssertTrue(plain.implementation.contains("jit_1x1"), plain.implementation)
        }
    }

    /// Residual blocks: the block input feeds a conv and the add (or a downsample conv), so its
    /// gradient is written once and added to once (the backward primitives' staged sum).
    func testResNetStepMatches() throws {
        var rng = TestRNG(22)
        let g = NetBuilder.resnet(blocks: [1, 1, 1, 1], width: 8, classes: 5, bottleneck: false)
        // 64×64 so the last stage's batch norm averages 16 values, not 3 (at 32×32 its batch statistics
        // are so ill-conditioned that kernels' summation orders alone move single gradients by 1–3 %).
        // Batch 7: oneDNN 2.6.3's jit_1x1 backward corrupted the heap for the strided 1×1 downsamples with
        // an odd batch (DNNLConvBackward passes over it for them).
        let on = try compare(g, ["x": rng.tensor([7, 3, 64, 64])])
        XCTAssertEqual(on.convolutionsOnDNNL, 12)
        XCTAssertGreaterThan(on.nhwcValues, 20)
    }

    func testBottleneckResNetWithInputGradientMatches() throws {
        var rng = TestRNG(23)
        let g = inputAsParameter(NetBuilder.resnet(blocks: [1, 1, 1, 1], width: 8, classes: 7), rng.tensor([2, 3, 40, 40]))
        try compare(g, [:])
    }

    /// Depthwise convolutions, SiLU, squeeze-excite (global pool reading NHWC, channel scale).
    func testEfficientNetStepMatches() throws {
        var rng = TestRNG(24)
        let g = NetBuilder.efficientnetB0(classes: 6, div: 8)
        let on = try compare(g, ["x": rng.tensor([2, 3, 48, 48])])
        XCTAssertGreaterThan(on.convolutionsOnDNNL, 20)
        XCTAssertGreaterThan(on.nhwcValues, 30)
    }

    /// Feature extraction: only the head trains, BN layers use running statistics; no backward
    /// runs below the head; activations read back NCHW from NHWC buffers.
    func testFrozenBackboneAndActivationsMatch() throws {
        var rng = TestRNG(25)
        let g = NetBuilder.resnet(blocks: [1, 1, 1, 1], width: 8, classes: 5, bottleneck: false)
        let head = Set(g.parameters.keys.filter { $0.hasPrefix("fc.") })
        var frozen: [String: BatchNormMode] = [:]
        for n in g.nodes where n.op == .batchNorm { frozen[n.name] = .frozen }
        let mids = g.nodes.filter { $0.op == .relu }.map { $0.outputs[0] }.prefix(3)
        let on = try compare(g, ["x": rng.tensor([2, 3, 32, 32])], trainable: head, bnMode: frozen, activations: Array(mids))
        XCTAssertLessThanOrEqual(on.backwardNodes, 3)
        // A trainable last block with BN in eval mode: gradients through running statistics.
        let last = Set(g.parameters.keys.filter { ($0.hasPrefix("layer4.") || $0.hasPrefix("fc.")) && !g.buffers.contains($0) })
        try compare(g, ["x": rng.tensor([2, 3, 32, 32])], trainable: last, bnMode: frozen)
    }

    /// oneDNN's gradients against central finite differences: conv (strided, padded, dilated,
    /// depthwise, bias) → BN → ReLU → max pool → squeeze-excite → global pool, NHWC inside.
    func testFiniteDifferencesThroughNHWCChain() throws {
        try XCTSkipUnless(DNNL.isEnabled, "oneDNN is off (WCONV_DNNL=0) or has no CPU engine")
        var rng = TestRNG(26)
        var b = NetBuilder(inputShape: [nil, 3, nil, nil])
        var h = b.conv("x", "c1", cin: 3, cout: 8, k: 3, stride: 2, bias: true)
        h = b.bn(h, "bn1", c: 8)
        h = b.node(.relu, [h], "r1")
        h = b.node(.maxPool2d, [h], "mp", attrs: ["kernel": .ints([3, 3]), "strides": .ints([2, 2]), "pads": .ints([1, 1, 1, 1])])
        b.param("dw.weight", [8, 1, 3, 3], scale: 0.5)
        h = b.node(.conv2d, [h, "dw.weight", ""], "dw", attrs: ["pads": .ints([2, 2, 2, 2]), "dilations": .ints([2, 2]), "group": .int(8)])
        h = b.bn(h, "bn2", c: 8)
        h = b.node(.silu, [h], "act")
        h = b.squeezeExcite(h, "se", c: 8, squeezed: 4)
        h = b.conv(h, "proj", cin: 8, cout: 4, k: 1)
        h = b.node(.globalAvgPool, [h], "y", attrs: ["keepdims": .int(1)])
        var g = b.finish(h)
        g.outputs = [ValueInfo(name: "y", shape: [])]
        g.nodes[g.nodes.count - 1].outputs = ["y"]
        let trainable = Array(Set(g.parameters.keys).subtracting(g.buffers))
        let s = try TrainingSession(graph: g, trainable: Set(trainable))
        _ = try s.forward(["x": rng.tensor([2, 3, 19, 17])], training: true)
        XCTAssertEqual(s.executor.steps.filter { $0.kernel is DNNLTrainConv2d }.count, 5)
        XCTAssertGreaterThan(s.executor.nhwcValues.count, 7)
        try checkGradients(g, inputs: ["x": rng.tensor([2, 3, 19, 17])], trainable: trainable, eps: 1e-2, tol: 3e-2, samples: 8)
    }
}
