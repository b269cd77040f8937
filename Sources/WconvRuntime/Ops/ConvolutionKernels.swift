import Foundation
import WconvGraph
import WconvTensor

/// Convolutions (docs/adding-an-op.md). conv2d: im2col + sgemm, 1×1 straight into GEMM, depthwise
/// as a direct loop (Kernels/Conv2d.swift); the activation fused by inference runs in its epilogue.
enum ConvolutionKernels {
    static let all: [OpKernels] = [conv2d]

    static let conv2d = OpKernels(.conv2d) { r in
        let x = try r.shape(0), wt = try r.shape(1)
        guard x.count == 4, wt.count == 4, wt.allSatisfy({ $0 > 0 }) else { throw r.fail("conv2d expects an NCHW input and an OIHW weight with positive dims") }
        let groups = r.node.int("group") ?? 1
        guard groups >= 1, x[1] % groups == 0, wt[0] % groups == 0, wt[1] * groups == x[1] else {
            throw r.fail("weight \(wt) with group \(groups) does not fit \(x[1]) input channels")
        }
        if r.inputShapes.count > 2, let b = r.inputShapes[2], b.reduce(1, *) != wt[0] { throw r.fail("bias shape \(b) must be [\(wt[0])]") }
        let st = try r.attr("strides", 2, 1), d = try r.attr("dilations", 2, 1), p = try r.attr("pads", 4, 0)
        let g = ConvGeometry(n: x[0], c: x[1], h: x[2], w: x[3], o: wt[0], kh: wt[2], kw: wt[3], sh: st[0], sw: st[1],
                             pt: p[0], pl: p[1], pb: p[2], pr: p[3], dh: d[0], dw: d[1], groups: groups)
        try r.agree([g.n, g.o, g.ho, g.wo])
        return Conv2d(geometry: g)
    }
}

struct Conv2d: StepKernel {
    let geometry: ConvGeometry
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
