import WconvFormats
import WconvTensor

/// One converter per Keras layer class. Each emits canonical nodes for one call of the layer and
/// returns the output value with its Keras shape.
extension Builder {
    mutating func convert(_ entry: JSONValue, inputs: [KerasValue], outputName: String, callIndex: Int = 0) throws -> KerasValue {
        let cls = entry["class_name"]?.string ?? "?"
        let name = Self.layerName(entry)
        let cfg = entry["config"] ?? .null
        func one() throws -> KerasValue {
            guard inputs.count == 1 else {
                throw WconvError.invalid("layer '\(name)' (\(cls)) takes one input but is given \(inputs.count)", file: file.path)
            }
            return inputs[0]
        }

        switch cls {
        case "Functional", "Sequential", "Model":
            return try convertModel(entry, inputs: inputs, outputName: outputName)
        case "Conv2D":
            return try conv2d(name, cfg, try one(), outputName)
        case "DepthwiseConv2D":
            return try depthwise(name, cfg, try one(), outputName)
        case "Dense":
            return try dense(name, cfg, try one(), outputName)
        case "BatchNormalization":
            return try batchNorm(name, cfg, try one(), outputName)
        case "Activation":
            let x = try one()
            let act = Self.activationName(cfg["activation"]) ?? "?"
            return try activation(act, name: name, input: x, output: outputName, layer: name)
        case "ReLU":
            return try reluLayer(name, cfg, try one(), outputName)
        case "Softmax":
            let x = try one()
            node(name, .softmax, [x.name], outputName, ["axis": .int(x.isImage ? 1 : -1)])
            return KerasValue(name: outputName, shape: x.shape)
        case "MaxPooling2D", "AveragePooling2D":
            return try pool(name, cfg, try one(), outputName, max: cls == "MaxPooling2D")
        case "GlobalAveragePooling2D":
            let x = try one()
            guard x.isImage else { throw WconvError.invalid("GlobalAveragePooling2D '\(name)' needs an image input, got shape \(x.shape)", file: file.path) }
            try requireChannelsLast(cfg, name)
            let keep = cfg["keepdims"]?.bool ?? false
            node(name, .globalAvgPool, [x.name], outputName, ["keepdims": .int(keep ? 1 : 0)])
            return KerasValue(name: outputName, shape: keep ? [1, 1, x.shape[2]] : [x.shape[2]])
        case "ZeroPadding2D":
            return try zeroPad(name, cfg, try one(), outputName)
        case "Add", "Multiply", "Subtract":
            guard inputs.count >= 2 else { throw WconvError.invalid("\(cls) '\(name)' needs at least two inputs", file: file.path) }
            let op: Op = cls == "Add" ? .add : cls == "Multiply" ? .mul : .sub
            var acc = inputs[0]
            for (k, x) in inputs.dropFirst().enumerated() {
                let out = k == inputs.count - 2 ? outputName : "\(outputName)/\(k)"
                node(k == 0 ? name : "\(name)/\(k)", op, [acc.name, x.name], out)
                acc = KerasValue(name: out, shape: Self.broadcast(acc.shape, x.shape))
            }
            return acc
        case "Concatenate":
            guard let first = inputs.first else { throw WconvError.invalid("Concatenate '\(name)' has no inputs", file: file.path) }
            let axis = cfg["axis"]?.int ?? -1
            let rank = first.shape.count + 1
            let kAxis = axis < 0 ? axis + rank : axis
            guard kAxis >= 1, kAxis < rank, inputs.allSatisfy({ $0.shape.count == first.shape.count }) else {
                throw WconvError.invalid("Concatenate '\(name)' axis \(axis) does not fit inputs of shapes \(inputs.map(\.shape))", file: file.path)
            }
            let gAxis = first.isImage ? [0, 2, 3, 1][kAxis] : kAxis
            node(name, .concat, inputs.map(\.name), outputName, ["axis": .int(gAxis)])
            var shape = first.shape
            let sum = inputs.map { $0.shape[kAxis - 1] }.reduce(Optional(0)) { a, b in a.flatMap { x in b.map { x + $0 } } }
            shape[kAxis - 1] = sum
            return KerasValue(name: outputName, shape: shape)
        case "Rescaling":
            return try rescaling(name, cfg, try one(), outputName)
        case "Normalization":
            return try normalization(name, cfg, try one(), outputName)
        case "Flatten":
            let x = try one()
            var input = x.name
            if x.isImage {
                // Keras flattens (H, W, C); the graph holds (C, H, W): go back to NHWC first so the
                // Dense that follows keeps its Keras weights and row order.
                input = "\(outputName)/nhwc"
                node("\(name)/nhwc", .transpose, [x.name], input, ["perm": .ints([0, 2, 3, 1])])
                notes.append("Flatten '\(name)': transpose NCHW→NHWC inserted before flattening (Keras (h, w, c) order)")
            }
            node(name, .flatten, [input], outputName, ["axis": .int(1)])
            let n = x.shape.reduce(Optional(1)) { a, b in a.flatMap { x in b.map { x * $0 } } }
            return KerasValue(name: outputName, shape: [n])
        case "Reshape":
            return try reshape(name, cfg, try one(), outputName)
        case "Dropout", "SpatialDropout2D", "GaussianDropout", "AlphaDropout":
            let x = try one()
            node(name, .dropout, [x.name], outputName, ["ratio": .float(cfg["rate"]?.double ?? 0)])
            return KerasValue(name: outputName, shape: x.shape)
        default:
            unsupported.append("\(name) (\(cls))")
            // Keep going so every unsupported layer is reported at once.
            return KerasValue(name: outputName, shape: inputs.first?.shape ?? [])
        }
    }

