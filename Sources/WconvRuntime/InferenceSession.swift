import Foundation
import OrderedCollections
import WconvGraph
import WconvTensor

/// Runs a graph forward in eval mode. Built once per model: parameters converted to f32, eval
/// BatchNorm folded into the preceding convolution (or into a per-channel scale/shift), activations
/// fused into conv/linear/BN epilogues, dropout removed. Buffers are planned once per input shape
/// and reused between layers by liveness.
public final class InferenceSession {
    public let graph: ModelGraph
    let executor: Executor
    /// The parameters the plan reads, with the folded ones `fuse` added (InferenceSession+Sharing).
    let store: ParameterStore
    public let threads: Int

    /// - Parameters:
    ///   - threads: cores used by BLAS and by the runtime's own loops.
    ///   - precision: `.bf16` runs oneDNN convolutions in bfloat16; refused (usage error) on a CPU
    ///     without bfloat16 arithmetic (`Precision.unsupportedReason`).
    public convenience init(graph: ModelGraph, threads: Int = 2, precision: Precision = .f32) throws {
        try self.init(graph: graph, store: ParameterStore(graph: graph), threads: threads, precision: precision)
    }

    init(graph: ModelGraph, store: ParameterStore, threads: Int, precision: Precision = .f32) throws {
        if let why = Precision.unsupportedReason(precision) { throw WconvError(.usage, why) }
        try RuntimeThreads.configure(threads)
        self.graph = graph
        self.threads = threads
        self.store = store
        let nodes = try InferenceSession.fuse(graph, store)
        executor = try Executor(graph: graph, nodes: nodes, params: store, keepAllValues: false)
        executor.precision = precision
    }

    /// The precision the session's convolutions run in.
    public var precision: Precision { executor.precision }

    /// Runs the graph. Inputs by graph input name; returns every graph output by name.
    public func run(_ inputs: [String: Tensor]) throws -> [String: Tensor] {
        try executor.bindInputs(inputs)
        try executor.forward(training: false)
        var out: [String: Tensor] = [:]
        for o in graph.outputs { out[o.name] = executor.tensor(executor.id(o.name)!) }
        return out
    }

    /// Times every step of later runs (off by default): `stepProfile` reads the sums.
    public func startProfiling() { executor.stepSeconds = [:] }

    /// Seconds and step count per "op kernel" label since `startProfiling`, slowest first.
    public var stepProfile: [(label: String, seconds: Double, steps: Int)] {
        executor.stepProfile
    }

    /// Floats held by activation buffers for the last planned shape (the liveness plan's footprint).
    public var plannedActivationFloats: Int { executor.arenaFloats }

    /// Names of nodes after fusion, for tests and reports.
    public var executedNodeCount: Int { executor.nodes.count }

