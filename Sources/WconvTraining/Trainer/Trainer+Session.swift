import Foundation
import WconvGraph
import WconvRuntime
import WconvTensor

/// The session an epoch trains: its trainable set and BatchNorm modes, and, when only the back
/// of the graph trains and nothing is augmented, the frozen front run once into feature caches.
extension Trainer {
    var evalTransform: ImageTransform { ImageTransform(mode: .eval, preprocessing: preprocessing) }
    var trainTransform: ImageTransform {
        var t = ImageTransform(mode: augment ? .train : .eval, preprocessing: preprocessing)
        t.crop = DataFit.trainCrop(config.trainCrop, preprocessing: preprocessing)
        return t
    }

    /// Copies the session's current values back into `graph`.
    func syncGraph() {
        guard let s = session else { return }
        for (k, v) in s.exportParameters() where graph.parameters[k] != nil { graph.parameters[k] = v }
    }

    /// Builds (or keeps) the session for epoch `e`: trainable set, BN modes, and the cached cut.
    func prepare(epoch e: Int) throws {
        let trainable = plan.trainableParameters(epoch: e)
        let bn = plan.batchNormModes(epoch: e)
        let key = trainable.sorted().joined(separator: ",") + "|" + bn.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: ",")
        if key == sessionKey, session != nil { return }
        syncGraph()
        var useGraph = graph
        cut = nil
        let frozenExists = graph.parameters.keys.contains { !trainable.contains($0) && !graph.buffers.contains($0) }
        if !augment, frozenExists, let v = GraphCut.cutValue(graph, trainable: trainable), v != inputName {
            // Rank of the cut value: run one eval sample through the front to learn it.
            if let split = try splitWithRank(at: v) {
                cut = split
                useGraph = split.back
                if cachedCut != v {
                    caches = [:]
                    let t0 = Date()
                    var reused = 0
                    func cached(_ data: any LabelledDataset, _ name: String) throws -> FeatureCache {
                        guard let store = featureCaches else { return try buildCache(split.front, data: data, name: name) }
                        let key = FeatureCacheStore.key(front: split.front, cut: v, name: name, count: data.count, preprocessing: preprocessing, precision: config.precision)
                        let r = try store.cache(key: key) { try buildCache(split.front, data: data, name: name) }
                        if r.reused { reused += 1 }
                        return r.cache
                    }
                    caches["train"] = try cached(train, "train")
                    if let val { caches["val"] = try cached(val, "val") }
                    if let target, config.mmdWeight > 0 { caches["target"] = try cached(target, "target") }
                    cachedCut = v
                    let mb = caches.values.reduce(0) { $0 + $1.byteCount } >> 20
                    let how = reused == caches.count ? "reused the" : reused > 0 ? "cached (\(reused) of \(caches.count) reused)" : "cached"
                    log("\(how) frozen features at '\(v)' (\(caches["train"]!.sampleShape), \(mb) MB\(caches.values.contains { $0.onDisk } ? ", memory-mapped on disk" : "")) in \(fmt(Date().timeIntervalSince(t0), 1))s; later epochs run only the trainable part")
                }
            }
        }
        // Caches belong to a cut: without one (the whole network trains) they are stale.
        if cut == nil { caches = [:]; cachedCut = nil }
        let nodeNames = Set(useGraph.nodes.map(\.name))
        validationPlan = nil
        session = try TrainingSession(graph: useGraph, trainable: trainable.filter { useGraph.parameters[$0] != nil },
                                      bnMode: bn.filter { nodeNames.contains($0.key) }, threads: config.threads, precision: config.precision)
        session?.batchNormSync = parallel.batchNormSync
        sessionKey = key
        let groups = plan.parameterGroups(epoch: e)
        if let opt = optimizer {
            opt.rebuild(groups: groups, keepState: config.keepOptimizerStateOnUnfreeze)
        } else {
            optimizer = Optimizer(kind: config.optimizerKind, groups: groups)
        }
    }

    func splitWithRank(at v: String) throws -> GraphCut.Split? {
        guard var probe = GraphCut.split(graph, at: v, rank: 1) else { return nil }
        probe.front.outputs = [ValueInfo(name: v, shape: [nil])]
        // Learn the rank from one sample.
        let s = try InferenceSession(graph: probe.front, threads: config.threads)
        if let text = train as? TokenizedTextSet {
            // Only per-text features ([batch, features]) are cached: a per-token value's length
            // changes from batch to batch with the padding.
            guard let out = try s.run(text.inputs([0], names: graphInputNames))[v], out.rank == 2 else { return nil }
            return GraphCut.split(graph, at: v, rank: out.rank)
        }
        let loader = DataLoader(dataset: train, transform: evalTransform, batchSize: 1, shuffle: false, seed: config.seed)
        let b = try loader.makeBatch([0], epoch: 0)
        guard let out = try s.run([inputName: b.tensor])[v] else { return nil }
        return GraphCut.split(graph, at: v, rank: out.rank)
    }

    func buildCache(_ front: ModelGraph, data: any LabelledDataset, name: String) throws -> FeatureCache {
        let s = try InferenceSession(graph: front, threads: config.threads, precision: config.precision)
        if let text = data as? TokenizedTextSet { return try buildTextCache(s, front: front, data: text, name: name) }
        // Under data parallelism each rank computes its shard (sample 0 alone, to learn the shape,
        // when its shard is empty) and `shareCache` fills in the rest.
        let part = parallel.shardRange(data.count)
        var cache: FeatureCache?
        var k = part.isEmpty ? data.count : part.lowerBound
        func add(_ b: Batch) throws {
            guard let out = try s.run([inputName: b.tensor])[front.outputs[0].name] else { throw WconvError(.runtime, "frozen part produced no output") }
            if cache == nil { cache = try FeatureCache(count: data.count, sampleShape: Array(out.shape.dropFirst()), labels: data.labels, memoryLimit: cacheMemoryLimit) }
            let per = cache!.perSample
            try out.withContiguousBytes { raw in
                let src = raw.bindMemory(to: Float.self)
                for j in 0..<b.count where k + j < data.count {
                    let dst = cache!.sample(k + j)
                    guard dst.count == per else { throw WconvError(.runtime, "feature size changed within \(name)") }
                    _ = dst.initialize(from: UnsafeBufferPointer(rebasing: src[(j * per)..<((j + 1) * per)]))
                }
            }
            k += b.count
        }
        if name == "val", !parallel.isDistributed {
            // The validation images, decoded once per run (and shared with the baseline's run).
            try forEachValidationBatch(part, add)
        } else {
            let mine: any LabelledDataset = parallel.isDistributed ? SubsetDataset(data, indices: part.isEmpty ? [0] : Array(part)) : data
            let stream = DataLoader(dataset: mine, transform: evalTransform, batchSize: evalBatchSize, shuffle: false, seed: config.seed, workers: 1).batches(epoch: 0)
            while let b = try stream.next() { try add(b) }
        }
        guard let c = cache else { throw WconvError.invalid("the \(name) set is empty") }
        try shareCache(c, name: name)
        return c
    }
}

