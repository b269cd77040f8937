import Foundation

import WconvTensor

/// A named set of parameters that trains, freezes and takes a learning rate together.
public struct LayerGroup: Codable, Equatable, Sendable {
    public enum Kind: String, Codable, Sendable { case stem, stage, head }
    public var name: String
    public var kind: Kind
    /// Trainable parameters (not buffers), in graph order.
    public var parameters: [String]
    /// Buffers (BN running statistics) that belong to the group.
    public var buffers: [String]
    /// BatchNorm nodes whose weight belongs to the group.
    public var batchNormNodes: [String]
    public var parameterCount: Int
}

/// Layer groups ordered input → output (design.md §1's name-mapping layer), from parameter
/// names and the graph's structure:
/// - stages from names: `layerN` (ResNet), `features.N` (torchvision), `features.denseblockN`,
///   `_blocks.N` (EfficientNet-PyTorch), `encoder.layer.N` (BERT), `encoder.layers.encoder_layer_N`
///   (torchvision ViT), `blocks.N` / `stages.N` / `layers.N` (timm), Keras `convN_blockM`,
///   `blockNx_…`, `block_N_…`;
/// - the head from names: first component `fc`, `classifier`, `head`, `heads`, `_fc`, `predictions`,
///   `last_linear`, `logits` (after wrapper prefixes `module.`, `model.`, `_orig_mod.`); when names say
///   nothing, the last linear/conv feeding the graph output;
/// - everything before the first stage is the stem; unnamed parameters between stages join the
///   stage before them (DenseNet transitions, final BatchNorms); a final LayerNorm between the last
///   stage and the head (ViT) joins the head;
/// - when no stage pattern matches, the body is cut into `fallbackGroups` structural groups of
///   equal parameter-tensor counts in graph order, as the seed's `layerwise_lr` does.
public struct LayerGrouping: Sendable {
    public var groups: [LayerGroup]
    /// How the groups were found: `names`, `user`, `structural`.
    public var method: String
    /// The head's output linear (node name), when the graph has one.
    public var headNode: String?

    public static let headNames: Set<String> = ["fc", "classifier", "head", "heads", "_fc", "predictions", "last_linear", "logits"]
    static let wrappers: Set<String> = ["module", "model", "_orig_mod"]
    static let stagePatterns: [String] = [
        #"^(layer\d+)\b"#, #"^(features\.denseblock\d+)\b"#, #"^(features\.\d+)\b"#, #"^(_blocks\.\d+)\b"#,
        #"^((?:[a-z_]+\.)?encoder\.layers?\.(?:encoder_layer_)?\d+)\b"#, #"^((?:blocks|stages|layers|vit\.layers)\.\d+)\b"#,
        #"^(conv\d+)_block\d+"#, #"^(block\d+)[a-z]?_"#, #"^(block_\d+)_"#, #"^(stage\d+)\b"#,
    ]

    /// Components of a name split at `.` and `/` with wrapper prefixes removed.
    static func components(_ name: String) -> [Substring] {
        var c = name.split(whereSeparator: { $0 == "." || $0 == "/" })
        while let f = c.first, wrappers.contains(String(f)), c.count > 1 { c.removeFirst() }
        return c
    }

    static func stripped(_ name: String) -> String {
        var s = Substring(name)
        var changed = true
        while changed {
            changed = false
            for w in wrappers where s.hasPrefix(w + ".") { s = s.dropFirst(w.count + 1); changed = true }
        }
        return String(s)
    }

    /// Parameters (not buffers) in the order the graph first uses them; parameters no node uses
    /// follow in file order.
    public static func orderedParameters(_ graph: ModelGraph) -> [String] {
        var seen = Set<String>(), order: [String] = []
        for node in graph.nodes {
            for i in node.inputs where graph.parameters[i] != nil && !seen.contains(i) { seen.insert(i); order.append(i) }
        }
        for k in graph.parameters.keys where !seen.contains(k) { order.append(k) }
        return order
    }

    /// Groups from user patterns `name=pat|pat,name=pat…`. A pattern matches a parameter whose
    /// (wrapper-stripped) name equals it or starts with it followed by `.`, `/` or `_`; `*` is a
    /// wildcard. Groups keep the order given (input → output); the last one is the head unless a
    /// group is named `head`. Every parameter must match a group.
    public static func parseUserGroups(_ spec: String) throws -> [(String, [String])] {
        var out: [(String, [String])] = []
        for part in spec.split(separator: ",") {
            let kv = part.split(separator: "=", maxSplits: 1)
            guard kv.count == 2, !kv[0].isEmpty, !kv[1].isEmpty else {
                throw WconvError(.usage, "--groups entry '\(part)' is not name=pattern|pattern (e.g. 'stem=conv1|bn1,stage1=layer1,head=fc')")
            }
            out.append((String(kv[0]).trimmingCharacters(in: .whitespaces), kv[1].split(separator: "|").map { String($0).trimmingCharacters(in: .whitespaces) }))
        }
        guard out.count >= 1 else { throw WconvError(.usage, "--groups is empty") }
        return out
    }

