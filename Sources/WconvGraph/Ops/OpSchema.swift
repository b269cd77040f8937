import Foundation
import WconvFormats
import WconvTensor

/// A shape rule as other builders register it: given a node and the shapes of its inputs (`nil`
/// for an omitted optional input), returns the shapes of its outputs or throws naming what is wrong.
public typealias ShapeRule = @Sendable (_ node: GraphNode, _ inputs: [[Int]?]) throws -> [[Int]]

/// An input whose *value* decides the output shape (Reshape's shape, Slice's bounds, …). Once the
/// folding pass knows the value it becomes attribute `attribute` and the input is dropped.
public struct ValueInput: Sendable {
    public enum Kind: Sendable {
        /// A list of ints (shapes, axes, bounds).
        case ints
        /// A list of floats (Resize's scales and roi).
        case floats
        /// One float; `recordsDType` also stores the value's dtype as attribute `dtype` (Range).
        case scalar(recordsDType: Bool)
    }
    public var index: Int
    public var attribute: String
    public var kind: Kind
    public init(_ index: Int, _ attribute: String, _ kind: Kind = .ints) {
        self.index = index
        self.attribute = attribute
        self.kind = kind
    }
}

/// Everything the graph layer knows about one op (docs/adding-an-op.md): the one shape rule, the
/// dtype rule, the value inputs and the value (folding) rule. The runtime half lives in
/// WconvRuntime/Ops (`OpKernels`).
public struct OpSchema: @unchecked Sendable {
    public let op: Op
    public var valueInputs: [ValueInput]
    var shape: (ShapeArgs) throws -> [[Int]]
    var dtype: (GraphNode, [DType?]) -> [DType]
    /// Evaluates the op on known values (exact dtypes); nil result: not foldable in this case.
    var fold: ((FoldArgs) throws -> [Tensor]?)?
    /// The value rule needs only input shapes (Shape, arange), not input values.
    var foldsFromShapes: Bool
    /// ONNX op types this op imports (docs/adding-an-op.md); the builder looks them up here first.
    var onnx: [String: ONNXImporter]
    /// Writes the node as ONNX at the exporter's opset; nil: the exporter's own table handles it.
    var onnxExport: ONNXExporter?

    init(_ op: Op, valueInputs: [ValueInput] = [], dtype: DTypeRule = .sameAsInput,
         fold: ((FoldArgs) throws -> [Tensor]?)? = nil, foldsFromShapes: Bool = false,
         onnx: [String: ONNXImporter] = [:], onnxExport: ONNXExporter? = nil, shape: @escaping (ShapeArgs) throws -> [[Int]]) {
        self.op = op
        self.valueInputs = valueInputs
        self.shape = shape
        self.dtype = dtype.rule
        self.fold = fold
        self.foldsFromShapes = foldsFromShapes
        self.onnx = onnx
        self.onnxExport = onnxExport
    }
}

/// Imports one ONNX node (docs/adding-an-op.md): reads its attributes for the model's opset and
/// emits canonical nodes, or records why it cannot.
typealias ONNXImporter = (inout ONNXBuildContext, ONNXNode) throws -> Void
/// Writes one canonical node as ONNX nodes (or records a problem).
typealias ONNXExporter = (inout ONNXExportContext, GraphNode) -> Void

/// How an op's output dtypes follow from its inputs.
struct DTypeRule {
    let rule: (GraphNode, [DType?]) -> [DType]
    /// Every output has the dtype of the first present input (f32 when none).
    static let sameAsInput = DTypeRule { node, ins in
        [DType](repeating: ins.compactMap { $0 }.first ?? .f32, count: max(node.outputs.count, 1))
    }
    static func input(_ i: Int) -> DTypeRule {
        DTypeRule { node, ins in [DType](repeating: (i < ins.count ? ins[i] : nil) ?? .f32, count: max(node.outputs.count, 1)) }
    }
    static func fixed(_ d: DType) -> DTypeRule { DTypeRule { node, _ in [DType](repeating: d, count: max(node.outputs.count, 1)) } }
    /// The dtype named by a string attribute (Cast's `to`, ConstantOfShape's `dtype`).
    static func attribute(_ key: String) -> DTypeRule {
        DTypeRule { node, _ in [DType(rawValue: node.string(key) ?? "f32") ?? .f32] }
    }
}

