import Foundation
import OrderedCollections
import WconvGraph
import WconvTensor

/// Forward in train or eval mode and reverse-mode gradients over a graph, for the trainer.
/// Frozen parts cost nothing in backward: a gradient is computed only for values that depend on a
/// trainable parameter, so no backward runs below the lowest trainable node and frozen parameters
/// get no weight-gradient GEMMs. Parameters live in f32 working copies that the trainer's optimizers
/// update in place through `parameterBuffer(named:)`.
public final class TrainingSession {
    public let graph: ModelGraph
    let executor: Executor
    let store: ParameterStore
    public let threads: Int
    public private(set) var trainable: Set<String> = []
    /// What the caller asked for, before `.frozenAffine` removed BN affine parameters.
    private var requestedTrainable: Set<String> = []
    private var trainableValues = Set<Int>()
    private let grads = GradientState()
    private var lastForwardTraining = false
    private var forwardDone = false
    private var plannedFor: [[Int]]? = nil

    /// - Parameters:
    ///   - trainable: parameter names that receive gradients (buffers are never trainable).
    ///   - bnMode: per BatchNorm node name (default `.train`); `.frozenAffine` also freezes γ and β.
    ///   - precision: `.bf16` is mixed precision, autocast-style: oneDNN convolutions and linear layers
    ///     compute forward and backward in bfloat16 with f32 accumulation, while parameters (the master weights),
    ///     gradients, activations, batch norm and everything else stay f32. Refused (usage error) on a
    ///     CPU without bfloat16 arithmetic (`Precision.unsupportedReason`).
    public init(graph: ModelGraph, trainable: Set<String>, bnMode: [String: BatchNormMode] = [:], threads: Int = 2,
                precision: Precision = .f32) throws {
        if let why = Precision.unsupportedReason(precision) { throw WconvError(.usage, why) }
        try RuntimeThreads.configure(threads)
        self.graph = graph
        self.threads = threads
        store = ParameterStore(graph: graph)
        executor = try Executor(graph: graph, nodes: TrainingFusion.nodes(graph), params: store, keepAllValues: true)
        for name in bnMode.keys where !graph.nodes.contains(where: { $0.name == name && $0.op == .batchNorm }) {
            throw WconvError(.usage, "bnMode names '\(name)', which is not a batchNorm node of the graph")
        }
        executor.bnMode = bnMode
        executor.precision = precision
        try setTrainableChecked(trainable)
    }

    /// The precision the session's convolutions compute in.
    public var precision: Precision { executor.precision }

    /// Convolutions of the current plan computing in bfloat16 (0 before the first forward or in f32).
    public var bf16Convolutions: Int { executor.dnnlBF16Summary.convolutions }

    /// 2-D convolutions of the current plan (0 before the first forward).
    public var convolutions: Int { executor.steps.filter { executor.nodes[$0.node].node.op == .conv2d }.count }

    /// Changes which parameters receive gradients (progressive unfreezing). Unknown names and
    /// buffers are ignored here; `init` reports them.
    public func setTrainable(_ names: Set<String>) {
        try? setTrainableChecked(names.filter { store[$0] != nil && !graph.buffers.contains($0) })
    }

    private func setTrainableChecked(_ names: Set<String>) throws {
        for n in names {
            guard store[n] != nil else { throw WconvError(.usage, "trainable parameter '\(n)' is not in the model") }
            guard !graph.buffers.contains(n) else { throw WconvError(.usage, "'\(n)' is a buffer (e.g. BN running statistics), not a trainable parameter") }
        }
        requestedTrainable = names
        var effective = names
        for node in graph.nodes where node.op == .batchNorm && executor.bnMode[node.name] == .frozenAffine {
            for k in 1...2 where node.inputs.count > k { effective.remove(node.inputs[k]) }
        }
        trainable = effective
        trainableValues = Set(effective.compactMap { executor.id($0) })
        grads.release()
    }

    /// Changes the BatchNorm policy (progressive unfreezing moves the frozen/train boundary);
    /// re-applies `.frozenAffine` to the trainable set. Names must be batchNorm nodes.
    public func setBatchNormModes(_ modes: [String: BatchNormMode]) throws {
        for name in modes.keys where !graph.nodes.contains(where: { $0.name == name && $0.op == .batchNorm }) {
            throw WconvError(.usage, "bnMode names '\(name)', which is not a batchNorm node of the graph")
        }
        let requested = requestedTrainable
        executor.bnMode = modes
        try setTrainableChecked(requested)
    }

    /// BatchNorm policy per node name currently in force.
    public var batchNormModes: [String: BatchNormMode] { executor.bnMode }

    /// SyncBatchNorm: when set, `.train` BatchNorm layers normalise with the statistics of the
    /// global batch of all data-parallel replicas (nil, the default: this batch's own).
    public var batchNormSync: BatchNormSync? {
        get { executor.batchNormSync }
        set { executor.batchNormSync = newValue }
    }

    /// Seed for dropout masks; the same seed and thread count give the same masks.
    public func seedDropout(_ seed: UInt64) { executor.rng = SplitMix64(seed: seed) }

