import CWconvDNNL
import Foundation

/// A linear layer of a `--precision bf16` plan as oneDNN bf16 matmuls with f32 accumulation,
/// autocast-style: y = x·Wᵀ + b and, in training, dx += dy·W and dW += dyᵀ·x. Operands are converted
/// to bf16 in the call — W once per weight buffer when it is constant (an inference plan's
/// parameter), every call otherwise; results and gradients stay f32, the bias gradient is summed in
/// f32. oneDNN's `brg:avx512_core_bf16` matmul ran BERT-base's shapes 2.0–2.5× faster than f32 on
/// Zen 4; in an f32 MiniLM training step the linear layers took 652 of ~820 ms (docs/runtime.md).
final class DNNLLinear {
    let rows: Int, inF: Int, outF: Int
    let engine: DNNL.Engine
    private let constantWeights: Bool
    private let forwardMatmul: DNNLPrimitive
    // Forward: src x (bf16 staging), weights W as [inF, outF] (owned), bias, dst y.
    private let fSrc, fW, fBias, fDst: DNNLMemory
    private let userX, userWT: DNNLMemory
    private let xToF, wToF: DNNLPrimitive
    /// Training only: the two backward products and their operands.
    private let backwardPart: Backward?
    /// Weights pointer already converted into `fW` (constant weights only).
    private var convertedFrom: UnsafeRawPointer?

    private struct Backward {
        // Backward data: src dy (bf16 staging), weights W as [outF, inF] (owned), dst dx (sum post-op).
        let data: DNNLPrimitive, dSrc: DNNLMemory, dW: DNNLMemory, dDst: DNNLMemory
        // Backward weights: src dyᵀ [outF, rows] (bf16 staging), weights x [rows, inF] (staging), dst dW.
        let weights: DNNLPrimitive, wSrc: DNNLMemory, wW: DNNLMemory, wDst: DNNLMemory
        let userW, userDy, userDyT: DNNLMemory
        let wToD, dyToD, dyToT, xToW: DNNLPrimitive
    }

    /// Bytes of scratch `forward` / `backward` need (64-byte aligned regions).
    var forwardStagingBytes: Int { Self.aligned(fSrc.byteCount) }
    var backwardStagingBytes: Int {
        backwardPart.map { Self.aligned($0.dSrc.byteCount) + Self.aligned($0.wSrc.byteCount) + Self.aligned($0.wW.byteCount) } ?? 0
    }
    private static func aligned(_ n: Int) -> Int { (n + 63) / 64 * 64 }

