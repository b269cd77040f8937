/// conv2d on 1×1 maps with a 1×1 kernel (squeeze-excite's two FC layers in EfficientNet and
/// MobileNetV3): a linear layer in disguise, run as one GEMM over the batch, y[N,O] = x[N,C]·Wᵀ + b,
/// then the fused activation. NCHW and NHWC are the same bytes for a 1×1 map, so it fits a plan of
/// either layout.
///
/// Why not oneDNN: oneDNN 2.6's brgconv_1x1 takes 0.05–0.09 ms per call on these shapes (one thread
/// or two alike) against 0.008–0.022 ms in PyTorch's newer oneDNN; EfficientNet-B0 b16 has 32 of
/// them, 2.9 ms a batch. The whole set is ≈ 10 M multiply-adds, so OpenBLAS runs them on the
/// calling thread (its thread pool would wake and sync for each).
struct MapVectorConv2d: StepKernel {
    /// The same arithmetic as a linear layer's (rows = images, in = channels, out = filters; OIHW
    /// weights of a 1×1 kernel are the [out, in] matrix).
    let linear: Linear

    /// The kernel for `g` in an inference plan, or nil when `g` is not a 1×1 conv of a 1×1 map
    /// (or the plan computes convolutions in bf16, or adds a residual in the conv).
    static func select(_ r: KernelRequest, _ g: ConvGeometry) -> MapVectorConv2d? {
        guard !r.training, !r.layout.bf16, g.h == 1, g.w == 1, g.kh == 1, g.kw == 1, g.groups == 1,
              g.pt == 0, g.pl == 0, g.pb == 0, g.pr == 0, g.sh == 1, g.sw == 1,
              r.inputShapes.count <= 3 else { return nil }
        return MapVectorConv2d(linear: Linear(rows: g.n, inF: g.c, outF: g.o))
    }

    func extents(inputs: [Int], outputs: [Int]) -> StepExtents { linear.extents(inputs: inputs, outputs: outputs) }

    func forward(_ c: StepContext) throws { try withSingleThreadedBLAS { try linear.forward(c) } }

    func backward(_ c: BackwardContext) throws { try linear.backward(c) }
}
