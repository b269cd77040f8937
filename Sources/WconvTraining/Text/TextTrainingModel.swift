import Foundation
import OrderedCollections
import WconvFormats
import WconvGraph
import WconvTensor

/// A BERT-family model read from a Hugging Face folder (or a weights file inside one): its graph,
/// config.json and where the tokenizer files are.
public struct TextTrainingModel {
    public enum Family: String, Sendable { case bert, distilbert }

    public var graph: ModelGraph
    public var family: Family
    /// The folder holding config.json and the tokenizer files.
    public var folder: String
    /// The weights file read.
    public var weights: String
    /// config.json, when the folder has one.
    public var config: JSONValue?

    /// The weights files transformers' `from_pretrained` reads, in its order of preference.
    public static let weightsFileNames = ["model.safetensors", "pytorch_model.bin"]

    /// True when `graph` takes token ids (a recognised BERT-family encoder).
    public static func isTextGraph(_ graph: ModelGraph) -> Bool {
        graph.inputs.contains { $0.name == "input_ids" } && Family(rawValue: graph.architecture ?? "") != nil
    }

    /// The weights file of `path`: the file itself, or in a model folder model.safetensors, else
    /// pytorch_model.bin.
    public static func weightsFile(_ path: String) throws -> String {
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDir) else { throw WconvError(.usage, "no such file or folder", file: path) }
        guard isDir.boolValue else { return path }
        guard let w = weightsFileNames.map({ (path as NSString).appendingPathComponent($0) }).first(where: { FileManager.default.fileExists(atPath: $0) }) else {
            throw WconvError.invalid("no weights in the folder: expected \(weightsFileNames.joined(separator: " or ")) (as save_pretrained writes them)", file: path)
        }
        return w
    }

    /// Reads `path`: a model folder (model.safetensors, else pytorch_model.bin) or a weights file.
    public static func load(_ path: String, toolVersion: String? = nil) throws -> TextTrainingModel {
        let weights = try weightsFile(path)
        return try TextTrainingModel(graph: ModelIO.load(path: weights, toolVersion: toolVersion), weights: weights)
    }

    /// A graph already read from `weights` (config.json and the tokenizer files sit beside it).
    public init(graph: ModelGraph, weights: String) throws {
        guard TextTrainingModel.isTextGraph(graph), let family = Family(rawValue: graph.architecture ?? "") else {
            throw WconvError.invalid("is not a BERT-family text model (recognised as \(graph.architecture ?? "weights only")); text training takes BERT, MiniLM or DistilBERT folders", file: weights)
        }
        let dir = (weights as NSString).deletingLastPathComponent
        self.graph = graph
        self.family = family
        self.folder = dir.isEmpty ? "." : dir
        self.weights = weights
        config = ArchitectureRecognizer.configBeside(path: weights)
    }

    /// True for a folder (a Hugging Face model folder: only text models come as folders).
    public static func isFolder(_ path: String) -> Bool {
        var isDir: ObjCBool = false
        return FileManager.default.fileExists(atPath: path, isDirectory: &isDir) && isDir.boolValue
    }

    /// Class names: config.json's `id2label` in id order, else the graph's labels (nil when neither
    /// says; transformers' placeholder names `LABEL_0`, … count as names).
    public var labels: [String]? { TextTrainingModel.classNames(config: config) ?? graph.labels }

    /// config.json's `id2label` as names in id order; nil when absent or not numbered 0..<n.
    public static func classNames(config: JSONValue?) -> [String]? {
        guard let o = config?["id2label"]?.object else { return nil }
        let pairs = o.compactMap { k, v in Int(k).flatMap { i in v.string.map { (i, $0) } } }
        guard pairs.count == o.count, Set(pairs.map(\.0)) == Set(0..<pairs.count) else { return nil }
        return pairs.sorted { $0.0 < $1.0 }.map(\.1)
    }

    /// The encoder's parameter prefix (`bert.`, `distilbert.` or none), from the word embeddings.
    public var basePrefix: String {
        let suffix = "embeddings.word_embeddings.weight"
        return graph.parameters.keys.first { $0.hasSuffix(suffix) }.map { String($0.dropLast(suffix.count)) } ?? ""
    }

    /// Hidden size (the word embeddings' width).
    public var hidden: Int { graph.parameters.first { $0.key.hasSuffix("embeddings.word_embeddings.weight") }?.value.shape.last ?? 0 }

    /// Encoder layers (`encoder.layer.N` / `transformer.layer.N`).
    public var layerCount: Int {
        let stem = basePrefix + (family == .bert ? "encoder.layer." : "transformer.layer.")
        let ids = graph.parameters.keys.compactMap { k -> Int? in
            guard k.hasPrefix(stem) else { return nil }
            return Int(k.dropFirst(stem.count).prefix { $0.isNumber })
        }
        return (ids.max() ?? -1) + 1
    }

    /// Positions the model has (the longest input it takes).
    public var maxPositions: Int? { graph.parameters.first { $0.key.hasSuffix("embeddings.position_embeddings.weight") }?.value.shape.first }

    /// The classifier dropout transformers uses: BERT `classifier_dropout`, else
    /// `hidden_dropout_prob` (0.1); DistilBERT `seq_classif_dropout` (0.2).
    public var classifierDropout: Double {
        switch family {
        case .bert: return config?["classifier_dropout"]?.double ?? config?["hidden_dropout_prob"]?.double ?? 0.1
        case .distilbert: return config?["seq_classif_dropout"]?.double ?? 0.2
        }
    }

    /// `--groups` for the BERT recipe: embeddings, each encoder layer, then the head — the pooler
    /// and classifier (BERT) or pre_classifier and classifier (DistilBERT) — input → output.
    public var groupSpec: String {
        let p = basePrefix
        let layers = (0..<layerCount).map { "layer.\($0)=\(p)\(family == .bert ? "encoder" : "transformer").layer.\($0)" }
        let head = family == .bert ? "head=\(p)pooler|classifier" : "head=pre_classifier|classifier"
        return (["embeddings=\(p)embeddings"] + layers + [head]).joined(separator: ",")
    }
}
