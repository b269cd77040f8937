import XCTest
final class WconvFormatsTestsPlaceholder: XCTestCase { func testTargetBuilds() {} }
