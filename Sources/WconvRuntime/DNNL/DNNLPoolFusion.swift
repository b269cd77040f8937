import Foundation

extension Executor {
    /// Inference plans: a global average pool reading a oneDNN conv's output, when that conv runs its
    /// SiLU as a pass of its own (NHWC f32, DNNLConvolution.runsAfter), is computed in that pass —
    /// the conv step gains the pool's output as its output 1 and the pool step goes. Squeeze-excite
    /// pools its depthwise conv's output so: one read of that tensor less per block (EfficientNet-B0
    /// b16: 16 pools, 3.3 ms of a 120 ms batch).
    func foldPoolsIntoConvs(_ steps: inout [Step], shapes: [[Int]?], rt: [Int], checked check: (Step) throws -> Void) throws {
        var producer: [Int: Int] = [:]
        for (si, st) in steps.enumerated() { for v in st.outputs { producer[v] = si } }
        var removed = Set<Int>()
        for (si, st) in steps.enumerated() {
            guard let pool = st.kernel as? NHWCKernels.GlobalAvgPool, !pool.bf16, st.inputs.count == 1, st.outputs.count == 1,
                  let pi = producer[st.inputs[0]], var conv = steps[pi].kernel as? DNNLConv2d, !conv.writesMeans,
                  steps[pi].outputs.count == 1, steps[pi].outputs[0] == st.inputs[0], conv.conv.canWriteChannelMeans,
                  rt[st.outputs[0]] == st.outputs[0],
                  pool.n == conv.geometry.n, pool.c == conv.geometry.o, pool.hw == conv.geometry.howo,
                  shapes[st.outputs[0]]?.reduce(1, *) == pool.n * pool.c else { continue }
            conv.writesMeans = true
            steps[pi].kernel = conv
            steps[pi].outputs.append(st.outputs[0])
            try check(steps[pi])
            removed.insert(si)
        }
        steps = steps.enumerated().filter { !removed.contains($0.offset) }.map(\.element)
    }

    /// Global average pools of the current plan computed inside a conv's SiLU pass (tests, reports).
    var pooledConvolutions: Int { steps.filter { ($0.kernel as? DNNLConv2d)?.writesMeans == true }.count }
}
