import WconvTensor

/// One encoded text or text pair: ids, token types, and which ids are special tokens.
public struct Encoding: Sendable, Equatable {
    public var ids: [Int] = []
    public var typeIds: [Int] = []
    public var specialTokensMask: [Bool] = []

    public init() {}

    mutating func append(_ newIds: [Int], typeId: Int, special: Bool) {
        ids += newIds
        typeIds += [Int](repeating: typeId, count: newIds.count)
        specialTokensMask += [Bool](repeating: special, count: newIds.count)
    }
}

/// Which end loses tokens to truncation or gets the padding.
public enum TextSide: String, Sendable {
    case left, right
}

/// A padded batch in the layout BERT-family models take: `[batch, length]` rows of ids, attention
/// mask (1 = real token, 0 = padding) and token types.
public struct BatchEncoding: Sendable, Equatable {
    public var inputIds: [[Int]]
    public var attentionMask: [[Int]]
    public var tokenTypeIds: [[Int]]
    /// How many of the texts (or pairs) lost tokens to truncation.
    public var truncatedCount: Int

    /// The padded length of every row.
    public var length: Int { inputIds.first?.count ?? 0 }

    /// Pads `encodings` to the longest one with `padId` (mask 0, token type `padTypeId`).
    public init(padding encodings: [Encoding], padId: Int, padTypeId: Int = 0, side: TextSide = .right, truncatedCount: Int = 0) {
        let length = encodings.map(\.ids.count).max() ?? 0
        func pad(_ row: [Int], _ value: Int) -> [Int] {
            let fill = [Int](repeating: value, count: length - row.count)
            return side == .right ? row + fill : fill + row
        }
        inputIds = encodings.map { pad($0.ids, padId) }
        attentionMask = encodings.map { pad([Int](repeating: 1, count: $0.ids.count), 0) }
        tokenTypeIds = encodings.map { pad($0.typeIds, padTypeId) }
        self.truncatedCount = truncatedCount
    }

    /// The three inputs as int64 tensors of shape `[batch, length]`, keyed by the names BERT
    /// graphs use (`input_ids`, `attention_mask`, `token_type_ids`).
    public func tensors() -> [String: Tensor] {
        func tensor(_ rows: [[Int]]) -> Tensor {
            let flat = rows.flatMap { $0.map { Int64($0) } }
            // Shape and storage agree by construction.
            return try! Tensor(dtype: .i64, shape: [rows.count, length], storage: Storage(array: flat))
        }
        return ["input_ids": tensor(inputIds), "attention_mask": tensor(attentionMask), "token_type_ids": tensor(tokenTypeIds)]
    }

    /// The tensors a model takes: those of `tensors()` named in `inputNames` (a graph's
    /// `inputs.map(\.name)`; DistilBERT has no `token_type_ids`). A name the encoding cannot
    /// supply is an error naming it, so a graph is never fed a partial batch.
    public func feeds(for inputNames: [String]) throws -> [String: Tensor] {
        let all = tensors()
        var out: [String: Tensor] = [:]
        for name in inputNames {
            guard let t = all[name] else {
                throw WconvError(.invalidInput, "the model takes an input '\(name)' that a tokenizer does not produce (it gives \(all.keys.sorted().joined(separator: ", "))); it is not a text model")
            }
            out[name] = t
        }
        return out
    }
}

/// HF's truncation of the token lists before special tokens are added.
enum Truncation {
    /// `longest_first` for pairs: when both do not fit, the shorter keeps what it can up to half of
    /// `maxLength`, the longer the rest (ties favour the second text); a single text keeps
    /// `maxLength` tokens. `maxLength` here excludes the special tokens.
    static func longestFirst(_ first: [Int], _ second: [Int]?, maxLength: Int, side: TextSide) -> ([Int], [Int]?) {
        func cut(_ ids: [Int], _ n: Int) -> [Int] {
            guard ids.count > n else { return ids }
            return side == .right ? Array(ids.prefix(n)) : Array(ids.suffix(n))
        }
        guard let second else { return (cut(first, maxLength), nil) }
        if first.count + second.count <= maxLength { return (first, second) }
        var n1 = first.count, n2 = second.count
        let swapped = n1 > n2
        if swapped { swap(&n1, &n2) }
        n2 = n1 > maxLength ? n1 : max(n1, maxLength - n1)
        if n1 + n2 > maxLength {
            n1 = maxLength / 2
            n2 = n1 + maxLength % 2
        }
        if swapped { swap(&n1, &n2) }
        return (cut(first, n1), cut(second, n2))
    }
}
