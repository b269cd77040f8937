import Foundation
import Wconv

/// What `wconv --version` and every bench print about the compute kernels: the CPU's ISA (CPUID),
/// the BLAS library, its core and how it was chosen, and its threads.
enum KernelReport {
    /// Text lines. With `loadBLAS` false (benches that do no arithmetic) OpenBLAS stays unloaded and
    /// the line says so.
    static func lines(loadBLAS: Bool) -> [String] {
        var out = ["CPU:  \(CPUFeatures.current.summary)"]
        guard loadBLAS || BLASKernels.isLoaded else {
            out.append("BLAS: not loaded (this command does no arithmetic)")
            return out
        }
        do {
            let k = try BLASKernels.load()
            out.append("BLAS: \(k.summary), \(BLASKernels.threads) threads")
            out.append("      \(k.config)" + (k.path.isEmpty ? "" : " — \(k.path)"))
            out.append("DNN:  \(DNNL.summary)")
            out.append("VEC:  \(VectorKernels.summary)")
            out.append("BF16: " + (Precision.unsupportedReason(.bf16).map { "no — \($0)" } ?? "yes (--precision bf16: oneDNN convolutions and linear layers in bfloat16)"))
        } catch {
            out.append("BLAS: \(error)")
        }
        return out
    }

    /// The same facts for `--json` reports.
    static func json(loadBLAS: Bool) -> JSONValue {
        let cpu = CPUFeatures.current
        var doc: [(String, JSONValue)] = [("cpu", .string(cpu.brand)), ("cpuVendor", .string(cpu.vendor)),
                                          ("cpuLevel", .string(cpu.level.description)), ("cpuFlags", .array(cpu.flags.map(JSONValue.string)))]
        guard loadBLAS || BLASKernels.isLoaded else { return .object(doc + [("blas", "not loaded")]) }
        do {
            let k = try BLASKernels.load()
            doc += [("blas", .string(k.library)), ("blasPath", .string(k.path)), ("blasCore", .string(k.core)),
                    ("blasCoreChoice", .string(k.choiceDescription)), ("blasSelfCheckPassed", .bool(k.selfCheckPassed)),
                    ("blasThreads", .int(BLASKernels.threads)), ("dnn", .string(DNNL.summary)), ("dnnEnabled", .bool(DNNL.isEnabled)),
                    ("vectorISA", .string(VectorKernels.isa)),
                    ("bf16Available", .bool(Precision.unsupportedReason(.bf16) == nil))]
        } catch {
            doc.append(("blas", .string("\(error)")))
        }
        return .object(doc)
    }
}