    func requireChannelsLast(_ cfg: JSONValue, _ name: String) throws {
        if let f = cfg["data_format"]?.string, f != "channels_last" {
            throw WconvError.invalid("layer '\(name)' uses data_format '\(f)'; only channels_last Keras models are supported", file: file.path)
        }
    }

    static func broadcast(_ a: [Int?], _ b: [Int?]) -> [Int?] {
        guard a.count == b.count else { return a.count >= b.count ? a : b }
        return zip(a, b).map { x, y in x == 1 ? y : x }
    }

    static func activationName(_ v: JSONValue?) -> String? {
        if let s = v?.string { return s }
        // Keras 3 may serialize a function reference: {"module": "keras.activations", "config": "relu"}.
        if let s = v?["config"]?.string { return s }
        if let s = v?["config"]?["name"]?.string { return s }
        return nil
    }

    // MARK: conv, dense, BN

    mutating func conv2d(_ name: String, _ cfg: JSONValue, _ x: KerasValue, _ out: String) throws -> KerasValue {
        try requireChannelsLast(cfg, name)
        guard x.isImage, let cin = x.shape[2] else {
            throw WconvError.invalid("Conv2D '\(name)' needs an image input with known channels, got \(x.shape)", file: file.path)
        }
        guard let filters = cfg["filters"]?.int, let k = cfg["kernel_size"]?.ints(count: 2) else {
            throw WconvError.invalid("Conv2D '\(name)' config lacks filters/kernel_size", file: file.path)
        }
        let s = try pair(cfg, "strides", name, default: [1, 1])
        let d = try pair(cfg, "dilation_rate", name, default: [1, 1])
        try checkPositive(name, ["kernel_size": k, "strides": s, "dilation_rate": d])
        guard filters >= 1 else { throw WconvError.invalid("Conv2D '\(name)' has \(filters) filters", file: file.path) }
        let groups = cfg["groups"]?.int ?? 1
        guard groups >= 1, cin % groups == 0, filters % groups == 0 else {
            throw WconvError.invalid("Conv2D '\(name)': \(cin) input channels and \(filters) filters do not split into \(groups) groups", file: file.path)
        }
        let w = try param(name, "kernel", expected: [k[0], k[1], cin / groups, filters],
                          transform: LayoutTransform(kind: "permute", perm: KerasLayouts.convPerm, sourceShape: [k[0], k[1], cin / groups, filters]))
        var inputs = [x.name, w]
        if cfg["use_bias"]?.bool ?? true {
            inputs.append(try param(name, "bias", expected: [filters]))
        }
        recordWeights(name, Array(inputs.dropFirst()))
        let (attrs, oh, ow) = spatial(cfg, x, kernel: k, strides: s, dilations: d, name: name)
        var a = attrs
        a["group"] = .int(groups)
        let act = Self.activationName(cfg["activation"]) ?? "linear"
        let convOut = act == "linear" ? out : "\(out)/conv"
        node(name, .conv2d, inputs, convOut, a)
        let v = KerasValue(name: convOut, shape: [oh, ow, filters])
        return try activation(act, name: "\(name)/\(act)", input: v, output: out, layer: name)
    }

