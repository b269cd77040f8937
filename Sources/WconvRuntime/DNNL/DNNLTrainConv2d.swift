import Foundation

/// conv2d of a training plan on oneDNN: the forward is the inference kernel's primitive (weights
/// reordered every call, since they change), the backward oneDNN's backward-data and
/// backward-weights primitives (DNNLConvBackward). Activations are NHWC where the training layout
/// plan keeps them so (DNNLLayoutPlan), else NCHW with reorders inside the primitives' wrappers.
/// A bf16 (mixed-precision) plan computes forward, backward-data and backward-weights in bfloat16
/// with f32 accumulation: activations and gradients stay f32 in the plan's buffers and are converted
/// at the primitive; the weights are converted once per step (by the forward, whose copy the
/// backward-data primitive reads when it wants the same layout); weight and bias gradients are f32.
struct DNNLTrainConv2d: StepKernel {
    let forwardKernel: DNNLConv2d
    let backwardConv: DNNLConvBackward

    /// Forward | backward data, weights.
    var profileDetail: String? { "\(forwardKernel.conv.implementation) | \(backwardConv.implementation)" }

    /// The oneDNN kernel for a training plan's conv2d, or nil when im2col + GEMM should run: oneDNN
    /// off, an activation fused into the conv (training plans fuse none), or a large conv with NCHW
    /// on both sides (reorders around it cost more than oneDNN gains: DNNLConv2d.standaloneMaxMACs).
    /// Below this many multiply-adds (forward) a training conv stays on im2col + GEMM: the reorders
    /// of weights and gradients around oneDNN's backward primitives cost more than they gain (the
    /// few-label job at 32×32, batch 10: training 1.7 s with them, 0.2 s without). Tests lower it
    /// to run their small graphs on oneDNN; WCONV_DNNL_TRAIN_MIN_MACS=N sets it (measurements, e.g.
    /// bf16 accuracy on a task whose convs are all below it).
    nonisolated(unsafe) static var minMACs = ProcessInfo.processInfo.environment["WCONV_DNNL_TRAIN_MIN_MACS"].flatMap { Int($0) } ?? 4_000_000

    static func select(_ r: KernelRequest, _ g: ConvGeometry) throws -> DNNLTrainConv2d? {
        guard DNNL.isEnabled, r.training, r.exec.node.op == .conv2d, r.exec.fused == .none else { return nil }
        let nhwcIn = r.layout.nhwcInput, nhwcOut = r.layout.nhwcOutput
        let macs = g.n * g.o * g.howo * g.kcol
        // bf16: large standalone convs too (im2col + GEMM has no bf16 path); tiny ones stay f32 on im2col.
        let tooLarge = macs > DNNLConv2d.standaloneMaxMACs && !r.layout.bf16
        if !nhwcIn && !nhwcOut && (tooLarge || macs < minMACs) { return nil }
        let hasBias = r.inputShapes.count > 2 && r.inputShapes[2] != nil
        let bf16 = r.layout.bf16
        let conv = try DNNLConvolution(g, activation: .none, hasBias: hasBias, layout: .nhwc,
                                       nchwInput: !nhwcIn, nchwOutput: !nhwcOut, constantWeights: false, bf16: bf16)
        var back = try DNNLConvBackward(g, hasBias: hasBias, nchwInput: !nhwcIn, nchwOutput: !nhwcOut, bf16Data: bf16, bf16Weights: bf16)
        if bf16 && !bf16WeightGradientPays(g, implementation: back.weightsImplementation) {
            back = try DNNLConvBackward(g, hasBias: hasBias, nchwInput: !nhwcIn, nchwOutput: !nhwcOut, bf16Data: true, bf16Weights: false)
        }
        return DNNLTrainConv2d(forwardKernel: DNNLConv2d(geometry: g, conv: conv), backwardConv: back)
    }

    /// Whether oneDNN 2.6.3's bf16 backward-weights kernel beats its f32 one for this conv, by the
    /// kernel it picked (avx512_core_bf16, b16@224, ms per call bf16 vs f32): the 1×1 kernel
    /// (jit_bf16_1x1: EfficientNet-B0's pointwise convs 1.7–11 vs 2–21, all but two faster) and
    /// the depthwise one (jit_dw: 0.4–16 vs 1.3–38) always; the generic jit_bf16 only at unit stride
    /// on ≥ 14×14 outputs without groups (ResNet-18 3×3: 56×56 60 vs 109, 28×28 43 vs 101, 14×14
    /// 48 vs 78), elsewhere it runs several times slower (3×3/2 ≈ 260 vs 35–70, 1×1/2 ≈ 250 vs 8–11,
    /// 7×7 outputs 255 vs 123, 5×5 depthwise 41–103 vs 19–50), so those weight gradients are f32.
    /// WCONV_BF16_WEIGHT_GRADIENTS=1 / 0 forces bf16 / f32 (measurements).
    static func bf16WeightGradientPays(_ g: ConvGeometry, implementation: String) -> Bool {
        if let forced = ProcessInfo.processInfo.environment["WCONV_BF16_WEIGHT_GRADIENTS"] { return forced == "1" }
        if implementation.hasPrefix("jit_bf16_1x1") || implementation.hasPrefix("jit_dw") { return true }
        return implementation.hasPrefix("jit_bf16") && g.groups == 1 && g.sh == 1 && g.sw == 1 && g.howo >= 14 * 14
    }

    func extents(inputs: [Int], outputs: [Int]) -> StepExtents { forwardKernel.extents(inputs: inputs, outputs: outputs) }

    func forward(_ c: StepContext) throws { try forwardKernel.forward(c) }

    func backward(_ c: BackwardContext) throws {
        guard let dy = c.outputGradient() else { return }
        let dx = c.inputGradientForWriting(0), dw = c.inputGradientForWriting(1), db = c.inputGradientForWriting(2)
        if dx == nil && dw == nil && db == nil { return }
        let bytes = backwardConv.stagingBytes
        let scratch = bytes > 0 ? UnsafeMutableRawPointer(c.executor.workspace.get(bytes / 4 + 16)) : nil
        // bf16: the forward's converted weights, when in the layout backward-data reads.
        let lent = backwardConv.bf16Data ? forwardKernel.conv.convertedWeights.flatMap { $0.desc == backwardConv.weightsDesc ? $0.data : nil } : nil
        backwardConv.backward(x: c.input(0)!, weight: c.input(1)!, dy: dy, dx: dx, dw: dw, db: db, scratch: scratch, converted: lent)
    }
}
