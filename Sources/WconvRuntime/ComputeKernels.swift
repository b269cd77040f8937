import CWconvBLAS
import Foundation
import WconvTensor

/// The CPU's usable instruction sets, from CPUID feature bits with the OS's register-state support
/// (XGETBV): a CPU newer than any table of model numbers is still recognised by what it can do.
public struct CPUFeatures: Sendable {
    /// Vector ISA tiers, in the order OpenBLAS's kernels use them.
    public enum Level: Int, Sendable, Comparable, CustomStringConvertible {
        case baseline = 0, avx, avx2, avx512, avx512bf16
        public static func < (a: Level, b: Level) -> Bool { a.rawValue < b.rawValue }
        /// The tier of an OpenBLAS core name ("Prescott" → baseline, "SkylakeX" → avx512); nil for a
        /// name wconv's table does not know.
        public init?(openBLASCore name: String) { self.init(rawValue: Int(wconv_blas_core_tier(name))) }
        public var description: String {
            switch self {
            case .baseline: return "SSE"
            case .avx: return "AVX"
            case .avx2: return "AVX2"
            case .avx512: return "AVX-512"
            case .avx512bf16: return "AVX-512+BF16"
            }
        }
    }

    public let vendor: String
    public let brand: String
    public let family: Int
    public let model: Int
    /// Usable extensions by their Linux /proc/cpuinfo names (only those the kernels care about).
    public let flags: [String]
    public let level: Level
    /// The OpenBLAS core type matching `level`, or nil (no x86 vector ISA beyond SSE).
    public let openBLASCore: String?

    public static let current = CPUFeatures(detect: ())

    init(detect: Void) {
        var f = wconv_cpu_features()
        wconv_cpu_detect(&f)
        self.init(f)
    }

    init(_ f: wconv_cpu_features) {
        vendor = withUnsafeBytes(of: f.vendor) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
        brand = withUnsafeBytes(of: f.brand) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
        family = Int(f.family)
        model = Int(f.model)
        let named: [(String, Bool)] = [
            ("sse4_2", f.sse4_2), ("avx", f.avx), ("fma", f.fma), ("avx2", f.avx2),
            ("avx512f", f.avx512f), ("avx512dq", f.avx512dq), ("avx512cd", f.avx512cd), ("avx512bw", f.avx512bw),
            ("avx512vl", f.avx512vl), ("avx512_vnni", f.avx512_vnni), ("avx512_bf16", f.avx512_bf16),
            ("avx512_fp16", f.avx512_fp16), ("amx_tile", f.amx_tile), ("amx_bf16", f.amx_bf16), ("amx_int8", f.amx_int8),
        ]
        flags = named.filter(\.1).map(\.0)
        var copy = f
        openBLASCore = wconv_blas_isa_coretype(&copy).map { String(cString: $0) }
        level = openBLASCore.flatMap(Level.init(openBLASCore:)) ?? .baseline
    }

    /// The features a CPU with these raw CPUID words and XCR0 would report (tests of the decoding
    /// and of the core choice: leaf 1 ECX, leaf 7.0 EBX/ECX/EDX, leaf 7.1 EAX).
    public init(vendor: String, leaf1ECX: UInt32, leaf7EBX: UInt32, leaf7ECX: UInt32 = 0, leaf7EDX: UInt32 = 0,
                leaf7Sub1EAX: UInt32 = 0, xcr0: UInt64) {
        var f = wconv_cpu_features()
        withUnsafeMutableBytes(of: &f.vendor) { b in for (i, c) in vendor.utf8.prefix(12).enumerated() { b[i] = c } }
        var w = wconv_cpuid_words(leaf1_ecx: leaf1ECX, leaf7_ebx: leaf7EBX, leaf7_ecx: leaf7ECX, leaf7_edx: leaf7EDX,
                                  leaf7_1_eax: leaf7Sub1EAX, xcr0: xcr0)
        wconv_cpu_decode(&w, &f)
        self.init(f)
    }