    mutating func depthwise(_ name: String, _ cfg: JSONValue, _ x: KerasValue, _ out: String) throws -> KerasValue {
        try requireChannelsLast(cfg, name)
        guard x.isImage, let c = x.shape[2] else {
            throw WconvError.invalid("DepthwiseConv2D '\(name)' needs an image input with known channels, got \(x.shape)", file: file.path)
        }
        guard let k = cfg["kernel_size"]?.ints(count: 2) else {
            throw WconvError.invalid("DepthwiseConv2D '\(name)' config lacks kernel_size", file: file.path)
        }
        let m = cfg["depth_multiplier"]?.int ?? 1
        let s = try pair(cfg, "strides", name, default: [1, 1])
        let d = try pair(cfg, "dilation_rate", name, default: [1, 1])
        try checkPositive(name, ["kernel_size": k, "strides": s, "dilation_rate": d])
        guard m >= 1 else { throw WconvError.invalid("DepthwiseConv2D '\(name)' has depth_multiplier \(m)", file: file.path) }
        let w = try param(name, "kernel", aliases: ["depthwise_kernel"], expected: [k[0], k[1], c, m],
                          transform: LayoutTransform(kind: KerasLayouts.depthwiseKind, perm: [2, 3, 0, 1], sourceShape: [k[0], k[1], c, m]))
        var inputs = [x.name, w]
        if cfg["use_bias"]?.bool ?? true {
            inputs.append(try param(name, "bias", expected: [c * m]))
        }
        recordWeights(name, Array(inputs.dropFirst()))
        var (a, oh, ow) = spatial(cfg, x, kernel: k, strides: s, dilations: d, name: name)
        a["group"] = .int(c)
        let act = Self.activationName(cfg["activation"]) ?? "linear"
        let convOut = act == "linear" ? out : "\(out)/conv"
        node(name, .conv2d, inputs, convOut, a)
        let v = KerasValue(name: convOut, shape: [oh, ow, c * m])
        return try activation(act, name: "\(name)/\(act)", input: v, output: out, layer: name)
    }

    /// A (height, width) pair from the config; the default when the key is absent or null, an
    /// error when it is there but unreadable.
    func pair(_ cfg: JSONValue, _ key: String, _ name: String, default d: [Int]) throws -> [Int] {
        guard let v = cfg[key], !v.isNull else { return d }
        guard let p = v.ints(count: 2) else {
            throw WconvError.invalid("layer '\(name)': \(key) \(v.serialized) is not a pair of ints", file: file.path)
        }
        return p
    }

    /// Kernel sizes, strides and dilations must be positive (they divide and index later).
    func checkPositive(_ name: String, _ lists: [String: [Int]]) throws {
        for (what, v) in lists where v.count != 2 || v.contains(where: { $0 < 1 || $0 > 1 << 16 }) {
            throw WconvError.invalid("layer '\(name)': \(what) \(v) must be two positive sizes", file: file.path)
        }
    }

