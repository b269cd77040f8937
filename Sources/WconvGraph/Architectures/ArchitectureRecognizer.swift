import WconvFormats
import Foundation
import OrderedCollections
import WconvTensor

/// One recognisable family. `build` either returns the graph with the evidence it matched on, or
/// throws `RecognitionFailure` saying why this family does not fit the keys and shapes.
protocol ArchitectureFamily {
    /// Name used by `--arch` and in reports (`resnet`, `efficientnet`, …).
    static var name: String { get }
    static func build(_ b: GraphBuilder, config: JSONValue?) throws -> ModelGraph
}

/// A tensor renamed on import, and the rule that renamed it.
public struct TensorRename: Codable, Equatable, Sendable {
    public var from: String
    public var to: String
    public var rule: String
}

/// The full outcome of recognition: the graph and how it was found.
public struct Recognition: Sendable {
    public var graph: ModelGraph
    public var family: String
    /// Which keys and shapes matched, in words.
    public var evidence: [String]
    public var renames: [TensorRename]
    /// Tensors the graph keeps but does not read, with the reason.
    public var unused: [String: String]
    /// Families tried before the match and why each failed.
    public var tried: [(family: String, reason: String)]
}

/// Recognises the architecture of a bare state dict from key patterns and shapes.
public enum ArchitectureRecognizer {
    static let families: [ArchitectureFamily.Type] = [
        ResNetFamily.self, EfficientNetFamily.self, MobileNetV2Family.self, MobileNetV3Family.self,
        VGGFamily.self, DenseNetFamily.self, BERTFamily.self, DistilBERTFamily.self, ConvNeXtFamily.self, ViTFamily.self, MTCNNFamily.self,
    ]

    /// Names accepted by `forced` (`--arch`).
    public static var familyNames: [String] { families.map { $0.name } }

    /// The graph for `bundle`, or a `WconvError(.invalidInput)` listing every family tried and why it failed.
    public static func recognize(_ bundle: TensorBundle, forced: String? = nil, configJSON: JSONValue? = nil) throws -> ModelGraph {
        try recognizeDetailed(bundle, forced: forced, configJSON: configJSON).graph
    }

    /// Like `recognize`, with evidence, renames and the reasons other families were rejected.
    public static func recognizeDetailed(_ bundle: TensorBundle, forced: String? = nil, configJSON: JSONValue? = nil) throws -> Recognition {
        let (match, tried) = try attempt(bundle, forced: forced, configJSON: configJSON)
        if let match { return match }
        let list = tried.map { "  \($0.family): \($0.reason)" }.joined(separator: "\n")
        let what = forced.map { "the file is not a \($0) model" } ?? "no known architecture matches these \(bundle.tensors.count) tensors"
        throw WconvError.invalid("\(what). Tried:\n\(list)\nThe tensors can still be inspected, converted and diffed as a weights-only model; use --arch NAME to force a family.")
    }

    /// Tries the families in order: the first match, and every family tried before it (or all of
    /// them, when none matched) with the reason it failed. Throws only for an unknown `forced` name.
    public static func attempt(_ bundle: TensorBundle, forced: String? = nil, configJSON: JSONValue? = nil) throws
        -> (Recognition?, [(family: String, reason: String)]) {
        let (tensors, renames) = stripWrapperPrefixes(bundle.tensors)
        var candidates = families
        if let forced {
            let f = normalizeFamily(forced)
            guard let fam = families.first(where: { $0.name == f }) else {
                throw WconvError(.usage, "unknown architecture '\(forced)'; known: \(familyNames.joined(separator: ", "))")
            }
            candidates = [fam]
        }
        var tried: [(family: String, reason: String)] = []
        for fam in candidates {
            let builder = GraphBuilder(tensors)
            do {
                var graph = try fam.build(builder, config: configJSON)
                var evidence = builder.evidence
                let renames = Self.compose(renames, builder.renames)
                if !renames.isEmpty {
                    let rules = Set(renames.map(\.rule)).sorted()
                    evidence.append("renamed \(renames.count) tensors: \(rules.joined(separator: "; "))")
                }
                graph.provenance.notes["recognition"] = evidence.joined(separator: "; ")
                if !bundle.aliases.isEmpty { graph.aliases = bundle.aliases }
                let used = Set(graph.nodes.flatMap(\.inputs))
                var unused: [String: String] = [:]
                var leftovers: [String] = []
                for key in graph.parameters.keys where !used.contains(key) {
                    if let why = builder.unusedReasons[key] { unused[key] = why } else {
                        leftovers.append(key)
                        unused[key] = "not part of the recognised \(fam.name) structure (kept; --arch forced the family)"
                    }
                }
                // A family whose graph would leave tensors unexplained is the wrong family (a custom
                // model that happens to share some names); only --arch may override that.
                if !leftovers.isEmpty && forced == nil {
                    let shown = leftovers.prefix(3).map { "'\($0)' \(graph.parameters[$0].map { "\($0.shape)" } ?? "")" }.joined(separator: ", ")
                    tried.append((fam.name, "the \(fam.name) layout matched but \(leftovers.count) tensor(s) would be left unexplained: \(shown)\(leftovers.count > 3 ? ", …" : "")"))
                    continue
                }
                return (Recognition(graph: graph, family: fam.name, evidence: evidence, renames: renames,
                                    unused: unused, tried: tried), tried)
            } catch let f as RecognitionFailure {
                tried.append((fam.name, f.reason))
            } catch let e as WconvError {
                tried.append((fam.name, e.message))
            }
        }
        return (nil, tried)
    }

