import OrderedCollections
import WconvTensor

/// An op of the canonical vocabulary. A string-backed struct rather than an enum so that
/// builders and the runtime can add ops in their own files (`extension Op { static let … }`).
/// Attribute conventions for each op are documented where the op is declared (Ops/*Ops.swift, docs/adding-an-op.md).
public struct Op: Hashable, Codable, Sendable, CustomStringConvertible, ExpressibleByStringLiteral {
    public let rawValue: String
    public init(_ rawValue: String) { self.rawValue = rawValue }
    public init(stringLiteral value: String) { self.rawValue = value }
    public init(from decoder: Decoder) throws { rawValue = try decoder.singleValueContainer().decode(String.self) }
    public func encode(to encoder: Encoder) throws { var c = encoder.singleValueContainer(); try c.encode(rawValue) }
    public var description: String { rawValue }
}

/// A node attribute. Integers and floats keep their ONNX/PyTorch meaning; lists keep order.
public enum AttributeValue: Codable, Equatable, Sendable {
    case int(Int)
    case ints([Int])
    case float(Double)
    case floats([Double])
    case string(String)
    case strings([String])

    public var intValue: Int? { if case .int(let v) = self { return v }; return nil }
    public var intsValue: [Int]? {
        switch self { case .ints(let v): return v; case .int(let v): return [v]; default: return nil }
    }
    public var floatValue: Double? {
        switch self { case .float(let v): return v; case .int(let v): return Double(v); default: return nil }
    }
    public var floatsValue: [Double]? { if case .floats(let v) = self { return v }; return nil }
    public var stringValue: String? { if case .string(let v) = self { return v }; return nil }
}

/// One op application. `inputs` name graph values: activations produced by other nodes or graph
/// inputs, or entries of `ModelGraph.parameters` (weights, biases, BN statistics) — a name is a
/// parameter exactly when `parameters` has it. An empty string marks an omitted optional input.
public struct GraphNode: Codable, Equatable, Sendable {
    public var name: String
    public var op: Op
    public var inputs: [String]
    public var outputs: [String]
    public var attributes: [String: AttributeValue]

    public init(name: String, op: Op, inputs: [String], outputs: [String], attributes: [String: AttributeValue] = [:]) {
        self.name = name
        self.op = op
        self.inputs = inputs
        self.outputs = outputs
        self.attributes = attributes
    }

    public func int(_ key: String) -> Int? { attributes[key]?.intValue }
    public func ints(_ key: String) -> [Int]? { attributes[key]?.intsValue }
    public func float(_ key: String) -> Double? { attributes[key]?.floatValue }
    public func string(_ key: String) -> String? { attributes[key]?.stringValue }
}

/// A graph input or output: name, dtype and shape (`nil` dims are dynamic, e.g. the batch).
public struct ValueInfo: Codable, Equatable, Sendable {
    public var name: String
    public var dtype: DType
    public var shape: [Int?]
    public init(name: String, dtype: DType = .f32, shape: [Int?]) {
        self.name = name
        self.dtype = dtype
        self.shape = shape
    }
}

/// Image preprocessing the model expects (design.md §3 `wconv.preprocess`).
public struct Preprocessing: Codable, Equatable, Sendable {
    /// Input size fed to the network (height, width).
    public var inputSize: [Int]
    /// Resize the shorter side to this before cropping (nil: resize straight to inputSize).
    public var resizeShorter: Int?
    public var mean: [Double]
    public var std: [Double]
    /// `bilinear`, `bicubic` (torchvision's EfficientNet presets) or `nearest`.
    public var interpolation: String
    /// Channel order of the network input: `rgb` (default) or `bgr` (caffe-style Keras models).
    public var channelOrder: String
    /// Input value range before mean/std: 1.0 means pixels scaled to [0,1], 255.0 means raw.
    public var scale: Double
    /// True when wconv filled in the architecture family's usual preprocessing because the file
    /// records none (a bare state dict): training then fits the input size to the data
    /// (`--input-size auto`). Nil (absent from the JSON) when recorded.
    public var assumed: Bool?

