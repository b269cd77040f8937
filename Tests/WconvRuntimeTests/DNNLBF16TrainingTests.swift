import WconvGraph
import WconvTensor
import XCTest
@testable import WconvRuntime

/// Mixed-precision (bf16) training steps against the f32 step of the same session type: oneDNN
/// convolutions forward, backward-data and backward-weights in bfloat16 with f32 accumulation,
/// everything else f32. bf16 keeps 8 significant bits (relative rounding ≤ 2⁻⁹ ≈ 0.2 %) of the
/// convolutions' inputs, output gradients and weights. Weight gradients of randomly initialised
/// nets are sums with heavy cancellation, so single entries move by far more than 0.2 %; the stated
/// tolerances, with batch norm on running statistics: loss within 0.1 %, cos ∠(g_bf16, g_f32) > 0.995
/// over all parameters and > 0.98 for every parameter holding ≥ 1 % of the largest gradient norm,
/// SGD-updated weights within 10 % of the largest step; with batch statistics (whose backward
/// amplifies rounding): loss within 1 %, whole-gradient cos > 0.9.
final class DNNLBF16TrainingTests: XCTestCase {
    /// Small graphs: their convs run on oneDNN although a plan would keep them on im2col.
    private var minMACs = 0
    override func setUp() { minMACs = DNNLTrainConv2d.minMACs; DNNLTrainConv2d.minMACs = 0 }
    override func tearDown() { DNNLTrainConv2d.minMACs = minMACs }

    /// Mean softmax cross-entropy of `logits` [N, K] against `labels`, and its gradient.
    func crossEntropy(_ logits: Tensor, _ labels: [Int]) -> (loss: Double, grad: Tensor) {
        let z = logits.floats(), n = logits.shape[0], k = logits.shape[1]
        var loss = 0.0, g = [Float](repeating: 0, count: z.count)
        for i in 0..<n {
            let row = z[(i * k)..<((i + 1) * k)].map(Double.init)
            let m = row.max()!, e = row.map { exp($0 - m) }, s = e.reduce(0, +)
            loss -= log(e[labels[i]] / s)
            for j in 0..<k { g[i * k + j] = Float((e[j] / s - (j == labels[i] ? 1 : 0)) / Double(n)) }
        }
        return (loss / Double(n), Tensor(shape: logits.shape, floats: g))
    }

    struct StepResult {
        var losses: [Double] = []
        /// Gradients of the first step and weights after the last, by parameter name.
        var grads: [String: [Float]] = [:]
        var weights: [String: [Float]] = [:]
        var bf16Convolutions = 0
        var implementations: [String] = []
    }

    /// `steps` SGD steps (lr `lr`) on one fixed batch, in `precision`.
    func train(_ g: ModelGraph, _ x: Tensor, labels: [Int], precision: Precision, steps: Int, lr: Float, bn: BatchNormMode = .train) throws -> StepResult {
        let trainable = Set(g.parameters.keys).subtracting(g.buffers)
        let modes = Dictionary(uniqueKeysWithValues: g.nodes.filter { $0.op == .batchNorm }.map { ($0.name, bn) })
        let s = try TrainingSession(graph: g, trainable: trainable, bnMode: modes, precision: precision)
        var r = StepResult()
        for k in 0..<steps {
            let logits = try s.forward(["x": x], training: true)[g.outputs[0].name]!
            let (loss, dy) = crossEntropy(logits, labels)
            r.losses.append(loss)
            try s.backwardInPlace(outputGradients: [g.outputs[0].name: dy])
            for name in trainable {
                let gb = s.gradientBuffer(named: name)!, w = s.parameterBuffer(named: name)!
                if k == 0 { r.grads[name] = Array(gb) }
                for i in 0..<w.count { w[i] -= lr * gb[i] }
            }
        }
        for name in trainable { r.weights[name] = Array(s.parameterBuffer(named: name)!) }
        r.bf16Convolutions = s.bf16Convolutions
        r.implementations = s.executor.steps.compactMap { $0.kernel as? DNNLTrainConv2d }
            .map { "\($0.forwardKernel.conv.implementation) / \($0.backwardConv.implementation)" }
        return r
    }

