import WconvTensor
import XCTest

/// `inspect --stats`: NaN and ±inf are counted, not summed; std is the population deviation.
final class TensorStatsTests: XCTestCase {
    func testFiniteMomentsAndNonFiniteCounts() {
        let s = TensorStats(Tensor(shape: [6], floats: [1, 2, 3, 4, .nan, -.infinity]))
        XCTAssertEqual(s.finite, 4)
        XCTAssertEqual(s.nanCount, 1)
        XCTAssertEqual(s.infCount, 1)
        XCTAssertEqual(s.mean, 2.5)
        XCTAssertEqual(s.std, 1.25.squareRoot(), accuracy: 1e-12)
        XCTAssertEqual(s.min, -.infinity)
        XCTAssertEqual(s.max, 4)
        // A large offset does not cancel the variance away (the shift is the first value).
        let shifted = TensorStats(Tensor(shape: [2], floats: [1e7, 1e7 + 2]))
        XCTAssertEqual(shifted.std, 1, accuracy: 1e-9)
        let empty = TensorStats(Tensor(shape: [1], floats: [.nan]))
        XCTAssertTrue(empty.mean.isNaN && empty.min.isNaN)
    }
}
