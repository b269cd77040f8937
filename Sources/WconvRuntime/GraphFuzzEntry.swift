import Foundation
import OrderedCollections
import WconvFormats
import WconvGraph
import WconvTensor

/// Fuzz entry for the runtime: the bytes are a recipe for a small ONNX graph that is valid by
/// construction (ops wconv supports, shapes that fit, random attributes, f32/int64/int32/bool
/// values, out-of-range gather indices in the data), which is built like an imported file and run
/// through `InferenceSession`. A thrown `WconvError` is fine; a crash or sanitizer report is a bug.
/// Returns true when the graph ran to the end (tests check the recipes are mostly runnable).
@discardableResult
public func fuzzRuntimeGraph(_ data: UnsafeRawBufferPointer) -> Bool {
    var recipe = FuzzRecipe(data)
    let (model, inputs) = recipe.model()
    guard let graph = try? ONNXGraphBuilder.build(model), let session = try? InferenceSession(graph: graph, threads: 1) else { return false }
    return (try? session.run(inputs)) != nil
}

/// Reads the fuzzer's bytes as choices; past the end every choice is 0, so any input is a recipe.
public struct FuzzRecipe {
    struct Value { var name: String; var shape: [Int]; var dtype: DType }
    let bytes: [UInt8]
    var at = 0
    var values: [Value] = []
    var nodes: [ONNXNode] = []
    var initializers: OrderedDictionary<String, Tensor> = [:]
    var counter = 0

    public init(_ data: UnsafeRawBufferPointer) { bytes = Array(data.prefix(4096)) }

    mutating func byte() -> Int { defer { at += 1 }; return at < bytes.count ? Int(bytes[at]) : 0 }
    mutating func int(_ lo: Int, _ hi: Int) -> Int { hi <= lo ? lo : lo + byte() % (hi - lo + 1) }
    mutating func bool() -> Bool { byte() & 1 == 1 }
    mutating func pick<T>(_ xs: [T]) -> T { xs[byte() % xs.count] }
    mutating func small() -> Float { Float(Int8(truncatingIfNeeded: byte())) / 16 }
    mutating func fresh(_ base: String) -> String { counter += 1; return "\(base)\(counter)" }

    mutating func tensor(_ shape: [Int], _ dtype: DType, lo: Int = -3, hi: Int = 8) -> Tensor {
        let n = shape.reduce(1, *)
        switch dtype {
        case .i64: return ONNXReader.int64Tensor((0..<n).map { _ in int(lo, hi) }, shape: shape)
        case .i32: return try! Tensor(dtype: .i32, shape: shape, storage: Storage(array: (0..<n).map { _ in Int32(int(lo, hi)) }))
        case .bool: return try! Tensor(dtype: .bool, shape: shape, storage: Storage(array: (0..<n).map { _ in UInt8(byte() & 1) }))
        default: return Tensor(shape: shape, floats: (0..<n).map { _ in small() })
        }
    }

    mutating func constant(_ t: Tensor) -> String {
        let name = fresh("c")
        initializers[name] = t
        return name
    }

    mutating func ints(_ v: [Int]) -> String { constant(ONNXReader.int64Tensor(v, shape: [v.count])) }

    mutating func shape(rank: Int) -> [Int] { (0..<rank).map { _ in int(1, 4) } }

    mutating func add(_ op: String, _ inputs: [String], _ shape: [Int], _ dtype: DType,
                      _ attrs: OrderedDictionary<String, ONNXAttribute> = [:]) {
        let out = fresh("v")
        nodes.append(ONNXNode(name: "\(op)_\(nodes.count)", opType: op, inputs: inputs, outputs: [out], attributes: attrs))
        values.append(Value(name: out, shape: shape, dtype: dtype))
    }

    /// A shape that broadcasts against `s`: some dims set to 1, maybe fewer leading dims.
    mutating func broadcastable(_ s: [Int]) -> [Int] {
        let drop = int(0, s.count)
        return s.dropFirst(drop).map { bool() ? 1 : $0 }
    }

