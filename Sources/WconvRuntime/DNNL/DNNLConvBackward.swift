import CWconvDNNL
import Foundation
import WconvTensor

/// The backward of one convolution of a training plan on oneDNN primitives, created once for its
/// geometry: input gradient (convolution_backward_data) and weight + bias gradients
/// (convolution_backward_weights), on NHWC activations (Winograd's blocked layout for f32 3×3
/// stride-1 convs). Where the caller's buffers are in another layout (NCHW at a boundary of the
/// training layout plan, or the primitives' blocked one) x and dy are reordered into staging first
/// and dx back after. Results are added to the gradient buffers (autograd accumulates): a buffer
/// that holds no gradient yet in the layout the primitive writes is written directly, else the
/// result is staged and added by a reorder with a sum post-op.
/// In mixed precision either primitive can compute in bfloat16 (`bf16Data`, `bf16Weights`; direct
/// algorithm, NHWC): its inputs (dy and the weights, or x and dy) are converted to bf16, it
/// accumulates in f32 and writes f32 gradients.
final class DNNLConvBackward {
    let geometry: ConvGeometry
    let engine: DNNL.Engine
    /// The caller's x / dx and y / dy buffers are NCHW rather than NHWC.
    let nchwInput: Bool, nchwOutput: Bool
    private let data: DNNLPrimitive, weights: DNNLPrimitive
    /// Memories of the primitives' arguments (handles bound per call): dy as each primitive reads it
    /// (one object when both read the same layout and type).
    private let diffDstData, diffDstWeights, src, wPlain, wData: DNNLMemory
    private let wDataReorder: DNNLPrimitive?
    /// x and dy reordered (and converted) from the caller's buffers for the primitive reading them.
    private let srcIn, diffDstInData, diffDstInWeights: DNNLStagedInput?
    private let diffSrc, diffWeights, diffBias: DNNLGradientSink
    let hasBias: Bool
    /// The primitive computes in bfloat16 (backward-data: dy and weights converted; backward-weights:
    /// x and dy converted); gradients are f32 either way.
    let bf16Data: Bool, bf16Weights: Bool
    private let hints: [dnnl_primitive_desc_t]
    /// The input gradient by wconv's Winograd (a 3×3 stride-1 conv of dy with the rotated weights),
    /// run instead of `data` where oneDNN has no Winograd kernel, as the forward (DNNLConvolution).
    private let ownData: WinogradConvolution?
    /// The weight gradient by wconv's Winograd (`WinogradConvolution.weightGradient`), where oneDNN
    /// has no Winograd kernel and the conv has no bias (whose gradient the primitive would compute).
    private let ownWeights: WinogradConvolution?

    deinit { for h in hints { dnnl_primitive_desc_destroy(h) } }

