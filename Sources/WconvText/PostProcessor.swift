/// How special tokens wrap one text or a pair, and which token type each part gets
/// (HF's `TemplateProcessing`; BERT's is `[CLS] A [SEP]` and `[CLS] A [SEP] B [SEP]`, with B and
/// its `[SEP]` of type 1).
public struct TemplatePostProcessor: Sendable, Equatable {
    public enum Piece: Sendable, Equatable {
        /// Fixed ids (usually one special token) with their token type.
        case special(ids: [Int], typeId: Int)
        /// The first text's tokens, with this token type.
        case first(typeId: Int)
        /// The second text's tokens (pairs only), with this token type.
        case second(typeId: Int)
    }

    public var single: [Piece]
    public var pair: [Piece]

    public init(single: [Piece], pair: [Piece]) {
        self.single = single
        self.pair = pair
    }

    /// BERT's template.
    public static func bert(cls: Int, sep: Int) -> TemplatePostProcessor {
        TemplatePostProcessor(
            single: [.special(ids: [cls], typeId: 0), .first(typeId: 0), .special(ids: [sep], typeId: 0)],
            pair: [.special(ids: [cls], typeId: 0), .first(typeId: 0), .special(ids: [sep], typeId: 0),
                   .second(typeId: 1), .special(ids: [sep], typeId: 1)])
    }

    /// RoBERTa's: `<s> A </s>` and `<s> A </s></s> B </s>`, all of type 0.
    public static func roberta(cls: Int, sep: Int) -> TemplatePostProcessor {
        TemplatePostProcessor(
            single: [.special(ids: [cls], typeId: 0), .first(typeId: 0), .special(ids: [sep], typeId: 0)],
            pair: [.special(ids: [cls], typeId: 0), .first(typeId: 0), .special(ids: [sep, sep], typeId: 0),
                   .second(typeId: 0), .special(ids: [sep], typeId: 0)])
    }

    /// No special tokens; the second text has type 1 (HF's behaviour without a post-processor).
    public static let plain = TemplatePostProcessor(single: [.first(typeId: 0)], pair: [.first(typeId: 0), .second(typeId: 1)])

    /// How many ids the template adds around the texts (what truncation leaves room for).
    public func addedTokenCount(pair isPair: Bool) -> Int {
        (isPair ? pair : single).reduce(0) { n, piece in
            if case .special(let ids, _) = piece { return n + ids.count }
            return n
        }
    }

    /// The ids, token types and special-token flags of the wrapped text(s).
    public func apply(first: [Int], second: [Int]?) -> Encoding {
        var e = Encoding()
        for piece in second == nil ? single : pair {
            switch piece {
            case .special(let ids, let typeId):
                e.append(ids, typeId: typeId, special: true)
            case .first(let typeId):
                e.append(first, typeId: typeId, special: false)
            case .second(let typeId):
                e.append(second ?? [], typeId: typeId, special: false)
            }
        }
        return e
    }
}
