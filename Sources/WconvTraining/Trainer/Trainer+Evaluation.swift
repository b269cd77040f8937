#if canImport(Glibc)
import Glibc
#else
import Darwin
#endif
import Foundation
import WconvGraph
import WconvRuntime
import WconvTensor

/// Validation during a run, the metrics of a finished model (`wconv eval`) and the source/target MMD.
extension Trainer {
    /// Batch of eval-mode forwards (validation, feature caches, final metrics): as large as the
    /// training batch's memory allows, since each forward pays a fixed per-op cost that small images
    /// do not amortise (issue 9: 846 images of 32×32 in batches of 10 spent most of an epoch there).
    /// Twice the training batch fits in what training uses (its activation gradients are freed
    /// while evaluating); inputs below 224 px take the activation volume of that batch at 224 px;
    /// at most 256 samples.
    var evalBatchSize: Int { Trainer.evalBatchSize(trainingBatch: config.batchSize, inputSize: preprocessing.inputSize) }

    /// The eval batch for a training batch of `b` samples at `inputSize` (`wconv eval` passes 16: 32
    /// images at 224 px, 256 at 32 px).
    public static func evalBatchSize(trainingBatch b: Int, inputSize: [Int]) -> Int {
        let b = max(1, b)
        let pixels = max(1, inputSize.reduce(1, *))
        return min(256, max(2 * b, b * 224 * 224 / pixels))
    }

    /// Validation of the current weights (cached features when the cut is active), through the
    /// inference path over the training session's parameters (`validationSession`).
    func evaluateCurrent() throws -> (loss: Double?, accuracy: Double, macroAUC: Double?) {
        guard let session, let val else { throw WconvError(.runtime, "no validation data") }
        let inference = try validationSession(for: session)
        var scores: [Float] = [], targets: [Int] = [], rows: [Int] = []
        let C = classes.count
        let part = parallel.shardRange(val.count)
        // One eval forward of the validation rows `idx` (labels from the set), whatever feeds them.
        let labels = val.labels  // computed for subsets: read once, not per row
        func score(_ feeds: [String: Tensor], _ idx: [Int]) throws {
            guard let logits = try inference.run(feeds)[logitsName] else { throw WconvError(.runtime, "the model produced no '\(logitsName)'") }
            scores += logits.floats()
            targets += idx.map { labels[$0] }
            rows += idx
        }
        if let cache = caches["val"], let cut {
            for s in stride(from: part.lowerBound, to: part.upperBound, by: evalBatchSize) {
                let idx = Array(s..<min(s + evalBatchSize, part.upperBound))
                try score([cut.value: cache.batch(idx)], idx)
            }
        } else if let text = val as? TokenizedTextSet {
            for idx in text.evaluationBatches(Array(part), batchSize: evalBatchSize) {
                try score(try text.inputs(idx, names: graphInputNames), idx)
            }
        } else {
            try forEachValidationBatch(part) { b in try score([inputName: b.tensor], b.indices) }
        }
        if parallel.isDistributed {
            scores = try parallel.gather(scores, per: C, total: val.count)
            targets = val.labels
            rows = Array(0..<val.count)
        }
        if let ml = multiLabel { return try ml.figures(logits: scores, rows: rows) }
        let m = try Trainer.metrics(logits: scores, targets: targets, classes: classes, criterion: criterion, C: C)
        return (m.loss, m.accuracy, m.macroAUC)
    }

    /// Runs `body` on the validation batches of this rank's `part`. They are decoded and transformed
    /// once per run when they take at most 256 MiB (PNG decoding every epoch was ~10 % of a few-label
    /// job); a larger set streams from the files each time, as before, never held whole.
    func forEachValidationBatch(_ part: Range<Int>, _ body: (Batch) throws -> Void) throws {
        if let d = decodedValidation, d.part == part { return try d.batches.forEach(body) }
        guard let val else { return }
        let loader = DataLoader(dataset: val, transform: evalTransform, batchSize: evalBatchSize, shuffle: false, seed: config.seed)
        let stream = loader.batches(epoch: 0, only: part)
        let keep = part.count * evalTransform.sampleSize * MemoryLayout<Float>.size <= 256 << 20
        var kept: [Batch] = []
        while let b = try stream.next() {
            try body(b)
            if keep { kept.append(b) }
        }
        if keep { decodedValidation = (part, kept) }
    }

    /// The eval-mode plan over `session`'s parameters that validation runs (built once per training
    /// session; BN folding and oneDNN weight layouts are derived again here, once per validation,
    /// since the weights changed since the last one).
    func validationSession(for session: TrainingSession) throws -> InferenceSession {
        if let v = validationPlan, v.training === session {
            try v.inference.parametersChanged()
            return v.inference
        }
        let v = try InferenceSession(sharing: session, outputs: [logitsName])
        validationPlan = (session, v)
        return v
    }

    static func metrics(logits: [Float], targets: [Int], classes: [String], criterion: CrossEntropyLoss, C: Int, probabilities: Bool = false) throws -> ClassificationMetrics {
        if probabilities {
            // The graph ends in softmax: scores are probabilities already; loss = mean −log p_y.
            var loss = 0.0
            for (i, y) in targets.enumerated() { loss -= _log(max(Double(logits[i * C + y]), 1e-12)) }
            return ClassificationMetrics(scores: logits, targets: targets, classes: classes, loss: loss / Double(max(targets.count, 1)))
        }
        let loss = try criterion.loss(logits: logits, targets: targets, classes: C).loss
        var probs = logits
        for i in 0..<targets.count {
            var mx = -Float.infinity
            for c in 0..<C { mx = max(mx, probs[i * C + c]) }
            var s: Float = 0
            for c in 0..<C { probs[i * C + c] = exp(probs[i * C + c] - mx); s += probs[i * C + c] }
            for c in 0..<C { probs[i * C + c] /= s }
        }
        return ClassificationMetrics(scores: probs, targets: targets, classes: classes, loss: loss)
    }