    /// "AMD EPYC (AuthenticAMD family 25 model 17): AVX-512+BF16 — avx2 fma avx512f …"
    public var summary: String {
        let name = brand.isEmpty ? vendor : brand
        return "\(name) (\(vendor) family \(family) model \(model)): \(level) — \(flags.isEmpty ? "no vector extensions" : flags.joined(separator: " "))"
    }
}

/// The BLAS library in use: which library, which kernels, how they were chosen, and whether a GEMM
/// matched a naive reference. Reading it loads OpenBLAS (and starts its threads): commands that do
/// no arithmetic never touch it.
public struct BLASKernels: Sendable {
    public enum CoreChoice: Sendable, Equatable {
        /// OpenBLAS's own detection was kept (it matches the ISA, or is newer than wconv's table).
        case library
        /// OPENBLAS_CORETYPE was set by the user: never replaced.
        case user(String)
        /// OpenBLAS chose `libraryCore`, older than the CPU's ISA allows; wconv asked for a newer core.
        case selected(libraryCore: String)
    }

    /// "OpenBLAS 0.3.21"
    public let library: String
    /// The shared object mapped into the process.
    public let path: String
    /// openblas_get_config(), e.g. "OpenBLAS 0.3.21 NO_LAPACKE DYNAMIC_ARCH NO_AFFINITY Cooperlake MAX_THREADS=64".
    public let config: String
    /// The kernels in use (openblas_get_corename()).
    public let core: String
    public let choice: CoreChoice
    /// Built with runtime kernel selection, so OPENBLAS_CORETYPE can change the core.
    public let dynamicArch: Bool
    public let selfCheckPassed: Bool
    /// Worst |C − reference| / Σ|a·b| of the self-check GEMMs.
    public let selfCheckError: Double
    /// Anything the loader had to work around, or "".
    public let note: String
    public let cpu: CPUFeatures

    /// Loads OpenBLAS if needed and describes it. Throws when no OpenBLAS can be loaded.
    public static func load() throws -> BLASKernels {
        let s = wconv_blas_load()!.pointee
        guard s.loaded else { throw WconvError(.runtime, text(s.error)) }
        let config = text(s.config)
        let choice: CoreChoice
        switch s.source {
        case WCONV_CORE_USER: choice = .user(text(s.user_coretype))
        case WCONV_CORE_SELECTED: choice = .selected(libraryCore: text(s.library_core))
        default: choice = .library
        }
        return BLASKernels(library: config.split(separator: " ").prefix(2).joined(separator: " "), path: text(s.path),
                           config: config, core: text(s.core), choice: choice, dynamicArch: s.dynamic_arch,
                           selfCheckPassed: s.self_check != 0, selfCheckError: s.self_check_error, note: text(s.note),
                           cpu: .current)
    }

    /// True once OpenBLAS is in the process (does not load it).
    public static var isLoaded: Bool { wconv_blas_is_loaded() }

    /// Runs the loader's GEMM self-check again (a threaded 128×96×160 product and a small
    /// transposed one with β, against a double-precision naive reference).
    public static func selfCheck() throws -> (passed: Bool, error: Double) {
        _ = try load()
        var e = 0.0
        let ok = wconv_blas_self_check(&e) != 0
        return (ok, e)
    }

    /// OpenBLAS's current thread count.
    public static var threads: Int { Int(wconv_blas_threads()) }

    /// ISA tier of the kernels in use (nil for a core name wconv's table does not know).
    public var coreLevel: CPUFeatures.Level? { CPUFeatures.Level(openBLASCore: core) }

    /// The kernels are the generic SSE ones although the CPU has AVX2 or better: a 2–3× slowdown.
    public var isGenericOnCapableCPU: Bool { coreLevel == .baseline && cpu.level >= .avx2 }

    /// How the core was chosen, in words.
    public var choiceDescription: String {
        switch choice {
        case .library: return "chosen by OpenBLAS"
        case .user(let v): return "OPENBLAS_CORETYPE=\(v) set by the user"
        case .selected(let lib): return "selected by wconv from CPUID; OpenBLAS alone chose \(lib)"
        }
    }

