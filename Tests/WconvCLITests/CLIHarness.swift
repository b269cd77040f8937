import Foundation
import XCTest
import WconvTestSupport

/// Runs the built `wconv` binary. SwiftPM test targets cannot depend on the executable, so the
/// binary is looked up beside the test bundle (or via WCONV_BIN); `tools/test` builds it first and
/// the tests skip, saying so, when it is missing.
enum CLI {
    static let root = Repo.root

    static func fixture(_ rel: String) -> String { Repo.fixture(rel) }

    static var binary: String? {
        var candidates: [String] = []
        if let env = ProcessInfo.processInfo.environment["WCONV_BIN"] { candidates.append(env) }
        for b in Bundle.allBundles { candidates.append(b.bundleURL.deletingLastPathComponent().appendingPathComponent("wconv").path) }
        candidates.append(root.appendingPathComponent(".build/debug/wconv").path)
        return candidates.first { FileManager.default.isExecutableFile(atPath: $0) }
    }

    struct Result {
        var status: Int32
        var stdout: String
        var stderr: String
    }

    /// Runs the binary with `args`; `environment` entries are added to this process's environment.
    static func run(_ args: [String], environment: [String: String] = [:], file: StaticString = #filePath, line: UInt = #line) throws -> Result {
        guard let bin = binary else {
            throw XCTSkip("the wconv binary is not built: run `swift build` (tools/test does) before `swift test`")
        }
        let p = Process()
        p.executableURL = URL(fileURLWithPath: bin)
        p.arguments = args
        if !environment.isEmpty { p.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 } }
        let out = Pipe(), err = Pipe()
        p.standardOutput = out
        p.standardError = err
        try p.run()
        // Read before waiting so a large output cannot fill the pipe and block the child.
        let o = out.fileHandleForReading.readDataToEndOfFile()
        let e = err.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        return Result(status: p.terminationStatus, stdout: String(decoding: o, as: UTF8.self), stderr: String(decoding: e, as: UTF8.self))
    }

    static func json(_ r: Result) throws -> [String: Any] {
        try XCTUnwrap(JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any], "stdout is not one JSON object: \(r.stdout)")
    }
}
