// OpenBLAS, loaded on first use with the right kernels for this CPU.
//
// Why dlopen instead of linking: OpenBLAS picks its kernels ("core") and starts its thread pool in a
// load-time constructor. Linked normally, every wconv command would pay for the thread pool (convert
// and inspect do no arithmetic), and the core would be fixed before wconv could look at the CPU.
// DYNAMIC_ARCH builds choose the core from the CPU model number, so a CPU newer than the library
// falls back to the generic SSE ("Prescott") kernels, 3× slower. Here the ISA comes from CPUID
// feature bits and XGETBV; when OpenBLAS's choice is older than the ISA allows, the library is
// unloaded and loaded again with OPENBLAS_CORETYPE naming the matching core. A user's own
// OPENBLAS_CORETYPE is never replaced. Whatever core runs, a GEMM is checked against a naive
// reference once, and a core wconv chose that fails the check is dropped for OpenBLAS's own.
#define _GNU_SOURCE
#include "wconv_blas.h"

#include <dlfcn.h>
#if defined(__linux__)
#include <link.h>
#endif
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>

static unsigned long long xgetbv0(void) {
    unsigned int eax, edx;
    __asm__ volatile("xgetbv" : "=a"(eax), "=d"(edx) : "c"(0));
    return ((unsigned long long)edx << 32) | eax;
}
#endif

void wconv_cpu_decode(const wconv_cpuid_words *w, wconv_cpu_features *out) {
    out->os_avx = (w->xcr0 & 0x6) == 0x6;          // XMM and YMM state
    out->os_avx512 = (w->xcr0 & 0xe6) == 0xe6;     // plus opmask, ZMM0-15 upper halves, ZMM16-31
    out->os_amx = (w->xcr0 & 0x60000) == 0x60000;  // XTILECFG and XTILEDATA
    unsigned int c1 = w->leaf1_ecx, b7 = w->leaf7_ebx, c7 = w->leaf7_ecx, d7 = w->leaf7_edx, a71 = w->leaf7_1_eax;
    bool z = out->os_avx512;
    out->sse4_2 = (c1 >> 20) & 1;
    out->avx = ((c1 >> 28) & 1) && out->os_avx;
    out->fma = ((c1 >> 12) & 1) && out->os_avx;
    out->avx2 = ((b7 >> 5) & 1) && out->os_avx;
    out->avx512f = ((b7 >> 16) & 1) && z;
    out->avx512dq = ((b7 >> 17) & 1) && z;
    out->avx512cd = ((b7 >> 28) & 1) && z;
    out->avx512bw = ((b7 >> 30) & 1) && z;
    out->avx512vl = ((b7 >> 31) & 1) && z;
    out->avx512_vnni = ((c7 >> 11) & 1) && z;
    out->avx512_fp16 = ((d7 >> 23) & 1) && z;
    out->avx512_bf16 = ((a71 >> 5) & 1) && z;
    out->amx_bf16 = ((d7 >> 22) & 1) && out->os_amx;
    out->amx_tile = ((d7 >> 24) & 1) && out->os_amx;
    out->amx_int8 = ((d7 >> 25) & 1) && out->os_amx;
}

void wconv_cpu_detect(wconv_cpu_features *out) {
    memset(out, 0, sizeof *out);
#if defined(__x86_64__) || defined(__i386__)
    unsigned int a, b, c, d;
    if (!__get_cpuid(0, &a, &b, &c, &d)) return;
    unsigned int maxLeaf = a;
    memcpy(out->vendor, &b, 4);
    memcpy(out->vendor + 4, &d, 4);
    memcpy(out->vendor + 8, &c, 4);
    wconv_cpuid_words w = {0};
    __get_cpuid(1, &a, &b, &c, &d);
    unsigned int baseFamily = (a >> 8) & 0xf;
    out->family = (int)(baseFamily + (baseFamily == 0xf ? ((a >> 20) & 0xff) : 0));
    out->model = (int)(((a >> 4) & 0xf) | ((baseFamily == 6 || baseFamily == 0xf) ? ((a >> 16) & 0xf) << 4 : 0));
    w.leaf1_ecx = c;
    if ((c >> 27) & 1) w.xcr0 = xgetbv0();  // OSXSAVE: XGETBV is available
    if (maxLeaf >= 7) {
        __cpuid_count(7, 0, a, w.leaf7_ebx, w.leaf7_ecx, w.leaf7_edx);
        if (a >= 1) __cpuid_count(7, 1, w.leaf7_1_eax, b, c, d);
    }
    wconv_cpu_decode(&w, out);
    if (__get_cpuid(0x80000000, &a, &b, &c, &d) && a >= 0x80000004) {
        unsigned int r[12];
        for (unsigned int i = 0; i < 3; i++) __get_cpuid(0x80000002 + i, &r[i * 4], &r[i * 4 + 1], &r[i * 4 + 2], &r[i * 4 + 3]);
        memcpy(out->brand, r, 48);
        out->brand[48] = 0;
        // Trim the padding some CPUs put around the name.
        char *s = out->brand;
        while (*s == ' ') s++;
        memmove(out->brand, s, strlen(s) + 1);
        for (size_t n = strlen(out->brand); n > 0 && out->brand[n - 1] == ' '; n--) out->brand[n - 1] = 0;
    }
#endif
}

