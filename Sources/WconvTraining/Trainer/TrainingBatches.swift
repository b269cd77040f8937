import WconvTensor

/// Where an epoch's training batches come from: the frozen-feature cache (rows in the epoch's
/// seeded order, fed at the cut value), the data loader (decoded, augmented images, fed at the
/// input) or a tokenized text set (length-bucketed rows, padded per batch, fed at the token
/// inputs). Under data parallelism each batch is this rank's shard of the global batch.
struct TrainingBatches {
    /// One step's samples: the network input, their labels and their dataset rows, and the size
    /// of the global batch they are this rank's shard of.
    struct Batch {
        var input: Tensor
        /// The graph's other inputs (a text batch's attention mask and token types).
        var others: [String: Tensor] = [:]
        var labels: [Int]
        var rows: [Int]
        var globalCount: Int
    }

    private enum Source {
        case cache(FeatureCache, order: [Int], batchSize: Int, shard: ([Int]) -> [Int])
        case loader(BatchStream, total: Int, batchSize: Int)
        case text(TokenizedTextSet, batches: [[Int]], names: [String], shard: ([Int]) -> [Int])
    }

    /// The graph value the batches feed.
    let inputValue: String
    private let source: Source
    private var position = 0

    /// Cached features: the epoch's order of the cache's rows, cut into batches of `batchSize`.
    init(cache: FeatureCache, at value: String, order: [Int], batchSize: Int, shard: @escaping ([Int]) -> [Int]) {
        inputValue = value
        source = .cache(cache, order: order, batchSize: batchSize, shard: shard)
    }

    /// Images from a loader's stream over `total` samples in batches of `batchSize`.
    init(stream: BatchStream, at value: String, total: Int, batchSize: Int) {
        inputValue = value
        source = .loader(stream, total: total, batchSize: batchSize)
    }

    /// Texts: the epoch's `batches` of rows, fed at the graph inputs `names` (the first is `value`).
    init(text: TokenizedTextSet, batches: [[Int]], names: [String], at value: String, shard: @escaping ([Int]) -> [Int]) {
        inputValue = value
        source = .text(text, batches: batches, names: names, shard: shard)
    }

    /// The next batch, or nil after the epoch's last.
    mutating func next() throws -> Batch? {
        switch source {
        case .cache(let cache, let order, let batchSize, let shard):
            guard position < order.count else { return nil }
            let global = Array(order[position..<min(position + batchSize, order.count)])
            let idx = shard(global)
            position += batchSize
            return Batch(input: cache.batch(idx), labels: idx.map { cache.labels[$0] }, rows: idx, globalCount: global.count)
        case .loader(let stream, let total, let batchSize):
            guard let b = try stream.next() else { return nil }
            defer { position += batchSize }
            return Batch(input: b.tensor, labels: b.labels, rows: b.indices, globalCount: min(batchSize, total - position))
        case .text(let set, let batches, let names, let shard):
            guard position < batches.count else { return nil }
            let idx = shard(batches[position])
            position += 1
            var inputs = try set.inputs(idx, names: names)
            let input = inputs.removeValue(forKey: inputValue) ?? Tensor(shape: [0, 0], floats: [])
            return Batch(input: input, others: inputs, labels: idx.map { set.labels[$0] }, rows: idx, globalCount: batches[position - 1].count)
        }
    }
}

extension Trainer {
    /// Epoch `e`'s batches: from the cache while the frozen front is cut off, else from the data.
    func trainingBatches(epoch e: Int) -> TrainingBatches {
        if let cache = caches["train"], let cut {
            var order = Array(0..<cache.count)
            if config.shuffle {
                var rng = RNG(seed: config.seed, keys: UInt64(e), 0)
                rng.shuffle(&order)
            }
            return TrainingBatches(cache: cache, at: cut.value, order: order, batchSize: config.batchSize, shard: { [parallel] in parallel.shard($0) })
        }
        if let text = train as? TokenizedTextSet {
            let batches = text.epochBatches(epoch: e, batchSize: config.batchSize, shuffle: config.shuffle, seed: config.seed)
            return TrainingBatches(text: text, batches: batches, names: graphInputNames, at: inputName, shard: { [parallel] in parallel.shard($0) })
        }
        let loader = DataLoader(dataset: train, transform: trainTransform, batchSize: config.batchSize, shuffle: config.shuffle, seed: config.seed, workers: 1)
        if parallel.isDistributed { loader.shard = { [parallel] in parallel.shard($0) } }
        return TrainingBatches(stream: loader.batches(epoch: e), at: inputName, total: train.count, batchSize: config.batchSize)
    }
}