    /// One line: "OpenBLAS 0.3.21, core Cooperlake (chosen by OpenBLAS), self-check passed".
    public var summary: String {
        var s = "\(library), core \(core) (\(choiceDescription)), self-check \(selfCheckPassed ? "passed" : String(format: "FAILED (error %.2g)", selfCheckError))"
        if !note.isEmpty { s += "; \(note)" }
        if isGenericOnCapableCPU { s += "; warning: generic SSE kernels although the CPU has \(cpu.level)" }
        return s
    }

    /// Facts for JSON reports.
    public var report: [String: Any] {
        ["library": library, "path": path, "config": config, "core": core, "coreChoice": choiceDescription,
         "selfCheckPassed": selfCheckPassed, "selfCheckError": selfCheckError, "threads": BLASKernels.threads,
         "cpu": cpu.brand, "cpuLevel": cpu.level.description, "cpuFlags": cpu.flags]
    }

    /// Single-precision GEMM throughput (GFLOP/s) of a large square sgemm at the current thread count:
    /// the roof that a GEMM-bound model's throughput is measured against. Best of `repeats`.
    public static func measureRoof(size: Int = 2048, repeats: Int = 3) throws -> Double {
        _ = try load()
        let n = size
        let a = UnsafeMutablePointer<Float>.allocate(capacity: n * n), b = UnsafeMutablePointer<Float>.allocate(capacity: n * n)
        let c = UnsafeMutablePointer<Float>.allocate(capacity: n * n)
        defer { a.deallocate(); b.deallocate(); c.deallocate() }
        for i in 0..<(n * n) { a[i] = Float(i % 7) * 0.25 - 0.75; b[i] = Float(i % 5) * 0.25 - 0.5 }
        sgemm(transA: false, transB: false, m: n, n: n, k: n, a: a, lda: n, b: b, ldb: n, beta: 0, c: c, ldc: n)  // warm-up
        var best = Double.infinity
        for _ in 0..<max(1, repeats) {
            let t0 = DispatchTime.now().uptimeNanoseconds
            sgemm(transA: false, transB: false, m: n, n: n, k: n, a: a, lda: n, b: b, ldb: n, beta: 0, c: c, ldc: n)
            best = min(best, Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9)
        }
        return 2 * Double(n) * Double(n) * Double(n) / best / 1e9
    }

    private static func text<T>(_ tuple: T) -> String {
        withUnsafeBytes(of: tuple) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
    }
}

/// Runs `body` with each OpenBLAS call on one thread (the caller's), restoring the count after: for
/// many small, independent GEMMs spread over the runtime's own workers (attention heads), where
/// OpenBLAS's own threads would wake and sync for every 1-MFLOP call.
func withSingleThreadedBLAS<T>(_ body: () throws -> T) rethrows -> T {
    let before = wconv_blas_threads()
    if before > 1 { wconv_blas_set_threads(1) }
    defer { if before > 1 { wconv_blas_set_threads(before) } }
    return try body()
}

/// Row-major C[M,N] = alpha·op(A)·op(B) + beta·C (OpenBLAS, loaded on first use).
@inline(__always)
func sgemm(transA: Bool, transB: Bool, m: Int, n: Int, k: Int, alpha: Float = 1,
           a: UnsafePointer<Float>, lda: Int, b: UnsafePointer<Float>, ldb: Int,
           beta: Float, c: UnsafeMutablePointer<Float>, ldc: Int) {
    // One row of A and C (batch-1 recurrences, single-row linears): c = alpha·op(B)ᵀ·a as a GEMV,
    // which reads B once instead of packing it (see wconv_sgemv).
    if m == 1 && !transA && n > 1 && k > 1 {
        // op(B) is k × n; cᵀ = op(B)ᵀ · aᵀ: with B stored n × k (transB) that is B · a, else Bᵀ · a.
        return transB ? wconv_sgemv(false, Int32(n), Int32(k), alpha, b, Int32(ldb), a, beta, c)
                      : wconv_sgemv(true, Int32(k), Int32(n), alpha, b, Int32(ldb), a, beta, c)
    }
    wconv_sgemm(transA, transB, Int32(m), Int32(n), Int32(k), alpha, a, Int32(lda), b, Int32(ldb), beta, c, Int32(ldc))
}
