#ifndef WCONV_BLAS_H
#define WCONV_BLAS_H
#include <stdbool.h>

/// x86 instruction sets from CPUID feature bits. The `os_*` fields say whether the kernel saves the
/// register state (XGETBV): a set CPUID bit without it means the instructions fault, so the usable
/// flags below are already ANDed with it. Model numbers are informational only.
typedef struct {
    char vendor[13];
    char brand[49];
    int family, model;
    bool sse4_2, avx, fma, avx2;
    bool avx512f, avx512dq, avx512cd, avx512bw, avx512vl, avx512_vnni, avx512_bf16, avx512_fp16;
    bool amx_tile, amx_bf16, amx_int8;
    bool os_avx, os_avx512, os_amx;
} wconv_cpu_features;

/// Fills `out` from CPUID/XGETBV (all false on other architectures).
void wconv_cpu_detect(wconv_cpu_features *out);

/// The CPUID registers and XCR0 that the feature flags come from.
typedef struct {
    unsigned int leaf1_ecx, leaf7_ebx, leaf7_ecx, leaf7_edx, leaf7_1_eax;
    unsigned long long xcr0;
} wconv_cpuid_words;

/// Sets the ISA flags of `out` from raw CPUID words (vendor, brand and model are left alone).
void wconv_cpu_decode(const wconv_cpuid_words *words, wconv_cpu_features *out);

/// The OpenBLAS core type whose kernels match `cpu`'s usable ISA ("Cooperlake" for AVX-512 with
/// BF16, "SkylakeX" for AVX-512, "Zen"/"Haswell" for AVX2+FMA, "Sandybridge" for AVX), or NULL.
const char *wconv_blas_isa_coretype(const wconv_cpu_features *cpu);

/// ISA tier of an OpenBLAS core name: 0 SSE-era (generic), 1 AVX, 2 AVX2, 3 AVX-512, 4 AVX-512 BF16;
/// -1 for a name this table does not know (treated as newer than it, never replaced).
int wconv_blas_core_tier(const char *core);

/// How the core in use was chosen.
typedef enum {
    WCONV_CORE_LIBRARY = 0,  ///< OpenBLAS's own detection
    WCONV_CORE_USER = 1,     ///< OPENBLAS_CORETYPE set in the environment (never overridden)
    WCONV_CORE_SELECTED = 2, ///< wconv set OPENBLAS_CORETYPE from CPUID because OpenBLAS chose an older core
} wconv_core_source;

/// What was loaded, filled once by the first BLAS use.
typedef struct {
    bool loaded;
    char error[512];            ///< why loading failed (when !loaded)
    char path[512];             ///< the shared object actually mapped
    char config[256];           ///< openblas_get_config()
    char core[64];              ///< openblas_get_corename() of the library in use
    char library_core[64];      ///< what OpenBLAS chose on its own (differs when replaced)
    char user_coretype[64];     ///< OPENBLAS_CORETYPE as the user set it, or ""
    wconv_core_source source;
    bool dynamic_arch;          ///< built with runtime kernel selection (OPENBLAS_CORETYPE works)
    int self_check;             ///< 1 passed, 0 failed
    double self_check_error;    ///< worst |C - reference| / Σ|a·b| over the checked entries
    char note[256];             ///< what happened on the way (a replaced core failing its check, …)
} wconv_blas_state;

/// Loads OpenBLAS on first call (choosing the core as described in wconv_blas.c) and returns the
/// state; later calls return the same state. Thread-safe. For tests of the core replacement,
/// WCONV_BLAS_SIMULATE_LIBRARY_CORE=NAME makes the first load run NAME as if OpenBLAS had chosen it.
const wconv_blas_state *wconv_blas_load(void);

/// True once OpenBLAS has been loaded into this process (does not load it).
bool wconv_blas_is_loaded(void);

/// Row-major C[m,n] = alpha·op(A)·op(B) + beta·C through cblas_sgemm. Loads the library on first
/// use; if it cannot be loaded the process exits with the reason (callers check wconv_blas_load).
void wconv_sgemm(bool trans_a, bool trans_b, int m, int n, int k, float alpha,
                 const float *a, int lda, const float *b, int ldb, float beta, float *c, int ldc);

/// Row-major y[·] = alpha·op(A)·x + beta·y through cblas_sgemv, A m × n (y has m values, or n with
/// `trans`). A GEMM of one row packs all of B on every call (OpenBLAS's sgemm_incopy: 40 % of an
/// LSTM recogniser at batch 1, whose recurrent weights are 4 MB a step); GEMV reads A once.
void wconv_sgemv(bool trans, int m, int n, float alpha, const float *a, int lda, const float *x, float beta, float *y);

void wconv_blas_set_threads(int threads);
int wconv_blas_threads(void);

/// Runs the GEMM self-check again (the loader runs it once); returns 1 when it passes and writes
/// the worst relative error to *error.
int wconv_blas_self_check(double *error);
#endif
