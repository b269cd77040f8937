import Foundation
import WconvGraph

/// Which activations an inference plan keeps channels-last (NHWC) between oneDNN convolutions.
/// oneDNN's convolutions run 1.6–2.3× faster than im2col + GEMM on NHWC (or blocked) data, but
/// converting NCHW to NHWC and back around every layer eats most of that (docs/runtime.md), so a
/// value stays NHWC when every step touching it can work on NHWC:
/// - producers and readers that are oneDNN convolutions (any input/output layout combination);
/// - layout-free steps: elementwise ops whose inputs all have the output's shape (add, activations,
///   identity) — a flat loop gives the same result in any layout, as long as all operands share it.
/// Everything else (pooling, reductions, reshapes, graph outputs, parameters) sees NCHW: a conv next
/// to it converts at its boundary (a oneDNN reorder inside DNNLConvolution).
struct DNNLLayoutPlan {
    /// A planned step as the layout pass sees it.
    struct Node {
        enum Kind { case conv, layoutFree, other }
        let kind: Kind
        let inputs: [Int]
        let outputs: [Int]
    }

    /// Value ids kept NHWC.
    let nhwc: Set<Int>

    /// Whether a node can be layout-free: a pointwise activation, identity, or a binary elementwise
    /// op whose inputs all have the output's 4-D shape (no broadcasting).
    static func isLayoutFree(_ op: Op, inputShapes: [[Int]?], outputShape: [Int]?) -> Bool {
        guard let out = outputShape, out.count == 4 else { return false }
        let pointwise: Set<Op> = [.relu, .relu6, .silu, .sigmoid, .tanh, .gelu, .hardSwish, .hardSigmoid, .leakyRelu, .mish, .identity, .dropout]
        let binary: Set<Op> = [.add, .sub, .mul, .div, .minimum, .maximum]
        guard pointwise.contains(op) || binary.contains(op) else { return false }
        return !inputShapes.isEmpty && inputShapes.allSatisfy { $0 == out }
    }

    /// Fixed point: start with every value produced by a conv or layout-free step as NHWC, then
    /// demote (to NCHW) values with an NCHW-only reader or producer, graph outputs, and every operand
    /// of a layout-free step one of whose operands is NCHW.
    init(nodes: [Node], valueCount: Int, pinned: Set<Int>) {
        var nhwc = [Bool](repeating: false, count: valueCount)
        for n in nodes where n.kind != .other { for o in n.outputs where o >= 0 && !pinned.contains(o) { nhwc[o] = true } }
        var changed = true
        while changed {
            changed = false
            func demote(_ v: Int) { if v >= 0 && nhwc[v] { nhwc[v] = false; changed = true } }
            for n in nodes {
                switch n.kind {
                case .conv:
                    // Reads input 0 in either layout; weights and bias are parameters.
                    for v in n.inputs.dropFirst() { demote(v) }
                case .other:
                    for v in n.inputs { demote(v) }
                case .layoutFree:
                    let operands = (n.inputs + n.outputs).filter { $0 >= 0 }
                    if operands.contains(where: { !nhwc[$0] }) { operands.forEach(demote) }
                }
            }
        }
        self.nhwc = Set(nhwc.indices.filter { nhwc[$0] })
    }
}
