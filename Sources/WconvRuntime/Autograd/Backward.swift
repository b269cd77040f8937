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

    deinit { for p in grad.values { p.deallocate() } }

    func release() {
        for p in grad.values { p.deallocate() }
        grad = [:]; gradCount = [:]; touched = []
    }

    /// Zeroed gradient buffer of a root value, allocated on first use for the planned shapes.
    func buffer(_ root: Int, count: Int) -> UnsafeMutablePointer<Float> { writableBuffer(root, count: count, zeroed: true).pointer }

    /// The gradient buffer of a root value; when no gradient reached it yet in this pass it is
    /// `fresh` and, unless `zeroed`, its contents are undefined (the caller overwrites them).
    func writableBuffer(_ root: Int, count: Int, zeroed: Bool) -> WritableGradient {
        let fresh = !touched.contains(root)
        touched.insert(root)
        let p: UnsafeMutablePointer<Float>
        if let existing = grad[root] {
            p = existing
        } else {
            p = UnsafeMutablePointer<Float>.allocate(capacity: max(count, 1))
            grad[root] = p; gradCount[root] = count
        }
        // fillFloats: this inlines into throwing backward functions (Kernels/Copy.swift).
        if fresh && zeroed { fillFloats(p, with: 0, count: max(count, 1)) }
        return WritableGradient(pointer: p, fresh: fresh && !zeroed)
    }
}

/// A gradient buffer for a kernel that writes its result rather than adding it (oneDNN's backward
/// primitives): when `fresh`, nothing reached the buffer yet in this pass and the kernel overwrites
/// it; otherwise it adds.
struct WritableGradient {
    let pointer: UnsafeMutablePointer<Float>
    let fresh: Bool
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
        let outs = st.outputs.filter { gs.touched.contains(root[$0]) }
        guard !outs.isEmpty else { return }
        let needs = st.inputs.map { $0 >= 0 && gs.requiresGrad[$0] }
        guard needs.contains(true) else { return }
        gs.stepsRun += 1
        try st.kernel.backward(BackwardContext(executor: self, step: st, index: si, gradients: gs, lastForwardTraining: lastForwardTraining))
    }
}
