import WconvFormats
import WconvTensor

/// ONNX node → canonical ops (OpVocabulary.swift, ONNXOps.swift), dispatched on (op_type, opset).
extension ONNXBuildContext {
    static let unary: [String: Op] = [
        "Relu": .relu, "Sigmoid": .sigmoid, "Tanh": .tanh, "Erf": .erf, "Sqrt": .sqrt, "Exp": .exp, "Log": .log,
        "Abs": .abs, "Neg": .neg, "Reciprocal": .reciprocal, "Not": .not, "IsNaN": .isNaN, "HardSwish": .hardSwish,
    ]
    static let binary: [String: Op] = [
        "Add": .add, "Sub": .sub, "Mul": .mul, "Div": .div, "Pow": .pow, "Equal": .equal, "Less": .less,
        "LessOrEqual": .lessOrEqual, "Greater": .greater, "GreaterOrEqual": .greaterOrEqual, "And": .and, "Or": .or,
        "MatMul": .matmul,
    ]

    mutating func map(_ n: ONNXNode, index: Int, order: [Int]) throws {
        guard ONNXOpsetImport.normalizedDomain(n.domain).isEmpty else {
            unsupported.append(unsupportedNode(n, "custom domain '\(n.domain)'"))
            return
        }
        guard n.outputs.contains(where: { !$0.isEmpty }), !n.inputs.isEmpty else {
            unsupported.append(unsupportedNode(n, "a node without inputs or outputs"))
            return
        }
        // Catalog importers name their outputs (LSTM may omit Y and keep Y_h); `emit` refuses an omitted one.
        if let importer = OpCatalog.onnxImporters[n.opType] { try importer(&self, n); return }
        guard let first = n.outputs.first, !first.isEmpty else {
            unsupported.append(unsupportedNode(n, "its first output is omitted"))
            return
        }
        let out1 = [first]
        if let op = ONNXBuildContext.unary[n.opType] {
            emit(n, op, inputs: [n.inputs.first ?? ""], outputs: out1)
            return
        }
        if n.opType == "Mul", try fuseActivationMul(n) { return }
        if n.opType == "MatMul", try mapMatMulAsLinear(n) { return }
        if let op = ONNXBuildContext.binary[n.opType] {
            guard n.inputs.count == 2 else { unsupported.append(unsupportedNode(n, "expects 2 inputs")); return }
            emit(n, op, outputs: out1)
            return
        }
        switch n.opType {
        case "Conv": mapConv(n)
        case "Gemm": mapGemm(n)
        case "BatchNormalization":
            guard n.inputs.count == 5 else { unsupported.append(unsupportedNode(n, "expects 5 inputs")); return }
            let m = Double(n.float("momentum") ?? 0.9)
            var attrs: [String: AttributeValue] = ["epsilon": .float(Double(n.float("epsilon") ?? 1e-5)), "momentum": .float(1 - m)]
            if let t = n.int("training_mode") { attrs["trainingMode"] = .int(t) }
            for b in n.inputs[3...4] { buffers.insert(b) }
            emit(n, .batchNorm, outputs: out1, attrs)
        case "MaxPool", "AveragePool": mapPool(n)
        case "GlobalAveragePool": emit(n, .globalAvgPool, inputs: [n.inputs[0]], outputs: out1, ["keepdims": .int(1)])
        case "GlobalMaxPool": emit(n, .globalMaxPool, inputs: [n.inputs[0]], outputs: out1, ["keepdims": .int(1)])
        case "Flatten":
            mapFlatten(n)
        case "Clip": mapClip(n)
        case "HardSigmoid":
            emit(n, .hardSigmoid, outputs: out1, ["alpha": .float(Double(n.float("alpha") ?? 0.2)), "beta": .float(Double(n.float("beta") ?? 0.5))])
        case "Concat": emit(n, .concat, outputs: out1, ["axis": .int(n.int("axis") ?? 0)])
        case "Transpose":
            var attrs: [String: AttributeValue] = [:]
            if let p = n.ints("perm") { attrs["perm"] = .ints(p) }
            emit(n, .transpose, outputs: out1, attrs)
        case "Reshape": mapReshape(n)
        case "Gather":
            let axis = n.int("axis") ?? 0
            guard n.inputs.count == 2 else { unsupported.append(unsupportedNode(n, "expects 2 inputs")); return }
            if axis == 0, let w = n.input(0), let t = constants[w], t.rank == 2, t.dtype.isFloatingPoint, constants[n.inputs[1]] == nil {
                emit(n, .embedding, inputs: [n.inputs[1], w], outputs: out1)
            } else {
                emit(n, .gather, outputs: out1, ["axis": .int(axis)])
            }
        case "LayerNormalization":
            emit(n, .layerNorm, inputs: Array(n.inputs.prefix(3)), outputs: out1,
                 ["epsilon": .float(Double(n.float("epsilon") ?? 1e-5)), "axis": .int(n.int("axis") ?? -1)])
        case "Gelu":
            emit(n, .gelu, outputs: out1, ["approximate": .string(n.string("approximate") ?? "none")])
        case "Dropout":
            var attrs: [String: AttributeValue] = [:]
            if opset < 12, let r = n.float("ratio") { attrs["ratio"] = .float(Double(r)) }
            if opset >= 12, let r = constant(n, 1)?.doubles().first { attrs["ratio"] = .float(r) }
            if attrs["ratio"] == nil { attrs["ratio"] = .float(0.5) }
            emit(n, .dropout, inputs: [n.inputs[0]], outputs: out1, attrs)
        case "Identity": emit(n, .identity, inputs: [n.inputs[0]], outputs: out1)
        case "Pad": mapPad(n)
        case "Unsqueeze", "Squeeze":
            let (axes, dyn) = intsAttrOrInput(n, attr: "axes", index: 1, movedAt: 13)
            // Axes computed at run time stay an input, resolved once the input shapes are known.
            if dyn { emit(n, n.opType == "Unsqueeze" ? .unsqueeze : .squeeze, inputs: Array(n.inputs.prefix(2)), outputs: out1); return }
            var attrs: [String: AttributeValue] = [:]
            if let axes { attrs["axes"] = .ints(axes) }
            emit(n, n.opType == "Unsqueeze" ? .unsqueeze : .squeeze, inputs: [n.inputs[0]], outputs: out1, attrs)
        case "Split": mapSplit(n)
        case "ReduceMean", "ReduceSum", "ReduceMax": mapReduce(n)
        case "Slice": mapSlice(n)
        case "Cast":
            guard let to = n.int("to"), let d = ONNXDataType.dtype(to) else {
                unsupported.append(unsupportedNode(n, "cast to \(ONNXDataType.name(n.int("to") ?? 0))")); return
            }
            emit(n, .cast, inputs: [n.inputs[0]], outputs: out1, ["to": .string(d.rawValue)])
        case "CastLike":
            emit(n, .cast, inputs: [n.inputs[0]], outputs: out1, ["to": .string((constant(n, 1)?.dtype ?? .f32).rawValue)])
        case "Where": emit(n, .where, outputs: out1)
        case "Expand", "Tile", "ConstantOfShape", "Range": mapValueShaped(n)
        case "Shape":
            var attrs: [String: AttributeValue] = [:]
            if let s = n.int("start") { attrs["start"] = .int(s) }
            if let e = n.int("end") { attrs["end"] = .int(e) }
            emit(n, .shape, outputs: out1, attrs)
        case "Min", "Max":
            guard n.inputs.count == 2 else { unsupported.append(unsupportedNode(n, "\(n.inputs.count) inputs (2 supported)")); return }
            emit(n, n.opType == "Min" ? .minimum : .maximum, outputs: out1)
        case "GatherND": emit(n, .gatherND, outputs: out1, ["batchDims": .int(n.int("batch_dims") ?? 0)])
        case "If", "Loop", "Scan":
            unsupported.append(unsupportedNode(n, "control flow (a subgraph chosen or repeated at run time) is not supported; export the branch you need without it (e.g. a fixed sample rate)"))
        default:
            unsupported.append(unsupportedNode(n))
        }
    }

