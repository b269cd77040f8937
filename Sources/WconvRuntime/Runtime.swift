// WconvRuntime: kernels (Kernels/), the inference executor (InferenceSession) and autograd
// (Autograd/, TrainingSession) over a ModelGraph. Activations are NCHW float32 in contiguous
// buffers; heavy ops go through OpenBLAS sgemm, which threads itself across the cores.
import CWconvBLAS

/// Process-wide BLAS threading. OpenBLAS keeps one global thread count, so the sessions set it
/// once; our own loops never call BLAS from inside a parallel region (that would oversubscribe).
public enum RuntimeThreads {
    /// Sets the OpenBLAS thread count and the width of the runtime's own parallel loops. The first
    /// call loads OpenBLAS (ComputeKernels.swift); throws when it cannot be loaded.
    public static func configure(_ threads: Int) throws {
        _ = try BLASKernels.load()
        let t = max(1, threads)
        wconv_blas_set_threads(Int32(t))
        Parallel.width = t
        DNNL.threads = t
    }
}
