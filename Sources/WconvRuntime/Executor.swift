import Foundation
import OrderedCollections
import WconvGraph
import WconvTensor

/// The interpreter shared by `InferenceSession` and `TrainingSession`: value ids, compiled steps for
/// the current input shapes, the buffer plan, and the forward pass.
final class Executor {
    let graph: ModelGraph
    let nodes: [ExecNode]
    let params: ParameterStore
    /// Value names ↔ ids. Parameters, graph inputs and node outputs each get one id.
    private(set) var valueIds: [String: Int] = [:]
    private(set) var valueNames: [String] = []
    /// Parameter name for value ids that are parameters.
    private(set) var paramName: [Int: String] = [:]
    /// True: every value keeps its own buffer (backward needs them); false: liveness-based reuse.
    let keepAllValues: Bool

    // Compiled for `plannedInputShapes`.
    private(set) var plannedInputShapes: [[Int]]? = nil
    private(set) var steps: [Step] = []
    private(set) var shapes: [[Int]?] = []
    private(set) var ptrs: [UnsafeMutablePointer<Float>?] = []
    /// Root value whose buffer a value shares (itself unless it is a view).
    private(set) var root: [Int] = []
    private var arena: [UnsafeMutablePointer<Float>] = []
    private(set) var arenaFloats = 0
    /// Per-step saved state for backward (BN/LN statistics, dropout masks).
    var aux: [Int: UnsafeMutablePointer<Float>] = [:]

    let workspace = Workspace(), staging = Workspace(), staging2 = Workspace()
    var rng = SplitMix64(seed: 0x5EED)
    /// Per BN node name: how it behaves while training.
    var bnMode: [String: BatchNormMode] = [:]

    init(graph: ModelGraph, nodes: [ExecNode], params: ParameterStore, keepAllValues: Bool) throws {
        self.graph = graph
        self.nodes = nodes
        self.params = params
        self.keepAllValues = keepAllValues
        guard !nodes.isEmpty else {
            throw WconvError.invalid("the model has no graph (weights only): run and train need a recognised architecture or a graph-carrying format; try `wconv import --arch NAME`")
        }
        func id(_ name: String) -> Int {
            if let i = valueIds[name] { return i }
            valueIds[name] = valueNames.count
            valueNames.append(name)
            return valueNames.count - 1
        }
        for (name, _) in params.entries { paramName[id(name)] = name }
        for input in graph.inputs { _ = id(input.name) }
        var defined = Set(graph.inputs.map(\.name)).union(params.entries.keys)
        for en in nodes {
            for inp in en.node.inputs where !inp.isEmpty && !defined.contains(inp) {
                throw WconvError.invalid("node '\(en.node.name)' (\(en.node.op)) reads '\(inp)', which no earlier node, graph input or parameter provides")
            }
            for out in en.node.outputs {
                guard paramName[valueIds[out] ?? -1] == nil else {
                    throw WconvError.invalid("node '\(en.node.name)' writes '\(out)', which is also a parameter name")
                }
                _ = id(out); defined.insert(out)
            }
        }
        for out in graph.outputs where !defined.contains(out.name) {
            throw WconvError.invalid("graph output '\(out.name)' is not produced by any node")
        }
    }

    deinit {
        freeArena()
    }

    private func freeArena() {
        for p in arena { p.deallocate() }
        arena = []
        for p in aux.values { p.deallocate() }
        aux = [:]
    }

    func id(_ name: String) -> Int? { valueIds[name] }

    /// Integer values of a constant parameter (reshape shapes, pads given as inputs).
    private func intConstant(_ name: String) -> [Int]? {
        guard let t = graph.parameters[name] ?? graph.aliases[name].flatMap({ graph.parameters[$0] }) else { return nil }
        return t.doubles().map { $0.isFinite ? Int(max(min($0, 9.0e15), -9.0e15)) : 0 }
    }