    // MARK: convolution and pooling

    /// Canonical pads (all begins, then all ends: [top, left, bottom, right] in 2-D) from ONNX
    /// pads/auto_pad for `kernel.count` spatial dims (SAME_UPPER puts the odd pad at the end, like
    /// Keras 'same'). nil when auto_pad needs an input size we do not know.
    func spatialPads(_ n: ONNXNode, kernel: [Int], strides: [Int], dilations: [Int]) -> [Int]? {
        let auto = n.string("auto_pad") ?? "NOTSET", k = kernel.count
        switch auto {
        case "NOTSET": return n.ints("pads") ?? [Int](repeating: 0, count: 2 * k)
        case "VALID": return [Int](repeating: 0, count: 2 * k)
        case "SAME_UPPER", "SAME_LOWER":
            var begin = [Int](repeating: 0, count: k), end = begin
            let inShape = n.input(0).flatMap { shapes[$0] }
            for d in 0..<k {
                let eff = (kernel[d] - 1) * dilations[d] + 1
                let total: Int
                if strides[d] == 1 {
                    total = eff - 1
                } else {
                    guard let s = inShape, s.count == 2 + k else { return nil }
                    let input = s[2 + d], out = (input + strides[d] - 1) / strides[d]
                    total = max((out - 1) * strides[d] + eff - input, 0)
                }
                let small = total / 2
                begin[d] = auto == "SAME_UPPER" ? small : total - small
                end[d] = total - begin[d]
            }
            return begin + end
        default: return nil
        }
    }

