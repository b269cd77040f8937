import Foundation
import OrderedCollections
import WconvTensor

/// A shape rule: given a node and the shapes of its inputs (`nil` for an omitted optional input),
/// returns the shapes of its outputs or throws naming what is wrong.
public typealias ShapeRule = @Sendable (_ node: GraphNode, _ inputs: [[Int]?]) throws -> [[Int]]

/// Shape rules for every op of the vocabulary, plus a registry for ops other builders add.
public enum ShapeInference {
    private static let lock = NSLock()
    nonisolated(unsafe) private static var custom: [Op: ShapeRule] = [:]

    /// Registers (or replaces) the rule for an op that is not in the built-in vocabulary.
    public static func register(_ op: Op, rule: @escaping ShapeRule) {
        lock.lock(); defer { lock.unlock() }
        custom[op] = rule
    }

    /// True when the op has a built-in or registered rule.
    public static func hasRule(_ op: Op) -> Bool { builtinOps.contains(op) || onnxOps.contains(op) || customRule(op) != nil }

    static let builtinOps: Set<Op> = [
        .conv2d, .batchNorm, .linear, .matmul, .relu, .relu6, .clip, .silu, .gelu, .hardSwish, .hardSigmoid,
        .sigmoid, .tanh, .dropout, .identity, .softmax, .maxPool2d, .avgPool2d, .adaptiveAvgPool2d, .globalAvgPool,
        .add, .sub, .mul, .div, .concat, .flatten, .reshape, .transpose, .layerNorm, .embedding, .gather, .pad,
        .arange, .slice, .attention,
    ]

    static func customRule(_ op: Op) -> ShapeRule? {
        lock.lock(); defer { lock.unlock() }
        return custom[op]
    }

    /// The error every rule throws: names the node, its op and the input shapes.
    static func fail(_ node: GraphNode, _ inputs: [[Int]?], _ why: String) -> WconvError {
        let shapes = zip(node.inputs, inputs).map { name, s in "\(name.isEmpty ? "<none>" : name): \(s.map { "\($0)" } ?? "-")" }
        return WconvError.invalid("node '\(node.name)' (op \(node.op)): \(why); inputs [\(shapes.joined(separator: ", "))]")
    }

    /// Output shapes of one node; every size is checked against overflow (attributes may come
    /// from an untrusted file).
    public static func outputShapes(_ node: GraphNode, _ inputs: [[Int]?]) throws -> [[Int]] {
        let outs = try rawOutputShapes(node, inputs)
        for s in outs {
            guard s.allSatisfy({ $0 >= 0 }), (try? Tensor.checkedNumel(s)) != nil else {
                throw fail(node, inputs, "output shape \(s) is negative or overflows")
            }
        }
        return outs
    }

