import Foundation
import WconvGraph
import WconvTensor

/// Einsum (docs/adding-an-op.md). The reference is one strided loop: for every destination
/// element, the sum over the remaining letters of the product of the operands; the gradient of
/// operand k is the same loop with operand k's letters as the destination and the output gradient
/// among the sources. Two operands whose letters are each batch, row, column or contracted (the
/// exporters' batched matmuls and attention scores) run forward as one sgemm per batch instead.
enum EinsumKernels {
    static let all: [OpKernels] = [einsum]

    static let einsum = OpKernels(.einsum) { r in
        guard let eq = r.node.string("equation") else { throw r.fail("no equation attribute") }
        let shapes = try r.node.inputs.indices.map { try r.shape($0) }
        let p = try EinsumOps.plan(eq, shapes, fail: r.fail)
        try r.agree(p.outShape)
        return Einsum(plan: p, gemm: EinsumGemm(p))
    }
}

/// Row-major strides of `dims`.
func rowMajorStrides(_ dims: [Int]) -> [Int] {
    var st = [Int](repeating: 0, count: dims.count), acc = 1
    for i in stride(from: dims.count - 1, through: 0, by: -1) { st[i] = acc; acc *= dims[i] }
    return st
}

/// A two-operand einsum as batched sgemm: A gathered to [batch, m, k], B to [batch, k, n], the
/// product scattered to the output's letter order. nil when a letter is summed in one operand
/// only or repeated within one (those stay on the reference loop).
struct EinsumGemm {
    let batch: Int, m: Int, k: Int, n: Int
    let gatherA: EinsumLoop, gatherB: EinsumLoop, scatter: EinsumLoop

    init?(_ p: EinsumPlan) {
        guard p.operands.count == 2, p.operands.allSatisfy({ Set($0).count == $0.count }) else { return nil }
        var bl: [Int] = [], ml: [Int] = [], nl: [Int] = [], kl: [Int] = []
        for (i, c) in p.letters.enumerated() {
            let inA = p.operands[0].contains(c), inB = p.operands[1].contains(c), out = i < p.outputCount
            switch (inA, inB, out) {
            case (true, true, true): bl.append(i)
            case (true, false, true): ml.append(i)
            case (false, true, true): nl.append(i)
            case (true, true, false): kl.append(i)
            default: return nil
            }
        }
        let size = { (ls: [Int]) in ls.reduce(1) { $0 * p.sizes[$1] } }
        batch = size(bl); m = size(ml); k = size(kl); n = size(nl)
        func loop(_ ls: [Int], source: [Int]) -> EinsumLoop {
            let dims = ls.map { p.sizes[$0] }
            return EinsumLoop(dims: dims, outer: dims.count, destStrides: rowMajorStrides(dims), sourceStrides: [ls.map { source[$0] }])
        }
        gatherA = loop(bl + ml + kl, source: p.strides[0])
        gatherB = loop(bl + kl + nl, source: p.strides[1])
        let outLetters = bl + ml + nl, dims = outLetters.map { p.sizes[$0] }
        let outStrides = rowMajorStrides(Array(p.sizes.prefix(p.outputCount)))
        scatter = EinsumLoop(dims: dims, outer: dims.count, destStrides: outLetters.map { outStrides[$0] },
                             sourceStrides: [rowMajorStrides(dims)])
    }

    func run(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>) {
        guard batch * m * n > 0 else { return }
        var ga = [Float](repeating: 0, count: batch * m * k), gb = [Float](repeating: 0, count: batch * k * n)
        var c = [Float](repeating: 0, count: batch * m * n)
        ga.withUnsafeMutableBufferPointer { pa in
            gb.withUnsafeMutableBufferPointer { pb in
                c.withUnsafeMutableBufferPointer { pc in
                    gatherA.run([a], pa.baseAddress!, accumulate: false)
                    gatherB.run([b], pb.baseAddress!, accumulate: false)
                    if k > 0 {
                        for i in 0..<batch {
                            sgemm(transA: false, transB: false, m: m, n: n, k: k, a: pa.baseAddress! + i * m * k, lda: max(k, 1),
                                  b: pb.baseAddress! + i * k * n, ldb: max(n, 1), beta: 0, c: pc.baseAddress! + i * m * n, ldc: max(n, 1))
                        }
                    }
                    scatter.run([UnsafePointer(pc.baseAddress!)], y, accumulate: false)
                }
            }
        }
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
    /// The sgemm path when the letters allow it; nil: the reference loop.
    let gemm: EinsumGemm?

    func extents(inputs: [Int], outputs: [Int]) -> StepExtents {
        var e = StepExtents(inputs: inputs.count, outputs: outputs.count)
        for (k, st) in plan.strides.enumerated() { e.read(k, stridedSpan(plan.sizes, st)) }
        e.write(0, plan.outShape.reduce(1, *))
        return e
    }

    /// Row-major strides of the output over the plan's letters (0 for summed letters).
    var outStrides: [Int] { rowMajorStrides(Array(plan.sizes.prefix(plan.outputCount))) + [Int](repeating: 0, count: plan.letters.count - plan.outputCount) }

    func forward(_ c: StepContext) throws {
        if let gemm { gemm.run(c.input(0)!, c.input(1)!, c.output()); return }
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
