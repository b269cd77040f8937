import OrderedCollections
import WconvFormats
import WconvTensor

extension Op {
    /// inputs [x, weight(O, I/group, kH, kW), bias?]; attrs strides, pads, dilations, group.
    /// Spatial attributes are (height, width); `pads` is [top, left, bottom, right] so asymmetric
    /// 'same' padding stays exact.
    public static let conv2d: Op = "conv2d"
    /// 1-D convolution (PyTorch Conv1d, ONNX Conv over [N, C, L]). inputs [x(N, C, L), weight(O, C/group, K),
    /// bias?]; attrs strides [s], dilations [d], pads [begin, end], group. It is conv2d over
    /// [N, C, 1, L] (the same memory), so it runs and differentiates through conv2d's kernels.
    public static let conv1d: Op = "conv1d"
    /// Transposed 2-D convolution (PyTorch ConvTranspose2d, ONNX ConvTranspose). inputs [x,
    /// weight(C_in, C_out/group, kH, kW), bias?]; attrs strides, dilations, group, outputPadding [h, w],
    /// and the padding as `pads` [top, left, bottom, right], or `autoPad` ("SAME_UPPER", "SAME_LOWER",
    /// "VALID") and/or `outputShape` [h, w] from which pads follow as onnxruntime derives them.
    /// Output size: (in − 1)·stride − pads + dilation·(k − 1) + outputPadding + 1.
    public static let convTranspose2d: Op = "convTranspose2d"
    /// Transposed 1-D convolution (PyTorch ConvTranspose1d, ONNX ConvTranspose over [N, C, L]).
    /// inputs [x, weight(C_in, C_out/group, K), bias?]; attrs as convTranspose2d with one value per
    /// spatial attribute (pads [begin, end], outputShape [L]). It is convTranspose2d over [N, C, 1, L].
    public static let convTranspose1d: Op = "convTranspose1d"
}

/// The padding and output shape of a transposed convolution, read once for the shape rule and the
/// runtime's kernel selection.
public struct ConvTransposeGeometry: Equatable {
    /// [top, left, bottom, right]
    public var pads: [Int]
    public var outShape: [Int]
}

/// Convolutions (docs/adding-an-op.md).
public enum ConvolutionOps {
    static let schemas: [OpSchema] = [conv1d, conv2d, convTranspose1d, convTranspose2d]

    /// A convTranspose1d node read as convTranspose2d over [N, C, 1, L]: every spatial attribute
    /// gains a leading height entry (stride, dilation 1; no padding; output height 1).
    public static func liftedTo2d(_ node: GraphNode) -> GraphNode {
        var n = node
        n.op = .convTranspose2d
        for (key, h) in [("strides", 1), ("dilations", 1), ("outputPadding", 0)] {
            if let v = node.ints(key), v.count == 1 { n.attributes[key] = .ints([h] + v) }
        }
        if let p = node.ints("pads"), p.count == 2 { n.attributes["pads"] = .ints([0, p[0], 0, p[1]]) }
        if let o = node.ints("outputShape"), let l = o.last, o.count == 1 || o.count == 3 { n.attributes["outputShape"] = .ints([1, l]) }
        return n
    }

    /// The geometry of a transposed convolution over 1 or 2 spatial dims, in its own rank.
    public static func convTransposeGeometry(_ node: GraphNode, x: [Int], w: [Int], spatial k: Int, fail: (String) -> Error) throws -> ConvTransposeGeometry {
        if k == 2 { return try convTransposeGeometry(node, x: x, w: w, fail: fail) }
        guard x.count == 3 else { throw fail("expects a 3-D NCL input") }
        guard w.count == 3 else { throw fail("expects a 3-D weight (C_in, C_out/group, K)") }
        for key in ["strides", "dilations", "outputPadding"] where (node.ints(key)?.count ?? 1) != 1 { throw fail("\(key) needs 1 value") }
        guard (node.ints("pads")?.count ?? 2) == 2 else { throw fail("pads needs 2 values") }
        var t = try convTransposeGeometry(liftedTo2d(node), x: [x[0], x[1], 1, x[2]], w: [w[0], w[1], 1, w[2]], fail: fail)
        t.pads = [t.pads[1], t.pads[3]]; t.outShape.remove(at: 2)
        return t
    }

