import Foundation
import WconvGraph
import WconvTensor
import XCTest

final class CanonicalModelTests: XCTestCase {
    func assertSameGraph(_ a: ModelGraph, _ b: ModelGraph, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(a.nodes, b.nodes, file: file, line: line)
        XCTAssertEqual(a.inputs, b.inputs, file: file, line: line)
        XCTAssertEqual(a.outputs, b.outputs, file: file, line: line)
        XCTAssertEqual(a.buffers, b.buffers, file: file, line: line)
        XCTAssertEqual(a.architecture, b.architecture, file: file, line: line)
        XCTAssertEqual(a.variant, b.variant, file: file, line: line)
        XCTAssertEqual(a.preprocessing, b.preprocessing, file: file, line: line)
        XCTAssertEqual(a.labels, b.labels, file: file, line: line)
        XCTAssertEqual(a.provenance, b.provenance, file: file, line: line)
        XCTAssertEqual(a.layoutTransforms, b.layoutTransforms, file: file, line: line)
        XCTAssertEqual(a.aliases, b.aliases, file: file, line: line)
        XCTAssertEqual(Array(a.parameters.keys), Array(b.parameters.keys), file: file, line: line)
        for (k, t) in a.parameters { XCTAssertTrue(t.bitwiseEqual(b.parameters[k]!), k, file: file, line: line) }
    }

    func testRoundTripEveryFixture() throws {
        for (name, m) in try Fixtures.manifest() {
            let st = try XCTUnwrap((m["files"] as? [String])?.first { $0.hasSuffix(".safetensors") })
            let sub = st.contains("/") ? String(st.split(separator: "/")[0]) : nil
            var g = try ArchitectureRecognizer.recognize(try Fixtures.readSafetensors(st), configJSON: sub.flatMap(Fixtures.config))
            g.labels = (0..<3).map { "class \($0) — ü" }
            g.provenance = Provenance(sourceFile: "x/\(name).pth", sourceSHA256: "ab", sourceFormat: "pytorch-zip", toolVersion: "0.1.0", notes: ["seed": "1"])
            g.layoutTransforms = ["fc.weight": LayoutTransform(kind: "permute", perm: [1, 0], sourceShape: [3, 4])]
            let bundle = CanonicalModel.bundle(from: g)
            XCTAssertEqual(bundle.metadata["format"], "pt")
            for k in ["wconv.graph", "wconv.preprocess", "wconv.labels", "wconv.provenance"] where !(k == "wconv.preprocess" && g.preprocessing == nil) {
                XCTAssertNotNil(bundle.metadata[k], "\(name): \(k)")
            }
            XCTAssertEqual(Set(bundle.tensors.keys), Set(g.parameters.keys), "tensor names are the parameter names")
            // A reader need not keep the order: shuffle it.
            var shuffled = bundle
            shuffled.tensors = .init(uniqueKeysWithValues: bundle.tensors.reversed().map { ($0.key, $0.value) })
            let back = try CanonicalModel.graph(from: shuffled)
            assertSameGraph(g, back)
        }
    }

    func testFloatAttributesSurviveExactly() throws {
        var g = ModelGraph(inputs: [ValueInfo(name: "x", shape: [nil, 4])])
        g.nodes = [GraphNode(name: "c", op: .clip, inputs: ["x"], outputs: ["y"],
                             attributes: ["min": .float(0.1), "max": .float(1.0 / 3.0), "k": .int(1), "f": .float(1.0), "fs": .floats([1e-12, -0.0])])]
        g.outputs = [ValueInfo(name: "y", shape: [nil, 4])]
        let back = try CanonicalModel.graph(from: CanonicalModel.bundle(from: g))
        XCTAssertEqual(back.nodes, g.nodes)
        XCTAssertEqual(back.nodes[0].attributes["f"], .float(1.0), "a float 1.0 stays a float")
    }

    func testAliasesStoredOnce() throws {
        var g = ModelGraph()
        g.parameters["emb.weight"] = Tensor(shape: [2, 2], floats: [1, 2, 3, 4])
        g.parameters["head.weight"] = g.parameters["emb.weight"]
        g.aliases = ["head.weight": "emb.weight"]
        let b = CanonicalModel.bundle(from: g)
        XCTAssertEqual(Array(b.tensors.keys), ["emb.weight"])
        let back = try CanonicalModel.graph(from: b)
        XCTAssertEqual(Array(back.parameters.keys), ["emb.weight", "head.weight"])
        XCTAssertEqual(back.aliases, g.aliases)
    }

    func testBadMetadataIsInvalidInput() {
        var b = TensorBundle(format: "safetensors")
        XCTAssertThrowsError(try CanonicalModel.graph(from: b)) { XCTAssertTrue("\($0)".contains("wconv.graph")) }
        b.metadata["wconv.graph"] = "{\"version\": 1, \"nodes\": 3}"
        XCTAssertThrowsError(try CanonicalModel.graph(from: b)) { XCTAssertEqual(($0 as? WconvError)?.kind, .invalidInput) }
        b.metadata["wconv.graph"] = "{\"version\":1,\"nodes\":[{\"name\":\"n\",\"op\":\"relu\",\"inputs\":[\"ghost\"],\"outputs\":[\"y\"],\"attrs\":{}}],\"inputs\":[],\"outputs\":[],\"buffers\":[]}"
        XCTAssertThrowsError(try CanonicalModel.graph(from: b)) { XCTAssertTrue("\($0)".contains("ghost")) }
        b.metadata["wconv.graph"] = "{\"version\":99,\"nodes\":[],\"inputs\":[],\"outputs\":[],\"buffers\":[]}"
        XCTAssertThrowsError(try CanonicalModel.graph(from: b)) { XCTAssertTrue("\($0)".contains("version 99")) }
    }
}
