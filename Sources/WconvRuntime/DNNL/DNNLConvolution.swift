import CWconvDNNL
import CWconvVector
import Foundation
import WconvTensor

/// One convolution as a oneDNN primitive, created once for its geometry (the executor's plan holds
/// it). Bias and the fused activation run as the primitive's post-ops; weights (OIHW) are reordered
/// into the layout the primitive chose, once when they are constant (inference), else every call.
final class DNNLConvolution {
    /// Activation layout inside the primitive.
    enum Layout: String {
        /// NCHW straight into the primitive (oneDNN picks a kernel for that layout: a GEMM here).
        case nchw
        /// NHWC (channels-last): same size as NCHW, so a chain of convolutions can keep it in the
        /// executor's buffers.
        case nhwc
        /// oneDNN's preferred (blocked, channel-padded) layout in buffers the primitive owns.
        case blocked
    }
    let geometry: ConvGeometry
    let layout: Layout
    /// The caller's input / output buffers are NCHW (reordered around the primitive) rather than
    /// in `layout` (NHWC within a chain).
    let nchwInput: Bool, nchwOutput: Bool
    let engine: DNNL.Engine
    let conv: DNNLPrimitive
    /// Activation applied after the primitive when oneDNN has no post-op for it.
    let trailingActivation: Activation

    private let src, dst, weights, bias: DNNLMemory
    /// Caller-layout memories and reorders (only when the primitive's layout differs).
    private let userSrc, userDst, userWeights: DNNLMemory?
    private let srcReorder, dstReorder, weightsReorder: DNNLPrimitive?
    /// The residual (in the caller's output buffer) into the primitive's output layout.
    private let residualReorder: DNNLPrimitive?
    /// Bytes of scratch `forward` needs for the NCHW ↔ NHWC staging of input and output (0: none); with
    /// wconv's Winograd, its transforms' scratch (as `srcStagingBytes`).
    let srcStagingBytes: Int, dstStagingBytes: Int
    /// Weights pointer already reordered into `weights` (constant weights only).
    private var reorderedFrom: UnsafeRawPointer?

    /// Winograd F(4×4, 3×3) (oneDNN's `jit_wino_4x3`, AVX-512) for f32 3×3 stride-1 convolutions:
    /// 2.0–2.6× faster than the direct kernels on ResNet's 3×3 shapes at batch 16, reorders to and
    /// from its blocked layout included, and no slower at batch 1 or on 8×8 maps (measured with
    /// oneDNN 2.6.3 on Zen 4, docs/runtime.md); its error against a float64 reference is the direct
    /// kernel's order (≤ 2× it on those shapes). PyTorch does not use it: this is where wconv's 3×3
    /// convolutions get ahead. `WCONV_DNNL_WINOGRAD=0` keeps every conv direct (tests set it too).
    nonisolated(unsafe) static var winogradEnabled = ProcessInfo.processInfo.environment["WCONV_DNNL_WINOGRAD"] != "0"

    /// wconv's Winograd (WinogradConvolution) even where oneDNN has its own: `WCONV_DNNL_WINOGRAD=wconv`,
    /// to measure one against the other on an AVX-512 CPU, and for tests of the plans on any CPU.
    /// Elsewhere it runs only where oneDNN has no Winograd kernel.
    nonisolated(unsafe) static var preferOwnWinograd = ProcessInfo.processInfo.environment["WCONV_DNNL_WINOGRAD"] == "wconv"

    /// Shapes Winograd may take: 3×3, stride 1, no dilation, no groups, ≥ 16 channels each side
    /// (its 16-channel blocks; fewer would be mostly padding), and ≥ 16 output tiles of 4×4 over
    /// the batch: the weights' transform, paid per call, is amortised over the tiles (batch 1 on a
    /// 7×7 map, 4 tiles: 9.6 ms against 1.8 ms direct; 16 tiles on 14×14: 2.0 against 2.8 ms).
    /// oneDNN still decides.
    static func mayUseWinograd(_ g: ConvGeometry) -> Bool {
        winogradEnabled && g.groups == 1 && g.kh == 3 && g.kw == 3 && g.sh == 1 && g.sw == 1
            && g.dh == 1 && g.dw == 1 && g.c >= 16 && g.o >= 16 && g.n * ((g.ho + 3) / 4) * ((g.wo + 3) / 4) >= 16
    }