    public static func convTransposeGeometry(_ node: GraphNode, x: [Int], w: [Int], fail: (String) -> Error) throws -> ConvTransposeGeometry {
        guard x.count == 4 else { throw fail("expects a 4-D NCHW input") }
        guard w.count == 4, w.allSatisfy({ $0 > 0 && $0 < 1 << 20 }) else { throw fail("expects a 4-D weight (C_in, C_out/group, kH, kW)") }
        let g = node.int("group") ?? 1
        guard g >= 1, x[1] == w[0], w[0] % g == 0 else {
            throw fail("input has \(x[1]) channels but the weight \(w) with group \(g) expects \(w[0]) (divisible by the group)")
        }
        guard let s = node.ints("strides", count: 2, default: 1), let d = node.ints("dilations", count: 2, default: 1),
              let op = node.ints("outputPadding", count: 2, default: 0), let given = node.ints("pads", count: 4, default: 0) else {
            throw fail("strides, dilations and outputPadding need 2 values, pads 4")
        }
        guard (s + d).allSatisfy({ $0 >= 1 && $0 < 1 << 20 }), (op + given).allSatisfy({ $0 >= 0 && $0 < 1 << 30 }) else {
            throw fail("strides \(s) and dilations \(d) must be positive, pads \(given) and output padding \(op) non-negative")
        }
        // The kernel runs as the adjoint of a convolution, which needs the output padding below the stride.
        guard op[0] < s[0], op[1] < s[1] else { throw fail("output padding \(op) must be smaller than the stride \(s)") }
        let auto = node.string("autoPad") ?? "NOTSET"
        var outputShape = node.ints("outputShape")
        if let o = outputShape, o.count == 4 { outputShape = Array(o.suffix(2)) }
        guard outputShape == nil || outputShape!.count == 2 else { throw fail("output_shape \(node.ints("outputShape") ?? []) needs 2 spatial sizes") }
        var pads = given, out = [x[0], w[1] * g, 0, 0]
        for i in 0..<2 {
            let natural = (x[2 + i] - 1) * s[i] + op[i] + (w[2 + i] - 1) * d[i] + 1
            var target: Int? = outputShape?[i]
            if target == nil && (auto == "SAME_UPPER" || auto == "SAME_LOWER") { target = x[2 + i] * s[i] }
            if let target {
                // onnxruntime: total padding max(0, natural − target), the odd one at the end for
                // SAME_UPPER and at the start otherwise.
                let total = max(0, natural - target)
                guard natural - total == target else {
                    throw fail("output size \(target) is larger than the \(natural) this transposed convolution produces")
                }
                let head = auto == "SAME_UPPER" ? total / 2 : total - total / 2
                pads[i] = head; pads[2 + i] = total - head
            } else if auto == "VALID" {
                pads[i] = 0; pads[2 + i] = 0
            }
            out[2 + i] = natural - pads[i] - pads[2 + i]
            guard out[2 + i] >= 1 else { throw fail("pads \(pads) leave no output along spatial dim \(i)") }
        }
        return ConvTransposeGeometry(pads: pads, outShape: out)
    }

    static let convTranspose2d = OpSchema(.convTranspose2d, onnx: ["ConvTranspose": importConvTranspose], onnxExport: exportConvTranspose) { a in
        [try convTransposeShape(a, spatial: 2)]
    }
    static let convTranspose1d = OpSchema(.convTranspose1d, onnxExport: exportConvTranspose) { a in [try convTransposeShape(a, spatial: 1)] }

    static func convTransposeShape(_ a: ShapeArgs, spatial k: Int) throws -> [Int] {
        let geometry = try convTransposeGeometry(a.node, x: try a.need(0), w: try a.need(1), spatial: k, fail: a.fail)
        if let b = a.optional(2), b != [geometry.outShape[1]] { throw a.fail("bias shape \(b) should be [\(geometry.outShape[1])]") }
        return geometry.outShape
    }

    static func importConvTranspose(_ ctx: inout ONNXBuildContext, _ n: ONNXNode) throws {
        guard let wName = n.input(1), let ws = ctx.constants[wName]?.shape ?? ctx.shapes[wName], ws.count == 3 || ws.count == 4 else {
            ctx.unsupported.append(ctx.unsupportedNode(n, "only 1-D and 2-D transposed convolution with a known weight shape is supported"))
            return
        }
        let k = ws.count - 2, kernel = Array(ws.suffix(k)), ones = [Int](repeating: 1, count: k), zeros = [Int](repeating: 0, count: k)
        if let given = n.ints("kernel_shape"), given != kernel {
            ctx.unsupported.append(ctx.unsupportedNode(n, "kernel_shape \(given) differs from the weight's \(ws)")); return
        }
        var attrs: [String: AttributeValue] = ["strides": .ints(n.ints("strides") ?? ones), "dilations": .ints(n.ints("dilations") ?? ones),
                                               "group": .int(n.int("group") ?? 1), "outputPadding": .ints(n.ints("output_padding") ?? zeros),
                                               "pads": .ints(n.ints("pads") ?? zeros + zeros)]
        if let a = n.string("auto_pad"), a != "NOTSET" { attrs["autoPad"] = .string(a) }
        if let o = n.ints("output_shape") { attrs["outputShape"] = .ints(o) }
        ctx.emit(n, k == 1 ? .convTranspose1d : .convTranspose2d, inputs: Array(n.inputs.prefix(3)), outputs: [n.outputs[0]], attrs)
    }

