import WconvGraph
import WconvTensor
import XCTest
@testable import WconvRuntime

/// Squeeze-excite's 1×1 convs on 1×1 maps run as one GEMM over the batch (MapVectorConv2d) in
/// inference plans: checked against the formula written out in doubles, with bias and fused
/// activations, and only where the geometry is that of a linear layer.
final class MapVectorConvTests: XCTestCase {
    func testSqueezeExciteConvsMatchTheFormula() throws {
        var b = NetBuilder(inputShape: [nil, 12, nil, nil])
        let pooled = b.node(.globalAvgPool, ["x"], "gap", attrs: ["keepdims": .int(1)])
        var h = b.conv(pooled, "fc1", cin: 12, cout: 5, k: 1, bias: true)
        h = b.node(.silu, [h], "act")
        h = b.conv(h, "fc2", cin: 5, cout: 12, k: 1, bias: true)
        let g = b.finish(b.node(.sigmoid, [h], "gate"))
        let p = { (name: String) in g.parameters[name]!.floats() }
        let w1 = p("fc1.weight"), b1 = p("fc1.bias"), w2 = p("fc2.weight"), b2 = p("fc2.bias")
        var rng = TestRNG(21)
        for n in [1, 3, 17] {
            let x = rng.tensor([n, 12, 4, 3])
            let session = try InferenceSession(graph: g)
            let y = try session.run(["x": x])["gate:out"]!
            XCTAssertEqual(y.shape, [n, 12, 1, 1])
            XCTAssertEqual(session.executor.steps.filter { $0.kernel is MapVectorConv2d }.count, 2)
            let xs = x.floats()
            var want: [Float] = []
            for i in 0..<n {
                let m = (0..<12).map { c in (0..<12).reduce(0.0) { $0 + Double(xs[(i * 12 + c) * 12 + $1]) } / 12 }
                let a = (0..<5).map { o -> Double in
                    let v = Double(b1[o]) + (0..<12).reduce(0.0) { $0 + Double(w1[o * 12 + $1]) * m[$1] }
                    return v / (1 + exp(-v))
                }
                for o in 0..<12 {
                    let v = Double(b2[o]) + (0..<5).reduce(0.0) { $0 + Double(w2[o * 5 + $1]) * a[$1] }
                    want.append(Float(1 / (1 + exp(-v))))
                }
            }
            assertClose(y.floats(), want, rtol: 1e-5, atol: 1e-6, "batch \(n)")
        }
    }

    /// A 1×1 conv on a larger map, a 3×3 conv on a 1×1 map (padding reads zeros) and a grouped 1×1
    /// conv keep their usual kernels.
    func testOnlyLinearLayerGeometriesAreTaken() throws {
        var rng = TestRNG(22)
        for (h, k, groups) in [(2, 1, 1), (1, 3, 1), (1, 1, 2)] {
            var b = NetBuilder(inputShape: [nil, 4, nil, nil])
            let g = b.finish(b.conv("x", "c", cin: 4, cout: 6, k: k, groups: groups, bias: true))
            let session = try InferenceSession(graph: g)
            _ = try session.run(["x": rng.tensor([2, 4, h, h])])
            XCTAssertEqual(session.executor.steps.filter { $0.kernel is MapVectorConv2d }.count, 0, "h \(h) k \(k) groups \(groups)")
        }
    }
}