    /// The graph and its inputs.
    public mutating func model() -> (ONNXModel, [String: Tensor]) {
        var inputs: [String: Tensor] = [:]
        var infos: [ONNXValueInfo] = []
        for k in 0..<int(1, 2) {
            let dtype: DType = k == 0 ? .f32 : pick([.f32, .i64, .i32, .bool])
            let s = shape(rank: int(1, 4))
            let name = "in\(k)"
            inputs[name] = tensor(s, dtype)
            infos.append(ONNXValueInfo(name: name, elemType: ONNXDataType.code(dtype), shape: s.map { .value($0) }))
            values.append(Value(name: name, shape: s, dtype: dtype))
        }
        for _ in 0..<int(1, 8) { step() }
        let outs = values.suffix(int(1, 2)).map { ONNXValueInfo(name: $0.name, elemType: ONNXDataType.code($0.dtype), shape: nil) }
        let graph = ONNXGraph(name: "fuzz", nodes: nodes, inputs: infos, outputs: outs, initializers: initializers)
        return (ONNXModel(opsetImports: [ONNXOpsetImport(domain: "", version: pick([13, 17]))], graph: graph), inputs)
    }

    /// Appends one node reading earlier values.
    mutating func step() {
        let x = pick(values)
        let r = x.shape.count
        let axis = r > 0 ? int(-r, r - 1) : 0
        let a = axis < 0 ? axis + r : axis
        switch byte() % 32 {
        case 0:
            let op = x.dtype == .bool ? "Not" : pick(["Relu", "Sigmoid", "Tanh", "Exp", "Abs", "Neg", "Sqrt", "Erf", "Identity", "Log", "Reciprocal"])
            add(op, [x.name], x.shape, x.dtype == .bool ? .bool : .f32)
        case 1:
            guard x.dtype != .bool else { return }
            let op = pick(["Add", "Sub", "Mul", "Div", "Pow", "Min", "Max"])
            let b = constant(tensor(broadcastable(x.shape), x.dtype))
            add(op, bool() ? [x.name, b] : [b, x.name], x.shape, x.dtype)
        case 2:
            guard x.dtype != .bool else { return }
            let b = constant(tensor(broadcastable(x.shape), x.dtype))
            add(pick(["Equal", "Less", "Greater"]), [x.name, b], x.shape, .bool)
        case 3:
            guard x.dtype == .bool else { return }
            add(pick(["And", "Or"]), [x.name, constant(tensor(broadcastable(x.shape), .bool))], x.shape, .bool)
        case 4:
            let to: DType = pick([.f32, .i64, .i32, .bool])
            add("Cast", [x.name], x.shape, to, ["to": .int(ONNXDataType.code(to))])
        case 5:
            guard r > 0 else { return }
            let cond = constant(tensor(broadcastable(x.shape), .bool))
            add("Where", [cond, x.name, constant(tensor(broadcastable(x.shape), x.dtype))], x.shape, x.dtype)
        case 6:
            // Reshape to a regrouping of the elements, with 0 (copy) and -1 (infer) entries.
            let n = x.shape.reduce(1, *)
            var target: [Int] = []
            var left = n
            for _ in 0..<int(0, 2) { let d = pick([1, 2, 3, 4].filter { left % $0 == 0 }); target.append(d); left /= d }
            target.append(left)
            var spec = target
            if bool() { spec[int(0, spec.count - 1)] = -1 }
            if bool(), !spec.isEmpty, r > 0, spec[0] == x.shape[0] { spec[0] = 0 }
            add("Reshape", [x.name, ints(spec)], target, x.dtype)
        case 7:
            var perm = Array(0..<r)
            for i in perm.indices.reversed() where i > 0 { perm.swapAt(i, int(0, i)) }
            add("Transpose", [x.name], perm.map { x.shape[$0] }, x.dtype, ["perm": .ints(perm)])
        case 8:
            let ax = int(0, r)
            add("Flatten", [x.name], [x.shape[..<ax].reduce(1, *), x.shape[ax...].reduce(1, *)], x.dtype, ["axis": .int(ax)])
        case 9:
            guard r < 5 else { return }
            let ua = int(-(r + 1), r)
            var s = x.shape
            s.insert(1, at: ua < 0 ? ua + r + 1 : ua)
            add("Unsqueeze", [x.name, ints([ua])], s, x.dtype)
        case 10:
            guard r > 0, x.shape[a] == 1 else { return }
            var s = x.shape
            s.remove(at: a)
            add("Squeeze", [x.name, ints([axis])], s, x.dtype)
        case 11:
            guard r > 0 else { return }
            var s = x.shape
            s[a] *= 2
            add("Concat", [x.name, x.name], s, x.dtype, ["axis": .int(axis)])
        case 12:
            guard r > 0 else { return }
            let n = x.shape[a]
            let start = int(-n - 1, n + 1), end = pick([int(-n - 1, n + 1), Int(Int64.max), Int(Int64.min)]), st = pick([1, 1, 2, 3, -1, -2])
            func clamp(_ v: Int, _ lo: Int, _ hi: Int) -> Int { min(max(v < 0 ? v + n : v, lo), hi) }
            let count: Int
            if st > 0 { let s0 = clamp(start, 0, n), e0 = clamp(end, 0, n); count = e0 > s0 ? (e0 - s0 + st - 1) / st : 0 }
            else { let s0 = clamp(start, -1, n - 1), e0 = clamp(end, -1, n - 1); count = s0 > e0 ? (s0 - e0 - st - 1) / -st : 0 }
            var s = x.shape
            s[a] = count
            add("Slice", [x.name, ints([start]), ints([end]), ints([axis]), ints([st])], s, x.dtype)
        case 13:
            // Gather with indices from the data when an integer value exists (may be out of range: a run-time error).
            guard r > 0 else { return }
            let idx: Value
            if bool(), let iv = values.first(where: { $0.dtype == .i64 || $0.dtype == .i32 }) { idx = iv }
            else { let s = shape(rank: int(0, 2)); idx = Value(name: constant(tensor(s, .i64, lo: -x.shape[a], hi: x.shape[a] - 1)), shape: s, dtype: .i64) }
            add("Gather", [x.name, idx.name], Array(x.shape[..<a]) + idx.shape + Array(x.shape[(a + 1)...]), x.dtype, ["axis": .int(axis)])
        case 14:
            guard r > 0, x.dtype != .bool else { return }
            let keep = bool()
            var s = x.shape
            if keep { s[a] = 1 } else { s.remove(at: a) }
            let op = pick(["ReduceMean", "ReduceSum", "ReduceMax"])
            if op == "ReduceSum" { add(op, [x.name, ints([axis])], s, x.dtype, ["keepdims": .int(keep ? 1 : 0)]) }
            else { add(op, [x.name], s, x.dtype, ["axes": .ints([axis]), "keepdims": .int(keep ? 1 : 0)]) }
        case 15:
            guard r > 0, x.dtype != .bool else { return }
            let keep = bool()
            var s = x.shape
            if keep { s[a] = 1 } else { s.remove(at: a) }
            add("ArgMax", [x.name], s, .i64, ["axis": .int(axis), "keepdims": .int(keep ? 1 : 0)])
        case 16:
            let target = x.shape.map { $0 == 1 ? int(1, 3) : $0 }
            add("Expand", [x.name, ints(target)], target, x.dtype)
        case 17:
            let reps = x.shape.map { _ in int(1, 2) }
            add("Tile", [x.name, ints(reps)], zip(x.shape, reps).map { $0 * $1 }, x.dtype)
        case 18:
            guard x.dtype == .f32 else { return }
            let pads = (0..<(2 * r)).map { _ in int(0, 2) }
            add("Pad", [x.name, ints(pads)], (0..<r).map { x.shape[$0] + pads[$0] + pads[$0 + r] }, x.dtype, ["mode": .string("constant")])
        case 19:
            guard r > 0, x.shape[a] >= 2 else { return }
            let first = int(1, x.shape[a] - 1)
            let out1 = fresh("v"), out2 = fresh("v")
            nodes.append(ONNXNode(name: "Split_\(nodes.count)", opType: "Split", inputs: [x.name, ints([first, x.shape[a] - first])],
                                  outputs: [out1, out2], attributes: ["axis": .int(axis)]))
            var s1 = x.shape, s2 = x.shape
            s1[a] = first; s2[a] = x.shape[a] - first
            values.append(Value(name: out1, shape: s1, dtype: x.dtype))
            values.append(Value(name: out2, shape: s2, dtype: x.dtype))
        case 20:
            // Shape → Gather → Concat → Reshape: the exporters' dynamic-shape chain.
            let sh = fresh("v")
            nodes.append(ONNXNode(name: "Shape_\(nodes.count)", opType: "Shape", inputs: [x.name], outputs: [sh]))
            add("Reshape", [x.name, sh], x.shape, x.dtype)
        case 21:
            guard x.dtype == .f32, r >= 1 else { return }
            let k = x.shape[r - 1], m = int(1, 4)
            let w = constant(tensor([k, m], .f32))
            add("MatMul", [x.name, w], Array(x.shape.dropLast()) + [m], .f32)
        case 22:
            guard x.dtype == .f32, r == 4, x.shape[1] > 0 else { return }
            let c = x.shape[1], g = pick([1, c].filter { c % $0 == 0 })
            let o = g * int(1, 2), kh = int(1, 3), kw = int(1, 3)
            let pads = (0..<4).map { _ in int(0, 1) }, st = [int(1, 2), int(1, 2)], dl = [int(1, 2), int(1, 2)]
            let ho = (x.shape[2] + pads[0] + pads[2] - dl[0] * (kh - 1) - 1) / st[0] + 1
            let wo = (x.shape[3] + pads[1] + pads[3] - dl[1] * (kw - 1) - 1) / st[1] + 1
            guard ho > 0, wo > 0 else { return }
            var ins = [x.name, constant(tensor([o, c / g, kh, kw], .f32))]
            if bool() { ins.append(constant(tensor([o], .f32))) }
            add("Conv", ins, [x.shape[0], o, ho, wo], .f32,
                ["group": .int(g), "pads": .ints(pads), "strides": .ints(st), "dilations": .ints(dl), "kernel_shape": .ints([kh, kw])])
        case 23:
            guard x.dtype == .f32, r == 4 else { return }
            let k = [int(1, 3), int(1, 3)], st = [int(1, 2), int(1, 2)]
            let pads = [int(0, k[0] / 2), int(0, k[1] / 2), int(0, k[0] / 2), int(0, k[1] / 2)]
            let ceil = bool()
            func out(_ n: Int, _ i: Int) -> Int {
                let span = n + pads[i] + pads[i + 2] - k[i]
                var o = (ceil ? (span + st[i] - 1) / st[i] : span / st[i]) + 1
                if ceil && (o - 1) * st[i] >= n + pads[i] { o -= 1 }
                return o
            }
            let ho = out(x.shape[2], 0), wo = out(x.shape[3], 1)
            guard ho > 0, wo > 0 else { return }
            add(pick(["MaxPool", "AveragePool"]), [x.name], [x.shape[0], x.shape[1], ho, wo], .f32,
                ["kernel_shape": .ints(k), "strides": .ints(st), "pads": .ints(pads), "ceil_mode": .int(ceil ? 1 : 0)])
        case 24:
            guard x.dtype == .f32, r >= 2 else { return }
            let c = x.shape[1]
            if r == 4 && bool() { add("GlobalAveragePool", [x.name], [x.shape[0], c, 1, 1], .f32); return }
            let ps = (0..<4).map { i in constant(Tensor(shape: [c], floats: (0..<c).map { _ in i == 3 ? 0.5 + abs(small()) : small() })) }
            add("BatchNormalization", [x.name] + ps, x.shape, .f32, ["epsilon": .float(1e-5)])
        case 25:
            guard x.dtype == .f32, r > 0 else { return }
            if bool() { add("Softmax", [x.name], x.shape, .f32, ["axis": .int(axis)]); return }
            let inner = Array(x.shape[a...])
            add("LayerNormalization", [x.name, constant(tensor(inner, .f32)), constant(tensor(inner, .f32))], x.shape, .f32, ["axis": .int(axis)])
        case 26:
            // OneHot over integer data (negative and out-of-range values included) or constant indices.
            guard r < 4 else { return }
            let idx = x.dtype == .i64 || x.dtype == .i32 ? x : Value(name: constant(tensor(x.shape, .i64, lo: -6, hi: 6)), shape: x.shape, dtype: .i64)
            let depth = int(1, 5), oa = int(-(r + 1), r)
            var s = idx.shape
            s.insert(depth, at: oa < 0 ? oa + r + 1 : oa)
            add("OneHot", [idx.name, constant(ONNXReader.int64Tensor([depth], shape: [])), constant(tensor([2], .f32))], s, .f32, ["axis": .int(oa)])
        case 27:
            guard r > 0, x.dtype != .bool else { return }
            let keep = bool()
            var s = x.shape
            if keep { s[a] = 1 } else { s.remove(at: a) }
            add("ArgMin", [x.name], s, .i64, ["axis": .int(axis), "keepdims": .int(keep ? 1 : 0), "select_last_index": .int(bool() ? 1 : 0)])
        case 28:
            guard r > 0, x.dtype != .bool else { return }
            let k = int(0, x.shape[a])
            var s = x.shape
            s[a] = k
            let vOut = fresh("v"), iOut = fresh("v")
            nodes.append(ONNXNode(name: "TopK_\(nodes.count)", opType: "TopK", inputs: [x.name, ints([k])], outputs: [vOut, iOut],
                                  attributes: ["axis": .int(axis), "largest": .int(bool() ? 1 : 0), "sorted": .int(bool() ? 1 : 0)]))
            values.append(Value(name: vOut, shape: s, dtype: x.dtype))
            values.append(Value(name: iOut, shape: s, dtype: .i64))
        case 29:
            guard r > 0, x.dtype != .bool else { return }
            add("CumSum", [x.name, constant(ONNXReader.int64Tensor([axis], shape: []))], x.shape, x.dtype,
                ["exclusive": .int(bool() ? 1 : 0), "reverse": .int(bool() ? 1 : 0)])
        case 30:
            // Einsum in the exporters' spellings: transpose, reduction, product with a weight, outer product.
            guard x.dtype == .f32, r >= 1, r <= 3 else { return }
            let l = Array("abc".prefix(r)), m = int(1, 3)
            switch byte() % 4 {
            case 0: add("Einsum", [x.name], Array(x.shape.reversed()), .f32, ["equation": .string(String(l) + "->" + String(l.reversed()))])
            case 1:
                var s = x.shape, o = l
                s.remove(at: a); o.remove(at: a)
                add("Einsum", [x.name], s, .f32, ["equation": .string(String(l) + "->" + String(o))])
            case 2:
                let w = constant(tensor([x.shape[r - 1], m], .f32))
                add("Einsum", [x.name, w], Array(x.shape.dropLast()) + [m], .f32,
                    ["equation": .string("\(String(l)),\(l[r - 1])z->\(String(l.dropLast()))z")])
            default:
                add("Einsum", [x.name, constant(tensor([m], .f32))], x.shape + [m], .f32, ["equation": .string("\(String(l)),z->\(String(l))z")])
            }
        case 31:
            guard x.dtype == .f32 else { return }
            if bool() { add("HardSwish", [x.name], x.shape, .f32); return }
            add("HardSigmoid", [x.name], x.shape, .f32, ["alpha": .float(small()), "beta": .float(small())])
        default:
            break
        }
    }
}
