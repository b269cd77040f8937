import Foundation
import WconvGraph
import WconvTensor
import XCTest
@testable import WconvRuntime

/// Timings, run only with RUN_BENCHMARKS=1 (and best with `swift test -c release`).
final class BenchmarkTests: XCTestCase {
    override func setUpWithError() throws {
        try XCTSkipUnless(ProcessInfo.processInfo.environment["RUN_BENCHMARKS"] == "1", "set RUN_BENCHMARKS=1")
    }

    func time(_ reps: Int, _ body: () throws -> Void) rethrows -> Double {
        try body()
        let t0 = Date()
        for _ in 0..<reps { try body() }
        return Date().timeIntervalSince(t0) / Double(reps)
    }

    func testGemmAndConvAnchors() throws {
        try RuntimeThreads.configure(2)
        for (m, n, k) in [(256, 3136, 576), (512, 784, 4608), (64, 50176, 147)] {
            let a = UnsafeMutablePointer<Float>.allocate(capacity: m * k); a.initialize(repeating: 0.01, count: m * k)
            let b = UnsafeMutablePointer<Float>.allocate(capacity: k * n); b.initialize(repeating: 0.02, count: k * n)
            let c = UnsafeMutablePointer<Float>.allocate(capacity: m * n)
            let t = time(5) { sgemm(transA: false, transB: false, m: m, n: n, k: k, a: a, lda: k, b: b, ldb: n, beta: 0, c: c, ldc: n) }
            print(String(format: "BENCH sgemm %dx%dx%d: %.1f GFLOP/s", m, n, k, 2.0 * Double(m * n * k) / t / 1e9))
            a.deallocate(); b.deallocate(); c.deallocate()
        }
        // Whole conv layers (im2col + GEMM + epilogue), batch 16 where the anchor is a batched shape.
        let convs: [(String, [Int], [Int], Int, Int)] = [
            ("stem 7x7/2 3→64 @224 b16", [16, 3, 224, 224], [64, 3, 7, 7], 2, 3),
            ("3x3 64→64 @56 b16", [16, 64, 56, 56], [64, 64, 3, 3], 1, 1),
            ("1x1 64→256 @56 b16", [16, 64, 56, 56], [256, 64, 1, 1], 1, 0),
            ("3x3 512→512 @7 b16", [16, 512, 7, 7], [512, 512, 3, 3], 1, 1),
            ("1x1 2048→512 @7 b16", [16, 2048, 7, 7], [512, 2048, 1, 1], 1, 0),
            ("dw 3x3 96 @112 b16", [16, 96, 112, 112], [96, 1, 3, 3], 2, 1),
        ]
        for (label, xs, ws, s, p) in convs {
            let groups = ws[1] == 1 && ws[0] == xs[1] ? xs[1] : 1
            let g = singleNodeGraph(.conv2d, attrs: ["strides": .ints([s, s]), "pads": .ints([p, p, p, p]), "group": .int(groups)],
                                    inputShapes: [xs], params: [("w", Tensor(zeros: ws))])
            let sess = try InferenceSession(graph: g)
            let x = Tensor(zeros: xs)
            let ho = (xs[2] + 2 * p - ws[2]) / s + 1
            let flops = 2.0 * Double(xs[0] * ws[0] * ho * ho * ws[1] * ws[2] * ws[3])
            let t = try time(3) { _ = try sess.run(["x": x]) }
            print(String(format: "BENCH conv %@: %.1f ms, %.1f GFLOP/s", label, t * 1e3, flops / t / 1e9))
        }
    }

    func testResNet50Inference() throws {
        let g = NetBuilder.resnet()
        let sess = try InferenceSession(graph: g, threads: 2)
        var rng = TestRNG(1)
        let x = rng.tensor([16, 3, 224, 224])
        let t = try time(3) { _ = try sess.run(["x": x]) }
        print(String(format: "BENCH resnet50 inference b16: %.3f s/batch, %.2f img/s", t, 16 / t))
    }

    func testEfficientNetB0Inference() throws {
        let g = NetBuilder.efficientnetB0()
        let sess = try InferenceSession(graph: g, threads: 2)
        var rng = TestRNG(1)
        let x = rng.tensor([16, 3, 224, 224])
        let t = try time(3) { _ = try sess.run(["x": x]) }
        print(String(format: "BENCH efficientnet_b0 inference b16: %.3f s/batch, %.2f img/s", t, 16 / t))
    }

    func testResNet50TrainingStep() throws {
        let g = NetBuilder.resnet()
        let trainable = Set(g.parameters.keys.filter { !g.buffers.contains($0) })
        let sess = try TrainingSession(graph: g, trainable: trainable)
        var rng = TestRNG(1)
        let x = rng.tensor([16, 3, 224, 224])
        let out = g.outputs[0].name
        let gy = rng.tensor([16, 1000], scale: 0.01)
        let t = try time(2) {
            _ = try sess.forward(["x": x], training: true)
            try sess.backwardInPlace(outputGradients: [out: gy])
        }
        print(String(format: "BENCH resnet50 train step (fwd+bwd) b16: %.3f s/batch, %.2f img/s", t, 16 / t))
        // Head only: backward touches only fc.
        sess.setTrainable(["fc.weight", "fc.bias"])
        let th = try time(2) {
            _ = try sess.forward(["x": x], training: true)
            try sess.backwardInPlace(outputGradients: [out: gy])
        }
        print(String(format: "BENCH resnet50 head-only step b16: %.3f s/batch, %.2f img/s", th, 16 / th))
    }
}
