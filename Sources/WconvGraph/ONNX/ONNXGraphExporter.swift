import OrderedCollections
import WconvFormats
import WconvTensor

/// Writes a canonical `ModelGraph` (imported from any format) as an ONNX model: IR 8, opset 17, typed
/// inputs and outputs, parameters as initializers under their own names, nodes in topological order.
/// Ops opset 17 lacks are decomposed (SiLU = x·σ(x), GELU = the Erf formula, ReLU6 = Clip(0, 6)).
public enum ONNXGraphExporter {
    public static let irVersion = 8
    public static let opsetVersion = 17

    public static func export(_ graph: ModelGraph, to path: String) throws {
        try ONNXWriter.write(try model(graph, path: path), to: path)
    }

    /// The ONNX model `export` writes.
    public static func model(_ graph: ModelGraph, path: String? = nil) throws -> ONNXModel {
        guard !graph.isWeightsOnly else {
            throw WconvError(.invalidInput, "cannot write ONNX from a weights-only model: ONNX needs a graph of ops, and this model has \(graph.parameters.count) tensors but no recognised structure. Convert it to safetensors or .pth instead, or import it from a file that carries its architecture.", file: path)
        }
        var e = ONNXExportContext(graph: graph, path: path)
        return try e.run()
    }
}

struct ONNXExportContext {
    let graph: ModelGraph
    let path: String?
    var nodes: [ONNXNode] = []
    var initializers: OrderedDictionary<String, Tensor> = [:]
    var ranks: [String: Int] = [:]
    var problems: [String] = []
    var usedNames: Set<String> = []

    init(graph: ModelGraph, path: String?) {
        self.graph = graph
        self.path = path
    }

    mutating func run() throws -> ONNXModel {
        for v in graph.inputs { ranks[v.name] = v.shape.count; usedNames.insert(v.name) }
        for (name, t) in graph.parameters { ranks[name] = t.rank; usedNames.insert(name) }
        for n in graph.nodes { n.outputs.forEach { usedNames.insert($0) } }
        // Initializers first, in the graph's parameter order; rewritten layouts replace them below.
        for (name, t) in graph.parameters { initializers[name] = t }
        for n in graph.nodes { emit(n) }
        if !problems.isEmpty {
            throw WconvError(.invalidInput, "cannot express \(problems.count) node\(problems.count == 1 ? "" : "s") in ONNX opset \(ONNXGraphExporter.opsetVersion):\n  " + problems.joined(separator: "\n  "), file: path)
        }
        var g = ONNXGraph(name: graph.architecture ?? "wconv")
        g.nodes = nodes
        g.initializers = initializers
        for v in graph.inputs where initializers[v.name] == nil {
            g.inputs.append(ONNXValueInfo(name: v.name, elemType: ONNXDataType.code(v.dtype), shape: dims(v.shape, rank: v.shape.count, name: v.name)))
        }
        for v in graph.outputs {
            let rank = ranks[v.name] ?? v.shape.count
            let shape = v.shape.count == rank ? v.shape : [Int?](repeating: nil, count: rank)
            g.outputs.append(ONNXValueInfo(name: v.name, elemType: ONNXDataType.code(v.dtype), shape: dims(shape, rank: rank, name: v.name)))
        }
        var model = ONNXModel(irVersion: ONNXGraphExporter.irVersion,
                              opsetImports: [ONNXOpsetImport(domain: "", version: ONNXGraphExporter.opsetVersion)],
                              producerName: "wconv", graph: g)
        if let src = graph.provenance.sourceFile { model.metadataProps["wconv.source"] = src }
        if let f = graph.provenance.sourceFormat { model.metadataProps["wconv.sourceFormat"] = f }
        // A multi-label model's task and per-label thresholds travel with it.
        for k in ["wconv.task", "wconv.thresholds"] { if let v = graph.provenance.notes[k] { model.metadataProps[k] = v } }
        return model
    }

    func dims(_ shape: [Int?], rank: Int, name: String) -> [ONNXDim] {
        shape.enumerated().map { i, d in d.map { ONNXDim.value($0) } ?? .param(i == 0 ? "batch" : "\(name)_d\(i)") }
    }

    mutating func fresh(_ base: String) -> String {
        var name = base, k = 1
        while usedNames.contains(name) { name = "\(base)_\(k)"; k += 1 }
        usedNames.insert(name)
        return name
    }