    /// oneDNN's eltwise post-op for an activation, or nil when it has none with the same formula.
    static func eltwise(_ a: Activation) -> (alg: dnnl_alg_kind_t, alpha: Float, beta: Float)? {
        switch a {
        case .none: return nil
        case .relu: return (dnnl_eltwise_relu, 0, 0)
        case .leakyRelu(let s): return (dnnl_eltwise_relu, s, 0)
        case .relu6: return (dnnl_eltwise_clip_v2, 0, 6)
        case .clip(let lo, let hi): return (dnnl_eltwise_clip_v2, lo, hi)
        case .silu: return (dnnl_eltwise_swish, 1, 0)
        case .sigmoid: return (dnnl_eltwise_logistic, 0, 0)
        case .tanh: return (dnnl_eltwise_tanh, 0, 0)
        case .geluErf: return (dnnl_eltwise_gelu_erf, 0, 0)
        case .geluTanh: return (dnnl_eltwise_gelu_tanh, 0, 0)
        case .hardSwish: return (dnnl_eltwise_hardswish, 0, 0)
        case .mish: return (dnnl_eltwise_mish, 0, 0)
        case .hardSigmoid: return nil
        }
    }

    /// SiLU runs after the primitive, in wconv's AVX-512 / AVX2 kernel (wconv_vector.h), rather than as
    /// oneDNN 2.6's swish post-op, which doubles the time of a small-K conv: EfficientNet-B0 b16 on
    /// Zen 4, 1×1 16→96 on 112×112 5.0 ms bare, 10.7 ms with the post-op, 7.8 ms with the pass after
    /// it; depthwise 5×5 on 480 channels 0.50 / 0.92 / 0.75 ms. A bf16 output keeps the post-op (the
    /// kernel reads f32), as does a CPU without AVX2.
    static func runsAfter(_ a: Activation, bf16Output: Bool) -> Bool {
        a == .silu && !bf16Output && VectorKernels.isa.hasPrefix("avx")
    }

