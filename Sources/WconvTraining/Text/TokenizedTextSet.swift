import WconvTensor
import WconvText

/// A text classification set tokenized once: every example's ids and token types (truncated to
/// `maxLength`), its label and the line it came from. Batches are padded to their own longest row
/// (dynamic padding), so a batch of short texts stays short.
public struct TokenizedTextSet: LabelledDataset {
    public let path: String
    public let classes: [String]
    public let labels: [Int]
    /// Examples that lost tokens to `maxLength`.
    public let truncatedCount: Int
    public let maxLength: Int
    let encodings: [Encoding]
    let lines: [Int]
    let padId: Int
    let padTypeId: Int
    let paddingSide: TextSide

    /// Tokenizes `data` with `tokenizer` (special tokens included, truncated to `maxLength`).
    public init(_ data: TextDataset, tokenizer: WordPieceTokenizer, maxLength: Int) throws {
        path = data.path
        classes = data.classes
        labels = data.labels
        lines = data.examples.map(\.line)
        self.maxLength = maxLength
        var out: [Encoding] = []
        out.reserveCapacity(data.count)
        var cut = 0
        for e in data.examples {
            let (enc, truncated) = try tokenizer.encode(e.text, pair: e.pair, maxLength: maxLength)
            out.append(enc)
            if truncated { cut += 1 }
        }
        encodings = out
        truncatedCount = cut
        padId = tokenizer.config.padId
        padTypeId = tokenizer.config.padTypeId
        paddingSide = tokenizer.config.paddingSide
    }

    public var count: Int { encodings.count }
    public func describe(_ i: Int) -> String { "\(path) line \(lines[i])" }
    /// Texts have no image form; the trainer asks text sets for `inputs(_:names:)` instead.
    public func load(_ i: Int) throws -> RawSample {
        throw WconvError(.runtime, "\(describe(i)) is a text example, not an image")
    }

    /// Tokens of example `i`, special tokens included.
    public func length(_ i: Int) -> Int { encodings[i].ids.count }

    /// The graph inputs `names` (of `input_ids`, `attention_mask`, `token_type_ids`) for `rows`,
    /// padded to the longest of them; a name no tokenizer gives is an error naming it.
    public func inputs(_ rows: [Int], names: [String]) throws -> [String: Tensor] {
        try BatchEncoding(padding: rows.map { encodings[$0] }, padId: padId, padTypeId: padTypeId, side: paddingSide).feeds(for: names)
    }

    /// An epoch's batches of rows with length bucketing: the seeded shuffle of (seed, epoch) is cut
    /// into chunks of `bucketBatches` batches, each chunk sorted by length (longest first, ties in
    /// shuffled order) and cut into batches, and the batches' order shuffled again — so a batch
    /// holds texts of similar length (little padding) and the order depends only on the seed.
    /// Without `shuffle` the dataset order is kept, in consecutive batches (reference runs).
    public func epochBatches(epoch: Int, batchSize: Int, shuffle: Bool, seed: UInt64, bucketBatches: Int = 50) -> [[Int]] {
        var order = Array(0..<count)
        guard shuffle else { return TokenizedTextSet.chunks(order, batchSize) }
        var rng = RNG(seed: seed, keys: UInt64(epoch), 0)
        rng.shuffle(&order)
        var batches: [[Int]] = []
        for chunk in TokenizedTextSet.chunks(order, batchSize * max(1, bucketBatches)) {
            let sorted = chunk.enumerated().sorted {
                length($0.element) != length($1.element) ? length($0.element) > length($1.element) : $0.offset < $1.offset
            }.map(\.element)
            batches += TokenizedTextSet.chunks(sorted, batchSize)
        }
        var bucketRNG = RNG(seed: seed, keys: UInt64(epoch), 0xB0C4)
        bucketRNG.shuffle(&batches)
        return batches
    }

    /// Rows of `rows` in batches of `batchSize` sorted by length (evaluation and feature caches,
    /// where the order does not matter but padding costs time).
    public func evaluationBatches(_ rows: [Int], batchSize: Int) -> [[Int]] {
        let sorted = rows.sorted { length($0) != length($1) ? length($0) < length($1) : $0 < $1 }
        return TokenizedTextSet.chunks(sorted, batchSize)
    }

    static func chunks(_ a: [Int], _ n: Int) -> [[Int]] {
        stride(from: 0, to: a.count, by: max(1, n)).map { Array(a[$0..<min($0 + max(1, n), a.count)]) }
    }

    /// Padding tokens in `batches` as a fraction of all tokens fed (for the plan's data line).
    public func paddingFraction(_ batches: [[Int]]) -> Double {
        var real = 0, fed = 0
        for b in batches {
            let lens = b.map(length)
            real += lens.reduce(0, +)
            fed += (lens.max() ?? 0) * b.count
        }
        return fed > 0 ? Double(fed - real) / Double(fed) : 0
    }
}
