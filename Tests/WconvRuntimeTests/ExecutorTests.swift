import Foundation
import WconvGraph
import WconvTensor
import XCTest
@testable import WconvRuntime

final class ExecutorTests: XCTestCase {
    func smallResNet() -> ModelGraph { NetBuilder.resnet(blocks: [1, 1, 1, 1], width: 8, classes: 5, bottleneck: false) }

    func testFusedInferenceMatchesUnfusedTrainingEval() throws {
        let g = smallResNet()
        var rng = TestRNG(31)
        let x = rng.tensor([2, 3, 32, 32])
        let inf = try InferenceSession(graph: g)
        let y1 = try inf.run(["x": x])[g.outputs[0].name]!
        XCTAssertLessThan(inf.executedNodeCount, g.nodes.count, "BN and ReLU were fused")
        let ts = try TrainingSession(graph: g, trainable: [])
        let y2 = try ts.forward(["x": x], training: false)[g.outputs[0].name]!
        assertClose(y1.floats(), y2.floats(), rtol: 1e-4, atol: 1e-5)
        // Batch size change re-plans; results per sample do not depend on the batch.
        let x1 = Tensor(shape: [1, 3, 32, 32], floats: Array(x.floats()[0..<(3 * 32 * 32)]))
        let y3 = try inf.run(["x": x1])[g.outputs[0].name]!
        assertClose(y3.floats(), Array(y1.floats()[0..<5]), rtol: 1e-4, atol: 1e-5)
    }

    func testLivenessReusesBuffers() throws {
        let g = smallResNet()
        let inf = try InferenceSession(graph: g)
        _ = try inf.run(["x": Tensor(zeros: [2, 3, 32, 32])])
        let ts = try TrainingSession(graph: g, trainable: [])
        _ = try ts.forward(["x": Tensor(zeros: [2, 3, 32, 32])], training: false)
        // (The training plan keeps what backward reads; TrainingFusion already drops ReLU inputs.)
        XCTAssertLessThan(inf.plannedActivationFloats * 2, ts.executor.arenaFloats,
                          "liveness plan \(inf.plannedActivationFloats) vs keep-all \(ts.executor.arenaFloats)")
    }

    func testFrozenBackboneRunsNoBackwardBelowHead() throws {
        let g = smallResNet()
        var rng = TestRNG(32)
        let x = rng.tensor([2, 3, 32, 32])
        let out = g.outputs[0].name
        let s = try TrainingSession(graph: g, trainable: ["fc.weight", "fc.bias"])
        _ = try s.forward(["x": x], training: true)
        let grads = try s.backward(outputGradients: [out: rng.tensor([2, 5])])
        XCTAssertEqual(Set(grads.keys), ["fc.weight", "fc.bias"])
        XCTAssertEqual(s.lastBackwardNodeCount, 1, "only the head's backward runs")
        s.setTrainable(Set(g.parameters.keys.filter { $0.hasPrefix("layer4.") || $0.hasPrefix("fc.") }))
        _ = try s.forward(["x": x], training: true)
        _ = try s.backward(outputGradients: [out: rng.tensor([2, 5])])
        let layer4Nodes = g.nodes.filter { $0.name.hasPrefix("layer4.") }.count
        XCTAssertLessThanOrEqual(s.lastBackwardNodeCount, layer4Nodes + 4, "nothing below layer4")
        XCTAssertGreaterThan(s.lastBackwardNodeCount, 3)
    }

    /// A gradient injected at the penultimate features equals the one the linear head would send.
    func testGradientInjectionAtIntermediateValue() throws {
        let g = smallResNet()
        var rng = TestRNG(33)
        let x = rng.tensor([2, 3, 32, 32])
        let out = g.outputs[0].name
        let feats = g.nodes.first { $0.op == .flatten }!.outputs[0]
        let backbone = Set(g.parameters.keys.filter { !$0.hasPrefix("fc.") && !g.buffers.contains($0) })
        let s = try TrainingSession(graph: g, trainable: backbone)
        _ = try s.forward(["x": x], training: true)
        XCTAssertEqual(s.activation(named: feats)?.shape, [2, 64])
        let r = rng.tensor([2, 5])
        let viaHead = try s.backward(outputGradients: [out: r])
        // dL/dfeats = r · W
        let w = g.parameters["fc.weight"]!.floats(), rv = r.floats()
        var gf = [Float](repeating: 0, count: 2 * 64)
        for n in 0..<2 { for k in 0..<64 { for o in 0..<5 { gf[n * 64 + k] += rv[n * 5 + o] * w[o * 64 + k] } } }
        _ = try s.forward(["x": x], training: true)
        let injected = try s.backward(outputGradients: [feats: Tensor(shape: [2, 64], floats: gf)])
        for name in ["conv1.weight", "layer2.0.conv1.weight", "bn1.weight"] {
            assertClose(injected[name]!.floats(), viaHead[name]!.floats(), rtol: 1e-3, atol: 1e-5, name)
        }
    }