    init(_ g: ConvGeometry, hasBias: Bool, nchwInput: Bool, nchwOutput: Bool, bf16Data: Bool = false, bf16Weights: Bool = false) throws {
        guard let engine = DNNL.engine else { throw DNNLUnavailable() }
        self.engine = engine
        geometry = g
        self.hasBias = hasBias
        self.nchwInput = nchwInput
        self.nchwOutput = nchwOutput
        self.bf16Data = bf16Data
        self.bf16Weights = bf16Weights
        let srcDims = [g.n, g.c, g.h, g.w], dstDims = [g.n, g.o, g.ho, g.wo]
        let wDims = g.groups == 1 ? [g.o, g.c, g.kh, g.kw] : [g.groups, g.og, g.cg, g.kh, g.kw]
        let wTag = g.groups == 1 ? dnnl_oihw : dnnl_goihw
        let nhwcSrc = try dnnl_memory_desc_t.f32(srcDims, dnnl_nhwc), nhwcDst = try dnnl_memory_desc_t.f32(dstDims, dnnl_nhwc)
        let plainSrc = try dnnl_memory_desc_t.f32(srcDims, dnnl_nchw), plainDst = try dnnl_memory_desc_t.f32(dstDims, dnnl_nchw)
        let callerSrc = nchwInput ? plainSrc : nhwcSrc, callerDst = nchwOutput ? plainDst : nhwcDst
        var bMD = try dnnl_memory_desc_t.f32([g.o], dnnl_x)
        // oneDNN 2.6's jit_1x1 backward kernels on AVX-512 corrupt memory for strided 1×1 convs at
        // an odd minibatch (ResNet downsample convs, batch 9: heap corruption, found by the CLI
        // tests); they are passed over there for the next implementation oneDNN offers. Their bf16
        // twins (jit_bf16_1x1) do the same (batch 7: "double free or corruption").
        let strided1x1 = g.kh == 1 && g.kw == 1 && (g.sh > 1 || g.sw > 1)
        let types = (data: bf16Data ? dnnl_bf16 : dnnl_f32, weights: bf16Weights ? dnnl_bf16 : dnnl_f32)
        // Winograd (as the forward: DNNLConvolution.mayUseWinograd; f32 only) where oneDNN has it, on
        // its blocked layout with x and dy staged in and dx out; else direct on NHWC.
        let f32 = !bf16Data && !bf16Weights
        var chosen: (data: DNNLPrimitive, weights: DNNLPrimitive, hints: [dnnl_primitive_desc_t])?
        for alg in f32 && DNNLConvolution.mayUseWinograd(g) ? [dnnl_convolution_winograd, dnnl_convolution_direct] : [dnnl_convolution_direct] {
            do {
                chosen = try DNNLConvBackward.primitives(g, alg, hasBias: hasBias, wDims: wDims, bias: &bMD,
                                                         tag: alg == dnnl_convolution_winograd ? dnnl_format_tag_any : dnnl_nhwc,
                                                         types: types, avoidingOn: strided1x1, engine)
                break
            } catch where alg == dnnl_convolution_winograd {
                continue
            }
        }
        guard let chosen else { throw WconvError(.runtime, "internal: no oneDNN backward convolution for \(g)") }
        data = chosen.data; weights = chosen.weights; hints = chosen.hints
        ownData = f32 && !nchwInput && !nchwOutput && WinogradConvolution.runsInstead(of: chosen.data.implementation, for: g)
            ? WinogradConvolution.inputGradient(of: g).map { WinogradConvolution($0, constantWeights: false, flippedWeights: true) } : nil
        ownWeights = f32 && !hasBias && !nchwInput && !nchwOutput && WinogradConvolution.runsInstead(of: chosen.weights.implementation, for: g)
            && WinogradConvolution.applies(to: g) ? WinogradConvolution(g, constantWeights: false) : nil
        let srcMD = weights.md(dnnl_query_src_md)
        let dstData = data.md(dnnl_query_diff_dst_md), dstWeights = weights.md(dnnl_query_diff_dst_md)
        let sharedDy = dstData == dstWeights

        let plainW = try dnnl_memory_desc_t.f32(wDims, wTag)
        diffDstData = try DNNLMemory(dstData, engine, own: false)
        diffDstWeights = sharedDy ? diffDstData : try DNNLMemory(dstWeights, engine, own: false)
        src = try DNNLMemory(srcMD, engine, own: false)
        wPlain = try DNNLMemory(plainW, engine, own: false)
        let chosenW = data.md(dnnl_query_weights_md)
        if chosenW == plainW {
            wData = wPlain; wDataReorder = nil
        } else {
            wData = try DNNLMemory(chosenW, engine, own: true)
            wDataReorder = try DNNLPrimitive.reorder(plainW, chosenW, engine)
        }
        srcIn = srcMD == callerSrc ? nil : try DNNLStagedInput(from: callerSrc, to: srcMD, engine)
        diffDstInData = dstData == callerDst ? nil : try DNNLStagedInput(from: callerDst, to: dstData, engine)
        diffDstInWeights = sharedDy ? diffDstInData : dstWeights == callerDst ? nil : try DNNLStagedInput(from: callerDst, to: dstWeights, engine)
        diffSrc = try DNNLGradientSink(produced: data.md(dnnl_query_diff_src_md), target: callerSrc, engine)
        diffWeights = try DNNLGradientSink(produced: weights.md(dnnl_query_diff_weights_md), target: plainW, engine)
        diffBias = try DNNLGradientSink(produced: hasBias ? weights.md(dnnl_query_diff_weights_md, 1) : bMD, target: bMD, engine)
    }

