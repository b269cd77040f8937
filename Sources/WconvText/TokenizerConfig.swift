import WconvFormats
import WconvTensor

/// Everything a WordPiece tokenizer needs, resolved from a model's files the way transformers'
/// `AutoTokenizer` resolves them:
/// - tokenizer.json gives the pipeline: `normalizer` (BertNormalizer), `pre_tokenizer`
///   (BertPreTokenizer), `model` (WordPiece: vocab, unk_token, continuing_subword_prefix,
///   max_input_chars_per_word), `post_processor` (TemplateProcessing, BertProcessing) and
///   `added_tokens`; its `truncation`/`padding` sections are ignored, as transformers replaces them
///   on every call;
/// - without it, vocab.txt with BERT's defaults;
/// - tokenizer_config.json's `do_lower_case`, `strip_accents` and `tokenize_chinese_chars`
///   override the normaliser when present (not for the generic `PreTrainedTokenizerFast`, which
///   takes tokenizer.json as it is; transformers 5 also lower-cases when a BertTokenizer's config
///   omits `do_lower_case`, where tokenizers and transformers 4 follow tokenizer.json, as wconv
///   does); `model_max_length`, `padding_side`, `truncation_side`,
///   `added_tokens_decoder` and the special-token names come from it, with special_tokens_map.json
///   taking precedence for the names.
public struct TokenizerConfig: Sendable {
    public var normalizer: BertNormalizer
    public var wordPiece: WordPiece
    /// Every token with its id: the model's vocabulary and the added tokens.
    public var vocabulary: Vocabulary
    public var addedTokens: [AddedToken]
    public var postProcessor: TemplatePostProcessor
    public var padToken: String
    public var padId: Int
    public var padTypeId: Int = 0
    /// The longest input the model takes, special tokens included; nil when the config sets none.
    public var modelMaxLength: Int?
    public var paddingSide: TextSide = .right
    public var truncationSide: TextSide = .right

    /// BERT's special-token names (`[CLS]` …) and the config keys that rename them.
    static let specialTokenKeys: [(key: String, bertDefault: String)] = [
        ("unk_token", "[UNK]"), ("sep_token", "[SEP]"), ("pad_token", "[PAD]"), ("cls_token", "[CLS]"), ("mask_token", "[MASK]"),
    ]

