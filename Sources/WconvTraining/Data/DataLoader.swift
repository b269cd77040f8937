import Foundation
import WconvTensor

/// A batch of network inputs: `images` N×3×H×W f32 (CHW per sample), labels, dataset indices.
public struct Batch: Sendable {
    public var images: [Float]
    public var shape: [Int]
    public var labels: [Int]
    public var indices: [Int]
    public var count: Int { labels.count }
    public var tensor: Tensor { Tensor(shape: shape, floats: images) }
}

/// Turns a dataset into batches on a background thread, `prefetch` batches ahead through a
/// bounded queue, so decoding and augmentation overlap the training step.
///
/// Determinism: the epoch's order comes from `RNG(seed, keys: epoch, 0)` and each sample's
/// augmentation from `RNG(seed, keys: epoch, index + 1)`; batches are assembled in order. The
/// result is bit-identical whatever the thread timing or the number of decoding workers.
public final class DataLoader {
    public let dataset: any LabelledDataset
    public let transform: ImageTransform
    public let batchSize: Int
    public let shuffle: Bool
    public let dropLast: Bool
    public let seed: UInt64
    public let prefetch: Int
    public let workers: Int
    /// Which part of each batch this process loads (data-parallel ranks); nil: all of it.
    public var shard: (([Int]) -> [Int])?

    public init(dataset: any LabelledDataset, transform: ImageTransform, batchSize: Int, shuffle: Bool,
                dropLast: Bool = false, seed: UInt64, prefetch: Int = 4, workers: Int = 1) {
        self.dataset = dataset
        self.transform = transform
        self.batchSize = max(1, batchSize)
        self.shuffle = shuffle
        self.dropLast = dropLast
        self.seed = seed
        self.prefetch = max(1, prefetch)
        self.workers = max(1, workers)
    }

    public var batchesPerEpoch: Int {
        dropLast ? dataset.count / batchSize : (dataset.count + batchSize - 1) / batchSize
    }

    /// Sample order of `epoch`.
    public func order(epoch: Int) -> [Int] {
        var idx = Array(0..<dataset.count)
        if shuffle {
            var rng = RNG(seed: seed, keys: UInt64(epoch), 0)
            rng.shuffle(&idx)
        }
        return idx
    }

    /// Builds one batch synchronously from explicit dataset indices.
    public func makeBatch(_ indices: [Int], epoch: Int) throws -> Batch {
        let per = transform.sampleSize
        var images = [Float](repeating: 0, count: indices.count * per)
        var labels: [Int] = []
        labels.reserveCapacity(indices.count)
        let all = dataset.labels
        var firstError: Error?
        let lock = NSLock()
        let n = indices.count
        let chunks = min(workers, n)
        images.withUnsafeMutableBufferPointer { buf in
            let base = buf.baseAddress!
            let work = { (w: Int) in
                var k = w
                while k < n {
                    let i = indices[k]
                    do {
                        let out = UnsafeMutableBufferPointer(start: base + k * per, count: per)
                        try self.fill(sample: i, epoch: epoch, into: out)
                    } catch {
                        lock.lock(); if firstError == nil { firstError = error }; lock.unlock()
                    }
                    k += chunks
                }
            }
            if chunks <= 1 { work(0) } else { DispatchQueue.concurrentPerform(iterations: chunks, execute: work) }
        }
        if let firstError { throw firstError }
        for i in indices { labels.append(all[i]) }
        return Batch(images: images, shape: [n, 3, transform.outputHeight, transform.outputWidth], labels: labels, indices: indices)
    }

    func fill(sample i: Int, epoch: Int, into out: UnsafeMutableBufferPointer<Float>) throws {
        var rng = RNG(seed: seed, keys: UInt64(epoch), UInt64(i) + 1)
        do {
            switch try dataset.load(i) {
            case .image(let img):
                try transform.apply(img, rng: &rng, into: out)
            case .tensor(let values, let shape):
                guard values.count == out.count else {
                    throw WconvError.invalid("sample shape \(shape) does not match the model input 3×\(transform.outputHeight)×\(transform.outputWidth)")
                }
                _ = out.initialize(from: values)
            }
        } catch let e as WconvError {
            var e = e
            if e.file == nil { e.message = "\(dataset.describe(i)): " + e.message }
            throw e
        }
    }

    /// Iterates the batches of `epoch` (of positions `only` of its order, when given), produced
    /// ahead on a background thread.
    public func batches(epoch: Int, startBatch: Int = 0, only: Range<Int>? = nil) -> BatchStream {
        var order = self.order(epoch: epoch)
        if let only { order = Array(order[only]) }
        var plan: [[Int]] = []
        var s = 0
        while s < order.count {
            let e = min(s + batchSize, order.count)
            if e - s == batchSize || !dropLast { plan.append(shard?(Array(order[s..<e])) ?? Array(order[s..<e])) }
            s = e
        }
        return BatchStream(loader: self, plan: Array(plan.dropFirst(startBatch)), epoch: epoch)
    }
}

/// The consumer side of the bounded queue. Iterating yields batches in order; an error from the
/// producer is rethrown by `next()`. Dropping the stream stops the producer.
public final class BatchStream {
    private let cond = NSCondition()
    private var queue: [Result<Batch, Error>] = []
    private var produced = 0
    private var consumed = 0
    private var cancelled = false
    private let total: Int
    private var thread: Thread?

    init(loader: DataLoader, plan: [[Int]], epoch: Int) {
        total = plan.count
        let capacity = loader.prefetch
        let t = Thread { [weak self, cond] in
            for indices in plan {
                let r = Result { try loader.makeBatch(indices, epoch: epoch) }
                cond.lock()
                while let s = self, !s.cancelled, s.queue.count >= capacity { cond.wait() }
                guard let s = self, !s.cancelled else { cond.unlock(); return }
                s.queue.append(r)
                s.produced += 1
                cond.broadcast()
                cond.unlock()
                if case .failure = r { return }
            }
        }
        t.stackSize = 1 << 22
        thread = t
        t.start()
    }

    public var count: Int { total }

    /// The next batch, or nil after the last one.
    public func next() throws -> Batch? {
        cond.lock()
        defer { cond.unlock() }
        guard consumed < total else { return nil }
        while queue.isEmpty { cond.wait() }
        let r = queue.removeFirst()
        consumed += 1
        cond.broadcast()
        return try r.get()
    }

    public func cancel() {
        cond.lock(); cancelled = true; cond.broadcast(); cond.unlock()
    }

    deinit { cancel() }
}
