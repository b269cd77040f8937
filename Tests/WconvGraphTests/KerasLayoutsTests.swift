import WconvGraph
import WconvTensor
import XCTest

/// Keras ↔ PyTorch weight permutes against index arithmetic, on the loop nest (rank ≤ 4) and the
/// strided-view path (rank 5), from contiguous, strided and f16 sources.
final class KerasLayoutsTests: XCTestCase {
    /// out[i] = in[j] where out index i, read in C order, names in index i[perm⁻¹] order.
    func reference(_ values: [Float], _ shape: [Int], _ perm: [Int]) -> [Float] {
        let outShape = perm.map { shape[$0] }
        let inStrides = Tensor.contiguousStrides(shape), outStrides = Tensor.contiguousStrides(outShape)
        return (0..<values.count).map { k in
            var src = 0
            for (d, p) in perm.enumerated() { src += (k / outStrides[d]) % outShape[d] * inStrides[p] }
            return values[src]
        }
    }

    func testPermuteMatchesIndexArithmetic() throws {
        for (shape, perm) in [([2, 3, 4, 5], KerasLayouts.convPerm), ([3, 4], KerasLayouts.densePerm), ([2, 3, 1, 2, 2], [4, 0, 3, 1, 2]),
                              ([5], [0]), ([2, 1, 3, 2, 2, 2], [5, 4, 3, 2, 1, 0])] {
            let n = shape.reduce(1, *)
            let values = (0..<n).map { Float($0) }
            let t = Tensor(shape: shape, floats: values)
            let out = try KerasLayouts.permute(t, perm)
            XCTAssertEqual(out.shape, perm.map { shape[$0] }, "\(shape) \(perm)")
            XCTAssertEqual(out.floats(), reference(values, shape, perm), "\(shape) \(perm)")
            XCTAssertTrue(out.isContiguous)
            XCTAssertEqual(try KerasLayouts.permute(out, KerasLayouts.inverse(perm)).floats(), values, "round trip \(shape) \(perm)")
            XCTAssertEqual(try KerasLayouts.permute(t.converted(to: .f16).tensor, perm).floats(), reference(values, shape, perm), "f16 \(shape)")
        }
        XCTAssertThrowsError(try KerasLayouts.permute(Tensor(shape: [2, 2], floats: [0, 1, 2, 3]), [0, 0]))
    }
}
