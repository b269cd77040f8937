import ArgumentParser
import Foundation
import Wconv

struct TokenizeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "tokenize", abstract: "Turns texts into a model's input ids, as its Hugging Face tokenizer does.",
        discussion: "MODEL is a Hugging Face model folder, or its model.safetensors / pytorch_model.bin with the tokenizer files beside it (tokenizer.json, or vocab.txt with tokenizer_config.json). WordPiece tokenizers (BERT, DistilBERT, MiniLM, …) are supported. The batch is padded to its longest text; texts are truncated to --max-length, else to the model's model_max_length.")

    @Argument(help: "Model folder, or a weights file inside one.") var model: String
    @OptionGroup var texts: TextInputOptions
    @Flag(name: .long, help: "Print {\"input_ids\", \"attention_mask\", \"token_type_ids\"} as JSON on stdout.") var json = false

    func validate() throws {
        guard !texts.text.isEmpty else { throw ValidationError("give at least one --text \"…\"") }
        try texts.check()
    }

    func run() throws {
        let tokenizer = try WordPieceTokenizer(model: model)
        let batch = try tokenizer.encodeBatch(texts.text, pairs: texts.pairs, maxLength: texts.maxLength)
        if json {
            // One row per line (arrays of numbers stay on one line): the rows are what a reader compares.
            func rows(_ r: [[Int]]) -> JSONValue { .array(r.map { .array($0.map(JSONValue.int)) }) }
            printJSON(.object([("input_ids", rows(batch.inputIds)), ("attention_mask", rows(batch.attentionMask)),
                               ("token_type_ids", rows(batch.tokenTypeIds))]))
            return
        }
        let vocab = tokenizer.config.vocabulary
        for (i, ids) in batch.inputIds.enumerated() {
            let real = zip(ids, batch.attentionMask[i]).filter { $0.1 == 1 }.map(\.0)
            print("text \(i + 1): \(real.count) tokens")
            print("  " + real.map { vocab.token(for: $0) ?? "<\($0)>" }.joined(separator: " "))
            print("  ids " + ids.map(String.init).joined(separator: " "))
        }
        if batch.truncatedCount > 0 {
            let limit = tokenizer.effectiveMaxLength(texts.maxLength).map(String.init) ?? "?"
            print("\(batch.truncatedCount) of \(texts.text.count) input(s) truncated to \(limit) tokens")
        }
    }
}
