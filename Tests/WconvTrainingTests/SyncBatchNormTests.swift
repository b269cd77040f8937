import Foundation
import WconvRuntime
import WconvTensor
@testable import WconvTraining
import XCTest

/// Replicas on threads of one process, summing through shared memory: what MPI_Allreduce does
/// between ranks, for testing SyncBatchNorm without mpirun.
final class ThreadAllReduce: @unchecked Sendable {
    private let cond = NSCondition()
    private let replicas: Int
    private var total: [Double] = []
    private var arrived = 0, left = 0, generation = 0

    init(replicas: Int) { self.replicas = replicas }

    func sum(_ b: UnsafeMutableBufferPointer<Double>) {
        cond.lock()
        defer { cond.unlock() }
        while left > 0 { cond.wait() }   // the previous round is still being read
        if arrived == 0 { total = [Double](repeating: 0, count: b.count) }
        for i in b.indices { total[i] += b[i] }
        arrived += 1
        let g = generation
        if arrived == replicas { generation += 1; left = replicas; arrived = 0; cond.broadcast() } else { while generation == g { cond.wait() } }
        for i in b.indices { b[i] = total[i] }
        left -= 1
        if left == 0 { cond.broadcast() }
    }
}

final class SyncBatchNormTests: XCTestCase {
    /// A batch of 7 split 3 + 4 over two SyncBatchNorm replicas gives one session's outputs,
    /// running statistics and (weighted as DataParallel.reduce weighs them) gradients on the
    /// whole batch, to float rounding; per-replica statistics do not.
    func testTwoReplicasMatchOneBatch() throws {
        let g = tinyGraph(classes: 3)
        let trainable = Set(g.parameters.keys).subtracting(g.buffers)
        let data = try syntheticData(7, seed: 3)
        let x = data.images
        var rng = RNG(seed: 4)
        let upstream = (0..<21).map { _ in Float(rng.normal()) }
        // Objective: Σ upstream·logits / n over the batch (a shard's own mean, as each rank's loss).
        func run(_ rows: Range<Int>, sync: SyncBatchNorm?) throws -> (logits: [Float], grads: [String: [Float]], stats: [Float]) {
            let s = try TrainingSession(graph: g, trainable: trainable, threads: 1)
            s.batchNormSync = sync
            sync?.localWeight = Double(rows.count)
            let xs = Tensor(shape: [rows.count, 3, 8, 8], floats: Array(x.floats()[(rows.lowerBound * 192)..<(rows.upperBound * 192)]))
            let out = try s.forward(["x": xs], training: true)
            let dy = upstream[(rows.lowerBound * 3)..<(rows.upperBound * 3)].map { $0 / Float(rows.count) }
            let grads = try s.backward(outputGradients: ["logits": Tensor(shape: [rows.count, 3], floats: dy)])
            let stats = Array(s.parameterBuffer(named: "n.rm")!) + Array(s.parameterBuffer(named: "n.rv")!)
            return (out["logits"]!.floats(), grads.mapValues { $0.floats() }, stats)
        }
        let whole = try run(0..<7, sync: nil)
        func replicas(synced: Bool) throws -> (logits: [Float], grads: [String: [Float]], stats: [Float]) {
            let reduce = ThreadAllReduce(replicas: 2)
            var parts: [Result<(logits: [Float], grads: [String: [Float]], stats: [Float]), Error>?] = [nil, nil]
            let lock = NSLock()
            DispatchQueue.concurrentPerform(iterations: 2) { r in
                let sync = synced ? SyncBatchNorm { b, w in reduce.sum(b) } : nil
                let res = Result { try run(r == 0 ? 0..<3 : 3..<7, sync: sync) }
                lock.lock(); parts[r] = res; lock.unlock()
            }
            let a = try parts[0]!.get(), b = try parts[1]!.get()
            if synced { XCTAssertEqual(a.stats, b.stats, "replicas keep identical running statistics") }
            var grads: [String: [Float]] = [:]
            for (k, v) in a.grads { grads[k] = zip(v, b.grads[k]!).map { (3 * $0 + 4 * $1) / 7 } }
            return (a.logits + b.logits, grads, a.stats)
        }
        func worst(_ p: (logits: [Float], grads: [String: [Float]], stats: [Float])) -> Double {
            func rel(_ a: [Float], _ b: [Float]) -> Double {
                let scale = a.map { abs(Double($0)) }.max() ?? 0
                return (zip(a, b).map { abs(Double($0) - Double($1)) }.max() ?? 0) / max(scale, 1e-30)
            }
            // a.b, the conv bias under the batch-statistics BN, has a zero gradient in exact
            // arithmetic: its computed one is rounding noise, compared on the weight's scale.
            let bias = zip(whole.grads["a.b"]!, p.grads["a.b"]!).map { abs(Double($0) - Double($1)) }.max()! / whole.grads["a.w"]!.map { abs(Double($0)) }.max()!
            return ([rel(whole.logits, p.logits), rel(whole.stats, p.stats), bias] + whole.grads.filter { $0.key != "a.b" }.map { rel($0.value, p.grads[$0.key]!) }).max()!
        }
        let synced = try worst(replicas(synced: true))
        let perReplica = try worst(replicas(synced: false))
        XCTAssertLessThan(synced, 1e-5, "SyncBatchNorm over 3 + 4 vs one batch of 7")
        XCTAssertGreaterThan(perReplica, 1e-2, "per-replica statistics differ, or this test shows nothing")
    }
}
