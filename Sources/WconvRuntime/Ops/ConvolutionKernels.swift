import Foundation
import WconvGraph
import WconvTensor

/// Convolutions (docs/adding-an-op.md). conv2d: im2col + sgemm, 1×1 straight into GEMM, depthwise
/// as a direct loop (Kernels/Conv2d.swift); the activation fused by inference runs in its epilogue.
/// conv1d is the same kernel over [N, C, 1, L].
enum ConvolutionKernels {
    static let all: [OpKernels] = [conv1d, conv2d, convTranspose1d, convTranspose2d]

    /// Runs as the adjoint of the convolution from the output space back to the input space: that
    /// convolution's geometry (input = this op's output) must map the output onto the input exactly.
    static let convTranspose2d = OpKernels(.convTranspose2d) { r in try convTranspose(r, spatial: 2) }
    /// convTranspose2d over [N, C, 1, L] (ConvolutionOps.liftedTo2d).
    static let convTranspose1d = OpKernels(.convTranspose1d) { r in try convTranspose(r, spatial: 1) }

    static func convTranspose(_ r: KernelRequest, spatial k: Int) throws -> ConvTranspose2d {
        var x = try r.shape(0), wt = try r.shape(1)
        let t = try ConvolutionOps.convTransposeGeometry(r.node, x: x, w: wt, spatial: k, fail: r.fail)
        try r.agree(t.outShape)
        let node = k == 1 ? ConvolutionOps.liftedTo2d(r.node) : r.node
        var out = t.outShape, p = t.pads
        if k == 1 { x.insert(1, at: 2); wt.insert(1, at: 2); out.insert(1, at: 2); p = [0, p[0], 0, p[1]] }
        let groups = node.int("group") ?? 1
        guard let st = node.ints("strides", count: 2, default: 1), let d = node.ints("dilations", count: 2, default: 1) else {
            throw r.fail("strides and dilations need \(k) values")
        }
        let g = ConvGeometry(n: x[0], c: out[1], h: out[2], w: out[3], o: x[1], kh: wt[2], kw: wt[3],
                             sh: st[0], sw: st[1], pt: p[0], pl: p[1], pb: p[2], pr: p[3], dh: d[0], dw: d[1], groups: groups)
        guard g.ho == x[2], g.wo == x[3] else { throw r.fail("internal: the adjoint convolution maps \(out) to [\(g.ho), \(g.wo)], not the input") }
        return ConvTranspose2d(geometry: g)
    }

    /// conv2d runs on oneDNN where that is faster (inference: DNNLConv2d.select, training plans:
    /// DNNLTrainConv2d.select, forward and backward), else im2col + GEMM; in inference a 1×1 conv of
    /// a 1×1 map (squeeze-excite) is one small GEMM (MapVectorConv2d).
    static let conv2d = OpKernels(.conv2d) { r in
        let g = try convGeometry(r, spatial: 2)
        if r.training {
            if let k = try DNNLTrainConv2d.select(r, g) { return k }
        } else if let k = MapVectorConv2d.select(r, g) {
            return k
        } else if let k = try DNNLConv2d.select(r, g) { return k }
        return Conv2d(geometry: g)
    }
    static let conv1d = OpKernels(.conv1d) { r in Conv2d(geometry: try convGeometry(r, spatial: 1)) }

    /// The 2-D geometry of a convolution over `spatial` (1 or 2) trailing dims: a 1-D one is read as
    /// [N, C, 1, L] with an (O, C/group, 1, K) weight, which is the same memory.
    static func convGeometry(_ r: KernelRequest, spatial k: Int) throws -> ConvGeometry {
        var x = try r.shape(0), wt = try r.shape(1)
        guard x.count == 2 + k, wt.count == 2 + k, wt.allSatisfy({ $0 > 0 }) else {
            throw r.fail("expects an input and a weight of rank \(2 + k) with positive weight dims")
        }
        let groups = r.node.int("group") ?? 1
        guard groups >= 1, x[1] % groups == 0, wt[0] % groups == 0, wt[1] * groups == x[1] else {
            throw r.fail("weight \(wt) with group \(groups) does not fit \(x[1]) input channels")
        }
        if r.inputShapes.count > 2, let b = r.inputShapes[2], b.reduce(1, *) != wt[0] { throw r.fail("bias shape \(b) must be [\(wt[0])]") }
        var st = try r.attr("strides", k, 1), d = try r.attr("dilations", k, 1), p = try r.attr("pads", 2 * k, 0)
        if k == 1 {
            x.insert(1, at: 2); wt.insert(1, at: 2); st.insert(1, at: 0); d.insert(1, at: 0); p = [0, p[0], 0, p[1]]
        }
        let g = ConvGeometry(n: x[0], c: x[1], h: x[2], w: x[3], o: wt[0], kh: wt[2], kw: wt[3], sh: st[0], sw: st[1],
                             pt: p[0], pl: p[1], pb: p[2], pr: p[3], dh: d[0], dw: d[1], groups: groups)
        try r.agree(k == 1 ? [g.n, g.o, g.wo] : [g.n, g.o, g.ho, g.wo])
        return g
    }
}

