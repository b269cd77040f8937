import Foundation
import WconvGraph
import WconvTensor

/// Pooling (docs/adding-an-op.md); window geometry with PyTorch's rules (Kernels/Pooling.swift).
enum PoolingKernels {
    static let all: [OpKernels] = [pool(.maxPool2d, spatial: 2), pool(.avgPool2d, spatial: 2), pool(.maxPool1d, spatial: 1),
                                   pool(.avgPool1d, spatial: 1), adaptiveAvgPool2d, globalAvgPool]

    /// 1-D pooling runs as 2-D pooling over [N, C, 1, L] with a 1 × k window (the same memory).
    static func pool(_ op: Op, spatial k: Int) -> OpKernels {
        OpKernels(op) { r in
            var x = try r.shape(0)
            guard x.count == 2 + k else { throw r.fail("expects an input of rank \(2 + k)") }
            var kernel = try r.attr("kernel", k, 0)
            var st = r.node.ints("strides") == nil ? kernel : try r.attr("strides", k, 1)
            var p = try r.attr("pads", 2 * k, 0), d = try r.attr("dilations", k, 1)
            if k == 1 {
                x.insert(1, at: 2); kernel.insert(1, at: 0); st.insert(1, at: 0); d.insert(1, at: 0); p = [0, p[0], 0, p[1]]
            }
            let g = PoolGeometry(n: x[0], c: x[1], h: x[2], w: x[3], kernel: kernel, strides: st, pads: p, dilations: d,
                                 ceilMode: (r.node.int("ceilMode") ?? 0) != 0, countIncludePad: (r.node.int("countIncludePad") ?? 1) != 0)
            try r.agree(k == 1 ? [g.n, g.c, g.wo] : [g.n, g.c, g.ho, g.wo])
            // Between oneDNN convolutions of an inference plan the activations are NHWC (DNNLLayoutPlan).
            if r.layout.nhwcInput && op == .maxPool2d { return NHWCKernels.MaxPool(geometry: g, bf16: r.layout.bf16Input) }
            return Pool(max: op == .maxPool2d || op == .maxPool1d, geometry: g)
        }
    }

    static let adaptiveAvgPool2d = OpKernels(.adaptiveAvgPool2d) { r in
        let x = try r.shape(0)
        if r.layout.nhwcInput { return NHWCKernels.GlobalAvgPool(n: x[0], c: x[1], hw: x[2] * x[3], bf16: r.layout.bf16Input) }
        return AdaptiveAvgPool(windows: AdaptiveWindows(planes: x[0] * x[1], h: x[2], w: x[3], ho: r.outShape[2], wo: r.outShape[3]))
    }

    /// Any number of spatial dims: one plane of all spatial elements per (n, c).
    static let globalAvgPool = OpKernels(.globalAvgPool) { r in
        let x = try r.shape(0)
        if r.layout.nhwcInput { return NHWCKernels.GlobalAvgPool(n: x[0], c: x[1], hw: x.dropFirst(2).reduce(1, *), bf16: r.layout.bf16Input) }
        return AdaptiveAvgPool(windows: AdaptiveWindows(planes: x[0] * x[1], h: x.dropFirst(2).reduce(1, *), w: 1, ho: 1, wo: 1))
    }
}

struct Pool: StepKernel {
    let max: Bool
    let geometry: PoolGeometry
    func extents(inputs: [Int], outputs: [Int]) -> StepExtents { geometry.extents(inputs: inputs, outputs: outputs) }
    func forward(_ c: StepContext) throws {
        if max { maxPoolForward(c.input(0)!, geometry, c.output()) } else { avgPoolForward(c.input(0)!, geometry, c.output()) }
    }
    func backward(_ c: BackwardContext) throws {
        guard let dy = c.outputGradient(), let d = c.inputGradient(0) else { return }
        if max { maxPoolBackward(c.input(0)!, geometry, dy: dy, dx: d) } else { avgPoolBackward(geometry, dy: dy, dx: d) }
    }
}

struct AdaptiveAvgPool: StepKernel {
    let windows: AdaptiveWindows
    func extents(inputs: [Int], outputs: [Int]) -> StepExtents { windows.extents(inputs: inputs, outputs: outputs) }
    func forward(_ c: StepContext) throws { avgPoolForward(c.input(0)!, windows, c.output()) }
    func backward(_ c: BackwardContext) throws {
        guard let dy = c.outputGradient(), let d = c.inputGradient(0) else { return }
        avgPoolBackward(windows, dy: dy, dx: d)
    }
}
