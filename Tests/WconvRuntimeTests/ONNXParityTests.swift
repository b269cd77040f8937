import Foundation
import WconvFormats
import WconvGraph
import WconvTensor
import XCTest
@testable import WconvRuntime

/// ONNX models imported through WconvGraph's ONNX builder, run by the runtime, compared with
/// onnxruntime's outputs on the seeded probes that tools/fixtures/onnx/gen.py recorded.
final class ONNXParityTests: XCTestCase {
    struct Probe: Decodable {
        struct Value: Decodable { var dtype: String; var shape: [Int]; var values: [Double] }
        var inputs: [String: Value]
        var outputs: [String: Value]
    }

    let dir = TorchParityTests.fixturesDir().appendingPathComponent("onnx")

    func probeNames() throws -> [String] {
        try FileManager.default.contentsOfDirectory(atPath: dir.appendingPathComponent("probes").path)
            .filter { $0.hasSuffix(".json") }.map { String($0.dropLast(5)) }.sorted()
    }

    func run(_ name: String) throws -> (worstAbs: Double, ok: Bool, detail: String) {
        let probe = try JSONDecoder().decode(Probe.self, from: Data(contentsOf: dir.appendingPathComponent("probes/\(name).json")))
        var path = dir.appendingPathComponent("\(name).onnx").path
        if !FileManager.default.fileExists(atPath: path) { path = dir.appendingPathComponent("external/\(name).onnx").path }
        let g = try GraphImporter.importGraph(path: path).graph
        var inputs: [String: Tensor] = [:]
        for (k, v) in probe.inputs { inputs[k] = Tensor(shape: v.shape, floats: v.values.map { Float($0) }) }
        let outs = try InferenceSession(graph: g).run(inputs)
        var worst = 0.0, ok = true, detail = ""
        for (k, v) in probe.outputs {
            guard let o = outs[k] else { return (0, false, "missing output \(k)") }
            guard o.shape == v.shape else { return (0, false, "output \(k) shape \(o.shape) vs \(v.shape)") }
            for (a, b) in zip(o.floats(), v.values) {
                let d = abs(Double(a) - b)
                worst = max(worst, d)
                if d > 1e-5 + 1e-4 * abs(b) { ok = false; detail = "\(k): \(a) vs \(b)" }
            }
        }
        return (worst, ok, detail)
    }

    func testEveryProbedONNXModelMatchesOnnxruntime() throws {
        var failures: [String] = []
        let names = try probeNames()
        XCTAssertGreaterThan(names.count, 10)
        for name in names {
            do {
                let r = try run(name)
                if !r.ok { failures.append("\(name): \(r.detail) (max abs diff \(r.worstAbs))") }
            } catch {
                failures.append("\(name): \(error)")
            }
        }
        XCTAssertTrue(failures.isEmpty, "\n" + failures.joined(separator: "\n"))
    }
}