    /// Eval-mode metrics of a whole graph on a dataset (used after training and by `wconv eval`).
    /// `batches`, when given, supplies the data's images already transformed (a trainer's decoded
    /// validation set) instead of decoding them again; `precision` `.bf16` runs the convolutions in bfloat16.
    public static func evaluate(graph: ModelGraph, data: any LabelledDataset, classes: [String], threads: Int = 2, batchSize: Int = 32,
                                batches: BatchSource? = nil, precision: Precision = .f32) throws -> ClassificationMetrics {
        let (scores, rows) = try outputs(graph: graph, data: data, width: classes.count, threads: threads, batchSize: batchSize,
                                         batches: batches, precision: precision)
        let labels = data.labels
        return try metrics(logits: scores, targets: rows.map { labels[$0] }, classes: classes, criterion: CrossEntropyLoss(), C: classes.count,
                           probabilities: logitsValue(graph) != graph.outputs.first?.name)
    }

    /// Calls its argument with every batch of a data set, in order.
    public typealias BatchSource = ((Batch) throws -> Void) throws -> Void

    /// The graph's output (eval mode) for every sample, `width` values each, and the samples' rows;
    /// from `batches` when given (images already transformed), else decoded from `data`.
    static func outputs(graph: ModelGraph, data: any LabelledDataset, width: Int, threads: Int, batchSize: Int,
                        batches: BatchSource? = nil, precision: Precision = .f32) throws -> (values: [Float], rows: [Int]) {
        guard let inp = graph.inputs.first?.name, let outName = graph.outputs.first?.name else { throw WconvError.invalid("the graph has no input or output") }
        let s = try InferenceSession(graph: graph, threads: threads, precision: precision)
        func check(_ o: Tensor, _ n: Int) throws {
            guard o.numel == n * width else {
                throw WconvError.invalid("the model outputs \(o.shape) but the data has \(width) \(data.isMultiLabel ? "labels" : "classes"); evaluate on data with the model's \(data.isMultiLabel ? "labels" : "classes")")
            }
        }
        if let text = data as? TokenizedTextSet {
            var values: [Float] = [], rows: [Int] = []
            for idx in text.evaluationBatches(Array(0..<text.count), batchSize: batchSize) {
                guard let o = try s.run(text.inputs(idx, names: graph.inputs.map(\.name)))[outName] else { throw WconvError(.runtime, "no output '\(outName)'") }
                try check(o, idx.count)
                values += o.floats()
                rows += idx
            }
            return (values, rows)
        }
        var values: [Float] = [], rows: [Int] = []
        func score(_ b: Batch) throws {
            guard let o = try s.run([inp: b.tensor])[outName] else { throw WconvError(.runtime, "no output '\(outName)'") }
            try check(o, b.count)
            values += o.floats()
            rows += b.indices
        }
        if let batches { try batches(score); return (values, rows) }
        let loader = DataLoader(dataset: data, transform: ImageTransform(mode: .eval, preprocessing: graph.preprocessing ?? .imagenet), batchSize: batchSize, shuffle: false, seed: 0)
        let stream = loader.batches(epoch: 0)
        while let b = try stream.next() { try score(b) }
        return (values, rows)
    }

    /// Final metrics of `graph` on the validation set, on the batches validation decoded (when they
    /// are the whole set, transformed as `graph` expects).
    func evaluateValidation(graph: ModelGraph, data val: any LabelledDataset) throws -> ClassificationMetrics {
        let whole = 0..<val.count
        let decoded = !parallel.isDistributed && (graph.preprocessing ?? .imagenet) == preprocessing && !(val is TokenizedTextSet)
        return try Trainer.evaluate(graph: graph, data: val, classes: classes, threads: config.threads, batchSize: evalBatchSize,
                                    batches: decoded ? { body in try self.forEachValidationBatch(whole, body) } : nil, precision: config.precision)
    }

    /// Source/target MMD of the penultimate features (eval mode, up to 256 samples each).
    func measureMMD() throws -> [MMDKind: Double] {
        syncGraph()
        guard let fv = featureValue, let target, var split = GraphCut.split(graph, at: fv, rank: 2) else { return [:] }
        split.front.outputs = [ValueInfo(name: fv, shape: [nil, nil])]
        let s = try InferenceSession(graph: split.front, threads: config.threads)
        // Each rank computes its shard of the (up to 256) samples; the features are gathered.
        func feats(_ d: any LabelledDataset) throws -> ([Float], Int) {
            let n = min(d.count, 256)
            let idx = Array(parallel.shardRange(n))
            let loader = DataLoader(dataset: d, transform: evalTransform, batchSize: 32, shuffle: false, seed: 0)
            var out: [Float] = []
            var s0 = 0
            while s0 < idx.count {
                let b = try loader.makeBatch(Array(idx[s0..<min(s0 + 32, idx.count)]), epoch: 0)
                out += try s.run([inputName: b.tensor])[fv]!.floats()
                s0 += 32
            }
            var counts = [Double](repeating: 0, count: parallel.comm.size)
            counts[parallel.comm.rank] = Double(out.count)
            let all = try parallel.allGather(out, counts: parallel.comm.allreduceSum(counts, what: "MMD feature counts").map { Int($0) }, what: "MMD features")
            return (all, all.count / max(n, 1))
        }
        let (sf, d) = try feats(train)
        let (tf, _) = try feats(target)
        return [.mean: MMD.compute(.mean, source: sf, target: tf, dim: d).value,
                .gaussian: MMD.compute(.gaussian, source: sf, target: tf, dim: d).value]
    }
}
