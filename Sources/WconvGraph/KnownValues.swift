import WconvTensor

/// Integer values that follow from shapes once the input shapes are known: the Shape → Gather →
/// Unsqueeze → Concat → Reshape/Expand chains exporters emit for dynamic dims (batch, sequence).
/// Shape inference and the runtime's planner walk the graph in order, `resolve` each node (value
/// inputs that are now known become the attributes the shape rules read) and `record` it
/// (evaluate it when every input's value is known). Only integer values are tracked (shape
/// results and integer parameters); a cast to a float type ends tracking, so integer division
/// here is always ONNX's integer division.
public struct KnownValues {
    /// Known values by value name, flattened row-major.
    public private(set) var values: [String: [Int]] = [:]
    /// Values whose element type is integer or bool (their values need not be known): the runtime
    /// holds everything as f32, so integer division on these must truncate like ONNX's.
    public private(set) var integral: Set<String> = []
    let parameter: (String) -> Tensor?
    /// Values larger than this are not tracked (shape vectors are tiny).
    static let maxCount = 1024

    public init(parameter: @escaping (String) -> Tensor?, inputs: [ValueInfo] = []) {
        self.parameter = parameter
        integral = Set(inputs.filter { !$0.dtype.isFloatingPoint }.map(\.name))
    }

    /// True when `name` holds integer or bool elements.
    public func isIntegral(_ name: String) -> Bool {
        if integral.contains(name) { return true }
        if let t = parameter(name) { return !t.dtype.isFloatingPoint }
        return false
    }

    static let integralOutputOps: Set<Op> = [.shape, .argMax, .equal, .less, .lessOrEqual, .greater, .greaterOrEqual, .and, .or, .not, .isNaN]
    static let integralPreservingOps: Set<Op> = [.identity, .unsqueeze, .squeeze, .reshape, .flatten, .expand, .tile, .slice, .transpose,
                                                 .concat, .neg, .abs, .add, .sub, .mul, .div, .minimum, .maximum, .reduceSum, .reduceMax, .split]

    mutating func recordIntegral(_ node: GraphNode) {
        var yes: Bool
        switch node.op {
        case .cast: yes = !(DType(rawValue: node.string("to") ?? "f32") ?? .f32).isFloatingPoint
        case .constantOfShape: yes = !(DType(rawValue: node.string("dtype") ?? "f32") ?? .f32).isFloatingPoint
        case .gather: yes = isIntegral(node.inputs[0])
        case .where: yes = node.inputs.count == 3 && isIntegral(node.inputs[1]) && isIntegral(node.inputs[2])
        case .range: yes = (node.float("start").map { $0 == $0.rounded() } ?? false) && (node.float("delta").map { $0 == $0.rounded() } ?? false)
            || (node.inputs.count == 3 && node.inputs.allSatisfy(isIntegral))
        default:
            yes = KnownValues.integralOutputOps.contains(node.op)
                || (KnownValues.integralPreservingOps.contains(node.op) && node.inputs.filter { !$0.isEmpty }.allSatisfy(isIntegral)
                    && !node.inputs.isEmpty)
        }
        if yes { for o in node.outputs where !o.isEmpty { integral.insert(o) } }
    }

    /// The integer value of `name`, from a tracked result or an integer parameter.
    public func value(_ name: String) -> [Int]? {
        if name.isEmpty { return nil }
        if let v = values[name] { return v }
        guard let t = parameter(name), !t.dtype.isFloatingPoint, t.numel <= KnownValues.maxCount else { return nil }
        // INT64_MAX-style "to the end" bounds (and u64 beyond Int) clamp instead of trapping.
        return t.doubles().map { Int(clamping: $0) }
    }

    /// `node` with value inputs that are known turned into attributes (reshape shape, expand shape,
    /// tile repeats, constantOfShape shape, range bounds); unchanged otherwise.
    public func resolve(_ node: GraphNode) -> GraphNode {
        var n = node
        func take(_ input: Int, as key: String) {
            guard input < n.inputs.count, n.ints(key) == nil, let v = value(n.inputs[input]) else { return }
            n.attributes[key] = .ints(v)
            n.inputs.remove(at: input)
        }
        switch node.op {
        case .reshape: take(1, as: "shape")
        case .expand: take(1, as: "shape")
        case .tile: take(1, as: "repeats")
        case .constantOfShape: take(0, as: "shape")
        case .slice where node.ints("starts") == nil && node.inputs.count >= 3:
            // ONNX Slice inputs [data, starts, ends, axes?, steps?]: all present ones must be known.
            let keys = ["starts", "ends", "axes", "steps"]
            var attrs: [String: [Int]] = [:]
            for (i, name) in node.inputs.enumerated().dropFirst() where !name.isEmpty {
                guard i <= keys.count, let v = value(name) else { return n }
                attrs[keys[i - 1]] = v
            }
            for (k, v) in attrs { n.attributes[k] = .ints(v) }
            n.inputs = [node.inputs[0]]
        case .range where node.inputs.count == 3:
            guard let s = value(node.inputs[0])?.first, let l = value(node.inputs[1])?.first, let d = value(node.inputs[2])?.first else { break }
            n.inputs = []
            n.attributes["start"] = .float(Double(s)); n.attributes["limit"] = .float(Double(l)); n.attributes["delta"] = .float(Double(d))
        default: break
        }
        return n
    }