    /// strides/dilations/pads (+ autoPad for 'same') and the output size.
    func spatial(_ cfg: JSONValue, _ x: KerasValue, kernel k: [Int], strides s: [Int], dilations d: [Int], name: String) -> ([String: AttributeValue], Int?, Int?) {
        let same = (cfg["padding"]?.string ?? "valid").lowercased() == "same"
        var attrs: [String: AttributeValue] = ["strides": .ints(s), "dilations": .ints(d)]
        if same {
            let (t, b) = KerasLayouts.samePadding(input: x.shape[0], kernel: k[0], stride: s[0], dilation: d[0])
            let (l, r) = KerasLayouts.samePadding(input: x.shape[1], kernel: k[1], stride: s[1], dilation: d[1])
            attrs["pads"] = .ints([t, l, b, r])
            attrs["autoPad"] = .string("SAME_UPPER")
        } else {
            attrs["pads"] = .ints([0, 0, 0, 0])
        }
        let oh = KerasLayouts.outputSize(input: x.shape[0], kernel: k[0], stride: s[0], dilation: d[0], same: same)
        let ow = KerasLayouts.outputSize(input: x.shape[1], kernel: k[1], stride: s[1], dilation: d[1], same: same)
        return (attrs, oh, ow)
    }

    mutating func dense(_ name: String, _ cfg: JSONValue, _ x: KerasValue, _ out: String) throws -> KerasValue {
        guard let units = cfg["units"]?.int, units >= 1, let fin = x.shape.last ?? nil else {
            throw WconvError.invalid("Dense '\(name)' needs units and an input with a known last dim, got \(x.shape)", file: file.path)
        }
        let w = try param(name, "kernel", expected: [fin, units],
                          transform: LayoutTransform(kind: "permute", perm: KerasLayouts.densePerm, sourceShape: [fin, units]))
        var inputs = [x.name, w]
        if cfg["use_bias"]?.bool ?? true { inputs.append(try param(name, "bias", expected: [units])) }
        recordWeights(name, Array(inputs.dropFirst()))
        let act = Self.activationName(cfg["activation"]) ?? "linear"
        let linOut = act == "linear" ? out : "\(out)/linear"
        if x.isImage {
            // Dense acts on the last Keras axis (channels): NCHW → NHWC, linear, back.
            node("\(name)/nhwc", .transpose, [x.name], "\(name)/nhwc", ["perm": .ints([0, 2, 3, 1])])
            node(name, .linear, ["\(name)/nhwc"] + inputs.dropFirst(), "\(name)/linear_nhwc")
            node("\(name)/nchw", .transpose, ["\(name)/linear_nhwc"], linOut, ["perm": .ints([0, 3, 1, 2])])
        } else {
            node(name, .linear, inputs, linOut)
        }
        var shape = x.shape
        shape[shape.count - 1] = units
        return try activation(act, name: "\(name)/\(act)", input: KerasValue(name: linOut, shape: shape), output: out, layer: name)
    }

    mutating func batchNorm(_ name: String, _ cfg: JSONValue, _ x: KerasValue, _ out: String) throws -> KerasValue {
        let rank = x.shape.count + 1
        var axis = cfg["axis"]?.int ?? cfg["axis"]?.array?.first?.int ?? -1
        if axis < 0 { axis += rank }
        guard axis == rank - 1, let c = x.shape.last ?? nil else {
            throw WconvError.invalid("BatchNormalization '\(name)' normalises axis \(axis) of a rank-\(rank) tensor; only the channel (last) axis is supported", file: file.path)
        }
        var kerasNames: [String] = []
        let gamma: String
        if cfg["scale"]?.bool ?? true {
            gamma = try param(name, "gamma", expected: [c]); kerasNames.append(gamma)
        } else {
            gamma = constant("\(name)/__gamma", [Float](repeating: 1, count: c), shape: [c])
        }
        let beta: String
        if cfg["center"]?.bool ?? true {
            beta = try param(name, "beta", expected: [c]); kerasNames.append(beta)
        } else {
            beta = constant("\(name)/__beta", [Float](repeating: 0, count: c), shape: [c])
        }
        let mean = try param(name, "moving_mean", expected: [c], buffer: true)
        let variance = try param(name, "moving_variance", expected: [c], buffer: true)
        recordWeights(name, kerasNames + [mean, variance])
        let eps = cfg["epsilon"]?.double ?? 1e-3
        let momentum = cfg["momentum"]?.double ?? 0.99
        node(name, .batchNorm, [x.name, gamma, beta, mean, variance], out,
             ["epsilon": .float(eps), "momentum": .float(1 - momentum)])
        return KerasValue(name: out, shape: x.shape)
    }

