import Foundation

/// conv2d forward on a oneDNN primitive created when the step is planned. Input and output are NCHW
/// or NHWC as an inference plan's layout pass decided (DNNLLayoutPlan; training plans keep NCHW);
/// bias and the fused activation are post-ops. Weights that are inference parameters are reordered
/// once, a training plan's every call. Backward is the im2col + GEMM kernel's.
struct DNNLConv2d: StepKernel {
    let geometry: ConvGeometry
    let conv: DNNLConvolution
    /// Output 1 holds the channel means of output 0 (a global average pool folded into the conv's
    /// SiLU pass, DNNLPoolFusion).
    var writesMeans = false

    /// A standalone conv (NCHW on both sides) pays two reorders: below this many multiply-adds the
    /// im2col path's copies and GEMM set-up cost more than them (docs/runtime.md, `wconv bench conv`);
    /// above it im2col + GEMM is kept — except for a 3×3 stride-1 conv where oneDNN has Winograd
    /// (AVX-512), which does 2.25× fewer multiplies than either: PaddleOCR's detector at batch 1
    /// (three such convs of its head, 10.4 ms on im2col, 2.7 ms in Winograd with the reorders) 28 →
    /// 19–23 ms. Other large standalone convs stay: magika's grouped 1-D conv ran 16 → 23 ms on oneDNN.
    static let standaloneMaxMACs = 20_000_000

    /// Whether a standalone conv (NCHW on both sides) of `macs` multiply-adds stays on im2col + GEMM.
    static func standaloneStaysOnIm2col(_ g: ConvGeometry, macs: Int) -> Bool {
        macs > standaloneMaxMACs && !(DNNL.hasWinograd && DNNLConvolution.mayUseWinograd(g))
    }

    /// The oneDNN kernel for a conv2d, or nil when the im2col path should run: oneDNN off, or a
    /// large conv with NCHW on both sides (always the case in training plans).
    static func select(_ r: KernelRequest, _ g: ConvGeometry) throws -> DNNLConv2d? {
        guard DNNL.isEnabled, r.exec.node.op == .conv2d else { return nil }
        let nhwcIn = r.layout.nhwcInput, nhwcOut = r.layout.nhwcOutput
        // A bf16 plan runs every conv on oneDNN (im2col + GEMM has no bf16 path).
        if !nhwcIn && !nhwcOut && !r.layout.bf16 && standaloneStaysOnIm2col(g, macs: g.n * g.o * g.howo * g.kcol) { return nil }
        let hasBias = r.inputShapes.count > 2 && r.inputShapes[2] != nil
        // Input 3: a residual added before the activation (DNNLResidualFusion), in the output's layout.
        let residual = r.inputShapes.count > 3 && r.inputShapes[3] != nil
        if residual && (!nhwcOut || r.training) { return nil }
        let conv = try DNNLConvolution(g, activation: r.exec.fused, hasBias: hasBias, layout: .nhwc,
                                       nchwInput: !nhwcIn, nchwOutput: !nhwcOut, constantWeights: !r.training && r.layout.constantWeights,
                                       residual: residual, bf16: r.layout.bf16, bf16Input: r.layout.bf16Input, bf16Output: r.layout.bf16Output)
        return DNNLConv2d(geometry: g, conv: conv)
    }

    func extents(inputs: [Int], outputs: [Int]) -> StepExtents {
        var e = Conv2d(geometry: geometry).extents(inputs: inputs, outputs: outputs)
        if conv.addsResidual { e.read(3, geometry.n * geometry.o * geometry.howo) }
        if writesMeans { e.write(1, geometry.n * geometry.o) }
        return e
    }

    func forward(_ c: StepContext) throws {
        let bytes = conv.srcStagingBytes + 64 + conv.dstStagingBytes
        let scratch = bytes > 64 ? UnsafeMutableRawPointer(c.executor.workspace.get(bytes / 4 + 16)) : nil
        conv.forward(c.input(0)!, weight: c.input(1)!, bias: c.input(2).map { UnsafePointer($0) }, c.output(), scratch: scratch,
                     residual: c.input(3).map { UnsafePointer($0) }, means: writesMeans ? c.output(1) : nil)
    }

    func backward(_ c: BackwardContext) throws { try Conv2d(geometry: geometry).backward(c) }

    var profileDetail: String? { conv.implementation }
}

/// What the layout plan decided for one step (KernelRequest.layout).
struct StepLayout {
    /// Input 0 arrives NHWC / output 0 is to be written NHWC (else NCHW).
    var nhwcInput = false, nhwcOutput = false
    /// The weight (input 1) is a parameter or folded constant: its layout conversion can be cached.
    var constantWeights = false
    /// A bf16 plan (oneDNN convolutions compute in bfloat16); input 0 / output 0 hold bfloat16
    /// (DNNLPrecisionPlan: NHWC values only).
    var bf16 = false, bf16Input = false, bf16Output = false
}
