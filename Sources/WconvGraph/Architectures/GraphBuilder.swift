import OrderedCollections
import WconvTensor

/// Why a family did not match: thrown by a recogniser, collected by `ArchitectureRecognizer`.
public struct RecognitionFailure: Error, CustomStringConvertible, Sendable {
    public var reason: String
    public init(_ reason: String) { self.reason = reason }
    public var description: String { reason }
}

/// Builds a graph over a bundle's tensors for one recogniser: checks every parameter it uses
/// against the running channel count (so a wrong guess is a `RecognitionFailure`, not a bad graph),
/// records which node uses which tensor and the evidence for the match.
final class GraphBuilder {
    private(set) var tensors: OrderedDictionary<String, Tensor>
    /// Renames a family applied to the keys (legacy layouts), with their rule.
    private(set) var renames: [TensorRename] = []
    private(set) var nodes: [GraphNode] = []
    private var names = Set<String>()
    var evidence: [String] = []
    /// Tensors the family knows and deliberately does not use, with the reason.
    var unusedReasons: [String: String] = [:]

    init(_ tensors: OrderedDictionary<String, Tensor>) { self.tensors = tensors }

    func shape(_ key: String) -> [Int]? { tensors[key]?.shape }

    /// Renames keys for which `f` returns a new name (keeping order); returns how many changed.
    /// A rename onto an existing key is refused so no tensor is silently dropped.
    @discardableResult
    func rename(rule: String, _ f: (String) -> String?) -> Int {
        var out = OrderedDictionary<String, Tensor>()
        var changed: [TensorRename] = []
        for (k, v) in tensors {
            if let n = f(k), n != k, tensors[n] == nil, out[n] == nil {
                out[n] = v
                changed.append(TensorRename(from: k, to: n, rule: rule))
            } else { out[k] = v }
        }
        tensors = out
        renames += changed
        return changed.count
    }
    func has(_ key: String) -> Bool { tensors[key] != nil }

    /// The shape of a required tensor, with an optional rank check.
    func require(_ key: String, rank: Int? = nil) throws -> [Int] {
        guard let s = shape(key) else { throw RecognitionFailure("missing tensor '\(key)'") }
        if let rank, s.count != rank {
            throw RecognitionFailure("tensor '\(key)' has shape \(s), expected \(rank) dims")
        }
        return s
    }

    /// Sorted integer children of a module path: `children("features")` → [0, 1, …] from keys `features.N.…`.
    func children(_ prefix: String) -> [Int] {
        let p = prefix.isEmpty ? "" : prefix + "."
        var found = Set<Int>()
        for key in tensors.keys where key.hasPrefix(p) {
            let rest = key.dropFirst(p.count)
            guard let dot = rest.firstIndex(of: ".") else { continue }
            // Indices come from the file: bound them so index arithmetic can never overflow.
            if let n = Int(rest[..<dot]), n >= 0, n < 1 << 20 { found.insert(n) }
        }
        return found.sorted()
    }

    /// True when some key starts with `prefix.`.
    func hasModule(_ prefix: String) -> Bool { tensors.keys.contains { $0.hasPrefix(prefix + ".") } }

    /// Appends a node; its output value gets the node's (unique) name unless `output` is given.
    @discardableResult
    func add(_ name: String, _ op: Op, _ inputs: [String], _ attrs: [String: AttributeValue] = [:], output: String? = nil) -> String {
        var unique = name
        var n = 1
        while names.contains(unique) || tensors[unique] != nil { n += 1; unique = "\(name):\(n)" }
        names.insert(unique)
        let out = output ?? unique
        nodes.append(GraphNode(name: unique, op: op, inputs: inputs, outputs: [out], attributes: attrs))
        return out
    }

