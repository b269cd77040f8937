import Foundation
import XCTest
import WconvTestSupport

/// The committed protoc-c output must match schemas/onnx.proto (tools/regenerate-onnx --check).
/// Skipped where protoc-c is not installed: the build itself never needs it.
final class ONNXSchemaTests: XCTestCase {
    func testGeneratedCodeMatchesPinnedSchema() throws {
        let repo = Repo.root
        let hasProtocC = (ProcessInfo.processInfo.environment["PATH"] ?? "").split(separator: ":")
            .contains { FileManager.default.isExecutableFile(atPath: "\($0)/protoc-c") }
        try XCTSkipUnless(hasProtocC, "protoc-c not installed")
        let p = Process()
        p.executableURL = repo.appendingPathComponent("tools/regenerate-onnx")
        p.arguments = ["--check"]
        let pipe = Pipe()
        p.standardOutput = pipe
        p.standardError = pipe
        try p.run()
        p.waitUntilExit()
        let out = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        XCTAssertEqual(p.terminationStatus, 0, out)
    }
}
