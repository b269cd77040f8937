import WconvTensor

/// Keras 3 `.weights.h5` (alone or inside a `.keras` zip): `layers/<snake_class>[_N]/vars/<i>`.
/// Group names come from class names, not layer names; Keras 3.15 stores the real name as the
/// `vars` group's `name` attribute, older 3.x does not, so the mapping falls back to Keras's own
/// naming rule (snake_case of the class, `_N` counting same-class layers in model order).
extension KerasReader {
    static func readV3Weights(_ root: H5Group, config: JSONValue?, version: String?, path: String) throws -> KerasModelFile {
        var m = KerasModelFile(path: path, layout: .kerasWeights, config: config, kerasVersion: version, backend: nil, layers: [])
        let layersGroup: H5Group? = root.exists("layers") ? try root.group("layers") : nil
        let groupNames = try layersGroup?.childNames() ?? []
        if config != nil {
            m.layers = try v3Layers(layersGroup, configLayers: m.configLayers, warnings: &m.warnings)
            if root.exists("vars"), try root.group("vars").childNames().count > 0 {
                m.warnings.append("the model's own top-level variables (vars/) are not read")
            }
        } else if let lg = layersGroup {
            // No config: name order, class guessed from the group name; the order may differ from
            // the model's.
            m.warnings.append("a .weights.h5 without its model config: layer order is alphabetical and weight names are guessed from class names")
            m.layers = try v3LayersWithoutConfig(lg, groupNames: groupNames, warnings: &m.warnings)
        }
        return m
    }

    /// Layers of one level without a config: every group, named by `vars@name` (or the group
    /// name); a nested model's (`layers/` inside) weights flattened as `inner/weight`.
    static func v3LayersWithoutConfig(_ lg: H5Group, groupNames: [String], warnings: inout [String], depth: Int = 0) throws -> [KerasModelFile.Layer] {
        guard depth < 16 else { throw WconvError.invalid("models nest deeper than 16 levels", file: lg.file) }
        var out: [KerasModelFile.Layer] = []
        for gname in groupNames {
            let g = try lg.group(gname)
            let name = (lg.exists(gname + "/vars") ? try lg.group(gname + "/vars").stringAttribute("name") : nil) ?? gname
            if g.exists("layers") {
                let inner = try g.group("layers")
                let innerLayers = try v3LayersWithoutConfig(inner, groupNames: try inner.childNames(), warnings: &warnings, depth: depth + 1)
                let weights = innerLayers.flatMap { l in l.weights.map { w in
                    KerasModelFile.Weight(name: l.name + "/" + w.name, sourcePath: w.sourcePath, tensor: w.tensor)
                } }
                out.append(.init(name: name, className: nil, config: nil, weights: weights))
                continue
            }
            let cls = classFromSnake(gname)
            let weights = try readVars(g, className: cls, layerConfig: nil, layerName: name, warnings: &warnings)
            out.append(.init(name: name, className: cls, config: nil, weights: weights))
        }
        return out
    }

    /// Layer classes that are whole models: their weights are read from their own `layers/` and
    /// flattened into the outer layer as `inner_layer/weight` (the legacy format's naming).
    static let modelClasses: Set<String> = ["Functional", "Sequential", "Model"]