    /// conv2d from `prefix.weight` (and `prefix.bias` when present). Groups are inferred from the
    /// weight's input channels against the running channel count; padding defaults to torchvision's
    /// (k-1)/2·dilation, `pads` ([top, left, bottom, right]) overrides it (TF 'same').
    /// Returns the output value and its channel count.
    func conv(_ prefix: String, _ x: String, inChannels: Int, stride: Int = 1, pad: Int? = nil, dilation: Int = 1,
              pads: [Int]? = nil) throws -> (String, Int) {
        let w = try require(prefix + ".weight", rank: 4)
        guard w[1] > 0, inChannels % w[1] == 0 else {
            throw RecognitionFailure("conv '\(prefix)' weight \(w) does not fit \(inChannels) input channels")
        }
        let groups = inChannels / w[1]
        guard w[0] % groups == 0 else {
            throw RecognitionFailure("conv '\(prefix)' weight \(w): \(w[0]) output channels not divisible by \(groups) groups")
        }
        let ph = pad ?? (w[2] - 1) / 2 * dilation, pw = pad ?? (w[3] - 1) / 2 * dilation
        var inputs = [x, prefix + ".weight"]
        if let b = shape(prefix + ".bias") {
            guard b == [w[0]] else { throw RecognitionFailure("conv '\(prefix)' bias \(b) does not match weight \(w)") }
            inputs.append(prefix + ".bias")
        }
        let out = add(prefix, .conv2d, inputs, [
            "strides": .ints([stride, stride]), "pads": .ints(pads ?? [ph, pw, ph, pw]),
            "dilations": .ints([dilation, dilation]), "group": .int(groups),
        ])
        return (out, w[0])
    }

    /// batchNorm from `prefix.{weight,bias,running_mean,running_var}`; weight/bias optional (affine=False).
    func bn(_ prefix: String, _ x: String, channels: Int, eps: Double = 1e-5, momentum: Double = 0.1) throws -> String {
        for s in ["running_mean", "running_var"] {
            let sh = try require("\(prefix).\(s)", rank: 1)
            guard sh == [channels] else { throw RecognitionFailure("batch norm '\(prefix).\(s)' has \(sh) but the input has \(channels) channels") }
        }
        var ins = [x]
        for s in ["weight", "bias"] {
            if let sh = shape("\(prefix).\(s)") {
                guard sh == [channels] else { throw RecognitionFailure("batch norm '\(prefix).\(s)' has \(sh) but the input has \(channels) channels") }
                ins.append("\(prefix).\(s)")
            } else { ins.append("") }
        }
        ins += ["\(prefix).running_mean", "\(prefix).running_var"]
        if has("\(prefix).num_batches_tracked") {
            unusedReasons["\(prefix).num_batches_tracked"] = "BatchNorm step counter: training bookkeeping, no effect in eval; kept so exports load with strict=True"
        }
        return add(prefix, .batchNorm, ins, ["epsilon": .float(eps), "momentum": .float(momentum)])
    }

    /// linear from `prefix.weight` (out, in) and optional bias; checks in-features.
    func linear(_ prefix: String, _ x: String, inFeatures: Int, output: String? = nil) throws -> (String, Int) {
        let w = try require(prefix + ".weight", rank: 2)
        guard w[1] == inFeatures else {
            throw RecognitionFailure("linear '\(prefix)' weight \(w) expects \(w[1]) input features but the previous layer gives \(inFeatures)")
        }
        var ins = [x, prefix + ".weight"]
        if let b = shape(prefix + ".bias") {
            guard b == [w[0]] else { throw RecognitionFailure("linear '\(prefix)' bias \(b) does not match weight \(w)") }
            ins.append(prefix + ".bias")
        }
        return (add(prefix, .linear, ins, output: output), w[0])
    }

    func layerNorm(_ prefix: String, _ x: String, dim: Int, eps: Double, output: String? = nil) throws -> String {
        let w = try require(prefix + ".weight", rank: 1)
        guard w == [dim] else { throw RecognitionFailure("layer norm '\(prefix)' weight \(w) does not match dim \(dim)") }
        let b = has(prefix + ".bias") ? prefix + ".bias" : ""
        return add(prefix, .layerNorm, [x, prefix + ".weight", b], ["epsilon": .float(eps), "axis": .int(-1)], output: output)
    }

    /// The classifier Linear at `prefix` when the file has one; otherwise (a backbone saved with its
    /// head removed or replaced by Identity) the pooled features become the output `features`.
    func headOrFeatures(_ prefix: String, _ x: String, inFeatures: Int, dropout: Double? = nil, dropoutName: String? = nil) throws -> (String, Int) {
        guard has(prefix + ".weight") else {
            evidence.append("no '\(prefix).weight': headless backbone, output is the \(inFeatures) pooled features")
            return (add("features", .identity, [x], output: "features"), inFeatures)
        }
        var h = x
        if let dropout { h = add(dropoutName ?? prefix + ".dropout", .dropout, [h], ["ratio": .float(dropout)]) }
        let (logits, classes) = try linear(prefix, h, inFeatures: inFeatures, output: "logits")
        evidence.append("head \(prefix).weight [\(classes), \(inFeatures)]: \(classes) classes")
        return (logits, classes)
    }