    /// Runs the graph; `training` selects batch statistics (per bnMode) and dropout masks.
    /// Every intermediate value is kept for `backward` and `activation(named:)`.
    public func forward(_ inputs: [String: Tensor], training: Bool) throws -> [String: Tensor] {
        try executor.bindInputs(inputs)
        if plannedFor != executor.plannedInputShapes {
            grads.release()
            plannedFor = executor.plannedInputShapes
        }
        try executor.forward(training: training)
        lastForwardTraining = training
        forwardDone = true
        var out: [String: Tensor] = [:]
        for o in graph.outputs { out[o.name] = executor.tensor(executor.id(o.name)!) }
        return out
    }

    /// A copy of any value of the last forward (graph input, intermediate, output), by name; nil for
    /// values the plan does not keep: a batch norm's or add's output that a ReLU reads alone
    /// (TrainingFusion), and a residual add's batch-norm operands, which the add overwrites or frees.
    public func activation(named name: String) -> Tensor? {
        guard forwardDone, let v = executor.id(name), executor.paramName[v] == nil, !executor.overwritten.contains(v) else { return nil }
        return executor.tensor(v)
    }

    /// Backpropagates gradients given for any values of the last forward (outputs or intermediates,
    /// e.g. an MMD term on penultimate features); returns parameter name → gradient for every
    /// trainable parameter the gradients reach.
    public func backward(outputGradients: [String: Tensor]) throws -> [String: Tensor] {
        try backwardInPlace(outputGradients: outputGradients)
        var out: [String: Tensor] = [:]
        for name in trainable {
            if let b = gradientBuffer(named: name), let e = store[name] {
                out[name] = Tensor(shape: e.shape, floats: Array(b))
            }
        }
        return out
    }

    /// Like `backward` but leaves the gradients in the session's buffers (`gradientBuffer(named:)`),
    /// avoiding a copy per parameter per step.
    public func backwardInPlace(outputGradients: [String: Tensor]) throws {
        guard forwardDone else { throw WconvError(.usage, "backward called before forward") }
        let ex = executor
        grads.requiresGrad = ex.computeRequiresGrad(trainableValues: trainableValues)
        grads.touched = []
        grads.stepsRun = 0
        for (name, g) in outputGradients {
            guard let v = ex.id(name), let sh = ex.shapes[v] else {
                throw WconvError(.usage, "gradient given for '\(name)', which is not a value of the graph")
            }
            guard g.shape == sh else {
                throw WconvError.invalid("gradient for '\(name)' has shape \(g.shape), the value has shape \(sh)")
            }
            guard grads.requiresGrad[v] else { continue }
            var vals = g.floats()
            if ex.nhwcValues.contains(v) {
                // The plan keeps this value NHWC (DNNLLayoutPlan): so is its gradient.
                let planar = vals
                planar.withUnsafeBufferPointer { src in vals.withUnsafeMutableBufferPointer { ex.permuteChannels(src.baseAddress!, $0.baseAddress!, shape: sh, toNHWC: true) } }
            }
            let buf = grads.buffer(ex.root[v], count: vals.count)
            for i in 0..<vals.count { buf[i] += vals[i] }
        }
        for si in ex.steps.indices.reversed() {
            try ex.backwardStep(si, gs: grads, lastForwardTraining: lastForwardTraining)
        }
        // Trainable parameters no gradient reached get zeros, so optimizers see a defined buffer.
        for name in trainable { if let v = ex.id(name), let e = store[name] { _ = grads.buffer(ex.root[v], count: e.count) } }
    }

    /// Times every forward and backward step of later passes (off by default): `stepProfile` reads the sums.
    public func startProfiling() { executor.stepSeconds = [:] }

    /// Seconds and step count per "op kernel" label (backward steps prefixed "backward ") since
    /// `startProfiling`, slowest first.
    public var stepProfile: [(label: String, seconds: Double, steps: Int)] {
        executor.stepProfile
    }

    /// Number of nodes whose backward ran in the last `backward` (frozen parts contribute none).
    public var lastBackwardNodeCount: Int { grads.stepsRun }

    /// The gradient of a trainable parameter from the last backward, or nil.
    public func gradientBuffer(named name: String) -> UnsafeMutableBufferPointer<Float>? {
        guard trainable.contains(name), let v = executor.id(name), let p = grads.grad[executor.root[v]], let e = store[name] else { return nil }
        return UnsafeMutableBufferPointer(start: p, count: e.count)
    }

    /// The f32 working copy of a parameter or buffer; optimizers update it in place.
    public func parameterBuffer(named name: String) -> UnsafeMutableBufferPointer<Float>? {
        guard let e = store[name] else { return nil }
        return UnsafeMutableBufferPointer(start: e.pointer, count: e.count)
    }

    /// Current parameters and buffers (f32), in the graph's order.
    public func exportParameters() -> OrderedDictionary<String, Tensor> {
        var out: OrderedDictionary<String, Tensor> = [:]
        for name in graph.parameters.keys { if let t = store.tensor(name) { out[name] = t } }
        return out
    }
}
