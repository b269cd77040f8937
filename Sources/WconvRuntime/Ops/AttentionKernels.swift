import Foundation
import WconvGraph
import WconvTensor

/// Multi-head attention with an optional additive mask (docs/adding-an-op.md).
enum AttentionKernels {
    static let all: [OpKernels] = [attention]

    static let attention = OpKernels(.attention) { r in
        let q = try r.shape(0), k = try r.shape(1)
        let heads = r.node.int("heads") ?? 1
        let g = AttentionGeometry(b: q[0], tq: q[1], tk: k[1], d: q[2], heads: heads, kvBatch: k[0],
                                  scale: Float(r.node.float("scale") ?? 1 / Double(q[2] / heads).squareRoot()))
        let mask = r.inputShapes.count > 3 ? r.inputShapes[3] : nil
        return Attention(geometry: g, maskShape: mask, maskStrides: mask.map { broadcastStrides($0, to: [g.b, g.heads, g.tq, g.tk]) } ?? [0, 0, 0, 0],
                         dropout: Float(r.node.float("dropout") ?? 0))
    }
}

/// Saved state (training plans only): the probabilities, then the dropout mask on them when the
/// node has a dropout ratio. The additive mask is read in place through broadcast strides; backward
/// needs only the probabilities it shaped.
struct Attention: StepKernel {
    let geometry: AttentionGeometry
    let maskShape: [Int]?
    /// Strides of the mask over [B, heads, Tq, Tk], 0 on broadcast dims.
    let maskStrides: [Int]
    /// Dropout ratio on the probabilities in training.
    let dropout: Float
    var full: Int { geometry.b * geometry.heads * geometry.probsPerHead }
    func extents(inputs: [Int], outputs: [Int]) -> StepExtents {
        let g = geometry
        var e = StepExtents(inputs: inputs.count, outputs: outputs.count)
        e.read(0, g.b * g.tq * g.d); e.read(1, g.kvBatch * g.tk * g.d); e.read(2, g.kvBatch * g.tk * g.d)
        if let maskShape { e.read(3, maskShape.reduce(1, *)) }
        e.write(0, g.b * g.tq * g.d)
        return e
    }
    func auxFloats(training: Bool) -> Int { training ? full * (dropout > 0 ? 2 : 1) : 0 }

    func forward(_ c: StepContext) throws {
        let g = geometry, e = c.executor
        // Probabilities: kept per step for backward in training plans, scratch otherwise.
        let probs = e.keepAllValues ? c.aux! : e.staging2.get(full)
        var drop: UnsafePointer<Float>?
        if c.training && dropout > 0, let aux = c.aux {
            dropoutMask(aux + full, count: full, ratio: dropout, rng: &c.executor.rng)
            drop = UnsafePointer(aux + full)
        }
        attentionForward(c.input(0)!, c.input(1)!, c.input(2)!, mask: maskShape == nil ? nil : c.input(3), maskStrides: maskStrides,
                         g, probs: probs, dropoutMask: drop, c.output())
    }

    func backward(_ c: BackwardContext) throws {
        guard let dy = c.outputGradient() else { return }
        let mask = c.lastForwardTraining && dropout > 0 ? UnsafePointer(c.aux! + full) : nil
        attentionBackward(c.input(0)!, c.input(1)!, c.input(2)!, geometry, probs: c.aux!, dropoutMask: mask, dy: dy,
                          dq: c.inputGradient(0), dk: c.inputGradient(1), dv: c.inputGradient(2))
    }
}