    func act(_ op: Op, _ name: String, _ x: String) -> String {
        if op == .hardSigmoid {
            // PyTorch's Hardsigmoid is relu6(x+3)/6; say so explicitly (ONNX's default alpha is 0.2).
            return add(name, op, [x], ["alpha": .float(1.0 / 6.0), "beta": .float(0.5)])
        }
        return add(name, op, [x])
    }

    /// Global average pool to [N, C] as torchvision heads do (avgpool then flatten(1)).
    func poolFlatten(_ x: String, adaptive: [Int] = [1, 1]) -> String {
        let p = add("avgpool", .adaptiveAvgPool2d, [x], ["outputSize": .ints(adaptive)])
        return add("flatten", .flatten, [p], ["axis": .int(1)])
    }

    /// Squeeze-and-excitation as torchvision's SqueezeExcitation: avgpool → fc1 → act → fc2 → gate → x·s.
    func squeezeExcite(_ prefix: String, _ x: String, channels: Int, act: Op, gate: Op) throws -> String {
        try squeezeExcite(prefix, reduce: prefix + ".fc1", expand: prefix + ".fc2", x, channels: channels, act: act, gate: gate)
    }

    /// Squeeze-and-excitation with the 1×1 convs at `reduce` and `expand` (efficientnet_pytorch's
    /// `_se_reduce`/`_se_expand`, timm's `se.conv_reduce`/`se.conv_expand`); nodes named under `prefix`.
    func squeezeExcite(_ prefix: String, reduce: String, expand: String, _ x: String, channels: Int, act: Op, gate: Op) throws -> String {
        let pooled = add(prefix + ".avgpool", .globalAvgPool, [x], ["keepdims": .int(1)])
        let (s1, c1) = try conv(reduce, pooled, inChannels: channels)
        let a = self.act(act, prefix + ".activation", s1)
        let (s2, c2) = try conv(expand, a, inChannels: c1)
        guard c2 == channels else { throw RecognitionFailure("squeeze-excitation '\(prefix)' restores \(c2) channels, expected \(channels)") }
        let g = self.act(gate, prefix + ".scale_activation", s2)
        return add(prefix + ".scale", .mul, [g, x])
    }

    /// Assembles the graph over all tensors (unused ones stay, so exports keep every key).
    func finish(inputs: [ValueInfo], outputs: [String], family: String, variant: String?,
                preprocessing: Preprocessing?, outputShapeHint: [String: [Int?]] = [:]) throws -> ModelGraph {
        var buffers = Set<String>()
        for key in tensors.keys where Self.isBufferName(key) { buffers.insert(key) }
        let outs = outputs.map { ValueInfo(name: $0, shape: outputShapeHint[$0] ?? []) }
        var g = ModelGraph(nodes: nodes, inputs: inputs, outputs: outs, parameters: tensors, buffers: buffers,
                           architecture: family, variant: variant, preprocessing: preprocessing)
        // Shapes of the outputs come from inference, so the declared ValueInfo is exact.
        let probe = g.probeInputShapes()
        do {
            let shapes = try g.inferShapes(inputShapes: probe)
            for i in g.outputs.indices {
                if let s = shapes[g.outputs[i].name] {
                    // Batch (and sequence) dims follow the input; keep them dynamic.
                    if let hint = outputShapeHint[g.outputs[i].name], hint.count == s.count {
                        g.outputs[i].shape = hint
                    } else {
                        g.outputs[i].shape = s.enumerated().map { idx, d in idx == 0 ? nil : d }
                    }
                }
            }
        } catch let e as WconvError {
            throw RecognitionFailure("the \(family) graph built from this file does not check: \(e.message)")
        }
        try g.validate()
        return g
    }

    /// Non-trainable state by naming convention (BN statistics and counters, HF id buffers).
    static func isBufferName(_ key: String) -> Bool {
        key.hasSuffix(".running_mean") || key.hasSuffix(".running_var") || key.hasSuffix(".num_batches_tracked")
            || key.hasSuffix("position_ids") || key.hasSuffix("token_type_ids")
    }
}
