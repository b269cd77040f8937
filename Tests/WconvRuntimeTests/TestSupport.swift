import OrderedCollections
import WconvGraph
import WconvTensor
import XCTest
@testable import WconvRuntime
import WconvTestSupport

/// Small helpers: seeded random tensors and one-node graphs.
struct TestRNG {
    var g: SplitMix64
    init(_ seed: UInt64) { g = SplitMix64(seed: seed) }
    mutating func floats(_ n: Int, scale: Float = 1) -> [Float] { (0..<n).map { _ in (g.nextFloat() * 2 - 1) * scale } }
    mutating func tensor(_ shape: [Int], scale: Float = 1) -> Tensor { Tensor(shape: shape, floats: floats(shape.reduce(1, *), scale: scale)) }
    mutating func positive(_ shape: [Int]) -> Tensor { Tensor(shape: shape, floats: (0..<shape.reduce(1, *)).map { _ in 0.5 + g.nextFloat() }) }
}

/// A graph of one node over input "x" (and optional "x2"), with the given parameters.
func singleNodeGraph(_ op: Op, attrs: [String: AttributeValue] = [:], inputShapes: [[Int]],
                     params: [(String, Tensor)] = [], extraInputs: [String] = [], outputs: Int = 1) -> ModelGraph {
    var g = ModelGraph()
    var names: [String] = []
    for (i, s) in inputShapes.enumerated() {
        let n = i == 0 ? "x" : "x\(i + 1)"
        g.inputs.append(ValueInfo(name: n, shape: s.map { $0 }))
        names.append(n)
    }
    for (n, t) in params { g.parameters[n] = t }
    let ins = names + params.map(\.0) + extraInputs
    g.nodes = [GraphNode(name: "n0", op: op, inputs: ins, outputs: ["y"], attributes: attrs)]
    g.outputs = [ValueInfo(name: "y", shape: [])]
    return g
}

func runGraph(_ g: ModelGraph, _ inputs: [String: Tensor]) throws -> Tensor {
    let s = try InferenceSession(graph: g)
    return try s.run(inputs)["y"]!
}

/// The shared `assertClose` (WconvTestSupport) for this module's files, which do not import it.
func assertClose(_ a: [Float], _ b: [Float], rtol: Float = 1e-4, atol: Float = 1e-5, _ msg: String = "",
                 file: StaticString = #filePath, line: UInt = #line) {
    WconvTestSupport.assertClose(a, b, rtol: rtol, atol: atol, msg, file: file, line: line)
}

/// Checks the analytic gradients of loss = Σ y·r for the trainable parameters — and, with
/// `inputGradients`, for every f32 graph input — against central finite differences (loss
/// accumulated in Double), on up to `samples` coordinates per tensor. Input gradients are checked
/// by turning those inputs into parameters of the same name, so the backward pass must produce
/// the gradient of each op's data input, not only of its weights.
func checkGradients(_ g: ModelGraph, inputs: [String: Tensor], trainable: [String], training: Bool = true,
                    bnMode: [String: BatchNormMode] = [:], eps: Float = 1e-2, tol: Double = 2e-2, samples: Int = 12,
                    seed: UInt64 = 7, inputGradients: Bool = true,
                    file: StaticString = #filePath, line: UInt = #line) throws {
    var g = g, inputs = inputs, trainable = trainable
    if inputGradients {
        for info in g.inputs where inputs[info.name]?.dtype == .f32 {
            g.parameters[info.name] = inputs.removeValue(forKey: info.name)
            trainable.append(info.name)
        }
        g.inputs.removeAll { g.parameters[$0.name] != nil }
    }
    let s = try TrainingSession(graph: g, trainable: Set(trainable), bnMode: bnMode)
    s.seedDropout(99)
    let y0 = try s.forward(inputs, training: training)["y"]!
    var rng = TestRNG(seed)
    let r = rng.tensor(y0.shape)
    let rv = r.floats().map(Double.init)
    let grads = try s.backward(outputGradients: ["y": r])
    func loss() throws -> Double {
        s.seedDropout(99)
        let y = try s.forward(inputs, training: training)["y"]!.floats()
        var acc = 0.0
        for i in 0..<y.count { acc += Double(y[i]) * rv[i] }
        return acc
    }
    for name in trainable {
        guard let analytic = grads[name]?.floats() else { XCTFail("no gradient for \(name)", file: file, line: line); continue }
        let buf = s.parameterBuffer(named: name)!
        let step = max(1, buf.count / samples)
        var i = 0
        while i < buf.count {
            let orig = buf[i]
            buf[i] = orig + eps
            let lp = try loss()
            buf[i] = orig - eps
            let lm = try loss()
            buf[i] = orig
            let numeric = (lp - lm) / (2 * Double(eps))
            let a = Double(analytic[i])
            let scale = max(1.0, abs(numeric), abs(a))
            if abs(a - numeric) > tol * scale {
                XCTFail("\(name)[\(i)]: analytic \(a) vs numeric \(numeric)", file: file, line: line)
                return
            }
            i += step
        }
    }
}
