import WconvFormats
import WconvTensor

/// Constant folding for the shape computations exporters emit (Shape→Gather→Unsqueeze→Concat→Reshape,
/// Constant/Identity chains): a node whose inputs are all known becomes a constant instead of an op.
/// Only small integer tensors (and tiny float ones) are folded, so weights are never rewritten and a
/// hostile ConstantOfShape cannot make us allocate more than `maxFoldedElements`.
extension ONNXBuildContext {
    static let maxFoldedElements = 1 << 20

    /// True when `n` was turned into constants (or was a Constant/Identity-of-constant).
    mutating func fold(_ n: ONNXNode) throws -> Bool {
        guard ONNXOpsetImport.normalizedDomain(n.domain).isEmpty else { return false }
        switch n.opType {
        case "Constant":
            guard let out = n.outputs.first else { return true }
            guard let t = ONNXReader.constantValue(n) else {
                unsupported.append(unsupportedNode(n, "a Constant with a string or sparse value"))
                return true
            }
            constants[out] = t
            return true
        case "Identity":
            guard let src = n.input(0), let t = constants[src], let out = n.outputs.first else { return false }
            constants[out] = t
            aliases[out] = aliases[src] ?? src
            return true
        case "Shape":
            guard let x = n.input(0), let out = n.outputs.first else { return false }
            guard let s = constants[x]?.shape ?? shapes[x] else { return false }
            var start = n.int("start") ?? 0, end = n.int("end") ?? s.count
            if start < 0 { start += s.count }
            if end < 0 { end += s.count }
            start = min(max(start, 0), s.count)
            end = min(max(end, start), s.count)
            constants[out] = ONNXReader.int64Tensor(Array(s[start..<end]), shape: [end - start])
            return true
        default:
            break
        }
        let foldable: Set<String> = ["Gather", "Unsqueeze", "Squeeze", "Concat", "Cast", "Add", "Sub", "Mul", "Div",
                                     "Slice", "Reshape", "ConstantOfShape", "Range", "Neg", "Equal"]
        guard foldable.contains(n.opType), !n.inputs.isEmpty, n.outputs.count == 1 else { return false }
        var inputs: [Tensor?] = []
        for i in n.inputs.indices {
            if n.inputs[i].isEmpty { inputs.append(nil); continue }
            guard let t = constants[n.inputs[i]] else { return false }
            guard t.numel <= ONNXBuildContext.maxFoldedElements else { return false }
            inputs.append(t)
        }
        // Weights stay weights: fold integer math and scalars, not float tensors.
        let first = inputs.compactMap { $0 }
        guard first.allSatisfy({ !$0.dtype.isFloatingPoint || $0.numel <= 64 }) else { return false }
        guard let result = evaluate(n, inputs) else { return false }
        constants[n.outputs[0]] = result
        return true
    }

