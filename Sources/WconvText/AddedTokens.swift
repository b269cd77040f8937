/// A token matched in the text before WordPiece sees it (HF's added vocabulary): BERT's `[CLS]`,
/// `[SEP]`, `[MASK]`, … written in the input become their own ids instead of word pieces.
public struct AddedToken: Sendable, Equatable {
    public var content: String
    public var id: Int
    public var special: Bool
    /// Matched in the normalised text (true) or in the text as written (false, BERT's specials).
    public var normalized: Bool
    /// Also swallows the white space before / after the match.
    public var lstrip: Bool
    public var rstrip: Bool
    /// Matches only when not glued to word characters on either side.
    public var singleWord: Bool

    public init(content: String, id: Int, special: Bool, normalized: Bool? = nil, lstrip: Bool = false,
                rstrip: Bool = false, singleWord: Bool = false) {
        self.content = content
        self.id = id
        self.special = special
        self.normalized = normalized ?? !special
        self.lstrip = lstrip
        self.rstrip = rstrip
        self.singleWord = singleWord
    }
}

/// A piece of input text: an added token's id, or text for the normaliser and WordPiece.
enum TextSegment: Equatable {
    case token(Int)
    case text([Unicode.Scalar])
}

/// Finds added tokens in text: leftmost match first, the longest token when several start there,
/// first the tokens matched as written, then (in what is left, once normalised) the others.
struct AddedVocabulary: Sendable {
    private(set) var tokens: [AddedToken] = []
    private var asWritten: [(AddedToken, [Unicode.Scalar])] = []
    private var normalizedPatterns: [(AddedToken, [Unicode.Scalar])] = []

    init(_ tokens: [AddedToken], normalize: ([Unicode.Scalar]) -> [Unicode.Scalar]) {
        for t in tokens where !t.content.isEmpty && !self.tokens.contains(where: { $0.content.unicodeScalars.elementsEqual(t.content.unicodeScalars) }) {
            self.tokens.append(t)
            if t.normalized {
                normalizedPatterns.append((t, normalize(Array(t.content.unicodeScalars))))
            } else {
                asWritten.append((t, Array(t.content.unicodeScalars)))
            }
        }
        normalizedPatterns.removeAll { $0.1.isEmpty }
    }

    /// Splits `text` on the added tokens; text pieces come back normalised.
    func split(_ text: [Unicode.Scalar], normalize: ([Unicode.Scalar]) -> [Unicode.Scalar]) -> [TextSegment] {
        var out: [TextSegment] = []
        for segment in AddedVocabulary.match(text, asWritten) {
            guard case .text(let raw) = segment else { out.append(segment); continue }
            out += AddedVocabulary.match(normalize(raw), normalizedPatterns)
        }
        return out
    }

    private static func match(_ s: [Unicode.Scalar], _ patterns: [(AddedToken, [Unicode.Scalar])]) -> [TextSegment] {
        if patterns.isEmpty || s.isEmpty { return [.text(s)] }
        var out: [TextSegment] = []
        var pieceStart = 0
        var i = 0
        while i < s.count {
            var best: (AddedToken, Int)? = nil
            for (token, p) in patterns where p.count > (best?.1 ?? 0) && i + p.count <= s.count {
                if s[i..<(i + p.count)].elementsEqual(p) { best = (token, p.count) }
            }
            guard let (token, length) = best else { i += 1; continue }
            var start = i, stop = i + length
            if token.singleWord {
                let wordBefore = start > 0 && isWordCharacter(s[start - 1])
                let wordAfter = stop < s.count && isWordCharacter(s[stop])
                if wordBefore || wordAfter { i += length; continue }  // matches do not overlap
            }
            if token.lstrip {
                while start > pieceStart && s[start - 1].properties.isWhitespace { start -= 1 }
            }
            if token.rstrip {
                while stop < s.count && s[stop].properties.isWhitespace { stop += 1 }
            }
            if pieceStart < start { out.append(.text(Array(s[pieceStart..<start]))) }
            out.append(.token(token.id))
            pieceStart = stop
            i = stop
        }
        if pieceStart < s.count { out.append(.text(Array(s[pieceStart...]))) }
        return out
    }

    /// A regular expression's `\w`: letters, marks, decimal digits, connector punctuation, joiners.
    private static func isWordCharacter(_ c: Unicode.Scalar) -> Bool {
        let p = c.properties
        if p.isAlphabetic || p.isJoinControl { return true }
        switch p.generalCategory {
        case .nonspacingMark, .spacingMark, .enclosingMark, .decimalNumber, .connectorPunctuation: return true
        default: return false
        }
    }
}
