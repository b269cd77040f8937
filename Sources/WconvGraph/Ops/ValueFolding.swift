import OrderedCollections
import WconvFormats
import WconvTensor

/// The one constant-folding pass (docs/adding-an-op.md). Walking nodes in order with the values
/// known so far, it (1) turns known value inputs into the attributes shape rules read
/// (`resolve`), and (2) evaluates a node whose inputs are all known with its schema's value rule
/// (`evaluate`), on `Tensor`s with their real dtype — integer shape arithmetic is exact i64. The
/// ONNX importer calls it per emitted node; `ModelGraph.specialize` calls it with the input
/// shapes bound, which is what shape inference and the runtime's planner use.
public enum ValueFolding {
    /// Largest folded result (elements): shape vectors and masks are small; a hostile
    /// ConstantOfShape must not allocate much.
    public static let maxFoldedElements = 1 << 16
    /// Floating-point constants larger than this are weights: never folded into something else.
    public static let maxFoldedFloatInput = 64

    /// True when a known tensor may feed a fold (integer values, or a small float constant).
    public static func mayFold(_ t: Tensor) -> Bool {
        t.numel <= maxFoldedElements && (!t.dtype.isFloatingPoint || t.numel <= maxFoldedFloatInput)
    }

    /// `node` with its value inputs that `value` knows moved into attributes (all of them or none).
    public static func resolve(_ node: GraphNode, value: (String) -> Tensor?) -> GraphNode {
        guard let schema = OpCatalog.schema(node.op), !schema.valueInputs.isEmpty else { return node }
        var n = node
        var moved: [Int] = []
        for vi in schema.valueInputs where vi.index < node.inputs.count && !node.inputs[vi.index].isEmpty {
            // Already an attribute: the importer had the constant.
            if node.attributes[vi.attribute] != nil { return node }
            guard let t = value(node.inputs[vi.index]) else { return node }
            switch vi.kind {
            case .ints: n.attributes[vi.attribute] = .ints(t.exactInts())
            case .floats: n.attributes[vi.attribute] = .floats(t.doubles())
            case .scalar(let recordsDType):
                guard t.numel == 1, let d = t.doubles().first else { return node }
                n.attributes[vi.attribute] = .float(d)
                if recordsDType && n.attributes["dtype"] == nil { n.attributes["dtype"] = .string(t.dtype.rawValue) }
            }
            moved.append(vi.index)
        }
        guard !moved.isEmpty else { return node }
        // Keep earlier positions intact: only trailing inputs can be dropped, others become "".
        for i in moved { n.inputs[i] = "" }
        while let last = n.inputs.last, last.isEmpty, n.inputs.count > 1 || moved.contains(0) { n.inputs.removeLast() }
        return n
    }

    /// The node's outputs when it can be folded: every input known (or only shapes needed), the
    /// known inputs small enough (`mayFold`), the results at most `maxFoldedElements`.
    public static func evaluate(_ node: GraphNode, values: [Tensor?], shapes: [[Int]?], outShapes: [[Int]],
                                outDTypes: [DType]) -> [Tensor]? {
        guard let schema = OpCatalog.schema(node.op), let rule = schema.fold else { return nil }
        guard outShapes.allSatisfy({ (try? Tensor.checkedNumel($0)).map { $0 <= maxFoldedElements } ?? false }) else { return nil }
        if !schema.foldsFromShapes {
            for (i, name) in node.inputs.enumerated() where !name.isEmpty {
                guard i < values.count, let t = values[i], mayFold(t) else { return nil }
            }
        }
        let args = FoldArgs(node: node, values: values, shapes: shapes, outShapes: outShapes, outDTypes: outDTypes)
        guard let out = try? rule(args), out.count == outShapes.count,
              zip(out, outShapes).allSatisfy({ $0.shape == $1 }) else { return nil }
        return out
    }
}

/// What a value rule sees: the node, its known input values and shapes, and the output shapes and
/// dtypes the shape and dtype rules gave.
struct FoldArgs {
    let node: GraphNode
    let values: [Tensor?]
    let shapes: [[Int]?]
    let outShapes: [[Int]]
    let outDTypes: [DType]

