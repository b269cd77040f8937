import Foundation

/// A text encoder with its own tokenizer (a Hugging Face folder, or its weights file with the
/// tokenizer files beside it): texts in, the model's answer out — logits for a classifier, the
/// sentence embedding for a sentence-transformers folder, else the last hidden state.
public struct TextModel {
    public let graph: ModelGraph
    public let tokenizer: WordPieceTokenizer
    /// The sentence-transformers pooling when the folder has modules.json.
    public let pooling: SentencePooling?
    /// The weights file the graph came from.
    public let weightsPath: String

    public init(path: String, arch: String? = nil, toolVersion: String? = nil) throws {
        weightsPath = try TextTrainingModel.weightsFile(path)
        let folder = (weightsPath as NSString).deletingLastPathComponent
        var g = try ModelIO.loadRunnable(path: weightsPath, arch: arch, toolVersion: toolVersion)
        // A classifier's class names from config.json (the folder `finetune -o DIR/` writes).
        if g.labels == nil, g.outputs.first?.name == "logits" { g.labels = TextTrainingModel.classNames(config: ArchitectureRecognizer.configBeside(path: weightsPath)) }
        graph = g
        guard graph.inputs.contains(where: { $0.name == "input_ids" }) else {
            throw WconvError(.invalidInput, "the model takes \(graph.inputs.map(\.name)), not token ids: it is not a text model", file: weightsPath)
        }
        tokenizer = try WordPieceTokenizer(model: path)
        pooling = try SentencePooling.load(directory: folder.isEmpty ? "." : folder)
        if pooling != nil, !graph.outputs.contains(where: { $0.name == "last_hidden_state" }) {
            throw WconvError(.invalidInput, "a sentence-transformers folder whose model gives \(graph.outputs.map(\.name)), not last_hidden_state, cannot be pooled", file: weightsPath)
        }
    }

    /// Rows of the position-embedding table: the longest input the model takes, when it has one.
    public var positions: Int? {
        graph.parameters.first { $0.key.hasSuffix("position_embeddings.weight") }?.value.shape.first
    }

    /// The padded batch the model takes. Without `maxLength`, sentence-transformers' max_seq_length
    /// applies, else the tokenizer's model_max_length, capped to the model's positions (a tokenizer
    /// config without model_max_length would otherwise let long texts past the table).
    public func encode(_ texts: [String], pairs: [String]? = nil, maxLength: Int? = nil) throws -> BatchEncoding {
        if let maxLength, let positions, maxLength > positions {
            throw WconvError(.usage, "--max-length \(maxLength) is more than the model's \(positions) positions")
        }
        var limit = maxLength ?? pooling?.maxSeqLength ?? tokenizer.effectiveMaxLength(nil)
        if let positions { limit = min(limit ?? positions, positions) }
        let lower = pooling?.lowercase ?? false
        return try tokenizer.encodeBatch(lower ? texts.map { $0.lowercased() } : texts,
                                         pairs: lower ? pairs?.map { $0.lowercased() } : pairs, maxLength: limit)
    }

    /// What `run` gives: the batch, every graph output, and the primary result (`logits`,
    /// `sentence_embedding` or `last_hidden_state`).
    public struct Result {
        public var batch: BatchEncoding
        public var outputs: [String: Tensor]
        public var primaryName: String
        public var primary: Tensor { outputs[primaryName]! }
    }

    /// Runs `session` (built on `graph`) on the texts.
    public func run(_ texts: [String], pairs: [String]? = nil, maxLength: Int? = nil, session: InferenceSession) throws -> Result {
        let batch = try encode(texts, pairs: pairs, maxLength: maxLength)
        var outputs = try session.run(try batch.feeds(for: graph.inputs.map(\.name)))
        var primary = graph.outputs[0].name
        if let pooling {
            outputs["sentence_embedding"] = try pooling.pool(outputs["last_hidden_state"]!, mask: batch.attentionMask)
            primary = "sentence_embedding"
        }
        return Result(batch: batch, outputs: outputs, primaryName: primary)
    }
}