    public init(inputSize: [Int] = [224, 224], resizeShorter: Int? = 256,
                mean: [Double] = [0.485, 0.456, 0.406], std: [Double] = [0.229, 0.224, 0.225],
                interpolation: String = "bilinear", channelOrder: String = "rgb", scale: Double = 1.0) {
        self.inputSize = inputSize
        self.resizeShorter = resizeShorter
        self.mean = mean
        self.std = std
        self.interpolation = interpolation
        self.channelOrder = channelOrder
        self.scale = scale
    }

    /// torchvision's ImageNet defaults: resize 256, center crop 224, ImageNet mean/std.
    public static let imagenet = Preprocessing()
}

/// Where a model came from and what was done to it (`wconv.provenance`).
public struct Provenance: Codable, Equatable, Sendable {
    public var sourceFile: String?
    public var sourceSHA256: String?
    public var sourceFormat: String?
    public var toolVersion: String?
    /// Free-form JSON-able notes, e.g. the training plan and seed.
    public var notes: [String: String]
    public init(sourceFile: String? = nil, sourceSHA256: String? = nil, sourceFormat: String? = nil,
                toolVersion: String? = nil, notes: [String: String] = [:]) {
        self.sourceFile = sourceFile
        self.sourceSHA256 = sourceSHA256
        self.sourceFormat = sourceFormat
        self.toolVersion = toolVersion
        self.notes = notes
    }
}

/// A layout change applied to a parameter on import (Keras HWIO → OIHW, Dense transposed, …),
/// recorded so export inverts it and never applies it twice.
public struct LayoutTransform: Codable, Equatable, Sendable {
    /// `permute` (with `perm` mapping new dim i to old dim perm[i]), or a named transform.
    public var kind: String
    public var perm: [Int]?
    /// Shape in the source framework before the transform.
    public var sourceShape: [Int]
    public init(kind: String, perm: [Int]? = nil, sourceShape: [Int]) {
        self.kind = kind
        self.perm = perm
        self.sourceShape = sourceShape
    }
}

/// The canonical model: a DAG of typed ops over named values, with parameters and metadata.
/// Layouts are PyTorch's (NCHW activations, OIHW conv weights, Linear weight (out, in)).
public struct ModelGraph: Sendable {
    /// Nodes in a topological order.
    public var nodes: [GraphNode]
    public var inputs: [ValueInfo]
    public var outputs: [ValueInfo]
    /// Parameters and buffers by their source names.
    public var parameters: OrderedDictionary<String, Tensor>
    /// Names in `parameters` that are buffers (BN running stats, counters), not trainable.
    public var buffers: Set<String>
    /// Recognised family (`resnet`, `efficientnet`, `bert`, … or `onnx`, `keras`) and variant.
    public var architecture: String?
    public var variant: String?
    public var preprocessing: Preprocessing?
    /// Class names for the output, when known.
    public var labels: [String]?
    public var provenance: Provenance
    /// Layout transforms applied on import, by parameter name.
    public var layoutTransforms: [String: LayoutTransform]
    /// Tied parameters: alias name → name that holds the values.
    public var aliases: [String: String]

    public init(nodes: [GraphNode] = [], inputs: [ValueInfo] = [], outputs: [ValueInfo] = [],
                parameters: OrderedDictionary<String, Tensor> = [:], buffers: Set<String> = [],
                architecture: String? = nil, variant: String? = nil, preprocessing: Preprocessing? = nil,
                labels: [String]? = nil, provenance: Provenance = Provenance(),
                layoutTransforms: [String: LayoutTransform] = [:], aliases: [String: String] = [:]) {
        self.nodes = nodes
        self.inputs = inputs
        self.outputs = outputs
        self.parameters = parameters
        self.buffers = buffers
        self.architecture = architecture
        self.variant = variant
        self.preprocessing = preprocessing
        self.labels = labels
        self.provenance = provenance
        self.layoutTransforms = layoutTransforms
        self.aliases = aliases
    }

    /// True when the graph has no nodes: a weights-only bundle (inspect/convert/diff work; run/train do not).
    public var isWeightsOnly: Bool { nodes.isEmpty }
}