    mutating func mapConv(_ n: ONNXNode) {
        guard let wName = n.input(1) else { unsupported.append(unsupportedNode(n, "no weight")); return }
        let wShape = constants[wName]?.shape ?? shapes[wName]
        guard let ws = wShape, ws.count == 4 else {
            unsupported.append(unsupportedNode(n, "only 1-D and 2-D convolution with a known weight shape is supported (weight \(wShape.map { "\($0)" } ?? "unknown"))"))
            return
        }
        let kernel = n.ints("kernel_shape") ?? [ws[2], ws[3]]
        let strides = n.ints("strides") ?? [1, 1], dil = n.ints("dilations") ?? [1, 1]
        guard kernel.count == 2, strides.count == 2, dil.count == 2, (kernel + strides + dil).allSatisfy({ $0 > 0 && $0 <= 1 << 20 }) else {
            unsupported.append(unsupportedNode(n, "kernel, strides and dilations must be 2 positive values each")); return
        }
        guard let pads = spatialPads(n, kernel: kernel, strides: strides, dilations: dil), pads.count == 4 else {
            unsupported.append(unsupportedNode(n, "auto_pad \(n.string("auto_pad") ?? "") with stride > 1 needs a static input shape"))
            return
        }
        emit(n, .conv2d, inputs: Array(n.inputs.prefix(3)), outputs: [n.outputs[0]],
             ["strides": .ints(strides), "pads": .ints(pads), "dilations": .ints(dil), "group": .int(n.int("group") ?? 1)])
    }

    /// MaxPool/AveragePool over 1 or 2 spatial dims (maxPool1d/avgPool1d, maxPool2d/avgPool2d).
    mutating func mapPool(_ n: ONNXNode) {
        guard let kernel = n.ints("kernel_shape"), kernel.count == 1 || kernel.count == 2 else {
            unsupported.append(unsupportedNode(n, "only 1-D and 2-D pooling is supported")); return
        }
        if n.outputs.count > 1, !n.outputs[1].isEmpty, consumers[n.outputs[1], default: 0] > 0 {
            unsupported.append(unsupportedNode(n, "the Indices output is used")); return
        }
        let k = kernel.count, ones = [Int](repeating: 1, count: k)
        let strides = n.ints("strides") ?? ones, dil = n.ints("dilations") ?? ones
        guard strides.count == k, dil.count == k, (kernel + strides + dil).allSatisfy({ $0 > 0 && $0 <= 1 << 20 }) else {
            unsupported.append(unsupportedNode(n, "kernel, strides and dilations must be \(k) positive values each")); return
        }
        guard let pads = spatialPads(n, kernel: kernel, strides: strides, dilations: dil), pads.count == 2 * k else {
            unsupported.append(unsupportedNode(n, "auto_pad with stride > 1 needs a static input shape; pads must have \(2 * k) values")); return
        }
        var attrs: [String: AttributeValue] = ["kernel": .ints(kernel), "strides": .ints(strides), "pads": .ints(pads),
                                               "ceilMode": .int(n.int("ceil_mode") ?? 0)]
        if n.opType == "MaxPool" {
            attrs["dilations"] = .ints(dil)
            emit(n, k == 1 ? .maxPool1d : .maxPool2d, inputs: [n.inputs[0]], outputs: [n.outputs[0]], attrs)
        } else {
            attrs["countIncludePad"] = .int(n.int("count_include_pad") ?? 0)
            emit(n, k == 1 ? .avgPool1d : .avgPool2d, inputs: [n.inputs[0]], outputs: [n.outputs[0]], attrs)
        }
    }

    // MARK: linear layers

