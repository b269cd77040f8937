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
    /// Values whose buffers hold NHWC data (DNNLLayoutPlan); their shapes stay NCHW.
    private(set) var nhwcValues = Set<Int>()
    /// Values whose buffer a later step writes over (training plans' in-place adds).
    private(set) var overwritten = Set<Int>()
    private var arena: [UnsafeMutablePointer<Float>] = []
    private(set) var arenaFloats = 0
    /// Per-step saved state for backward (BN/LN statistics, dropout masks).
    var aux: [Int: UnsafeMutablePointer<Float>] = [:]

    let workspace = Workspace(), staging = Workspace(), staging2 = Workspace()
    var rng = SplitMix64(seed: 0x5EED)
    /// `.bf16` runs oneDNN convolutions and linear layers in bfloat16 (set before the first plan): inference plans keep
    /// some activations bf16 (DNNLPrecisionPlan), training plans keep every value f32 (autocast-style).
    var precision = Precision.f32
    /// Per BN node name: how it behaves while training.
    var bnMode: [String: BatchNormMode] = [:]
    /// Set by a data-parallel trainer: batch-statistics BN uses the global batch's statistics.
    var batchNormSync: BatchNormSync?

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
        for c in planCache { c.release() }
    }

    private func freeArena() {
        for p in arena { p.deallocate() }
        arena = []
        for p in aux.values { p.deallocate() }
        aux = [:]
    }

    /// A plan for other input shapes, kept so alternating shapes (a last smaller batch, images of
    /// a few sizes) are planned once each. Owns its buffers.
    private final class CachedPlan {
        let inputShapes: [[Int]]
        let steps: [Step], shapes: [[Int]?], ptrs: [UnsafeMutablePointer<Float>?], root: [Int]
        let arena: [UnsafeMutablePointer<Float>], arenaFloats: Int
        let aux: [Int: UnsafeMutablePointer<Float>]
        let nhwcValues: Set<Int>, overwritten: Set<Int>
        init(_ e: Executor, _ shapes: [[Int]]) {
            inputShapes = shapes
            steps = e.steps; self.shapes = e.shapes; ptrs = e.ptrs; root = e.root; nhwcValues = e.nhwcValues; overwritten = e.overwritten
            arena = e.arena; arenaFloats = e.arenaFloats; aux = e.aux
        }
        func release() {
            for p in arena { p.deallocate() }
            for p in aux.values { p.deallocate() }
        }
    }
    private var planCache: [CachedPlan] = []
    /// Plans kept besides the current one. Training plans hold every activation, so none is kept
    /// (a last smaller batch must not double peak memory); inference arenas are liveness-packed.
    private var planCacheLimit: Int { keepAllValues ? 0 : 2 }

    /// Moves the current plan into the cache and restores the one for `inputShapes` when cached.
    private func switchPlan(to inputShapes: [[Int]]) -> Bool {
        if let shapes = plannedInputShapes {
            planCache.append(CachedPlan(self, shapes))
            arena = []; aux = [:]
            plannedInputShapes = nil
        }
        guard let i = planCache.firstIndex(where: { $0.inputShapes == inputShapes }) else {
            while planCache.count > planCacheLimit { planCache.removeFirst().release() }
            return false
        }
        let c = planCache.remove(at: i)
        steps = c.steps; shapes = c.shapes; ptrs = c.ptrs; root = c.root; nhwcValues = c.nhwcValues; overwritten = c.overwritten
        arena = c.arena; arenaFloats = c.arenaFloats; aux = c.aux
        plannedInputShapes = c.inputShapes
        while planCache.count > planCacheLimit { planCache.removeFirst().release() }
        return true
    }

    func id(_ name: String) -> Int? { valueIds[name] }

    /// The parameters' values changed: every plan (current and cached) drops what its steps derived
    /// from them (ParameterDerivedCache), so no step computes with stale weights.
    func parametersChanged() {
        for st in steps + planCache.flatMap(\.steps) { (st.kernel as? ParameterDerivedCache)?.parametersChanged() }
    }

    /// Compiles steps and plans buffers for these input shapes: a no-op when they are the current
    /// plan's, restored when one of the last few plans had them.
    func plan(inputShapes: [[Int]]) throws {
        if plannedInputShapes == inputShapes { return }
        if switchPlan(to: inputShapes) { return }
        freeArena()
        plannedInputShapes = nil
        let nValues = valueNames.count
        var shp = [[Int]?](repeating: nil, count: nValues)
        for (vid, name) in paramName { shp[vid] = params[name]!.shape }
        for (k, input) in graph.inputs.enumerated() { shp[valueIds[input.name]!] = inputShapes[k] }
        var newSteps: [Step] = []
        var rt = Array(0..<nValues)
        // Shapes, dtypes and values known before running come from the graph's specialisation
        // for these input shapes (the one shape rule and folding pass of WconvGraph); folded values
        // get constant buffers and no step.
        var byName: [String: [Int]] = [:]
        for (k, input) in graph.inputs.enumerated() { byName[input.name] = inputShapes[k] }
        let spec = try graph.specialize(inputShapes: byName)
        var known: [Int: UnsafeMutablePointer<Float>] = [:]
        var foldBuffers: [UnsafeMutablePointer<Float>] = []
        // Until the arena owns them, a refusal below (a kernel or access check) frees them.
        var foldBuffersOwned = false
        defer { if !foldBuffersOwned { for b in foldBuffers { b.deallocate() } } }
        for (name, t) in spec.folded {
            guard let v = valueIds[name], paramName[v] == nil else { continue }
            let values = t.dtype == .f32 ? t.floats() : t.converted(to: .f32).tensor.floats()
            let b = UnsafeMutablePointer<Float>.allocate(capacity: max(values.count, 1))
            b.initialize(repeating: 0, count: max(values.count, 1))
            values.withUnsafeBufferPointer { if let base = $0.baseAddress { b.update(from: base, count: values.count) } }
            foldBuffers.append(b)
            known[v] = b
            shp[v] = t.shape
        }
        // The buffer of a value known before running (folded constant or parameter), for access checks.
        func constantBuffer(_ v: Int) -> UnsafePointer<Float>? {
            known[v].map { UnsafePointer($0) } ?? paramName[v].map { UnsafePointer(params[$0]!.pointer) }
        }
        let layouts = DNNL.isEnabled ? layoutPlan(spec, known: Set(known.keys), training: keepAllValues) : nil
        // Residual adds run inside the conv before them in inference plans (DNNLResidualFusion): conv node → add node.
        let fusedAdds = keepAllValues ? [:] : layouts.map { residualAdds(spec, layouts: $0) } ?? [:]
        var absorbedAdds = Set<Int>()
        let bf16Values = precision == .bf16 && !keepAllValues ? layouts.map { precisionPlan(spec, layouts: $0, residualAdds: fusedAdds).bf16 } ?? [] : []
        for (ni, en) in nodes.enumerated() {
            if absorbedAdds.contains(ni) { continue }
            var en = en
            let outNames = en.node.outputs.filter { !$0.isEmpty }
            if !outNames.isEmpty, outNames.allSatisfy({ spec.folded[$0] != nil }) { continue }
            if let r = spec.resolved[en.node.name] { en.node.inputs = r.inputs; en.node.attributes = r.attributes }
            if let ai = fusedAdds[ni] { en = mergingResidual(en, add: nodes[ai]) }
            let ins = en.node.inputs.map { $0.isEmpty ? -1 : valueIds[$0]! }
            var stepLayout = StepLayout()
            if let layouts, !ins.isEmpty, !en.node.outputs.isEmpty {
                stepLayout.nhwcInput = layouts.nhwc.contains(ins[0])
                stepLayout.nhwcOutput = layouts.nhwc.contains(valueIds[en.node.outputs[0]] ?? -1)
                stepLayout.constantWeights = ins.count > 1 && (paramName[ins[1]] != nil || known[ins[1]] != nil)
                stepLayout.bf16 = precision == .bf16
                stepLayout.bf16Input = bf16Values.contains(ins[0])
                stepLayout.bf16Output = bf16Values.contains(valueIds[en.node.outputs[0]] ?? -1)
            }
            let inShapes = ins.map { $0 < 0 ? nil : shp[$0] }
            let dtypes = en.node.inputs.map { $0.isEmpty ? nil : spec.dtypes[$0] ?? .f32 }
            var outShapes: [[Int]] = []
            for name in en.node.outputs {
                guard let sh = spec.shapes[name] else {
                    throw WconvError.invalid("node '\(en.node.name)' (\(en.node.op)): no shape inferred for its output '\(name)'")
                }
                outShapes.append(sh)
            }
            let kernel = try compileNode(en, inputShapes: inShapes, outputShapes: outShapes, dtypes: dtypes, training: keepAllValues, layout: stepLayout)
            if let ai = fusedAdds[ni] {
                // residualAdds picks NHWC sums of inference plans, which oneDNN convolutions always take.
                guard (kernel as? DNNLConv2d)?.conv.addsResidual == true else {
                    throw WconvError(.runtime, "internal: conv '\(en.node.name)' did not take the residual add '\(nodes[ai].node.name)'")
                }
                absorbedAdds.insert(ai)
            }
            for sh in outShapes {
                guard let n = try? Tensor.checkedNumel(sh), n <= 1 << 34 else {
                    throw WconvError.invalid("node '\(en.node.name)' (\(en.node.op)) would produce a tensor of shape \(sh), too large to allocate")
                }
            }
            let outs = en.node.outputs.map { valueIds[$0]! }
            for (k, o) in outs.enumerated() { shp[o] = outShapes[k] }
            if kernel.isView { rt[outs[0]] = rt[ins[0]] }
            newSteps.append(Step(node: ni, kernel: kernel, inputs: ins, outputs: outs))
            // The step's accesses are proved against its planned buffers before anything runs.
            try checkAccesses(newSteps[newSteps.count - 1], shapes: shp, constant: constantBuffer)
        }
        if !keepAllValues {
            try foldPoolsIntoConvs(&newSteps, shapes: shp, rt: rt) { try checkAccesses($0, shapes: shp, constant: constantBuffer) }
        }
        // Last step reading each root buffer (graph outputs live to the end).
        var lastUse = [Int](repeating: -1, count: nValues)
        for (si, st) in newSteps.enumerated() {
            for v in st.inputs where v >= 0 { lastUse[rt[v]] = max(lastUse[rt[v]], si) }
            for v in st.outputs { lastUse[rt[v]] = max(lastUse[rt[v]], si) }
        }
        for out in graph.outputs { lastUse[rt[valueIds[out.name]!]] = Int.max }
        aliasOverwrittenInputs(newSteps, rt: &rt, lastUse: &lastUse, constant: Set(known.keys))
        // Assign buffers: params point into the store; activations get slots.
        var p = [UnsafeMutablePointer<Float>?](repeating: nil, count: nValues)
        for (vid, name) in paramName { p[vid] = params[name]!.pointer }
        for (vid, b) in known { p[vid] = b }
        var slotCap: [Int] = []
        var slotOf = [Int](repeating: -1, count: nValues)
        var free: [Int] = []
        // Training plans: value → float offset in its slot, and the free ranges (slot, start, end)
        // of values no backward reads (inPlaceAdds), which later values fill one after another.
        var offsetOf = [Int](repeating: 0, count: nValues)
        var ranges: [(slot: Int, start: Int, end: Int)] = []
        func allocate(_ v: Int) {
            let need = max(shp[v]?.reduce(1, *) ?? 0, 1)
            if keepAllValues {
                // 64-byte aligned starts; the tightest range that holds the value.
                let fits = ranges.indices.filter { ranges[$0].end - (ranges[$0].start + 15) / 16 * 16 >= need }
                if let k = fits.min(by: { ranges[$0].end - ranges[$0].start < ranges[$1].end - ranges[$1].start }) {
                    let start = (ranges[k].start + 15) / 16 * 16
                    slotOf[v] = ranges[k].slot; offsetOf[v] = start
                    ranges[k].start = start + need
                    return
                }
            }
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
        let inPlace = keepAllValues && !TrainingFusion.disabledForTesting ? inPlaceAdds(newSteps, rt: rt, shapes: shp, constant: Set(known.keys), nhwc: layouts?.nhwc ?? []) : [:]
        for (si, st) in newSteps.enumerated() {
            if let add = inPlace[si] {
                if let operand = add.overwritten {
                    slotOf[st.outputs[0]] = slotOf[operand]; offsetOf[st.outputs[0]] = offsetOf[operand]
                } else {
                    allocate(st.outputs[0])
                }
                for v in add.dead { ranges.append((slotOf[v], offsetOf[v], offsetOf[v] + max(shp[v]?.reduce(1, *) ?? 0, 1))) }
                continue
            }
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
        foldBuffersOwned = true
        for v in 0..<nValues where paramName[v] == nil {
            let r = rt[v]
            if slotOf[r] >= 0 { p[v] = slotPtr[slotOf[r]] + offsetOf[r] } else if r != v { p[v] = p[r] }
        }
        // Saved state for backward and dropout masks.
        for (si, st) in newSteps.enumerated() {
            let n = st.kernel.auxFloats(training: keepAllValues)
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
        nhwcValues = layouts?.nhwc ?? []
        overwritten = Set(inPlace.values.flatMap { $0.dead + ($0.overwritten.map { [$0] } ?? []) })
        plannedInputShapes = inputShapes
    }

    /// Training plans: adds whose operands no backward reads — a batch norm's output (its backward
    /// reads x, not y) read by nothing but this add (whose backward reads neither operand), no graph
    /// input, output or constant. The add writes its output over one of them of its size and layout
    /// (PyTorch's `out += identity`), and the slots of the others serve later values: the last
    /// conv branch and the downsample branch of a residual block (ResNet-50 at b16@224: 0.44 GB less).
    private func inPlaceAdds(_ steps: [Step], rt: [Int], shapes: [[Int]?], constant: Set<Int>, nhwc: Set<Int>)
        -> [Int: (overwritten: Int?, dead: [Int])] {
        var readers = [Int](repeating: 0, count: valueNames.count), producer: [Int: Int] = [:]
        for (si, st) in steps.enumerated() {
            for v in st.inputs where v >= 0 { readers[rt[v]] += 1 }
            for v in st.outputs { producer[v] = si }
        }
        var pinned = constant.union(paramName.keys)
        for io in graph.inputs + graph.outputs { if let v = valueIds[io.name] { pinned.insert(v) } }
        var out: [Int: (overwritten: Int?, dead: [Int])] = [:]
        for (si, st) in steps.enumerated() {
            guard let add = st.kernel as? Binary, add.kind == .add, st.inputs.count == 2, st.outputs.count == 1, rt[st.outputs[0]] == st.outputs[0],
                  st.inputs[0] != st.inputs[1] else { continue }
            let y = st.outputs[0]
            let unread = st.inputs.filter { v in
                guard v >= 0, rt[v] == v, readers[v] == 1, !pinned.contains(v), let p = producer[v] else { return false }
                return (steps[p].kernel is NHWCBatchNorm || steps[p].kernel is BatchNorm) && nodes[steps[p].node].fused == .none
            }
            guard !unread.isEmpty else { continue }
            let target = unread.first { shapes[$0] != nil && shapes[$0] == shapes[y] && nhwc.contains($0) == nhwc.contains(y) }
            out[si] = (target, unread.filter { $0 != target })
        }
        return out
    }

    /// The NHWC values of a plan (DNNLLayoutPlan): conv2d steps are oneDNN convolutions, graph
    /// inputs and outputs, parameters and folded values stay NCHW; a training plan's batch norms
    /// work on NHWC too.
    private func layoutPlan(_ spec: GraphSpecialization, known: Set<Int>, training: Bool) -> DNNLLayoutPlan {
        var pinned = Set(paramName.keys).union(known)
        for io in graph.inputs { if let v = valueIds[io.name] { pinned.insert(v) } }
        for io in graph.outputs { if let v = valueIds[io.name] { pinned.insert(v) } }
        var planned: [DNNLLayoutPlan.Node] = []
        var free = Set<Int>()
        for en in nodes {
            var node = en.node
            let outNames = node.outputs.filter { !$0.isEmpty }
            if !outNames.isEmpty, outNames.allSatisfy({ spec.folded[$0] != nil }) { continue }
            if let r = spec.resolved[node.name] { node.inputs = r.inputs }
            let ins = node.inputs.map { $0.isEmpty ? -1 : valueIds[$0]! }
            let outs = node.outputs.map { $0.isEmpty ? -1 : valueIds[$0]! }
            let kind: DNNLLayoutPlan.Node.Kind
            if en.isAffine {
                kind = .other
            } else if node.op == .conv2d {
                // A training plan keeps tiny convs on im2col + GEMM, NCHW (DNNLTrainConv2d.minMACs).
                let macs = (node.outputs.first.flatMap { spec.shapes[$0] }?.reduce(1, *) ?? 0)
                    * (node.inputs.count > 1 ? spec.shapes[node.inputs[1]]?.dropFirst().reduce(1, *) ?? 0 : 0)
                kind = training && macs < DNNLTrainConv2d.minMACs ? .other : .conv
            } else if training && node.op == .batchNorm && node.inputs.first.flatMap({ spec.shapes[$0] })?.count == 4 {
                kind = .channelwise
            } else {
                kind = DNNLLayoutPlan.kind(node.op, inputShapes: node.inputs.map { $0.isEmpty ? nil : spec.shapes[$0] },
                                           outputShape: node.outputs.first.flatMap { spec.shapes[$0] })
            }
            planned.append(.init(kind: kind, inputs: ins, outputs: outs))
            for (k, name) in node.outputs.enumerated() where outs[k] >= 0 {
                if let sh = spec.shapes[name], sh.count == 4, sh[2] * sh[3] == 1 { free.insert(outs[k]) }
            }
        }
        return DNNLLayoutPlan(nodes: planned, valueCount: valueNames.count, pinned: pinned, free: free)
    }

    /// Steps of the current plan on oneDNN, and values kept NHWC between them (tests, reports).
    var dnnlSummary: (convolutions: Int, nhwcValues: Int) {
        let convs = steps.filter { $0.kernel is DNNLConv2d }
        let nhwc = convs.filter { ($0.kernel as! DNNLConv2d).conv.nchwOutput == false }.count
        return (convs.count, nhwc)
    }

    /// oneDNN convolutions of the current plan that add a residual, and how many write into its buffer.
    var dnnlResidualSummary: (fused: Int, inPlace: Int) {
        let fused = steps.filter { ($0.kernel as? DNNLConv2d)?.conv.addsResidual == true }
        return (fused.count, fused.filter { root[$0.outputs[0]] == root[$0.inputs[3]] }.count)
    }

    /// oneDNN convolutions of the current plan computing in bf16, and those writing bf16 outputs.
    var dnnlBF16Summary: (convolutions: Int, bf16Outputs: Int) {
        let convs = steps.compactMap { ($0.kernel as? DNNLConv2d)?.conv ?? ($0.kernel as? DNNLTrainConv2d)?.forwardKernel.conv }.filter(\.computesBF16)
        return (convs.count, convs.filter(\.writesBF16).count)
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

    /// A copy of a value as a tensor (NCHW also when the plan keeps the value NHWC).
    func tensor(_ vid: Int) -> Tensor? {
        guard let sh = shapes[vid], let p = ptrs[vid] else { return nil }
        let n = sh.reduce(1, *)
        if nhwcValues.contains(vid) {
            var out = [Float](repeating: 0, count: n)
            out.withUnsafeMutableBufferPointer { permuteChannels(UnsafePointer(p), $0.baseAddress!, shape: sh, toNHWC: false) }
            return Tensor(shape: sh, floats: out)
        }
        let storage = Storage(copying: UnsafeRawBufferPointer(start: p, count: n * 4))
        return try? Tensor(dtype: .f32, shape: sh, storage: storage)
    }

    /// Copies [N, C, H, W] data between NCHW and NHWC order (`toNHWC`: src is NCHW).
    func permuteChannels(_ src: UnsafePointer<Float>, _ dst: UnsafeMutablePointer<Float>, shape sh: [Int], toNHWC: Bool) {
        let c = sh[1], hw = sh.dropFirst(2).reduce(1, *)
        for img in 0..<sh[0] {
            for k in 0..<c {
                for p in 0..<hw {
                    let planar = (img * c + k) * hw + p, interleaved = (img * hw + p) * c + k
                    if toNHWC { dst[interleaved] = src[planar] } else { dst[planar] = src[interleaved] }
                }
            }
        }
    }

    /// Runs every step. `training` selects batch statistics (per `bnMode`) and dropout masks.
    func forward(training: Bool) throws {
        if stepSeconds != nil { return try profiledForward(training: training) }
        for si in steps.indices { try runStep(si, training: training) }
    }

    /// Per-step wall time summed over forwards, by "op kernel" label (`wconv bench run --profile`);
    /// nil: not profiling.
    var stepSeconds: [String: (seconds: Double, count: Int)]?

    private func profiledForward(training: Bool) throws {
        for si in steps.indices {
            let t = DispatchTime.now().uptimeNanoseconds
            try runStep(si, training: training)
            recordStepTime(si, since: t)
        }
    }

    /// `stepSeconds` as (label, seconds, steps), slowest first.
    var stepProfile: [(label: String, seconds: Double, steps: Int)] {
        (stepSeconds ?? [:]).map { ($0.key, $0.value.seconds, $0.value.count) }.sorted { $0.seconds > $1.seconds }
    }

    /// Adds the time since `t` (uptime ns) to step si's "op kernel" label.
    func recordStepTime(_ si: Int, since t: UInt64, prefix: String = "") {
        let dt = Double(DispatchTime.now().uptimeNanoseconds - t) / 1e9
        let kernel = steps[si].kernel
        let label = "\(prefix)\(nodes[steps[si].node].node.op) \(type(of: kernel))" + (kernel.profileDetail.map { " " + $0 } ?? "")
        let old = stepSeconds![label] ?? (0, 0)
        stepSeconds![label] = (old.seconds + dt, old.count + 1)
    }

    func runStep(_ si: Int, training: Bool) throws {
        let st = steps[si]
        try st.kernel.forward(StepContext(executor: self, step: st, index: si, training: training))
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
