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
        } catch {
            out.append("BLAS: \(error)")
        }
        return out
    }

    /// The same facts for `--json` reports.
    static func json(loadBLAS: Bool) -> [String: Any] {
        let cpu = CPUFeatures.current
        var doc: [String: Any] = ["cpu": cpu.brand, "cpuVendor": cpu.vendor, "cpuLevel": cpu.level.description, "cpuFlags": cpu.flags]
        guard loadBLAS || BLASKernels.isLoaded else { doc["blas"] = "not loaded"; return doc }
        do {
            let k = try BLASKernels.load()
            doc["blas"] = k.library
            doc["blasPath"] = k.path
            doc["blasCore"] = k.core
            doc["blasCoreChoice"] = k.choiceDescription
            doc["blasSelfCheckPassed"] = k.selfCheckPassed
            doc["blasThreads"] = BLASKernels.threads
        } catch {
            doc["blas"] = "\(error)"
        }
        return doc
    }

    /// `json` as an ordered JSONOut object (for the commands that print through JSONOut).
    static func jsonOut(loadBLAS: Bool) -> JSONOut {
        func value(_ v: Any) -> JSONOut {
            switch v {
            case let b as Bool: return .bool(b)
            case let i as Int: return .int(i)
            case let s as String: return .string(s)
            case let a as [String]: return .array(a.map { .string($0) })
            default: return .string("\(v)")
            }
        }
        return .object(json(loadBLAS: loadBLAS).sorted { $0.key < $1.key }.map { ($0.key, value($0.value)) })
    }
}
