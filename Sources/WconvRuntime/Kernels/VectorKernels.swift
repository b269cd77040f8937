import CWconvVector

/// wconv's own pointwise kernels in C (wconv_vector.h): SiLU and GELU with their gradients, row
/// softmax, layer norm, squeeze-excite's channel scaling and means. Swift builds for baseline
/// x86-64, so these carry AVX-512 and AVX2 paths chosen from CPUID at first use.
public enum VectorKernels {
    /// The path they run: "avx512", "avx2" or "portable" (WCONV_VECTOR_ISA=avx2 / portable caps it).
    public static var isa: String { String(cString: wconv_vector_isa()) }

    /// One line for `--version` and the benches.
    public static var summary: String {
        let after = isa.hasPrefix("avx") ? "SiLU after a oneDNN convolution runs here, not as its post-op"
                                         : "SiLU after a oneDNN convolution stays its post-op"
        return "\(isa) (SiLU and GELU forward and backward, softmax, squeeze-excite scale and pool; \(after))"
    }
}
