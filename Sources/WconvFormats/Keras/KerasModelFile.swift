import OrderedCollections
import WconvTensor

/// Everything a Keras file says: the architecture config (when the file has one), the weights of
/// each layer in Keras order with their Keras names and shapes (Keras layouts: HWIO kernels,
/// (in, out) Dense kernels), and the Keras version and backend that wrote it.
public struct KerasModelFile: Sendable {
    /// Which of the Keras/HDF5 layouts the file uses.
    public enum Layout: String, Sendable {
        /// `model.save('x.h5')`: root `model_config` + `model_weights/` (tf_keras and Keras 3).
        case legacyModel = "keras-h5"
        /// `save_weights('x.h5')`: `layer_names` at the root, no config.
        case legacyWeights = "keras-h5-weights"
        /// Keras 3 `.keras` zip: config.json + metadata.json + model.weights.h5.
        case kerasZip = "keras"
        /// Keras 3 `save_weights('x.weights.h5')`: `layers/<class_snake>[_N]/vars/<i>`, no config.
        case kerasWeights = "keras-weights-h5"
        /// An HDF5 file of named datasets that is not a Keras file.
        case plainHDF5 = "hdf5"
    }

    /// One weight of a layer.
    public struct Weight: Sendable {
        /// The Keras variable name without scope or `:0`, e.g. `kernel`, `moving_variance`,
        /// `depthwise_kernel` (Keras 2) — as the file spells it.
        public var name: String
        /// Where the values sit in the HDF5 file (for messages).
        public var sourcePath: String
        public var tensor: Tensor
        public init(name: String, sourcePath: String, tensor: Tensor) {
            self.name = name
            self.sourcePath = sourcePath
            self.tensor = tensor
        }
    }

    /// One layer: its name, class and config when known, and its weights in Keras order.
    public struct Layer: Sendable {
        public var name: String
        public var className: String?
        /// The layer's entry of `config.layers` (with `class_name`, `config`, `inbound_nodes`).
        public var config: JSONValue?
        public var weights: [Weight]
        public init(name: String, className: String?, config: JSONValue?, weights: [Weight]) {
            self.name = name
            self.className = className
            self.config = config
            self.weights = weights
        }
    }

    /// One row of `wconv inspect`'s layer table.
    public struct LayerRow: Sendable, Equatable {
        public var name: String
        public var className: String
        /// Keras output shape without the batch dim (NHWC for images), when the config reveals it.
        public var outputShape: [Int?]?
        /// Number of weight elements.
        public var params: Int
    }

    public var path: String
    public var layout: Layout
    /// The model config: `{"class_name": "Functional"|"Sequential", "config": {...}}`, or nil.
    public var config: JSONValue?
    public var kerasVersion: String?
    public var backend: String?
    /// Layers in Keras model order (`layer_names` / config order). Weightless layers are included
    /// when the file lists them.
    public var layers: [Layer]
    /// Things the user should know (unknown layer classes, skipped datasets, …).
    public var warnings: [String]

    public init(path: String, layout: Layout, config: JSONValue?, kerasVersion: String?, backend: String?,
                layers: [Layer], warnings: [String] = []) {
        self.path = path
        self.layout = layout
        self.config = config
        self.kerasVersion = kerasVersion
        self.backend = backend
        self.layers = layers
        self.warnings = warnings
    }

    /// True when the file was written by Keras 2 / tf_keras (changes e.g. `hard_sigmoid`).
    public var isKeras2: Bool {
        if let v = kerasVersion, let major = v.split(separator: ".").first, let m = Int(major) { return m < 3 }
        return false
    }

    /// The config's layer entries (`config.layers`), empty when there is no config.
    public var configLayers: [JSONValue] { config?["config"]?["layers"]?.array ?? [] }

    /// Bundle name of a weight: `layer_name/weight_name` (Keras 3's `layer.name`/`variable.name`,
    /// e.g. `conv1_conv/kernel`), the form every Keras layout maps to.
    public static func bundleName(layer: String, weight: String) -> String { layer + "/" + weight }

    /// All weights as a `TensorBundle` named `layer/weight`, in Keras order, in Keras layouts.
    public var bundle: TensorBundle {
        var b = TensorBundle(format: layout.rawValue)
        for layer in layers {
            for w in layer.weights {
                let name = layout == .plainHDF5 ? w.name : Self.bundleName(layer: layer.name, weight: w.name)
                b.tensors[name] = w.tensor
            }
        }
        if let v = kerasVersion { b.metadata["keras_version"] = v }
        if let v = backend { b.metadata["keras_backend"] = v }
        if let c = config { b.metadata["keras_config"] = c.serialized }
        b.warnings = warnings
        return b
    }

    /// The layer table for `wconv inspect`: every layer with class, output shape (when the config
    /// reveals it: Keras 3 configs record each consumer's input tensor shapes) and parameter count.
    public var layerTable: [LayerRow] {
        var shapes: [String: [Int?]] = [:]
        for entry in configLayers {
            for node in entry["inbound_nodes"]?.array ?? [] {
                collectTensorShapes(node, into: &shapes)
            }
        }
        var rows: [LayerRow] = []
        var seen = Set<String>()
        for entry in configLayers {
            let name = entry["config"]?["name"]?.string ?? entry["name"]?.string ?? "?"
            seen.insert(name)
            var shape = shapes[name]
            if shape == nil, entry["class_name"]?.string == "InputLayer" {
                let cfg = entry["config"]
                if let bs = (cfg?["batch_shape"] ?? cfg?["batch_input_shape"])?.array {
                    shape = bs.dropFirst().map { $0.int }
                }
            }
            let params = layers.first { $0.name == name }?.weights.reduce(0) { $0 + $1.tensor.numel } ?? 0
            rows.append(LayerRow(name: name, className: entry["class_name"]?.string ?? "?", outputShape: shape, params: params))
        }
        for layer in layers where !seen.contains(layer.name) {
            rows.append(LayerRow(name: layer.name, className: layer.className ?? "?", outputShape: nil,
                                 params: layer.weights.reduce(0) { $0 + $1.tensor.numel }))
        }
        return rows
    }

    private func collectTensorShapes(_ v: JSONValue, into shapes: inout [String: [Int?]]) {
        switch v {
        case .object(let o):
            if o["class_name"]?.string == "__keras_tensor__", let cfg = o["config"],
               let hist = cfg["keras_history"]?.array, let layer = hist.first?.string,
               let shape = cfg["shape"]?.array {
                shapes[layer] = shape.dropFirst().map { $0.int }
            } else {
                for (_, x) in o { collectTensorShapes(x, into: &shapes) }
            }
        case .array(let a):
            for x in a { collectTensorShapes(x, into: &shapes) }
        default: break
        }
    }
}