    /// Evaluates `node` when its result is an integer function of known values, recording its outputs.
    public mutating func record(_ node: GraphNode, inputShapes: [[Int]?], outputShapes: [[Int]]) {
        recordIntegral(node)
        guard node.outputs.count == 1, let outShape = outputShapes.first else { return }
        let count = outShape.reduce(1, *)
        guard count <= KnownValues.maxCount else { return }
        if node.op == .shape, let x = inputShapes.first ?? nil {
            let (s, e) = ShapeInference.shapeRange(node, rank: x.count)
            values[node.outputs[0]] = Array(x[s..<e])
            return
        }
        let ins = node.inputs.map { value($0) }
        guard !node.inputs.isEmpty || [.constantOfShape, .range].contains(node.op) else { return }
        guard ins.allSatisfy({ $0 != nil }) else { return }
        let v = ins.map { $0! }
        if let out = evaluate(node, v, inputShapes, outShape, count), out.count == count { values[node.outputs[0]] = out }
    }

    func evaluate(_ node: GraphNode, _ v: [[Int]], _ shapes: [[Int]?], _ outShape: [Int], _ count: Int) -> [Int]? {
        func broadcast2(_ f: (Int, Int) -> Int?) -> [Int]? {
            guard v.count == 2 else { return nil }
            let a = v[0], b = v[1]
            guard a.count == count || a.count == 1, b.count == count || b.count == 1, a.count == count || b.count == count || count == 1 else { return nil }
            var out: [Int] = []
            out.reserveCapacity(count)
            for i in 0..<count {
                guard let r = f(a.count == 1 ? a[0] : a[i], b.count == 1 ? b[0] : b[i]) else { return nil }
                out.append(r)
            }
            return out
        }
        switch node.op {
        case .identity, .unsqueeze, .squeeze, .reshape, .flatten:
            return v[0]
        case .cast:
            let to = DType(rawValue: node.string("to") ?? "f32") ?? .f32
            if to.isFloatingPoint { return nil }
            return to == .bool ? v[0].map { $0 != 0 ? 1 : 0 } : v[0]
        case .neg: return v[0].map { -$0 }
        case .abs: return v[0].map { Swift.abs($0) }
        case .add: return broadcast2 { $0.addingReportingOverflow($1).overflow ? nil : $0 + $1 }
        case .sub: return broadcast2 { $0.subtractingReportingOverflow($1).overflow ? nil : $0 - $1 }
        case .mul: return broadcast2 { $0.multipliedReportingOverflow(by: $1).overflow ? nil : $0 * $1 }
        case .div: return broadcast2 { $1 == 0 ? nil : $0 / $1 }
        case .equal: return broadcast2 { $0 == $1 ? 1 : 0 }
        case .less: return broadcast2 { $0 < $1 ? 1 : 0 }
        case .greater: return broadcast2 { $0 > $1 ? 1 : 0 }
        case .minimum: return broadcast2 { Swift.min($0, $1) }
        case .maximum: return broadcast2 { Swift.max($0, $1) }
        case .where:
            guard v.count == 3, v.allSatisfy({ $0.count == count || $0.count == 1 }) else { return nil }
            return (0..<count).map { i in
                let c = v[0].count == 1 ? v[0][0] : v[0][i]
                return c != 0 ? (v[1].count == 1 ? v[1][0] : v[1][i]) : (v[2].count == 1 ? v[2][0] : v[2][i])
            }
        case .concat:
            guard outShape.count == 1 else { return nil }
            return v.flatMap { $0 }
        case .gather:
            guard let data = shapes.first ?? nil, data.count == 1, (node.int("axis") ?? 0) == 0 || (node.int("axis") ?? 0) == -1 else { return nil }
            var out: [Int] = []
            for i in v[1] {
                let j = i < 0 ? i + v[0].count : i
                guard j >= 0 && j < v[0].count else { return nil }
                out.append(v[0][j])
            }
            return out
        case .slice:
            guard let data = shapes.first ?? nil, data.count == 1, let starts = node.ints("starts"), let ends = node.ints("ends"),
                  starts.count == 1, ends.count == 1, (node.ints("steps") ?? [1]) == [1] else { return nil }
            let n = v[0].count
            func clamp(_ x: Int) -> Int { let r = x < 0 ? x + n : x; return Swift.min(Swift.max(r, 0), n) }
            let s = clamp(starts[0]), e = Swift.max(clamp(ends[0]), s)
            return Array(v[0][s..<e])
        case .constantOfShape:
            let dtype = DType(rawValue: node.string("dtype") ?? "f32") ?? .f32
            guard !dtype.isFloatingPoint, let f = node.float("value"), Swift.abs(f) < 9e18 else { return nil }
            return [Int](repeating: Int(f), count: count)
        case .range:
            guard let s = node.float("start"), let d = node.float("delta"), s == s.rounded(), d == d.rounded(),
                  Swift.abs(s) < 1e15, Swift.abs(d) < 1e12 else { return nil }
            return (0..<count).map { Int(s) + $0 * Int(d) }
        default:
            return nil
        }
    }
}

extension Int {
    /// `Int(d)` that never traps on file-derived values: NaN → 0, beyond Int's range → Int.max /
    /// Int.min (ONNX's INT64_MAX "to the end" slice bounds arrive as 2^63 through a Double).
    public init(clamping d: Double) {
        if d.isNaN { self = 0 } else if d >= 9.2e18 { self = .max } else if d <= -9.2e18 { self = .min } else { self = Int(d) }
    }
}