    // MARK: activations

    /// Emits the op for a Keras activation name; `linear` is no node at all (returns `input`
    /// renamed only when the caller asked for a different output name).
    mutating func activation(_ act: String, name: String, input: KerasValue, output: String, layer: String) throws -> KerasValue {
        let x = input.name
        switch act {
        case "linear", "identity":
            if x == output { return input }
            node(name, .identity, [x], output)
        case "relu": node(name, .relu, [x], output)
        case "relu6": node(name, .relu6, [x], output)
        case "swish", "silu": node(name, .silu, [x], output)
        case "sigmoid": node(name, .sigmoid, [x], output)
        case "tanh": node(name, .tanh, [x], output)
        case "hard_sigmoid":
            // Keras 3: relu6(x + 3) / 6 (PyTorch's hardsigmoid); Keras 2: clip(0.2·x + 0.5, 0, 1).
            let alpha = file.isKeras2 ? 0.2 : 1.0 / 6.0
            node(name, .hardSigmoid, [x], output, ["alpha": .float(alpha), "beta": .float(0.5)])
        case "hard_swish", "hard_silu": node(name, .hardSwish, [x], output)
        case "gelu": node(name, .gelu, [x], output, ["approximate": .string("none")])
        case "softmax": node(name, .softmax, [x], output, ["axis": .int(input.isImage ? 1 : -1)])
        default:
            unsupported.append("\(layer) (activation '\(act)')")
            return KerasValue(name: output, shape: input.shape)
        }
        return KerasValue(name: output, shape: input.shape)
    }

    mutating func reluLayer(_ name: String, _ cfg: JSONValue, _ x: KerasValue, _ out: String) throws -> KerasValue {
        let maxValue = cfg["max_value"]?.double
        let slope = cfg["negative_slope"]?.double ?? 0
        let threshold = cfg["threshold"]?.double ?? 0
        guard slope == 0, threshold == 0 else {
            unsupported.append("\(name) (ReLU with negative_slope \(slope), threshold \(threshold))")
            return KerasValue(name: out, shape: x.shape)
        }
        switch maxValue {
        case nil: node(name, .relu, [x.name], out)
        case 6.0?: node(name, .relu6, [x.name], out)
        case let m?: node(name, .clip, [x.name], out, ["min": .float(0), "max": .float(m)])
        }
        return KerasValue(name: out, shape: x.shape)
    }

    // MARK: pooling, padding, reshaping

    mutating func pool(_ name: String, _ cfg: JSONValue, _ x: KerasValue, _ out: String, max isMax: Bool) throws -> KerasValue {
        try requireChannelsLast(cfg, name)
        guard x.isImage else { throw WconvError.invalid("pooling layer '\(name)' needs an image input, got \(x.shape)", file: file.path) }
        guard let k = cfg["pool_size"].map({ $0.isNull ? [2, 2] : $0.ints(count: 2) }) ?? [2, 2] else {
            throw WconvError.invalid("layer '\(name)': pool_size is not a pair of ints", file: file.path)
        }
        let s = try pair(cfg, "strides", name, default: k)
        try checkPositive(name, ["pool_size": k, "strides": s])
        var (a, oh, ow) = spatial(cfg, x, kernel: k, strides: s, dilations: [1, 1], name: name)
        a["kernel"] = .ints(k)
        a["ceilMode"] = .int(0)
        if isMax {
            node(name, .maxPool2d, [x.name], out, a)
        } else {
            // TF averages over the valid pixels only when padding is 'same'.
            a.removeValue(forKey: "dilations")
            a["countIncludePad"] = .int(0)
            node(name, .avgPool2d, [x.name], out, a)
        }
        return KerasValue(name: out, shape: [oh, ow, x.shape[2]])
    }

