import Foundation

/// The character classes of Hugging Face's BERT normaliser and pre-tokeniser, taken from the
/// standard library's Unicode properties (no hand-written category tables).
///
/// HF `tokenizers` takes white space and case mappings from Rust's standard library (current
/// Unicode), but the control, punctuation and non-spacing-mark categories from the
/// `unicode_categories` crate, whose tables are Unicode 8.0, and canonical decompositions from a
/// crate of the same era: a scalar assigned after 8.0 is in none of those categories there and
/// keeps its composed form. `Unicode.Scalar.Properties.age` reproduces that. Seven scalars changed
/// category since 8.0; they are the only hand-listed entries. fixtures/text/unicode_classes.json,
/// written from HF by tools/fixtures/text/gen_tokenizer.py, checks every scalar against HF.
enum BertCharacterClasses {
    /// Tab, newline, carriage return, or the Unicode White_Space property (Rust `char::is_whitespace`).
    @inline(__always)
    static func isWhitespace(_ s: Unicode.Scalar) -> Bool {
        s.value < 0x80 ? (s.value == 0x20 || (0x09...0x0D).contains(s.value)) : s.properties.isWhitespace
    }

    /// What BERT's `clean_text` deletes: Cc, Cf and Co as of Unicode 8.0, except tab, newline and
    /// carriage return (which it turns into spaces), plus NUL and U+FFFD.
    static func isRemovedByCleanText(_ s: Unicode.Scalar) -> Bool {
        switch s.value {
        case 0, 0xFFFD: return true
        case 0x09, 0x0A, 0x0D: return false
        case 0x20...0x7E: return false
        default: break
        }
        guard let category = unicode8Category(s) else { return false }
        switch category {
        case .control, .format, .privateUse: return true
        default: return false
        }
    }

    /// BERT's punctuation: every ASCII symbol (`!`…`/`, `:`…`@`, `[`…`` ` ``, `{`…`~`), and the P*
    /// categories as of Unicode 8.0.
    static func isPunctuation(_ s: Unicode.Scalar) -> Bool {
        let v = s.value
        if v < 0x80 {
            return (33...47).contains(v) || (58...64).contains(v) || (91...96).contains(v) || (123...126).contains(v)
        }
        guard let category = unicode8Category(s) else { return false }
        switch category {
        case .connectorPunctuation, .dashPunctuation, .openPunctuation, .closePunctuation,
             .initialPunctuation, .finalPunctuation, .otherPunctuation:
            return true
        default:
            return false
        }
    }

    /// Mn as of Unicode 8.0: what `strip_accents` drops after NFD.
    static func isNonspacingMark(_ s: Unicode.Scalar) -> Bool {
        s.value >= 0x300 && unicode8Category(s) == .nonspacingMark
    }

    /// The CJK ideograph blocks BERT surrounds with spaces (the ranges are BERT's definition, not
    /// a Unicode property: Hangul, kana and CJK punctuation are not in them).
    static func isChineseCharacter(_ s: Unicode.Scalar) -> Bool {
        switch s.value {
        case 0x4E00...0x9FFF, 0x3400...0x4DBF, 0x20000...0x2A6DF, 0x2A700...0x2B73F,
             0x2B740...0x2B81F, 0x2B920...0x2CEAF, 0xF900...0xFAFF, 0x2F800...0x2FA1F:
            return true
        default:
            return false
        }
    }

    /// True when the scalar existed in Unicode 8.0.
    @inline(__always)
    static func isInUnicode8(_ s: Unicode.Scalar) -> Bool {
        guard let age = s.properties.age else { return false }
        return age.major < 8 || (age.major == 8 && age.minor == 0)
    }

    /// The general category the reference's Unicode 8.0 tables give; nil for scalars assigned later.
    static func unicode8Category(_ s: Unicode.Scalar) -> Unicode.GeneralCategory? {
        if let changed = categoryChangedSince8[s.value] { return changed }
        return isInUnicode8(s) ? s.properties.generalCategory : nil
    }

    /// Scalars whose general category changed after Unicode 8.0 (their 8.0 category).
    private static let categoryChangedSince8: [UInt32: Unicode.GeneralCategory] = [
        0x166D: .otherPunctuation,   // CANADIAN SYLLABICS CHI SIGN, now So
        0x111C9: .otherPunctuation,  // SHARADA SANDHI MARK, now Mn
        0x1734: .nonspacingMark,     // HANUNOO SIGN PAMUDPOD, now Mc
        0x1171E: .nonspacingMark,    // AHOM CONSONANT SIGN MEDIAL RA, now Mc
        0x1885: .otherLetter,        // MONGOLIAN LETTER ALI GALI BALUDA, now Mn
        0x1886: .otherLetter,        // MONGOLIAN LETTER ALI GALI THREE BALUDA, now Mn
        0xA9BD: .spacingMark,        // JAVANESE CONSONANT SIGN KERET, now Mn
    ]
}
