import WconvTensor

/// The unlabeled target-domain samples the MMD term compares each training batch with: cached
/// features of the current cut in the epoch's seeded order (cycling), or decoded images from a
/// loader that starts a fresh seeded pass whenever one runs out. Under data parallelism every rank
/// follows the same global stream and keeps its shard of each target batch.
struct MMDTargetStream {
    private let loader: DataLoader
    private let cache: FeatureCache?
    private let shard: ([Int]) -> [Int]
    private let epoch: Int
    private var stream: BatchStream?
    private var order: [Int]
    private var position = 0
    private var passes = 0

    init(loader: DataLoader, cache: FeatureCache?, epoch: Int, shard: @escaping ([Int]) -> [Int]) {
        self.loader = loader
        self.cache = cache
        self.shard = shard
        loader.shard = shard
        self.epoch = epoch
        order = cache == nil ? [] : loader.order(epoch: epoch)
        stream = cache == nil ? loader.batches(epoch: epoch) : nil
    }

    /// This rank's shard of `n` cached samples (`n` the global source batch's size), or of the
    /// next loader batch (whatever its size).
    mutating func next(_ n: Int) throws -> Tensor? {
        if let cache {
            var idx: [Int] = []
            for _ in 0..<n { idx.append(order[position % order.count]); position += 1 }
            return cache.batch(shard(idx))
        }
        if let b = try stream?.next() { return b.tensor }
        passes += 1
        stream = loader.batches(epoch: epoch + 1_000_000 * passes)
        return try stream?.next()?.tensor
    }
}

extension Trainer {
    /// Epoch `e`'s target stream, when the run adapts to a target domain.
    func mmdTargets(epoch e: Int) -> MMDTargetStream? {
        guard config.mmdWeight > 0, let target else { return nil }
        let loader = DataLoader(dataset: target, transform: trainTransform, batchSize: config.batchSize, shuffle: true, seed: config.seed ^ 0x7A26_E7)
        return MMDTargetStream(loader: loader, cache: caches["target"], epoch: e, shard: { [parallel] in parallel.shard($0) })
    }
}