    static func matches(_ pattern: String, _ name: String) -> Bool {
        let n = stripped(name)
        if pattern.contains("*") {
            let re = "^" + NSRegularExpression.escapedPattern(for: pattern).replacingOccurrences(of: "\\*", with: ".*") + "($|[./_])"
            return n.range(of: re, options: .regularExpression) != nil || name.range(of: re, options: .regularExpression) != nil
        }
        for s in [n, name] {
            if s == pattern { return true }
            if s.hasPrefix(pattern), let c = s.dropFirst(pattern.count).first, c == "." || c == "/" || c == "_" { return true }
        }
        return false
    }

    public init(graph: ModelGraph, userGroups: String? = nil, fallbackGroups: Int = 4) throws {
        let order = LayerGrouping.orderedParameters(graph)
        let trainableOrder = order.filter { !graph.buffers.contains($0) }
        guard !trainableOrder.isEmpty else { throw WconvError.invalid("the model has no trainable parameters") }
        var key: [String: String] = [:]       // parameter → group name
        var names: [String] = []              // group names in order
        var kinds: [String: LayerGroup.Kind] = [:]
        func assign(_ p: String, _ g: String, _ k: LayerGroup.Kind) {
            key[p] = g
            if kinds[g] == nil { names.append(g); kinds[g] = k }
        }
        var method = "names"
        headNode = LayerGrouping.findHeadNode(graph)
        if let spec = userGroups {
            method = "user"
            let groups = try LayerGrouping.parseUserGroups(spec)
            let headName = groups.contains { $0.0 == "head" } ? "head" : groups.last!.0
            var unmatched: [String] = []
            for p in order {
                guard let g = groups.first(where: { $0.1.contains { LayerGrouping.matches($0, p) } }) else {
                    if !graph.buffers.contains(p) { unmatched.append(p) }
                    continue
                }
                key[p] = g.0
            }
            guard unmatched.isEmpty else {
                throw WconvError(.usage, "--groups leaves \(unmatched.count) parameter(s) without a group: \(unmatched.prefix(8).joined(separator: ", "))\(unmatched.count > 8 ? ", …" : ""); add patterns for them")
            }
            for (i, g) in groups.enumerated() {
                names.append(g.0)
                kinds[g.0] = g.0 == headName ? .head : (i == 0 ? .stem : .stage)
            }
        } else {
            // Head from names: a trailing run of parameters whose first component is a head name.
            var headSet = Set<String>()
            for p in trainableOrder.reversed() {
                guard let first = LayerGrouping.components(p).first, LayerGrouping.headNames.contains(String(first)) else { break }
                headSet.insert(p)
            }
            if headSet.isEmpty, let hn = headNode, let node = graph.nodes.first(where: { $0.name == hn }) {
                headSet = Set(node.inputs.filter { graph.parameters[$0] != nil && !graph.buffers.contains($0) })
            }
            if headSet.isEmpty, trainableOrder.count >= 2 {
                // Weights-only bundle: the final weight (+ bias) is the head.
                let last = trainableOrder[trainableOrder.count - 1]
                headSet.insert(last)
                if graph.parameters[last]?.rank == 1 { headSet.insert(trainableOrder[trainableOrder.count - 2]) }
            }
            let regexes = LayerGrouping.stagePatterns.compactMap { try? NSRegularExpression(pattern: $0) }
            func stage(_ p: String) -> String? {
                let bare = LayerGrouping.stripped(p)
                let s = bare.replacingOccurrences(of: "/", with: ".")
                let prefix = String(p.prefix(p.count - bare.count))   // keeps `module.` etc. in the group name
                for re in regexes {
                    if let m = re.firstMatch(in: s, range: NSRange(s.startIndex..., in: s)), let r = Range(m.range(at: 1), in: s) {
                        return prefix + String(s[r])
                    }
                }
                return nil
            }
            var body = trainableOrder.filter { !headSet.contains($0) }
            var staged = body.map { stage($0) }
            // A final LayerNorm after the last stage (ViT's `norm` / `encoder.ln` / `layernorm`, timm's
            // `fc_norm`) trains with the head, as timm's layer decay groups it. BatchNorms (running
            // statistics beside them, as DenseNet's norm5) stay with the stage before.
            if !headSet.isEmpty, let lastStaged = staged.lastIndex(where: { $0 != nil }) {
                for p in body[(lastStaged + 1)...].reversed() {
                    guard let cut = p.lastIndex(where: { $0 == "." || $0 == "/" }), (graph.parameters[p]?.rank ?? 2) <= 1 else { break }
                    let module = p[...cut]
                    let batchNorm = graph.parameters.keys.contains { $0.hasPrefix(module) && ($0.hasSuffix("running_mean") || $0.contains("moving_mean")) }
                    guard !batchNorm else { break }
                    headSet.insert(p)
                }
                body = trainableOrder.filter { !headSet.contains($0) }
                staged = body.map { stage($0) }
            }
            if staged.contains(where: { $0 != nil }) {
                var current = "stem"
                var kind = LayerGroup.Kind.stem
                for (p, st) in zip(body, staged) {
                    if let st, st != current {
                        current = st
                        kind = .stage
                    }
                    assign(p, current, kind)
                }
                // `features.0` of torchvision MobileNet/EfficientNet/ConvNeXt is the stem.
                if let first = names.first, first != "stem", first.hasSuffix("features.0") { kinds[first] = .stem }
            } else {
                method = "structural"
                let k = max(1, min(fallbackGroups - 1, body.count))
                let size = max(1, body.count / k)
                for (i, p) in body.enumerated() {
                    let g = min(i / size, k - 1)
                    assign(p, g == 0 ? "stem" : "block\(g)", g == 0 ? .stem : .stage)
                }
            }
            for p in trainableOrder where headSet.contains(p) { assign(p, "head", .head) }
            // Buffers follow the parameter of their node.
            for node in graph.nodes {
                guard let owner = node.inputs.first(where: { key[$0] != nil }) else { continue }
                for i in node.inputs where graph.buffers.contains(i) && key[i] == nil { key[i] = key[owner] }
            }
            for b in order where graph.buffers.contains(b) && key[b] == nil {
                // Weights-only bundles: `bn1.running_mean` joins the group of `bn1.weight`.
                let base = b.split(separator: ".").dropLast().joined(separator: ".")
                if let g = key[base + ".weight"] { key[b] = g }
            }
        }
        var groups: [LayerGroup] = names.map { LayerGroup(name: $0, kind: kinds[$0]!, parameters: [], buffers: [], batchNormNodes: [], parameterCount: 0) }
        let index = Dictionary(uniqueKeysWithValues: names.enumerated().map { ($1, $0) })
        for p in order {
            guard let g = key[p], let gi = index[g] else { continue }
            if graph.buffers.contains(p) { groups[gi].buffers.append(p) } else {
                groups[gi].parameters.append(p)
                groups[gi].parameterCount += graph.parameters[p]?.numel ?? 0
            }
        }
        for node in graph.nodes where node.op == .batchNorm {
            let owner = node.inputs.dropFirst().first { key[$0] != nil }
            if let o = owner, let g = key[o], let gi = index[g] { groups[gi].batchNormNodes.append(node.name) }
        }
        groups.removeAll { $0.parameters.isEmpty }
        // A stage holding only rank ≤ 1 tensors (a BatchNorm that torchvision numbers separately,
        // as VGG-BN's `features.1`) trains with the layer before it.
        if method == "names" {
            var merged: [LayerGroup] = []
            for g in groups {
                if g.kind == .stage, let prev = merged.last, prev.kind != .head,
                   g.parameters.allSatisfy({ (graph.parameters[$0]?.rank ?? 2) <= 1 }) {
                    merged[merged.count - 1].parameters += g.parameters
                    merged[merged.count - 1].buffers += g.buffers
                    merged[merged.count - 1].batchNormNodes += g.batchNormNodes
                    merged[merged.count - 1].parameterCount += g.parameterCount
                } else { merged.append(g) }
            }
            groups = merged
        }
        guard groups.contains(where: { $0.kind == .head }) else {
            throw WconvError.invalid("no head found: name it with --groups '…,head=<pattern>'")
        }
        self.groups = groups
        self.method = method
    }

