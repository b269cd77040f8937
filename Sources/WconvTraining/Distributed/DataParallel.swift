import Foundation
import WconvRuntime
import WconvTensor

/// Data parallelism over a `Communicator`, as torch's DistributedDataParallel: every rank holds the
/// whole model, takes a contiguous shard of each global batch, and all ranks step with the
/// gradient of the global batch's mean loss, so they stay identical.
///
/// The trainer calls a few hooks: `shard` (which samples are this rank's), `reduce` (the global
/// gradient and step figures), `gather`/`share` (sharded evaluation and feature caches),
/// `syncBuffers` (BatchNorm running statistics), `batchNormSync` (SyncBatchNorm), and `isRoot`
/// (only rank 0 writes).
public struct DataParallel {
    public let comm: Communicator
    /// SyncBatchNorm's hook, when asked for and there are several ranks (one process needs none:
    /// its batch statistics are already those of the global batch).
    public let batchNormSync: SyncBatchNorm?

    /// - Parameter syncBatchNorm: batch-statistics BatchNorm layers use the global batch's
    ///   statistics (torch's SyncBatchNorm) rather than each rank's shard's.
    public init(_ comm: Communicator = .single, syncBatchNorm: Bool = false) {
        self.comm = comm
        batchNormSync = syncBatchNorm && comm.size > 1 ? SyncBatchNorm(comm) : nil
    }

    public var isDistributed: Bool { comm.size > 1 }
    public var isRoot: Bool { comm.isRoot }

    /// Rank `r`'s contiguous, balanced part of `n` items: [r·n/N, (r+1)·n/N). Ranks see one global
    /// order, so N = 1 and N = 2 cover the same samples per global batch.
    public func shardRange(_ n: Int, rank r: Int? = nil) -> Range<Int> {
        let r = r ?? comm.rank, s = comm.size
        return (r * n / s)..<((r + 1) * n / s)
    }

    /// Mixed into the dropout seed so ranks draw different masks (0 on rank 0: one process is unchanged).
    public var dropoutSalt: UInt64 { UInt64(comm.rank) &* 0xD6E8_FEB8_6659_FD93 }

    /// This rank's part of a dataset (all of it for one process, or when it has fewer samples than ranks).
    public func part(_ data: any LabelledDataset) -> any LabelledDataset {
        guard isDistributed, data.count >= comm.size else { return data }
        return SubsetDataset(data, indices: Array(shardRange(data.count)))
    }

    /// This rank's part of a global batch.
    public func shard<T>(_ items: [T]) -> [T] { Array(items[shardRange(items.count)]) }

    /// torch DDP's default bucket size (25 MB of f32): few enough calls to amortise latency, small
    /// enough not to double the gradients' memory.
    static let bucketFloats = 25 << 18

    /// The global batch's gradients and step figures from this rank's.
    ///
    /// Each rank's gradients are of its shard's mean loss, whose denominator is `weight` (the
    /// shard's sample count, or its targets' class-weight sum for weighted cross-entropy). Summing
    /// `gradient · weight` and `weight` over ranks and dividing gives the gradient of the global
    /// mean exactly as one process computes it. `sums` (loss·weight, correct counts, …) ride along
    /// in the last bucket and come back summed. `layout` fixes one order on every rank (a rank with
    /// an empty shard passes no gradients and contributes zeros).
    public func reduce(gradients: [String: Tensor], layout: GradientLayout, weight: Double,
                       sums: [Double]) throws -> (gradients: [String: Tensor], weight: Double, sums: [Double]) {
        guard isDistributed else { return (gradients, weight, sums) }
        // Consecutive parameters fill buckets of about `bucketFloats`; each bucket carries the
        // weight last (so it normalises on its own), the last one also `sums`.
        var buckets: [[String]] = [[]]
        var filled = 0
        for n in layout.names {
            if filled >= DataParallel.bucketFloats { buckets.append([]); filled = 0 }
            buckets[buckets.count - 1].append(n)
            filled += layout.count(n)
        }
        var out: [String: Tensor] = [:]
        var tail: [Double] = []
        for (b, names) in buckets.enumerated() {
            let extras = (b == buckets.count - 1 ? sums : []) + [weight]
            let size = names.reduce(0) { $0 + layout.count($1) }
            var buf = [Float](repeating: 0, count: size + extras.count)
            try buf.withUnsafeMutableBufferPointer { dst in
                var off = 0
                for n in names {
                    let c = layout.count(n)
                    if var g = gradients[n] {
                        if g.dtype != .f32 { g = Tensor(shape: g.shape, floats: g.floats()) }
                        guard g.numel == c else { throw WconvError(.runtime, "gradient of '\(n)' has \(g.numel) values, expected \(c)") }
                        let w = Float(weight)
                        g.withContiguousBytes { raw in
                            let src = raw.bindMemory(to: Float.self)
                            for k in 0..<c { dst[off + k] = src[k] * w }
                        }
                    }
                    off += c
                }
                for (k, e) in extras.enumerated() { dst[size + k] = Float(e) }
                try comm.allreduceSum(dst, what: "gradients")
            }
            // A global batch with no loss term (every label uncertain under U-Ignore) has a zero
            // gradient, as in one process.
            let total = Double(buf[buf.count - 1])
            let inv = total > 0 ? Float(1 / total) : 0
            var off = 0
            for n in names {
                let c = layout.count(n)
                out[n] = Tensor(shape: layout.shapes[n]!, floats: Array(unsafeUninitializedCapacity: c) { d, k in
                    buf.withUnsafeBufferPointer { for i in 0..<c { d[i] = $0[off + i] * inv } }
                    k = c
                })
                off += c
            }
            tail = buf[size...].map(Double.init)
        }
        return (out, tail[tail.count - 1], Array(tail.dropLast()))
    }

