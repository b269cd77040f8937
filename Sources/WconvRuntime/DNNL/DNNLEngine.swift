import CWconvDNNL
import Foundation
import WconvTensor

/// oneDNN (Debian's libdnnl, OpenMP threading): the CPU engine and stream every primitive runs on.
/// Created on first use; `WCONV_DNNL=0` in the environment turns oneDNN off (the im2col + OpenBLAS
/// kernels run instead). Primitives are created once per planned shape (DNNLConvolution), never per call.
public enum DNNL {
    /// The engine, or nil when disabled by WCONV_DNNL=0 or when oneDNN cannot create a CPU engine.
    static let engine: Engine? = {
        if let v = ProcessInfo.processInfo.environment["WCONV_DNNL"], v == "0" || v.lowercased() == "off" { return nil }
        return try? Engine()
    }()

    /// True when convolutions run on oneDNN (creates the engine; starts no threads).
    public static var isEnabled: Bool { !disabledForTesting && engine != nil }

    /// Tests compare plans made with and without oneDNN in one process (read when a plan is made).
    nonisolated(unsafe) static var disabledForTesting = false

    /// Runtime threads for oneDNN's OpenMP pool (RuntimeThreads.configure sets it).
    nonisolated(unsafe) static var threads = 2

    /// "oneDNN 2.6.3 (cpu OpenMP, ISA avx512_core_bf16)" or why it is off.
    public static var summary: String {
        let v = dnnl_version()!.pointee
        let version = "oneDNN \(v.major).\(v.minor).\(v.patch)"
        guard isEnabled else {
            let env = ProcessInfo.processInfo.environment["WCONV_DNNL"]
            return "\(version) off (\(env != nil ? "WCONV_DNNL=\(env!)" : "no CPU engine")): convolutions on im2col + BLAS"
        }
        let env = ProcessInfo.processInfo.environment
        let policy = env["OMP_WAIT_POLICY"].map { "OMP_WAIT_POLICY=\($0)" } ?? env["GOMP_SPINCOUNT"].map { "GOMP_SPINCOUNT=\($0)" } ?? "default wait policy; wconv's arithmetic commands set GOMP_SPINCOUNT=10000"
        let wino = !DNNLConvolution.winogradEnabled ? ""
            : hasWinograd ? " (3×3 stride 1: Winograd)" : " (3×3 stride 1: Winograd F(4×4, 3×3), wconv's transforms on oneDNN's sgemm)"
        return "\(version) (OpenMP \(policy), ISA \(isaName(dnnl_get_effective_cpu_isa()))): convolutions\(wino)"
    }

    /// oneDNN dispatches at AVX-512 (core) or above, where its f32 Winograd kernels exist.
    static var hasWinograd: Bool {
        let isa = dnnl_get_effective_cpu_isa().rawValue, core = dnnl_cpu_isa_avx512_core.rawValue
        return isa & core == core
    }

    static func isaName(_ isa: dnnl_cpu_isa_t) -> String {
        switch isa {
        case dnnl_cpu_isa_sse41: return "sse41"
        case dnnl_cpu_isa_avx: return "avx"
        case dnnl_cpu_isa_avx2: return "avx2"
        case dnnl_cpu_isa_avx512_mic: return "avx512_mic"
        case dnnl_cpu_isa_avx512_core: return "avx512_core"
        case dnnl_cpu_isa_avx512_core_vnni: return "avx512_core_vnni"
        case dnnl_cpu_isa_avx512_core_bf16: return "avx512_core_bf16"
        case dnnl_cpu_isa_avx512_core_amx: return "avx512_core_amx"
        case dnnl_cpu_isa_avx2_vnni: return "avx2_vnni"
        default: return "isa 0x\(String(isa.rawValue, radix: 16))"
        }
    }

    final class Engine: @unchecked Sendable {
        let engine: dnnl_engine_t
        let stream: dnnl_stream_t
        init() throws {
            var e: dnnl_engine_t?
            try check(dnnl_engine_create(&e, dnnl_cpu, 0), "engine_create")
            var s: dnnl_stream_t?
            try check(dnnl_stream_create(&s, e, dnnl_stream_default_flags.rawValue), "stream_create")
            engine = e!
            stream = s!
        }
    }

    /// Throws a runtime error naming the oneDNN call that failed.
    static func check(_ status: dnnl_status_t, _ what: String) throws {
        guard status == dnnl_success else {
            throw WconvError(.runtime, "oneDNN \(what) failed (status \(status.rawValue)); WCONV_DNNL=0 runs the convolutions without oneDNN")
        }
    }

    /// Sets libgomp's thread count on the calling thread (a per-thread setting) before a primitive runs.
    @inline(__always)
    static func prepareThreads() {
        if omp_get_max_threads() != Int32(threads) { omp_set_num_threads(Int32(threads)) }
    }
}

