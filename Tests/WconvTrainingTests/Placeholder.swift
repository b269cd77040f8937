import XCTest
final class WconvTrainingTestsPlaceholder: XCTestCase { func testTargetBuilds() {} }
