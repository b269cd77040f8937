import Foundation

/// `wconv bench conv`: conv forward per layer shape, today's im2col + BLAS kernel against oneDNN's
/// primitive in three layouts (NHWC and blocked with and without NCHW reorders), alternated within each repetition so load on a shared machine hits
/// them alike. Shapes are the distinct conv layers of the benched networks with their counts.
public enum ConvEngineBench {
    /// One conv layer shape: input C×H×W, O outputs, K×K kernel, stride, pad, groups; `count` layers
    /// of the network have it.
    public struct Shape: Sendable {
        public let model: String
        public let batch, c, h, o, k, s, p, groups, count: Int
        var geometry: ConvGeometry {
            ConvGeometry(n: batch, c: c, h: h, w: h, o: o, kh: k, kw: k, sh: s, sw: s, pt: p, pl: p, pb: p, pr: p, dh: 1, dw: 1, groups: groups)
        }
        /// Multiply-adds ×2 of one layer.
        public var flops: Double { let g = geometry; return 2 * Double(g.n * g.o * g.howo * g.kcol) }
        public var label: String {
            let kind = groups > 1 ? "dw \(k)×\(k)" : "\(k)×\(k)"
            return "\(c)→\(o) \(kind)\(s > 1 ? "/\(s)" : "") @\(h)"
        }
    }

    /// Milliseconds (median over repetitions) per variant, and what oneDNN ran.
    public struct Row: Sendable {
        public let shape: Shape
        /// im2col + BLAS GEMM (direct loop for depthwise): today's kernel.
        public let current: Double
        /// oneDNN on NCHW buffers (no reorder).
        public let nchw: Double
        /// oneDNN blocked, with NCHW → blocked → NCHW reorders around it.
        public let blockedReordered: Double
        /// oneDNN blocked, conv alone (what a chain of layers kept blocked costs per layer).
        public let blocked: Double
        /// oneDNN on NHWC buffers.
        public let nhwc: Double
        /// oneDNN NHWC with NCHW → NHWC → NCHW reorders around it.
        public let nhwcReordered: Double
        public let implementations: (nchw: String, blocked: String, nhwc: String)
        /// max |oneDNN NCHW − current| / max |current|.
        public let relativeError: Double
    }

