import OrderedCollections
import WconvFormats
import WconvTensor

extension Op {
    /// attrs kernel, strides (default: kernel), pads [top, left, bottom, right], dilations, ceilMode (0/1).
    public static let maxPool2d: Op = "maxPool2d"
    /// attrs kernel, strides (default: kernel), pads, dilations, ceilMode, countIncludePad (0/1).
    public static let avgPool2d: Op = "avgPool2d"
    /// 1-D max and average pooling over [N, C, L] (PyTorch MaxPool1d / AvgPool1d, ONNX MaxPool /
    /// AveragePool with one spatial dim); attrs as the 2-D op with one value each, pads [begin, end].
    /// Each runs as its 2-D op over [N, C, 1, L].
    public static let maxPool1d: Op = "maxPool1d", avgPool1d: Op = "avgPool1d"
    /// attrs outputSize [h, w].
    public static let adaptiveAvgPool2d: Op = "adaptiveAvgPool2d"
    /// Mean / max over the spatial dims of NC… (ONNX GlobalAveragePool / GlobalMaxPool); attrs
    /// keepdims (0/1).
    public static let globalAvgPool: Op = "globalAvgPool", globalMaxPool: Op = "globalMaxPool"
}

/// Pooling (docs/adding-an-op.md). Output sizes follow PyTorch's pooling_output_shape, including
/// ceil_mode's "last window starts inside the input or left padding" rule.
public enum PoolingOps {
    static let schemas: [OpSchema] = [pool(.maxPool2d, spatial: 2), pool(.avgPool2d, spatial: 2), pool(.maxPool1d, spatial: 1),
                                      pool(.avgPool1d, spatial: 1), adaptiveAvgPool2d, global(.globalAvgPool), global(.globalMaxPool)]

    /// Windowed pooling over `spatial` trailing dims (pads: all begins, then all ends).
    static func pool(_ op: Op, spatial n: Int) -> OpSchema {
        OpSchema(op, onnxExport: exportPool) { a in
            let x = try a.need(0)
            guard x.count == 2 + n else { throw a.fail(n == 2 ? "expects a 4-D NCHW input" : "expects a 3-D NCL input") }
            let k = try a.ints("kernel", n, default: 0)
            let s = a.node.ints("strides") == nil ? k : try a.ints("strides", n, default: 1)
            let p = try a.ints("pads", 2 * n, default: 0)
            let d = try a.ints("dilations", n, default: 1)
            // PyTorch: a pad may be at most half the effective kernel ((k − 1)·d + 1).
            for (i, pad) in p.enumerated() where k[i % n] >= 1 && d[i % n] >= 1 && pad > ((k[i % n] - 1) * d[i % n] + 1) / 2 {
                throw a.fail("pad \(pad) exceeds half the kernel \(k[i % n]) (PyTorch rejects this)")
            }
            let ceil = (a.int("ceilMode") ?? 0) != 0
            var out = [x[0], x[1]]
            for i in 0..<n {
                out.append(try a.window(x[2 + i], k: k[i], s: s[i], p0: p[i], p1: p[n + i], d: d[i], ceil: ceil,
                                        what: n == 1 ? "length" : ["height", "width"][i]))
            }
            return [out]
        }
    }

    static func exportPool(_ e: inout ONNXExportContext, _ n: GraphNode) {
        let oneD = n.op == .maxPool1d || n.op == .avgPool1d, k = oneD ? 1 : 2
        let kernel = n.ints("kernel") ?? [Int](repeating: 1, count: k)
        var attrs: OrderedDictionary<String, ONNXAttribute> = ["kernel_shape": .ints(kernel), "strides": .ints(n.ints("strides") ?? kernel),
                                                               "pads": .ints(n.ints("pads") ?? [Int](repeating: 0, count: 2 * k)),
                                                               "ceil_mode": .int(n.int("ceilMode") ?? 0)]
        if n.op == .maxPool2d || n.op == .maxPool1d {
            if let d = n.ints("dilations"), d.contains(where: { $0 != 1 }) { attrs["dilations"] = .ints(d) }
            e.add("MaxPool", n.name, [n.inputs[0]], [n.outputs[0]], attrs, rank: 2 + k)
        } else {
            attrs["count_include_pad"] = .int(n.int("countIncludePad") ?? 0)
            e.add("AveragePool", n.name, [n.inputs[0]], [n.outputs[0]], attrs, rank: 2 + k)
        }
    }

    static let adaptiveAvgPool2d = OpSchema(.adaptiveAvgPool2d) { a in
        let x = try a.need(0)
        guard x.count == 4 else { throw a.fail("expects a 4-D NCHW input") }
        let o = try a.ints("outputSize", 2, default: 1)
        guard o.allSatisfy({ $0 >= 1 }) else { throw a.fail("outputSize \(o) must be positive") }
        return [[x[0], x[1], o[0], o[1]]]
    }

    static func global(_ op: Op) -> OpSchema {
        OpSchema(op) { a in
            let x = try a.need(0)
            guard x.count >= 3 else { throw a.fail("expects N, C and spatial dims") }
            let keep = (a.int("keepdims") ?? 1) != 0
            return [keep ? [x[0], x[1]] + [Int](repeating: 1, count: x.count - 2) : [x[0], x[1]]]
        }
    }
}