const char *wconv_blas_isa_coretype(const wconv_cpu_features *cpu) {
    bool amd = strcmp(cpu->vendor, "AuthenticAMD") == 0 || strcmp(cpu->vendor, "HygonGenuine") == 0;
    if (cpu->avx512f && cpu->avx512dq && cpu->avx512cd && cpu->avx512bw && cpu->avx512vl)
        return cpu->avx512_bf16 ? "Cooperlake" : "SkylakeX";
    if (cpu->avx2 && cpu->fma) return amd ? "Zen" : "Haswell";
    if (cpu->avx) return "Sandybridge";
    return NULL;
}

int wconv_blas_core_tier(const char *core) {
    static const struct { const char *name; int tier; } table[] = {
        {"cooperlake", 4}, {"sapphirerapids", 4},
        {"skylakex", 3},
        {"haswell", 2}, {"zen", 2}, {"excavator", 2},
        {"sandybridge", 1}, {"bulldozer", 1}, {"piledriver", 1}, {"steamroller", 1},
        {"prescott", 0}, {"core2", 0}, {"penryn", 0}, {"dunnington", 0}, {"nehalem", 0}, {"atom", 0},
        {"athlon", 0}, {"opteron", 0}, {"opteron_sse3", 0}, {"barcelona", 0}, {"bobcat", 0}, {"nano", 0},
        {"katmai", 0}, {"coppermine", 0}, {"northwood", 0}, {"banias", 0}, {"generic", 0},
    };
    if (!core) return -1;
    for (size_t i = 0; i < sizeof table / sizeof table[0]; i++)
        if (strcasecmp(core, table[i].name) == 0) return table[i].tier;
    return -1;
}

// ---- loading ----

typedef void (*sgemm_fn)(int, int, int, int, int, int, float, const float *, int, const float *, int, float, float *, int);
typedef void (*sgemv_fn)(int, int, int, int, float, const float *, int, const float *, int, float, float *, int);
typedef void (*set_threads_fn)(int);
typedef int (*get_threads_fn)(void);
typedef char *(*string_fn)(void);

static wconv_blas_state state;
static void *handle;
static sgemm_fn p_sgemm;
static sgemv_fn p_sgemv;
static set_threads_fn p_set_threads;
static get_threads_fn p_get_threads;
static atomic_bool loaded;
static pthread_once_t once = PTHREAD_ONCE_INIT;

enum { ROW_MAJOR = 101, NO_TRANS = 111, TRANS = 112 };  // cblas.h's CBLAS_ORDER / CBLAS_TRANSPOSE

static void copy(char *dst, size_t cap, const char *src) {
    snprintf(dst, cap, "%s", src ? src : "");
}

