import Foundation
import XCTest
@testable import WconvRuntime

/// Replays FuzzGraph's committed corpus (fixtures/fuzz/FuzzGraph, minimised by `tools/fuzz
/// FuzzGraph`; crash reproducers included) through the same entry the fuzzer calls: every recipe
/// must end in a result or a thrown error, never a crash (tools/test also runs this under ASan).
final class GraphFuzzCorpusTests: XCTestCase {
    static let corpus = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("fixtures/fuzz/FuzzGraph").path

    func testCorpusReplays() throws {
        let files = try FileManager.default.contentsOfDirectory(atPath: Self.corpus).sorted()
        XCTAssertGreaterThan(files.count, 10, "the committed corpus is missing")
        var ran = 0
        for f in files {
            let data = try Data(contentsOf: URL(fileURLWithPath: Self.corpus + "/" + f))
            if data.withUnsafeBytes({ fuzzRuntimeGraph($0) }) { ran += 1 }
        }
        print("FuzzGraph corpus: \(files.count) recipes, \(ran) ran to the end, \(files.count - ran) refused with an error")
    }

    /// The recipes build graphs that mostly run: a generator whose graphs were all refused would
    /// fuzz nothing past the first check. WCONV_FUZZ_RECIPES=N sweeps more (a quick fuzz without libFuzzer).
    func testRandomRecipesMostlyRun() {
        var rng = SplitMix64(seed: UInt64(ProcessInfo.processInfo.environment["WCONV_FUZZ_SEED"] ?? "") ?? 11)
        var ran = 0
        let n = Int(ProcessInfo.processInfo.environment["WCONV_FUZZ_RECIPES"] ?? "") ?? 200
        for _ in 0..<n {
            let bytes = (0..<96).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
            // WCONV_FUZZ_LAST=FILE keeps the recipe being run, to turn a crash into a corpus entry.
            if let keep = ProcessInfo.processInfo.environment["WCONV_FUZZ_LAST"] { FileManager.default.createFile(atPath: keep, contents: Data(bytes)) }
            if bytes.withUnsafeBytes({ fuzzRuntimeGraph($0) }) { ran += 1 }
        }
        print("FuzzGraph: \(ran) of \(n) random recipes ran")
        XCTAssertGreaterThan(ran, n / 2)
    }
}