    /// The layers of one (possibly nested) model, matched to the `layers/` groups of its level.
    static func v3Layers(_ layersGroup: H5Group?, configLayers: [JSONValue], warnings: inout [String], depth: Int = 0) throws -> [KerasModelFile.Layer] {
        guard depth < 16 else { throw WconvError.invalid("models nest deeper than 16 levels", file: layersGroup?.file) }
        // Group name by layer name, from the `vars@name` attributes.
        var groupByLayer: [String: String] = [:]
        var groupNames: [String] = []
        if let lg = layersGroup {
            groupNames = try lg.childNames()
            for gname in groupNames where lg.exists(gname + "/vars") {
                if let n = try lg.group(gname + "/vars").stringAttribute("name") { groupByLayer[n] = gname }
            }
        }
        var out: [KerasModelFile.Layer] = []
        var classCounts: [String: Int] = [:]
        for entry in configLayers {
            let cls = entry["class_name"]?.string ?? "Layer"
            let name = entry["config"]?["name"]?.string ?? entry["name"]?.string ?? "?"
            // Keras's fallback naming: snake_case class, `_N` for the N-th repeat in model order
            // (a nested Functional model's group is `functional`, whatever its name).
            let snake = modelClasses.contains(cls) ? (cls == "Sequential" ? "sequential" : "functional") : kerasSnakeCase(cls)
            let k = classCounts[snake, default: 0]
            classCounts[snake] = k + 1
            let fallback = k == 0 ? snake : "\(snake)_\(k)"
            guard let lg = layersGroup, let gname = groupByLayer[name] ?? (groupNames.contains(fallback) ? fallback : nil) else {
                out.append(.init(name: name, className: cls, config: entry, weights: []))
                continue
            }
            let g = try lg.group(gname)
            if modelClasses.contains(cls) {
                let innerLayers = entry["config"]?["layers"]?.array ?? []
                let inner = try v3Layers(g.exists("layers") ? try g.group("layers") : nil, configLayers: innerLayers,
                                         warnings: &warnings, depth: depth + 1)
                let weights = inner.flatMap { l in l.weights.map { w in
                    KerasModelFile.Weight(name: l.name + "/" + w.name, sourcePath: w.sourcePath, tensor: w.tensor)
                } }
                out.append(.init(name: name, className: cls, config: entry, weights: weights))
                continue
            }
            let weights = try readVars(g, className: cls, layerConfig: entry["config"], layerName: name, warnings: &warnings)
            out.append(.init(name: name, className: cls, config: entry, weights: weights))
        }
        return out
    }

    /// Reads `vars/0..n-1` of one layer group and names them by the layer's class and config.
    static func readVars(_ g: H5Group, className: String?, layerConfig: JSONValue?, layerName: String,
                         warnings: inout [String]) throws -> [KerasModelFile.Weight] {
        guard g.exists("vars") else { return [] }
        let vars = try g.group("vars")
        let children = try vars.childNames()
        var indexed: [(Int, String)] = []
        for c in children {
            guard let i = Int(c), i >= 0 else {
                warnings.append("layer '\(layerName)': ignored '\(vars.path)/\(c)' (not a variable index)")
                continue
            }
            indexed.append((i, c))
        }
        indexed.sort { $0.0 < $1.0 }
        for (k, pair) in indexed.enumerated() where pair.0 != k {
            throw WconvError.invalid("layer '\(layerName)': variable \(k) is missing from '\(vars.path)' (found \(indexed.map(\.1)))", file: g.file)
        }
        var names = variableNames(className: className, config: layerConfig)
        if layerConfig == nil, let n = names, n.count > indexed.count {
            // No config to say which optional weight is absent: the kernel-first classes drop the
            // bias (use_bias=False), BatchNormalization without scale/center is left to indices.
            if n.first == "kernel" || n.first == "depthwise_kernel" { names = Array(n.prefix(indexed.count)) }
        }
        if names == nil || names!.count != indexed.count {
            if names != nil {
                warnings.append("layer '\(layerName)' (\(className ?? "?")) has \(indexed.count) variables where its config implies \(names!.count); named by index")
            }
            names = indexed.map { String($0.0) }
        }
        var out: [KerasModelFile.Weight] = []
        for ((_, child), name) in zip(indexed, names!) {
            let ds = try vars.dataset(child)
            out.append(.init(name: name, sourcePath: ds.path, tensor: try ds.readTensor()))
        }
        return out
    }