struct Conv2d: StepKernel {
    let geometry: ConvGeometry
    func extents(inputs: [Int], outputs: [Int]) -> StepExtents {
        let g = geometry
        return StepExtents(inputs, outputs) {
            $0.read(0, g.n * g.c * g.h * g.w); $0.read(1, g.o * g.cg * g.kh * g.kw); $0.read(2, g.o)
            $0.write(0, g.n * g.o * g.ho * g.wo)
        }
    }
    func forward(_ c: StepContext) throws {
        let e = c.executor
        conv2dForward(c.input(0)!, geometry, weight: c.input(1)!, bias: c.input(2).map { UnsafePointer($0) }, activation: c.fused,
                      c.output(), workspace: e.workspace, staging: e.staging)
    }
    func backward(_ c: BackwardContext) throws {
        guard let dy = c.outputGradient() else { return }
        let e = c.executor
        conv2dBackward(c.input(0)!, geometry, weight: c.input(1)!, dy: dy, dx: c.inputGradient(0), dw: c.inputGradient(1), db: c.inputGradient(2),
                       workspace: e.workspace, staging: e.staging, staging2: e.staging2)
    }
}

/// Transposed convolution through the convolution kernels: forward is the convolution's input
/// gradient (Wᵀ·x then col2im), the input gradient is a convolution of dy, the weight gradient the
/// convolution's weight gradient with the roles of input and output swapped.
struct ConvTranspose2d: StepKernel {
    /// The convolution this op is the adjoint of (its input is this op's output).
    let geometry: ConvGeometry
    var outCount: Int { geometry.n * geometry.c * geometry.hw }

    func extents(inputs: [Int], outputs: [Int]) -> StepExtents {
        // Input is the adjoint convolution's output, the written output its input.
        let g = geometry
        return StepExtents(inputs, outputs) {
            $0.read(0, g.n * g.o * g.ho * g.wo); $0.read(1, g.o * g.cg * g.kh * g.kw); $0.read(2, g.c)
            $0.write(0, outCount)
        }
    }
    func forward(_ c: StepContext) throws {
        let g = geometry, e = c.executor, x = c.input(0)!, y = c.output()
        fillFloats(y, with: 0, count: outCount)
        // The convolution's input slot is only read for its weight gradient (not computed here); it
        // still gets a buffer of the convolution-input size (y) since the depthwise loop reads it.
        conv2dBackward(UnsafePointer(y), g, weight: c.input(1)!, dy: x, dx: y, dw: nil, db: nil, workspace: e.workspace, staging: e.staging, staging2: e.staging2)
        if let b = c.input(2) {
            let plane = g.hw
            Parallel.forRange(g.n * g.c, costPerItem: plane) { range in
                for nc in range { let v = b[nc % g.c], p = y + nc * plane; for i in 0..<plane { p[i] += v } }
            }
        }
    }

    func backward(_ c: BackwardContext) throws {
        guard let dy = c.outputGradient() else { return }
        let g = geometry, e = c.executor, x = c.input(0)!
        if let db = c.inputGradient(2) {
            for ch in 0..<g.c {
                var s: Float = 0
                for img in 0..<g.n { let p = dy + (img * g.c + ch) * g.hw; for i in 0..<g.hw { s += p[i] } }
                db[ch] += s
            }
        }
        if let dw = c.inputGradient(1) {
            conv2dBackward(dy, g, weight: c.input(1)!, dy: x, dx: nil, dw: dw, db: nil, workspace: e.workspace, staging: e.staging, staging2: e.staging2)
        }
        if let dx = c.inputGradient(0) {
            let n = g.n * g.o * g.howo
            var tmp = [Float](repeating: 0, count: n)
            tmp.withUnsafeMutableBufferPointer { t in
                conv2dForward(dy, g, weight: c.input(1)!, bias: nil, activation: .none, t.baseAddress!, workspace: e.workspace, staging: e.staging)
                for i in 0..<n { dx[i] += t[i] }
            }
        }
    }
}
