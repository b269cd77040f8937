import WconvTensor

/// A Hugging Face WordPiece tokenizer (BERT cased and uncased, DistilBERT, MiniLM, …) giving the
/// ids transformers' `AutoTokenizer` gives for
/// `tok(texts, text_pair=pairs, padding=True, truncation=True, max_length=N)`.
///
/// The steps, each in its own file: added tokens such as `[MASK]` are cut out of the text
/// (AddedTokens), the rest is normalised (BertNormalizer), split into words (BertPreTokenizer) and
/// into word pieces (WordPiece); truncation makes room for the special tokens the template adds
/// (PostProcessor), and a batch is padded to its longest row (Encoding).
public struct WordPieceTokenizer: Sendable {
    public let config: TokenizerConfig
    private let added: AddedVocabulary

    public init(config: TokenizerConfig) {
        self.config = config
        let normalizer = config.normalizer
        added = AddedVocabulary(config.addedTokens, normalize: normalizer.normalize)
    }

    /// Loads the tokenizer of a model folder, or of the folder holding `model` (see TokenizerFiles).
    public init(model: String) throws {
        let files = try TokenizerFiles.locate(model)
        self.init(config: try TokenizerConfig.load(files))
    }

    /// The ids of `text` without special tokens, truncation or padding.
    public func tokenIds(_ text: String) -> [Int] {
        var ids: [Int] = []
        for segment in added.split(Array(text.unicodeScalars), normalize: config.normalizer.normalize) {
            switch segment {
            case .token(let id):
                ids.append(id)
            case .text(let normalized):
                for word in BertPreTokenizer.split(normalized) { ids += config.wordPiece.tokenize(word) }
            }
        }
        return ids
    }

    /// The token strings of `text` (for display), without special tokens.
    public func tokens(_ text: String) -> [String] {
        tokenIds(text).map { config.vocabulary.token(for: $0) ?? config.wordPiece.unkToken }
    }

    /// The longest input, special tokens included: `maxLength` if given, else the model's.
    public func effectiveMaxLength(_ maxLength: Int?) -> Int? { maxLength ?? config.modelMaxLength }

    /// One text, or a pair, with special tokens, truncated to `maxLength` (default: the model's
    /// `model_max_length`; none when neither is set). Also says whether tokens were cut.
    public func encode(_ text: String, pair: String? = nil, maxLength: Int? = nil) throws -> (encoding: Encoding, truncated: Bool) {
        var first = tokenIds(text)
        var second = pair.map(tokenIds)
        var truncated = false
        if let limit = effectiveMaxLength(maxLength) {
            let room = limit - config.postProcessor.addedTokenCount(pair: pair != nil)
            guard room >= 0 else {
                throw WconvError(.usage, "a maximum length of \(limit) leaves no room for the \(limit - room) special tokens the tokenizer adds")
            }
            let before = first.count + (second?.count ?? 0)
            (first, second) = Truncation.longestFirst(first, second, maxLength: room, side: config.truncationSide)
            truncated = first.count + (second?.count ?? 0) < before
        }
        return (config.postProcessor.apply(first: first, second: second), truncated)
    }

    /// A batch padded to its longest row. `pairs`, when given, holds one second text per text.
    public func encodeBatch(_ texts: [String], pairs: [String]? = nil, maxLength: Int? = nil) throws -> BatchEncoding {
        if let pairs, pairs.count != texts.count {
            throw WconvError(.usage, "\(texts.count) texts but \(pairs.count) second texts; give one pair text per text")
        }
        var encodings: [Encoding] = []
        var truncated = 0
        for (i, text) in texts.enumerated() {
            let (e, cut) = try encode(text, pair: pairs?[i], maxLength: maxLength)
            encodings.append(e)
            if cut { truncated += 1 }
        }
        return BatchEncoding(padding: encodings, padId: config.padId, padTypeId: config.padTypeId,
                             side: config.paddingSide, truncatedCount: truncated)
    }
}