    /// The last linear (or 1×1 conv / matmul with a parameter) on the path to the first graph output,
    /// looking through shape-only and activation ops.
    public static func findHeadNode(_ graph: ModelGraph) -> String? {
        guard let out = graph.outputs.first?.name else { return nil }
        var producer: [String: GraphNode] = [:]
        for n in graph.nodes { for o in n.outputs { producer[o] = n } }
        var v = out
        let passThrough: Set<Op> = [.flatten, .reshape, .dropout, .identity, .softmax, .sigmoid, .relu, .transpose]
        for _ in 0..<64 {
            guard let n = producer[v] else { return nil }
            if n.op == .linear || ((n.op == .conv2d || n.op == .conv1d || n.op == .matmul) && n.inputs.dropFirst().contains { graph.parameters[$0] != nil }) { return n.name }
            if n.op == .add, let x = n.inputs.first(where: { graph.parameters[$0] == nil }) { v = x; continue }
            guard passThrough.contains(n.op), let x = n.inputs.first else { return nil }
            v = x
        }
        return nil
    }

    public func group(named: String) -> LayerGroup? { groups.first { $0.name == named } }
    public var head: LayerGroup { groups.last { $0.kind == .head }! }
    /// Groups below the head, input → output.
    public var backbone: [LayerGroup] { groups.filter { $0.kind != .head } }
}
