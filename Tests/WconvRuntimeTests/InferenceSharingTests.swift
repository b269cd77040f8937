import OrderedCollections
import WconvGraph
import WconvTensor
import XCTest
@testable import WconvRuntime

/// The trainer validates through `InferenceSession(sharing:)`: the inference path (BN folded, oneDNN
/// layout plan) over the training session's live parameters. Its results must equal the training
/// session's eval forward up to float reassociation, and a parameter change must reach it exactly
/// when `parametersChanged()` is called.
final class InferenceSharingTests: XCTestCase {
    override func setUp() { DNNL.disabledForTesting = false }
    override func tearDown() { DNNL.disabledForTesting = false }

    /// A few SGD steps with batch-statistics BN: weights and running statistics all move.
    func train(_ s: TrainingSession, _ x: Tensor, steps: Int) throws {
        for _ in 0..<steps {
            let y = try s.forward(["x": x], training: true)[s.graph.outputs[0].name]!
            let g = try s.backward(outputGradients: [s.graph.outputs[0].name: Tensor(shape: y.shape, floats: y.floats().map { 0.1 * $0 + 0.05 })])
            for (name, grad) in g {
                let p = s.parameterBuffer(named: name)!
                for (i, v) in grad.floats().enumerated() { p[i] -= 0.05 * v }
            }
        }
    }

    /// A fresh inference session over the training session's exported parameters.
    func fresh(_ s: TrainingSession) throws -> InferenceSession {
        var g = s.graph
        for (k, v) in s.exportParameters() { g.parameters[k] = v }
        return try InferenceSession(graph: g)
    }

    func testSharedPlanMatchesTrainingEvalForwardAfterEveryEpoch() throws {
        var rng = TestRNG(21)
        let g = NetBuilder.resnet(blocks: [1, 1, 1, 1], width: 8, classes: 5, bottleneck: false)
        let trainable = Set(g.parameters.keys).subtracting(g.buffers)
        let s = try TrainingSession(graph: g, trainable: trainable)
        let shared = try InferenceSession(sharing: s)
        let xTrain = rng.tensor([4, 3, 32, 32]), xVal = rng.tensor([9, 3, 32, 32])
        let out = g.outputs[0].name
        for epoch in 0..<3 {
            if epoch > 0 { try train(s, xTrain, steps: 2); try shared.parametersChanged() }
            let reference = try s.forward(["x": xVal], training: false)[out]!.floats()
            let y = try shared.run(["x": xVal])[out]!.floats()
            // Folding BN into the conv weights and oneDNN's summation order reassociate float sums:
            // logits of O(1) agree to ~1e-6 here; the bound leaves room for other CPUs' kernels.
            assertClose(y, reference, rtol: 1e-4, atol: 1e-5, "epoch \(epoch)")
            assertClose(y, try fresh(s).run(["x": xVal])[out]!.floats(), rtol: 1e-5, atol: 1e-6, "fresh plan, epoch \(epoch)")
        }
        XCTAssertLessThan(shared.executedNodeCount, s.executor.nodes.count, "BN folded and activations fused")
    }

    /// The derived values are recomputed on `parametersChanged()` and only then: folded BN (a
    /// running variance changed) and oneDNN's reordered copy of an unfolded conv weight.
    func testDerivedWeightsAreRefreshedOnlyWhenParametersChanged() throws {
        var rng = TestRNG(22)
        var b = NetBuilder(inputShape: [nil, 3, nil, nil])
        var h = b.conv("x", "c1", cin: 3, cout: 8, k: 3)
        h = b.bn(h, "bn1", c: 8)
        h = b.node(.relu, [h], "r1")
        h = b.conv(h, "c2", cin: 8, cout: 4, k: 3, bias: true)
        let g = b.finish(h)
        let s = try TrainingSession(graph: g, trainable: Set(g.parameters.keys).subtracting(g.buffers))
        let shared = try InferenceSession(sharing: s)
        let x = rng.tensor([2, 3, 12, 12])
        let before = try shared.run(["x": x])[h]!.floats()

        let variance = s.parameterBuffer(named: "bn1.running_var")!
        for i in variance.indices { variance[i] *= 4 }
        XCTAssertTrue(try shared.run(["x": x])[h]!.floats() == before, "folded BN is derived once, not per call")
        try shared.parametersChanged()
        let afterBN = try shared.run(["x": x])[h]!.floats()
        XCTAssertTrue(afterBN != before, "the changed variance reaches the plan")
        assertClose(afterBN, try fresh(s).run(["x": x])[h]!.floats(), rtol: 1e-5, atol: 1e-6)

        let w = s.parameterBuffer(named: "c2.weight")!
        for i in w.indices { w[i] = -w[i] }
        let stale = try shared.run(["x": x])[h]!.floats()
        if shared.executor.dnnlSummary.convolutions == 2 {
            // c2's weight is reordered into oneDNN's layout once per plan: a cache the change must clear.
            XCTAssertTrue(stale == afterBN, "oneDNN's reordered weights are cached between calls")
        }
        try shared.parametersChanged()
        let afterW = try shared.run(["x": x])[h]!.floats()
        XCTAssertTrue(afterW != afterBN, "the changed weight reaches the plan")
        assertClose(afterW, try fresh(s).run(["x": x])[h]!.floats(), rtol: 1e-5, atol: 1e-6)
    }

    /// Every plan the session keeps (one per batch shape) is refreshed, not only the current one.
    func testCachedPlansForOtherBatchShapesAreRefreshedToo() throws {
        var rng = TestRNG(23)
        var b = NetBuilder(inputShape: [nil, 3, nil, nil])
        var h = b.conv("x", "c1", cin: 3, cout: 8, k: 3, bias: true)
        h = b.node(.relu, [h], "r1")
        h = b.conv(h, "c2", cin: 8, cout: 4, k: 1)
        let g = b.finish(h)
        let s = try TrainingSession(graph: g, trainable: Set(g.parameters.keys))
        let shared = try InferenceSession(sharing: s)
        let big = rng.tensor([5, 3, 10, 10]), small = rng.tensor([2, 3, 10, 10])
        _ = try shared.run(["x": big])
        _ = try shared.run(["x": small])  // the batch-5 plan is now cached, not current
        let w = s.parameterBuffer(named: "c1.weight")!
        for i in w.indices { w[i] *= 0.5 }
        try shared.parametersChanged()
        assertClose(try shared.run(["x": big])[h]!.floats(), try fresh(s).run(["x": big])[h]!.floats(), rtol: 1e-5, atol: 1e-6)
    }

    func testNamedOutputRunsOnlyTheNodesItNeeds() throws {
        var b = NetBuilder(inputShape: [nil, 3, nil, nil])
        var h = b.conv("x", "c1", cin: 3, cout: 4, k: 1, bias: true)
        let logits = b.node(.globalAvgPool, [h], "gap", attrs: ["keepdims": .int(0)])
        h = b.node(.softmax, [logits], "sm", attrs: ["axis": .int(1)])
        let g = b.finish(h)
        let s = try TrainingSession(graph: g, trainable: [])
        let shared = try InferenceSession(sharing: s, outputs: [logits])
        var rng = TestRNG(24)
        let x = rng.tensor([3, 3, 6, 6])
        let out = try shared.run(["x": x])
        XCTAssertEqual(Array(out.keys), [logits])
        XCTAssertEqual(shared.executedNodeCount, 2, "the softmax after the logits is not run")
        _ = try s.forward(["x": x], training: false)
        assertClose(out[logits]!.floats(), s.activation(named: logits)!.floats())
    }
}
