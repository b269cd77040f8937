import Foundation
import WconvGraph
import WconvTensor

/// Linear layers and batched matrix products through sgemm (docs/adding-an-op.md).
enum LinearKernels {
    static let all: [OpKernels] = [linear, matmul]

    static let linear = OpKernels(.linear) { r in
        let x = try r.shape(0), wt = try r.shape(1)
        if r.inputShapes.count > 2, let b = r.inputShapes[2], b.reduce(1, *) != wt[0] { throw r.fail("bias shape \(b) must be [\(wt[0])]") }
        try r.agree(Array(x.dropLast()) + [wt[0]])
        let rows = x.dropLast().reduce(1, *)
        if let bf16 = try DNNLLinearBF16.select(r, rows: rows, inF: wt[1], outF: wt[0]) { return bf16 }
        return Linear(rows: rows, inF: wt[1], outF: wt[0])
    }

    static let matmul = OpKernels(.matmul) { r in
        guard let p = MatmulPlan(try r.shape(0), try r.shape(1)) else { throw r.fail("matmul shapes do not fit") }
        try r.agree(p.outShape)
        return Matmul(plan: p)
    }
}

/// y = x·Wᵀ + b, with the fused activation in the epilogue.
struct Linear: StepKernel {
    let rows: Int, inF: Int, outF: Int
    func extents(inputs: [Int], outputs: [Int]) -> StepExtents {
        StepExtents(inputs, outputs) { $0.read(0, rows * inF); $0.read(1, outF * inF); $0.read(2, outF); $0.write(0, rows * outF) }
    }
    func forward(_ c: StepContext) throws {
        linearForward(c.input(0)!, rows: rows, inF: inF, outF: outF, weight: c.input(1)!, bias: c.input(2).map { UnsafePointer($0) },
                      activation: c.fused, c.output())
    }
    func backward(_ c: BackwardContext) throws {
        guard let dy = c.outputGradient() else { return }
        linearBackward(c.input(0)!, rows: rows, inF: inF, outF: outF, weight: c.input(1)!, dy: dy,
                       dx: c.inputGradient(0), dw: c.inputGradient(1), db: c.inputGradient(2))
    }
}

struct Matmul: StepKernel {
    let plan: MatmulPlan
    func extents(inputs: [Int], outputs: [Int]) -> StepExtents {
        let p = plan
        var e = StepExtents(inputs: inputs.count, outputs: outputs.count)
        if p.batch > 0 {
            e.read(0, (p.aOffsets.max() ?? 0) + p.m * p.k); e.read(1, (p.bOffsets.max() ?? 0) + p.k * p.n)
        } else { e.read(0, 0); e.read(1, 0) }
        e.write(0, p.batch * p.m * p.n)
        return e
    }
    func forward(_ c: StepContext) throws { matmulForward(c.input(0)!, c.input(1)!, plan, c.output()) }
    func backward(_ c: BackwardContext) throws {
        guard let dy = c.outputGradient() else { return }
        matmulBackward(c.input(0)!, c.input(1)!, plan, dy: dy, da: c.inputGradient(0), db: c.inputGradient(1))
    }
}
