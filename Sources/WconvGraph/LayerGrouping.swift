/// A coarse structural grouping of a model's parameters — stem, stages, head — for reports and as
/// a default for freezing plans. (The trainer's full name-mapping layer is separate; this is the
/// simple version the import report prints.)
public struct LayerGroup: Codable, Equatable, Sendable {
    public enum Kind: String, Codable, Sendable { case stem, stage, head, other }
    public var name: String
    public var kind: Kind
    public var parameterNames: [String]
    public init(name: String, kind: Kind, parameterNames: [String]) {
        self.name = name
        self.kind = kind
        self.parameterNames = parameterNames
    }
}

public enum LayerGrouping {
    /// Module names that are classification or task heads.
    static let headNames: Set<String> = ["fc", "classifier", "head", "heads", "_fc", "predictions", "pre_classifier", "pooler", "lm_head"]
    /// Containers whose numbered children are stages: `layer1`, `features.N`, `encoder.layer.N`, …
    static let stageContainers: Set<String> = ["features", "layer", "layers", "blocks", "stages", "block", "encoder", "transformer"]

    /// Groups in the order the graph first uses them (parameter order in a file is arbitrary:
    /// safetensors sorts names). Every parameter lands in exactly one group.
    public static func groups(for graph: ModelGraph) -> [LayerGroup] {
        let mobile = ["efficientnet", "mobilenet_v2", "mobilenet_v3"].contains(graph.architecture ?? "")
        let vggStage = graph.architecture == "vgg" ? vggStages(graph) : [:]
        // Position of each parameter in the computation; unused ones (BN counters) take their module's.
        var position: [String: Int] = [:]
        for (i, n) in graph.nodes.enumerated() { for name in n.inputs where position[name] == nil { position[name] = i } }
        func pos(_ name: String) -> Int {
            if let p = position[name] { return p }
            let module = name.split(separator: ".").dropLast().joined(separator: ".")
            return position[module + ".weight"] ?? position[module + ".running_mean"] ?? Int.max
        }
        var groups: [String: (LayerGroup, Int)] = [:]
        for name in graph.parameters.keys {
            var (gname, kind) = classify(name, mobile: mobile)
            if let s = vggStage[name] { (gname, kind) = ("features.stage\(s)", .stage) }
            let p = pos(name)
            if groups[gname] == nil { groups[gname] = (LayerGroup(name: gname, kind: kind, parameterNames: []), p) }
            groups[gname]!.0.parameterNames.append(name)
            groups[gname]!.1 = min(groups[gname]!.1, p)
        }
        var ordered = groups.values.sorted { ($0.1, $0.0.name) < ($1.1, $1.0.name) }.map(\.0)
        // Unclassified modules before the first stage belong to the stem.
        if let firstStage = ordered.firstIndex(where: { $0.kind == .stage }) {
            for i in 0..<firstStage where ordered[i].kind == .other { ordered[i].kind = .stem }
        }
        return ordered
    }

    static func classify(_ name: String, mobile: Bool) -> (String, LayerGroup.Kind) {
        var parts = name.split(separator: ".").map(String.init)
        // Task-model wrappers (`bert.`, `distilbert.`) are not structure.
        if let f = parts.first, ["bert", "distilbert", "roberta", "model", "module"].contains(f), parts.count > 2 { parts.removeFirst() }
        guard let first = parts.first else { return (name, .other) }
        if headNames.contains(first) { return ("head", .head) }
        if first == "embeddings" || first == "conv1" || first == "bn1" { return ("stem", .stem) }
        if first.hasPrefix("layer"), Int(first.dropFirst(5)) != nil { return (first, .stage) }
        for (i, p) in parts.enumerated() where i + 1 < parts.count {
            if p.hasPrefix("denseblock") || p.hasPrefix("transition") {
                return (parts[...i].joined(separator: "."), .stage)
            }
            if p == "conv0" || p == "norm0" { return ("stem", .stem) }
            if stageContainers.contains(p), let n = Int(parts[i + 1]) {
                let g = parts[...(i + 1)].joined(separator: ".")
                if mobile && p == "features" && n == 0 { return ("stem", .stem) }
                // `encoder.layer.N`: the number follows `layer`.
                if p == "encoder" || p == "transformer" { continue }
                return (g, .stage)
            }
        }
        return (first, .other)
    }

    /// VGG conv parameters by the number of max pools before them (features.N indices alone say nothing).
    static func vggStages(_ g: ModelGraph) -> [String: Int] {
        var pools = 0
        var out: [String: Int] = [:]
        for n in g.nodes {
            if n.op == .maxPool2d { pools += 1; continue }
            guard n.name.hasPrefix("features.") else { continue }
            for i in n.inputs where g.parameters[i] != nil { out[i] = pools + 1 }
        }
        for name in g.parameters.keys where name.hasPrefix("features.") && out[name] == nil {
            // BN counters are not node inputs: same stage as their module's other tensors.
            let module = name.split(separator: ".").dropLast().joined(separator: ".")
            if let s = out[module + ".weight"] { out[name] = s }
        }
        return out
    }
}