    /// Conv layers of the benched networks (torchvision at 224, batch 16; the few-label ResNet
    /// [1,1,1,1] widths 8–64 at 32×32, batch 10). Tuples: C, H, O, K, stride, pad, groups, count.
    public static func shapes(_ model: String) -> [Shape]? {
        let t: [(Int, Int, Int, Int, Int, Int, Int, Int)]
        var batch = 16
        switch model {
        case "resnet50":
            t = [(3, 224, 64, 7, 2, 3, 1, 1), (64, 56, 64, 1, 1, 0, 1, 1), (64, 56, 64, 3, 1, 1, 1, 3), (64, 56, 256, 1, 1, 0, 1, 4),
                 (256, 56, 64, 1, 1, 0, 1, 2), (256, 56, 128, 1, 1, 0, 1, 1), (128, 56, 128, 3, 2, 1, 1, 1), (128, 28, 512, 1, 1, 0, 1, 4),
                 (256, 56, 512, 1, 2, 0, 1, 1), (512, 28, 128, 1, 1, 0, 1, 3), (128, 28, 128, 3, 1, 1, 1, 3), (512, 28, 256, 1, 1, 0, 1, 1),
                 (256, 28, 256, 3, 2, 1, 1, 1), (256, 14, 1024, 1, 1, 0, 1, 6), (512, 28, 1024, 1, 2, 0, 1, 1), (1024, 14, 256, 1, 1, 0, 1, 5),
                 (256, 14, 256, 3, 1, 1, 1, 5), (1024, 14, 512, 1, 1, 0, 1, 1), (512, 14, 512, 3, 2, 1, 1, 1), (512, 7, 2048, 1, 1, 0, 1, 3),
                 (1024, 14, 2048, 1, 2, 0, 1, 1), (2048, 7, 512, 1, 1, 0, 1, 2), (512, 7, 512, 3, 1, 1, 1, 2)]
        case "resnet18":
            t = [(3, 224, 64, 7, 2, 3, 1, 1), (64, 56, 64, 3, 1, 1, 1, 4), (64, 56, 128, 3, 2, 1, 1, 1), (128, 28, 128, 3, 1, 1, 1, 3),
                 (64, 56, 128, 1, 2, 0, 1, 1), (128, 28, 256, 3, 2, 1, 1, 1), (256, 14, 256, 3, 1, 1, 1, 3), (128, 28, 256, 1, 2, 0, 1, 1),
                 (256, 14, 512, 3, 2, 1, 1, 1), (512, 7, 512, 3, 1, 1, 1, 3), (256, 14, 512, 1, 2, 0, 1, 1)]
        case "efficientnet_b0":
            t = [(3, 224, 32, 3, 2, 1, 1, 1), (32, 112, 32, 3, 1, 1, 32, 1), (32, 1, 8, 1, 1, 0, 1, 1), (8, 1, 32, 1, 1, 0, 1, 1),
                 (32, 112, 16, 1, 1, 0, 1, 1), (16, 112, 96, 1, 1, 0, 1, 1), (96, 112, 96, 3, 2, 1, 96, 1), (96, 1, 4, 1, 1, 0, 1, 1),
                 (4, 1, 96, 1, 1, 0, 1, 1), (96, 56, 24, 1, 1, 0, 1, 1), (24, 56, 144, 1, 1, 0, 1, 2), (144, 56, 144, 3, 1, 1, 144, 1),
                 (144, 1, 6, 1, 1, 0, 1, 2), (6, 1, 144, 1, 1, 0, 1, 2), (144, 56, 24, 1, 1, 0, 1, 1), (144, 56, 144, 5, 2, 2, 144, 1),
                 (144, 28, 40, 1, 1, 0, 1, 1), (40, 28, 240, 1, 1, 0, 1, 2), (240, 28, 240, 5, 1, 2, 240, 1), (240, 1, 10, 1, 1, 0, 1, 2),
                 (10, 1, 240, 1, 1, 0, 1, 2), (240, 28, 40, 1, 1, 0, 1, 1), (240, 28, 240, 3, 2, 1, 240, 1), (240, 14, 80, 1, 1, 0, 1, 1),
                 (80, 14, 480, 1, 1, 0, 1, 3), (480, 14, 480, 3, 1, 1, 480, 2), (480, 1, 20, 1, 1, 0, 1, 3), (20, 1, 480, 1, 1, 0, 1, 3),
                 (480, 14, 80, 1, 1, 0, 1, 2), (480, 14, 480, 5, 1, 2, 480, 1), (480, 14, 112, 1, 1, 0, 1, 1), (112, 14, 672, 1, 1, 0, 1, 3),
                 (672, 14, 672, 5, 1, 2, 672, 2), (672, 1, 28, 1, 1, 0, 1, 3), (28, 1, 672, 1, 1, 0, 1, 3), (672, 14, 112, 1, 1, 0, 1, 2),
                 (672, 14, 672, 5, 2, 2, 672, 1), (672, 7, 192, 1, 1, 0, 1, 1), (192, 7, 1152, 1, 1, 0, 1, 4), (1152, 7, 1152, 5, 1, 2, 1152, 3),
                 (1152, 1, 48, 1, 1, 0, 1, 4), (48, 1, 1152, 1, 1, 0, 1, 4), (1152, 7, 192, 1, 1, 0, 1, 3), (1152, 7, 1152, 3, 1, 1, 1152, 1),
                 (1152, 7, 320, 1, 1, 0, 1, 1), (320, 7, 1280, 1, 1, 0, 1, 1)]
        case "fewlabel":
            batch = 10
            t = [(3, 32, 8, 7, 2, 3, 1, 1), (8, 8, 8, 3, 1, 1, 1, 2), (8, 8, 16, 3, 2, 1, 1, 1), (16, 4, 16, 3, 1, 1, 1, 1), (8, 8, 16, 1, 2, 0, 1, 1),
                 (16, 4, 32, 3, 2, 1, 1, 1), (32, 2, 32, 3, 1, 1, 1, 1), (16, 4, 32, 1, 2, 0, 1, 1),
                 (32, 2, 64, 3, 2, 1, 1, 1), (64, 1, 64, 3, 1, 1, 1, 1), (32, 2, 64, 1, 2, 0, 1, 1)]
        default: return nil
        }
        return t.map { Shape(model: model, batch: batch, c: $0.0, h: $0.1, o: $0.2, k: $0.3, s: $0.4, p: $0.5, groups: $0.6, count: $0.7) }
    }

    public static let models = ["resnet50", "resnet18", "efficientnet_b0", "fewlabel"]

