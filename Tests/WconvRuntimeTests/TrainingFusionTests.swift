import WconvGraph
import WconvTensor
import XCTest
@testable import WconvRuntime

/// ReLU fused into batch norm and add, adds written over their batch-norm operand (the other one's
/// buffer reused by later values), and the add's
/// gradient handed over (TrainingFusion, Executor.inPlaceAdds, BackwardContext.passAddGradient)
/// against the plain plan (separate ReLU steps, every value its own buffer): one training step,
/// every BN mode, SyncBatchNorm's code path, oneDNN NHWC and NCHW, odd batches.
final class TrainingFusionTests: XCTestCase {
    override func tearDown() { TrainingFusion.disabledForTesting = false; DNNL.disabledForTesting = false }

    /// One replica: the sums come back unchanged, so results equal the unsynchronised step's.
    final class OneReplica: BatchNormSync {
        var calls = 0
        func allReduce(_ values: UnsafeMutableBufferPointer<Double>, node: String, phase: BatchNormSyncPhase) throws { calls += 1 }
    }

    struct Run {
        var values: [String: [Float]] = [:]
        var reluSteps = 0, overwritten = 0, arenaFloats = 0, syncCalls = 0
    }

    func run(_ g: ModelGraph, _ x: Tensor, fused: Bool, dnnl: Bool, bnMode: [String: BatchNormMode] = [:], sync: Bool = false,
             trainable: Set<String>? = nil, training: Bool = true) throws -> Run {
        TrainingFusion.disabledForTesting = !fused
        DNNL.disabledForTesting = !dnnl
        defer { TrainingFusion.disabledForTesting = false; DNNL.disabledForTesting = false }
        let s = try TrainingSession(graph: g, trainable: trainable ?? Set(g.parameters.keys).subtracting(g.buffers), bnMode: bnMode)
        let replica = OneReplica()
        if sync { s.batchNormSync = replica }
        var r = Run()
        // Two steps: the second reuses the gradient pool the first filled (handed-over buffers included).
        for k in 0..<2 {
            let y = try s.forward(["x": x], training: training)[g.outputs[0].name]!
            var rng = TestRNG(40 + UInt64(k))
            let grads = try s.backward(outputGradients: [g.outputs[0].name: rng.tensor(y.shape)])
            r.values["y\(k)"] = y.floats()
            for (name, t) in grads { r.values["grad\(k) " + name] = t.floats() }
        }
        for name in g.buffers { r.values[name] = Array(s.parameterBuffer(named: name)!) }
        r.reluSteps = s.executor.steps.filter { s.executor.nodes[$0.node].node.op == .relu }.count
        r.overwritten = s.executor.overwritten.count
        r.arenaFloats = s.executor.arenaFloats
        r.syncCalls = replica.calls
        return r
    }

    @discardableResult
    func compare(_ g: ModelGraph, _ x: Tensor, dnnl: Bool, bnMode: [String: BatchNormMode] = [:], sync: Bool = false,
                 trainable: Set<String>? = nil, training: Bool = true, file: StaticString = #filePath, line: UInt = #line) throws -> (Run, Run) {
        let fused = try run(g, x, fused: true, dnnl: dnnl, bnMode: bnMode, sync: sync, trainable: trainable, training: training)
        let plain = try run(g, x, fused: false, dnnl: dnnl, bnMode: bnMode, sync: sync, trainable: trainable, training: training)
        XCTAssertEqual(Set(fused.values.keys), Set(plain.values.keys), file: file, line: line)
        XCTAssertEqual(fused.syncCalls, plain.syncCalls, file: file, line: line)
        for (name, ref) in plain.values.sorted(by: { $0.key < $1.key }) {
            let scale = ref.map { abs($0) }.max() ?? 1
            assertClose(fused.values[name] ?? [], ref, rtol: 1e-5, atol: max(1e-6, scale * 1e-6), name, file: file, line: line)
        }
        return (fused, plain)
    }

    func testBottleneckResNetEveryBatchNormMode() throws {
        var rng = TestRNG(31)
        let g = NetBuilder.resnet(blocks: [1, 1, 1, 1], width: 8, classes: 5)
        let x = rng.tensor([5, 3, 40, 40])
        let bns = g.nodes.filter { $0.op == .batchNorm }.map(\.name)
        for dnnl in [true, false] where !dnnl || DNNL.isEnabled {
            let (fused, plain) = try compare(g, x, dnnl: dnnl)
            XCTAssertEqual(fused.reluSteps, 0)
            XCTAssertGreaterThan(plain.reluSteps, 8)
            XCTAssertEqual(fused.overwritten, 8, "each block's last BN output is written over by its add, its downsample BN's output freed after it")
            XCTAssertLessThan(Double(fused.arenaFloats), 0.75 * Double(plain.arenaFloats))
            try compare(g, x, dnnl: dnnl, sync: true)
            for mode in [BatchNormMode.frozen, .frozenAffine] {
                try compare(g, x, dnnl: dnnl, bnMode: Dictionary(uniqueKeysWithValues: bns.map { ($0, mode) }))
            }
            // Mixed: the first half frozen (progressive unfreezing), an eval-mode forward.
            try compare(g, x, dnnl: dnnl, bnMode: Dictionary(uniqueKeysWithValues: bns.prefix(bns.count / 2).map { ($0, .frozen) }))
            try compare(g, x, dnnl: dnnl, training: false)
        }
    }

    /// Basic blocks (add + ReLU over a conv branch and the identity), odd batch and sizes, and only
    /// the last stage trainable: the in-place add's operand below it needs no gradient.
    func testBasicResNetOddShapesAndPartialTraining() throws {
        var rng = TestRNG(32)
        let g = NetBuilder.resnet(blocks: [1, 1, 1, 1], width: 8, classes: 3, bottleneck: false)
        let x = rng.tensor([7, 3, 37, 29])
        let last = Set(g.parameters.keys.filter { ($0.hasPrefix("layer4.") || $0.hasPrefix("fc.")) && !g.buffers.contains($0) })
        for dnnl in [true, false] where !dnnl || DNNL.isEnabled {
            try compare(g, x, dnnl: dnnl)
            try compare(g, x, dnnl: dnnl, trainable: last)
        }
    }

    /// The values the plan no longer keeps are refused by name, the ones it keeps still read back.
    func testActivationsOfFusedValues() throws {
        var rng = TestRNG(33)
        let g = NetBuilder.resnet(blocks: [1, 1, 1, 1], width: 8, classes: 3, bottleneck: false)
        let s = try TrainingSession(graph: g, trainable: Set(g.parameters.keys).subtracting(g.buffers))
        _ = try s.forward(["x": rng.tensor([2, 3, 32, 32])], training: true)
        let relu = g.nodes.first { $0.op == .relu }!
        XCTAssertNil(s.activation(named: relu.inputs[0]), "a BN output a ReLU reads alone is not kept")
        XCTAssertNotNil(s.activation(named: relu.outputs[0]))
        let add = g.nodes.first { $0.op == .add }!
        XCTAssertEqual(add.inputs.filter { s.activation(named: $0) == nil }.count, 1, "the add writes over one operand")
        let downsampled = g.nodes.first { $0.op == .add && $0.name.hasPrefix("layer2.") }!
        XCTAssertEqual(downsampled.inputs.filter { s.activation(named: $0) == nil }.count, 2, "and the downsample branch's output is freed")
    }
}