    struct NotFoldable: Error {}

    func value(_ i: Int) throws -> Tensor {
        guard i < values.count, let t = values[i] else { throw NotFoldable() }
        return t
    }
    /// Exact integer values (floats truncate toward zero, clamped).
    func ints(_ i: Int) throws -> [Int] { try value(i).exactInts() }
    func doubles(_ i: Int) throws -> [Double] { try value(i).doubles() }
    func isInteger(_ i: Int) -> Bool { i < values.count && values[i].map { !$0.dtype.isFloatingPoint } == true }
    var outShape: [Int] { outShapes[0] }
    var outDType: DType { outDTypes[0] }

    /// Output 0 from integer values (exact) or doubles, in the output dtype.
    func out(ints v: [Int]) -> [Tensor] { [Tensor.make(ints: v, shape: outShape, dtype: outDType)] }
    func out(doubles v: [Double]) -> [Tensor] { [Tensor.make(doubles: v, shape: outShape, dtype: outDType)] }

    /// Same values, new shape (reshape, squeeze, unsqueeze, flatten, identity, expand of equal size).
    func reshaped(_ i: Int) throws -> [Tensor] {
        let t = try value(i)
        guard t.numel == outShape.reduce(1, *) else { throw NotFoldable() }
        return t.dtype.isFloatingPoint ? out(doubles: t.doubles()) : out(ints: t.exactInts())
    }

    /// Elementwise over broadcast inputs: integers exactly when every input is an integer type.
    func elementwise(ints f: (([Int]) -> Int?)?, doubles g: (([Double]) -> Double?)?) throws -> [Tensor] {
        let ins = try (0..<node.inputs.count).map { try value($0) }
        let index = try broadcastIndex(ins.map(\.shape), to: outShape)
        let allInt = ins.allSatisfy { !$0.dtype.isFloatingPoint }
        if allInt, let f {
            let vs = ins.map { $0.exactInts() }
            var r = [Int](); r.reserveCapacity(index.count)
            for idx in index { guard let v = f(zip(vs, idx).map { $0[$1] }) else { throw NotFoldable() }; r.append(v) }
            return outDType.isFloatingPoint ? out(doubles: r.map(Double.init)) : out(ints: r)
        }
        guard let g else { throw NotFoldable() }
        let vs = ins.map { $0.doubles() }
        var r = [Double](); r.reserveCapacity(index.count)
        for idx in index { guard let v = g(zip(vs, idx).map { $0[$1] }) else { throw NotFoldable() }; r.append(v) }
        return outDType.isFloatingPoint ? out(doubles: r) : out(ints: r.map { Int(clamping: $0) })
    }

    /// For each output element (row-major), the flat index into every broadcast input.
    func broadcastIndex(_ inputs: [[Int]], to out: [Int]) throws -> [[Int]] {
        let r = out.count, count = out.reduce(1, *)
        var strides: [[Int]] = []
        for s in inputs {
            guard s.count <= r else { throw NotFoldable() }
            let padded = [Int](repeating: 1, count: r - s.count) + s
            var st = [Int](repeating: 0, count: r), acc = 1
            for i in stride(from: r - 1, through: 0, by: -1) {
                guard padded[i] == out[i] || padded[i] == 1 else { throw NotFoldable() }
                st[i] = padded[i] == 1 ? 0 : acc
                acc *= padded[i]
            }
            strides.append(st)
        }
        var result: [[Int]] = []
        result.reserveCapacity(count)
        var idx = [Int](repeating: 0, count: r)
        for _ in 0..<count {
            result.append(strides.map { st in zip(idx, st).reduce(0) { $0 + $1.0 * $1.1 } })
            var d = r - 1
            while d >= 0 { idx[d] += 1; if idx[d] < out[d] { break }; idx[d] = 0; d -= 1 }
        }
        return result
    }
}

