import Foundation
import WconvTensor
import WconvTestSupport
@testable import WconvTraining
import XCTest

final class TopKTests: XCTestCase {
    func testSoftmaxRowsBestFirstWithLabels() {
        let t = Tensor(shape: [2, 3], floats: [1, 3, 2, 0.5, -1, 4])
        let rows = TopK.rows(t, k: 2, labels: ["a", "b"])
        XCTAssertEqual(rows.map { $0.map(\.index) }, [[1, 2], [2, 0]])
        // Softmax by hand: e^x / Σ e^x over the whole row, not only the k shown.
        let z0 = exp(1.0) + exp(3.0) + exp(2.0)
        assertClose(rows[0].map(\.probability), [exp(3.0) / z0, exp(2.0) / z0], rtol: 1e-12, atol: 0)
        XCTAssertEqual(rows[0].map(\.label), ["b", nil])  // index 2 has no label
        XCTAssertEqual(rows[1].map(\.logit), [4, 0.5])
    }

    func testSigmoidForMultiLabel() {
        let rows = TopK.rows(Tensor(shape: [1, 2], floats: [0, 2]), k: 5, labels: nil, sigmoid: true)
        XCTAssertEqual(rows[0].map(\.index), [1, 0])
        assertClose(rows[0].map(\.probability), [1 / (1 + exp(-2.0)), 0.5], rtol: 1e-12, atol: 0)
    }
}
