import CWconvDNNL
import Foundation
import WconvGraph

/// Arithmetic precision of a session's convolutions (inference and training).
public enum Precision: String, Sendable, CaseIterable, Codable {
    /// Everything in f32 (the default).
    case f32
    /// oneDNN convolutions in bfloat16 with f32 accumulation: weights converted once, activations
    /// kept bf16 between the steps that read it (convolutions, NHWC max pooling, the squeeze-excite
    /// scale, global average pooling); every other op, and graph inputs and outputs, stay f32.
    case bf16

    /// Why this CPU cannot run `precision` fast, or nil when it can. bf16 needs oneDNN on and a CPU
    /// with AVX512_BF16 or AMX-BF16 (CPUID) that oneDNN also dispatches to;
    /// `WCONV_DNNL_SIMULATE_NO_BF16=1` pretends the CPU lacks it (tests of the refusal).
    public static func unsupportedReason(_ precision: Precision) -> String? {
        guard precision == .bf16 else { return nil }
        if ProcessInfo.processInfo.environment["WCONV_DNNL_SIMULATE_NO_BF16"] == "1" {
            return "this CPU has no bfloat16 arithmetic (AVX512_BF16 or AMX; simulated by WCONV_DNNL_SIMULATE_NO_BF16=1): drop --precision bf16 to run in f32"
        }
        guard DNNL.isEnabled else {
            return "--precision bf16 runs on oneDNN, which is off (\(DNNL.summary)): drop --precision bf16 or unset WCONV_DNNL"
        }
        let flags = CPUFeatures.current.flags
        let isa = dnnl_get_effective_cpu_isa()
        guard flags.contains("avx512_bf16") || flags.contains("amx_bf16") else {
            return "this CPU has no bfloat16 arithmetic (needs AVX512_BF16 or AMX; CPU: \(CPUFeatures.current.summary)): drop --precision bf16 to run in f32"
        }
        guard isa == dnnl_cpu_isa_avx512_core_bf16 || isa == dnnl_cpu_isa_avx512_core_amx else {
            return "oneDNN runs at ISA \(DNNL.isaName(isa)) here (held below avx512_core_bf16, e.g. by ONEDNN_MAX_CPU_ISA), so it has no bfloat16 arithmetic: drop --precision bf16 to run in f32"
        }
        return nil
    }

    /// What a training session does in this precision, for plans, logs and bench headers.
    public var trainingSummary: String {
        switch self {
        case .f32: return "f32"
        case .bf16: return "bf16 (mixed precision: oneDNN convolutions and linear layers forward and backward in bfloat16 with f32 accumulation; f32 master weights, optimizer state, activations, batch norm and loss)"
        }
    }

    /// "bf16 (oneDNN convolutions in bfloat16, f32 accumulation; other ops f32)" for plan and bench headers.
    public var summary: String {
        switch self {
        case .f32: return "f32"
        case .bf16: return "bf16 (oneDNN convolutions and linear layers in bfloat16 with f32 accumulation, weights converted once; other ops, inputs and outputs f32)"
        }
    }
}

/// Which NHWC values of a bf16 inference plan hold bfloat16: those whose every producer and reader
/// reads or writes bf16 — oneDNN convolutions (input and output each either way; a fused residual
/// shares the output's type), NHWC max pooling and the squeeze-excite scale (input and output
/// alike), global average pooling (input). Everything else sees f32, so a value it touches stays f32.
struct DNNLPrecisionPlan {
    /// A step as the pass sees it: groups of values that must share a type, values that must be f32.
    struct Node {
        var tied: [[Int]] = []
        var f32: [Int] = []
    }

    let bf16: Set<Int>

    /// - nhwc: the layout plan's NHWC values (the only candidates).
    init(nodes: [Node], nhwc: Set<Int>) {
        var bf16 = nhwc
        var changed = true
        while changed {
            changed = false
            for n in nodes {
                for v in n.f32 where bf16.remove(v) != nil { changed = true }
                for group in n.tied where group.contains(where: { !bf16.contains($0) }) {
                    for v in group where bf16.remove(v) != nil { changed = true }
                }
            }
        }
        self.bf16 = bf16
    }
}

extension Executor {
    /// The bf16 values of an inference plan (DNNLPrecisionPlan), with residual adds absorbed
    /// into their convs (`residualAdds`: conv node → add node).
    func precisionPlan(_ spec: GraphSpecialization, layouts: DNNLLayoutPlan, residualAdds: [Int: Int]) -> DNNLPrecisionPlan {
        let absorbed = Dictionary(uniqueKeysWithValues: residualAdds.map { ($1, $0) })
        var planned: [DNNLPrecisionPlan.Node] = []
        for (ni, en) in nodes.enumerated() {
            var node = en.node
            if let r = spec.resolved[node.name] { node.inputs = r.inputs }
            let ins = node.inputs.map { $0.isEmpty ? -1 : valueIds[$0]! }.filter { $0 >= 0 }
            let outs = node.outputs.map { $0.isEmpty ? -1 : valueIds[$0]! }.filter { $0 >= 0 }
            var p = DNNLPrecisionPlan.Node()
            let shapes = node.inputs.map { $0.isEmpty ? nil : spec.shapes[$0] }
            let outShape = node.outputs.first.flatMap { spec.shapes[$0] }
            if absorbed[ni] != nil {
                // The conv's output, the residual and the sum are one buffer of one type.
                p.tied = [ins + outs]
            } else if node.op == .conv2d && !en.isAffine && ins.count >= 2 && outs.count == 1 {
                // oneDNN converts either side; an activation it has no post-op for runs on f32 afterwards.
                let fusedAct = residualAdds[ni].map { nodes[$0].fused } ?? en.fused
                p.tied = [[ins[0]]]
                p.f32 = Array(ins.dropFirst())
                if fusedAct == .none || DNNLConvolution.eltwise(fusedAct) != nil { p.tied.append(outs) } else { p.f32 += outs }
            } else if !en.isAffine, DNNLLayoutPlan.kind(node.op, inputShapes: shapes, outputShape: outShape) != .other,
                      node.op == .maxPool2d || node.op == .globalAvgPool || node.op == .adaptiveAvgPool2d
                        || (node.op == .mul && DNNLLayoutPlan.isChannelScale(shapes, outShape ?? []) != nil) {
                if node.op == .mul, let full = DNNLLayoutPlan.isChannelScale(shapes, outShape!) {
                    p.tied = [[ins[full]] + outs]
                    p.f32 = [ins[1 - full]]
                } else if node.op == .maxPool2d {
                    p.tied = [[ins[0]] + outs]
                } else {
                    p.tied = [[ins[0]]]
                    p.f32 = outs
                }
            } else {
                p.f32 = ins + outs
            }
            planned.append(p)
        }
        return DNNLPrecisionPlan(nodes: planned, nhwc: layouts.nhwc)
    }
}