    /// Backward-data and backward-weights primitives for one algorithm, activations in `tag` (NHWC,
    /// or any: the primitives' choice), each computing in its type of `types` (dx, dW, db f32), with
    /// the forward descriptors they need as hints (one per type; they must outlive the primitives).
    /// `avoidingOn`: pass over the (bf16) jit_1x1 kernels. Throws when oneDNN has no kernel, or when
    /// primitives of one type choose different dy layouts (one staging of dy serves both).
    private static func primitives(_ g: ConvGeometry, _ alg: dnnl_alg_kind_t, hasBias: Bool, wDims: [Int], bias bMD: inout dnnl_memory_desc_t,
                                   tag: dnnl_format_tag_t, types: (data: dnnl_data_type_t, weights: dnnl_data_type_t), avoidingOn: Bool,
                                   _ engine: DNNL.Engine) throws -> (data: DNNLPrimitive, weights: DNNLPrimitive, hints: [dnnl_primitive_desc_t]) {
        let srcDims = [g.n, g.c, g.h, g.w], dstDims = [g.n, g.o, g.ho, g.wo]
        let strides = [Int64(g.sh), Int64(g.sw)], dil = [Int64(g.dh - 1), Int64(g.dw - 1)]
        let padL = [Int64(g.pt), Int64(g.pl)], padR = [Int64(g.pb), Int64(g.pr)]
        var hints: [dnnl_primitive_desc_t] = [], hintOf: [UInt32: dnnl_primitive_desc_t] = [:]
        // The forward descriptor of a type only serves as the backward primitives' hint (layout choices).
        func hint(_ type: dnnl_data_type_t) throws -> dnnl_primitive_desc_t {
            if let h = hintOf[type.rawValue] { return h }
            var x = try dnnl_memory_desc_t.of(srcDims, tag, type), y = try dnnl_memory_desc_t.of(dstDims, tag, type)
            var w = try dnnl_memory_desc_t.of(wDims, dnnl_format_tag_any, type)
            var fwd = dnnl_convolution_desc_t()
            try withUnsafePointer(to: &bMD) { bp in
                try DNNL.check(dnnl_dilated_convolution_forward_desc_init(&fwd, dnnl_forward_training, alg, &x, &w, hasBias ? bp : nil, &y,
                                                                          strides, dil, padL, padR), "convolution_forward_desc_init (training)")
            }
            var pd: dnnl_primitive_desc_t?
            try DNNL.check(withUnsafeMutablePointer(to: &fwd) { dnnl_primitive_desc_create(&pd, $0, nil, engine.engine, nil) },
                           "convolution forward (hint) primitive_desc_create \(g)")
            hints.append(pd!)
            hintOf[type.rawValue] = pd!
            return pd!
        }
        func avoid(_ type: dnnl_data_type_t) -> String? { avoidingOn ? (type == dnnl_bf16 ? "jit_bf16_1x1" : "jit_1x1") : nil }
        do {
            // x and dy in each primitive's compute type; dx and dW f32.
            var diffSrcMD = try dnnl_memory_desc_t.f32(srcDims, tag), srcMD = try dnnl_memory_desc_t.of(srcDims, tag, types.weights)
            var dyData = try dnnl_memory_desc_t.of(dstDims, tag, types.data), dyWeights = try dnnl_memory_desc_t.of(dstDims, tag, types.weights)
            var wAny = try dnnl_memory_desc_t.of(wDims, dnnl_format_tag_any, types.data), diffWAny = try dnnl_memory_desc_t.f32(wDims, dnnl_format_tag_any)
            var bwdData = dnnl_convolution_desc_t(), bwdWeights = dnnl_convolution_desc_t()
            try withUnsafePointer(to: &bMD) { bp in
                try DNNL.check(dnnl_dilated_convolution_backward_data_desc_init(&bwdData, alg, &diffSrcMD, &wAny, &dyData,
                                                                                strides, dil, padL, padR), "convolution_backward_data_desc_init")
                try DNNL.check(dnnl_dilated_convolution_backward_weights_desc_init(&bwdWeights, alg, &srcMD, &diffWAny, hasBias ? bp : nil, &dyWeights,
                                                                                   strides, dil, padL, padR), "convolution_backward_weights_desc_init")
            }
            let dataHint = try hint(types.data), weightsHint = try hint(types.weights)
            let data = try DNNLPrimitive(withUnsafeMutablePointer(to: &bwdData) {
                try DNNL.primitiveDesc($0, engine, hint: dataHint, avoiding: avoid(types.data), "convolution backward_data \(g)")
            })
            let weights = try DNNLPrimitive(withUnsafeMutablePointer(to: &bwdWeights) {
                try DNNL.primitiveDesc($0, engine, hint: weightsHint, avoiding: avoid(types.weights), "convolution backward_weights \(g)")
            })
            guard types.data != types.weights || data.md(dnnl_query_diff_dst_md) == weights.md(dnnl_query_diff_dst_md) else {
                throw WconvError(.runtime, "internal: oneDNN's backward convolutions chose different dy layouts for \(g)")
            }
            return (data, weights, hints)
        } catch {
            for h in hints { dnnl_primitive_desc_destroy(h) }
            throw error
        }
    }

