import WconvFormats
import WconvTensor

/// The sections of HF's tokenizer.json that a WordPiece tokenizer reads. Anything wconv would
/// tokenise differently (another model type, normaliser or pre-tokeniser) is refused by name.
enum TokenizerJSON {
    struct WordPieceSection {
        var vocabulary: Vocabulary
        var unkToken: String
        var prefix: String
        var maxInputCharsPerWord: Int
    }

    static func wordPieceModel(_ v: JSONValue?, file: String) throws -> WordPieceSection {
        guard let model = v, model.object != nil else {
            throw WconvError.invalid("tokenizer.json has no \"model\" object", file: file)
        }
        // Files from older `tokenizers` versions omit "type"; WordPiece is the one with this key.
        let type = model["type"]?.string ?? (model["max_input_chars_per_word"] != nil ? "WordPiece" : "unknown")
        guard type == "WordPiece" else {
            throw WconvError.invalid("the tokenizer model is \(type); wconv reads WordPiece tokenizers (BERT, DistilBERT, MiniLM, …) so far", file: file)
        }
        guard let vocab = model["vocab"]?.object else {
            throw WconvError.invalid("model.vocab must be an object of token: id", file: file)
        }
        var entries: [(String, Int)] = []
        entries.reserveCapacity(vocab.count)
        for (token, id) in vocab {
            guard let i = id.int, i >= 0 else {
                throw WconvError.invalid("model.vocab[\"\(token)\"] is \(id.serialized), not a token id", file: file)
            }
            entries.append((token, i))
        }
        let maxChars = model["max_input_chars_per_word"]?.int ?? 100
        guard maxChars >= 0 else { throw WconvError.invalid("model.max_input_chars_per_word is negative", file: file) }
        return WordPieceSection(vocabulary: Vocabulary(entries), unkToken: model["unk_token"]?.string ?? "[UNK]",
                                prefix: model["continuing_subword_prefix"]?.string ?? "##", maxInputCharsPerWord: maxChars)
    }

    /// A BertNormalizer, or none (JSON null: text is used as written).
    static func normalizer(_ v: JSONValue?, file: String) throws -> BertNormalizer {
        guard let v, !v.isNull else {
            return BertNormalizer(cleanText: false, handleChineseChars: false, stripAccents: false, lowercase: false)
        }
        guard v["type"]?.string == "BertNormalizer" else {
            throw WconvError.invalid("normalizer \(v["type"]?.string ?? v.serialized) is not supported; wconv applies BertNormalizer", file: file)
        }
        func flag(_ key: String, _ def: Bool) throws -> Bool {
            guard let x = v[key], !x.isNull else { return def }
            guard let b = x.bool else { throw WconvError.invalid("normalizer.\(key) must be true or false", file: file) }
            return b
        }
        var strip: Bool? = nil
        if let x = v["strip_accents"], !x.isNull {
            guard let b = x.bool else { throw WconvError.invalid("normalizer.strip_accents must be true, false or null", file: file) }
            strip = b
        }
        return BertNormalizer(cleanText: try flag("clean_text", true), handleChineseChars: try flag("handle_chinese_chars", true),
                              stripAccents: strip, lowercase: try flag("lowercase", true))
    }

    static func checkPreTokenizer(_ v: JSONValue?, file: String) throws {
        let type = v?["type"]?.string
        guard type == "BertPreTokenizer" else {
            throw WconvError.invalid("pre_tokenizer \(type ?? v?.serialized ?? "null") is not supported; wconv splits words as BertPreTokenizer does", file: file)
        }
    }

    /// TemplateProcessing, BertProcessing or RobertaProcessing (a Sequence may wrap one, beside
    /// ByteLevel, which changes no ids); JSON null adds no special tokens.
    static func postProcessor(_ v: JSONValue?, vocabulary: Vocabulary, file: String) throws -> TemplatePostProcessor {
        guard let v, !v.isNull else { return .plain }
        switch v["type"]?.string {
        case "TemplateProcessing":
            guard let specials = v["special_tokens"]?.object else {
                throw WconvError.invalid("post_processor.special_tokens must be an object", file: file)
            }
            func pieces(_ key: String) throws -> [TemplatePostProcessor.Piece] {
                guard let items = v[key]?.array else { throw WconvError.invalid("post_processor.\(key) must be a list", file: file) }
                return try items.map { item in
                    if let s = item["SpecialToken"] {
                        guard let name = s["id"]?.string, let ids = specials[name]?["ids"]?.array?.compactMap(\.int) else {
                            throw WconvError.invalid("post_processor.\(key): special token \(s["id"]?.serialized ?? "?") is not in special_tokens", file: file)
                        }
                        return .special(ids: ids, typeId: s["type_id"]?.int ?? 0)
                    }
                    if let s = item["Sequence"] {
                        switch s["id"]?.string {
                        case "A": return .first(typeId: s["type_id"]?.int ?? 0)
                        case "B": return .second(typeId: s["type_id"]?.int ?? 0)
                        default: break
                        }
                    }
                    throw WconvError.invalid("post_processor.\(key) has an entry that is neither SpecialToken nor Sequence A/B: \(item.serialized)", file: file)
                }
            }
            return TemplatePostProcessor(single: try pieces("single"), pair: try pieces("pair"))
        case "BertProcessing", "RobertaProcessing":
            guard let cls = v["cls"]?[1]?.int, let sep = v["sep"]?[1]?.int else {
                throw WconvError.invalid("post_processor.cls and .sep must be [token, id] pairs", file: file)
            }
            return v["type"]?.string == "BertProcessing" ? .bert(cls: cls, sep: sep) : .roberta(cls: cls, sep: sep)
        case "Sequence":
            let inner = (v["processors"]?.array ?? []).filter { $0["type"]?.string != "ByteLevel" }
            guard inner.count <= 1 else {
                throw WconvError.invalid("post_processor Sequence with \(inner.count) id-changing processors is not supported", file: file)
            }
            return try postProcessor(inner.first ?? .null, vocabulary: vocabulary, file: file)
        default:
            throw WconvError.invalid("post_processor \(v["type"]?.string ?? v.serialized) is not supported", file: file)
        }
    }
}
