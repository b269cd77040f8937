/// BERT's word splitting (HF `BertPreTokenizer`, the second half of `BasicTokenizer`): white space
/// separates words and is dropped; each punctuation character is a word of its own.
public enum BertPreTokenizer {
    public static func split(_ text: [Unicode.Scalar]) -> [[Unicode.Scalar]] {
        var words: [[Unicode.Scalar]] = []
        var current: [Unicode.Scalar] = []
        for c in text {
            if BertCharacterClasses.isWhitespace(c) {
                if !current.isEmpty { words.append(current); current = [] }
            } else if BertCharacterClasses.isPunctuation(c) {
                if !current.isEmpty { words.append(current); current = [] }
                words.append([c])
            } else {
                current.append(c)
            }
        }
        if !current.isEmpty { words.append(current) }
        return words
    }
}
