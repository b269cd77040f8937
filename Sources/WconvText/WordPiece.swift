import WconvTensor

/// The WordPiece model: each word becomes the longest vocabulary entry that starts it, then the
/// longest `##`-prefixed entry for the rest, and so on (greedy longest match first, by Unicode
/// scalar). A word with a part no entry covers, or longer than `maxInputCharsPerWord` scalars,
/// becomes the single unknown token — all as HF's `WordPiece` model.
public struct WordPiece: Sendable {
    public let vocabulary: Vocabulary
    public let unkToken: String
    public let unkId: Int
    public let continuingSubwordPrefix: String
    public let maxInputCharsPerWord: Int

    /// Fails when the vocabulary lacks the unknown token (HF fails on the first unknown word instead).
    public init(vocabulary: Vocabulary, unkToken: String = "[UNK]", continuingSubwordPrefix: String = "##",
                maxInputCharsPerWord: Int = 100) throws {
        guard let unk = vocabulary.id(for: unkToken) else {
            throw WconvError.invalid("the unknown token \"\(unkToken)\" is not in the vocabulary")
        }
        self.vocabulary = vocabulary
        self.unkToken = unkToken
        self.unkId = unk
        self.continuingSubwordPrefix = continuingSubwordPrefix
        self.maxInputCharsPerWord = maxInputCharsPerWord
    }

    /// The ids of one pre-tokenised word.
    public func tokenize(_ word: [Unicode.Scalar]) -> [Int] {
        if word.isEmpty { return [] }
        if word.count > maxInputCharsPerWord { return [unkId] }
        // UTF-8 bytes of the word and the byte offset of each scalar boundary.
        var bytes: [UInt8] = []
        var offsets: [Int] = [0]
        bytes.reserveCapacity(word.count * 2)
        for c in word {
            bytes += UTF8.encode(c)!
            offsets.append(bytes.count)
        }
        if let whole = vocabulary.id(utf8: bytes) { return [whole] }
        let prefix = Array(continuingSubwordPrefix.utf8)
        var ids: [Int] = []
        var start = 0
        while start < word.count {
            var end = word.count
            var found: Int? = nil
            while start < end {
                let piece = bytes[offsets[start]..<offsets[end]]
                if let id = vocabulary.id(utf8: start > 0 ? prefix + piece : Array(piece)) {
                    found = id
                    break
                }
                end -= 1
            }
            guard let id = found else { return [unkId] }
            ids.append(id)
            start = end
        }
        return ids
    }
}
