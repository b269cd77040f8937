import OrderedCollections
import WconvFormats
import WconvTensor

/// Builds the canonical graph from a Keras model config (`model_config` of a legacy `.h5` or the
/// `config.json` of a `.keras` zip), Functional or Sequential.
///
/// - Activations become NCHW: a Keras rank-4 tensor (N, H, W, C) is (N, C, H, W) in the graph;
///   channel-axis attributes, Flatten and Reshape are adjusted (Flatten of an image gets a
///   transpose to NHWC first so the following Dense keeps its Keras row order).
/// - Parameters keep Keras names, `layer/weight` (`conv1_conv/kernel`, `bn/moving_variance`,
///   `dw/depthwise_kernel` for Keras 2 files), in canonical layouts: conv OIHW, depthwise as a
///   grouped conv (C·M, 1, kh, kw), Dense (out, in). Each change is in `layoutTransforms`.
///   Roles by op input position: conv2d [x, kernel, bias], linear [x, kernel, bias], batchNorm
///   [x, gamma, beta, moving_mean, moving_variance]. BN without `scale`/`center` and Normalization
///   get constant buffers named `layer/__gamma`, `layer/__beta` (not Keras weights; not exported).
/// - 'same' padding is exact for the recorded input size: `pads` [top, left, bottom, right] with the
///   odd pixel at the bottom/right, plus `autoPad = "SAME_UPPER"` so a runtime can recompute the
///   split for another input size.
/// - `provenance.notes["keras.layers"]` lists every layer and its Keras weight names in Keras
///   order; `KerasH5Writer` uses it to write a file that `load_weights` accepts.
public enum KerasGraphBuilder {
    /// What to do when the config needs a weight the file does not have.
    public enum MissingWeights: Sendable {
        /// Throw (the default: a file that lacks weights is broken).
        case error
        /// Use zeros of the expected shape (structure checks from a config alone).
        case zeros
    }

    /// Builds the graph. Throws `.invalidInput` when there is no config, a layer class is not
    /// supported (all are listed at once), or a weight has the wrong shape.
    public static func build(_ file: KerasModelFile, missingWeights: MissingWeights = .error) throws -> ModelGraph {
        var b = try Builder(file: file, missingWeights: missingWeights)
        return try b.run()
    }
}

/// One value flowing between layers: its graph name and its Keras shape (without the batch dim).
struct KerasValue {
    var name: String
    /// Keras shape without batch; for rank-3 (image) shapes the graph value is (N, C, H, W).
    var shape: [Int?]
    var isImage: Bool { shape.count == 3 }
}

struct Builder {
    let file: KerasModelFile
    let missingWeights: KerasGraphBuilder.MissingWeights
    let config: JSONValue
    var graph = ModelGraph()
    /// Output of each (layer, call index).
    var values: [String: KerasValue] = [:]
    var weightsByLayer: [String: [String: KerasModelFile.Weight]] = [:]
    /// Per layer: the Keras weight names (in Keras order) and the graph parameter names for them.
    var kerasWeightNames: [String: [String]] = [:]
    var unsupported: [String] = []
    var notes: [String] = []
    var usedWeights = Set<String>()
    /// Names of the model layers enclosing the layer being converted (nested models).
    var scope: [String] = []

    init(file: KerasModelFile, missingWeights: KerasGraphBuilder.MissingWeights) throws {
        guard let cfg = file.config else {
            throw WconvError.invalid("has no model config (a weights-only Keras file); build the graph from the .keras or model.save .h5 file instead, or import the weights alone", file: file.path)
        }
        self.file = file
        self.missingWeights = missingWeights
        self.config = cfg
        for layer in file.layers {
            var d: [String: KerasModelFile.Weight] = [:]
            for w in layer.weights { d[w.name] = w }
            weightsByLayer[layer.name] = d
        }
    }

    static func layerName(_ e: JSONValue) -> String {
        e["config"]?["name"]?.string ?? e["name"]?.string ?? "?"
    }

