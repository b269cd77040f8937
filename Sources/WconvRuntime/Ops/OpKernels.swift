import Foundation
import WconvGraph
import WconvTensor

/// The runtime half of an op (docs/adding-an-op.md): `select` is the one decision point that picks
/// an implementation for a concrete request; the `StepKernel` it returns runs forward and backward.
struct OpKernels {
    let op: Op
    let select: (KernelRequest) throws -> any StepKernel
    init(_ op: Op, select: @escaping (KernelRequest) throws -> any StepKernel) {
        self.op = op
        self.select = select
    }
}

/// Every op's kernels; families are the `*Kernels` files of this folder (a new family adds a line).
enum KernelCatalog {
    static let families: [[OpKernels]] = [
        ConvolutionKernels.all, NormalizationKernels.all, LinearKernels.all, ActivationKernels.all, PoolingKernels.all,
        ElementwiseKernels.all, ShapeKernels.all, ShapeValueKernels.all, ReductionKernels.all, AttentionKernels.all, SamplingKernels.all,
        RecurrentKernels.all, IndexKernels.all, EinsumKernels.all,
    ]
    static let byOp: [Op: OpKernels] = {
        var all: [Op: OpKernels] = [:]
        for family in families { for k in family { precondition(all[k.op] == nil, "kernels for \(k.op) defined twice"); all[k.op] = k } }
        return all
    }()
}

/// What kernel selection sees: the node with its value inputs resolved, shapes and dtypes from the
/// graph's inference, the fused epilogue, and whether the plan keeps values for backward.
struct KernelRequest {
    let exec: ExecNode
    let inputShapes: [[Int]?]
    let outputShapes: [[Int]]
    let inputDTypes: [DType?]
    /// Training plan (every value kept for backward) rather than inference.
    let training: Bool
    /// Layouts the plan chose around this step (oneDNN convolutions keep NHWC between them).
    var layout = StepLayout()

    var node: GraphNode { exec.node }
    var outShape: [Int] { outputShapes.first ?? [] }
    var outCount: Int { outShape.reduce(1, *) }

    func fail(_ msg: String) -> WconvError {
        WconvError.invalid("node '\(node.name)' (\(node.op)): \(msg); input shapes \(inputShapes.map { $0.map { "\($0)" } ?? "-" })")
    }
    func shape(_ i: Int) throws -> [Int] {
        guard i < inputShapes.count, let v = inputShapes[i] else { throw fail("missing input \(i)") }
        return v
    }
    func isInteger(_ i: Int) -> Bool { i < inputDTypes.count && inputDTypes[i].map { !$0.isFloatingPoint } == true }
    /// An ints attribute with `count` values (one value repeats), through the graph's one reading.
    func attr(_ key: String, _ count: Int, _ dflt: Int) throws -> [Int] {
        guard let v = node.ints(key, count: count, default: dflt) else { throw fail("attribute \(key) must have 1 or \(count) values, has \(node.ints(key) ?? [])") }
        return v
    }
    func axis(_ a: Int, rank: Int) throws -> Int {
        let r = a < 0 ? a + rank : a
        guard r >= 0 && r < max(rank, 1) else { throw fail("axis \(a) out of range for rank \(rank)") }
        return r
    }
    /// A kernel's own output size must be the one planned: refuses (instead of writing outside the
    /// buffer) when the kernel's geometry and shape inference disagree.
    func agree(_ got: [Int], _ k: Int = 0) throws {
        guard k < outputShapes.count, outputShapes[k] == got else {
            throw fail("internal: kernel geometry gives \(got), shape inference \(k < outputShapes.count ? "\(outputShapes[k])" : "nothing")")
        }
    }
}

/// One planned step's implementation.
protocol StepKernel {
    func forward(_ c: StepContext) throws
    /// Accumulates into the inputs' gradient buffers; the default (not differentiable) does nothing.
    func backward(_ c: BackwardContext) throws
    /// Floats of per-step saved state the planner allocates (statistics, masks).
    func auxFloats(training: Bool) -> Int
    /// The output is input 0 reinterpreted: it shares the buffer (and gradient buffer).
    var isView: Bool { get }
    /// Elements read from each input and written to each output, from the kernel's own parameters,
    /// given the planned element counts (AccessCheck.swift); the planner refuses any excess.
    func extents(inputs: [Int], outputs: [Int]) -> StepExtents
    /// The library kernel underneath, for `--profile` ("jit_1x1:avx2"); nil: the type name says it.
    var profileDetail: String? { get }
}