    /// The order and shapes in which ranks pack their gradients: a session's trainable parameters, sorted.
    public struct GradientLayout {
        public var names: [String]
        public var shapes: [String: [Int]]
        public init(_ session: TrainingSession) {
            names = session.trainable.sorted()
            shapes = [:]
            for n in names { shapes[n] = session.graph.parameters[n]?.shape ?? [session.parameterBuffer(named: n)?.count ?? 0] }
        }
        func count(_ name: String) -> Int { shapes[name]!.reduce(1, *) }
    }

    /// Rank 0's BatchNorm running statistics on every rank (as DDP's `broadcast_buffers`), so the
    /// ranks' models stay identical when BN trains on per-rank batch statistics.
    public func syncBuffers(_ session: TrainingSession, names: [String]) throws {
        guard isDistributed else { return }
        for n in names {
            guard let b = session.parameterBuffer(named: n) else { continue }
            try comm.broadcast(UnsafeMutableRawBufferPointer(b), root: 0, what: "BatchNorm buffer '\(n)'")
        }
    }

    /// The whole of a per-sample array from each rank's shard: `local` holds this rank's
    /// `shardRange(n)` samples of `per` values each; the result has all n·per.
    public func gather(_ local: [Float], per: Int, total n: Int) throws -> [Float] {
        guard isDistributed else { return local }
        let mine = shardRange(n)
        guard local.count == mine.count * per else {
            throw WconvError(.runtime, "\(comm.name) produced \(local.count) values for \(mine.count) samples × \(per)")
        }
        var all = [Float](repeating: 0, count: n * per)
        all.replaceSubrange((mine.lowerBound * per)..<(mine.upperBound * per), with: local)
        try all.withUnsafeMutableBufferPointer { try share($0, per: per, count: n, what: "evaluation outputs") }
        return all
    }

    /// Fills every rank's `buffer` (`count` samples × `per` values, each rank having written its
    /// `shardRange(count)`) with all ranks' samples: one broadcast per rank of its block.
    public func share(_ buffer: UnsafeMutableBufferPointer<Float>, per: Int, count: Int, what: String) throws {
        try broadcastBlocks(buffer, (0..<comm.size).map { r in let p = shardRange(count, rank: r); return (p.lowerBound * per)..<(p.upperBound * per) }, what: what)
    }

    /// All ranks' `local` arrays, concatenated in rank order, on every rank; `counts[r]` is the
    /// length of rank r's (every rank passes the same counts).
    public func allGather(_ local: [Float], counts: [Int], what: String) throws -> [Float] {
        guard isDistributed else { return local }
        guard counts.count == comm.size, local.count == counts[comm.rank] else {
            throw WconvError(.runtime, "\(comm.name) holds \(local.count) values of \(what), the counts say \(counts)")
        }
        var starts = [0]
        for c in counts { starts.append(starts.last! + c) }
        var all = [Float](repeating: 0, count: starts.last!)
        all.replaceSubrange(starts[comm.rank]..<starts[comm.rank + 1], with: local)
        try all.withUnsafeMutableBufferPointer { try broadcastBlocks($0, (0..<comm.size).map { starts[$0]..<starts[$0 + 1] }, what: what) }
        return all
    }

    /// Rank r's `blocks[r]` of `buffer` to every rank, one broadcast each (empty blocks skipped).
    private func broadcastBlocks(_ buffer: UnsafeMutableBufferPointer<Float>, _ blocks: [Range<Int>], what: String) throws {
        guard isDistributed, let base = buffer.baseAddress else { return }
        for (r, block) in blocks.enumerated() where !block.isEmpty {
            try comm.broadcast(UnsafeMutableRawBufferPointer(start: base + block.lowerBound, count: block.count * 4), root: r, what: what)
        }
    }
}