/// What a shape rule sees, with the checks every rule needs. Errors name the node, its op and the
/// input shapes.
struct ShapeArgs {
    let node: GraphNode
    let inputs: [[Int]?]

    func fail(_ why: String) -> WconvError { ShapeInference.fail(node, inputs, why) }

    func need(_ i: Int) throws -> [Int] {
        guard i < inputs.count, let s = inputs[i] else { throw fail("input \(i) is required") }
        return s
    }

    /// An optional input's shape (nil when omitted).
    func optional(_ i: Int) -> [Int]? { i < inputs.count ? inputs[i] : nil }

    func int(_ key: String) -> Int? { node.int(key) }

    /// An ints attribute with `count` values (one value repeats), or the default.
    func ints(_ key: String, _ count: Int, default d: Int) throws -> [Int] {
        guard let v = node.ints(key, count: count, default: d) else {
            throw fail("attribute \(key) has \(node.ints(key)?.count ?? 0) values, expected \(count)")
        }
        return v
    }

    func axis(_ a: Int, rank: Int) throws -> Int {
        let r = a < 0 ? a + rank : a
        guard r >= 0 && r < rank else { throw fail("axis \(a) is out of range for rank \(rank)") }
        return r
    }

    func prod(_ dims: ArraySlice<Int>) throws -> Int {
        guard let n = try? Tensor.checkedNumel(Array(dims)) else { throw fail("sizes \(Array(dims)) overflow") }
        return n
    }

    func sum(_ a: Int, _ b: Int) throws -> Int {
        let (r, o) = a.addingReportingOverflow(b)
        guard !o else { throw fail("sizes overflow") }
        return r
    }

    func broadcast(_ a: [Int], _ b: [Int]) throws -> [Int] {
        guard let out = ShapeInference.broadcast(a, b) else { throw fail("shapes \(a) and \(b) do not broadcast") }
        return out
    }

    /// A value attribute the folding pass fills from a value input; refused when still an input.
    func valueAttr(_ key: String, input: Int) throws -> [Int] {
        if let v = node.ints(key) { return v }
        throw fail("the \(key) (input \(input)) is computed from input data at run time; wconv needs it known once the input shapes are known")
    }

    /// Refuses shapes larger than `ShapeInference.maxValueShapedElements` (sizes read from values in the file).
    func bounded(_ shape: [Int]) throws -> [Int] {
        var n = 1
        for d in shape {
            let (p, o) = n.multipliedReportingOverflow(by: d)
            guard d >= 0, !o, p <= ShapeInference.maxValueShapedElements else {
                throw fail("output shape \(shape) is negative or larger than \(ShapeInference.maxValueShapedElements) elements; the file's values ask for more than wconv will allocate")
            }
            n = p
        }
        return shape
    }

    /// Output size of a sliding window (conv, pooling) with PyTorch's ceil_mode rule.
    func window(_ size: Int, k: Int, s: Int, p0: Int, p1: Int, d: Int, ceil: Bool, what: String) throws -> Int {
        guard k >= 1, s >= 1, d >= 1, p0 >= 0, p1 >= 0, k < 1 << 20, s < 1 << 30, d < 1 << 20, p0 < 1 << 30, p1 < 1 << 30, size < 1 << 40 else {
            throw fail("\(what): kernel \(k), stride \(s), dilation \(d), pads \(p0),\(p1) must be positive and sane")
        }
        let span = d * (k - 1) + 1
        let avail = size + p0 + p1 - span
        guard avail >= 0 else {
            throw fail("\(what): input size \(size) with pads \(p0)+\(p1) is smaller than the kernel extent \(span)")
        }
        var out = (ceil ? (avail + s - 1) / s : avail / s) + 1
        // PyTorch: with ceil_mode the last window must start inside the input or left padding.
        if ceil && (out - 1) * s >= size + p0 { out -= 1 }
        return out
    }
}

extension GraphNode {
    /// An ints attribute with `count` values (a single value repeats), `default` repeated when
    /// absent, nil when it has another number of values. Shape rules and kernels read spatial
    /// attributes (strides, pads, dilations, kernel) through this one reading.
    public func ints(_ key: String, count: Int, default d: Int) -> [Int]? {
        guard let v = ints(key) else { return [Int](repeating: d, count: count) }
        if v.count == 1 && count > 1 { return [Int](repeating: v[0], count: count) }
        return v.count == count ? v : nil
    }
}

