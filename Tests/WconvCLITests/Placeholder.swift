import XCTest
final class WconvCLITestsPlaceholder: XCTestCase { func testTargetBuilds() {} }