extension Tensor {
    /// Integer values, exact for integer dtypes (i64 beyond 2^53 included); floats truncate toward
    /// zero and clamp (NaN → 0).
    public func exactInts() -> [Int] {
        switch dtype {
        case .i64:
            let n = numel
            return withContiguousBytes { raw in (0..<n).map { Int(raw.loadUnaligned(fromByteOffset: $0 * 8, as: Int64.self)) } }
        case .i32, .i16, .i8, .u8, .bool:
            return doubles().map { Int($0) }
        default:
            return doubles().map { Int(clamping: $0) }
        }
    }

    /// A tensor of `dtype` from exact integers.
    public static func make(ints v: [Int], shape: [Int], dtype: DType) -> Tensor {
        let storage: Storage
        switch dtype {
        case .i64: storage = Storage(array: v.map { Int64($0) })
        case .i32: storage = Storage(array: v.map { Int32(clamping: $0) })
        case .i16: storage = Storage(array: v.map { Int16(clamping: $0) })
        case .i8: storage = Storage(array: v.map { Int8(clamping: $0) })
        case .u8: storage = Storage(array: v.map { UInt8(clamping: $0) })
        case .bool: storage = Storage(array: v.map { UInt8($0 != 0 ? 1 : 0) })
        default: return make(doubles: v.map(Double.init), shape: shape, dtype: dtype)
        }
        return try! Tensor(dtype: dtype, shape: shape, storage: storage)  // sized from the same array
    }

    /// A tensor of `dtype` from doubles (integer dtypes truncate toward zero).
    public static func make(doubles v: [Double], shape: [Int], dtype: DType) -> Tensor {
        switch dtype {
        case .f64: return try! Tensor(dtype: .f64, shape: shape, storage: Storage(array: v))
        case .f32: return Tensor(shape: shape, floats: v.map { Float($0) })
        case .f16, .bf16, .f8e4m3, .f8e5m2: return Tensor(shape: shape, floats: v.map { Float($0) }).converted(to: dtype).tensor
        default: return make(ints: v.map { Int(clamping: $0) }, shape: shape, dtype: dtype)
        }
    }
}

/// Shapes, dtypes and folded values of a graph for concrete input shapes: what shape inference
/// reports and what the runtime plans from.
public struct GraphSpecialization {
    /// Shape of every graph input and node output (and of every parameter read).
    public var shapes: [String: [Int]] = [:]
    /// Dtype of every value.
    public var dtypes: [String: DType] = [:]
    /// Values known before running: folded node outputs (parameters are not repeated here).
    public var folded: [String: Tensor] = [:]
    /// Nodes with value inputs resolved into attributes, by node name (only those that changed).
    public var resolved: [String: GraphNode] = [:]
    /// Graph outputs whose declared shape the graph does not compute (exporters write stale ones:
    /// ddddocr's recogniser declares [1, ?] for a [T, 1, classes] output). Like onnxruntime, which
    /// warns and runs, the computed shape wins; the messages say which.
    public var outputShapeMismatches: [String] = []
}

