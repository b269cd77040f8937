import WconvTensor

/// Arithmetic of the GEMM-shaped ops (conv2d, linear, matmul) at 2 FLOPs per multiply-add, for the
/// benches' GFLOP/s and GEMM-roof fractions. Elementwise, pooling and normalisation ops are left
/// out: they are memory-bound and a few percent of the multiply-adds.
public struct ModelFLOPs: Sendable {
    /// One forward pass.
    public var forward: Double = 0
    /// Forward + the backward that training runs: a weight gradient for each trainable weight and an
    /// input gradient wherever the input depends on a trainable parameter (none below the lowest
    /// trainable layer, as the runtime skips it).
    public var trainingStep: Double = 0

    /// Counts for `graph` run on `inputShapes`, training the parameters named in `trainable`.
    public init(_ graph: ModelGraph, inputShapes: [String: [Int]], trainable: Set<String> = []) throws {
        let shapes = try graph.inferShapes(inputShapes: inputShapes)
        func shape(_ name: String) -> [Int]? { shapes[name] ?? graph.parameters[name]?.shape }
        var needsGrad = Set<String>()  // values that depend on a trainable parameter
        for node in graph.nodes {
            let inputGrad = node.inputs.first.map { needsGrad.contains($0) } ?? false
            if node.inputs.contains(where: { trainable.contains($0) || needsGrad.contains($0) }) {
                needsGrad.formUnion(node.outputs)
            }
            guard let out = node.outputs.first.flatMap(shape), node.inputs.count >= 2,
                  let w = shape(node.inputs[1]) else { continue }
            let outCount = Double(out.reduce(1, *))
            let macs: Double
            switch node.op {
            case .conv2d where w.count == 4: macs = outCount * Double(w[1] * w[2] * w[3])
            case .conv1d where w.count == 3: macs = outCount * Double(w[1] * w[2])
            case .linear where w.count == 2: macs = outCount * Double(w[1])
            case .matmul:
                guard let a = shape(node.inputs[0]), let k = a.last else { continue }
                macs = outCount * Double(k)
            default: continue
            }
            forward += 2 * macs
            trainingStep += 2 * macs
            if trainable.contains(node.inputs[1]) || needsGrad.contains(node.inputs[1]) { trainingStep += 2 * macs }
            if inputGrad { trainingStep += 2 * macs }
        }
    }
}
