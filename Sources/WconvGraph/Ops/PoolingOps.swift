import WconvTensor

extension Op {
    /// attrs kernel, strides (default: kernel), pads [top, left, bottom, right], dilations, ceilMode (0/1).
    public static let maxPool2d: Op = "maxPool2d"
    /// attrs kernel, strides (default: kernel), pads, dilations, ceilMode, countIncludePad (0/1).
    public static let avgPool2d: Op = "avgPool2d"
    /// attrs outputSize [h, w].
    public static let adaptiveAvgPool2d: Op = "adaptiveAvgPool2d"
    /// Mean over H and W; attrs keepdims (0/1).
    public static let globalAvgPool: Op = "globalAvgPool"
    /// Max over the spatial dims of NC… (ONNX GlobalMaxPool); attrs keepdims.
    public static let globalMaxPool: Op = "globalMaxPool"
}

/// Pooling (docs/adding-an-op.md). Output sizes follow PyTorch's pooling_output_shape, including
/// ceil_mode's "last window starts inside the input or left padding" rule.
public enum PoolingOps {
    static let schemas: [OpSchema] = [pool(.maxPool2d), pool(.avgPool2d), adaptiveAvgPool2d, global(.globalAvgPool), global(.globalMaxPool)]

    static func pool(_ op: Op) -> OpSchema {
        OpSchema(op) { a in
            let x = try a.need(0)
            guard x.count == 4 else { throw a.fail("expects a 4-D NCHW input") }
            let k = try a.ints("kernel", 2, default: 0)
            let s = a.node.ints("strides") == nil ? k : try a.ints("strides", 2, default: 1)
            let p = try a.ints("pads", 4, default: 0)
            let d = try a.ints("dilations", 2, default: 1)
            // PyTorch: a pad may be at most half the effective kernel ((k − 1)·d + 1).
            for (i, pad) in p.enumerated() where k[i % 2] >= 1 && d[i % 2] >= 1 && pad > ((k[i % 2] - 1) * d[i % 2] + 1) / 2 {
                throw a.fail("pad \(pad) exceeds half the kernel \(k[i % 2]) (PyTorch rejects this)")
            }
            let ceil = (a.int("ceilMode") ?? 0) != 0
            let h = try a.window(x[2], k: k[0], s: s[0], p0: p[0], p1: p[2], d: d[0], ceil: ceil, what: "height")
            let w = try a.window(x[3], k: k[1], s: s[1], p0: p[1], p1: p[3], d: d[1], ceil: ceil, what: "width")
            return [[x[0], x[1], h, w]]
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