extension ModelGraph {
    /// Shape, dtype and value inference for the given input shapes (graph inputs not listed must
    /// have fully known shapes), folding every node whose result is known before running.
    /// Parameters that may feed a fold: integer ones and float buffers of at most 64 elements
    /// (trainable weights are never folded away, so gradients still reach them).
    /// With `allowUnknownOps`, nodes without a schema and everything downstream are left out.
    public func specialize(inputShapes: [String: [Int]], allowUnknownOps: Bool = false) throws -> GraphSpecialization {
        var spec = GraphSpecialization()
        var unknown = Set<String>()
        for input in inputs {
            let shape: [Int]
            if let given = inputShapes[input.name] {
                guard given.count == input.shape.count else {
                    throw WconvError.invalid("graph input '\(input.name)' has rank \(input.shape.count) (\(Self.show(input.shape))) but the given shape is \(given)")
                }
                for (g, d) in zip(given, input.shape) where d != nil && d != g || g < 0 {
                    throw WconvError.invalid("graph input '\(input.name)' expects shape \(Self.show(input.shape)) but the given shape is \(given)")
                }
                shape = given
            } else {
                let known = input.shape.compactMap { $0 }
                guard known.count == input.shape.count else {
                    throw WconvError.invalid("graph input '\(input.name)' has dynamic dims \(Self.show(input.shape)); give its shape")
                }
                shape = known
            }
            spec.shapes[input.name] = shape
            spec.dtypes[input.name] = input.dtype
        }
        func parameter(_ name: String) -> Tensor? { parameters[name] ?? aliases[name].flatMap { parameters[$0] } }
        func foldable(_ name: String) -> Tensor? {
            if let t = spec.folded[name] { return t }
            guard let t = parameter(name) else { return nil }
            if !t.dtype.isFloatingPoint { return t.numel <= ValueFolding.maxFoldedElements ? t : nil }
            let isBuffer = buffers.contains(name) || aliases[name].map { buffers.contains($0) } == true
            return isBuffer && t.numel <= ValueFolding.maxFoldedFloatInput ? t : nil
        }
        for original in nodes {
            if allowUnknownOps && (!ShapeInference.hasRule(original.op) || original.inputs.contains(where: unknown.contains)) {
                unknown.formUnion(original.outputs)
                continue
            }
            // A value input may be any known tensor: shapes carry no gradient.
            let node = ValueFolding.resolve(original) { name in
                spec.folded[name] ?? parameter(name).flatMap { $0.numel <= ValueFolding.maxFoldedElements ? $0 : nil }
            }
            if node != original { spec.resolved[node.name] = node }
            var ins = [[Int]?](), types = [DType?](), vals = [Tensor?]()
            for name in node.inputs {
                if name.isEmpty { ins.append(nil); types.append(nil); vals.append(nil); continue }
                if let s = spec.shapes[name] { ins.append(s); types.append(spec.dtypes[name]) }
                else if let p = parameter(name) { ins.append(p.shape); types.append(p.dtype); spec.shapes[name] = p.shape; spec.dtypes[name] = p.dtype }
                else {
                    throw WconvError.invalid("node '\(node.name)' (op \(node.op)) reads '\(name)', which is neither a graph input, a parameter, nor the output of an earlier node")
                }
                vals.append(foldable(name))
            }
            let outs = try ShapeInference.outputShapes(node, ins)
            guard outs.count >= node.outputs.count else {
                throw WconvError.invalid("node '\(node.name)' (op \(node.op)) declares \(node.outputs.count) outputs but the op produces \(outs.count)")
            }
            let dts = ShapeInference.outputDTypes(node, types)
            for (k, name) in node.outputs.enumerated() where !name.isEmpty {
                spec.shapes[name] = outs[k]
                spec.dtypes[name] = k < dts.count ? dts[k] : (dts.first ?? .f32)
            }
            let named = Array(outs.prefix(node.outputs.count))
            if let folded = ValueFolding.evaluate(node, values: vals, shapes: ins, outShapes: named,
                                                  outDTypes: node.outputs.indices.map { $0 < dts.count ? dts[$0] : .f32 }) {
                for (name, t) in zip(node.outputs, folded) where !name.isEmpty { spec.folded[name] = t }
            }
        }
        for out in outputs where !unknown.contains(out.name) {
            guard let s = spec.shapes[out.name] else {
                throw WconvError.invalid("graph output '\(out.name)' is not produced by any node")
            }
            if s.count != out.shape.count || zip(s, out.shape).contains(where: { d, e in e != nil && e != d }) {
                spec.outputShapeMismatches.append("graph output '\(out.name)' is declared \(Self.show(out.shape)) but the graph computes \(s)")
            }
        }
        return spec
    }
}

extension Int {
    /// `Int(d)` that never traps on file-derived values: NaN → 0, beyond Int's range → Int.max /
    /// Int.min (ONNX's INT64_MAX "to the end" slice bounds arrive as 2^63 through a Double).
    public init(clamping d: Double) {
        if d.isNaN { self = 0 } else if d >= 9.2e18 { self = .max } else if d <= -9.2e18 { self = .min } else { self = Int(d) }
    }
}
