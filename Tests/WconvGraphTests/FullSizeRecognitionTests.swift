import Foundation
import WconvGraph
import WconvTensor
import XCTest

/// Recognises torchvision's and HF's full-size models from their real names and shapes
/// (fixtures/models/full_size_shapes.json, written by gen.py on the meta device). Tensors are
/// zero-stride views of one element: recognition and shape inference read shapes only.
final class FullSizeRecognitionTests: XCTestCase {
    func testFullSizeModels() throws {
        let data = try Data(contentsOf: URL(fileURLWithPath: Fixtures.dir + "/full_size_shapes.json"))
        let all = try XCTUnwrap(JSONSerialization.jsonObject(with: data) as? [String: [String: Any]])
        XCTAssertGreaterThanOrEqual(all.count, 14)
        XCTAssertTrue(all.values.contains { ($0["keys"] as? [[Any]])?.contains { $0.count == 3 } ?? false }, "int64 counters present")
        for (name, entry) in all.sorted(by: { $0.key < $1.key }) {
            let r = try ArchitectureRecognizer.recognizeDetailed(try Fixtures.shapesOnly(entry))
            if let v = entry["variant"] as? String { XCTAssertEqual(r.graph.variant, v, name) }
            let isText = r.graph.inputs.first?.name == "input_ids"
            let shapes = try r.graph.inferShapes(inputShapes: Dictionary(uniqueKeysWithValues: r.graph.inputs.map { ($0.name, isText ? [1, 8] : [1, 3, 224, 224]) }))
            XCTAssertEqual(shapes[r.graph.outputs[0].name], entry["output_shape"] as? [Int], name)
            if name == "bert_base" {
                XCTAssertEqual(r.graph.nodes.first { $0.op == .attention }?.int("heads"), 12, "768 / 64")
            }
        }
    }

    func testEfficientNetPresetsAndEps() throws {
        let data = try Data(contentsOf: URL(fileURLWithPath: Fixtures.dir + "/full_size_shapes.json"))
        let all = try XCTUnwrap(JSONSerialization.jsonObject(with: data) as? [String: [String: Any]])
        let b0 = try ArchitectureRecognizer.recognize(try Fixtures.shapesOnly(try XCTUnwrap(all["efficientnet_b0"])))
        XCTAssertEqual(b0.preprocessing?.inputSize, [224, 224])
        XCTAssertEqual(b0.preprocessing?.interpolation, "bicubic")
        XCTAssertEqual(b0.nodes.first { $0.op == .batchNorm }?.float("epsilon"), 1e-5)
        let b5 = try ArchitectureRecognizer.recognize(try Fixtures.shapesOnly(try XCTUnwrap(all["efficientnet_b5"])))
        XCTAssertEqual(b5.preprocessing?.inputSize, [456, 456])
        XCTAssertEqual(b5.nodes.first { $0.op == .batchNorm }?.float("epsilon"), 1e-3)
        let v2 = try ArchitectureRecognizer.recognize(try Fixtures.shapesOnly(try XCTUnwrap(all["efficientnet_v2_s"])))
        XCTAssertEqual(v2.preprocessing?.inputSize, [384, 384])
        XCTAssertEqual(v2.nodes.first { $0.op == .batchNorm }?.float("epsilon"), 1e-3)
    }
}