    /// - Parameters:
    ///   - hasBias: the call passes a bias (O floats).
    ///   - constantWeights: the weights never change (parameters of an inference plan): they are
    ///     reordered on the first call only (per weight buffer).
    ///   - nchwInput, nchwOutput: the caller's buffers are NCHW (ignored for `.nchw`; `.blocked` needs both).
    ///   - residual: `forward` adds a residual of the output's shape and layout before the activation
    ///     (oneDNN's sum post-op on the output buffer); needs an output without reorder.
    ///   - bf16: compute in bfloat16 (f32 accumulation, weights converted); `bf16Input` / `bf16Output`:
    ///     the caller's NHWC input / output buffers hold bfloat16 (else f32, converted on the way in).
    init(_ g: ConvGeometry, activation: Activation, hasBias: Bool, layout: Layout, nchwInput: Bool = true, nchwOutput: Bool = true,
         constantWeights: Bool = true, residual: Bool = false, bf16: Bool = false, bf16Input: Bool = false, bf16Output: Bool = false) throws {
        guard let engine = DNNL.engine else { throw DNNLUnavailable() }
        self.engine = engine
        geometry = g
        self.layout = layout
        self.nchwInput = nchwInput || layout == .nchw
        self.nchwOutput = nchwOutput || layout == .nchw
        let srcDims = [g.n, g.c, g.h, g.w], dstDims = [g.n, g.o, g.ho, g.wo]
        let wDims = g.groups == 1 ? [g.o, g.c, g.kh, g.kw] : [g.groups, g.og, g.cg, g.kh, g.kw]
        let wTag = g.groups == 1 ? dnnl_oihw : dnnl_goihw
        let actTag: dnnl_format_tag_t = layout == .nchw ? dnnl_nchw : layout == .nhwc ? dnnl_nhwc : dnnl_format_tag_any
        let compute = bf16 ? dnnl_bf16 : dnnl_f32
        let callerSrc = bf16Input ? dnnl_bf16 : dnnl_f32, callerDst = bf16Output ? dnnl_bf16 : dnnl_f32
        var bMD = try dnnl_memory_desc_t.f32([g.o], dnnl_x)
        let strides = [Int64(g.sh), Int64(g.sw)], dil = [Int64(g.dh - 1), Int64(g.dw - 1)]
        let padL = [Int64(g.pt), Int64(g.pl)], padR = [Int64(g.pb), Int64(g.pr)]
        var attr: dnnl_primitive_attr_t?
        try DNNL.check(dnnl_primitive_attr_create(&attr), "primitive_attr_create")
        defer { dnnl_primitive_attr_destroy(attr) }
        let eltwise = DNNLConvolution.runsAfter(activation, bf16Output: bf16Output) ? nil : DNNLConvolution.eltwise(activation)
        if eltwise != nil || residual {
            var po: dnnl_post_ops_t?
            try DNNL.check(dnnl_post_ops_create(&po), "post_ops_create")
            defer { dnnl_post_ops_destroy(po) }
            if residual { try DNNL.check(dnnl_post_ops_append_sum(po, 1), "post_ops_append_sum") }
            if let e = eltwise { try DNNL.check(dnnl_post_ops_append_eltwise(po, 1, e.alg, e.alpha, e.beta), "post_ops_append_eltwise") }
            try DNNL.check(dnnl_primitive_attr_set_post_ops(attr, po), "primitive_attr_set_post_ops")
        }
        addsResidual = residual
        computesBF16 = bf16
        writesBF16 = bf16Output
        // Winograd first where it may apply (its kernels want oneDNN's blocked layout: a plain caller
        // layout is reordered in and out through the staging below), else, or when oneDNN has no
        // Winograd kernel for it (no AVX-512, unsupported shape or post-op), direct.
        let winograd = !bf16 && layout == .nhwc && DNNLConvolution.mayUseWinograd(g)
        var pd: dnnl_primitive_desc_t?
        for alg in winograd ? [dnnl_convolution_winograd, dnnl_convolution_direct] : [dnnl_convolution_direct] {
            let tag = alg == dnnl_convolution_winograd ? dnnl_format_tag_any : actTag
            var srcMD = try dnnl_memory_desc_t.of(srcDims, tag, compute), dstMD = try dnnl_memory_desc_t.of(dstDims, tag, callerDst)
            var wMD = try dnnl_memory_desc_t.of(wDims, dnnl_format_tag_any, compute)
            var desc = dnnl_convolution_desc_t()
            // Winograd as forward_training: it reads blocked weights (a 0.01–0.9 ms reorder at
            // ResNet's shapes) and transforms them inside the call, where forward_inference wants
            // them pre-transformed by oneDNN's reference wino_reorder (10–70 ms per conv, once for
            // constant weights, every step in training) and kept 4× larger. At batch 16 the call
            // costs the same either way (0–12 % more at the smallest maps).
            let prop = alg == dnnl_convolution_winograd ? dnnl_forward_training : dnnl_forward_inference
            let status = withUnsafePointer(to: &bMD) { bp in
                dnnl_dilated_convolution_forward_desc_init(&desc, prop, alg, &srcMD, &wMD, hasBias ? bp : nil, &dstMD,
                                                           strides, dil, padL, padR)
            }
            let created = status == dnnl_success
                ? withUnsafeMutablePointer(to: &desc) { dnnl_primitive_desc_create(&pd, $0, attr, engine.engine, nil) } : status
            if created == dnnl_success { break }
            if alg == dnnl_convolution_direct {
                try DNNL.check(status, "convolution_forward_desc_init")
                try DNNL.check(created, "convolution primitive_desc_create \(g)")
            }
        }
        conv = try DNNLPrimitive(pd!)
        // Where oneDNN has no Winograd kernel for it (a CPU without AVX-512), wconv's own, on the
        // caller's NHWC f32 buffers; ReLU runs in its output transform, another activation after it.
        if winograd && WinogradConvolution.runsInstead(of: conv.implementation, for: g) && !self.nchwInput && !self.nchwOutput
            && !bf16Input && !bf16Output && WinogradConvolution.applies(to: g) {
            ownWinograd = WinogradConvolution(g, constantWeights: constantWeights)
            winogradReLU = activation == .relu
            trailingActivation = activation == .relu ? .none : activation
        } else {
            ownWinograd = nil
            winogradReLU = false
            trailingActivation = eltwise == nil ? activation : .none
        }

        let chosenSrc = conv.md(dnnl_query_src_md), chosenDst = conv.md(dnnl_query_dst_md), chosenW = conv.md(dnnl_query_weights_md)
        let plainW = try dnnl_memory_desc_t.f32(wDims, wTag)
        if chosenW == plainW {
            weights = try DNNLMemory(chosenW, engine, own: false)
            userWeights = nil; weightsReorder = nil
        } else {
            weights = try DNNLMemory(chosenW, engine, own: true)
            userWeights = try DNNLMemory(plainW, engine, own: false)
            weightsReorder = try DNNLPrimitive.reorder(plainW, chosenW, engine)
        }
        bias = try DNNLMemory(bMD, engine, own: false)
        // The caller's buffers: NCHW f32, or NHWC of the caller's type.
        let plainSrc = try dnnl_memory_desc_t.of(srcDims, self.nchwInput ? dnnl_nchw : dnnl_nhwc, self.nchwInput ? dnnl_f32 : callerSrc)
        let plainDst = try dnnl_memory_desc_t.of(dstDims, self.nchwOutput ? dnnl_nchw : dnnl_nhwc, self.nchwOutput ? dnnl_f32 : callerDst)
        let srcNeedsReorder = (self.nchwInput || layout != .blocked) && !(chosenSrc == plainSrc)
        let dstNeedsReorder = (self.nchwOutput || layout != .blocked) && !(chosenDst == plainDst)
        // Reorder staging of a plain layout lives in the caller's scratch (forward's `scratch`), so a
        // plan's convolutions share it; blocked buffers are the primitive's own.
        src = try DNNLMemory(chosenSrc, engine, own: layout == .blocked)
        dst = try DNNLMemory(chosenDst, engine, own: layout == .blocked)
        srcStagingBytes = ownWinograd?.scratchBytes ?? (srcNeedsReorder && layout != .blocked ? src.byteCount : 0)
        dstStagingBytes = dstNeedsReorder && layout != .blocked ? dst.byteCount : 0
        userSrc = srcNeedsReorder ? try DNNLMemory(plainSrc, engine, own: false) : nil
        userDst = dstNeedsReorder ? try DNNLMemory(plainDst, engine, own: false) : nil
        srcReorder = srcNeedsReorder ? try DNNLPrimitive.reorder(plainSrc, chosenSrc, engine) : nil
        dstReorder = dstNeedsReorder ? try DNNLPrimitive.reorder(chosenDst, plainDst, engine) : nil
        self.constantWeights = constantWeights
        // A residual summed into a reordered output (Winograd's blocked one) is first reordered into
        // the staging the primitive writes, so the sum post-op finds it there.
        residualReorder = residual && dstNeedsReorder ? try DNNLPrimitive.reorder(plainDst, chosenDst, engine) : nil
        if residual && layout == .blocked {
            throw WconvError(.runtime, "internal: a oneDNN convolution adds a residual only into a caller's buffer (\(g))")
        }
    }
    private let constantWeights: Bool
    /// wconv's Winograd, run instead of `conv` (which oneDNN made direct); its scratch is the staging's.
    private let ownWinograd: WinogradConvolution?
    /// Its output transform applies the (ReLU) activation.
    private let winogradReLU: Bool
    /// `forward` adds `residual` (sum post-op) before the activation.
    let addsResidual: Bool
    /// Computes in bfloat16; writes its (NHWC) output as bfloat16.
    let computesBF16: Bool, writesBF16: Bool

