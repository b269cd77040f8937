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
    func buffer(_ root: Int, count: Int) -> UnsafeMutablePointer<Float> {
        if let p = grad[root] {
            // fillFloats: this inlines into throwing backward functions (Kernels/Copy.swift).
            if !touched.contains(root) { fillFloats(p, with: 0, count: count); touched.insert(root) }
            return p
        }
        let p = UnsafeMutablePointer<Float>.allocate(capacity: max(count, 1))
        fillFloats(p, with: 0, count: max(count, 1))
        grad[root] = p; gradCount[root] = count
        touched.insert(root)
        return p
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
        let outs = st.outputs.filter { gs.touched.contains(root[$0]) }
        guard !outs.isEmpty else { return }
        let needs = st.inputs.map { $0 >= 0 && gs.requiresGrad[$0] }
        guard needs.contains(true) else { return }
        gs.stepsRun += 1
        try st.kernel.backward(BackwardContext(executor: self, step: st, index: si, gradients: gs, lastForwardTraining: lastForwardTraining))
    }
}
