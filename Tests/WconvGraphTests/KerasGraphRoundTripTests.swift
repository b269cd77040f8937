import Foundation
import XCTest
import WconvFormats
@testable import WconvGraph
import WconvTensor
import WconvTestSupport

final class KerasGraphRoundTripTests: XCTestCase {
    /// Writes the graph built from a Keras fixture with KerasH5Writer to `out` and reads it back with
    /// KerasReader: every Keras weight comes back bit-identical in Keras layout, in Keras order, and the
    /// layer list matches.
    func assertWriterRoundTrip(_ file: String, to out: String, line: UInt = #line) throws {
        let src = try KerasReader.readModel(path: KerasGraphFixtures.path(file))
        let g = try KerasGraphBuilder.build(src)
        try KerasH5Writer.write(g, to: out)
        let back = try KerasReader.readModel(path: out)
        XCTAssertEqual(back.layout, .legacyWeights, file, line: line)
        XCTAssertEqual(back.layers.map(\.name), src.configLayers.map { $0["config"]?["name"]?.string ?? "" }, file, line: line)
        let a = src.bundle.tensors, b = back.bundle.tensors
        if src.layout == back.layout {
            XCTAssertEqual(Array(b.keys), Array(a.keys), file, line: line)
        } else {
            // Keras' legacy layout lists a nested model's non-trainable weights after its trainable ones.
            XCTAssertEqual(Set(b.keys), Set(a.keys), file, line: line)
        }
        for (k, t) in a {
            XCTAssertTrue(b[k].map { $0.bitwiseEqual(t) } ?? false, "\(file): \(k) differs after the round trip", line: line)
        }
    }

    func testWriterRoundTrip() throws {
        let tmp = TempDir("keras")
        for (file, exp) in [("func_small.keras", "func_small"), ("small_legacy.h5", "small"), ("resnet_style.keras", "resnet_style"),
                            ("tfk_mixed.h5", "tfk_mixed"), ("tfk_seq.h5", "tfk_seq"),
                            ("nested_legacy.h5", "nested")] {
            try assertWriterRoundTrip(file, to: tmp.file("\(exp).h5"))
            // Nothing left behind but the target.
            XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: tmp.path).filter { $0.contains("wconv-tmp") }, [])
        }
    }

    /// Graph → file → graph again gives identical canonical parameters (no transform applied twice).
    func testGraphRoundTripIsIdempotent() throws {
        let dirTemp = TempDir()
        let dir = dirTemp.path
        let src = try KerasReader.readModel(path: KerasGraphFixtures.path("func_small.keras"))
        let g1 = try KerasGraphBuilder.build(src)
        try KerasH5Writer.write(g1, to: dir + "/a.h5")
        var reread = try KerasReader.readModel(path: dir + "/a.h5")
        reread.config = src.config  // a weights file carries no config: pair it with the architecture
        for i in reread.layers.indices {
            reread.layers[i].className = src.layers.first { $0.name == reread.layers[i].name }?.className
        }
        let g2 = try KerasGraphBuilder.build(reread)
        XCTAssertEqual(Array(g2.parameters.keys), Array(g1.parameters.keys))
        for (k, t) in g1.parameters { XCTAssertTrue(g2.parameters[k]!.bitwiseEqual(t), k) }
        XCTAssertEqual(g2.layoutTransforms, g1.layoutTransforms)
        XCTAssertEqual(g2.nodes, g1.nodes)
    }

    /// A graph that did not come from Keras: one Keras layer per parameterised node, layouts
    /// derived from the ops.
    func testWriterFromPlainGraph() throws {
        let dirTemp = TempDir()
        let dir = dirTemp.path
        var g = ModelGraph()
        let w = Tensor(shape: [4, 2, 3, 3], floats: (0..<72).map(Float.init))
        let dw = Tensor(shape: [4, 1, 3, 3], floats: (0..<36).map { Float($0) * 0.5 })
        let fc = Tensor(shape: [3, 4], floats: (0..<12).map(Float.init))
        g.parameters = ["c.weight": w, "d.weight": dw, "fc.weight": fc, "fc.bias": Tensor(shape: [3], floats: [1, 2, 3])]
        g.nodes = [GraphNode(name: "c", op: .conv2d, inputs: ["x", "c.weight"], outputs: ["y"], attributes: ["group": .int(1)]),
                   GraphNode(name: "d", op: .conv2d, inputs: ["y", "d.weight"], outputs: ["z"], attributes: ["group": .int(4)]),
                   GraphNode(name: "fc", op: .linear, inputs: ["z", "fc.weight", "fc.bias"], outputs: ["o"])]
        try KerasH5Writer.write(g, to: dir + "/p.h5")
        let b = try KerasReader.read(path: dir + "/p.h5")
        XCTAssertEqual(Array(b.tensors.keys), ["c/kernel", "d/kernel", "fc/kernel", "fc/bias"])
        XCTAssertEqual(b.tensors["c/kernel"]?.shape, [3, 3, 2, 4])
        XCTAssertEqual(b.tensors["d/kernel"]?.shape, [3, 3, 4, 1])
        XCTAssertEqual(b.tensors["fc/kernel"]?.shape, [4, 3])
        // HWIO[h, w, i, o] = OIHW[o, i, h, w]
        let hwio: [Float] = b.tensors["c/kernel"]!.floats(), oihw: [Float] = w.floats()
        let hwioIndex: Int = ((1 * 3 + 2) * 2 + 1) * 4 + 3, oihwIndex: Int = ((3 * 2 + 1) * 3 + 1) * 3 + 2
        XCTAssertEqual(hwio[hwioIndex], oihw[oihwIndex])
        let kin: [Float] = b.tensors["fc/kernel"]!.floats(), kout: [Float] = fc.floats()
        XCTAssertEqual(kin[1 * 3 + 2], kout[2 * 4 + 1])
        // Weights-only bundles cannot become a Keras file.
        XCTAssertThrowsError(try KerasH5Writer.write(ModelGraph(parameters: ["a": w]), to: dir + "/none.h5")) { e in
            XCTAssertTrue("\(e)".contains("weights-only"), "\(e)")
        }
        XCTAssertFalse(FileManager.default.fileExists(atPath: dir + "/none.h5"))
        // A legacy file named *.weights.h5 would be rejected by Keras 3: refused as bad usage.
        XCTAssertThrowsError(try KerasH5Writer.write(g, to: dir + "/p.weights.h5")) { e in
            XCTAssertEqual((e as? WconvError)?.exitCode, 2)
            XCTAssertTrue("\(e)".contains("p.h5"), "\(e)")
        }
    }

    /// Writes the exported files tools/interop/check_h5.py checks with h5py and Keras 3; each must
    /// first read back in wconv as the weights it came from.
    func testExportForInterop() throws {
        let dir = KerasGraphFixtures.interopDir
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        for m in ["func_small", "small", "resnet_style", "nested", "tfk_mixed", "tfk_seq"] {
            try assertWriterRoundTrip(m.hasPrefix("tfk") ? "\(m).h5" : "\(m).keras", to: "\(dir)/\(m).h5")
        }
    }
}
