import Foundation
import WconvFormats
import WconvTensor

/// The sentence-transformers modules after the encoder in a model folder: `modules.json` lists
/// them, `1_Pooling/config.json` says how token vectors become one sentence vector, a
/// `Normalize` module L2-normalises it, `sentence_bert_config.json` sets the maximum length.
/// Both layouts are read: hub folders (sentence-transformers 2.x: `pooling_mode_*_tokens` flags,
/// module types `sentence_transformers.models.*`) and sentence-transformers ≥ 5 (`pooling_mode`).
public struct SentencePooling: Sendable, Equatable {
    /// Pooling modes in the order sentence-transformers concatenates them when several are set.
    public enum Mode: String, Sendable, CaseIterable {
        case cls, max, mean
        case meanSqrtLen = "mean_sqrt_len_tokens"
        case weightedMean = "weightedmean"
        case lastToken = "lasttoken"

        /// The legacy `pooling_mode_…` flag in 1_Pooling/config.json.
        var legacyKey: String {
            switch self {
            case .cls: "pooling_mode_cls_token"
            case .max: "pooling_mode_max_tokens"
            case .mean: "pooling_mode_mean_tokens"
            case .meanSqrtLen: "pooling_mode_mean_sqrt_len_tokens"
            case .weightedMean: "pooling_mode_weightedmean_tokens"
            case .lastToken: "pooling_mode_lasttoken"
            }
        }
    }

    public var modes: [Mode]
    /// A `Normalize` module follows the pooling.
    public var normalize: Bool
    /// `max_seq_length` of sentence_bert_config.json: sentence-transformers truncates to it.
    public var maxSeqLength: Int?
    /// `do_lower_case` of sentence_bert_config.json: texts are lower-cased before tokenizing.
    public var lowercase: Bool

    public init(modes: [Mode], normalize: Bool, maxSeqLength: Int? = nil, lowercase: Bool = false) {
        self.modes = modes
        self.normalize = normalize
        self.maxSeqLength = maxSeqLength
        self.lowercase = lowercase
    }

    /// The pooling of the sentence-transformers folder `directory`, or nil when it has no
    /// modules.json (a plain Hugging Face folder). Modules other than the encoder, Pooling and
    /// Normalize (Dense projections, …) are refused: the embedding would silently differ.
    public static func load(directory: String) throws -> SentencePooling? {
        let modulesPath = (directory as NSString).appendingPathComponent("modules.json")
        guard FileManager.default.fileExists(atPath: modulesPath) else { return nil }
        guard let modules = try readJSONFile(modulesPath, what: "modules.json").array else {
            throw WconvError.invalid("modules.json is not a list of modules", file: modulesPath)
        }
        var pooling: SentencePooling?
        var normalize = false
        for (i, m) in modules.enumerated() {
            guard let type = m["type"]?.string else { throw WconvError.invalid("module \(i) has no \"type\"", file: modulesPath) }
            switch type.split(separator: ".").last.map(String.init) ?? type {
            case "Transformer":
                guard i == 0 else { throw WconvError.invalid("the Transformer module is module \(i), not the first", file: modulesPath) }
            case "Pooling":
                guard pooling == nil, !normalize else { throw WconvError.invalid("module \(i): a second Pooling, or Pooling after Normalize, is not supported", file: modulesPath) }
                let dir = (directory as NSString).appendingPathComponent(m["path"]?.string ?? "1_Pooling")
                pooling = try SentencePooling(config: (dir as NSString).appendingPathComponent("config.json"))
            case "Normalize":
                guard pooling != nil else { throw WconvError.invalid("module \(i): Normalize before any Pooling is not supported", file: modulesPath) }
                normalize = true
            default:
                throw WconvError(.invalidInput, "sentence-transformers module \(i) '\(type)' is not supported (wconv applies Transformer, Pooling and Normalize); its embeddings would differ", file: modulesPath)
            }
        }
        guard var result = pooling else { throw WconvError.invalid("modules.json lists no Pooling module", file: modulesPath) }
        result.normalize = normalize
        let bertConfig = (directory as NSString).appendingPathComponent("sentence_bert_config.json")
        if FileManager.default.fileExists(atPath: bertConfig) {
            let c = try readJSONFile(bertConfig, what: "sentence_bert_config.json")
            result.maxSeqLength = c["max_seq_length"]?.int
            result.lowercase = c["do_lower_case"]?.bool ?? false
        }
        return result
    }