/// All op schemas, by op. Families are the `*Ops` files of this folder; a new family adds one line.
public enum OpCatalog {
    static let families: [[OpSchema]] = [
        ConvolutionOps.schemas, NormalizationOps.schemas, LinearOps.schemas, ActivationOps.schemas,
        PoolingOps.schemas, ElementwiseOps.schemas, ShapeOps.schemas, ShapeValueOps.schemas,
        ReductionOps.schemas, AttentionOps.schemas, SamplingOps.schemas, RecurrentOps.schemas, IndexOps.schemas,
        EinsumOps.schemas,
    ]

    static let builtin: [Op: OpSchema] = {
        var all: [Op: OpSchema] = [:]
        for family in families { for s in family { precondition(all[s.op] == nil, "op \(s.op) defined twice"); all[s.op] = s } }
        return all
    }()

    /// ONNX op type → importer, from every schema.
    static let onnxImporters: [String: ONNXImporter] = {
        var all: [String: ONNXImporter] = [:]
        for s in builtin.values { for (k, v) in s.onnx { all[k] = v } }
        return all
    }()

    private static let lock = NSLock()
    nonisolated(unsafe) private static var custom: [Op: OpSchema] = [:]

    /// The schema of an op (built in or registered), or nil.
    public static func schema(_ op: Op) -> OpSchema? {
        if let s = builtin[op] { return s }
        lock.lock(); defer { lock.unlock() }
        return custom[op]
    }

    /// Every built-in op.
    public static var ops: Set<Op> { Set(builtin.keys) }

    static func register(_ schema: OpSchema) {
        lock.lock(); defer { lock.unlock() }
        custom[schema.op] = schema
    }
}

/// The shape rules of every op, from the catalog.
public enum ShapeInference {
    /// Largest output (elements) an op whose shape comes from values in the file may ask for
    /// (expand, tile, constantOfShape, range, resize): 1 GiB of f32. A few bytes of file must not
    /// make the runtime allocate gigabytes.
    public static let maxValueShapedElements = 1 << 28

    /// Registers (or replaces) the rule for an op that is not in the built-in vocabulary.
    public static func register(_ op: Op, rule: @escaping ShapeRule) {
        OpCatalog.register(OpSchema(op) { a in try rule(a.node, a.inputs) })
    }

    /// True when the op has a built-in or registered rule.
    public static func hasRule(_ op: Op) -> Bool { OpCatalog.schema(op) != nil }

    /// The error every rule throws: names the node, its op and the input shapes.
    static func fail(_ node: GraphNode, _ inputs: [[Int]?], _ why: String) -> WconvError {
        let shapes = zip(node.inputs, inputs).map { name, s in "\(name.isEmpty ? "<none>" : name): \(s.map { "\($0)" } ?? "-")" }
        return WconvError.invalid("node '\(node.name)' (op \(node.op)): \(why); inputs [\(shapes.joined(separator: ", "))]")
    }

    /// Output shapes of one node; every size is checked against overflow (attributes may come
    /// from an untrusted file).
    public static func outputShapes(_ node: GraphNode, _ inputs: [[Int]?]) throws -> [[Int]] {
        guard let schema = OpCatalog.schema(node.op) else {
            throw fail(node, inputs, "no shape rule for op '\(node.op)' (unknown op)")
        }
        let outs = try schema.shape(ShapeArgs(node: node, inputs: inputs))
        for s in outs {
            guard s.allSatisfy({ $0 >= 0 }), (try? Tensor.checkedNumel(s)) != nil else {
                throw fail(node, inputs, "output shape \(s) is negative or overflows")
            }
        }
        return outs
    }

    /// Output dtypes of one node from its input dtypes.
    public static func outputDTypes(_ node: GraphNode, _ inputs: [DType?]) -> [DType] {
        OpCatalog.schema(node.op)?.dtype(node, inputs) ?? [DType](repeating: .f32, count: node.outputs.count)
    }

    /// Numpy broadcasting of two shapes, or nil.
    public static func broadcast(_ a: [Int], _ b: [Int]) -> [Int]? {
        let n = max(a.count, b.count)
        var out = [Int](repeating: 1, count: n)
        for i in 0..<n {
            let x = i < n - a.count ? 1 : a[i - (n - a.count)]
            let y = i < n - b.count ? 1 : b[i - (n - b.count)]
            if x == y || y == 1 { out[i] = x } else if x == 1 { out[i] = y } else { return nil }
        }
        return out
    }
}