    init(rows: Int, inF: Int, outF: Int, hasBias: Bool, training: Bool, constantWeights: Bool) throws {
        guard let engine = DNNL.engine else { throw DNNLUnavailable() }
        self.engine = engine
        self.rows = rows; self.inF = inF; self.outF = outF
        self.constantWeights = constantWeights && !training
        func matmul(_ src: [Int], _ w: [Int], _ dst: [Int], bias: Bool, accumulate: Bool) throws -> DNNLPrimitive {
            var s = try dnnl_memory_desc_t.of(src, dnnl_ab, dnnl_bf16), wm = try dnnl_memory_desc_t.of(w, dnnl_format_tag_any, dnnl_bf16)
            var b = try dnnl_memory_desc_t.f32([1, dst[1]], dnnl_ab), d = try dnnl_memory_desc_t.f32(dst, dnnl_ab)
            var desc = dnnl_matmul_desc_t()
            try DNNL.check(withUnsafePointer(to: &b) { bp in dnnl_matmul_desc_init(&desc, &s, &wm, bias ? bp : nil, &d) }, "matmul_desc_init")
            var attr: dnnl_primitive_attr_t?
            try DNNL.check(dnnl_primitive_attr_create(&attr), "primitive_attr_create")
            defer { dnnl_primitive_attr_destroy(attr) }
            if accumulate {
                var po: dnnl_post_ops_t?
                try DNNL.check(dnnl_post_ops_create(&po), "post_ops_create")
                defer { dnnl_post_ops_destroy(po) }
                try DNNL.check(dnnl_post_ops_append_sum(po, 1), "post_ops_append_sum")
                try DNNL.check(dnnl_primitive_attr_set_post_ops(attr, po), "primitive_attr_set_post_ops")
            }
            var pd: dnnl_primitive_desc_t?
            try DNNL.check(dnnl_primitive_desc_create(&pd, &desc, attr, engine.engine, nil), "matmul primitive_desc_create \(src) × \(w)")
            return try DNNLPrimitive(pd!)
        }
        forwardMatmul = try matmul([rows, inF], [inF, outF], [rows, outF], bias: hasBias, accumulate: false)
        fSrc = try DNNLMemory(forwardMatmul.md(dnnl_query_src_md), engine, own: false)
        fW = try DNNLMemory(forwardMatmul.md(dnnl_query_weights_md), engine, own: true)
        fBias = try DNNLMemory(try dnnl_memory_desc_t.f32([1, outF], dnnl_ab), engine, own: false)
        fDst = try DNNLMemory(forwardMatmul.md(dnnl_query_dst_md), engine, own: false)
        // The caller's f32 buffers, some seen transposed: W [outF, inF] row-major is [inF, outF] "ba";
        // dy [rows, outF] is [outF, rows] "ba".
        let x = try dnnl_memory_desc_t.f32([rows, inF], dnnl_ab), wt = try dnnl_memory_desc_t.f32([inF, outF], dnnl_ba)
        userX = try DNNLMemory(x, engine, own: false); userWT = try DNNLMemory(wt, engine, own: false)
        xToF = try DNNLPrimitive.reorder(x, fSrc.desc, engine)
        wToF = try DNNLPrimitive.reorder(wt, fW.desc, engine)
        guard training else { backwardPart = nil; return }
        let data = try matmul([rows, outF], [outF, inF], [rows, inF], bias: false, accumulate: true)
        let weights = try matmul([outF, rows], [rows, inF], [outF, inF], bias: false, accumulate: true)
        let w = try dnnl_memory_desc_t.f32([outF, inF], dnnl_ab), dy = try dnnl_memory_desc_t.f32([rows, outF], dnnl_ab)
        let dyT = try dnnl_memory_desc_t.f32([outF, rows], dnnl_ba)
        let dSrc = try DNNLMemory(data.md(dnnl_query_src_md), engine, own: false)
        let dW = try DNNLMemory(data.md(dnnl_query_weights_md), engine, own: true)
        let wSrc = try DNNLMemory(weights.md(dnnl_query_src_md), engine, own: false)
        let wW = try DNNLMemory(weights.md(dnnl_query_weights_md), engine, own: false)
        backwardPart = Backward(
            data: data, dSrc: dSrc, dW: dW, dDst: try DNNLMemory(data.md(dnnl_query_dst_md), engine, own: false),
            weights: weights, wSrc: wSrc, wW: wW, wDst: try DNNLMemory(weights.md(dnnl_query_dst_md), engine, own: false),
            userW: try DNNLMemory(w, engine, own: false), userDy: try DNNLMemory(dy, engine, own: false),
            userDyT: try DNNLMemory(dyT, engine, own: false),
            wToD: try DNNLPrimitive.reorder(w, dW.desc, engine), dyToD: try DNNLPrimitive.reorder(dy, dSrc.desc, engine),
            dyToT: try DNNLPrimitive.reorder(dyT, wSrc.desc, engine), xToW: try DNNLPrimitive.reorder(x, wW.desc, engine))
    }

    /// The kernel oneDNN chose for the forward product ("brg:avx512_core_bf16").
    var implementation: String { forwardMatmul.implementation }

    /// y = x·Wᵀ + b. `scratch`: `forwardStagingBytes`.
    func forward(_ x: UnsafePointer<Float>, weight: UnsafePointer<Float>, bias: UnsafePointer<Float>?, _ y: UnsafeMutablePointer<Float>,
                 scratch: UnsafeMutableRawPointer) {
        userX.bind(x); fSrc.bind(scratch)
        xToF.execute(engine, [(DNNL_ARG_FROM, userX), (DNNL_ARG_TO, fSrc)])
        if !constantWeights || convertedFrom != UnsafeRawPointer(weight) {
            userWT.bind(weight)
            wToF.execute(engine, [(DNNL_ARG_FROM, userWT), (DNNL_ARG_TO, fW)])
            convertedFrom = UnsafeRawPointer(weight)
        }
        fDst.bind(y)
        var args: [(Int32, DNNLMemory)] = [(DNNL_ARG_SRC, fSrc), (DNNL_ARG_WEIGHTS, fW), (DNNL_ARG_DST, fDst)]
        if let bias { fBias.bind(bias); args.append((DNNL_ARG_BIAS, fBias)) }
        forwardMatmul.execute(engine, args)
    }

