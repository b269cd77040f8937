import ArgumentParser

/// `--text`, `--text-pair`, `--max-length`: texts for a model's own tokenizer (tokenize, run).
struct TextInputOptions: ParsableArguments {
    @Option(name: .long, help: "A text (repeat for a batch).")
    var text: [String] = []

    @Option(name: .long, help: "The second text of a pair (repeat: one per --text).")
    var textPair: [String] = []

    @Option(name: .long, help: "Longest input in tokens, special tokens included (default: the model's).")
    var maxLength: Int?

    /// The pair texts, nil when none were given.
    var pairs: [String]? { textPair.isEmpty ? nil : textPair }

    /// Checks the options agree (ArgumentParser does not call `validate` on option groups of a
    /// command that also validates, so commands call this).
    func check() throws {
        guard textPair.isEmpty || textPair.count == text.count else {
            throw ValidationError("\(text.count) --text but \(textPair.count) --text-pair; give one --text-pair per --text, or none")
        }
        if let maxLength, maxLength < 1 { throw ValidationError("--max-length must be at least 1") }
    }
}