    mutating func run() throws -> ModelGraph {
        let cls = config["class_name"]?.string ?? "?"
        let layers = config["config"]?["layers"]?.array ?? []
        switch cls {
        case "Sequential":
            try buildSequential(layers)
        case "Functional", "Model":
            try buildFunctional(layers)
        default:
            throw WconvError.invalid("the model config's class is '\(cls)'; only Functional and Sequential models are supported", file: file.path)
        }
        if !unsupported.isEmpty {
            throw WconvError.invalid("unsupported Keras layers (\(unsupported.count)): \(unsupported.joined(separator: ", ")); the weights still import with `wconv import` as a weights-only bundle", file: file.path)
        }
        let modelName = config["config"]?["name"]?.string ?? ""
        graph.architecture = "keras"
        graph.variant = modelName
        graph.provenance.sourceFile = file.path
        graph.provenance.sourceFormat = file.layout.rawValue
        if let v = file.kerasVersion { graph.provenance.notes["keras.version"] = v }
        if let v = file.backend { graph.provenance.notes["keras.backend"] = v }
        graph.provenance.notes["keras.model_class"] = cls
        graph.provenance.notes["keras.config"] = config.serialized
        // Every layer in model order (what `layer_names` lists) with its weights' graph names in
        // Keras order; weighted layers must line up with the model's for `load_weights`.
        graph.provenance.notes["keras.layers"] = JSONValue.array(layers.map { e in
            let n = Self.layerName(e)
            return .object(["name": .string(n), "weights": .array((kerasWeightNames[n] ?? []).map { .string($0) })])
        }).serialized
        if !notes.isEmpty { graph.provenance.notes["keras.transforms"] = notes.joined(separator: "; ") }
        graph.preprocessing = KerasPreprocessing.infer(modelName: modelName, graph: graph, firstLayers: layers)
        return graph
    }

    // MARK: model kinds

    mutating func buildSequential(_ layers: [JSONValue]) throws {
        var current: KerasValue?
        for (i, entry) in layers.enumerated() {
            let cls = entry["class_name"]?.string ?? "?"
            let name = Self.layerName(entry)
            if cls == "InputLayer" {
                current = try addInput(entry)
                continue
            }
            if current == nil {
                // Keras 2 Sequential without an InputLayer: the first layer carries the input shape.
                let cfg = entry["config"]
                guard let bs = (cfg?["batch_input_shape"] ?? cfg?["batch_shape"])?.array else {
                    throw WconvError.invalid("Sequential layer \(i) ('\(name)') has no input shape; the model was never built", file: file.path)
                }
                current = try addInput(name: name + "_input", batchShape: bs)
            }
            current = try convert(entry, inputs: [current!], outputName: name)
        }
        guard let out = current else { throw WconvError.invalid("the Sequential model has no layers", file: file.path) }
        graph.outputs = [valueInfo(out)]
    }

    mutating func buildFunctional(_ layers: [JSONValue]) throws {
        try runFunctional(layers)
        let outs = Self.layerRefs(config["config"]?["output_layers"])
        guard !outs.isEmpty else { throw WconvError.invalid("the Functional config has no output_layers", file: file.path) }
        graph.outputs = try outs.map { ref in
            guard let v = values["\(ref.0)#\(ref.1)"] else {
                throw WconvError.invalid("output layer '\(ref.0)' was never computed", file: file.path)
            }
            return valueInfo(v)
        }
    }

    /// Converts the layers of a Functional model. At the top level InputLayers become graph
    /// inputs; inside a nested model they are already bound to the outer tensors.
    mutating func runFunctional(_ layers: [JSONValue]) throws {
        // Layers in config order are topologically sorted by Keras; still resolve iteratively so
        // a hand-edited config in another order works.
        var pending: [(entry: JSONValue, calls: [[(String, Int, Int)]])] = []
        for entry in layers {
            if entry["class_name"]?.string == "InputLayer" {
                if scope.isEmpty {
                    let v = try addInput(entry)
                    values[Self.layerName(entry) + "#0"] = v
                } else if values[Self.layerName(entry) + "#0"] == nil {
                    throw WconvError.invalid("nested model '\(scope.joined(separator: "/"))': input '\(Self.layerName(entry))' is not fed", file: file.path)
                }
                continue
            }
            pending.append((entry, try Self.inboundCalls(entry, file: file.path)))
        }
        var done = Set<String>()
        var progress = true
        while progress {
            progress = false
            for (entry, calls) in pending {
                let name = Self.layerName(entry)
                for (k, call) in calls.enumerated() where !done.contains("\(name)#\(k)") {
                    let ins = call.map { values["\($0.0)#\($0.1)"] }
                    guard ins.allSatisfy({ $0 != nil }) else { continue }
                    let outName = prefix + (k == 0 ? name : "\(name)@\(k)")
                    values["\(name)#\(k)"] = try convert(entry, inputs: ins.map { $0! }, outputName: outName, callIndex: k)
                    done.insert("\(name)#\(k)")
                    progress = true
                }
            }
        }
        for (entry, calls) in pending where !done.contains(Self.layerName(entry) + "#0") && !calls.isEmpty {
            throw WconvError.invalid("layer '\(prefix)\(Self.layerName(entry))' consumes a tensor no layer produces (\(calls[0].map { "\($0.0)[\($0.1)]" }.joined(separator: ", ")))", file: file.path)
        }
    }

