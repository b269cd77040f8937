import CWconvDNNL
import Foundation

/// A linear layer y = x·Wᵀ + b as a oneDNN bf16 matmul (f32 accumulation) for `--precision bf16`
/// inference plans: x (f32, caller's) is converted to bf16 per call, W once per weight buffer (it is
/// a parameter), y is f32. oneDNN's `brg:avx512_core_bf16` matmul ran BERT-base's shapes 2.0–2.5×
/// faster than f32 (OpenBLAS or oneDNN, equal) on Zen 4 (docs/runtime.md); the fused activation
/// runs after it in wconv's kernels.
final class DNNLLinear {
    let rows: Int, inF: Int, outF: Int
    let engine: DNNL.Engine
    let matmul: DNNLPrimitive
    private let src, weights, bias, dst: DNNLMemory
    private let userSrc, userWeights: DNNLMemory
    private let srcReorder, weightsReorder: DNNLPrimitive
    /// Weights pointer already converted into `weights`.
    private var convertedFrom: UnsafeRawPointer?
    /// Bytes of scratch `forward` needs for x in bf16.
    var srcStagingBytes: Int { src.byteCount }

    init(rows: Int, inF: Int, outF: Int, hasBias: Bool) throws {
        guard let engine = DNNL.engine else { throw DNNLUnavailable() }
        self.engine = engine
        self.rows = rows; self.inF = inF; self.outF = outF
        var srcMD = try dnnl_memory_desc_t.of([rows, inF], dnnl_ab, dnnl_bf16)
        var wMD = try dnnl_memory_desc_t.of([inF, outF], dnnl_format_tag_any, dnnl_bf16)
        var bMD = try dnnl_memory_desc_t.f32([1, outF], dnnl_ab)
        var dstMD = try dnnl_memory_desc_t.f32([rows, outF], dnnl_ab)
        var desc = dnnl_matmul_desc_t()
        try DNNL.check(withUnsafePointer(to: &bMD) { bp in dnnl_matmul_desc_init(&desc, &srcMD, &wMD, hasBias ? bp : nil, &dstMD) },
                       "matmul_desc_init")
        var pd: dnnl_primitive_desc_t?
        try DNNL.check(dnnl_primitive_desc_create(&pd, &desc, nil, engine.engine, nil), "matmul primitive_desc_create [\(rows), \(inF)] × [\(inF), \(outF)]")
        matmul = try DNNLPrimitive(pd!)
        src = try DNNLMemory(matmul.md(dnnl_query_src_md), engine, own: false)
        weights = try DNNLMemory(matmul.md(dnnl_query_weights_md), engine, own: true)
        bias = try DNNLMemory(bMD, engine, own: false)
        dst = try DNNLMemory(matmul.md(dnnl_query_dst_md), engine, own: false)
        // W is [outF, inF] row-major: as the matmul's [inF, outF] operand that is the "ba" layout.
        let plainW = try dnnl_memory_desc_t.f32([inF, outF], dnnl_ba), plainSrc = try dnnl_memory_desc_t.f32([rows, inF], dnnl_ab)
        userWeights = try DNNLMemory(plainW, engine, own: false)
        userSrc = try DNNLMemory(plainSrc, engine, own: false)
        weightsReorder = try DNNLPrimitive.reorder(plainW, weights.desc, engine)
        srcReorder = try DNNLPrimitive.reorder(plainSrc, src.desc, engine)
    }

    /// The kernel oneDNN chose ("brg:avx512_core_bf16").
    var implementation: String { matmul.implementation }

    /// y = x·Wᵀ + b; `scratch` holds `srcStagingBytes` (64-byte aligned).
    func forward(_ x: UnsafePointer<Float>, weight: UnsafePointer<Float>, bias b: UnsafePointer<Float>?, _ y: UnsafeMutablePointer<Float>,
                 scratch: UnsafeMutableRawPointer) {
        if convertedFrom != UnsafeRawPointer(weight) {
            userWeights.bind(weight)
            weightsReorder.execute(engine, [(DNNL_ARG_FROM, userWeights), (DNNL_ARG_TO, weights)])
            convertedFrom = UnsafeRawPointer(weight)
        }
        userSrc.bind(x)
        src.bind(scratch)
        srcReorder.execute(engine, [(DNNL_ARG_FROM, userSrc), (DNNL_ARG_TO, src)])
        dst.bind(y)
        var args: [(Int32, DNNLMemory)] = [(DNNL_ARG_SRC, src), (DNNL_ARG_WEIGHTS, weights), (DNNL_ARG_DST, dst)]
        if let b { bias.bind(b); args.append((DNNL_ARG_BIAS, bias)) }
        matmul.execute(engine, args)
    }
}

/// The `linear` op of a bf16 inference plan on oneDNN (DNNLLinear), the fused activation after it.
struct DNNLLinearBF16: StepKernel {
    let rows: Int, inF: Int, outF: Int
    let linear: DNNLLinear

    /// Inference plans in bf16 whose weight is a parameter (converted once); nil otherwise (f32 GEMM).
    static func select(_ r: KernelRequest, rows: Int, inF: Int, outF: Int) throws -> DNNLLinearBF16? {
        guard DNNL.isEnabled, r.layout.bf16, !r.training, r.layout.constantWeights, rows > 0, inF > 0, outF > 0 else { return nil }
        let hasBias = r.inputShapes.count > 2 && r.inputShapes[2] != nil
        return DNNLLinearBF16(rows: rows, inF: inF, outF: outF, linear: try DNNLLinear(rows: rows, inF: inF, outF: outF, hasBias: hasBias))
    }

    func extents(inputs: [Int], outputs: [Int]) -> StepExtents {
        Linear(rows: rows, inF: inF, outF: outF).extents(inputs: inputs, outputs: outputs)
    }

    func forward(_ c: StepContext) throws {
        let scratch = UnsafeMutableRawPointer(c.executor.workspace.get(linear.srcStagingBytes / 4 + 16))
        let y = c.output()
        linear.forward(c.input(0)!, weight: c.input(1)!, bias: c.input(2).map { UnsafePointer($0) }, y, scratch: scratch)
        if c.fused != .none { applyActivation(c.fused, y, y, rows * outF) }
    }
}
