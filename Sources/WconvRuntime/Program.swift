import Foundation
import WconvGraph
import WconvTensor

/// One compiled step: the kernel its op selected and the value ids it reads and writes (-1 for an
/// omitted input).
struct Step {
    var node: Int
    var kernel: any StepKernel
    var inputs: [Int]
    var outputs: [Int]
}

/// A node as the executor sees it: the graph node plus what fusion attached to it.
struct ExecNode {
    var node: GraphNode
    /// Activation fused into the node's epilogue (conv, affine, linear).
    var fused: Activation = .none
    /// The node is a BN folded to per-channel scale/shift (inputs rewritten to [x, scale, shift]).
    var isAffine = false
}

/// Kernel selection for one node (docs/adding-an-op.md): the op's `OpKernels.select` with shapes
/// and dtypes from the graph's inference. Attributes come from files: they are bounded here so no
/// geometry arithmetic can overflow (slice bounds may be Int.max-like "to the end" markers; they
/// are clamped where used).
func compileNode(_ en: ExecNode, inputShapes s: [[Int]?], outputShapes outs: [[Int]], dtypes: [DType?], training: Bool,
                 layout: StepLayout = StepLayout()) throws -> any StepKernel {
    let request = KernelRequest(exec: en, inputShapes: s, outputShapes: outs, inputDTypes: dtypes, training: training, layout: layout)
    for (key, value) in en.node.attributes where key != "starts" && key != "ends" {
        let ints: [Int] = value.intsValue ?? []
        if let bad = ints.first(where: { $0 > 1 << 32 || $0 < -(1 << 32) }) { throw request.fail("attribute \(key) value \(bad) is out of range") }
    }
    for case let sh? in s {
        guard sh.allSatisfy({ $0 >= 0 }), (try? Tensor.checkedNumel(sh)) != nil else { throw request.fail("input shape \(sh) is invalid") }
    }
    guard let kernels = KernelCatalog.byOp[en.node.op] else {
        throw WconvError.invalid("node '\(en.node.name)': op '\(en.node.op)' is not supported by the runtime")
    }
    return try kernels.select(request)
}