    public static func load(_ files: TokenizerFiles) throws -> TokenizerConfig {
        let config = try files.tokenizerConfig.map { try readJSONFile($0, what: "tokenizer_config.json") } ?? .object([:])
        let specialMap = try files.specialTokensMap.map { try readJSONFile($0, what: "special_tokens_map.json") } ?? .object([:])
        let configFile = files.tokenizerConfig ?? files.directory

        // Special-token names: BERT's defaults, then tokenizer_config.json, then special_tokens_map.json.
        var specials: [String: AddedToken] = [:]
        for (key, bertDefault) in specialTokenKeys {
            specials[key] = AddedToken(content: bertDefault, id: -1, special: true)
        }
        var extraSpecials: [AddedToken] = []
        for source in [config, specialMap] {
            for (key, _) in specialTokenKeys {
                if let v = source[key], let t = try addedToken(v, id: -1, special: true, what: key, file: configFile) { specials[key] = t }
            }
            for v in source["additional_special_tokens"]?.array ?? [] {
                if let t = try addedToken(v, id: -1, special: true, what: "additional_special_tokens", file: configFile) { extraSpecials.append(t) }
            }
        }

        var normalizer = BertNormalizer()
        var vocabulary: Vocabulary
        var unkToken = specials["unk_token"]!.content
        var prefix = "##", maxChars = 100
        var addedTokens: [AddedToken] = []
        var postProcessor: TemplatePostProcessor? = nil

        if let path = files.tokenizerJSON {
            let json = try readJSONFile(path, what: "tokenizer.json")
            let model = try TokenizerJSON.wordPieceModel(json["model"], file: path)
            vocabulary = model.vocabulary
            unkToken = model.unkToken
            prefix = model.prefix
            maxChars = model.maxInputCharsPerWord
            normalizer = try TokenizerJSON.normalizer(json["normalizer"], file: path)
            try TokenizerJSON.checkPreTokenizer(json["pre_tokenizer"], file: path)
            for (i, v) in (json["added_tokens"]?.array ?? []).enumerated() {
                guard let id = v["id"]?.int, let t = try addedToken(v, id: id, special: false, what: "added_tokens[\(i)]", file: path) else {
                    throw WconvError.invalid("added_tokens[\(i)] has no integer \"id\" or no \"content\"", file: path)
                }
                addedTokens.append(t)
                if vocabulary.token(for: id) == nil { vocabulary.add(t.content, id: id) }
            }
            postProcessor = try TokenizerJSON.postProcessor(json["post_processor"], vocabulary: vocabulary, file: path)
        } else if let path = files.vocabTxt {
            vocabulary = try Vocabulary.read(vocabTxt: path)
        } else {
            throw WconvError.invalid("no tokenizer.json or vocab.txt", file: files.directory)
        }

        // transformers' BertTokenizer options; the generic tokenizer classes take tokenizer.json as it is.
        let generic = ["PreTrainedTokenizerFast", "TokenizersBackend"].contains(config["tokenizer_class"]?.string ?? "")
        if !generic || files.tokenizerJSON == nil {
            if let v = config["do_lower_case"] { normalizer.lowercase = try bool(v, "do_lower_case", configFile) }
            if let v = config["strip_accents"] { normalizer.stripAccents = v.isNull ? nil : try bool(v, "strip_accents", configFile) }
            if let v = config["tokenize_chinese_chars"] { normalizer.handleChineseChars = try bool(v, "tokenize_chinese_chars", configFile) }
        }

        // The model's own vocabulary must hold the unknown token; added tokens stay outside it, as in HF.
        let wordPiece = try WordPiece(vocabulary: vocabulary, unkToken: unkToken, continuingSubwordPrefix: prefix, maxInputCharsPerWord: maxChars)

        // Added tokens from tokenizer_config.json, then the named special tokens, as transformers
        // registers them: a token the vocabulary lacks gets the next free id.
        if let decoder = config["added_tokens_decoder"]?.object {
            for (key, v) in decoder {
                guard let id = Int(key), let t = try addedToken(v, id: id, special: false, what: "added_tokens_decoder[\(key)]", file: configFile) else {
                    throw WconvError.invalid("added_tokens_decoder key \"\(key)\" is not an id, or its entry has no \"content\"", file: configFile)
                }
                addedTokens.append(t)
                if vocabulary.id(for: t.content) == nil { vocabulary.add(t.content, id: id) }
            }
        }
        for var t in specialTokenKeys.compactMap({ specials[$0.key] }) + extraSpecials {
            if addedTokens.contains(where: { $0.content.unicodeScalars.elementsEqual(t.content.unicodeScalars) }) { continue }
            if let id = vocabulary.id(for: t.content) {
                t.id = id
            } else {
                t.id = vocabulary.nextFreeId
                vocabulary.add(t.content, id: t.id)
            }
            addedTokens.append(t)
        }

        if postProcessor == nil {
            guard let cls = vocabulary.id(for: specials["cls_token"]!.content), let sep = vocabulary.id(for: specials["sep_token"]!.content) else {
                throw WconvError.invalid("the vocabulary has no \(specials["cls_token"]!.content) or \(specials["sep_token"]!.content) token, which BERT puts around every text", file: files.vocabTxt ?? files.directory)
            }
            postProcessor = .bert(cls: cls, sep: sep)
        }
        let padToken = specials["pad_token"]!.content
        guard let padId = vocabulary.id(for: padToken) else {
            throw WconvError.invalid("the padding token \"\(padToken)\" is not in the vocabulary; set pad_token in tokenizer_config.json", file: configFile)
        }
        var result = TokenizerConfig(normalizer: normalizer, wordPiece: wordPiece, vocabulary: vocabulary, addedTokens: addedTokens,
                                     postProcessor: postProcessor!, padToken: padToken, padId: padId)
        // transformers writes 1e30 for "no limit"; only a length an Int holds is a limit.
        if let m = config["model_max_length"]?.int, m > 0 { result.modelMaxLength = m }
        result.paddingSide = try side(config["padding_side"], "padding_side", configFile) ?? .right
        result.truncationSide = try side(config["truncation_side"], "truncation_side", configFile) ?? .right
        return result
    }

    private static func bool(_ v: JSONValue, _ key: String, _ file: String) throws -> Bool {
        guard let b = v.bool else { throw WconvError.invalid("\(key) must be true or false, not \(v.serialized)", file: file) }
        return b
    }

    private static func side(_ v: JSONValue?, _ key: String, _ file: String) throws -> TextSide? {
        guard let v, !v.isNull else { return nil }
        guard let s = v.string, let side = TextSide(rawValue: s) else {
            throw WconvError.invalid("\(key) must be \"left\" or \"right\", not \(v.serialized)", file: file)
        }
        return side
    }

    /// A token written as a string, or as an object with `content` and the AddedToken flags; nil
    /// for JSON null.
    static func addedToken(_ v: JSONValue, id: Int, special: Bool, what: String, file: String) throws -> AddedToken? {
        if v.isNull { return nil }
        if let s = v.string { return AddedToken(content: s, id: id, special: special) }
        guard let content = v["content"]?.string else {
            throw WconvError.invalid("\(what) must be a string or an object with a \"content\" string, not \(v.serialized)", file: file)
        }
        let isSpecial = v["special"]?.bool ?? special
        return AddedToken(content: content, id: id, special: isSpecial, normalized: v["normalized"]?.bool,
                          lstrip: v["lstrip"]?.bool ?? false, rstrip: v["rstrip"]?.bool ?? false,
                          singleWord: v["single_word"]?.bool ?? false)
    }
}