    /// A model used as a layer (the usual transfer-learning `base_model(inputs)`): its layers are
    /// inlined with node names under `<model>/`; its weights are the outer layer's, named
    /// `<model>/<inner layer>/<weight>` and recorded trainable-first as Keras's legacy
    /// `load_weights` expects (`layer.trainable_weights + layer.non_trainable_weights`).
    mutating func convertModel(_ entry: JSONValue, inputs: [KerasValue], outputName: String) throws -> KerasValue {
        let name = Self.layerName(entry)
        let cls = entry["class_name"]?.string ?? "?"
        let cfg = entry["config"] ?? .null
        let innerLayers = cfg["layers"]?.array ?? []
        guard scope.count < 16 else { throw WconvError.invalid("models nest deeper than 16 levels at '\(name)'", file: file.path) }
        let savedValues = values
        scope.append(name)
        defer { scope.removeLast(); values = savedValues }
        let result: KerasValue
        if cls == "Sequential" {
            guard inputs.count == 1 else { throw WconvError.invalid("nested Sequential '\(name)' takes one input, got \(inputs.count)", file: file.path) }
            var cur = inputs[0]
            for e in innerLayers where e["class_name"]?.string != "InputLayer" {
                cur = try convert(e, inputs: [cur], outputName: prefix + Self.layerName(e))
            }
            result = cur
        } else {
            values = [:]
            let ins = Self.layerRefs(cfg["input_layers"])
            guard ins.count == inputs.count else {
                throw WconvError.invalid("nested model '\(name)' has \(ins.count) inputs but is called with \(inputs.count)", file: file.path)
            }
            for (ref, v) in zip(ins, inputs) { values["\(ref.0)#\(ref.1)"] = v }
            try runFunctional(innerLayers)
            let outs = Self.layerRefs(cfg["output_layers"])
            guard outs.count == 1, let v = values["\(outs[0].0)#\(outs[0].1)"] else {
                throw WconvError.invalid("nested model '\(name)' must have exactly one computed output (has \(outs.count))", file: file.path)
            }
            result = v
        }
        // Gather the inner layers' weights (recorded under their scoped names), trainable first.
        let innerNames = Self.flattenedLayerNames(innerLayers, prefix: prefix)
        let all = innerNames.flatMap { kerasWeightNames[$0] ?? [] }
        kerasWeightNames[prefix.isEmpty ? name : String(prefix.dropLast())] = all.filter { !graph.buffers.contains($0) } + all.filter { graph.buffers.contains($0) }
        _ = outputName
        return result
    }

    /// Scoped names of every layer of a model, nested models expanded, in model order.
    static func flattenedLayerNames(_ layers: [JSONValue], prefix: String) -> [String] {
        layers.flatMap { e -> [String] in
            let n = layerName(e)
            if ["Functional", "Sequential", "Model"].contains(e["class_name"]?.string ?? "") {
                return flattenedLayerNames(e["config"]?["layers"]?.array ?? [], prefix: prefix + n + "/")
            }
            return [prefix + n]
        }
    }

    /// `outer/inner/` while converting a nested model's layers, "" at the top level.
    var prefix: String { scope.isEmpty ? "" : scope.joined(separator: "/") + "/" }

    mutating func recordWeights(_ layer: String, _ params: [String]) {
        kerasWeightNames[prefix + layer] = params
    }

    /// `[["name", 0, 0], …]` or a single `["name", 0, 0]` (Keras 3 with one input/output).
    static func layerRefs(_ v: JSONValue?) -> [(String, Int, Int)] {
        guard let a = v?.array else { return [] }
        if let n = a.first?.string { return [(n, a[safe: 1]?.int ?? 0, a[safe: 2]?.int ?? 0)] }
        return a.compactMap { r in
            guard let n = r[0]?.string else { return nil }
            return (n, r[1]?.int ?? 0, r[2]?.int ?? 0)
        }
    }

    /// The inputs of each call of a layer: Keras 3 `{"args": [...keras tensors...]}` or Keras 2
    /// `[[["name", node, tensor, {}], ...]]`.
    static func inboundCalls(_ entry: JSONValue, file: String) throws -> [[(String, Int, Int)]] {
        var calls: [[(String, Int, Int)]] = []
        for node in entry["inbound_nodes"]?.array ?? [] {
            if let args = node["args"] {
                var refs: [(String, Int, Int)] = []
                collectKerasTensors(args, into: &refs)
                calls.append(refs)
            } else if let list = node.array {
                calls.append(list.compactMap { r in
                    guard let n = r[0]?.string else { return nil }
                    return (n, r[1]?.int ?? 0, r[2]?.int ?? 0)
                })
            }
        }
        return calls
    }

