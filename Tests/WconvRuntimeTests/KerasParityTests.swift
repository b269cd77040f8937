import Foundation
import WconvFormats
import WconvGraph
import WconvTensor
import XCTest
@testable import WconvRuntime

/// Keras models imported through WconvGraph's Keras builder, run by the runtime on the NCHW probe
/// that tools/fixtures/keras wrote, compared with Keras's own output for the NHWC probe.
final class KerasParityTests: XCTestCase {
    func testEveryProbedKerasModelMatchesKeras() throws {
        let dir = TorchParityTests.fixturesDir().appendingPathComponent("keras")
        let fm = FileManager.default
        guard fm.fileExists(atPath: dir.path) else { throw XCTSkip("no Keras fixtures in this checkout") }
        var checked = 0
        var failures: [String] = []
        for file in try fm.contentsOfDirectory(atPath: dir.path).sorted() where file.hasSuffix(".expected.json") {
            let name = String(file.dropLast(".expected.json".count))
            let exp = try JSONSerialization.jsonObject(with: Data(contentsOf: dir.appendingPathComponent(file))) as! [String: Any]
            guard let probe = exp["probe"] as? [String: Any] else { continue }
            for candidate in ["\(name).keras", "\(name).h5", "\(name)_legacy.h5"] where fm.fileExists(atPath: dir.appendingPathComponent(candidate).path) {
                do {
                    let g = try GraphImporter.importGraph(path: dir.appendingPathComponent(candidate).path).graph
                    let shape = (probe["nchw_shape"] as! [NSNumber]).map(\.intValue)
                    let x = Tensor(shape: shape, floats: (probe["nchw"] as! [NSNumber]).map(\.floatValue))
                    let want = (probe["output"] as! [NSNumber]).map(\.floatValue)
                    let y = try InferenceSession(graph: g).run([g.inputs[0].name: x])[g.outputs[0].name]!
                    let got = y.floats()
                    if got.count != want.count { failures.append("\(candidate): \(got.count) outputs vs \(want.count)"); continue }
                    for i in 0..<got.count where abs(got[i] - want[i]) > 1e-5 + 1e-4 * abs(want[i]) {
                        failures.append("\(candidate)[\(i)]: \(got[i]) vs \(want[i])"); break
                    }
                    checked += 1
                } catch {
                    failures.append("\(candidate): \(error)")
                }
            }
        }
        XCTAssertGreaterThan(checked, 5)
        XCTAssertTrue(failures.isEmpty, "\n" + failures.joined(separator: "\n"))
    }
}