/// dlopen with OPENBLAS_CORETYPE set to `coretype` (or left as it is when NULL) for the constructor.
/// OpenBLAS's idle workers spin on sched_yield for 2^28 TSC cycles (~0.1 s) after every call before
/// sleeping; between a network's GEMMs that spinning takes the core oneDNN's and the runtime's own
/// loops need next (issue 9: 40 % of a few-label job's samples were sched_yield). The constructor
/// reads OPENBLAS_THREAD_TIMEOUT (log2 cycles, at least 4): unless the user set one, workers sleep
/// at once and are woken per call.
static bool open_library(const char *coretype) {
    static const char *names[] = {"libopenblas.so.0", "libopenblas.so", "libopenblasp.so.0", "libopenblas.dylib"};
    if (coretype) setenv("OPENBLAS_CORETYPE", coretype, 1);
    bool timeout = !getenv("OPENBLAS_THREAD_TIMEOUT") && !getenv("GOTO_THREAD_TIMEOUT");
    if (timeout) setenv("OPENBLAS_THREAD_TIMEOUT", "4", 1);
    char errors[512] = "";
    for (size_t i = 0; i < sizeof names / sizeof names[0] && !handle; i++) {
        handle = dlopen(names[i], RTLD_NOW | RTLD_LOCAL);
        if (!handle && i == 0) copy(errors, sizeof errors, dlerror());
    }
    if (coretype) unsetenv("OPENBLAS_CORETYPE");
    if (timeout) unsetenv("OPENBLAS_THREAD_TIMEOUT");
    if (!handle) {
        snprintf(state.error, sizeof state.error,
                 "cannot load OpenBLAS (%s); install it (Debian: apt-get install libopenblas0, or run tools/install-deps)", errors);
        return false;
    }
    p_sgemm = (sgemm_fn)dlsym(handle, "cblas_sgemm");
    p_sgemv = (sgemv_fn)dlsym(handle, "cblas_sgemv");
    p_set_threads = (set_threads_fn)dlsym(handle, "openblas_set_num_threads");
    p_get_threads = (get_threads_fn)dlsym(handle, "openblas_get_num_threads");
    string_fn corename = (string_fn)dlsym(handle, "openblas_get_corename");
    string_fn config = (string_fn)dlsym(handle, "openblas_get_config");
    if (!p_sgemm || !p_set_threads || !p_get_threads || !corename || !config) {
        snprintf(state.error, sizeof state.error, "the BLAS library found is not OpenBLAS (cblas_sgemm or openblas_get_corename missing)");
        dlclose(handle);
        handle = NULL;
        return false;
    }
    copy(state.core, sizeof state.core, corename());
    copy(state.config, sizeof state.config, config());
    state.dynamic_arch = strstr(state.config, "DYNAMIC_ARCH") != NULL;
    state.path[0] = 0;
#if defined(__linux__)
    struct link_map *map = NULL;
    if (dlinfo(handle, RTLD_DI_LINKMAP, &map) == 0 && map && map->l_name) {
        char *real = realpath(map->l_name, NULL);
        copy(state.path, sizeof state.path, real ? real : map->l_name);
        free(real);
    }
#endif
    return true;
}

static void close_library(void) {
    if (handle) dlclose(handle);
    handle = NULL;
    p_sgemm = NULL;
}

/// Fills a matrix with values in [-1, 1) from a fixed linear congruential sequence.
static void fill(float *x, int n, unsigned int seed) {
    for (int i = 0; i < n; i++) {
        seed = seed * 1664525u + 1013904223u;
        x[i] = (float)((seed >> 8) & 0xffff) / 32768.0f - 1.0f;
    }
}

/// One GEMM against a double-precision reference; returns the worst |c - ref| / Σ|a·b|.
static double check_one(bool ta, bool tb, int m, int n, int k, float alpha, float beta) {
    float *a = malloc(sizeof(float) * (size_t)m * k), *b = malloc(sizeof(float) * (size_t)k * n);
    float *c = malloc(sizeof(float) * (size_t)m * n), *c0 = malloc(sizeof(float) * (size_t)m * n);
    double worst = INFINITY;
    if (a && b && c && c0) {
        fill(a, m * k, 1u + (unsigned)m);
        fill(b, k * n, 2u + (unsigned)n);
        fill(c0, m * n, 3u + (unsigned)k);
        memcpy(c, c0, sizeof(float) * (size_t)m * n);
        int lda = ta ? m : k, ldb = tb ? k : n;
        p_sgemm(ROW_MAJOR, ta ? TRANS : NO_TRANS, tb ? TRANS : NO_TRANS, m, n, k, alpha, a, lda, b, ldb, beta, c, n);
        worst = 0;
        for (int i = 0; i < m; i++) {
            for (int j = 0; j < n; j++) {
                double s = 0, mag = 0;
                for (int p = 0; p < k; p++) {
                    double av = ta ? a[p * lda + i] : a[i * lda + p];
                    double bv = tb ? b[j * ldb + p] : b[p * ldb + j];
                    s += av * bv;
                    mag += fabs(av * bv);
                }
                double ref = alpha * s + beta * c0[i * n + j];
                double e = fabs(c[i * n + j] - ref) / (fabs(alpha) * mag + fabs(beta * c0[i * n + j]) + 1e-30);
                if (!(e <= worst)) worst = e;  // NaN counts as the worst
            }
        }
    }
    free(a); free(b); free(c); free(c0);
    return worst;
}

