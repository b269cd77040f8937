import WconvGraph
import WconvTensor

/// The planner's proof that no kernel touches memory outside its buffers (issue 8 §1): each
/// `StepKernel` states, from its own parameters (geometry, strides, broadcast maps, slice starts and
/// steps, pad and resize source indices), how many elements it reads from every input and writes
/// to every output; the planner compares that with what each value's planned shape holds (its
/// buffer holds at least that many) and stops before anything runs, naming the node. Index values
/// that live in the data are checked where they are read (Gather.indices, GatherND.offset); constant
/// ones here, at plan time.
struct StepExtents {
    /// Elements read per input position (nil: not read through this step's pointer). `Int.max`: the
    /// kernel's own indices reach outside the input (a bad start, step or source index).
    var reads: [Int?]
    /// Elements written per output position.
    var writes: [Int]
    /// Inputs holding indices into an axis of `bound` elements (−bound ..< bound, integral), checked
    /// at plan time when the input is constant.
    var indices: [(input: Int, bound: Int)] = []

    /// Nothing read or written yet, for `inputs` and `outputs` positions.
    init(inputs: Int, outputs: Int) {
        reads = [Int?](repeating: nil, count: inputs)
        writes = [Int](repeating: 0, count: outputs)
    }
    init(reads: [Int?], writes: [Int]) { self.reads = reads; self.writes = writes }
    /// The extents of a step with these input and output sizes, filled in by `fill` (a kernel's
    /// `extents(inputs:outputs:)` in one expression).
    init(_ inputs: [Int], _ outputs: [Int], _ fill: (inout StepExtents) -> Void) {
        self.init(inputs: inputs.count, outputs: outputs.count)
        fill(&self)
    }

    /// Input k is read over n elements (ignored for positions the step does not have).
    mutating func read(_ k: Int, _ n: Int) { if k < reads.count { reads[k] = n } }
    /// Output k is written over n elements.
    mutating func write(_ k: Int, _ n: Int) { if k < writes.count { writes[k] = n } }
}

/// Elements spanned by a strided walk over `dims` (0 when any dim is empty).
func stridedSpan(_ dims: [Int], _ strides: [Int]) -> Int {
    if dims.contains(0) { return 0 }
    return 1 + zip(dims, strides).reduce(0) { $0 + ($1.0 - 1) * Swift.abs($1.1) }
}

extension StepKernel {
    /// The default for a kernel whose loops run over exactly its planned values: every input and
    /// output is touched over its planned element count. A kernel with its own geometry overrides it.
    func extents(inputs: [Int], outputs: [Int]) -> StepExtents { StepExtents(reads: inputs.map { $0 }, writes: outputs) }

    /// One-input, one-output elementwise kernels over `count` elements.
    func elementwise(_ count: Int, inputs: [Int], outputs: [Int]) -> StepExtents {
        StepExtents(inputs, outputs) { $0.read(0, count); $0.write(0, count) }
    }
}

extension Executor {
    /// Refuses a step whose kernel would read or write past the buffers of its values (shapes as
    /// planned in `shp`), and constant indices outside the axis they index. `constant` gives the
    /// buffer of a value known before running (folded values, parameters).
    func checkAccesses(_ st: Step, shapes shp: [[Int]?], constant: (Int) -> UnsafePointer<Float>?) throws {
        let node = nodes[st.node].node
        func refuse(_ what: String) -> WconvError {
            WconvError.invalid("node '\(node.name)' (\(node.op)): \(what); the run is stopped before it starts (a planning bug: please report it with the model)")
        }
        func numel(_ v: Int) -> Int { v >= 0 ? shp[v].map { $0.reduce(1, *) } ?? 0 : 0 }
        func name(_ names: [String], _ k: Int) -> String { k < names.count ? names[k] : "?" }
        let e = st.kernel.extents(inputs: st.inputs.map(numel), outputs: st.outputs.map(numel))
        for (k, need) in e.reads.enumerated() {
            guard let need, k < st.inputs.count, st.inputs[k] >= 0 else { continue }
            let have = numel(st.inputs[k])
            if need > have {
                let amount = need == Int.max ? "past the end of" : "\(need) elements of"
                throw refuse("the kernel would read \(amount) input \(k) '\(name(node.inputs, k))', which holds \(have) (shape \(shp[st.inputs[k]] ?? []))")
            }
        }
        for (k, need) in e.writes.enumerated() where k < st.outputs.count {
            let have = numel(st.outputs[k])
            if need > have {
                throw refuse("the kernel would write \(need) elements to output \(k) '\(name(node.outputs, k))', which holds \(have) (shape \(shp[st.outputs[k]] ?? []))")
            }
        }
        for (k, bound) in e.indices where k < st.inputs.count && st.inputs[k] >= 0 {
            guard let p = constant(st.inputs[k]) else { continue }
            for i in 0..<numel(st.inputs[k]) {
                let f = p[i]
                guard f.isFinite, f == f.rounded(), f >= Float(-bound), f < Float(bound) else {
                    throw WconvError.invalid("node '\(node.name)' (\(node.op)): constant index \(f) at position \(i) of input \(k) '\(name(node.inputs, k))' is out of range for an axis of size \(bound)")
                }
            }
        }
    }
}

/// A kernel applying one function to each of its `count` elements (input 0 → output 0), with the
/// function's derivative for backward.
protocol PointwiseKernel: StepKernel {
    var count: Int { get }
    func apply(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>)
    /// Adds dy · f′ to dx; `y` is the forward output.
    func accumulateGradient(x: UnsafePointer<Float>, y: UnsafePointer<Float>, dy: UnsafePointer<Float>, dx: UnsafeMutablePointer<Float>)
}

extension PointwiseKernel {
    func extents(inputs: [Int], outputs: [Int]) -> StepExtents { elementwise(count, inputs: inputs, outputs: outputs) }
    func forward(_ c: StepContext) throws { apply(c.input(0)!, c.output()) }
    func backward(_ c: BackwardContext) throws {
        guard let dy = c.outputGradient(), let dx = c.inputGradient(0) else { return }
        accumulateGradient(x: c.input(0)!, y: c.output(), dy: dy, dx: dx)
    }
}

/// A kernel over its inputs broadcast to one output by `map`: each input is read over its strided
/// span, the output written whole.
protocol BroadcastKernel: StepKernel {
    var map: NBroadcast { get }
}

extension BroadcastKernel {
    func extents(inputs: [Int], outputs: [Int]) -> StepExtents {
        var e = StepExtents(inputs: inputs.count, outputs: outputs.count)
        for k in map.strides.indices { e.read(k, stridedSpan(map.outShape, map.strides[k])) }
        e.write(0, map.count)
        return e
    }
}