    /// Folds eval BN and activations into neighbouring nodes where the intermediate value has no
    /// other reader and is not a graph output.
    static func fuse(_ graph: ModelGraph, _ store: ParameterStore) throws -> [ExecNode] {
        var readers: [String: Int] = [:]
        for n in graph.nodes { for i in n.inputs where !i.isEmpty { readers[i, default: 0] += 1 } }
        for o in graph.outputs { readers[o.name, default: 0] += 1 }
        var producerIndex: [String: Int] = [:]
        var out: [ExecNode] = []
        var removed = Set<Int>()
        func isParam(_ s: String) -> Bool { !s.isEmpty && store[s] != nil }
        /// The conv at `pi` now reads folded parameters and writes the outputs of the node folded into it.
        func replace(_ pi: Int, _ conv: ExecNode, weight: String, bias: String, outputs: [String]) {
            var conv = conv
            conv.node.inputs = [conv.node.inputs[0], weight, bias]
            conv.node.outputs = outputs
            out[pi] = conv
            for v in outputs { producerIndex[v] = pi }
        }

        for (idx, node) in graph.nodes.enumerated() {
            if removed.contains(idx) { continue }
            var en = ExecNode(node: node)
            if node.op == .dropout || node.op == .identity {
                en.node.op = .identity
            }
            // BN over a conv's sole output: fold into the conv's weight and bias.
            if node.op == .batchNorm, node.inputs.count >= 5, node.inputs[3...4].allSatisfy(isParam),
               node.inputs[1...2].allSatisfy({ $0.isEmpty || isParam($0) }),
               let pi = producerIndex[node.inputs[0]], [.conv1d, .conv2d].contains(out[pi].node.op), out[pi].fused == .none,
               readers[node.inputs[0]] == 1, isParam(out[pi].node.inputs[1]) {
                let conv = out[pi]
                let w = store[conv.node.inputs[1]]!
                let c = w.shape[0]
                let mean = store[node.inputs[3]]!, variance = store[node.inputs[4]]!
                guard mean.count == c, variance.count == c,
                      node.inputs[1].isEmpty || store[node.inputs[1]]!.count == c,
                      node.inputs[2].isEmpty || store[node.inputs[2]]!.count == c else {
                    throw WconvError.invalid("node '\(node.name)': batchNorm parameters do not match the \(c) channels of conv '\(conv.node.name)'")
                }
                let (scale, shift) = foldBatchNorm(weight: node.inputs[1].isEmpty ? nil : UnsafePointer(store[node.inputs[1]]!.pointer),
                                                   bias: node.inputs[2].isEmpty ? nil : UnsafePointer(store[node.inputs[2]]!.pointer),
                                                   mean: mean.pointer, variance: variance.pointer,
                                                   epsilon: Float(node.float("epsilon") ?? 1e-5), c: c)
                let per = w.count / max(c, 1)
                var fw = [Float](repeating: 0, count: w.count)
                for o in 0..<c { for k in 0..<per { fw[o * per + k] = w.pointer[o * per + k] * scale[o] } }
                var fb = shift
                if conv.node.inputs.count > 2, isParam(conv.node.inputs[2]), let b = store[conv.node.inputs[2]], b.count == c {
                    for o in 0..<c { fb[o] += b.pointer[o] * scale[o] }
                }
                let wName = "\(conv.node.name)::folded.weight", bName = "\(conv.node.name)::folded.bias"
                store.add(wName, values: fw, shape: w.shape)
                store.add(bName, values: fb, shape: [c])
                replace(pi, conv, weight: wName, bias: bName, outputs: node.outputs)
                continue
            }
            // A constant scale or shift over a conv's sole output, one value or one per channel (Paddle's
            // learnable affine after each conv of PP-LCNet: ×a + b with scalars): folded into the conv's
            // weight and bias, so the activation after it can fuse too.
            if [.mul, .div, .add, .sub].contains(node.op), node.inputs.count == 2,
               let xi = node.inputs.firstIndex(where: { v in producerIndex[v].map { [.conv1d, .conv2d].contains(out[$0].node.op) } ?? false }),
               xi == 0 || node.op == .mul || node.op == .add, isParam(node.inputs[1 - xi]), readers[node.inputs[xi]] == 1,
               let pi = producerIndex[node.inputs[xi]], out[pi].fused == .none, isParam(out[pi].node.inputs[1]),
               out[pi].node.inputs.count < 3 || out[pi].node.inputs[2].isEmpty || isParam(out[pi].node.inputs[2]) {
                let conv = out[pi]
                let w = store[conv.node.inputs[1]]!, k = store[node.inputs[1 - xi]]!
                let o = w.shape[0], outRank = conv.node.op == .conv2d ? 4 : 3
                // One value, or o values on the channel axis of the conv's output ([o, 1, 1], [1, o, 1, 1], …).
                let s = k.shape, perChannel = k.count == o && s.count <= outRank && s.count >= outRank - 1
                    && s[s.count - (outRank - 1)] == o && s.filter { $0 != 1 }.count <= 1
                if k.count == 1 && s.count <= outRank || perChannel {
                    let value = { (c: Int) in k.pointer[k.count == 1 ? 0 : c] }
                    let hasBias = conv.node.inputs.count > 2 && !conv.node.inputs[2].isEmpty
                    var b = (0..<o).map { hasBias ? store[conv.node.inputs[2]]!.pointer[$0] : 0 }
                    var wName = conv.node.inputs[1]
                    if node.op == .mul || node.op == .div {
                        let per = w.count / max(o, 1)
                        var fw = [Float](repeating: 0, count: w.count)
                        for c in 0..<o {
                            let f = value(c)
                            for j in 0..<per { fw[c * per + j] = node.op == .mul ? w.pointer[c * per + j] * f : w.pointer[c * per + j] / f }
                            b[c] = node.op == .mul ? b[c] * f : b[c] / f
                        }
                        wName = "\(node.name)::folded.weight"
                        store.add(wName, values: fw, shape: w.shape)
                    } else {
                        for c in 0..<o { b[c] = node.op == .add ? b[c] + value(c) : b[c] - value(c) }
                    }
                    let bName = "\(node.name)::folded.bias"
                    store.add(bName, values: b, shape: [o])
                    replace(pi, conv, weight: wName, bias: bName, outputs: node.outputs)
                    continue
                }
            }
            // Standalone eval BN: per-channel scale/shift computed once.
            if node.op == .batchNorm, node.inputs.count >= 5, node.inputs[3...4].allSatisfy(isParam),
               node.inputs[1...2].allSatisfy({ $0.isEmpty || isParam($0) }) {
                let mean = store[node.inputs[3]]!, variance = store[node.inputs[4]]!
                let c = mean.count
                guard variance.count == c else { throw WconvError.invalid("node '\(node.name)': running_mean has \(c) values, running_var \(variance.count)") }
                let (scale, shift) = foldBatchNorm(weight: node.inputs[1].isEmpty ? nil : UnsafePointer(store[node.inputs[1]]!.pointer),
                                                   bias: node.inputs[2].isEmpty ? nil : UnsafePointer(store[node.inputs[2]]!.pointer),
                                                   mean: mean.pointer, variance: variance.pointer,
                                                   epsilon: Float(node.float("epsilon") ?? 1e-5), c: c)
                store.add("\(node.name)::scale", values: scale, shape: [c])
                store.add("\(node.name)::shift", values: shift, shape: [c])
                en.node.inputs = [node.inputs[0], "\(node.name)::scale", "\(node.name)::shift"]
                en.isAffine = true
            }
            // Activation over the sole output of a conv / affine BN / linear: fuse into its epilogue.
            if let act = Activation.from(node), let pi = producerIndex[node.inputs[0]], readers[node.inputs[0]] == 1,
               out[pi].fused == .none, [.conv1d, .conv2d, .linear, .add, .sub, .mul, .div].contains(out[pi].node.op) || out[pi].isAffine,
               out[pi].node.outputs.count == 1 {
                out[pi].fused = act
                out[pi].node.outputs = node.outputs
                for o in node.outputs { producerIndex[o] = pi }
                continue
            }
            out.append(en)
            for o in en.node.outputs { producerIndex[o] = out.count - 1 }
        }
        return out
    }
}