    /// Gemm with constant B and α=β=1, transA=0 → linear (transB=0 weights are transposed to (out, in)
    /// and the transform recorded); anything else → matmul (+ add).
    mutating func mapGemm(_ n: ONNXNode) {
        let alpha = n.float("alpha") ?? 1, beta = n.float("beta") ?? 1
        let transA = n.int("transA") ?? 0, transB = n.int("transB") ?? 0
        guard let b = n.input(1), let w = constants[b], w.rank == 2, alpha == 1, beta == 1, transA == 0 else {
            unsupported.append(unsupportedNode(n, "only Gemm with a constant 2-D B, alpha = beta = 1 and transA = 0 is supported"))
            return
        }
        let outF = transB == 1 ? w.shape[0] : w.shape[1]
        if let c = n.input(2) {
            guard let ct = constants[c], ct.numel == outF, ct.rank <= 2 else {
                unsupported.append(unsupportedNode(n, "bias C is not a constant vector of \(outF)")); return
            }
        }
        var weight = b
        if transB == 0 {
            guard let name = transposedWeight(b, user: n) else {
                unsupported.append(unsupportedNode(n, "B with transB=0 is shared with other nodes")); return
            }
            weight = name
        }
        emit(n, .linear, inputs: [n.inputs[0], weight] + (n.input(2).map { [$0] } ?? []), outputs: [n.outputs[0]])
    }

    /// Transposes a 2-D constant used by exactly one node into PyTorch's (out, in) layout, recording the
    /// transform so export writes the original layout back.
    mutating func transposedWeight(_ name: String, user: ONNXNode) -> String? {
        guard let w = constants[name], w.rank == 2, consumers[name, default: 0] == 1, model.graph.outputs.allSatisfy({ $0.name != name }) else { return nil }
        let view = try? Tensor(dtype: w.dtype, shape: [w.shape[1], w.shape[0]], strides: [w.strides[1], w.strides[0]], offset: w.offset, storage: w.storage)
        guard let t = view?.contiguous() else { return nil }
        // contiguous() returns self only when already contiguous; a transposed view never is (unless a dim is 1).
        rewritten[name] = t.isContiguous && t.storage === w.storage ? Tensor(copying: t) : t
        layoutTransforms[name] = LayoutTransform(kind: "permute", perm: [1, 0], sourceShape: w.shape)
        return name
    }

    /// MatMul(x, W) with a constant 2-D W → linear; followed by Add(·, b) with a constant vector → its bias.
    mutating func mapMatMulAsLinear(_ n: ONNXNode) throws -> Bool {
        guard n.inputs.count == 2, let wName = n.input(1), let w = constants[wName], w.rank == 2, w.dtype.isFloatingPoint,
              constants[n.inputs[0]] == nil else { return false }
        guard let weight = transposedWeight(wName, user: n) else { return false }
        var inputs = [n.inputs[0], weight]
        var outputs = [n.outputs[0]]
        // Fold a following bias add when the MatMul output feeds only it.
        if consumers[n.outputs[0], default: 0] == 1,
           let (addIndex, add) = model.graph.nodes.enumerated().first(where: { $0.element.opType == "Add" && $0.element.inputs.contains(n.outputs[0]) }),
           add.inputs.count == 2 {
            let other = add.inputs[0] == n.outputs[0] ? add.inputs[1] : add.inputs[0]
            if let bias = constants[other], bias.rank == 1, bias.numel == w.shape[1], !absorbed.contains(addIndex) {
                inputs.append(other)
                outputs = [add.outputs[0]]
                absorbed.insert(addIndex)
            }
        }
        emit(n, .linear, inputs: inputs, outputs: outputs)
        return true
    }

    /// x · sigmoid(x) → silu; x · HardSigmoid(α=1/6, β=0.5)(x) → hardSwish (opset < 14 spelling).
    mutating func fuseActivationMul(_ n: ONNXNode) throws -> Bool {
        guard n.inputs.count == 2 else { return false }
        for (gateIdx, xIdx) in [(1, 0), (0, 1)] {
            let gate = n.inputs[gateIdx], x = n.inputs[xIdx]
            guard consumers[gate, default: 0] == 1,
                  let p = nodes.lastIndex(where: { $0.outputs.first == gate }), nodes[p].inputs.first == x else { continue }
            let prev = nodes[p]
            if prev.op == .sigmoid {
                nodes.remove(at: p)
                emit(n, .silu, inputs: [x], outputs: [n.outputs[0]])
                return true
            }
            if prev.op == .hardSigmoid, let a = prev.float("alpha"), abs(a - 1.0 / 6) < 1e-6, let b = prev.float("beta"), abs(b - 0.5) < 1e-6 {
                nodes.remove(at: p)
                emit(n, .hardSwish, inputs: [x], outputs: [n.outputs[0]])
                return true
            }
        }
        return false
    }

