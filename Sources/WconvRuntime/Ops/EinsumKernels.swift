import Foundation
import WconvGraph
import WconvTensor

/// Einsum (docs/adding-an-op.md) as one strided loop: for every destination element, the sum over
/// the remaining letters of the product of the operands. The gradient of operand k is the same loop
/// with operand k's letters as the destination and the output gradient among the sources. A
/// reference implementation (no BLAS): exporters emit einsum for small attention and bilinear terms.
enum EinsumKernels {
    static let all: [OpKernels] = [einsum]

    static let einsum = OpKernels(.einsum) { r in
        guard let eq = r.node.string("equation") else { throw r.fail("no equation attribute") }
        let shapes = try r.node.inputs.indices.map { try r.shape($0) }
        let p = try EinsumOps.plan(eq, shapes, fail: r.fail)
        try r.agree(p.outShape)
        return Einsum(plan: p, counts: shapes.map { $0.reduce(1, *) })
    }
}

/// One strided product-sum: `dims` are the loop sizes, the first `outer` of them index the
/// destination through `destStrides`; `sources` give each operand's strides over all dims.
struct EinsumLoop {
    let dims: [Int]
    let outer: Int
    let destStrides: [Int]
    let sourceStrides: [[Int]]

    func run(_ sources: [UnsafePointer<Float>], _ dest: UnsafeMutablePointer<Float>, accumulate: Bool) {
        let outerDims = Array(dims.prefix(outer)), innerDims = Array(dims.dropFirst(outer))
        let outerCount = outerDims.reduce(1, *), innerCount = innerDims.reduce(1, *)
        if outerCount == 0 { return }
        let n = sources.count
        var oi = [Int](repeating: 0, count: outerDims.count)
        var ii = [Int](repeating: 0, count: innerDims.count)
        var base = [Int](repeating: 0, count: n)
        for _ in 0..<outerCount {
            var dOff = 0
            for d in 0..<outer { dOff += oi[d] * destStrides[d] }
            for s in 0..<n {
                var off = 0
                for d in 0..<outer { off += oi[d] * sourceStrides[s][d] }
                base[s] = off
            }
            var acc = 0.0
            if innerCount > 0 {
                for j in ii.indices { ii[j] = 0 }
                for _ in 0..<innerCount {
                    var prod = 1.0
                    for s in 0..<n {
                        var off = base[s]
                        for d in 0..<innerDims.count { off += ii[d] * sourceStrides[s][outer + d] }
                        prod *= Double(sources[s][off])
                    }
                    acc += prod
                    var d = innerDims.count - 1
                    while d >= 0 { ii[d] += 1; if ii[d] < innerDims[d] { break }; ii[d] = 0; d -= 1 }
                }
            }
            if accumulate { dest[dOff] += Float(acc) } else { dest[dOff] = Float(acc) }
            var d = outer - 1
            while d >= 0 { oi[d] += 1; if oi[d] < outerDims[d] { break }; oi[d] = 0; d -= 1 }
        }
    }
}

struct Einsum: StepKernel {
    let plan: EinsumPlan
    let counts: [Int]

    func extents(inputs: [Int], outputs: [Int]) -> StepExtents {
        var e = StepExtents(inputs: inputs.count, outputs: outputs.count)
        for (k, st) in plan.strides.enumerated() { e.read(k, stridedSpan(plan.sizes, st)) }
        e.write(0, plan.outShape.reduce(1, *))
        return e
    }

    /// Row-major strides of the output over the plan's letters (0 for summed letters).
    var outStrides: [Int] {
        var st = [Int](repeating: 0, count: plan.letters.count), acc = 1
        for i in stride(from: plan.outputCount - 1, through: 0, by: -1) { st[i] = acc; acc *= plan.sizes[i] }
        return st
    }

    func forward(_ c: StepContext) throws {
        let loop = EinsumLoop(dims: plan.sizes, outer: plan.outputCount, destStrides: outStrides, sourceStrides: plan.strides)
        loop.run(plan.strides.indices.map { UnsafePointer(c.input($0)!) }, c.output(), accumulate: false)
    }

    /// d operand k = Σ over the other letters of dy · the other operands, written through operand
    /// k's strides (a repeated letter writes its diagonal only).
    func backward(_ c: BackwardContext) throws {
        guard let dy = c.outputGradient() else { return }
        let out = outStrides
        for k in plan.strides.indices {
            guard let dx = c.inputGradient(k) else { continue }
            // Destination letters: those operand k has (distinct), first; all others summed.
            let mine = plan.letters.indices.filter { plan.operands[k].contains(plan.letters[$0]) }
            let rest = plan.letters.indices.filter { !mine.contains($0) }
            let order = mine + rest
            let others = plan.strides.indices.filter { $0 != k }
            let loop = EinsumLoop(dims: order.map { plan.sizes[$0] }, outer: mine.count, destStrides: mine.map { plan.strides[k][$0] },
                                  sourceStrides: [order.map { out[$0] }] + others.map { o in order.map { plan.strides[o][$0] } })
            loop.run([dy] + others.map { UnsafePointer(c.input($0)!) }, dx, accumulate: true)
        }
    }
}
