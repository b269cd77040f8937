import WconvGraph
import WconvTensor
import XCTest
@testable import WconvRuntime

/// Einsum's sgemm path against its reference loop (the loop itself against onnxruntime:
/// fixtures/onnx/ops/index_*), on the spellings that take the sgemm path and those that must not.
final class EinsumGemmTests: XCTestCase {
    func testGemmPathMatchesTheReferenceLoop() throws {
        let cases: [(String, [[Int]], Bool)] = [
            ("bij,bjk->bik", [[2, 3, 4], [2, 4, 5]], true), ("bhqd,bhkd->bhqk", [[1, 2, 3, 4], [1, 2, 5, 4]], true),
            ("i,j->ij", [[3], [4]], true), ("ij,j", [[3, 4], [4]], true), ("bhqk,bhkd->bhdq", [[2, 2, 3, 5], [2, 2, 5, 4]], true),
            ("abc,cd->dba", [[2, 3, 4], [4, 3]], true), ("ij,jk->", [[2, 3], [3, 4]], false), ("ii,ij->j", [[3, 3], [3, 2]], false),
        ]
        var rng = SplitMix64(seed: 3)
        for (eq, shapes, gemm) in cases {
            let p = try EinsumOps.plan(eq, shapes) { WconvError.invalid($0) }
            let g = EinsumGemm(p)
            XCTAssertEqual(g != nil, gemm, eq)
            guard let g else { continue }
            let a = (0..<shapes[0].reduce(1, *)).map { _ in rng.nextGaussian() }, b = (0..<shapes[1].reduce(1, *)).map { _ in rng.nextGaussian() }
            let count = p.outShape.reduce(1, *)
            var viaGemm = [Float](repeating: .nan, count: count), viaLoop = [Float](repeating: .nan, count: count)
            let reference = EinsumLoop(dims: p.sizes, outer: p.outputCount,
                                       destStrides: rowMajorStrides(p.outShape) + [Int](repeating: 0, count: p.letters.count - p.outputCount),
                                       sourceStrides: p.strides)
            a.withUnsafeBufferPointer { pa in
                b.withUnsafeBufferPointer { pb in
                    g.run(pa.baseAddress!, pb.baseAddress!, &viaGemm)
                    reference.run([pa.baseAddress!, pb.baseAddress!], &viaLoop, accumulate: false)
                }
            }
            assertClose(viaGemm, viaLoop, rtol: 1e-5, atol: 1e-6, eq)
        }
    }
}