    /// Chains prefix-strip renames with a family's own renames into one record per tensor.
    static func compose(_ first: [TensorRename], _ second: [TensorRename]) -> [TensorRename] {
        guard !second.isEmpty else { return first }
        var byTo: [String: TensorRename] = [:]
        for r in first { byTo[r.to] = r }
        var out = first.filter { r in !second.contains { $0.from == r.to } }
        for r in second {
            if let prev = byTo[r.from] {
                out.append(TensorRename(from: prev.from, to: r.to, rule: prev.rule + ", then " + r.rule))
            } else { out.append(r) }
        }
        return out
    }

    /// `resnet50` → `resnet`, `mobilenet_v3_large` → `mobilenet_v3`, `vgg16_bn` → `vgg`, …
    static func normalizeFamily(_ s: String) -> String {
        let l = s.lowercased().replacingOccurrences(of: "-", with: "_")
        if l.hasPrefix("mobilenet_v2") || l == "mobilenetv2" { return "mobilenet_v2" }
        if l.hasPrefix("mobilenet_v3") || l.hasPrefix("mobilenetv3") { return "mobilenet_v3" }
        if l.hasPrefix("distilbert") { return "distilbert" }
        if l.hasPrefix("bert") || l.hasPrefix("minilm") { return "bert" }
        if l.hasPrefix("vit") || l.hasPrefix("deit") { return "vit" }
        for f in ["resnet", "resnext", "wide_resnet", "efficientnet", "vgg", "densenet", "convnext"] where l.hasPrefix(f) {
            return f == "resnext" || f == "wide_resnet" ? "resnet" : f
        }
        return l
    }

    /// Strips wrapper prefixes that every key shares: `module.` (DataParallel), `_orig_mod.`
    /// (torch.compile), `model.` (Lightning and many training scripts). Repeats while one applies.
    static func stripWrapperPrefixes(_ tensors: OrderedDictionary<String, Tensor>) -> (OrderedDictionary<String, Tensor>, [TensorRename]) {
        let rules = [("module.", "DataParallel/DistributedDataParallel wrapper"), ("_orig_mod.", "torch.compile wrapper"),
                     ("model.", "training-wrapper attribute (Lightning and similar)")]
        var current = tensors
        var renames: [String: (String, [String])] = [:]  // final → (original, rules)
        for k in tensors.keys { renames[k] = (k, []) }
        var changed = true
        while changed && !current.isEmpty {
            changed = false
            for (p, why) in rules where current.keys.allSatisfy({ $0.hasPrefix(p) && $0.count > p.count }) {
                var next = OrderedDictionary<String, Tensor>()
                var nextRenames: [String: (String, [String])] = [:]
                for (k, v) in current {
                    let n = String(k.dropFirst(p.count))
                    next[n] = v
                    let r = renames[k] ?? (k, [])
                    nextRenames[n] = (r.0, r.1 + ["strip prefix '\(p)' (\(why))"])
                }
                current = next
                renames = nextRenames
                changed = true
            }
        }
        let list = current.keys.compactMap { k -> TensorRename? in
            guard let r = renames[k], !r.1.isEmpty else { return nil }
            return TensorRename(from: r.0, to: k, rule: r.1.joined(separator: ", then "))
        }
        return (current, list)
    }

    /// Reads `config.json` beside a model file, when present and a JSON object.
    public static func configBeside(path: String) -> JSONValue? {
        let dir = (path as NSString).deletingLastPathComponent
        let cfg = (dir.isEmpty ? "." : dir) + "/config.json"
        guard let data = FileManager.default.contents(atPath: cfg), data.count < 4 << 20,
              let obj = data.withUnsafeBytes({ try? JSONValue.parse($0, options: .python) }), obj.object != nil else { return nil }
        return obj
    }
}

/// Image-model input: NCHW float32 with dynamic batch and spatial size.
let imageInput = ValueInfo(name: "input", dtype: .f32, shape: [nil, 3, nil, nil])