    /// The weights as the primitive reads them (layout, type) and the copy converted on the last
    /// call, when the primitive converts them (nil: it reads the caller's buffer).
    var convertedWeights: (desc: dnnl_memory_desc_t, data: UnsafeRawPointer)? {
        weights.owned.map { (weights.desc, UnsafeRawPointer($0)) }
    }

    /// The kernel oneDNN chose and the layouts, for reports ("jit:avx512_core").
    var implementation: String { ownWinograd == nil ? conv.implementation : WinogradConvolution.implementation }

    /// The reorders' implementations ("simple:any", "jit:uni", …), for reports.
    var reorderImplementations: String {
        [srcReorder, dstReorder].compactMap { $0?.implementation }.joined(separator: ", ")
    }

    /// The constant weights' values changed (a trainer's validation plan after an epoch): the next
    /// call reorders them again.
    func weightsChanged() { reorderedFrom = nil; ownWinograd?.weightsChanged() }

    /// Reorders the weights when they are not constant or not yet reordered from this buffer.
    private func bindWeights(_ w: UnsafePointer<Float>) {
        guard let userWeights, let weightsReorder else { weights.bind(w); return }
        if constantWeights && reorderedFrom == UnsafeRawPointer(w) { return }
        userWeights.bind(w)
        weightsReorder.execute(engine, [(DNNL_ARG_FROM, userWeights), (DNNL_ARG_TO, weights)])
        reorderedFrom = UnsafeRawPointer(w)
    }