    /// Reads 1_Pooling/config.json: `pooling_mode` (a name or a list), else the legacy flags;
    /// neither means mean pooling, as sentence-transformers defaults.
    init(config path: String) throws {
        let c = try readJSONFile(path, what: "1_Pooling/config.json")
        var modes: [Mode] = []
        if let m = c["pooling_mode"] {
            for v in m.array ?? [m] {
                guard let s = v.string, let mode = Mode(rawValue: s) else {
                    throw WconvError(.invalidInput, "pooling_mode \(v) is not one of \(Mode.allCases.map(\.rawValue))", file: path)
                }
                modes.append(mode)
            }
        } else {
            modes = Mode.allCases.filter { c[$0.legacyKey]?.bool ?? false }
        }
        if c["include_prompt"]?.bool == false {
            throw WconvError(.invalidInput, "include_prompt false (pooling that skips an instruction prefix) is not supported", file: path)
        }
        self.init(modes: modes.isEmpty ? [.mean] : modes, normalize: false)
    }

    /// Pools token vectors `hidden` [B, T, D] with `mask` (B rows of T, 1 = token) into [B, D · modes].
    public func pool(_ hidden: Tensor, mask: [[Int]]) throws -> Tensor {
        guard hidden.rank == 3, mask.count == hidden.shape[0], mask.allSatisfy({ $0.count == hidden.shape[1] }) else {
            throw WconvError.invalid("cannot pool token vectors \(hidden.shape) with a \(mask.count)×\(mask.first?.count ?? 0) attention mask")
        }
        let (b, t, d) = (hidden.shape[0], hidden.shape[1], hidden.shape[2])
        let h = hidden.floats()
        let width = d * modes.count
        var out = [Float](repeating: 0, count: b * width)
        for r in 0..<b {
            let m = mask[r]
            let row = { (i: Int) in h[(r * t + i) * d ..< (r * t + i + 1) * d] }
            let tokens = m.indices.filter { m[$0] != 0 }
            for (k, mode) in modes.enumerated() {
                var v = [Float](repeating: 0, count: d)
                switch mode {
                case .cls:
                    // The first real token (left padding puts it after the pads).
                    v = Array(row(m.firstIndex { $0 != 0 } ?? 0))
                case .lastToken:
                    // The last real token, or the last position of an all-padding row.
                    v = tokens.last.map { Array(row($0)) } ?? [Float](repeating: 0, count: d)
                case .max:
                    v = [Float](repeating: -.infinity, count: d)
                    for i in tokens { for (j, x) in row(i).enumerated() { v[j] = Swift.max(v[j], x) } }
                case .mean, .meanSqrtLen:
                    var sum = [Double](repeating: 0, count: d)
                    for i in tokens { for (j, x) in row(i).enumerated() { sum[j] += Double(x) } }
                    let n = Swift.max(Double(tokens.count), 1e-9)
                    let denominator = mode == .mean ? n : n.squareRoot()
                    v = sum.map { Float($0 / denominator) }
                case .weightedMean:
                    // Weights 1, 2, … counted from the first real token.
                    let start = m.firstIndex { $0 != 0 } ?? 0
                    var sum = [Double](repeating: 0, count: d), weights = 0.0
                    for i in tokens {
                        let w = Double(i - start + 1)
                        weights += w
                        for (j, x) in row(i).enumerated() { sum[j] += w * Double(x) }
                    }
                    v = sum.map { Float($0 / Swift.max(weights, 1e-9)) }
                }
                for j in 0..<d { out[r * width + k * d + j] = v[j] }
            }
            if normalize {
                // torch.nn.functional.normalize: x / max(‖x‖₂, 1e-12).
                let slice = out[r * width ..< (r + 1) * width]
                let norm = Swift.max(slice.reduce(0.0) { $0 + Double($1) * Double($1) }.squareRoot(), 1e-12)
                for j in 0..<width { out[r * width + j] = Float(Double(out[r * width + j]) / norm) }
            }
        }
        return Tensor(shape: [b, width], floats: out)
    }
}
