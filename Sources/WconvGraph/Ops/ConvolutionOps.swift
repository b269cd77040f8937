import WconvTensor

extension Op {
    /// inputs [x, weight(O, I/group, kH, kW), bias?]; attrs strides, pads, dilations, group.
    /// Spatial attributes are (height, width); `pads` is [top, left, bottom, right] so asymmetric
    /// 'same' padding stays exact.
    public static let conv2d: Op = "conv2d"
}

/// Convolutions (docs/adding-an-op.md).
public enum ConvolutionOps {
    static let schemas: [OpSchema] = [conv2d]

    static let conv2d = OpSchema(.conv2d) { a in
        let x = try a.need(0), w = try a.need(1)
        guard x.count == 4 else { throw a.fail("expects a 4-D NCHW input") }
        guard w.count == 4 else { throw a.fail("expects a 4-D OIHW weight") }
        let g = a.int("group") ?? 1
        let (expected, overflow) = w[1].multipliedReportingOverflow(by: g)
        guard g >= 1, !overflow, x[1] == expected, w[0] % g == 0 else {
            throw a.fail("input has \(x[1]) channels but weight \(w) with group \(g) expects \(overflow ? "an impossible number of" : String(expected)) (and \(w[0]) output channels divisible by the group)")
        }
        if let b = a.optional(2), b != [w[0]] { throw a.fail("bias shape \(b) should be [\(w[0])]") }
        let s = try a.ints("strides", 2, default: 1), d = try a.ints("dilations", 2, default: 1)
        let p = try a.ints("pads", 4, default: 0)
        let h = try a.window(x[2], k: w[2], s: s[0], p0: p[0], p1: p[2], d: d[0], ceil: false, what: "height")
        let wd = try a.window(x[3], k: w[3], s: s[1], p0: p[1], p1: p[3], d: d[1], ceil: false, what: "width")
        return [[x[0], w[0], h, wd]]
    }
}