    /// Compiles steps and plans buffers for these input shapes (no-op when already planned).
    func plan(inputShapes: [[Int]]) throws {
        if plannedInputShapes == inputShapes { return }
        freeArena()
        plannedInputShapes = nil
        let nValues = valueNames.count
        var shp = [[Int]?](repeating: nil, count: nValues)
        for (vid, name) in paramName { shp[vid] = params[name]!.shape }
        for (k, input) in graph.inputs.enumerated() { shp[valueIds[input.name]!] = inputShapes[k] }
        var newSteps: [Step] = []
        var rt = Array(0..<nValues)
        // Values computed from shapes alone (ONNX Shape → Gather → Concat → Reshape chains) are
        // evaluated once here and become constants; `known` holds their buffers.
        var known: [Int: UnsafeMutablePointer<Float>] = [:]
        var foldBuffers: [UnsafeMutablePointer<Float>] = []
        func knownValues(_ name: String) -> [Double]? {
            guard let v = valueIds[name], let p = known[v], let sh = shp[v] else { return nil }
            return (0..<sh.reduce(1, *)).map { Double(p[$0]) }
        }
        let intOf: (String) -> [Int]? = { name in
            self.intConstant(name) ?? knownValues(name).map { $0.map { $0.isFinite ? Int(max(min($0, 9.0e15), -9.0e15)) : 0 } }
        }
        let valuesOf: (String) -> [Double]? = { name in
            if let t = self.graph.parameters[name] { return t.doubles() }
            return knownValues(name)
        }
        var knownInts = KnownValues(parameter: { self.graph.parameters[$0] }, inputs: graph.inputs)
        for (ni, en) in nodes.enumerated() {
            var en = en
            en.node = knownInts.resolve(en.node)
            let ins = en.node.inputs.map { $0.isEmpty ? -1 : valueIds[$0]! }
            let inShapes = ins.map { $0 < 0 ? nil : shp[$0] }
            let (kernel, outShapes) = try compileFoldingKnownValues(en, inputShapes: inShapes, known: &knownInts,
                                                                    intConstant: intOf, constant: valuesOf)
            if try foldIfConstant(kernel, node: ni, ins: ins, outShapes: outShapes, shapes: &shp, known: &known, buffers: &foldBuffers) != nil {
                continue
            }
            guard outShapes.count == en.node.outputs.count || (outShapes.count == 1 && en.node.outputs.count >= 1) else {
                throw WconvError.invalid("node '\(en.node.name)': expected \(outShapes.count) outputs, graph lists \(en.node.outputs.count)")
            }
            for sh in outShapes {
                guard let n = try? Tensor.checkedNumel(sh), n <= 1 << 34 else {
                    throw WconvError.invalid("node '\(en.node.name)' (\(en.node.op)) would produce a tensor of shape \(sh), too large to allocate")
                }
            }
            let outs = en.node.outputs.prefix(outShapes.count).map { valueIds[$0]! }
            for (k, o) in outs.enumerated() { shp[o] = outShapes[k] }
            if case .view = kernel { rt[outs[0]] = rt[ins[0]] }
            newSteps.append(Step(node: ni, kernel: kernel, inputs: ins, outputs: outs))
            try checkAccesses(newSteps[newSteps.count - 1], shapes: shp, constant: { v in
                known[v].map { UnsafePointer($0) } ?? self.paramName[v].map { UnsafePointer(self.params[$0]!.pointer) } })
        }
        // Last step reading each root buffer (graph outputs live to the end).
        var lastUse = [Int](repeating: -1, count: nValues)
        for (si, st) in newSteps.enumerated() {
            for v in st.inputs where v >= 0 { lastUse[rt[v]] = max(lastUse[rt[v]], si) }
            for v in st.outputs { lastUse[rt[v]] = max(lastUse[rt[v]], si) }
        }
        for out in graph.outputs { lastUse[rt[valueIds[out.name]!]] = Int.max }
        // Assign buffers: params point into the store; activations get slots.
        var p = [UnsafeMutablePointer<Float>?](repeating: nil, count: nValues)
        for (vid, name) in paramName { p[vid] = params[name]!.pointer }
        for (vid, b) in known { p[vid] = b }
        var slotCap: [Int] = []
        var slotOf = [Int](repeating: -1, count: nValues)
        var free: [Int] = []
        func allocate(_ v: Int) {
            let need = max(shp[v]?.reduce(1, *) ?? 0, 1)
            if !keepAllValues, let best = free.filter({ slotCap[$0] >= need }).min(by: { slotCap[$0] < slotCap[$1] }) ?? free.max(by: { slotCap[$0] < slotCap[$1] }) {
                free.removeAll { $0 == best }
                slotCap[best] = max(slotCap[best], need)
                slotOf[v] = best
            } else {
                slotCap.append(need)
                slotOf[v] = slotCap.count - 1
            }
        }
        for input in graph.inputs { allocate(valueIds[input.name]!) }
        for (si, st) in newSteps.enumerated() {
            for v in st.outputs where rt[v] == v { allocate(v) }
            if keepAllValues { continue }
            var released = Set<Int>()
            for v in st.inputs + st.outputs where v >= 0 && paramName[rt[v]] == nil && lastUse[rt[v]] == si {
                let r = rt[v]
                if slotOf[r] >= 0 && !released.contains(r) { released.insert(r); free.append(slotOf[r]) }
            }
        }
        var slotPtr: [UnsafeMutablePointer<Float>] = []
        arenaFloats = 0
        for cap in slotCap {
            let b = UnsafeMutablePointer<Float>.allocate(capacity: cap)
            b.initialize(repeating: 0, count: cap)
            slotPtr.append(b)
            arenaFloats += cap
        }
        arena = slotPtr + foldBuffers
        for v in 0..<nValues where paramName[v] == nil {
            let r = rt[v]
            if slotOf[r] >= 0 { p[v] = slotPtr[slotOf[r]] } else if r != v { p[v] = p[r] }
        }
        // Saved state for backward and dropout masks.
        for (si, st) in newSteps.enumerated() {
            var n = 0
            switch st.kernel {
            case .batchNorm(_, let c, _, _, _, _): n = max(2 * c, 1)
            case .layerNorm(let rows, _, _): n = max(2 * rows, 1)  // kept for empty inputs too: runStep reads it
            case .dropout(_, let count): n = keepAllValues ? count : 0
            case .attention(let g, let maskShape):
                n = (keepAllValues ? 1 : 0) * g.b * g.heads * g.probsPerHead + (maskShape != nil ? g.b * g.heads * g.probsPerHead : 0)
            default: break
            }
            if n > 0 {
                let b = UnsafeMutablePointer<Float>.allocate(capacity: n)
                b.initialize(repeating: 0, count: n)
                aux[si] = b
            }
        }
        steps = newSteps
        shapes = shp
        ptrs = p
        root = rt
        plannedInputShapes = inputShapes
    }

