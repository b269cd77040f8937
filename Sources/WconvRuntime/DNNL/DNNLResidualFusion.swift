import Foundation
import WconvGraph

/// The residual add of a ResNet / EfficientNet block run inside the convolution before it, as
/// oneDNN's sum post-op: y = act(conv(x) + b + r). The add's separate pass over the activations
/// (read two, write one) goes, and when the residual's buffer is not read afterwards the conv
/// writes into it in place (the executor aliases the two values). Inference plans only, and only
/// where the layout plan keeps the sum NHWC (the residual then shares the conv output's layout).
extension Executor {
    /// Conv node index → index of the add node it absorbs. `WCONV_DNNL_FUSE_ADD=0` keeps the adds
    /// separate (A/B measurements).
    func residualAdds(_ spec: GraphSpecialization, layouts: DNNLLayoutPlan) -> [Int: Int] {
        if ProcessInfo.processInfo.environment["WCONV_DNNL_FUSE_ADD"] == "0" { return [:] }
        var producer: [String: Int] = [:], readers: [String: Int] = [:]
        for (ni, en) in nodes.enumerated() {
            for o in en.node.outputs where !o.isEmpty { producer[o] = ni }
            for i in spec.resolved[en.node.name]?.inputs ?? en.node.inputs where !i.isEmpty { readers[i, default: 0] += 1 }
        }
        for o in graph.outputs { readers[o.name, default: 0] += 1 }
        var result: [Int: Int] = [:]
        for (ai, add) in nodes.enumerated() where add.node.op == .add && !add.isAffine && add.node.inputs.count == 2 && add.node.outputs.count == 1 {
            let out = add.node.outputs[0]
            guard spec.folded[out] == nil, let shape = spec.shapes[out], let outId = valueIds[out], layouts.nhwc.contains(outId) else { continue }
            var best: Int?
            for k in 0..<2 {
                let a = add.node.inputs[k], b = add.node.inputs[1 - k]
                // The conv's output is read by the add alone; the residual exists before the conv runs.
                guard let ci = producer[a], let bi = producer[b], bi < ci, result[ci] == nil, readers[a] == 1, spec.folded[a] == nil,
                      nodes[ci].node.op == .conv2d, nodes[ci].fused == .none, !nodes[ci].isAffine, nodes[ci].node.outputs.count == 1,
                      spec.shapes[a] == shape, spec.shapes[b] == shape else { continue }
                if best.map({ ci > $0 }) ?? true { best = ci }
            }
            if let best { result[best] = ai }
        }
        return result
    }

    /// The conv node reading the add's other operand as input 3 and writing the add's output, with
    /// the add's fused activation.
    func mergingResidual(_ conv: ExecNode, add: ExecNode) -> ExecNode {
        var m = conv
        let convOut = conv.node.outputs[0]
        let other = add.node.inputs[0] == convOut ? add.node.inputs[1] : add.node.inputs[0]
        var inputs = Array(conv.node.inputs.prefix(3))
        while inputs.count < 3 { inputs.append("") }
        m.node.inputs = inputs + [other]
        m.node.outputs = add.node.outputs
        m.fused = add.fused
        return m
    }

    /// Lets a step write its output over one of its inputs when nothing reads that input later (not
    /// a graph input, parameter or constant, and no other input of the step shares its buffer):
    /// - a conv with a fused residual add (DNNLResidualFusion) writes into the residual's buffer;
    /// - an inference plan's NHWC channel scaling (squeeze-excite's x · s) writes over x: it then moves
    ///   2 bytes per byte of x instead of 3, and the plan holds one buffer fewer (EfficientNet-B0: 16).
    /// `rt` maps values to the root buffer they share, `lastUse` is per root and is updated.
    func aliasOverwrittenInputs(_ steps: [Step], rt: inout [Int], lastUse: inout [Int], constant: Set<Int>) {
        let inputs = Set(graph.inputs.compactMap { valueIds[$0.name] })
        for (si, st) in steps.enumerated() {
            guard st.outputs.count >= 1, let k = overwritableInput(st), k < st.inputs.count, st.inputs[k] >= 0 else { continue }
            let r = rt[st.inputs[k]], out = st.outputs[0]
            guard rt[out] == out, lastUse[r] == si, paramName[r] == nil, !constant.contains(r), !inputs.contains(r),
                  !st.inputs.indices.contains(where: { $0 != k && st.inputs[$0] >= 0 && rt[st.inputs[$0]] == r }) else { continue }
            for v in rt.indices where rt[v] == out { rt[v] = r }
            lastUse[r] = max(lastUse[r], lastUse[out])
        }
    }

    /// The input a step may overwrite with its output 0, if any (see `aliasOverwrittenInputs`).
    private func overwritableInput(_ st: Step) -> Int? {
        if let conv = st.kernel as? DNNLConv2d, conv.conv.addsResidual { return 3 }
        if !keepAllValues, let scale = st.kernel as? NHWCKernels.ChannelScale, st.inputs.count == 2 { return scale.full }
        return nil
    }

    /// NHWC channel scalings of the current plan, and how many write over their input (tests, reports).
    var channelScaleSummary: (steps: Int, inPlace: Int) {
        let scales = steps.filter { $0.kernel is NHWCKernels.ChannelScale }
        return (scales.count, scales.filter { st in
            let full = (st.kernel as! NHWCKernels.ChannelScale).full
            return root[st.outputs[0]] == root[st.inputs[full]]
        }.count)
    }
}
