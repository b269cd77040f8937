import CWconvDNNL
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
    /// Bytes of scratch `forward` needs for the NCHW ↔ NHWC staging of input and output (0: none).
    let srcStagingBytes: Int, dstStagingBytes: Int
    /// Weights pointer already reordered into `weights` (constant weights only).
    private var reorderedFrom: UnsafeRawPointer?

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
        var srcMD = try dnnl_memory_desc_t.of(srcDims, actTag, compute), dstMD = try dnnl_memory_desc_t.of(dstDims, actTag, callerDst)
        var wMD = try dnnl_memory_desc_t.of(wDims, dnnl_format_tag_any, compute)
        var bMD = try dnnl_memory_desc_t.f32([g.o], dnnl_x)
        var desc = dnnl_convolution_desc_t()
        let strides = [Int64(g.sh), Int64(g.sw)], dil = [Int64(g.dh - 1), Int64(g.dw - 1)]
        let padL = [Int64(g.pt), Int64(g.pl)], padR = [Int64(g.pb), Int64(g.pr)]
        let status = withUnsafePointer(to: &bMD) { bp in
            dnnl_dilated_convolution_forward_desc_init(&desc, dnnl_forward_inference,
                                                       dnnl_convolution_direct, &srcMD, &wMD, hasBias ? bp : nil, &dstMD,
                                                       strides, dil, padL, padR)
        }
        try DNNL.check(status, "convolution_forward_desc_init")
        var attr: dnnl_primitive_attr_t?
        try DNNL.check(dnnl_primitive_attr_create(&attr), "primitive_attr_create")
        defer { dnnl_primitive_attr_destroy(attr) }
        let eltwise = DNNLConvolution.eltwise(activation)
        if eltwise != nil || residual {
            var po: dnnl_post_ops_t?
            try DNNL.check(dnnl_post_ops_create(&po), "post_ops_create")
            defer { dnnl_post_ops_destroy(po) }
            if residual { try DNNL.check(dnnl_post_ops_append_sum(po, 1), "post_ops_append_sum") }
            if let e = eltwise { try DNNL.check(dnnl_post_ops_append_eltwise(po, 1, e.alg, e.alpha, e.beta), "post_ops_append_eltwise") }
            try DNNL.check(dnnl_primitive_attr_set_post_ops(attr, po), "primitive_attr_set_post_ops")
        }
        trailingActivation = eltwise == nil ? activation : .none
        addsResidual = residual
        computesBF16 = bf16
        writesBF16 = bf16Output
        var pd: dnnl_primitive_desc_t?
        try DNNL.check(withUnsafeMutablePointer(to: &desc) { dnnl_primitive_desc_create(&pd, $0, attr, engine.engine, nil) },
                       "convolution primitive_desc_create \(g)")
        conv = try DNNLPrimitive(pd!)

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
        srcStagingBytes = srcNeedsReorder && layout != .blocked ? src.byteCount : 0
        dstStagingBytes = dstNeedsReorder && layout != .blocked ? dst.byteCount : 0
        userSrc = srcNeedsReorder ? try DNNLMemory(plainSrc, engine, own: false) : nil
        userDst = dstNeedsReorder ? try DNNLMemory(plainDst, engine, own: false) : nil
        srcReorder = srcNeedsReorder ? try DNNLPrimitive.reorder(plainSrc, chosenSrc, engine) : nil
        dstReorder = dstNeedsReorder ? try DNNLPrimitive.reorder(chosenDst, plainDst, engine) : nil
        self.constantWeights = constantWeights
        if residual && (userDst != nil || layout == .blocked) {
            throw WconvError(.runtime, "internal: a oneDNN convolution adds a residual only into an output without reorder (\(g))")
        }
    }
    private let constantWeights: Bool
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
    var implementation: String { conv.implementation }

    /// The reorders' implementations ("simple:any", "jit:uni", …), for reports.
    var reorderImplementations: String {
        [srcReorder, dstReorder].compactMap { $0?.implementation }.joined(separator: ", ")
    }

    /// The constant weights' values changed (a trainer's validation plan after an epoch): the next
    /// call reorders them again.
    func weightsChanged() { reorderedFrom = nil }

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
    func forward(_ x: UnsafePointer<Float>, weight: UnsafePointer<Float>, bias b: UnsafePointer<Float>?, _ y: UnsafeMutablePointer<Float>,
                 scratch: UnsafeMutableRawPointer?, residual: UnsafePointer<Float>? = nil) {
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
        conv.execute(engine, args)
        if let userDst, let dstReorder {
            userDst.bind(y)
            dstReorder.execute(engine, [(DNNL_ARG_FROM, dst), (DNNL_ARG_TO, userDst)])
        }
        if trailingActivation != .none {
            let n = geometry.n * geometry.o * geometry.howo
            Parallel.forRange(n / 4096 + 1, costPerItem: 4096) { r in
                let lo = r.lowerBound * 4096, hi = min(n, r.upperBound * 4096)
                if lo < hi { trailingActivation.apply(y + lo, y + lo, hi - lo) }
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