/// The self-check: a product large enough that OpenBLAS splits it across its threads, and a small
/// transposed one with beta. Returns 1 when both match the reference.
static int check_all(double *error) {
    double e1 = check_one(false, false, 128, 96, 160, 1.0f, 0.0f);
    double e2 = check_one(true, true, 37, 29, 53, 0.5f, 1.0f);
    *error = e1 > e2 || e1 != e1 ? e1 : e2;
    return *error <= 1e-4;  // f32 rounding stays near 1e-7; a wrong kernel is off by O(1)
}

int wconv_blas_self_check(double *error) {
    if (!wconv_blas_load()->loaded) { *error = INFINITY; return 0; }
    return check_all(error);
}

/// Inside the once-block (wconv_blas_load would wait on itself): checks and records the result.
static int run_check(void) {
    state.self_check = check_all(&state.self_check_error);
    return state.self_check;
}

static void load_once(void) {
    wconv_cpu_features cpu;
    wconv_cpu_detect(&cpu);
    const char *user = getenv("OPENBLAS_CORETYPE");
    if (user && *user) {
        copy(state.user_coretype, sizeof state.user_coretype, user);
        state.source = WCONV_CORE_USER;
    }
    // Tests of the replacement path: load first with this core, as if OpenBLAS had chosen it.
    const char *simulated = state.source == WCONV_CORE_USER ? NULL : getenv("WCONV_BLAS_SIMULATE_LIBRARY_CORE");
    if (!open_library(simulated && *simulated ? simulated : NULL)) return;
    copy(state.library_core, sizeof state.library_core, state.core);
    const char *want = wconv_blas_isa_coretype(&cpu);
    int have = wconv_blas_core_tier(state.core);
    if (state.source != WCONV_CORE_USER && state.dynamic_arch && want && have >= 0 && have < wconv_blas_core_tier(want)) {
        close_library();
        if (!open_library(want)) return;
        state.source = WCONV_CORE_SELECTED;
        if (strcasecmp(state.core, want) != 0)
            snprintf(state.note, sizeof state.note, "asked OpenBLAS for %s, it runs %s", want, state.core);
        if (!run_check()) {
            char failed[64];
            copy(failed, sizeof failed, state.core);
            close_library();
            if (!open_library(NULL)) return;
            state.source = WCONV_CORE_LIBRARY;
            snprintf(state.note, sizeof state.note, "the %s kernels failed the GEMM self-check here; kept OpenBLAS's own %s", failed, state.core);
        }
    }
    if (state.self_check == 0) run_check();
    atomic_store(&loaded, true);
    state.loaded = true;
}

const wconv_blas_state *wconv_blas_load(void) {
    pthread_once(&once, load_once);
    return &state;
}

bool wconv_blas_is_loaded(void) { return atomic_load_explicit(&loaded, memory_order_acquire); }

static void require(void) {
    if (atomic_load_explicit(&loaded, memory_order_acquire)) return;
    if (!wconv_blas_load()->loaded) {
        fprintf(stderr, "wconv: error: %s\n", state.error);
        exit(1);
    }
}

void wconv_sgemm(bool trans_a, bool trans_b, int m, int n, int k, float alpha,
                 const float *a, int lda, const float *b, int ldb, float beta, float *c, int ldc) {
    require();
    p_sgemm(ROW_MAJOR, trans_a ? TRANS : NO_TRANS, trans_b ? TRANS : NO_TRANS, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}

void wconv_sgemv(bool trans, int m, int n, float alpha, const float *a, int lda, const float *x, float beta, float *y) {
    require();
    if (!p_sgemv) {  // every OpenBLAS has it; a GEMM of one column otherwise
        if (trans) p_sgemm(ROW_MAJOR, TRANS, NO_TRANS, n, 1, m, alpha, a, lda, x, 1, beta, y, 1);
        else p_sgemm(ROW_MAJOR, NO_TRANS, NO_TRANS, m, 1, n, alpha, a, lda, x, 1, beta, y, 1);
        return;
    }
    // β = 0 must not read y (it may hold anything, NaN included); some ?scal kernels scale by 0.
    if (beta == 0.0f) memset(y, 0, (size_t)(trans ? n : m) * sizeof(float));
    p_sgemv(ROW_MAJOR, trans ? TRANS : NO_TRANS, m, n, alpha, a, lda, x, 1, beta, y, 1);
}

void wconv_blas_set_threads(int threads) {
    require();
    p_set_threads(threads);
}

int wconv_blas_threads(void) {
    require();
    return p_get_threads();
}
