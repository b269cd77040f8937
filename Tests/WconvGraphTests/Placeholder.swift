import XCTest
final class WconvGraphTestsPlaceholder: XCTestCase { func testTargetBuilds() {} }