    /// dx += dy·W and dW += dyᵀ·x where asked (training plans). `scratch`: `backwardStagingBytes`.
    func backward(_ x: UnsafePointer<Float>, weight: UnsafePointer<Float>, dy: UnsafePointer<Float>,
                  dx: UnsafeMutablePointer<Float>?, dw: UnsafeMutablePointer<Float>?, scratch: UnsafeMutableRawPointer) {
        guard let p = backwardPart else { preconditionFailure("DNNLLinear.backward in an inference plan") }
        let a = Self.aligned(p.dSrc.byteCount), b = a + Self.aligned(p.wSrc.byteCount)
        if let dx {
            p.userDy.bind(dy); p.dSrc.bind(scratch)
            p.dyToD.execute(engine, [(DNNL_ARG_FROM, p.userDy), (DNNL_ARG_TO, p.dSrc)])
            p.userW.bind(weight)
            p.wToD.execute(engine, [(DNNL_ARG_FROM, p.userW), (DNNL_ARG_TO, p.dW)])
            p.dDst.bind(dx)
            p.data.execute(engine, [(DNNL_ARG_SRC, p.dSrc), (DNNL_ARG_WEIGHTS, p.dW), (DNNL_ARG_DST, p.dDst)])
        }
        if let dw {
            p.userDyT.bind(dy); p.wSrc.bind(scratch + a)
            p.dyToT.execute(engine, [(DNNL_ARG_FROM, p.userDyT), (DNNL_ARG_TO, p.wSrc)])
            userX.bind(x); p.wW.bind(scratch + b)
            p.xToW.execute(engine, [(DNNL_ARG_FROM, userX), (DNNL_ARG_TO, p.wW)])
            p.wDst.bind(dw)
            p.weights.execute(engine, [(DNNL_ARG_SRC, p.wSrc), (DNNL_ARG_WEIGHTS, p.wW), (DNNL_ARG_DST, p.wDst)])
        }
    }
}

/// The `linear` op of a bf16 plan on oneDNN (DNNLLinear): the fused activation after it (inference),
/// the bias gradient in f32 (training).
struct DNNLLinearBF16: StepKernel {
    let rows: Int, inF: Int, outF: Int
    let linear: DNNLLinear

    /// bf16 plans with oneDNN on; nil otherwise (f32 GEMM).
    static func select(_ r: KernelRequest, rows: Int, inF: Int, outF: Int) throws -> DNNLLinearBF16? {
        guard DNNL.isEnabled, r.layout.bf16, rows > 0, inF > 0, outF > 0 else { return nil }
        let hasBias = r.inputShapes.count > 2 && r.inputShapes[2] != nil
        return DNNLLinearBF16(rows: rows, inF: inF, outF: outF,
                              linear: try DNNLLinear(rows: rows, inF: inF, outF: outF, hasBias: hasBias, training: r.training,
                                                     constantWeights: r.layout.constantWeights))
    }

    func extents(inputs: [Int], outputs: [Int]) -> StepExtents {
        Linear(rows: rows, inF: inF, outF: outF).extents(inputs: inputs, outputs: outputs)
    }

    func forward(_ c: StepContext) throws {
        let scratch = UnsafeMutableRawPointer(c.executor.workspace.get(linear.forwardStagingBytes / 4 + 16))
        let y = c.output()
        linear.forward(c.input(0)!, weight: c.input(1)!, bias: c.input(2).map { UnsafePointer($0) }, y, scratch: scratch)
        if c.fused != .none { applyActivation(c.fused, y, y, rows * outF) }
    }

    func backward(_ c: BackwardContext) throws {
        guard let dy = c.outputGradient() else { return }
        let dx = c.inputGradient(0), dw = c.inputGradient(1)
        if dx != nil || dw != nil {
            let scratch = UnsafeMutableRawPointer(c.executor.workspace.get(linear.backwardStagingBytes / 4 + 16))
            linear.backward(c.input(0)!, weight: c.input(1)!, dy: dy, dx: dx, dw: dw, scratch: scratch)
        }
        if let db = c.inputGradient(2) {
            for r in 0..<rows { let g = dy + r * outF; for o in 0..<outF { db[o] += g[o] } }
        }
    }
}