    /// Evaluates one foldable op on constant inputs; nil when the case is not handled (then it stays an op).
    func evaluate(_ n: ONNXNode, _ inputs: [Tensor?]) -> Tensor? {
        guard let x = inputs.first ?? nil else { return nil }
        let v = x.doubles()
        func make(_ values: [Double], _ shape: [Int], _ dtype: DType) -> Tensor? {
            guard shape.allSatisfy({ $0 >= 0 }), values.count == (try? Tensor.checkedNumel(shape)),
                  (try? Tensor.checkedNumel(shape.map { max($0, 1) })) != nil else { return nil }
            switch dtype {
            case .i64: return ONNXReader.int64Tensor(values.map(ONNXBuildContext.safeInt), shape: shape)
            case .f32: return Tensor(shape: shape, floats: values.map { Float($0) })
            default:
                let f = Tensor(shape: shape, floats: values.map { Float($0) })
                return f.converted(to: dtype).tensor
            }
        }
        func axesInput(_ attrMovedAt: Int) -> [Int]? {
            if opset < attrMovedAt { return n.ints("axes") }
            return inputs.count > 1 ? inputs[1].map(ints) : nil
        }
        switch n.opType {
        case "Unsqueeze":
            guard let axes = axesInput(13) else { return nil }
            var shape = x.shape
            let rank = shape.count + axes.count
            for a in axes.map({ $0 < 0 ? $0 + rank : $0 }).sorted() {
                guard a >= 0, a <= shape.count else { return nil }
                shape.insert(1, at: a)
            }
            return make(v, shape, x.dtype)
        case "Squeeze":
            let axes = axesInput(13)
            var shape: [Int] = []
            for (i, d) in x.shape.enumerated() {
                let squeeze = axes.map { $0.contains(i) || $0.contains(i - x.rank) } ?? (d == 1)
                if !(squeeze && d == 1) { shape.append(d) }
            }
            return make(v, shape, x.dtype)
        case "Reshape":
            guard inputs.count > 1, let s = inputs[1] else { return nil }
            var shape = ints(s)
            for i in shape.indices where shape[i] == 0 && (n.int("allowzero") ?? 0) == 0 {
                guard i < x.rank else { return nil }
                shape[i] = x.shape[i]
            }
            if let m = shape.firstIndex(of: -1) {
                let others = shape.enumerated().filter { $0.offset != m }.map(\.element)
                guard others.allSatisfy({ $0 > 0 }), let rest = try? Tensor.checkedNumel(others), v.count % rest == 0 else { return nil }
                shape[m] = v.count / rest
            }
            return make(v, shape, x.dtype)
        case "Concat":
            guard x.rank == 1 else { return nil }
            var all: [Double] = []
            for t in inputs { guard let t, t.rank == 1, t.dtype == x.dtype else { return nil }; all += t.doubles() }
            return make(all, [all.count], x.dtype)
        case "Gather":
            guard inputs.count > 1, let idx = inputs[1], x.rank == 1, (n.int("axis") ?? 0) == 0, idx.rank <= 1 else { return nil }
            var out: [Double] = []
            for i in ints(idx) {
                let j = i < 0 ? i + v.count : i
                guard j >= 0, j < v.count else { return nil }
                out.append(v[j])
            }
            return make(out, idx.shape, x.dtype)
        case "Cast":
            guard let to = n.int("to"), let d = ONNXDataType.dtype(to) else { return nil }
            return make(v, x.shape, d)
        case "Neg":
            return make(v.map { -$0 }, x.shape, x.dtype)
        case "Add", "Sub", "Mul", "Div", "Equal":
            guard inputs.count == 2, let y = inputs[1] else { return nil }
            let w = y.doubles()
            let shape: [Int]
            if x.shape == y.shape { shape = x.shape } else if y.numel == 1 { shape = x.shape } else if x.numel == 1 { shape = y.shape } else { return nil }
            let count = max(v.count, w.count)
            let isInt = !x.dtype.isFloatingPoint
            var out = [Double](repeating: 0, count: count)
            for i in 0..<count {
                let a = v.count == 1 ? v[0] : v[i], b = w.count == 1 ? w[0] : w[i]
                switch n.opType {
                case "Add": out[i] = a + b
                case "Sub": out[i] = a - b
                case "Mul": out[i] = a * b
                case "Equal": out[i] = a == b ? 1 : 0
                default:
                    if isInt { guard b != 0 else { return nil }; out[i] = (a / b).rounded(.towardZero) } else { out[i] = a / b }
                }
            }
            return make(out, shape, n.opType == "Equal" ? .bool : x.dtype)
        case "Slice":
            guard x.rank == 1, opset >= 10, inputs.count >= 3, let s = inputs[1], let e = inputs[2] else { return nil }
            let steps = inputs.count > 4 ? inputs[4].map(ints) ?? [1] : [1]
            guard var start = ints(s).first, var end = ints(e).first, let step = steps.first, step == 1 else { return nil }
            let c = v.count
            if start < 0 { start += c }
            if end < 0 { end += c }
            start = min(max(start, 0), c)
            end = min(max(end, start), c)
            return make(Array(v[start..<end]), [end - start], x.dtype)
        case "ConstantOfShape":
            let shape = ints(x)
            guard shape.allSatisfy({ $0 >= 0 }), let count = try? Tensor.checkedNumel(shape),
                  count <= ONNXBuildContext.maxFoldedElements else { return nil }
            let value = n.tensor("value")
            let fill = value?.doubles().first ?? 0
            return make([Double](repeating: fill, count: count), shape, value?.dtype ?? .f32)
        case "Range":
            guard inputs.count == 3, let l = inputs[1], let d = inputs[2], let start = v.first,
                  let limit = l.doubles().first, let delta = d.doubles().first, delta != 0 else { return nil }
            let steps = ((limit - start) / delta).rounded(.up)
            guard steps.isFinite, steps <= Double(ONNXBuildContext.maxFoldedElements) else { return nil }
            let count = max(Int(steps), 0)
            return make((0..<count).map { start + Double($0) * delta }, [count], x.dtype)
        default:
            return nil
        }
    }
}

extension ONNXOpsetImport {
    /// "" for the default domain ("" or "ai.onnx"), else the domain.
    static func normalizedDomain(_ d: String) -> String { d == "ai.onnx" ? "" : d }
}