extension StepKernel {
    var profileDetail: String? { nil }
    func backward(_ c: BackwardContext) throws {}
    func auxFloats(training: Bool) -> Int { 0 }
    var isView: Bool { false }
}

/// A step's buffers during forward.
struct StepContext {
    let executor: Executor
    let step: Step
    let index: Int
    let training: Bool

    var nodeName: String { executor.nodes[step.node].node.name }
    var fused: Activation { executor.nodes[step.node].fused }
    /// Input k's buffer, nil for an omitted optional input.
    func input(_ k: Int) -> UnsafeMutablePointer<Float>? {
        k < step.inputs.count && step.inputs[k] >= 0 ? executor.ptrs[step.inputs[k]] : nil
    }
    func output(_ k: Int = 0) -> UnsafeMutablePointer<Float> { executor.ptrs[step.outputs[k]]! }
    var aux: UnsafeMutablePointer<Float>? { executor.aux[index] }
    func fail(_ msg: String) -> WconvError { WconvError.invalid("node '\(nodeName)': \(msg)") }
}

/// A step's buffers and gradients during backward.
struct BackwardContext {
    let executor: Executor
    let step: Step
    let index: Int
    let gradients: GradientState
    let lastForwardTraining: Bool

    func input(_ k: Int) -> UnsafeMutablePointer<Float>? {
        k < step.inputs.count && step.inputs[k] >= 0 ? executor.ptrs[step.inputs[k]] : nil
    }
    func output(_ k: Int = 0) -> UnsafeMutablePointer<Float> { executor.ptrs[step.outputs[k]]! }
    var aux: UnsafeMutablePointer<Float>? { executor.aux[index] }
    /// The gradient buffer of input k, nil when that input needs none.
    func inputGradient(_ k: Int) -> UnsafeMutablePointer<Float>? {
        guard k < step.inputs.count, step.inputs[k] >= 0, gradients.requiresGrad[step.inputs[k]] else { return nil }
        let v = step.inputs[k]
        return gradients.buffer(executor.root[v], count: executor.shapes[v]!.reduce(1, *))
    }
    /// Like `inputGradient`, for kernels that write their result: the buffer is not zeroed when
    /// no gradient reached it yet (`fresh`), the kernel overwrites it then.
    func inputGradientForWriting(_ k: Int) -> WritableGradient? {
        guard k < step.inputs.count, step.inputs[k] >= 0, gradients.requiresGrad[step.inputs[k]] else { return nil }
        let v = step.inputs[k]
        return gradients.writableBuffer(executor.root[v], count: executor.shapes[v]!.reduce(1, *), zeroed: false)
    }
    /// The gradient reaching output k, nil when none did.
    func outputGradient(_ k: Int = 0) -> UnsafePointer<Float>? {
        let r = executor.root[step.outputs[k]]
        guard gradients.touched.contains(r), let g = gradients.grad[r] else { return nil }
        return UnsafePointer(g)
    }
    /// The gradient reaching the output of a step with a ReLU fused in (TrainingFusion), masked by
    /// y > 0 in place: every consumer of the output has run, so the buffer is this step's alone.
    /// Without a fused activation, the output gradient as it is.
    func outputGradientThroughReLU() throws -> UnsafePointer<Float>? {
        let fused = executor.nodes[step.node].fused
        guard fused != .none else { return outputGradient() }
        guard fused == .relu else {
            throw WconvError(.runtime, "internal: node '\(executor.nodes[step.node].node.name)' has a fused \(fused) in a training plan")
        }
        let r = executor.root[step.outputs[0]]
        guard gradients.touched.contains(r), let g = gradients.grad[r] else { return nil }
        let y = UnsafePointer(output()), n = executor.shapes[step.outputs[0]]!.reduce(1, *)
        Parallel.forRange(n, costPerItem: 3) { range in
            reluGradient(y + range.lowerBound, dy: g + range.lowerBound, dx: g + range.lowerBound, range.count, accumulate: false)
        }
        return UnsafePointer(g)
    }
}