    func testGraphErrorsNameNodeAndShapes() throws {
        var g = singleNodeGraph(.linear, inputShapes: [[2, 7]], params: [("w", Tensor(zeros: [3, 5]))])
        XCTAssertThrowsError(try InferenceSession(graph: g).run(["x": Tensor(zeros: [2, 7])])) { e in
            XCTAssertTrue("\(e)".contains("n0") && "\(e)".contains("[3, 5]"), "\(e)")
        }
        g.nodes[0].inputs[0] = "nope"
        XCTAssertThrowsError(try InferenceSession(graph: g)) { e in XCTAssertTrue("\(e)".contains("nope"), "\(e)") }
        let ok = singleNodeGraph(.relu, inputShapes: [[2, 3]])
        XCTAssertThrowsError(try InferenceSession(graph: ok).run(["x": Tensor(zeros: [2, 4])])) { e in XCTAssertTrue("\(e)".contains("[2, 4]"), "\(e)") }
        XCTAssertThrowsError(try InferenceSession(graph: ok).run([:])) { e in XCTAssertTrue("\(e)".contains("missing input"), "\(e)") }
        XCTAssertThrowsError(try InferenceSession(graph: ModelGraph()))
        XCTAssertThrowsError(try TrainingSession(graph: ok, trainable: ["missing"]))
    }

    func testExportParametersReflectsUpdates() throws {
        let g = smallResNet()
        let s = try TrainingSession(graph: g, trainable: ["fc.bias"])
        s.parameterBuffer(named: "fc.bias")![0] = 42
        _ = try s.forward(["x": Tensor(zeros: [2, 3, 32, 32])], training: true)
        let p = s.exportParameters()
        XCTAssertEqual(Array(p.keys), Array(g.parameters.keys))
        XCTAssertEqual(p["fc.bias"]!.floats()[0], 42)
        XCTAssertNotEqual(p["bn1.running_mean"]!.floats(), g.parameters["bn1.running_mean"]!.floats(), "train forward updated running stats")
    }
}

final class HostileGraphTests: XCTestCase {
    /// Attributes read from files cannot overflow the geometry or force huge allocations.
    func testHostileAttributesAreRefused() throws {
        let cases: [(Op, [String: AttributeValue], [(String, Tensor)])] = [
            (.conv2d, ["pads": .ints([Int.max, 0, 0, 0])], [("w", Tensor(zeros: [2, 3, 1, 1]))]),
            (.maxPool2d, ["kernel": .ints([3, 3]), "strides": .ints([Int.min, 1])], []),
            (.reshape, ["shape": .ints([1 << 31, 1 << 31, 1 << 31])], []),
            (.pad, ["pads": .ints([0, 0, 0, 1 << 32, 0, 0, 0, 1 << 32])], []),
            (.adaptiveAvgPool2d, ["outputSize": .ints([1 << 30, 1 << 30])], []),
            (.transpose, ["perm": .ints([0, 0, 1, 2])], []),
            (.concat, ["axis": .int(9)], []),
        ]
        for (op, attrs, params) in cases {
            let g = singleNodeGraph(op, attrs: attrs, inputShapes: [[1, 3, 4, 4]], params: params)
            XCTAssertThrowsError(try InferenceSession(graph: g).run(["x": Tensor(zeros: [1, 3, 4, 4])]), "\(op)") { e in
                XCTAssertTrue("\(e)".contains("n0"), "\(op): \(e)")
            }
        }
    }
}