/// A oneDNN memory object over a caller's buffer (the handle is swapped per call, never copied).
extension DNNL {
    /// The first primitive descriptor oneDNN offers for `op`, passing over implementations whose
    /// name starts with `avoiding` (a kernel known to misbehave) while another one exists.
    static func primitiveDesc(_ op: UnsafeRawPointer, _ engine: Engine, hint: dnnl_primitive_desc_t?, avoiding: String?,
                              _ what: String) throws -> dnnl_primitive_desc_t {
        var it: dnnl_primitive_desc_iterator_t?
        try check(dnnl_primitive_desc_iterator_create(&it, op, nil, engine.engine, hint), "\(what) primitive_desc_iterator_create")
        defer { dnnl_primitive_desc_iterator_destroy(it) }
        var first: dnnl_primitive_desc_t?
        repeat {
            guard let pd = dnnl_primitive_desc_iterator_fetch(it) else { break }
            var name: UnsafePointer<CChar>?
            let impl = dnnl_primitive_desc_query(pd, dnnl_query_impl_info_str, 0, &name) == dnnl_success ? name.map { String(cString: $0) } ?? "" : ""
            if let avoiding, impl.hasPrefix(avoiding) {
                if first == nil { first = pd } else { dnnl_primitive_desc_destroy(pd) }
                continue
            }
            if let first { dnnl_primitive_desc_destroy(first) }
            return pd
        } while dnnl_primitive_desc_iterator_next(it) == dnnl_success
        guard let first else { throw WconvError(.runtime, "oneDNN has no implementation of \(what)") }
        return first
    }
}

final class DNNLMemory {
    let memory: dnnl_memory_t
    var desc: dnnl_memory_desc_t
    /// Owned storage when the layout is oneDNN's own (blocked); nil when it wraps caller buffers.
    private(set) var owned: UnsafeMutableRawPointer?

    init(_ md: dnnl_memory_desc_t, _ engine: DNNL.Engine, own: Bool) throws {
        desc = md
        var m: dnnl_memory_t?
        var d = md
        if own {
            let size = max(dnnl_memory_desc_get_size(&d), 64)
            owned = UnsafeMutableRawPointer.allocate(byteCount: size, alignment: 64)
            try DNNL.check(dnnl_memory_create(&m, &d, engine.engine, owned), "memory_create")
        } else {
            try DNNL.check(dnnl_memory_create(&m, &d, engine.engine, nil), "memory_create")
        }
        memory = m!
    }

    var byteCount: Int { var d = desc; return dnnl_memory_desc_get_size(&d) }

    @inline(__always)
    func bind(_ p: UnsafeRawPointer?) { dnnl_memory_set_data_handle(memory, UnsafeMutableRawPointer(mutating: p)) }

    deinit {
        dnnl_memory_destroy(memory)
        owned?.deallocate()
    }
}

/// One created primitive with its descriptor.
final class DNNLPrimitive {
    let pd: dnnl_primitive_desc_t
    let primitive: dnnl_primitive_t

    /// Takes ownership of `pd`.
    init(_ pd: dnnl_primitive_desc_t) throws {
        self.pd = pd
        var p: dnnl_primitive_t?
        let st = dnnl_primitive_create(&p, pd)
        guard st == dnnl_success, let p else {
            dnnl_primitive_desc_destroy(pd)
            throw WconvError(.runtime, "oneDNN primitive_create failed (status \(st.rawValue))")
        }
        primitive = p
    }

    /// A reorder from `src` to `dst` layout.
    static func reorder(_ src: dnnl_memory_desc_t, _ dst: dnnl_memory_desc_t, _ engine: DNNL.Engine) throws -> DNNLPrimitive {
        var s = src, d = dst
        var pd: dnnl_primitive_desc_t?
        try DNNL.check(dnnl_reorder_primitive_desc_create(&pd, &s, engine.engine, &d, engine.engine, nil), "reorder_primitive_desc_create")
        return try DNNLPrimitive(pd!)
    }

    /// The memory descriptor the primitive chose for `what` (src, weights, dst, …).
    func md(_ what: dnnl_query_t, _ index: Int32 = 0) -> dnnl_memory_desc_t {
        dnnl_primitive_desc_query_md(pd, what, index)!.pointee
    }

    /// The implementation oneDNN picked ("jit:avx512_core", "gemm:jit", …).
    var implementation: String {
        var name: UnsafePointer<CChar>?
        guard dnnl_primitive_desc_query(pd, dnnl_query_impl_info_str, 0, &name) == dnnl_success, let name else { return "?" }
        return String(cString: name)
    }

    @inline(__always)
    func execute(_ engine: DNNL.Engine, _ args: [(Int32, DNNLMemory)]) {
        DNNL.prepareThreads()
        var a = args.map { dnnl_exec_arg_t(arg: $0.0, memory: $0.1.memory) }
        let st = dnnl_primitive_execute(primitive, engine.stream, Int32(a.count), &a)
        precondition(st == dnnl_success, "oneDNN primitive_execute failed (status \(st.rawValue)) in \(implementation)")
        dnnl_stream_wait(engine.stream)
    }

    deinit {
        dnnl_primitive_destroy(primitive)
        dnnl_primitive_desc_destroy(pd)
    }
}

extension dnnl_memory_desc_t {
    /// A plain descriptor of f32 `dims` in `tag` layout (dnnl_format_tag_any lets the primitive choose).
    static func f32(_ dims: [Int], _ tag: dnnl_format_tag_t) throws -> dnnl_memory_desc_t { try of(dims, tag, dnnl_f32) }

    /// A plain descriptor of `dims` of `type` in `tag` layout.
    static func of(_ dims: [Int], _ tag: dnnl_format_tag_t, _ type: dnnl_data_type_t) throws -> dnnl_memory_desc_t {
        var md = dnnl_memory_desc_t()
        let d = dims.map { Int64($0) }
        try DNNL.check(dnnl_memory_desc_init_by_tag(&md, Int32(d.count), d, type, tag), "memory_desc_init_by_tag \(dims)")
        return md
    }

    static func == (a: dnnl_memory_desc_t, b: dnnl_memory_desc_t) -> Bool {
        var x = a, y = b
        return dnnl_memory_desc_equal(&x, &y) != 0
    }
}