    static func rawOutputShapes(_ node: GraphNode, _ inputs: [[Int]?]) throws -> [[Int]] {
        func prod(_ dims: ArraySlice<Int>) throws -> Int {
            guard let n = try? Tensor.checkedNumel(Array(dims)) else { throw fail(node, inputs, "sizes \(Array(dims)) overflow") }
            return n
        }
        func sum(_ a: Int, _ b: Int) throws -> Int {
            let (r, o) = a.addingReportingOverflow(b)
            guard !o else { throw fail(node, inputs, "sizes overflow") }
            return r
        }
        func need(_ i: Int) throws -> [Int] {
            guard i < inputs.count, let s = inputs[i] else { throw fail(node, inputs, "input \(i) is required") }
            return s
        }
        func attrInts(_ key: String, _ count: Int, default d: Int) throws -> [Int] {
            guard let v = node.ints(key) else { return [Int](repeating: d, count: count) }
            if v.count == 1 && count > 1 { return [Int](repeating: v[0], count: count) }
            guard v.count == count else { throw fail(node, inputs, "attribute \(key) has \(v.count) values, expected \(count)") }
            return v
        }
        func axis(_ a: Int, rank: Int) throws -> Int {
            let r = a < 0 ? a + rank : a
            guard r >= 0 && r < rank else { throw fail(node, inputs, "axis \(a) is out of range for rank \(rank)") }
            return r
        }
        func spatial(_ size: Int, k: Int, s: Int, p0: Int, p1: Int, d: Int, ceil: Bool, what: String) throws -> Int {
            guard k >= 1, s >= 1, d >= 1, p0 >= 0, p1 >= 0, k < 1 << 20, s < 1 << 30, d < 1 << 20, p0 < 1 << 30, p1 < 1 << 30, size < 1 << 40 else {
                throw fail(node, inputs, "\(what): kernel \(k), stride \(s), dilation \(d), pads \(p0),\(p1) must be positive and sane")
            }
            let span = d * (k - 1) + 1
            let avail = size + p0 + p1 - span
            guard avail >= 0 else {
                throw fail(node, inputs, "\(what): input size \(size) with pads \(p0)+\(p1) is smaller than the kernel extent \(span)")
            }
            var out = (ceil ? (avail + s - 1) / s : avail / s) + 1
            // PyTorch: with ceil_mode the last window must start inside the input or left padding.
            if ceil && (out - 1) * s >= size + p0 { out -= 1 }
            return out
        }

        switch node.op {
        case .conv2d:
            let x = try need(0), w = try need(1)
            guard x.count == 4 else { throw fail(node, inputs, "expects a 4-D NCHW input") }
            guard w.count == 4 else { throw fail(node, inputs, "expects a 4-D OIHW weight") }
            let g = node.int("group") ?? 1
            let (expected, overflow) = w[1].multipliedReportingOverflow(by: g)
            guard g >= 1, !overflow, x[1] == expected, w[0] % g == 0 else {
                throw fail(node, inputs, "input has \(x[1]) channels but weight \(w) with group \(g) expects \(overflow ? "an impossible number of" : String(expected)) (and \(w[0]) output channels divisible by the group)")
            }
            if inputs.count > 2, let b = inputs[2] {
                guard b == [w[0]] else { throw fail(node, inputs, "bias shape \(b) should be [\(w[0])]") }
            }
            let s = try attrInts("strides", 2, default: 1), d = try attrInts("dilations", 2, default: 1)
            let p = try attrInts("pads", 4, default: 0)
            let h = try spatial(x[2], k: w[2], s: s[0], p0: p[0], p1: p[2], d: d[0], ceil: false, what: "height")
            let wd = try spatial(x[3], k: w[3], s: s[1], p0: p[1], p1: p[3], d: d[1], ceil: false, what: "width")
            return [[x[0], w[0], h, wd]]
        case .batchNorm:
            let x = try need(0)
            guard x.count >= 2 else { throw fail(node, inputs, "expects at least 2 dims (N, C, …)") }
            for i in 1..<5 where i < inputs.count {
                if let s = inputs[i], s != [x[1]] {
                    throw fail(node, inputs, "parameter \(node.inputs[i]) has shape \(s), expected [\(x[1])] for \(x[1]) channels")
                }
            }
            guard inputs.count >= 5, inputs[3] != nil, inputs[4] != nil else {
                throw fail(node, inputs, "needs running_mean and running_var inputs")
            }
            return [x]
        case .linear:
            let x = try need(0), w = try need(1)
            guard w.count == 2, let last = x.last, last == w[1] else {
                throw fail(node, inputs, "weight \(w) expects \(w.count == 2 ? w[1] : -1) input features but the input's last dim is \(x.last.map(String.init) ?? "missing")")
            }
            if inputs.count > 2, let b = inputs[2], b != [w[0]] {
                throw fail(node, inputs, "bias shape \(b) should be [\(w[0])]")
            }
            return [Array(x.dropLast()) + [w[0]]]
        case .matmul:
            var a = try need(0), b = try need(1)
            guard !a.isEmpty, !b.isEmpty else { throw fail(node, inputs, "scalars cannot be multiplied as matrices") }
            let aVec = a.count == 1, bVec = b.count == 1
            if aVec { a = [1] + a }
            if bVec { b = b + [1] }
            guard a[a.count - 1] == b[b.count - 2] else {
                throw fail(node, inputs, "inner dims differ: \(a[a.count - 1]) vs \(b[b.count - 2])")
            }
            guard let batch = broadcast(Array(a.dropLast(2)), Array(b.dropLast(2))) else {
                throw fail(node, inputs, "batch dims do not broadcast")
            }
            var out = batch
            if !aVec { out.append(a[a.count - 2]) }
            if !bVec { out.append(b[b.count - 1]) }
            return [out]
        case .relu, .relu6, .clip, .silu, .gelu, .hardSwish, .hardSigmoid, .sigmoid, .tanh, .dropout, .identity:
            return [try need(0)]
        case .softmax:
            let x = try need(0)
            _ = try axis(node.int("axis") ?? -1, rank: x.count)
            return [x]
        case .maxPool2d, .avgPool2d:
            let x = try need(0)
            guard x.count == 4 else { throw fail(node, inputs, "expects a 4-D NCHW input") }
            let k = try attrInts("kernel", 2, default: 0)
            let s = node.ints("strides") == nil ? k : try attrInts("strides", 2, default: 1)
            let p = try attrInts("pads", 4, default: 0)
            let d = node.op == .maxPool2d ? try attrInts("dilations", 2, default: 1) : [1, 1]
            for (i, pad) in p.enumerated() where pad > k[i % 2] / 2 {
                throw fail(node, inputs, "pad \(pad) exceeds half the kernel \(k[i % 2]) (PyTorch rejects this)")
            }
            let ceil = (node.int("ceilMode") ?? 0) != 0
            let h = try spatial(x[2], k: k[0], s: s[0], p0: p[0], p1: p[2], d: d[0], ceil: ceil, what: "height")
            let w = try spatial(x[3], k: k[1], s: s[1], p0: p[1], p1: p[3], d: d[1], ceil: ceil, what: "width")
            return [[x[0], x[1], h, w]]
        case .adaptiveAvgPool2d:
            let x = try need(0)
            guard x.count == 4 else { throw fail(node, inputs, "expects a 4-D NCHW input") }
            let o = try attrInts("outputSize", 2, default: 1)
            guard o.allSatisfy({ $0 >= 1 }) else { throw fail(node, inputs, "outputSize \(o) must be positive") }
            return [[x[0], x[1], o[0], o[1]]]
        case .globalAvgPool:
            let x = try need(0)
            guard x.count >= 3 else { throw fail(node, inputs, "expects N, C and spatial dims") }
            let keep = (node.int("keepdims") ?? 1) != 0
            return [keep ? [x[0], x[1]] + [Int](repeating: 1, count: x.count - 2) : [x[0], x[1]]]
        case .add, .sub, .mul, .div:
            let a = try need(0), b = try need(1)
            guard let out = broadcast(a, b) else { throw fail(node, inputs, "shapes \(a) and \(b) do not broadcast") }
            return [out]
        case .concat:
            let shapes = try (0..<inputs.count).map { try need($0) }
            guard let first = shapes.first else { throw fail(node, inputs, "needs at least one input") }
            let ax = try axis(node.int("axis") ?? 0, rank: first.count)
            var out = first
            for s in shapes.dropFirst() {
                guard s.count == first.count, (0..<s.count).allSatisfy({ $0 == ax || s[$0] == first[$0] }) else {
                    throw fail(node, inputs, "shapes differ outside axis \(ax)")
                }
                out[ax] = try sum(out[ax], s[ax])
            }
            return [out]
        case .flatten:
            let x = try need(0)
            let ax = node.int("axis") ?? 1
            let a = ax < 0 ? ax + x.count : ax
            guard a >= 0 && a <= x.count else { throw fail(node, inputs, "axis \(ax) out of range") }
            return [Array(x[..<a]) + [try prod(x[a...])]]
        case .reshape:
            let x = try need(0)
            guard let shape = node.ints("shape") else { throw fail(node, inputs, "missing attribute shape") }
            var out = [Int]()
            var infer = -1
            for (i, d) in shape.enumerated() {
                if d == 0 {
                    guard i < x.count else { throw fail(node, inputs, "shape \(shape) copies dim \(i) which the input lacks") }
                    out.append(x[i])
                } else if d == -1 {
                    guard infer < 0 else { throw fail(node, inputs, "shape \(shape) has two -1 dims") }
                    infer = i; out.append(1)
                } else if d > 0 { out.append(d) } else { throw fail(node, inputs, "shape \(shape) has a negative dim") }
            }
            let total = try prod(x[...]), known = try prod(out[...])
            if infer >= 0 {
                guard known > 0, total % known == 0 else { throw fail(node, inputs, "cannot reshape \(total) elements to \(shape)") }
                out[infer] = total / known
            }
            guard try prod(out[...]) == total else { throw fail(node, inputs, "cannot reshape \(total) elements to \(shape)") }
            return [out]
        case .transpose:
            let x = try need(0)
            let perm = node.ints("perm") ?? Array((0..<x.count).reversed())
            guard perm.count == x.count, Set(perm) == Set(0..<x.count) else {
                throw fail(node, inputs, "perm \(perm) is not a permutation of \(x.count) dims")
            }
            return [perm.map { x[$0] }]
        case .layerNorm:
            let x = try need(0)
            if inputs.count > 1, let w = inputs[1] {
                guard w.count <= x.count, Array(x.suffix(w.count)) == w else {
                    throw fail(node, inputs, "weight \(w) does not match the trailing dims of the input")
                }
                if inputs.count > 2, let b = inputs[2], b != w { throw fail(node, inputs, "bias \(b) differs from weight \(w)") }
            }
            _ = try axis(node.int("axis") ?? -1, rank: x.count)
            return [x]
        case .embedding:
            let idx = try need(0), w = try need(1)
            guard w.count == 2 else { throw fail(node, inputs, "weight must be (vocabulary, dim)") }
            return [idx + [w[1]]]
        case .gather:
            let data = try need(0), idx = try need(1)
            let ax = try axis(node.int("axis") ?? 0, rank: data.count)
            return [Array(data[..<ax]) + idx + Array(data[(ax + 1)...])]
        case .pad:
            let x = try need(0)
            guard let p = node.ints("pads"), p.count == 2 * x.count else {
                throw fail(node, inputs, "pads must list \(2 * x.count) values (begin…, end…)")
            }
            let out = try (0..<x.count).map { try sum(try sum(x[$0], p[$0]), p[$0 + x.count]) }
            guard out.allSatisfy({ $0 >= 0 }) else { throw fail(node, inputs, "pads \(p) make a negative size") }
            return [out]
        case .arange:
            let x = try need(0)
            let ax = try axis(node.int("axis") ?? 0, rank: x.count)
            return [[x[ax]]]
        case .slice:
            let x = try need(0)
            guard let starts = node.ints("starts"), let ends = node.ints("ends"), starts.count == ends.count else {
                throw fail(node, inputs, "starts and ends must have the same length")
            }
            let axes = node.ints("axes") ?? Array(0..<starts.count)
            let steps = node.ints("steps") ?? [Int](repeating: 1, count: starts.count)
            guard axes.count == starts.count, steps.count == starts.count else { throw fail(node, inputs, "axes/steps length differs from starts") }
            var out = x
            for i in 0..<starts.count {
                let a = try axis(axes[i], rank: x.count)
                guard steps[i] > 0, steps[i] < 1 << 40 else { throw fail(node, inputs, "step \(steps[i]) must be positive") }
                let n = x[a]
                func clamp(_ v: Int) -> Int { let r = v < 0 ? v + n : v; return min(max(r, 0), n) }
                let s = clamp(starts[i]), e = clamp(ends[i])
                out[a] = e > s ? (e - s + steps[i] - 1) / steps[i] : 0
            }
            return [out]
        case .attention:
            let q = try need(0), k = try need(1), v = try need(2)
            guard q.count == 3, k.count == 3, v.count == 3 else { throw fail(node, inputs, "q, k, v must be [B, T, D]") }
            guard let heads = node.int("heads"), heads >= 1, q[2] % heads == 0 else {
                throw fail(node, inputs, "heads \(node.int("heads") ?? 0) must divide the model dim \(q[2])")
            }
            guard k[2] == q[2], v[2] == q[2], k[1] == v[1], broadcast([q[0]], [k[0]]) != nil else {
                throw fail(node, inputs, "q, k and v dims do not agree")
            }
            if inputs.count > 3, let m = inputs[3], broadcast(m, [q[0], heads, q[1], k[1]]) == nil {
                throw fail(node, inputs, "mask \(m) does not broadcast to [\(q[0]), \(heads), \(q[1]), \(k[1])]")
            }
            return [q]
        default:
            if let out = try onnxOpShapes(node, inputs) { return out }
            if let rule = customRule(node.op) { return try rule(node, inputs) }
            throw fail(node, inputs, "no shape rule for op '\(node.op)' (unknown op)")
        }
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

extension ModelGraph {
    /// Shapes of every graph input and node output for the given input shapes (graph inputs not
    /// listed must have fully known shapes). Throws `.invalidInput` naming the node, op and shapes
    /// at the first node whose inputs do not fit — before any compute.
    public func inferShapes(inputShapes: [String: [Int]]) throws -> [String: [Int]] {
        try inferShapes(inputShapes: inputShapes, allowUnknownOps: false)
    }

    /// With `allowUnknownOps`, nodes whose op has no shape rule (ops another builder added without
    /// registering a rule) and everything downstream of them are left out of the result instead of
    /// failing; every node with a rule is still checked.
    public func inferShapes(inputShapes: [String: [Int]], allowUnknownOps: Bool) throws -> [String: [Int]] {
        var unknown = Set<String>()
        var shapes: [String: [Int]] = [:]
        for input in inputs {
            let given = inputShapes[input.name]
            let shape: [Int]
            if let given {
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
            shapes[input.name] = shape
        }
        var known = KnownValues(parameter: { parameters[$0] ?? aliases[$0].flatMap { parameters[$0] } }, inputs: inputs)
        for node in nodes {
            if allowUnknownOps && (!ShapeInference.hasRule(node.op) || node.inputs.contains(where: unknown.contains)) {
                unknown.formUnion(node.outputs)
                continue
            }
            let node = known.resolve(node)
            var ins = [[Int]?]()
            ins.reserveCapacity(node.inputs.count)
            for name in node.inputs {
                if name.isEmpty { ins.append(nil); continue }
                if let s = shapes[name] { ins.append(s) }
                else if let p = parameters[name] { ins.append(p.shape) }
                else if let target = aliases[name], let p = parameters[target] { ins.append(p.shape) }
                else {
                    throw WconvError.invalid("node '\(node.name)' (op \(node.op)) reads '\(name)', which is neither a graph input, a parameter, nor the output of an earlier node")
                }
            }
            let outs = try ShapeInference.outputShapes(node, ins)
            known.record(node, inputShapes: ins, outputShapes: outs)
            guard outs.count >= node.outputs.count else {
                throw WconvError.invalid("node '\(node.name)' (op \(node.op)) declares \(node.outputs.count) outputs but the op produces \(outs.count)")
            }
            for (name, s) in zip(node.outputs, outs) where !name.isEmpty { shapes[name] = s }
        }
        for out in outputs where !unknown.contains(out.name) {
            guard let s = shapes[out.name] else {
                throw WconvError.invalid("graph output '\(out.name)' is not produced by any node")
            }
            for (d, e) in zip(s, out.shape) where e != nil && e != d {
                throw WconvError.invalid("graph output '\(out.name)' is declared \(Self.show(out.shape)) but the graph computes \(s)")
            }
        }
        return shapes
    }

    /// Shapes used by `validate()` for dynamic input dims: batch 1, image height and width from the
    /// preprocessing (224 when unknown), other dims (sequence length) 1.
    public func probeInputShapes() -> [String: [Int]] {
        var result: [String: [Int]] = [:]
        for input in inputs {
            var s = input.shape.map { $0 ?? 1 }
            if s.count == 4 {
                let size = preprocessing?.inputSize ?? [224, 224]
                if input.shape[2] == nil { s[2] = size.first ?? 224 }
                if input.shape[3] == nil { s[3] = size.count > 1 ? size[1] : (size.first ?? 224) }
            }
            result[input.name] = s
        }
        return result
    }

    /// Structural checks (topological order, unique value names, every name resolvable, no
    /// dangling graph outputs or aliases) and then shape inference on probe shapes, so a bad graph
    /// is an error naming the node, op and shapes before any compute. A weights-only graph is valid.
    public func validate() throws { try validate(allowUnknownOps: false) }

    /// `allowUnknownOps`: see `inferShapes(inputShapes:allowUnknownOps:)`; used where a graph from
    /// another builder is stored or restored (the runtime refuses ops it cannot run).
    public func validate(allowUnknownOps: Bool) throws {
        if nodes.isEmpty {
            guard outputs.isEmpty else { throw WconvError.invalid("graph has outputs but no nodes") }
            return
        }
        var produced = Set(inputs.map(\.name))
        var nodeNames = Set<String>()
        for (alias, target) in aliases where parameters[target] == nil {
            throw WconvError.invalid("alias '\(alias)' points at '\(target)', which is not a parameter")
        }
        for b in buffers where parameters[b] == nil && aliases[b] == nil {
            throw WconvError.invalid("buffer '\(b)' is not a parameter")
        }
        for node in nodes {
            guard nodeNames.insert(node.name).inserted else {
                throw WconvError.invalid("two nodes are named '\(node.name)'")
            }
            guard !node.outputs.isEmpty else { throw WconvError.invalid("node '\(node.name)' (op \(node.op)) has no outputs") }
            for name in node.inputs where !name.isEmpty {
                if produced.contains(name) || parameters[name] != nil || aliases[name] != nil { continue }
                if nodes.contains(where: { $0.outputs.contains(name) }) {
                    throw WconvError.invalid("node '\(node.name)' (op \(node.op)) reads '\(name)' before the node producing it: nodes are not in topological order")
                }
                throw WconvError.invalid("node '\(node.name)' (op \(node.op)) reads '\(name)', which is neither a graph input, a parameter, nor any node's output (dangling input)")
            }
            for name in node.outputs where !name.isEmpty {
                guard parameters[name] == nil else {
                    throw WconvError.invalid("node '\(node.name)' (op \(node.op)) writes '\(name)', which is a parameter name")
                }
                guard produced.insert(name).inserted else {
                    throw WconvError.invalid("node '\(node.name)' (op \(node.op)) writes '\(name)', which is already produced elsewhere")
                }
            }
        }
        for out in outputs where !produced.contains(out.name) {
            throw WconvError.invalid("graph output '\(out.name)' is not produced by any node (dangling output)")
        }
        _ = try inferShapes(inputShapes: probeInputShapes(), allowUnknownOps: allowUnknownOps)
    }

    static func show(_ shape: [Int?]) -> String {
        "[" + shape.map { $0.map(String.init) ?? "?" }.joined(separator: ", ") + "]"
    }
}