    // MARK: ops whose attributes became inputs

    mutating func mapClip(_ n: ONNXNode) {
        var lo: Double?, hi: Double?
        if opset < 11 {
            lo = n.float("min").map(Double.init)
            hi = n.float("max").map(Double.init)
        } else {
            // A bound computed at run time keeps both bounds as inputs: the folding pass turns them into
            // attributes once known, otherwise the kernel reads them when it runs.
            if [n.input(1), n.input(2)].contains(where: { $0.map { constants[$0] == nil } ?? false }) {
                var ins = [n.inputs[0], n.input(1) ?? "", n.input(2) ?? ""]
                while ins.last == "" { ins.removeLast() }
                emit(n, .clip, inputs: ins, outputs: [n.outputs[0]])
                return
            }
            if let m = n.input(1) { lo = constants[m]?.doubles().first }
            if let m = n.input(2) { hi = constants[m]?.doubles().first }
        }
        if lo == 0 && hi == 6 { emit(n, .relu6, inputs: [n.inputs[0]], outputs: [n.outputs[0]]); return }
        if lo == 0 && hi == nil { emit(n, .relu, inputs: [n.inputs[0]], outputs: [n.outputs[0]]); return }
        var attrs: [String: AttributeValue] = [:]
        if let lo { attrs["min"] = .float(lo) }
        if let hi { attrs["max"] = .float(hi) }
        emit(n, .clip, inputs: [n.inputs[0]], outputs: [n.outputs[0]], attrs)
    }

    /// ONNX Flatten(axis) is always 2-D: [prod(dims ..< axis), prod(dims axis...)]. Axis 1 is
    /// torch.flatten(x, 1); axis 0 is a reshape to [1, -1]; other axes (negative ones need the rank)
    /// flatten the tail and then the head.
    mutating func mapFlatten(_ n: ONNXNode) {
        var axis = n.int("axis") ?? 1
        if axis < 0 {
            guard let rank = n.input(0).flatMap({ shapes[$0]?.count ?? constants[$0]?.rank }) else {
                unsupported.append(unsupportedNode(n, "Flatten with a negative axis \(axis) on an input of unknown rank")); return
            }
            axis += rank
        }
        let y = n.outputs[0]
        switch axis {
        case ..<0: unsupported.append(unsupportedNode(n, "Flatten axis \(n.int("axis") ?? 1) is out of range"))
        case 0: emit(n, .reshape, inputs: [n.inputs[0]], outputs: [y], ["shape": .ints([1, -1]), "allowzero": .int(0)])
        case 1: emit(n, .flatten, inputs: [n.inputs[0]], outputs: [y], ["axis": .int(1)])
        default:
            let tail = y + "::tail"
            emit(n, .flatten, inputs: [n.inputs[0]], outputs: [tail], ["axis": .int(axis)])
            nodes[nodes.count - 1].name += "::tail"
            emit(n, .flatten, inputs: [tail], outputs: [y], ["axis": .int(0), "end": .int(axis - 1)])
        }
    }

    mutating func mapReshape(_ n: ONNXNode) {
        var shape: [Int]?
        if opset < 5 { shape = n.ints("shape") } else if let s = n.input(1), let t = constants[s] { shape = ints(t) }
        guard let shape else {
            // Shape computed at run time: the runtime reads it from the second input.
            emit(n, .reshape, outputs: [n.outputs[0]], ["allowzero": .int(n.int("allowzero") ?? 0)])
            return
        }
        emit(n, .reshape, inputs: [n.inputs[0]], outputs: [n.outputs[0]], ["shape": .ints(shape), "allowzero": .int(n.int("allowzero") ?? 0)])
    }

    mutating func mapSplit(_ n: ONNXNode) {
        var attrs: [String: AttributeValue] = ["axis": .int(n.int("axis") ?? 0)]
        let (split, dyn) = intsAttrOrInput(n, attr: "split", index: 1, movedAt: 13)
        if let split { attrs["split"] = .ints(split) }
        if let k = n.int("num_outputs") { attrs["numOutputs"] = .int(k) }
        // Sizes computed at run time stay an input, resolved once the input shapes are known.
        emit(n, .split, inputs: dyn ? Array(n.inputs.prefix(2)) : [n.inputs[0]], outputs: n.outputs, attrs)
    }

