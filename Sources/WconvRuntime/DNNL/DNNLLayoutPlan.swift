import Foundation
import WconvGraph

/// Which activations a plan keeps channels-last (NHWC) between oneDNN convolutions (inference
/// plans, and training plans, where batch norm also reads and writes NHWC and every NHWC kernel has
/// an NHWC backward: NHWCTrainingKernels).
/// oneDNN's convolutions run 1.6–2.3× faster than im2col + GEMM on NHWC (or blocked) data, but
/// converting NCHW to NHWC and back around every layer eats most of that (docs/runtime.md), so a
/// value stays NHWC when every step touching it can work on NHWC:
/// - producers and readers that are oneDNN convolutions (any input/output layout combination);
/// - layout-free steps: elementwise ops whose inputs all have the output's shape (add, activations,
///   identity) — a flat loop gives the same result in any layout, as long as all operands share it —
///   and max pooling and the squeeze-excite scale x · s[N,C,1,1], which have NHWC kernels
///   (NHWCKernels) and write the layout they read;
/// - global average pooling reads either layout (its [N,C,1,1] or [N,C] output is the same memory in both).
/// Values with one spatial element are the same memory in both layouts and constrain nothing.
/// Everything else (other pooling, reductions, reshapes, graph outputs, parameters) sees NCHW: a
/// conv next to it converts at its boundary (a oneDNN reorder inside DNNLConvolution).
struct DNNLLayoutPlan {
    /// A planned step as the layout pass sees it.
    struct Node {
        /// `channelwise`: batch norm of a training plan (NHWCBatchNorm): input 0 and the output share
        /// a layout, the other inputs are per-channel parameters.
        enum Kind { case conv, layoutFree, channelwise, nhwcReader, other }
        let kind: Kind
        let inputs: [Int]
        let outputs: [Int]
    }

    /// Value ids kept NHWC.
    let nhwc: Set<Int>

    /// How the layout pass treats a non-conv node (see the type's comment).
    static func kind(_ op: Op, inputShapes: [[Int]?], outputShape: [Int]?) -> Node.Kind {
        guard let out = outputShape, let x = inputShapes.first ?? nil, x.count == 4 else { return .other }
        // [N, C, 1, 1] or [N, C] (Keras' GlobalAveragePooling2D, wconv's synthetic nets): N × C values
        // in the same order whichever layout the input has.
        if op == .globalAvgPool || op == .adaptiveAvgPool2d { return out.reduce(1, *) == x[0] * x[1] ? .nhwcReader : .other }
        guard out.count == 4 else { return .other }
        if op == .maxPool2d { return .layoutFree }
        if op == .mul, inputShapes.count == 2, isChannelScale(inputShapes, out) != nil { return .layoutFree }
        let pointwise: Set<Op> = [.relu, .relu6, .silu, .sigmoid, .tanh, .gelu, .hardSwish, .hardSigmoid, .leakyRelu, .mish, .identity, .dropout]
        let binary: Set<Op> = [.add, .sub, .mul, .div, .minimum, .maximum]
        guard pointwise.contains(op) || binary.contains(op) else { return .other }
        return inputShapes.allSatisfy { $0 == out } ? .layoutFree : .other
    }

    /// For x[N,C,H,W] · s[N,C,1,1] (either order, H·W > 1): the index of the full-size input.
    static func isChannelScale(_ inputShapes: [[Int]?], _ out: [Int]) -> Int? {
        guard inputShapes.count == 2, let a = inputShapes[0], let b = inputShapes[1], out[2] * out[3] > 1 else { return nil }
        let scale = [out[0], out[1], 1, 1]
        if a == out && b == scale { return 0 }
        if b == out && a == scale { return 1 }
        return nil
    }

    /// Fixed point: start with every value produced by a conv or layout-free step as NHWC, then
    /// demote (to NCHW) values with an NCHW-only reader or producer, graph outputs, and every operand
    /// of a layout-free step one of whose operands is NCHW.
    /// - free: values with one spatial element (never NHWC, never constraining).
    init(nodes: [Node], valueCount: Int, pinned: Set<Int>, free: Set<Int>) {
        var nhwc = [Bool](repeating: false, count: valueCount)
        for n in nodes where n.kind == .conv || n.kind == .layoutFree || n.kind == .channelwise {
            for o in n.outputs where o >= 0 && !pinned.contains(o) && !free.contains(o) { nhwc[o] = true }
        }
        var changed = true
        while changed {
            changed = false
            func demote(_ v: Int) { if v >= 0 && nhwc[v] { nhwc[v] = false; changed = true } }
            for n in nodes {
                switch n.kind {
                case .conv, .nhwcReader:
                    // Reads input 0 in either layout; weights and bias are parameters.
                    for v in n.inputs.dropFirst() { demote(v) }
                case .other:
                    for v in n.inputs { demote(v) }
                case .layoutFree:
                    let operands = (n.inputs + n.outputs).filter { $0 >= 0 && !free.contains($0) }
                    if operands.contains(where: { !nhwc[$0] }) { operands.forEach(demote) }
                case .channelwise:
                    let operands = (n.inputs.prefix(1) + n.outputs.prefix(1)).filter { $0 >= 0 && !free.contains($0) }
                    if operands.contains(where: { !nhwc[$0] }) { operands.forEach(demote) }
                    for v in n.inputs.dropFirst() { demote(v) }
                }
            }
        }
        self.nhwc = Set(nhwc.indices.filter { nhwc[$0] })
    }
}