    static func collectKerasTensors(_ v: JSONValue, into refs: inout [(String, Int, Int)]) {
        switch v {
        case .object(let o):
            if o["class_name"]?.string == "__keras_tensor__", let h = o["config"]?["keras_history"]?.array,
               let n = h.first?.string {
                refs.append((n, h[safe: 1]?.int ?? 0, h[safe: 2]?.int ?? 0))
            } else {
                for (_, x) in o { collectKerasTensors(x, into: &refs) }
            }
        case .array(let a):
            for x in a { collectKerasTensors(x, into: &refs) }
        default: break
        }
    }

    // MARK: inputs and outputs

    mutating func addInput(_ entry: JSONValue) throws -> KerasValue {
        let cfg = entry["config"]
        guard let bs = (cfg?["batch_shape"] ?? cfg?["batch_input_shape"])?.array else {
            throw WconvError.invalid("InputLayer '\(Self.layerName(entry))' has no batch_shape", file: file.path)
        }
        return try addInput(name: Self.layerName(entry), batchShape: bs)
    }

    mutating func addInput(name: String, batchShape: [JSONValue]) throws -> KerasValue {
        let shape = batchShape.dropFirst().map { $0.int }
        let v = KerasValue(name: name, shape: Array(shape))
        graph.inputs.append(valueInfo(v))
        return v
    }

    func valueInfo(_ v: KerasValue) -> ValueInfo {
        if v.isImage { return ValueInfo(name: v.name, shape: [nil, v.shape[2], v.shape[0], v.shape[1]]) }
        return ValueInfo(name: v.name, shape: [nil] + v.shape)
    }

    // MARK: parameters

    /// The Keras weight `weight` of `layer`, checked against `expected` (Keras layout), converted
    /// with `transform` into a graph parameter named `layer/weight` (the file's own spelling).
    mutating func param(_ layer: String, _ weight: String, aliases: [String] = [], expected: [Int],
                        transform: LayoutTransform? = nil, buffer: Bool = false) throws -> String {
        // Inside nested models the weights belong to the outermost model layer, named by the
        // inner path: `base/c1/kernel` is weight `c1/kernel` of layer `base`.
        let owner = scope.first ?? layer
        let innerPath = scope.isEmpty ? "" : (scope.dropFirst() + [layer]).joined(separator: "/") + "/"
        var found: KerasModelFile.Weight?
        for n in [weight] + aliases { if let w = weightsByLayer[owner]?[innerPath + n] { found = w; break } }
        let name: String
        var tensor: Tensor
        if let w = found {
            name = KerasModelFile.bundleName(layer: owner, weight: w.name)
            guard w.tensor.shape == expected else {
                throw WconvError.invalid("weight '\(w.sourcePath)' of layer '\(layer)' has shape \(w.tensor.shape) but the config needs \(expected); the weights do not match this architecture", file: file.path)
            }
            tensor = w.tensor
        } else {
            name = KerasModelFile.bundleName(layer: owner, weight: innerPath + weight)
            guard missingWeights == .zeros else {
                throw WconvError.invalid("layer '\(prefix)\(layer)' needs weight '\(weight)' \(expected) but the file has none (it has: \(weightsByLayer[owner].map { $0.keys.sorted().joined(separator: ", ") } ?? "no group for this layer"))", file: file.path)
            }
            // Config sizes are untrusted: bound what zeros may allocate.
            let n = try Tensor.checkedNumel(expected)
            guard expected.allSatisfy({ $0 >= 0 }), n <= 1 << 28 else {
                throw WconvError.invalid("layer '\(prefix)\(layer)': the config implies weight '\(weight)' of shape \(expected), too large to stand in with zeros", file: file.path)
            }
            tensor = Tensor(zeros: expected)
        }
        usedWeights.insert(name)
        if let tr = transform {
            tensor = try KerasLayouts.toCanonical(tensor, tr)
            graph.layoutTransforms[name] = tr
        } else if tensor.dtype != .f32 && tensor.dtype.isFloatingPoint {
            tensor = tensor.converted(to: .f32).tensor
        }
        graph.parameters[name] = tensor
        if buffer { graph.buffers.insert(name) }
        return name
    }

    /// A constant buffer that is not a Keras weight (BN without scale, Rescaling factors, …).
    mutating func constant(_ name: String, _ values: [Float], shape: [Int]) -> String {
        graph.parameters[name] = Tensor(shape: shape, floats: values)
        graph.buffers.insert(name)
        return name
    }

    mutating func node(_ name: String, _ op: Op, _ inputs: [String], _ output: String, _ attrs: [String: AttributeValue] = [:]) {
        graph.nodes.append(GraphNode(name: prefix + name, op: op, inputs: inputs, outputs: [output], attributes: attrs))
    }
}

extension Array {
    subscript(safe i: Int) -> Element? { i >= 0 && i < count ? self[i] : nil }
}