    /// y = act(conv(x, w) + b), x and y in the caller's layouts (NCHW, or NHWC where declared).
    /// `scratch` holds `srcStagingBytes + dstStagingBytes` bytes (64-byte aligned), or is nil when both are 0.
    /// With `addsResidual`, y = act(conv(x, w) + b + residual); residual may be y itself (in place).
    /// `means` (N × O floats), with a SiLU run after the primitive on an NHWC f32 output
    /// (`writesChannelMeans`): the same pass writes each image's channel means of y there.
    func forward(_ x: UnsafePointer<Float>, weight: UnsafePointer<Float>, bias b: UnsafePointer<Float>?, _ y: UnsafeMutablePointer<Float>,
                 scratch: UnsafeMutableRawPointer?, residual: UnsafePointer<Float>? = nil, means: UnsafeMutablePointer<Float>? = nil) {
        if let ownWinograd {
            ownWinograd.forward(x, weight: weight, bias: b, y, scratch: scratch!, residual: addsResidual ? residual : nil,
                                relu: winogradReLU)
            finish(y, means: means)
            return
        }
        if addsResidual, let residual, residual != UnsafePointer(y) {
            UnsafeMutableRawPointer(y).copyMemory(from: residual, byteCount: dst.byteCount)
        }
        if srcStagingBytes > 0 { src.bind(scratch!) }
        if dstStagingBytes > 0 { dst.bind(scratch! + (srcStagingBytes + 63) / 64 * 64) }
        bindWeights(weight)
        var args: [(Int32, DNNLMemory)] = [(DNNL_ARG_SRC, src), (DNNL_ARG_WEIGHTS, weights), (DNNL_ARG_DST, dst)]
        if let b { bias.bind(b); args.append((DNNL_ARG_BIAS, bias)) }
        if let userSrc, let srcReorder {
            userSrc.bind(x)
            srcReorder.execute(engine, [(DNNL_ARG_FROM, userSrc), (DNNL_ARG_TO, src)])
        } else {
            src.bind(x)
        }
        if userDst == nil { dst.bind(y) }
        if addsResidual, let userDst, let residualReorder {
            userDst.bind(y)
            residualReorder.execute(engine, [(DNNL_ARG_FROM, userDst), (DNNL_ARG_TO, dst)])
        }
        conv.execute(engine, args)
        if let userDst, let dstReorder {
            userDst.bind(y)
            dstReorder.execute(engine, [(DNNL_ARG_FROM, dst), (DNNL_ARG_TO, userDst)])
        }
        finish(y, means: means)
    }

