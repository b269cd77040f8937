import Foundation
import WconvTensor

/// Reverse-mode pass over the executor's steps. Gradient buffers are keyed by root value (views
/// share their source's buffer, so their backward is free); only values that depend on a trainable
/// parameter get one, so nothing below the lowest trainable node is ever computed.
final class GradientState {
    var requiresGrad: [Bool] = []
    var grad: [Int: UnsafeMutablePointer<Float>] = [:]
    var gradCount: [Int: Int] = [:]
    var touched = Set<Int>()
    /// Steps whose backward did work in the last pass (tests check frozen parts cost nothing).
    var stepsRun = 0
    /// Buffers of values whose gradient is consumed, by capacity, for the next value of that size:
    /// the pass holds only the gradients still to be propagated (as autograd frees them), not one
    /// per activation (1.3 GB of 1.7 for BERT-base at batch 8 × 128 before).
    private var spare: [Int: [UnsafeMutablePointer<Float>]] = [:]

    deinit { release() }

    func release() {
        for p in grad.values { p.deallocate() }
        for list in spare.values { for p in list { p.deallocate() } }
        grad = [:]; gradCount = [:]; touched = []; spare = [:]
    }

    /// Zeroed gradient buffer of a root value, allocated on first use for the planned shapes.
    func buffer(_ root: Int, count: Int) -> UnsafeMutablePointer<Float> { writableBuffer(root, count: count, zeroed: true).pointer }

    /// The gradient buffer of a root value (a spare one of its size, or a new one); when no
    /// gradient reached it yet in this pass it is `fresh` and, unless `zeroed`, its contents are
    /// undefined (the caller overwrites them).
    func writableBuffer(_ root: Int, count: Int, zeroed: Bool) -> WritableGradient {
        let fresh = !touched.contains(root)
        touched.insert(root)
        let capacity = max(count, 1)
        let p: UnsafeMutablePointer<Float>
        if let existing = grad[root] {
            p = existing
        } else {
            p = spare[capacity]?.popLast() ?? UnsafeMutablePointer<Float>.allocate(capacity: capacity)
            grad[root] = p; gradCount[root] = count
        }
        // fillFloats: this inlines into throwing backward functions (Kernels/Copy.swift).
        if fresh && zeroed { fillFloats(p, with: 0, count: capacity) }
        return WritableGradient(pointer: p, fresh: fresh && !zeroed)
    }

    /// Gives the gradient buffer of `from`, which its step passes on unchanged, to `to` when no
    /// gradient reached `to` yet in this pass and neither holds a parameter's buffer from an
    /// earlier pass; false (nothing moved) otherwise.
    func handOver(from: Int, to: Int, count: Int) -> Bool {
        guard from != to, !touched.contains(to), grad[to] == nil, touched.contains(from), let p = grad[from], gradCount[from] == count else { return false }
        grad[from] = nil; gradCount[from] = nil; touched.remove(from)
        grad[to] = p; gradCount[to] = count; touched.insert(to)
        return true
    }

    /// The gradient of `root` has been propagated to its inputs: its buffer serves later values.
    func recycle(_ root: Int) {
        guard let p = grad.removeValue(forKey: root), let count = gradCount.removeValue(forKey: root) else { return }
        touched.remove(root)
        spare[max(count, 1), default: []].append(p)
    }
}

/// A gradient buffer for a kernel that writes its result rather than adding it (oneDNN's backward
/// primitives): when `fresh`, nothing reached the buffer yet in this pass and the kernel overwrites
/// it; otherwise it adds.
struct WritableGradient {
    let pointer: UnsafeMutablePointer<Float>
    let fresh: Bool
}

extension BackwardContext {
    /// dx += dy for the two inputs of an add whose operands have the output's size: the second is
    /// written when no gradient reached it yet (no zeroing pass), then the first takes dy's own
    /// buffer when it can (the output's gradient is spent after this step), else likewise.
    func passAddGradient(_ dy: UnsafePointer<Float>) {
        let n = executor.shapes[step.outputs[0]]!.reduce(1, *)
        for k in [1, 0] {
            let v = step.inputs[k]
            guard v >= 0, gradients.requiresGrad[v] else { continue }
            if k == 0 && gradients.grad[executor.root[step.outputs[0]]] == UnsafeMutablePointer(mutating: dy)
                && gradients.handOver(from: executor.root[step.outputs[0]], to: executor.root[v], count: n) { continue }
            guard let g = inputGradientForWriting(k) else { continue }
            let d = g.pointer, fresh = g.fresh
            Parallel.forRange(n, costPerItem: 2) { r in
                if fresh { (d + r.lowerBound).update(from: dy + r.lowerBound, count: r.count) } else { for i in r { d[i] += dy[i] } }
            }
        }
    }
}

extension Executor {
    /// Which values depend on a trainable parameter (value ids of `trainable` seed the set).
    func computeRequiresGrad(trainableValues: Set<Int>) -> [Bool] {
        var rg = [Bool](repeating: false, count: valueNames.count)
        for v in trainableValues { rg[v] = true }
        for st in steps where st.inputs.contains(where: { $0 >= 0 && rg[$0] }) {
            for o in st.outputs { rg[o] = true }
        }
        return rg
    }

    func backwardStep(_ si: Int, gs: GradientState, lastForwardTraining: Bool) throws {
        let st = steps[si]
        // Every consumer of these outputs ran backward before this step (reverse order), and views
        // of them come later in the forward, so their gradients are spent once it has run (or has
        // nothing to propagate). A view's output shares its source's buffer (its root differs) and
        // is left to the source's step.
        defer { for o in st.outputs where root[o] == o && paramName[o] == nil { gs.recycle(o) } }
        let outs = st.outputs.filter { gs.touched.contains(root[$0]) }
        guard !outs.isEmpty else { return }
        let needs = st.inputs.map { $0 >= 0 && gs.requiresGrad[$0] }
        guard needs.contains(true) else { return }
        gs.stepsRun += 1
        let t = stepSeconds == nil ? 0 : DispatchTime.now().uptimeNanoseconds
        try st.kernel.backward(BackwardContext(executor: self, step: st, index: si, gradients: gs, lastForwardTraining: lastForwardTraining))
        if stepSeconds != nil { recordStepTime(si, since: t, prefix: "backward ") }
    }
}