    /// A new constant initializer.
    mutating func constant(_ base: String, _ t: Tensor) -> String {
        let name = fresh(base)
        initializers[name] = t
        ranks[name] = t.rank
        return name
    }

    mutating func ints(_ base: String, _ v: [Int]) -> String { constant(base, ONNXReader.int64Tensor(v, shape: [v.count])) }
    mutating func scalar(_ base: String, _ v: Double) -> String { constant(base, Tensor(shape: [], floats: [Float(v)])) }

    mutating func add(_ op: String, _ name: String, _ inputs: [String], _ outputs: [String], _ attrs: OrderedDictionary<String, ONNXAttribute> = [:], rank: Int?) {
        nodes.append(ONNXNode(name: name, opType: op, inputs: inputs, outputs: outputs, attributes: attrs))
        if let rank { for o in outputs { ranks[o] = rank } }
    }

    func rank(_ v: String) -> Int? { ranks[v] }

    mutating func emit(_ n: GraphNode) {
        if let export = OpCatalog.schema(n.op)?.onnxExport { export(&self, n); return }
        let x = n.inputs.first ?? ""
        let y = n.outputs.first ?? ""
        let r = rank(x)
        let simple: [Op: String] = [
            .relu: "Relu", .sigmoid: "Sigmoid", .tanh: "Tanh", .erf: "Erf", .sqrt: "Sqrt", .exp: "Exp", .log: "Log",
            .abs: "Abs", .neg: "Neg", .reciprocal: "Reciprocal", .not: "Not", .isNaN: "IsNaN", .hardSwish: "HardSwish",
            .identity: "Identity",
        ]
        let binary: [Op: String] = [
            .add: "Add", .sub: "Sub", .mul: "Mul", .div: "Div", .pow: "Pow", .equal: "Equal", .less: "Less",
            .lessOrEqual: "LessOrEqual", .greater: "Greater", .greaterOrEqual: "GreaterOrEqual", .and: "And", .or: "Or",
            .minimum: "Min", .maximum: "Max",
        ]
        if let op = simple[n.op] { add(op, n.name, [x], [y], rank: r); return }
        if let op = binary[n.op] {
            let rr = n.inputs.compactMap { rank($0) }.max()
            add(op, n.name, n.inputs, [y], rank: rr)
            return
        }
        switch n.op {
        case .conv2d:
            guard n.inputs.count >= 2, let w = graph.parameters[n.inputs[1]], w.rank == 4 else {
                problems.append("\(n.name) (conv2d): weight is not a 4-D parameter"); return
            }
            add("Conv", n.name, n.inputs, [y], ["kernel_shape": .ints([w.shape[2], w.shape[3]]), "strides": .ints(n.ints("strides") ?? [1, 1]),
                                                 "pads": .ints(n.ints("pads") ?? [0, 0, 0, 0]), "dilations": .ints(n.ints("dilations") ?? [1, 1]),
                                                 "group": .int(n.int("group") ?? 1)], rank: 4)
        case .batchNorm:
            var attrs: OrderedDictionary<String, ONNXAttribute> = ["epsilon": .float(Float(n.float("epsilon") ?? 1e-5)),
                                                                   "momentum": .float(Float(1 - (n.float("momentum") ?? 0.1)))]
            // Kept as the source said it (training-preserving exports): 1 means batch statistics.
            var outputs = [y]
            if let t = n.int("trainingMode") {
                attrs["training_mode"] = .int(t)
                // Opset 15+ requires the running-statistics outputs when training_mode is 1.
                if t == 1 { outputs += [fresh(y + "/running_mean"), fresh(y + "/running_var")] }
            }
            add("BatchNormalization", n.name, n.inputs, outputs, attrs, rank: r)
        case .linear: emitLinear(n)
        case .matmul:
            add("MatMul", n.name, n.inputs, [y], rank: n.inputs.compactMap { rank($0) }.max())
        case .relu6:
            add("Clip", n.name, [x, scalar(n.name + ".min", 0), scalar(n.name + ".max", 6)], [y], rank: r)
        case .silu:
            let s = fresh(n.name + "/sigmoid")
            add("Sigmoid", s, [x], [s], rank: r)
            add("Mul", n.name, [x, s], [y], rank: r)
        case .gelu: emitGelu(n, x: x, y: y, rank: r)
        case .hardSigmoid:
            add("HardSigmoid", n.name, [x], [y], ["alpha": .float(Float(n.float("alpha") ?? 0.2)), "beta": .float(Float(n.float("beta") ?? 0.5))], rank: r)
        case .adaptiveAvgPool2d:
            guard (n.ints("outputSize") ?? [1, 1]) == [1, 1] else { problems.append("\(n.name) (adaptiveAvgPool2d): only output size 1×1 maps to ONNX"); return }
            add("GlobalAveragePool", n.name, [x], [y], rank: 4)
        case .globalAvgPool, .globalMaxPool:
            let op = n.op == .globalAvgPool ? "GlobalAveragePool" : "GlobalMaxPool"
            if (n.int("keepdims") ?? 1) == 1 {
                add(op, n.name, [x], [y], rank: r)
            } else {
                let t = fresh(n.name + "/pooled")
                add(op, n.name + "/pool", [x], [t], rank: r)
                add("Squeeze", n.name, [t, ints(n.name + ".axes", [2, 3])], [y], rank: r.map { $0 - 2 })
            }
        case .concat: add("Concat", n.name, n.inputs, [y], ["axis": .int(n.int("axis") ?? 0)], rank: r)
        case .flatten:
            let axis = n.int("axis") ?? 1, end = n.int("end") ?? -1
            guard axis >= 0, axis <= 64 else { problems.append("\(n.name) (flatten): axis \(axis) out of range"); return }
            if end != -1 {
                // flatten(0, r − 2) of a rank-r input is ONNX Flatten(r − 1) (how ONNX Flatten imports).
                guard axis == 0, let r, end == r - 2 || end == -2 else {
                    problems.append("\(n.name) (flatten): start \(axis), end \(end) has no ONNX form"); return
                }
                add("Flatten", n.name, [x], [y], ["axis": .int(r - 1)], rank: 2)
            } else if axis == 1 {
                add("Flatten", n.name, [x], [y], ["axis": .int(1)], rank: 2)
            } else {
                // torch.flatten(x, a) keeps dims before a: Reshape to [0]*a + [-1] (0 copies a dim).
                add("Reshape", n.name, [x, ints(n.name + ".shape", [Int](repeating: 0, count: max(axis, 0)) + [-1])], [y], rank: axis + 1)
            }
        case .reshape:
            var attrs: OrderedDictionary<String, ONNXAttribute> = [:]
            if let z = n.int("allowzero"), z != 0 { attrs["allowzero"] = .int(z) }
            if let s = n.ints("shape") {
                add("Reshape", n.name, [x, ints(n.name + ".shape", s)], [y], attrs, rank: s.count)
            } else if n.inputs.count == 2 {
                add("Reshape", n.name, n.inputs, [y], attrs, rank: graph.parameters[n.inputs[1]]?.numel)
            } else {
                problems.append("\(n.name) (reshape): no shape")
            }
        case .transpose:
            var attrs: OrderedDictionary<String, ONNXAttribute> = [:]
            if let p = n.ints("perm") { attrs["perm"] = .ints(p) }
            add("Transpose", n.name, [x], [y], attrs, rank: r)
        case .dropout:
            add("Dropout", n.name, [x, scalar(n.name + ".ratio", n.float("ratio") ?? 0.5)], [y], rank: r)
        case .layerNorm:
            add("LayerNormalization", n.name, n.inputs, [y], ["axis": .int(n.int("axis") ?? -1), "epsilon": .float(Float(n.float("epsilon") ?? 1e-5))], rank: r)
        case .embedding:
            guard n.inputs.count == 2 else { problems.append("\(n.name) (embedding): expects [indices, weight]"); return }
            add("Gather", n.name, [n.inputs[1], n.inputs[0]], [y], ["axis": .int(0)], rank: r.map { $0 + 1 })
        case .gather:
            let rr = n.inputs.count == 2 ? zip2(rank(n.inputs[0]), rank(n.inputs[1])).map { $0 - 1 + $1 } : nil
            add("Gather", n.name, n.inputs, [y], ["axis": .int(n.int("axis") ?? 0)], rank: rr)
        case .reduceMean, .reduceSum, .reduceMax:
            let axes = n.ints("axes") ?? []
            let keep = n.int("keepdims") ?? 1
            let outRank = r.map { keep == 1 ? $0 : (axes.isEmpty ? 0 : $0 - axes.count) }
            if n.op == .reduceSum {
                add("ReduceSum", n.name, axes.isEmpty ? [x] : [x, ints(n.name + ".axes", axes)], [y], ["keepdims": .int(keep)], rank: outRank)
            } else {
                var attrs: OrderedDictionary<String, ONNXAttribute> = ["keepdims": .int(keep)]
                if !axes.isEmpty { attrs["axes"] = .ints(axes) }
                add(n.op == .reduceMean ? "ReduceMean" : "ReduceMax", n.name, [x], [y], attrs, rank: outRank)
            }
        case .unsqueeze, .squeeze:
            let axes = n.ints("axes")
            let inputs = axes.map { [x, ints(n.name + ".axes", $0)] } ?? [x]
            let rr = zip2(r, axes?.count).map { n.op == .unsqueeze ? $0 + $1 : $0 - $1 }
            add(n.op == .unsqueeze ? "Unsqueeze" : "Squeeze", n.name, inputs, [y], rank: rr)
        case .split:
            let inputs = n.ints("split").map { [x, ints(n.name + ".split", $0)] } ?? [x]
            add("Split", n.name, inputs, n.outputs, ["axis": .int(n.int("axis") ?? 0)], rank: r)
        case .slice:
            if n.ints("starts") == nil && n.inputs.count >= 3 { add("Slice", n.name, n.inputs, [y], rank: r); return }
            guard let s = n.ints("starts"), let e = n.ints("ends") else { problems.append("\(n.name) (slice): no starts/ends"); return }
            var inputs = [x, ints(n.name + ".starts", s), ints(n.name + ".ends", e)]
            if let a = n.ints("axes") { inputs.append(ints(n.name + ".axes", a)) }
            if let st = n.ints("steps") {
                if inputs.count == 3 { inputs.append(ints(n.name + ".axes", Array(0..<s.count))) }
                inputs.append(ints(n.name + ".steps", st))
            }
            add("Slice", n.name, inputs, [y], rank: r)
        case .cast:
            guard let to = n.string("to").flatMap(DType.init(rawValue:)) else { problems.append("\(n.name) (cast): unknown target dtype"); return }
            add("Cast", n.name, [x], [y], ["to": .int(ONNXDataType.code(to))], rank: r)
        case .where:
            add("Where", n.name, n.inputs, [y], rank: n.inputs.compactMap { rank($0) }.max())
        case .expand:
            if let s = n.ints("shape") { add("Expand", n.name, [x, ints(n.name + ".shape", s)], [y], rank: max(s.count, r ?? 0)); return }
            add("Expand", n.name, n.inputs, [y], rank: n.inputs.count == 2 ? graph.parameters[n.inputs[1]]?.numel : nil)
        case .shape:
            var attrs: OrderedDictionary<String, ONNXAttribute> = [:]
            if let s = n.int("start") { attrs["start"] = .int(s) }
            if let e = n.int("end") { attrs["end"] = .int(e) }
            add("Shape", n.name, [x], [y], attrs, rank: 1)
        case .constantOfShape:
            let shapeIn = n.ints("shape").map { ints(n.name + ".shape", $0) } ?? x
            let dtype = n.string("dtype").flatMap(DType.init(rawValue:)) ?? .f32
            let value = Tensor(shape: [1], floats: [Float(n.float("value") ?? 0)]).converted(to: dtype).tensor
            add("ConstantOfShape", n.name, [shapeIn], [y], ["value": .tensor(value)], rank: n.ints("shape")?.count ?? graph.parameters[x]?.numel)
        case .range:
            if let s = n.float("start"), let l = n.float("limit"), let d = n.float("delta") {
                // Integral bounds came from int64 constants (position ids); keep that dtype.
                let integral = [s, l, d].allSatisfy { $0 == $0.rounded() }
                let names = [(s, "start"), (l, "limit"), (d, "delta")].map { v, k in
                    integral ? constant(n.name + "." + k, ONNXReader.int64Tensor([Int(clamping: v)], shape: [])) : scalar(n.name + "." + k, v)
                }
                add("Range", n.name, names, [y], rank: 1); return
            }
            add("Range", n.name, n.inputs, [y], rank: 1)
        case .tile:
            if let reps = n.ints("repeats") { add("Tile", n.name, [x, ints(n.name + ".repeats", reps)], [y], rank: r); return }
            add("Tile", n.name, n.inputs, [y], rank: r)
        case .gatherND: add("GatherND", n.name, n.inputs, [y], ["batch_dims": .int(n.int("batchDims") ?? 0)], rank: nil)
        case .attention: emitAttention(n)
        case .arange: emitArange(n)
        default:
            problems.append("\(n.name) (\(n.op)): no ONNX spelling")
        }
    }