    /// Keras 3 variable names in `save_own_variables` order (trainable, then non-trainable) for the
    /// layers whose weights wconv maps; nil for classes it does not know.
    static func variableNames(className: String?, config c: JSONValue?) -> [String]? {
        let useBias = c?["use_bias"]?.bool ?? true
        switch className {
        case "Conv1D", "Conv2D", "Conv3D", "Conv1DTranspose", "Conv2DTranspose", "Conv3DTranspose", "Dense",
             "DepthwiseConv2D", "DepthwiseConv1D":
            return useBias ? ["kernel", "bias"] : ["kernel"]
        case "SeparableConv1D", "SeparableConv2D":
            return useBias ? ["depthwise_kernel", "pointwise_kernel", "bias"] : ["depthwise_kernel", "pointwise_kernel"]
        case "BatchNormalization":
            var n: [String] = []
            if c?["scale"]?.bool ?? true { n.append("gamma") }
            if c?["center"]?.bool ?? true { n.append("beta") }
            return n + ["moving_mean", "moving_variance"]
        case "LayerNormalization", "GroupNormalization":
            var n: [String] = []
            if c?["scale"]?.bool ?? true { n.append("gamma") }
            if c?["center"]?.bool ?? true { n.append("beta") }
            return n
        case "Normalization": return ["mean", "variance", "count"]
        case "Embedding": return ["embeddings"]
        case "PReLU": return ["alpha"]
        case nil: return nil
        default:
            // Weightless layers name nothing; anything else is unknown.
            return weightlessClasses.contains(className!) ? [] : nil
        }
    }

    static let weightlessClasses: Set<String> = [
        "InputLayer", "Activation", "ReLU", "Softmax", "LeakyReLU", "ELU", "MaxPooling2D", "AveragePooling2D",
        "GlobalAveragePooling2D", "GlobalMaxPooling2D", "ZeroPadding2D", "Add", "Multiply", "Subtract", "Concatenate",
        "Rescaling", "Flatten", "Reshape", "Dropout", "SpatialDropout2D", "Permute", "Cropping2D", "UpSampling2D",
    ]

    /// keras.src.utils.naming.to_snake_case.
    static func kerasSnakeCase(_ name: String) -> String {
        let chars = Array(name.filter { $0.isLetter || $0.isNumber || $0 == "_" })
        // (.)([A-Z][a-z]+) → \1_\2, then ([a-z])([A-Z]) → \1_\2, lowercased.
        var pass1: [Character] = []
        for (i, ch) in chars.enumerated() {
            if i > 0, ch.isUppercase, i + 1 < chars.count, chars[i + 1].isLowercase { pass1.append("_") }
            pass1.append(ch)
        }
        var pass2: [Character] = []
        for (i, ch) in pass1.enumerated() {
            if i > 0, ch.isUppercase, pass1[i - 1].isLowercase { pass2.append("_") }
            pass2.append(ch)
        }
        var s = String(pass2).lowercased()
        // Python's regex pass 1 does not re-match an overlapping position; avoid a doubled "_".
        while s.contains("__") { s = s.replacingOccurrences(of: "__", with: "_") }
        return s.hasPrefix("_") && !name.hasPrefix("_") ? String(s.dropFirst()) : s
    }

    static func classFromSnake(_ group: String) -> String? {
        var base = group
        if let u = base.lastIndex(of: "_"), base[base.index(after: u)...].allSatisfy(\.isNumber), base.index(after: u) < base.endIndex {
            base = String(base[..<u])
        }
        let known = ["Conv2D", "DepthwiseConv2D", "SeparableConv2D", "Dense", "BatchNormalization", "LayerNormalization",
                     "Normalization", "Embedding", "Conv1D", "Conv2DTranspose"]
        return known.first { kerasSnakeCase($0) == base }
    }
}

private extension String {
    func replacingOccurrences(of a: String, with b: String) -> String {
        var out = ""
        var rest = self[...]
        while let r = rest.range(of: a) {
            out += rest[..<r.lowerBound]
            out += b
            rest = rest[r.upperBound...]
        }
        out += rest
        return out
    }
}

private extension Substring {
    func range(of needle: String) -> Range<Substring.Index>? {
        guard !needle.isEmpty else { return nil }
        var i = startIndex
        while i < endIndex {
            if self[i...].hasPrefix(needle) { return i..<index(i, offsetBy: needle.count) }
            i = index(after: i)
        }
        return nil
    }
}