    /// The activation oneDNN did not fuse, with the channel means where asked.
    private func finish(_ y: UnsafeMutablePointer<Float>, means: UnsafeMutablePointer<Float>?) {
        if let means, canWriteChannelMeans {
            siluWithChannelMeans(y, means)
        } else if trailingActivation != .none {
            let n = geometry.n * geometry.o * geometry.howo
            Parallel.forRange(n / 4096 + 1, costPerItem: 4096) { r in
                let lo = r.lowerBound * 4096, hi = min(n, r.upperBound * 4096)
                if lo < hi { trailingActivation.apply(y + lo, y + lo, hi - lo) }
            }
        }
    }

    /// The SiLU after the primitive can also produce the global average pool of its output: NHWC f32.
    var canWriteChannelMeans: Bool { trailingActivation == .silu && !nchwOutput && !writesBF16 }

    /// SiLU in place over y (NHWC) and each image's channel means into `means`, in one pass: images
    /// split between the threads, or with one image its pixels, each half summing into its own row.
    private func siluWithChannelMeans(_ y: UnsafeMutablePointer<Float>, _ means: UnsafeMutablePointer<Float>) {
        let n = geometry.n, c = geometry.o, hw = geometry.howo, inv = 1 / Float(hw)
        if n >= Parallel.width {
            Parallel.forRange(n, costPerItem: c * hw * 4) { r in
                for img in r {
                    let row = means + img * c
                    row.update(repeating: 0, count: c)
                    wconv_silu_channel_sums(y, row, img * hw, (img + 1) * hw, c)
                    for k in 0..<c { row[k] *= inv }
                }
            }
            return
        }
        let parts = max(1, min(Parallel.width, hw))
        let partial = UnsafeMutablePointer<Float>.allocate(capacity: parts * c)
        defer { partial.deallocate() }
        partial.update(repeating: 0, count: parts * c)
        for img in 0..<n {
            Parallel.forRange(parts, costPerItem: c * hw * 4 / parts) { r in
                for part in r {
                    wconv_silu_channel_sums(y, partial + part * c, img * hw + hw * part / parts, img * hw + hw * (part + 1) / parts, c)
                }
            }
            let row = means + img * c
            for k in 0..<c {
                var sum: Float = 0
                for part in 0..<parts { sum += partial[part * c + k]; partial[part * c + k] = 0 }
                row[k] = sum * inv
            }
        }
    }

    /// The blocked-layout conv alone on its own buffers (benchmarks of a chain without reorders).
    func forwardBlockedOnly(weight: UnsafePointer<Float>, bias b: UnsafePointer<Float>?) {
        bindWeights(weight)
        var args: [(Int32, DNNLMemory)] = [(DNNL_ARG_SRC, src), (DNNL_ARG_WEIGHTS, weights), (DNNL_ARG_DST, dst)]
        if let b { bias.bind(b); args.append((DNNL_ARG_BIAS, bias)) }
        conv.execute(engine, args)
    }
}

/// oneDNN is switched off (WCONV_DNNL=0) or has no CPU engine.
struct DNNLUnavailable: Error {}