    func zip2(_ a: Int?, _ b: Int?) -> (Int, Int)? {
        guard let a, let b else { return nil }
        return (a, b)
    }

    /// linear → Gemm(transB=1) on 2-D inputs; otherwise MatMul with the weight in (in, out) layout (+ Add).
    /// A weight that came from an ONNX MatMul (layout transform permute [1, 0]) goes back in its own layout.
    mutating func emitLinear(_ n: GraphNode) {
        guard n.inputs.count >= 2, let w = graph.parameters[n.inputs[1]], w.rank == 2 else {
            problems.append("\(n.name) (linear): weight is not a 2-D parameter"); return
        }
        let x = n.inputs[0], wName = n.inputs[1], y = n.outputs[0]
        let bias = n.inputs.count > 2 && !n.inputs[2].isEmpty ? n.inputs[2] : nil
        let fromMatMul = graph.layoutTransforms[wName].map { $0.kind == "permute" && $0.perm == [1, 0] } ?? false
        if rank(x) == 2 && !fromMatMul {
            add("Gemm", n.name, [x, wName] + (bias.map { [$0] } ?? []), [y], ["transB": .int(1)], rank: 2)
            return
        }
        // (out, in) → (in, out); the initializer keeps its name with the ONNX MatMul layout.
        let t = (try? Tensor(dtype: w.dtype, shape: [w.shape[1], w.shape[0]], strides: [w.strides[1], w.strides[0]], offset: w.offset, storage: w.storage))?.contiguous()
        guard let t else { problems.append("\(n.name) (linear): cannot transpose the weight"); return }
        initializers[wName] = t
        if let bias {
            let h = fresh(n.name + "/matmul")
            add("MatMul", n.name + "/matmul", [x, wName], [h], rank: rank(x))
            add("Add", n.name, [h, bias], [y], rank: rank(x))
        } else {
            add("MatMul", n.name, [x, wName], [y], rank: rank(x))
        }
    }

