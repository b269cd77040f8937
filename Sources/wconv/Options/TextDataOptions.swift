import ArgumentParser
import Wconv

/// The columns and length of text data (CSV, TSV, JSONL) for BERT-family models (`finetune`, `eval`).
struct TextDataOptions: ParsableArguments {
    @Option(name: .customLong("text-column"), help: "Text data: the column (CSV/TSV header, JSONL key) holding the text.") var textColumn: String = "text"
    @Option(name: .customLong("label-column"), help: "Text data: the column holding the class name.") var labelColumn: String = "label"
    @Option(name: .customLong("pair-column"), help: "Text data: the column holding the second text of a pair (token type 1).") var pairColumn: String?
    @Option(name: .customLong("max-length"), help: "Text data: longest input in tokens, special tokens included (default 128, at most the model's positions); longer texts are truncated and counted.") var maxLength: Int?

    var columns: TextColumns { TextColumns(text: textColumn, label: labelColumn, pair: pairColumn) }

    func validate() throws {
        if let m = maxLength, m < 1 { throw ValidationError("--max-length must be at least 1") }
    }

    /// `path` tokenized for `model`, its labels mapped onto `classes` when given.
    func read(_ path: String, model: TextTrainingModel, tokenizer: WordPieceTokenizer, maxLength: Int, classes: [String]? = nil) throws -> TokenizedTextSet {
        try TokenizedTextSet(TextDataset.read(path, columns: columns, classes: classes), tokenizer: tokenizer, maxLength: maxLength)
    }
}