    func norm(_ a: [Float]) -> Double { a.reduce(0.0) { $0 + Double($1) * Double($1) }.squareRoot() }

    /// cos ∠(a, b).
    func cosine(_ a: [Float], _ b: [Float]) -> Double {
        zip(a, b).reduce(0.0) { $0 + Double($1.0) * Double($1.1) } / max(norm(a) * norm(b), 1e-300)
    }

    /// One bf16 SGD step against the f32 one with batch norm on running statistics (`.frozen`: the
    /// differences are the convolutions' rounding alone) and on batch statistics (`.train`, whose
    /// backward subtracts the gradient's projections and so amplifies any rounding), then several
    /// bf16 steps.
    func compare(_ g: ModelGraph, _ x: Tensor, classes: Int, minConvolutions: Int, file: StaticString = #filePath, line: UInt = #line) throws {
        try XCTSkipIf(Precision.unsupportedReason(.bf16) != nil, Precision.unsupportedReason(.bf16) ?? "")
        let labels = (0..<x.shape[0]).map { $0 % classes }
        let lr: Float = 0.05
        for bn in [BatchNormMode.frozen, .train] {
            let f32 = try train(g, x, labels: labels, precision: .f32, steps: 1, lr: lr, bn: bn)
            let bf16 = try train(g, x, labels: labels, precision: .bf16, steps: 1, lr: lr, bn: bn)
            XCTAssertEqual(f32.bf16Convolutions, 0, file: file, line: line)
            XCTAssertGreaterThanOrEqual(bf16.bf16Convolutions, minConvolutions, file: file, line: line)
            // oneDNN dispatches every bf16 convolution here to a jit kernel, never its slow reference one.
            for impl in bf16.implementations { XCTAssertFalse(impl.contains("ref"), impl, file: file, line: line) }
            let names = f32.grads.keys.sorted()
            let all32 = names.flatMap { f32.grads[$0]! }, all16 = names.flatMap { bf16.grads[$0]! }
            let whole = cosine(all16, all32)
            XCTAssertNotEqual(all16, all32, "bf16 arithmetic should change the gradients", file: file, line: line)
            if bn == .frozen {
                XCTAssertEqual(bf16.losses[0], f32.losses[0], accuracy: 1e-3 * f32.losses[0], "loss", file: file, line: line)
                XCTAssertGreaterThan(whole, 0.995, "cos ∠ of the whole gradient", file: file, line: line)
                let largest = names.map { norm(f32.grads[$0]!) }.max()!
                let maxStep = Double(lr) * Double(all32.map { abs($0) }.max()!)
                for name in names where norm(f32.grads[name]!) >= 0.01 * largest {
                    XCTAssertGreaterThan(cosine(bf16.grads[name]!, f32.grads[name]!), 0.98, "gradient of \(name)", file: file, line: line)
                    let worst = zip(bf16.weights[name]!, f32.weights[name]!).map { Double(abs($0 - $1)) }.max()!
                    XCTAssertLessThanOrEqual(worst, 0.1 * maxStep, "updated \(name)", file: file, line: line)
                }
            } else {
                XCTAssertEqual(bf16.losses[0], f32.losses[0], accuracy: 1e-2 * f32.losses[0], "loss", file: file, line: line)
                XCTAssertGreaterThan(whole, 0.9, "cos ∠ of the whole gradient (batch statistics)", file: file, line: line)
            }
        }
        // Several bf16 steps on the batch bring its loss down.
        let run = try train(g, x, labels: labels, precision: .bf16, steps: 6, lr: lr)
        XCTAssertLessThan(run.losses.last!, 0.8 * run.losses[0], "losses \(run.losses)", file: file, line: line)
    }