    /// The kernels oneDNN chose ("brgconv_bwd_d:avx512_core, brgconv_bwd_w:avx512_core"), for reports.
    var implementation: String {
        "\(ownData == nil ? data.implementation : WinogradConvolution.implementation), \(ownWeights == nil ? weights.implementation : WinogradConvolution.implementation)"
    }

    /// The backward-weights kernel oneDNN chose ("jit_bf16_1x1:avx512_core_bf16").
    var weightsImplementation: String { weights.implementation }

    /// Bytes of staging one call may need (64-byte aligned pieces).
    var stagingBytes: Int {
        let secondDy = diffDstInWeights === diffDstInData ? 0 : diffDstInWeights?.bytes ?? 0
        // wconv's Winograd weight gradient is done before the input gradient starts: they share scratch.
        return [srcIn?.bytes ?? 0, diffDstInData?.bytes ?? 0, secondDy, diffSrc.stagingBytes, diffWeights.stagingBytes, diffBias.stagingBytes,
                max(ownData?.scratchBytes ?? 0, ownWeights?.scratchBytes ?? 0)]
            .reduce(0) { $0 + ($1 + 63) / 64 * 64 }
    }

    /// The weights' layout (and type) the backward-data primitive reads: a forward primitive that
    /// converted them into this layout can lend its copy (`backward`'s `converted`).
    var weightsDesc: dnnl_memory_desc_t { wData.desc }

    /// Adds the gradients of x, weight and bias (each when given) for output gradient `dy`, with x,
    /// dy, dx in the caller's layouts. `scratch` holds `stagingBytes`. `converted`: the weights
    /// already in `weightsDesc` (the forward's conversion of this step), else they are reordered here.
    func backward(x: UnsafePointer<Float>, weight: UnsafePointer<Float>, dy: UnsafePointer<Float>,
                  dx: WritableGradient?, dw: WritableGradient?, db: WritableGradient?, scratch: UnsafeMutableRawPointer?,
                  converted: UnsafeRawPointer? = nil) {
        var next = scratch
        func take(_ bytes: Int) -> UnsafeMutableRawPointer? {
            guard bytes > 0 else { return nil }
            defer { next = next! + (bytes + 63) / 64 * 64 }
            return next
        }
        // dy as the data primitive reads it, then (when it differs) as the weights primitive does.
        diffDstData.bind(diffDstInData.map { $0.run(dy, into: take($0.bytes)!, engine) } ?? UnsafeRawPointer(dy))
        if let dw, let ownWeights {
            // No bias here (ownWeights needs none), so dW is the primitive's whole work. Its scratch
            // is free again once it returns (the input gradient's Winograd takes the same bytes).
            let shared = next
            ownWeights.weightGradient(x: x, dy: dy, dw.pointer, accumulate: !dw.fresh, scratch: take(ownWeights.scratchBytes)!)
            next = shared
        } else if dw != nil || db != nil {
            if diffDstWeights !== diffDstData {
                diffDstWeights.bind(diffDstInWeights.map { $0.run(dy, into: take($0.bytes)!, engine) } ?? UnsafeRawPointer(dy))
            }
            src.bind(srcIn.map { $0.run(x, into: take($0.bytes)!, engine) } ?? UnsafeRawPointer(x))
            var args: [(Int32, DNNLMemory)] = [(DNNL_ARG_SRC, src), (DNNL_ARG_DIFF_DST, diffDstWeights)]
            // The weights primitive always computes both when it has a bias; a gradient not asked for goes to staging.
            args.append((DNNL_ARG_DIFF_WEIGHTS, diffWeights.prepare(dw, staging: take(diffWeights.stagingBytes(fresh: dw?.fresh ?? false)))))
            if hasBias { args.append((DNNL_ARG_DIFF_BIAS, diffBias.prepare(db, staging: take(diffBias.stagingBytes(fresh: db?.fresh ?? false))))) }
            weights.execute(engine, args)
            if let dw { diffWeights.finish(dw, engine) }
            if hasBias, let db { diffBias.finish(db, engine) }
        }
        if let dx, let ownData {
            // dx = conv(dy, rot180(wᵀ)), added in the output transform where dx already holds a gradient.
            ownData.forward(dy, weight: weight, bias: nil, dx.pointer, scratch: take(ownData.scratchBytes)!,
                            residual: dx.fresh ? nil : UnsafePointer(dx.pointer), relu: false)
        } else if let dx {
            if let converted {
                wData.bind(converted)
            } else {
                wPlain.bind(weight)
                if let wDataReorder {
                    if let own = wData.owned { wData.bind(own) }
                    wDataReorder.execute(engine, [(DNNL_ARG_FROM, wPlain), (DNNL_ARG_TO, wData)])
                }
            }
            let out = diffSrc.prepare(dx, staging: take(diffSrc.stagingBytes(fresh: dx.fresh)))
            data.execute(engine, [(DNNL_ARG_DIFF_DST, diffDstData), (DNNL_ARG_WEIGHTS, wData), (DNNL_ARG_DIFF_SRC, out)])
            diffSrc.finish(dx, engine)
        }
    }
}

