import XCTest
@testable import WconvTensor

final class DTypeConversionTests: XCTestCase {
    func testBF16RoundsToNearestEven() {
        // 1 + 2^-8 is exactly halfway between two bf16 values: ties go to the even mantissa (1.0).
        XCTAssertEqual(DTypeConversion.floatToBF16(1 + 0x1p-8), 0x3F80)
        // 1 + 3·2^-8 is halfway too; the even neighbour is 1 + 2^-6.
        XCTAssertEqual(DTypeConversion.floatToBF16(1 + 3 * 0x1p-8), 0x3F82)
        XCTAssertTrue(DTypeConversion.bf16ToFloat(DTypeConversion.floatToBF16(.nan)).isNaN)
    }

    func testNarrowingReportsOverflowAndFlush() {
        let t = Tensor(shape: [4], floats: [1e6, 1e-10, 1.5, 0])
        let (h, report) = t.converted(to: .f16)
        XCTAssertEqual(report.overflowed, 1)
        XCTAssertEqual(report.flushedToZero, 1)
        XCTAssertEqual(h.floats()[2], 1.5)
        XCTAssertTrue(h.floats()[0].isInfinite)
    }

    func testF8E4M3Decode() {
        XCTAssertEqual(DTypeConversion.f8e4m3ToFloat(0x38), 1.0)    // exponent 7, mantissa 0
        XCTAssertEqual(DTypeConversion.f8e4m3ToFloat(0x7E), 448.0)  // largest finite
        XCTAssertTrue(DTypeConversion.f8e4m3ToFloat(0x7F).isNaN)
        XCTAssertEqual(DTypeConversion.f8e4m3ToFloat(0x01), 0x1p-9) // smallest subnormal
    }

    func testStridedViewIsMaterialisedInCOrder() throws {
        // A 2x3 tensor viewed transposed (3x2, strides (1,3)).
        let base = Tensor(shape: [2, 3], floats: [1, 2, 3, 4, 5, 6])
        let t = try Tensor(dtype: .f32, shape: [3, 2], strides: [1, 3], storage: base.storage)
        XCTAssertFalse(t.isContiguous)
        XCTAssertEqual(t.floats(), [1, 4, 2, 5, 3, 6])
    }

    func testViewOutsideStorageIsRefused() {
        let base = Tensor(shape: [4], floats: [1, 2, 3, 4])
        XCTAssertThrowsError(try Tensor(dtype: .f32, shape: [3], offset: 2, storage: base.storage))
    }
}
