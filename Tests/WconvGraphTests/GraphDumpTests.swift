import Foundation
import WconvGraph
import XCTest

/// Writes each fixture's recognised graph as canonical `wconv.graph` JSON into
/// `$WCONV_DUMP_GRAPHS/NAME.graph.json` so tools/fixtures/models/check_graphs.py can execute it with
/// PyTorch ops and compare against the fixture's eval output — a check of the graph semantics
/// (strides, pads, eps, activations, residuals) independent of wconv's runtime. Skipped unless set.
final class GraphDumpTests: XCTestCase {
    func testDumpGraphs() throws {
        guard let out = ProcessInfo.processInfo.environment["WCONV_DUMP_GRAPHS"] else {
            throw XCTSkip("set WCONV_DUMP_GRAPHS=DIR to dump graphs for tools/fixtures/models/check_graphs.py")
        }
        try FileManager.default.createDirectory(atPath: out, withIntermediateDirectories: true)
        for (name, m) in try Fixtures.manifest() {
            let st = try XCTUnwrap((m["files"] as? [String])?.first { $0.hasSuffix(".safetensors") })
            let sub = st.contains("/") ? String(st.split(separator: "/")[0]) : nil
            let g = try ArchitectureRecognizer.recognize(try Fixtures.readSafetensors(st), configJSON: sub.flatMap(Fixtures.config))
            let json = try XCTUnwrap(CanonicalModel.bundle(from: g).metadata[CanonicalModel.graphKey])
            try json.write(toFile: "\(out)/\(name).graph.json", atomically: true, encoding: .utf8)
        }
    }
}