    /// GELU for opset 17: 0.5·x·(1 + erf(x/√2)), or the tanh approximation.
    mutating func emitGelu(_ n: GraphNode, x: String, y: String, rank r: Int?) {
        let p = n.name
        if n.string("approximate") == "tanh" {
            let cube = fresh(p + "/cube"), inner = fresh(p + "/inner"), scaled = fresh(p + "/scaled"),
                th = fresh(p + "/tanh"), one = fresh(p + "/onep"), half = fresh(p + "/half"), k = fresh(p + "/kx3"), sum = fresh(p + "/sum")
            add("Pow", cube, [x, scalar(p + ".three", 3)], [cube], rank: r)
            add("Mul", k, [cube, scalar(p + ".c", 0.044715)], [k], rank: r)
            add("Add", sum, [x, k], [sum], rank: r)
            add("Mul", scaled, [sum, scalar(p + ".s", (2.0 / Double.pi).squareRoot())], [scaled], rank: r)
            add("Tanh", th, [scaled], [th], rank: r)
            add("Add", one, [th, scalar(p + ".one", 1)], [one], rank: r)
            add("Mul", half, [x, scalar(p + ".half", 0.5)], [half], rank: r)
            add("Mul", n.name, [half, one], [y], rank: r)
            _ = inner
            return
        }
        let d = fresh(p + "/div"), e = fresh(p + "/erf"), a = fresh(p + "/add"), m = fresh(p + "/mul")
        add("Div", d, [x, scalar(p + ".sqrt2", 2.0.squareRoot())], [d], rank: r)
        add("Erf", e, [d], [e], rank: r)
        add("Add", a, [e, scalar(p + ".one", 1)], [a], rank: r)
        add("Mul", m, [x, a], [m], rank: r)
        add("Mul", n.name, [m, scalar(p + ".half", 0.5)], [y], rank: r)
    }
}
