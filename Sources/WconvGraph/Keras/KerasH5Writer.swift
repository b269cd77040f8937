import WconvFormats
import WconvTensor

/// Exports a graph's weights as a legacy Keras `.h5` weights file that `model.load_weights('x.h5')`
/// (Keras 3 and tf_keras) loads into the same architecture.
///
/// - A graph imported from Keras is written layer for layer as the source model had them
///   (`provenance.notes["keras.layers"]`), with every recorded layout transform inverted (OIHW →
///   HWIO, grouped → depthwise, (out, in) → (in, out)).
/// - Any other graph is written one Keras layer per parameterised node, in node order, with the
///   Keras layouts derived from the op: conv2d (group 1 or grouped) → Conv2D `kernel` HWIO,
///   depthwise (group = in channels, one input channel per group) → DepthwiseConv2D `kernel`
///   (kh, kw, C, M), linear → Dense `kernel` (in, out), batchNorm → gamma, beta, moving_mean,
///   moving_variance. Layer names are the node names; the Keras model must use the same layer
///   order (load_weights matches weighted layers by position).
public enum KerasH5Writer {
    public static func write(_ graph: ModelGraph, to path: String) throws {
        let layers = try kerasLayers(graph)
        let version = graph.provenance.notes["keras.version"] ?? "3.15.1"
        let backend = graph.provenance.notes["keras.backend"] ?? "tensorflow"
        try KerasWeightsWriter.write(layers: layers, to: path, kerasVersion: version, backend: backend)
    }

    /// The layers the file will hold, with weights in Keras names and layouts.
    public static func kerasLayers(_ graph: ModelGraph) throws -> [KerasWeightsWriter.Layer] {
        if let json = graph.provenance.notes["keras.layers"] {
            return try fromKerasNotes(graph, json)
        }
        return try fromNodes(graph)
    }

    static func fromKerasNotes(_ graph: ModelGraph, _ json: String) throws -> [KerasWeightsWriter.Layer] {
        let list = try JSONValue.parse(json, what: "the graph's keras.layers note", file: nil)
        var out: [KerasWeightsWriter.Layer] = []
        for entry in list.array ?? [] {
            guard let name = entry["name"]?.string else { continue }
            var weights: [(name: String, tensor: Tensor)] = []
            for p in entry["weights"]?.array?.compactMap(\.string) ?? [] {
                guard let t = graph.parameters[p] else {
                    throw WconvError.invalid("layer '\(name)' needs parameter '\(p)', which the graph no longer has; a Keras file for this architecture cannot be written")
                }
                let keras = try graph.layoutTransforms[p].map { try KerasLayouts.toSource(t, $0, name: p) } ?? t
                let short = p.hasPrefix(name + "/") ? String(p.dropFirst(name.count + 1)) : (p.split(separator: "/").last.map(String.init) ?? p)
                weights.append((short, keras))
            }
            out.append(.init(name: name, weights: weights))
        }
        return out
    }

    static func fromNodes(_ graph: ModelGraph) throws -> [KerasWeightsWriter.Layer] {
        guard !graph.nodes.isEmpty else {
            throw WconvError.invalid("a Keras .h5 needs a graph to know the layers; this is a weights-only bundle. Import it with its architecture, or export to safetensors instead")
        }
        var out: [KerasWeightsWriter.Layer] = []
        var written = Set<String>()
        func tensor(_ name: String) throws -> Tensor? {
            guard !name.isEmpty else { return nil }
            guard let t = graph.parameters[name] else { return nil }
            return t
        }
        for n in graph.nodes {
            let params = n.inputs.filter { graph.parameters[$0] != nil }
            guard !params.isEmpty, !params.allSatisfy(written.contains) else { continue }
            var w: [(name: String, tensor: Tensor)] = []
            switch n.op {
            case .conv2d:
                guard let k = try tensor(n.inputs[safe: 1] ?? ""), k.rank == 4 else { continue }
                let group = n.int("group") ?? 1
                let isDepthwise = group > 1 && k.shape[1] == 1 && k.shape[0] % group == 0
                if let tr = graph.layoutTransforms[n.inputs[1]] {
                    w.append(("kernel", try KerasLayouts.toSource(k, tr, name: n.inputs[1])))
                } else if isDepthwise {
                    let tr = LayoutTransform(kind: KerasLayouts.depthwiseKind, perm: [2, 3, 0, 1], sourceShape: [k.shape[2], k.shape[3], group, k.shape[0] / group])
                    w.append(("kernel", try KerasLayouts.toSource(k, tr, name: n.inputs[1])))
                } else {
                    w.append(("kernel", try KerasLayouts.permute(k, KerasLayouts.inverse(KerasLayouts.convPerm))))
                }
                if let b = try tensor(n.inputs[safe: 2] ?? "") { w.append(("bias", b)) }
            case .linear:
                guard let k = try tensor(n.inputs[safe: 1] ?? ""), k.rank == 2 else { continue }
                if let tr = graph.layoutTransforms[n.inputs[1]] {
                    w.append(("kernel", try KerasLayouts.toSource(k, tr, name: n.inputs[1])))
                } else {
                    w.append(("kernel", try KerasLayouts.permute(k, [1, 0])))
                }
                if let b = try tensor(n.inputs[safe: 2] ?? "") { w.append(("bias", b)) }
            case .batchNorm:
                let roles = ["gamma", "beta", "moving_mean", "moving_variance"]
                for (i, role) in roles.enumerated() {
                    guard let t = try tensor(n.inputs[safe: i + 1] ?? "") else {
                        throw WconvError.invalid("batchNorm '\(n.name)' lacks its \(role) parameter")
                    }
                    w.append((role, t))
                }
            default:
                throw WconvError.invalid("node '\(n.name)' (\(n.op)) has parameters but no Keras layer equivalent; cannot write a Keras .h5 for it")
            }
            params.forEach { written.insert($0) }
            out.append(.init(name: n.name, weights: w))
        }
        return out
    }
}