/// A primitive's input that arrives in another layout: reordered into staging before the call.
final class DNNLStagedInput {
    private let user: DNNLMemory, staged: DNNLMemory
    private let reorder: DNNLPrimitive
    let bytes: Int
    init(from: dnnl_memory_desc_t, to: dnnl_memory_desc_t, _ engine: DNNL.Engine) throws {
        user = try DNNLMemory(from, engine, own: false)
        staged = try DNNLMemory(to, engine, own: false)
        reorder = try DNNLPrimitive.reorder(from, to, engine)
        bytes = staged.byteCount
    }
    /// Reorders `x` into `staging` and returns it.
    func run(_ x: UnsafePointer<Float>, into staging: UnsafeMutableRawPointer, _ engine: DNNL.Engine) -> UnsafeRawPointer {
        user.bind(x); staged.bind(staging)
        reorder.execute(engine, [(DNNL_ARG_FROM, user), (DNNL_ARG_TO, staged)])
        return UnsafeRawPointer(staging)
    }
}

/// Where a backward primitive's result goes: straight into the gradient buffer when that holds no
/// gradient yet and has the layout the primitive writes; else into staging, then reordered into
/// the buffer (a reorder with a sum post-op when the buffer already holds a gradient).
final class DNNLGradientSink {
    let produced: DNNLMemory
    private let target: DNNLMemory
    private let sameLayout: Bool
    private let copy: DNNLPrimitive?, add: DNNLPrimitive

    init(produced p: dnnl_memory_desc_t, target t: dnnl_memory_desc_t, _ engine: DNNL.Engine) throws {
        produced = try DNNLMemory(p, engine, own: false)
        target = try DNNLMemory(t, engine, own: false)
        sameLayout = p == t
        copy = sameLayout ? nil : try DNNLPrimitive.reorder(p, t, engine)
        var attr: dnnl_primitive_attr_t?, po: dnnl_post_ops_t?
        try DNNL.check(dnnl_primitive_attr_create(&attr), "primitive_attr_create")
        defer { dnnl_primitive_attr_destroy(attr) }
        try DNNL.check(dnnl_post_ops_create(&po), "post_ops_create")
        defer { dnnl_post_ops_destroy(po) }
        try DNNL.check(dnnl_post_ops_append_sum(po, 1), "post_ops_append_sum")
        try DNNL.check(dnnl_primitive_attr_set_post_ops(attr, po), "primitive_attr_set_post_ops")
        var pd: dnnl_primitive_desc_t?, src = p, dst = t
        try DNNL.check(dnnl_reorder_primitive_desc_create(&pd, &src, engine.engine, &dst, engine.engine, attr), "reorder (sum) primitive_desc_create")
        add = try DNNLPrimitive(pd!)
    }

    /// Staging the result needs (0 when it goes straight into a fresh buffer of the same layout).
    func stagingBytes(fresh: Bool) -> Int { fresh && sameLayout ? 0 : produced.byteCount }
    /// The largest staging any call needs.
    var stagingBytes: Int { produced.byteCount }

    /// Binds the primitive's output: the gradient buffer, or `staging` (also when no gradient is wanted).
    func prepare(_ g: WritableGradient?, staging: UnsafeMutableRawPointer?) -> DNNLMemory {
        if let g, g.fresh && sameLayout { produced.bind(g.pointer) } else { produced.bind(staging!) }
        return produced
    }

    /// Moves a staged result into the gradient buffer (copying into a fresh one, adding otherwise).
    func finish(_ g: WritableGradient, _ engine: DNNL.Engine) {
        if g.fresh && sameLayout { return }
        target.bind(g.pointer)
        (g.fresh ? copy! : add).execute(engine, [(DNNL_ARG_FROM, produced), (DNNL_ARG_TO, target)])
    }
}
