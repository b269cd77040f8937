import Foundation

/// BERT's text normalisation, step for step as Hugging Face's `BertNormalizer` (tokenizer.json
/// `"normalizer": {"type": "BertNormalizer", …}`) and `BasicTokenizer` options:
/// 1. `cleanText`: delete NUL, U+FFFD and control/format/private-use characters; every white-space
///    character (tab, newline, NBSP, ideographic space, …) becomes a plain space;
/// 2. `handleChineseChars`: a space before and after each CJK ideograph, so each is a word;
/// 3. accent stripping: canonical decomposition (NFD), then non-spacing marks (Mn) removed;
/// 4. `lowercase`: each scalar's full lower-case mapping, one scalar at a time (no final-sigma rule).
///
/// Text is handled as Unicode scalars throughout: Swift's `String` equality is canonical
/// equivalence, which would merge the NFC and NFD spellings HF keeps apart.
public struct BertNormalizer: Sendable, Equatable {
    public var cleanText: Bool
    public var handleChineseChars: Bool
    /// nil follows `lowercase`, as HF and the original BERT do.
    public var stripAccents: Bool?
    public var lowercase: Bool

    public init(cleanText: Bool = true, handleChineseChars: Bool = true, stripAccents: Bool? = nil, lowercase: Bool = true) {
        self.cleanText = cleanText
        self.handleChineseChars = handleChineseChars
        self.stripAccents = stripAccents
        self.lowercase = lowercase
    }

    /// Whether accents are stripped once `stripAccents`'s default is resolved.
    public var stripsAccents: Bool { stripAccents ?? lowercase }

    public func normalize(_ text: [Unicode.Scalar]) -> [Unicode.Scalar] {
        typealias C = BertCharacterClasses
        var s = text
        if cleanText {
            s = s.compactMap { c in C.isRemovedByCleanText(c) ? nil : (C.isWhitespace(c) ? " " : c) }
        }
        if handleChineseChars, s.contains(where: C.isChineseCharacter) {
            var out: [Unicode.Scalar] = []
            out.reserveCapacity(s.count + 8)
            for c in s {
                if C.isChineseCharacter(c) { out += [" ", c, " "] } else { out.append(c) }
            }
            s = out
        }
        if stripsAccents {
            s = BertNormalizer.canonicalDecomposition(s).filter { !C.isNonspacingMark($0) }
        }
        if lowercase {
            var out: [Unicode.Scalar] = []
            out.reserveCapacity(s.count)
            for c in s {
                if c.value < 0x80 {
                    out.append(c.value >= 0x41 && c.value <= 0x5A ? Unicode.Scalar(c.value + 0x20)! : c)
                } else {
                    out += c.properties.lowercaseMapping.unicodeScalars
                }
            }
            s = out
        }
        return s
    }

    /// NFD by Foundation, except that scalars newer than Unicode 8.0 stay as they are and break the
    /// canonical reordering around them, as in HF's decomposition tables (see BertCharacterClasses).
    static func canonicalDecomposition(_ scalars: [Unicode.Scalar]) -> [Unicode.Scalar] {
        if scalars.allSatisfy({ $0.isASCII }) { return scalars }
        var out: [Unicode.Scalar] = []
        out.reserveCapacity(scalars.count + 8)
        var run = String.UnicodeScalarView()
        func flush() {
            if run.isEmpty { return }
            out += String(run).decomposedStringWithCanonicalMapping.unicodeScalars
            run = String.UnicodeScalarView()
        }
        for c in scalars {
            if c.isASCII || BertCharacterClasses.isInUnicode8(c) {
                run.append(c)
            } else {
                flush()
                out.append(c)
            }
        }
        flush()
        return out
    }
}