    static func exportConvTranspose(_ e: inout ONNXExportContext, _ n: GraphNode) {
        let k = n.op == .convTranspose1d ? 1 : 2, ones = [Int](repeating: 1, count: k), zeros = [Int](repeating: 0, count: k)
        guard n.inputs.count >= 2, let w = e.graph.parameters[n.inputs[1]], w.rank == 2 + k else {
            e.problems.append("\(n.name) (\(n.op)): weight is not a \(2 + k)-D parameter"); return
        }
        var attrs: OrderedDictionary<String, ONNXAttribute> = [
            "kernel_shape": .ints(Array(w.shape.suffix(k))), "strides": .ints(n.ints("strides") ?? ones),
            "dilations": .ints(n.ints("dilations") ?? ones), "group": .int(n.int("group") ?? 1),
            "output_padding": .ints(n.ints("outputPadding") ?? zeros),
        ]
        if let a = n.string("autoPad") { attrs["auto_pad"] = .string(a) } else { attrs["pads"] = .ints(n.ints("pads") ?? zeros + zeros) }
        if let o = n.ints("outputShape") { attrs["output_shape"] = .ints(o) }
        e.add("ConvTranspose", n.name, n.inputs, [n.outputs[0]], attrs, rank: 2 + k)
    }

    static let conv2d = OpSchema(.conv2d) { a in [try convShape(a, spatial: 2)] }

    // 2-D Conv is still mapped by the ONNX builder (`mapConv`); this importer takes every Conv and
    // hands it on unless its weight is 3-D.
    static let conv1d = OpSchema(.conv1d, onnx: ["Conv": importConv], onnxExport: exportConv1d) { a in [try convShape(a, spatial: 1)] }

    /// Output shape of a convolution over `spatial` trailing dims (pads: all begins, then all ends).
    static func convShape(_ a: ShapeArgs, spatial k: Int) throws -> [Int] {
        let x = try a.need(0), w = try a.need(1)
        guard x.count == 2 + k else { throw a.fail(k == 2 ? "expects a 4-D NCHW input" : "expects a 3-D NCL input") }
        guard w.count == 2 + k else { throw a.fail(k == 2 ? "expects a 4-D OIHW weight" : "expects a 3-D (O, C/group, K) weight") }
        let g = a.int("group") ?? 1
        let (expected, overflow) = w[1].multipliedReportingOverflow(by: g)
        guard g >= 1, !overflow, x[1] == expected, w[0] % g == 0 else {
            throw a.fail("input has \(x[1]) channels but weight \(w) with group \(g) expects \(overflow ? "an impossible number of" : String(expected)) (and \(w[0]) output channels divisible by the group)")
        }
        if let b = a.optional(2), b != [w[0]] { throw a.fail("bias shape \(b) should be [\(w[0])]") }
        let s = try a.ints("strides", k, default: 1), d = try a.ints("dilations", k, default: 1)
        let p = try a.ints("pads", 2 * k, default: 0)
        var out = [x[0], w[0]]
        for i in 0..<k {
            out.append(try a.window(x[2 + i], k: w[2 + i], s: s[i], p0: p[i], p1: p[k + i], d: d[i], ceil: false,
                                    what: k == 1 ? "length" : ["height", "width"][i]))
        }
        return out
    }

    static func importConv(_ ctx: inout ONNXBuildContext, _ n: ONNXNode) throws {
        guard let wName = n.input(1), let ws = ctx.constants[wName]?.shape ?? ctx.shapes[wName], ws.count == 3 else {
            ctx.mapConv(n); return
        }
        let kernel = n.ints("kernel_shape") ?? [ws[2]]
        let strides = n.ints("strides") ?? [1], dil = n.ints("dilations") ?? [1]
        guard kernel == [ws[2]], strides.count == 1, dil.count == 1, (strides + dil).allSatisfy({ $0 > 0 && $0 <= 1 << 20 }) else {
            ctx.unsupported.append(ctx.unsupportedNode(n, "a 1-D convolution needs kernel_shape [\(ws[2])] (the weight's) and one positive stride and dilation"))
            return
        }
        guard let pads = ctx.spatialPads(n, kernel: kernel, strides: strides, dilations: dil), pads.count == 2 else {
            ctx.unsupported.append(ctx.unsupportedNode(n, "auto_pad \(n.string("auto_pad") ?? "") with stride > 1 needs a static input shape; pads must have 2 values"))
            return
        }
        ctx.emit(n, .conv1d, inputs: Array(n.inputs.prefix(3)), outputs: [n.outputs[0]],
                 ["strides": .ints(strides), "pads": .ints(pads), "dilations": .ints(dil), "group": .int(n.int("group") ?? 1)])
    }

    static func exportConv1d(_ e: inout ONNXExportContext, _ n: GraphNode) {
        guard n.inputs.count >= 2, let w = e.graph.parameters[n.inputs[1]], w.rank == 3 else {
            e.problems.append("\(n.name) (conv1d): weight is not a 3-D parameter"); return
        }
        e.add("Conv", n.name, n.inputs, [n.outputs[0]], ["kernel_shape": .ints([w.shape[2]]), "strides": .ints(n.ints("strides") ?? [1]),
                                                     "pads": .ints(n.ints("pads") ?? [0, 0]), "dilations": .ints(n.ints("dilations") ?? [1]),
                                                     "group": .int(n.int("group") ?? 1)], rank: 3)
    }
}