    /// Times every shape: `reps` rounds, each running every variant `inner` times back to back
    /// (after one warm-up call each); the median round per variant, in ms per call.
    public static func run(_ shapes: [Shape], reps: Int, threads: Int, progress: (Row) -> Void = { _ in }) throws -> [Row] {
        try RuntimeThreads.configure(threads)
        guard DNNL.isEnabled else { throw DNNLUnavailable() }
        var rows: [Row] = []
        for s in shapes {
            let g = s.geometry
            let nx = g.n * g.c * g.hw, ny = g.n * g.o * g.howo, nw = g.o * g.kcol
            let x = UnsafeMutablePointer<Float>.allocate(capacity: nx), y = UnsafeMutablePointer<Float>.allocate(capacity: ny)
            let y2 = UnsafeMutablePointer<Float>.allocate(capacity: ny)
            let w = UnsafeMutablePointer<Float>.allocate(capacity: nw), b = UnsafeMutablePointer<Float>.allocate(capacity: g.o)
            defer { x.deallocate(); y.deallocate(); y2.deallocate(); w.deallocate(); b.deallocate() }
            var rng = SplitMix64(seed: 7)
            for i in 0..<nx { x[i] = rng.nextFloat() * 2 - 1 }
            for i in 0..<nw { w[i] = (rng.nextFloat() * 2 - 1) / Float(g.kcol).squareRoot() }
            for i in 0..<g.o { b[i] = rng.nextFloat() - 0.5 }
            let ws = Workspace(), st = Workspace()
            let nchw = try DNNLConvolution(g, activation: .relu, hasBias: true, layout: .nchw)
            let blocked = try DNNLConvolution(g, activation: .relu, hasBias: true, layout: .blocked)
            let nhwc = try DNNLConvolution(g, activation: .relu, hasBias: true, layout: .nhwc, nchwInput: false, nchwOutput: false)
            let nhwcRO = try DNNLConvolution(g, activation: .relu, hasBias: true, layout: .nhwc)
            // Staging of the NCHW reorders, and of Winograd's blocked layout (also behind NHWC buffers).
            let scratch = UnsafeMutableRawPointer.allocate(byteCount: nhwcRO.srcStagingBytes + nhwcRO.dstStagingBytes + 128, alignment: 64)
            let nhwcScratch = UnsafeMutableRawPointer.allocate(byteCount: nhwc.srcStagingBytes + nhwc.dstStagingBytes + 128, alignment: 64)
            defer { scratch.deallocate(); nhwcScratch.deallocate() }
            let variants: [() -> Void] = [
                { conv2dForward(x, g, weight: w, bias: b, activation: .relu, y, workspace: ws, staging: st) },
                { nchw.forward(x, weight: w, bias: b, y2, scratch: nil) },
                { blocked.forward(x, weight: w, bias: b, y2, scratch: nil) },
                { blocked.forwardBlockedOnly(weight: w, bias: b) },
                { nhwc.forward(x, weight: w, bias: b, y2, scratch: nhwcScratch) },
                { nhwcRO.forward(x, weight: w, bias: b, y2, scratch: scratch) },
            ]
            // Enough calls per round for ~20 ms of work at 20 GFLOP/s.
            let inner = max(1, min(50, Int(20e-3 * 20e9 / max(s.flops, 1))))
            var times = [[Double]](repeating: [], count: variants.count)
            for v in variants { v() }
            for _ in 0..<max(1, reps) {
                for (i, v) in variants.enumerated() {
                    let t0 = DispatchTime.now().uptimeNanoseconds
                    for _ in 0..<inner { v() }
                    times[i].append(Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e6 / Double(inner))
                }
            }
            // Accuracy: oneDNN NCHW against today's kernel on the same input.
            variants[0](); variants[1]()
            var maxRef: Float = 0, maxDiff: Float = 0
            for i in 0..<ny { maxRef = max(maxRef, abs(y[i])); maxDiff = max(maxDiff, abs(y[i] - y2[i])) }
            let med = times.map { t in t.sorted()[t.count / 2] }
            let row = Row(shape: s, current: med[0], nchw: med[1], blockedReordered: med[2], blocked: med[3], nhwc: med[4], nhwcReordered: med[5],
                          implementations: (nchw.implementation, blocked.implementation + " (" + blocked.reorderImplementations + ")", nhwc.implementation + " (" + nhwcRO.reorderImplementations + ")"),
                          relativeError: Double(maxDiff / max(maxRef, 1e-30)))
            rows.append(row)
            progress(row)
        }
        return rows
    }
}