extension Trainer {
    /// The frozen front's output for every text of this rank's shard, in batches of similar length.
    func buildTextCache(_ s: InferenceSession, front: ModelGraph, data: TokenizedTextSet, name: String) throws -> FeatureCache {
        var cache: FeatureCache?
        let part = parallel.shardRange(data.count)
        // An empty shard still runs sample 0 to learn the feature shape.
        for rows in data.evaluationBatches(part.isEmpty ? [0] : Array(part), batchSize: evalBatchSize) {
            guard let out = try s.run(data.inputs(rows, names: graphInputNames))[front.outputs[0].name] else { throw WconvError(.runtime, "frozen part produced no output") }
            if cache == nil { cache = try FeatureCache(count: data.count, sampleShape: Array(out.shape.dropFirst()), labels: data.labels, memoryLimit: cacheMemoryLimit) }
            guard let c = cache, out.numel == rows.count * c.perSample else { throw WconvError(.runtime, "feature size changed within \(name)") }
            if part.isEmpty { break }
            try out.withContiguousBytes { raw in
                let src = raw.bindMemory(to: Float.self)
                for (j, row) in rows.enumerated() {
                    _ = c.sample(row).initialize(from: UnsafeBufferPointer(rebasing: src[(j * c.perSample)..<((j + 1) * c.perSample)]))
                }
            }
        }
        guard let c = cache else { throw WconvError.invalid("the \(name) set is empty") }
        try shareCache(c, name: name)
        return c
    }
}