    /// Evaluates a step at plan time when its result depends only on shapes and constants (small
    /// integer-like tensors); returns true when folded. Never folds reads of trainable-sized
    /// parameters, so gradients are unaffected.
    private func foldIfConstant(_ kernel: Kernel, node ni: Int, ins: [Int], outShapes: [[Int]], shapes shp: inout [[Int]?],
                                known: inout [Int: UnsafeMutablePointer<Float>], buffers: inout [UnsafeMutablePointer<Float>]) throws -> Bool? {
        let outNames = nodes[ni].node.outputs.prefix(outShapes.count)
        let outs = outNames.map { valueIds[$0]! }
        let total = outShapes.reduce(0) { $0 + $1.reduce(1, *) }
        guard total <= 1 << 16 else { return nil }
        let live = ins.filter { $0 >= 0 }
        let anyKnown = live.contains { known[$0] != nil }
        let allConst = live.allSatisfy { known[$0] != nil || (paramName[$0] != nil && (shp[$0]?.reduce(1, *) ?? 0) <= 64) }
        switch kernel {
        case .constant: break
        case .fill, .range: guard allConst else { return nil }
        case .gather, .binary, .unary, .view, .concat, .slice, .transpose, .expand, .whereSelect, .reduce, .split, .arange:
            guard anyKnown && allConst else { return nil }
        default: return nil
        }
        for (k, o) in outs.enumerated() { shp[o] = outShapes[k] }
        if case .view = kernel, let src = live.first {
            guard let srcPtr = known[src] ?? paramName[src].map({ params[$0]!.pointer }) else { return nil }
            known[outs[0]] = srcPtr
            return true
        }
        var tmp = [UnsafeMutablePointer<Float>?](repeating: nil, count: valueNames.count)
        for v in live {
            // A Shape node's own input is an activation: its kernel never reads it.
            if let k = known[v] { tmp[v] = k } else if let n = paramName[v] { tmp[v] = params[n]!.pointer }
        }
        for (k, o) in outs.enumerated() {
            let n = max(outShapes[k].reduce(1, *), 1)
            let b = UnsafeMutablePointer<Float>.allocate(capacity: n)
            b.initialize(repeating: 0, count: n)
            buffers.append(b)
            tmp[o] = b
            known[o] = b
        }
        let savedSteps = steps, savedPtrs = ptrs, savedShapes = shapes
        steps = [Step(node: ni, kernel: kernel, inputs: ins, outputs: outs)]
        ptrs = tmp
        shapes = shp
        defer { steps = savedSteps; ptrs = savedPtrs; shapes = savedShapes }
        try checkAccesses(steps[0], shapes: shp, constant: { v in known[v].map { UnsafePointer($0) } })
        try runStep(0, training: false)
        return true
    }