    mutating func zeroPad(_ name: String, _ cfg: JSONValue, _ x: KerasValue, _ out: String) throws -> KerasValue {
        try requireChannelsLast(cfg, name)
        guard x.isImage else { throw WconvError.invalid("ZeroPadding2D '\(name)' needs an image input, got \(x.shape)", file: file.path) }
        // int | (sym_h, sym_w) | ((top, bottom), (left, right))
        var t = 0, b = 0, l = 0, r = 0
        if let p = cfg["padding"]?.int {
            (t, b, l, r) = (p, p, p, p)
        } else if let a = cfg["padding"]?.array, a.count == 2 {
            if let h = a[0].int, let w = a[1].int {
                (t, b, l, r) = (h, h, w, w)
            } else if let h = a[0].ints(count: 2), let w = a[1].ints(count: 2) {
                (t, b, l, r) = (h[0], h[1], w[0], w[1])
            } else {
                throw WconvError.invalid("ZeroPadding2D '\(name)' has an unreadable padding \(a)", file: file.path)
            }
        } else {
            throw WconvError.invalid("ZeroPadding2D '\(name)' has no padding", file: file.path)
        }
        guard [t, b, l, r].allSatisfy({ $0 >= 0 && $0 < 1 << 16 }) else {
            throw WconvError.invalid("ZeroPadding2D '\(name)' has padding \([t, b, l, r]); it must be non-negative", file: file.path)
        }
        node(name, .pad, [x.name], out, ["pads": .ints([0, 0, t, l, 0, 0, b, r]), "mode": .string("constant"), "value": .float(0)])
        return KerasValue(name: out, shape: [x.shape[0].map { $0 + t + b }, x.shape[1].map { $0 + l + r }, x.shape[2]])
    }

    mutating func reshape(_ name: String, _ cfg: JSONValue, _ x: KerasValue, _ out: String) throws -> KerasValue {
        guard let target = cfg["target_shape"]?.array?.map({ $0.int ?? -1 }) else {
            throw WconvError.invalid("Reshape '\(name)' has no target_shape", file: file.path)
        }
        let total = x.shape.reduce(Optional(1)) { a, b in a.flatMap { x in b.map { x * $0 } } }
        var shape: [Int?] = target.map { $0 < 0 ? nil : $0 }
        if let t = total, let unknown = target.firstIndex(of: -1) {
            let known = target.filter { $0 >= 0 }.reduce(1, *)
            if known > 0 { shape[unknown] = t / known }
        }
        var input = x.name
        if x.isImage {
            input = "\(name)/nhwc"
            node("\(name)/nhwc", .transpose, [x.name], input, ["perm": .ints([0, 2, 3, 1])])
        }
        let result = KerasValue(name: out, shape: shape)
        if result.isImage {
            if shape[0] == 1 && shape[1] == 1 {
                // (N, 1, 1, C) and (N, C, 1, 1) hold the same bytes: one reshape, no transpose.
                node(name, .reshape, [input], out, ["shape": .ints([0, shape[2] ?? -1, 1, 1])])
            } else {
                node(name, .reshape, [input], "\(name)/nhwc_out", ["shape": .ints([0] + target)])
                node("\(name)/nchw", .transpose, ["\(name)/nhwc_out"], out, ["perm": .ints([0, 3, 1, 2])])
            }
        } else {
            node(name, .reshape, [input], out, ["shape": .ints([0] + target)])
        }
        return result
    }

    // MARK: preprocessing layers

    mutating func rescaling(_ name: String, _ cfg: JSONValue, _ x: KerasValue, _ out: String) throws -> KerasValue {
        let scale = cfg["scale"]?.array?.compactMap { $0.double } ?? [cfg["scale"]?.double ?? 1]
        let offset = cfg["offset"]?.array?.compactMap { $0.double } ?? [cfg["offset"]?.double ?? 0]
        let scaleName = constant("\(name)/__scale", scale.map(Float.init), shape: channelShape(scale.count, x))
        let offsetName = constant("\(name)/__offset", offset.map(Float.init), shape: channelShape(offset.count, x))
        let mid = offset.allSatisfy({ $0 == 0 }) ? out : "\(out)/scaled"
        node(name, .mul, [x.name, scaleName], mid)
        if mid != out { node("\(name)/offset", .add, [mid, offsetName], out) }
        return KerasValue(name: out, shape: x.shape)
    }

