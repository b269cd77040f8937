import Foundation
import OrderedCollections
import WconvFormats
import WconvGraph
import WconvTensor
import WconvText

/// Writes a trained text classifier as the Hugging Face folder `save_pretrained` writes, so that
/// `AutoModelForSequenceClassification.from_pretrained(dir)` and `AutoTokenizer.from_pretrained(dir)`
/// load it: model.safetensors with transformers' key names (`bert.`/`distilbert.` before the
/// encoder, `classifier.*` and `pre_classifier.*` bare; metadata `format: pt`), config.json (the
/// source's, else one made from the weights' shapes, with `architectures`, `num_labels`, `id2label`,
/// `label2id`), and the source's tokenizer files.
public enum HFExport {
    /// The tokenizer files copied when the source folder has them.
    static let tokenizerFiles = ["tokenizer.json", "vocab.txt", "tokenizer_config.json", "special_tokens_map.json", "added_tokens.json"]

    /// Writes the folder `dir` (created when missing); returns the files written.
    @discardableResult
    public static func write(_ graph: ModelGraph, model: TextTrainingModel, classes: [String], to dir: String) throws -> [String] {
        do { try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true) } catch {
            throw WconvError(.runtime, "cannot create the output folder: \(error.localizedDescription)", file: dir)
        }
        func path(_ name: String) -> String { (dir as NSString).appendingPathComponent(name) }
        var written: [String] = []
        var bundle = TensorBundle(format: "safetensors", tensors: stateDict(graph, family: model.family))
        bundle.metadata = ["format": "pt"]
        try SafetensorsWriter.write(bundle, to: path("model.safetensors"))
        written.append(path("model.safetensors"))
        let config = try configJSON(graph, model: model, classes: classes)
        try writeText(config.text(.pythonIndented) + "\n", to: path("config.json"))
        written.append(path("config.json"))
        for name in tokenizerFiles {
            let src = (model.folder as NSString).appendingPathComponent(name)
            guard FileManager.default.fileExists(atPath: src), src != path(name) else { continue }
            guard let data = FileManager.default.contents(atPath: src) else { throw WconvError(.invalidInput, "cannot read the tokenizer file", file: src) }
            try writeBytes(data, to: path(name))
            written.append(path(name))
        }
        return written
    }

    /// The parameters the graph uses, under transformers' names for the task model.
    static func stateDict(_ graph: ModelGraph, family: TextTrainingModel.Family) -> OrderedDictionary<String, Tensor> {
        let used = Set(graph.nodes.flatMap(\.inputs))
        let base = family == .bert ? "bert." : "distilbert."
        let bare = family == .bert ? ["classifier."] : ["classifier.", "pre_classifier."]
        var out = OrderedDictionary<String, Tensor>()
        for (name, t) in graph.parameters where used.contains(name) {
            var n = name
            if n.hasPrefix("model." + base) { n = String(n.dropFirst(6)) }
            if !n.hasPrefix(base) && !bare.contains(where: { n.hasPrefix($0) }) { n = base + n }
            out[n] = t
        }
        return out
    }

    /// config.json of the task model.
    static func configJSON(_ graph: ModelGraph, model: TextTrainingModel, classes: [String]) throws -> JSONValue {
        var c = model.config?.object != nil ? model.config! : inferredConfig(graph, model: model)
        c["architectures"] = .array([.string(model.family == .bert ? "BertForSequenceClassification" : "DistilBertForSequenceClassification")])
        c["num_labels"] = .int(classes.count)
        c["id2label"] = .object(classes.enumerated().map { (String($0.offset), JSONValue.string($0.element)) })
        c["label2id"] = .object(classes.enumerated().map { ($0.element, JSONValue.int($0.offset)) })
        return c
    }

    /// A config.json from the weights and the graph, for a source without one.
    static func inferredConfig(_ graph: ModelGraph, model: TextTrainingModel) -> JSONValue {
        func shape(_ suffix: String) -> [Int] { graph.parameters.first { $0.key.hasSuffix(suffix) }?.value.shape ?? [] }
        let heads = graph.nodes.first { $0.op == .attention }?.attributes["heads"]?.intValue ?? max(1, model.hidden / 64)
        let eps = graph.nodes.first { $0.op == .layerNorm }?.attributes["epsilon"]?.floatValue ?? 1e-12
        var act = "gelu"
        if let a = graph.nodes.first(where: { [.gelu, .relu, .silu].contains($0.op) }) {
            act = a.op == .relu ? "relu" : a.op == .silu ? "silu" : (a.attributes["approximate"]?.stringValue == "tanh" ? "gelu_new" : "gelu")
        }
        let vocab = shape("embeddings.word_embeddings.weight").first ?? 0
        let positions = model.maxPositions ?? 512
        switch model.family {
        case .bert:
            let ffn = shape("encoder.layer.0.intermediate.dense.weight").first ?? 4 * model.hidden
            return .object([
                ("model_type", "bert"), ("vocab_size", .int(vocab)), ("hidden_size", .int(model.hidden)),
                ("num_hidden_layers", .int(model.layerCount)), ("num_attention_heads", .int(heads)), ("intermediate_size", .int(ffn)),
                ("hidden_act", .string(act)), ("max_position_embeddings", .int(positions)),
                ("type_vocab_size", .int(shape("embeddings.token_type_embeddings.weight").first ?? 2)), ("layer_norm_eps", .double(eps)),
                ("hidden_dropout_prob", 0.1), ("attention_probs_dropout_prob", 0.1), ("initializer_range", 0.02), ("pad_token_id", 0),
            ])
        case .distilbert:
            let ffn = shape("transformer.layer.0.ffn.lin1.weight").first ?? 4 * model.hidden
            return .object([
                ("model_type", "distilbert"), ("vocab_size", .int(vocab)), ("dim", .int(model.hidden)), ("n_layers", .int(model.layerCount)),
                ("n_heads", .int(heads)), ("hidden_dim", .int(ffn)), ("activation", .string(act)), ("max_position_embeddings", .int(positions)),
                ("dropout", 0.1), ("attention_dropout", 0.1), ("seq_classif_dropout", 0.2), ("initializer_range", 0.02), ("pad_token_id", 0),
            ])
        }
    }

    static func writeText(_ text: String, to path: String) throws { try writeBytes(Data(text.utf8), to: path) }

    static func writeBytes(_ data: Data, to path: String) throws {
        let w = try AtomicFileWriter(path: path)
        try data.withUnsafeBytes { try w.write($0) }
        try w.commit()
    }
}