    /// Validates and copies the caller's inputs into their buffers (plans for their shapes first).
    func bindInputs(_ inputs: [String: Tensor]) throws {
        var inputShapes: [[Int]] = []
        for info in graph.inputs {
            guard let t = inputs[info.name] else {
                throw WconvError(.usage, "missing input '\(info.name)' (expected shape \(info.shape.map { $0.map(String.init) ?? "?" }))")
            }
            guard t.shape.count == info.shape.count, zip(t.shape, info.shape).allSatisfy({ $1 == nil || $0 == $1! }) else {
                throw WconvError.invalid("input '\(info.name)' has shape \(t.shape), the model expects \(info.shape.map { $0.map(String.init) ?? "?" })")
            }
            inputShapes.append(t.shape)
        }
        for name in inputs.keys where !graph.inputs.contains(where: { $0.name == name }) {
            throw WconvError(.usage, "unknown input '\(name)'; the model's inputs are \(graph.inputs.map(\.name))")
        }
        try plan(inputShapes: inputShapes)
        for info in graph.inputs {
            let t = inputs[info.name]!
            let dst = ptrs[valueIds[info.name]!]!
            let n = t.numel
            if t.dtype == .f32 {
                // One copy straight from the caller's bytes.
                t.withContiguousBytes { raw in
                    if n > 0 { UnsafeMutableRawPointer(dst).copyMemory(from: raw.baseAddress!, byteCount: n * 4) }
                }
            } else {
                let vals = t.converted(to: .f32).tensor.floats()
                vals.withUnsafeBufferPointer { if n > 0 { dst.update(from: $0.baseAddress!, count: n) } }
            }
        }
    }

    /// A copy of a value as a tensor.
    func tensor(_ vid: Int) -> Tensor? {
        guard let sh = shapes[vid], let p = ptrs[vid] else { return nil }
        let n = sh.reduce(1, *)
        let storage = Storage(copying: UnsafeRawBufferPointer(start: p, count: n * 4))
        return try? Tensor(dtype: .f32, shape: sh, storage: storage)
    }