    /// Basic-block ResNet with strided 3×3 and 1×1 downsample convs, batch 7 (odd: the strided 1×1
    /// backward avoids oneDNN's jit_1x1 kernel there, as in f32).
    func testResNetStepMatchesF32() throws {
        var rng = TestRNG(31)
        let g = NetBuilder.resnet(blocks: [1, 1, 1, 1], width: 8, classes: 5, bottleneck: false)
        try compare(g, rng.tensor([7, 3, 64, 64]), classes: 5, minConvolutions: 12)
    }

    /// Depthwise convs, SiLU and squeeze-excite (EfficientNet-B0 at 1/8 width).
    func testEfficientNetStepMatchesF32() throws {
        var rng = TestRNG(32)
        let g = NetBuilder.efficientnetB0(classes: 6, div: 8)
        try compare(g, rng.tensor([4, 3, 48, 48]), classes: 6, minConvolutions: 20)
    }

    /// A CPU without AVX512_BF16 / AMX (simulated) refuses a bf16 training session with a usage error.
    /// Linear layers (a GELU MLP with a bias-free layer, as in a transformer's feed-forward) train in
    /// bf16 on oneDNN matmuls: loss within 0.1 %, every parameter's gradient within cos 0.99 of the
    /// f32 step's (the earlier layers' through the later ones' input gradients); every linear step
    /// runs the bf16 kernel.
    func testLinearLayersStepMatchesF32() throws {
        try XCTSkipIf(Precision.unsupportedReason(.bf16) != nil, Precision.unsupportedReason(.bf16) ?? "")
        var b = NetBuilder(inputShape: [nil, 40])
        b.param("fc1.weight", [64, 40], scale: 0.3); b.param("fc1.bias", [64], scale: 0.1)
        b.param("fc2.weight", [48, 64], scale: 0.25)
        b.param("fc3.weight", [5, 48], scale: 0.3); b.param("fc3.bias", [5], scale: 0.1)
        var h = b.node(.linear, ["x", "fc1.weight", "fc1.bias"], "fc1")
        h = b.node(.gelu, [h], "act1")
        h = b.node(.linear, [h, "fc2.weight", ""], "fc2")
        h = b.node(.gelu, [h], "act2")
        let g = b.finish(b.node(.linear, [h, "fc3.weight", "fc3.bias"], "fc3"))
        var rng = TestRNG(31)
        let x = rng.tensor([24, 40]), labels = (0..<24).map { $0 % 5 }
        let f32 = try train(g, x, labels: labels, precision: .f32, steps: 1, lr: 0.05)
        let bf16 = try train(g, x, labels: labels, precision: .bf16, steps: 1, lr: 0.05)
        XCTAssertEqual(bf16.losses[0], f32.losses[0], accuracy: 1e-3 * f32.losses[0], "loss")
        for name in f32.grads.keys.sorted() {
            XCTAssertNotEqual(bf16.grads[name]!, f32.grads[name]!, "\(name): bf16 arithmetic should change it")
            XCTAssertGreaterThan(cosine(bf16.grads[name]!, f32.grads[name]!), 0.99, "gradient of \(name)")
        }
        let session = try TrainingSession(graph: g, trainable: Set(g.parameters.keys), precision: .bf16)
        _ = try session.forward(["x": x], training: true)
        XCTAssertEqual(session.executor.steps.filter { $0.kernel is DNNLLinearBF16 }.count, 3)
    }

    func testBF16TrainingRefusedWithoutCPUSupport() throws {
        setenv("WCONV_DNNL_SIMULATE_NO_BF16", "1", 1)
        defer { unsetenv("WCONV_DNNL_SIMULATE_NO_BF16") }
        let g = NetBuilder.resnet(blocks: [1, 1, 1, 1], width: 8, classes: 5, bottleneck: false)
        XCTAssertThrowsError(try TrainingSession(graph: g, trainable: [], precision: .bf16)) { e in
            XCTAssertEqual((e as? WconvError)?.kind, .usage)
            XCTAssertTrue((e as? WconvError)?.message.contains("drop --precision bf16") == true, "\(e)")
        }
        XCTAssertNoThrow(try TrainingSession(graph: g, trainable: []))
    }
}
