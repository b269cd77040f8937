import XCTest
final class WconvRuntimeTestsPlaceholder: XCTestCase { func testTargetBuilds() {} }