    /// Runs every step. `training` selects batch statistics (per `bnMode`) and dropout masks.
    func forward(training: Bool) throws {
        for si in steps.indices { try runStep(si, training: training) }
    }

    private func indices(_ vid: Int, bound: Int, node: String) throws -> [Int] {
        let n = shapes[vid]!.reduce(1, *)
        let p = ptrs[vid]!
        var out = [Int](repeating: 0, count: n)
        for i in 0..<n {
            let f = p[i]
            guard f.isFinite, f == f.rounded(), abs(f) < 9e18 else { throw WconvError.invalid("node '\(node)': index \(f) is not an integer") }
            var v = Int(f)
            if v < 0 { v += bound }
            guard v >= 0 && v < bound else {
                throw WconvError.invalid("node '\(node)': index \(Int(f)) out of range for a dimension of size \(bound)")
            }
            out[i] = v
        }
        return out
    }

    func runStep(_ si: Int, training: Bool) throws {
        let st = steps[si]
        @inline(__always) func inp(_ k: Int) -> UnsafeMutablePointer<Float>? {
            k < st.inputs.count && st.inputs[k] >= 0 ? ptrs[st.inputs[k]] : nil
        }
        let x = inp(0)
        let y = ptrs[st.outputs[0]]!
        switch st.kernel {
        case .conv(let g, let act):
            conv2dForward(x!, g, weight: inp(1)!, bias: inp(2).map { UnsafePointer($0) }, activation: act, y,
                          workspace: workspace, staging: staging)
        case .batchNorm(let n, let c, let inner, let eps, let momentum, let act):
            let name = nodes[st.node].node.name
            let saved = aux[si]!
            let mode = bnMode[name] ?? .train
            if training && mode == .train {
                batchNormTrainForward(x!, n: n, c: c, inner: inner, weight: inp(1), bias: inp(2),
                                      runningMean: inp(3), runningVar: inp(4), momentum: momentum, epsilon: eps,
                                      savedMean: saved, savedInvStd: saved + c, y)
                applyActivation(act, y, y, n * c * inner)
            } else {
                guard let mean = inp(3), let variance = inp(4) else {
                    throw WconvError.invalid("node '\(name)': batchNorm in eval mode needs running_mean and running_var")
                }
                for ch in 0..<c {
                    saved[ch] = mean[ch]
                    saved[c + ch] = Float(1 / (Double(variance[ch]) + Double(eps)).squareRoot())
                }
                let (scale, shift) = foldBatchNorm(weight: inp(1), bias: inp(2), mean: mean, variance: variance, epsilon: eps, c: c)
                channelAffine(x!, n: n, c: c, inner: inner, scale: scale, shift: shift, activation: act, y)
            }
        case .affine(let n, let c, let inner, let act):
            channelAffine(x!, n: n, c: c, inner: inner, scale: inp(1)!, shift: inp(2)!, activation: act, y)
        case .linear(let rows, let inF, let outF, let act):
            linearForward(x!, rows: rows, inF: inF, outF: outF, weight: inp(1)!, bias: inp(2).map { UnsafePointer($0) }, activation: act, y)
        case .matmul(let p):
            matmulForward(x!, inp(1)!, p, y)
        case .activation(let act, let count):
            applyActivation(act, x!, y, count)
        case .maxPool(let g):
            maxPoolForward(x!, g, y)
        case .avgPool(let g):
            avgPoolForward(x!, g, y)
        case .adaptiveAvgPool(let planes, let h, let w, let oh, let ow):
            adaptiveAvgPoolForward(x!, planes: planes, h: h, w: w, oh: oh, ow: ow, y)
        case .binary(let kind, let p):
            binaryForward(kind, x!, inp(1)!, p, y)
            let act = nodes[st.node].fused
            if act != .none { applyActivation(act, y, y, p.count) }
        case .concat(let lengths, let outer, let inner):
            concatForward((0..<st.inputs.count).map { UnsafePointer(inp($0)!) }, lengths: lengths, outer: outer, inner: inner, y)
        case .view:
            break
        case .transpose(let shape, let perm):
            transposeForward(x!, shape: shape, perm: perm, y)
        case .dropout(let ratio, let count):
            if training && ratio > 0, let mask = aux[si] {
                dropoutMask(mask, count: count, ratio: ratio, rng: &rng)
                Parallel.forRange(count) { r in for i in r { y[i] = x![i] * mask[i] } }
            } else if UnsafePointer(y) != UnsafePointer(x!) {
                copyFloats(y, from: x!, count: count)
            }
        case .layerNorm(let rows, let inner, let eps):
            let saved = aux[si]!
            layerNormForward(x!, rows: rows, inner: inner, weight: inp(1), bias: inp(2), epsilon: eps, y,
                             savedMean: saved, savedInvStd: saved + rows)
        case .gather(let outer, let axisLen, let inner, let di, let ii):
            let idx = try indices(st.inputs[ii], bound: axisLen, node: nodes[st.node].node.name)
            gatherForward(inp(di)!, outer: outer, axisLen: axisLen, inner: inner, indices: idx, y)
        case .softmax(let outer, let axisLen, let inner):
            softmaxForward(x!, outer: outer, axisLen: axisLen, inner: inner, y)
        case .pad(let shape, let pads, let value):
            padForward(x!, shape: shape, pads: pads, value: value, y)
        case .attention(let g, let maskShape):
            let full = g.b * g.heads * g.probsPerHead
            // Probabilities: kept per step for backward in training sessions, scratch otherwise.
            let probs = keepAllValues ? aux[si]! : staging2.get(full)
            var expanded: UnsafePointer<Float>? = nil
            if let maskShape, let m = inp(3) {
                let buf = aux[si]! + (keepAllValues ? full : 0)
                let plan = BroadcastPlan(maskShape, [g.b, g.heads, g.tq, g.tk])!
                fillFloats(buf, with: 0, count: full)
                // Broadcast the mask into the zeroed buffer: mask + 0 (the plan's b operand is full-size).
                binaryForward(.add, m, UnsafePointer(buf), plan, buf)
                expanded = UnsafePointer(buf)
            }
            attentionForward(x!, inp(1)!, inp(2)!, mask: expanded, g, probs: probs, y)
        case .slice(let plan):
            sliceCopy(x!, plan, y, backward: false)
        case .arange(let count, let start, let step):
            for i in 0..<count { y[i] = Float(start + i * step) }
        case .reduce(let kind, let plan):
            reduceForward(kind, x!, plan, y)
        case .unary(let kind, let count):
            unaryForward(kind, x!, y, count)
        case .whereSelect(let strides, let outShape):
            whereForward(x!, inp(1)!, inp(2)!, strides: strides, outShape: outShape, y)
        case .split(let lengths, let outer, let inner):
            let total = lengths.reduce(0, +)
            var off = 0
            for (k, len) in lengths.enumerated() {
                let dst = ptrs[st.outputs[k]]!
                for o in 0..<outer { copyFloats(dst + o * len * inner, from: x! + (o * total + off) * inner, count: len * inner) }
                off += len
            }
        case .constant(let vals):
            for (i, v) in vals.enumerated() { y[i] = v }
        case .fill(let value, let count):
            fillFloats(y, with: value, count: count)
        case .range(let start, let delta, let count):
            for i in 0..<count { y[i] = start + Float(i) * delta }
        case .expand(let plan):
            fillFloats(y, with: 0, count: plan.count)
            binaryForward(.add, x!, y, plan, y)
        case .onnx(let k):
            try runONNX(k, st)
        }
    }
}

/// How a BatchNorm node behaves in a training forward.
public enum BatchNormMode: String, Sendable, Codable {
    /// Batch statistics, running stats updated, affine trainable.
    case train
    /// Running (eval) statistics, affine parameters trainable.
    case frozen
    /// Running statistics and affine parameters frozen.
    case frozenAffine
}