    mutating func mapReduce(_ n: ONNXNode) {
        // axes became an input in opset 13 for ReduceSum and in 18 for the others.
        let movedAt = n.opType == "ReduceSum" ? 13 : 18
        let (axes, dyn) = intsAttrOrInput(n, attr: "axes", index: 1, movedAt: movedAt)
        let keep = n.int("keepdims") ?? 1
        if dyn {
            // Axes computed at run time stay an input, resolved once the input shapes are known.
            guard (n.int("noop_with_empty_axes") ?? 0) == 0 else { unsupported.append(unsupportedNode(n, "noop_with_empty_axes with axes computed at run time")); return }
            let op: Op = n.opType == "ReduceMean" ? .reduceMean : n.opType == "ReduceSum" ? .reduceSum : .reduceMax
            emit(n, op, inputs: Array(n.inputs.prefix(2)), outputs: [n.outputs[0]], ["keepdims": .int(keep)])
            return
        }
        if (n.int("noop_with_empty_axes") ?? 0) == 1, axes?.isEmpty ?? true {
            emit(n, .identity, inputs: [n.inputs[0]], outputs: [n.outputs[0]]); return
        }
        let rank = n.input(0).flatMap { shapes[$0]?.count }
        let norm = axes.map { a in a.map { $0 < 0 ? $0 + (rank ?? 4) : $0 }.sorted() }
        if n.opType == "ReduceMean", keep == 1, let norm, norm == [2, 3], rank == nil || rank == 4,
           (rank == 4 || axes!.allSatisfy({ $0 >= 0 })) {
            emit(n, .globalAvgPool, inputs: [n.inputs[0]], outputs: [n.outputs[0]], ["keepdims": .int(1)]); return
        }
        let op: Op = n.opType == "ReduceMean" ? .reduceMean : n.opType == "ReduceSum" ? .reduceSum : .reduceMax
        emit(n, op, inputs: [n.inputs[0]], outputs: [n.outputs[0]], ["axes": .ints(axes ?? []), "keepdims": .int(keep)])
    }

    mutating func mapSlice(_ n: ONNXNode) {
        var attrs: [String: AttributeValue] = [:]
        if opset < 10 {
            guard let s = n.ints("starts"), let e = n.ints("ends") else { unsupported.append(unsupportedNode(n, "no starts/ends")); return }
            attrs["starts"] = .ints(s)
            attrs["ends"] = .ints(e)
            if let a = n.ints("axes") { attrs["axes"] = .ints(a) }
        } else {
            for (i, key) in ["starts", "ends", "axes", "steps"].enumerated() where i + 1 < n.inputs.count {
                guard let name = n.input(i + 1) else { continue }
                // Bounds from a shape chain (x[:, :seq]): kept as inputs, resolved once shapes are known.
                guard let t = constants[name] else { emit(n, .slice, outputs: [n.outputs[0]]); return }
                attrs[key] = .ints(ints(t))
            }
        }
        emit(n, .slice, inputs: [n.inputs[0]], outputs: [n.outputs[0]], attrs)
    }

    /// Pad at every opset: pads, value and (opset 18) axes are attributes when constant and stay
    /// inputs otherwise (resolved once known); modes constant, reflect, edge and wrap.
    mutating func mapPad(_ n: ONNXNode) {
        var attrs: [String: AttributeValue] = ["mode": .string(n.string("mode") ?? "constant")]
        if opset < 11 {
            guard let pads = n.ints("pads") ?? n.ints("paddings") else { unsupported.append(unsupportedNode(n, "no pads")); return }
            attrs["pads"] = .ints(pads)
            attrs["value"] = .float(Double(n.float("value") ?? 0))
            emit(n, .pad, inputs: [n.inputs[0]], outputs: [n.outputs[0]], attrs)
            return
        }
        var ins = [n.inputs[0], n.input(1) ?? "", n.input(2) ?? "", n.input(3) ?? ""]
        if ins[2].isEmpty { attrs["value"] = .float(0) }
        while ins.last == "" { ins.removeLast() }
        emit(n, .pad, inputs: ins, outputs: [n.outputs[0]], attrs)
    }
}

extension Tensor {
    /// An owned copy (used when a rewritten parameter must not share the source's storage).
    init(copying t: Tensor) {
        let c = t.withContiguousBytes { Storage(copying: $0) }
        self = try! Tensor(dtype: t.dtype, shape: t.shape, storage: c)  // same byte count: always fits
    }
}