    /// A per-channel constant broadcasts over NCHW as (C, 1, 1); a scalar as [].
    func channelShape(_ n: Int, _ x: KerasValue) -> [Int] {
        if n == 1 { return [] }
        return x.isImage ? [n, 1, 1] : [n]
    }

    /// Normalization: (x − mean) / sqrt(variance) per channel, as batchNorm with unit scale and
    /// zero shift (epsilon 1e-14 stands in for Keras's max(sqrt(var), 1e-7)). `count` is kept as a
    /// buffer so export writes all three Keras weights.
    mutating func normalization(_ name: String, _ cfg: JSONValue, _ x: KerasValue, _ out: String) throws -> KerasValue {
        guard let c = x.shape.last ?? nil else { throw WconvError.invalid("Normalization '\(name)' needs a known channel count", file: file.path) }
        let axis = cfg["axis"]?.array?.compactMap({ $0.int }) ?? cfg["axis"].flatMap { $0.int.map { [$0] } } ?? [-1]
        let rank = x.shape.count + 1
        guard axis.count == 1, axis[0] == -1 || axis[0] == rank - 1 else {
            throw WconvError.invalid("Normalization '\(name)' over axes \(axis) is not supported (only the channel axis)", file: file.path)
        }
        if cfg["invert"]?.bool == true {
            unsupported.append("\(name) (Normalization with invert=True)")
            return KerasValue(name: out, shape: x.shape)
        }
        let mean: String, variance: String
        if weightsByLayer[name]?["mean"] != nil || missingWeights == .zeros && cfg["mean"]?.isNull != false {
            // The file stores (C,) (or the broadcast shape (1, 1, 1, C) in some Keras 3 versions).
            let stored = weightsByLayer[name]?["mean"]?.tensor.shape ?? [c]
            guard stored.reduce(1, *) == c else {
                throw WconvError.invalid("Normalization '\(name)' mean has shape \(stored); expected \(c) values", file: file.path)
            }
            mean = try param(name, "mean", expected: stored, transform: stored == [c] ? nil : LayoutTransform(kind: "reshape", sourceShape: stored), buffer: true)
            variance = try param(name, "variance", expected: stored, transform: stored == [c] ? nil : LayoutTransform(kind: "reshape", sourceShape: stored), buffer: true)
            if stored != [c] {
                graph.parameters[mean] = try KerasLayouts.reshaped(graph.parameters[mean]!, [c])
                graph.parameters[variance] = try KerasLayouts.reshaped(graph.parameters[variance]!, [c])
            }
            let count = try param(name, "count", expected: [], buffer: true)
            recordWeights(name, [mean, variance, count])
        } else if let m = cfg["mean"]?.array?.compactMap({ $0.double }), let v = cfg["variance"]?.array?.compactMap({ $0.double }),
                  m.count == c || m.count == 1, v.count == m.count {
            mean = constant("\(name)/mean", (m.count == 1 ? [Double](repeating: m[0], count: c) : m).map(Float.init), shape: [c])
            variance = constant("\(name)/variance", (v.count == 1 ? [Double](repeating: v[0], count: c) : v).map(Float.init), shape: [c])
        } else {
            throw WconvError.invalid("Normalization '\(name)' has neither adapted weights nor mean/variance in its config", file: file.path)
        }
        let gamma = constant("\(name)/__gamma", [Float](repeating: 1, count: c), shape: [c])
        let beta = constant("\(name)/__beta", [Float](repeating: 0, count: c), shape: [c])
        node(name, .batchNorm, [x.name, gamma, beta, mean, variance], out, ["epsilon": .float(1e-14), "momentum": .float(0)])
        return KerasValue(name: out, shape: x.shape)
    }
}
