// Pointwise kernels with per-function ISA targets (see wconv_vector.h for why they are in C).
// e^x is Cephes' expf: n = round(x·log2 e), e^r by a degree-6 polynomial on |r| ≤ ln2/2 (Cody–Waite
// split of ln 2), times 2^n. The portable version clamps its argument to [−87.3, 88.3] so 2^n built
// from exponent bits stays a normal float; the AVX-512 one (exp512) gives 0 below −87.3 and
// saturates above. Neither returns a denormal (see exp512).
#include "wconv_vector.h"
#include "isa_level.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>
#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define WCONV_X86 1
#endif

#include "vector_math.h"

static inline __attribute__((always_inline)) void silu_body(const float *x, float *y, size_t n) {
    VECTORISE_IN_PLACE
    for (size_t i = 0; i < n; i++) {
        float v = x[i];
        // Below −EXP_HI e^{−v} would be clamped to e^{88.3}, leaving a tiny non-zero value that turns
        // into denormals downstream (60× slower arithmetic in every later layer): −0, as e^{−v} = ∞ gives.
        y[i] = v == -INFINITY ? NAN : v < -EXP_HI ? -0.0f : v / (1.0f + exp_portable(-v));
    }
}

static inline __attribute__((always_inline)) void silu_grad_body(const float *x, const float *dy, float *dx, size_t n, int accumulate) {
    VECTORISE_IN_PLACE
    for (size_t i = 0; i < n; i++) {
        float v = x[i], s = v < -EXP_HI ? 0.0f : 1.0f / (1.0f + exp_portable(-v)), g = dy[i] * s * (1.0f + v * (1.0f - s));
        if (v == -INFINITY) g = NAN;
        dx[i] = accumulate ? dx[i] + g : g;
    }
}

// The portable bodies, and the same compiled for AVX2 + FMA (the compiler vectorises them 8 wide;
// AVX-512 has hand-written kernels below, with vscalefps and masked tails).
static void silu_portable(const float *x, float *y, size_t n) { silu_body(x, y, n); }
static void silu_grad_portable(const float *x, const float *dy, float *dx, size_t n, int accumulate) { silu_grad_body(x, dy, dx, n, accumulate); }
#ifdef WCONV_X86
__attribute__((target("avx2,fma"))) static void silu_avx2(const float *x, float *y, size_t n) { silu_body(x, y, n); }
__attribute__((target("avx2,fma"))) static void silu_grad_avx2(const float *x, const float *dy, float *dx, size_t n, int accumulate) {
    silu_grad_body(x, dy, dx, n, accumulate);
}
#endif

static inline __attribute__((always_inline)) void scale_channels_body(const float *x, const float *s, float *y, size_t p0, size_t p1, size_t hw, size_t c) {
    for (size_t p = p0; p < p1; p++) {
        const float *src = x + p * c, *sc = s + p / hw * c;
        float *dst = y + p * c;
        VECTORISE_IN_PLACE
        for (size_t k = 0; k < c; k++) dst[k] = src[k] * sc[k];
    }
}

static inline __attribute__((always_inline)) void channel_means_body(const float *x, float *y, size_t i0, size_t i1, size_t hw, size_t c) {
    for (size_t i = i0; i < i1; i++) {
        float *dst = y + i * c;
        for (size_t k = 0; k < c; k++) dst[k] = 0;
        for (size_t p = 0; p < hw; p++) {
            const float *src = x + (i * hw + p) * c;
            for (size_t k = 0; k < c; k++) dst[k] += src[k];
        }
        float inv = 1.0f / (float)hw;
        for (size_t k = 0; k < c; k++) dst[k] *= inv;
    }
}

static void silu_channel_sums_with(void (*silu)(const float *, float *, size_t), float *y, float *sums, size_t p0, size_t p1, size_t c) {
    for (size_t p = p0; p < p1; p++) {
        float *px = y + p * c;
        silu(px, px, c);
        for (size_t k = 0; k < c; k++) sums[k] += px[k];
    }
}

// Abramowitz–Stegun 7.1.26 for erf(|u|): 1 − t·P(t)·e^{−u²}, t = 1/(1 + p|u|); the caller passes
// e^{−u²} (GELU's gradient reuses it for φ).
#define AS_P 0.3275911f
#define AS_A1 0.254829592f
#define AS_A2 (-0.284496736f)
#define AS_A3 1.421413741f
#define AS_A4 (-1.453152027f)
#define AS_A5 1.061405429f
#define INV_SQRT2 0.70710678118654752f
#define INV_SQRT_2PI 0.39894228040143268f

static inline float erf_portable(float u, float e) {
    float a = u < 0 ? -u : u, t = 1.0f / (1.0f + AS_P * a);
    float r = (((AS_A5 * t + AS_A4) * t + AS_A3) * t + AS_A2) * t + AS_A1;
    float v = 1.0f - r * t * e;
    return u < 0 ? -v : v;
}

static inline __attribute__((always_inline)) void gelu_body(const float *x, float *y, size_t n) {
    VECTORISE_IN_PLACE
    for (size_t i = 0; i < n; i++) {
        float v = x[i], u = v * INV_SQRT2;
        y[i] = 0.5f * v * (1.0f + erf_portable(u, exp_portable(-u * u)));
    }
}

static inline __attribute__((always_inline)) void gelu_grad_body(const float *x, const float *dy, float *dx, size_t n) {
    VECTORISE_IN_PLACE
    for (size_t i = 0; i < n; i++) {
        float v = x[i], u = v * INV_SQRT2, e = exp_portable(-u * u);
        dx[i] += dy[i] * (0.5f * (1.0f + erf_portable(u, e)) + v * e * INV_SQRT_2PI);
    }
}

static void gelu_portable(const float *x, float *y, size_t n) { gelu_body(x, y, n); }
static void gelu_grad_portable(const float *x, const float *dy, float *dx, size_t n) { gelu_grad_body(x, dy, dx, n); }
#ifdef WCONV_X86
__attribute__((target("avx2,fma"))) static void gelu_avx2(const float *x, float *y, size_t n) { gelu_body(x, y, n); }
__attribute__((target("avx2,fma"))) static void gelu_grad_avx2(const float *x, const float *dy, float *dx, size_t n) { gelu_grad_body(x, dy, dx, n); }
#endif

static inline __attribute__((always_inline)) void softmax_rows_body(const float *x, float *y, size_t rows, size_t n) {
    for (size_t r = 0; r < rows; r++) {
        const float *px = x + r * n;
        float *py = y + r * n, mx = -INFINITY, sum = 0;
        for (size_t i = 0; i < n; i++) mx = px[i] > mx ? px[i] : mx;
        for (size_t i = 0; i < n; i++) {
            float d = px[i] - mx, e = d < EXP_LO ? 0.0f : exp_portable(d);
            if (d != d) e = d;  // NaN (a row without a finite maximum) stays NaN
            py[i] = e; sum += e;
        }
        float inv = 1.0f / sum;
        for (size_t i = 0; i < n; i++) py[i] *= inv;
    }
}

// y = x + mask over one row (attention scores plus an additive mask), vectorised like the others.
static inline __attribute__((always_inline)) void add_row_body(const float *x, const float *m, float *y, size_t n) {
    VECTORISE_IN_PLACE
    for (size_t i = 0; i < n; i++) y[i] = x[i] + m[i];
}

static inline __attribute__((always_inline)) void layer_norm_rows_body(const float *x, float *y, size_t rows, size_t n, const float *w, const float *b, float eps,
                                     float *mo, float *io) {
    for (size_t r = 0; r < rows; r++) {
        const float *p = x + r * n;
        float *q = y + r * n;
        double s = 0, sq = 0;
        for (size_t i = 0; i < n; i++) s += (double)p[i];
        double mean = s / (double)n;
        for (size_t i = 0; i < n; i++) { double d = (double)p[i] - mean; sq += d * d; }
        float inv = (float)(1.0 / sqrt(sq / (double)n + (double)eps)), mf = (float)mean;
        if (mo) mo[r] = mf;
        if (io) io[r] = inv;
        VECTORISE_IN_PLACE
        for (size_t i = 0; i < n; i++) {
            float v = (p[i] - mf) * inv;
            if (w) v *= w[i];
            if (b) v += b[i];
            q[i] = v;
        }
    }
}

// The portable bodies above as functions, and the same compiled for AVX2 + FMA (8 wide; AVX-512
// has hand-written kernels below).
static void scale_channels_portable(const float *x, const float *s, float *y, size_t p0, size_t p1, size_t hw, size_t c) { scale_channels_body(x, s, y, p0, p1, hw, c); }
static void channel_means_portable(const float *x, float *y, size_t i0, size_t i1, size_t hw, size_t c) { channel_means_body(x, y, i0, i1, hw, c); }
static void softmax_rows_portable(const float *x, float *y, size_t rows, size_t n) { softmax_rows_body(x, y, rows, n); }
static void add_row_portable(const float *x, const float *m, float *y, size_t n) { add_row_body(x, m, y, n); }
static void layer_norm_rows_portable(const float *x, float *y, size_t rows, size_t n, const float *w, const float *b, float eps, float *mo, float *io) {
    layer_norm_rows_body(x, y, rows, n, w, b, eps, mo, io);
}
#ifdef WCONV_X86
__attribute__((target("avx2,fma"))) static void scale_channels_avx2(const float *x, const float *s, float *y, size_t p0, size_t p1, size_t hw, size_t c) { scale_channels_body(x, s, y, p0, p1, hw, c); }
__attribute__((target("avx2,fma"))) static void channel_means_avx2(const float *x, float *y, size_t i0, size_t i1, size_t hw, size_t c) { channel_means_body(x, y, i0, i1, hw, c); }
__attribute__((target("avx2,fma"))) static void softmax_rows_avx2(const float *x, float *y, size_t rows, size_t n) { softmax_rows_body(x, y, rows, n); }
__attribute__((target("avx2,fma"))) static void add_row_avx2(const float *x, const float *m, float *y, size_t n) { add_row_body(x, m, y, n); }
__attribute__((target("avx512f"))) static void add_row_avx512(const float *x, const float *m, float *y, size_t n) { add_row_body(x, m, y, n); }
__attribute__((target("avx2,fma"))) static void layer_norm_rows_avx2(const float *x, float *y, size_t rows, size_t n, const float *w, const float *b, float eps, float *mo, float *io) {
    layer_norm_rows_body(x, y, rows, n, w, b, eps, mo, io);
}
#endif

#ifdef WCONV_X86
/// Lanes of a 16-float step with `left` values still to go (all 16, or the tail's).
static inline __mmask16 tail16(size_t left) { return left >= 16 ? 0xffff : (__mmask16)((1u << left) - 1); }

// AVX-512: 2^n by vscalefps, which saturates to +∞ itself (no upper clamp; +∞ gives +∞ and NaN
// NaN, so σ(−∞) needs no special case: −∞ / ∞ is NaN). Below EXP_LO, where e^x is no longer a normal
// float, the result is 0 (softmax's −∞ entries get exactly 0): a denormal result costs a microcode
// assist, and each later operation on it another (SiLU of inputs ≥ 88: 6 against 0.45 ns a value
// here), for a value that only ever meets 1 + e^x or a product. Masked loads and stores for the tail.
__attribute__((target("avx512f")))
static inline __m512 exp512(__m512 x) {
    __mmask16 normal = _mm512_cmp_ps_mask(x, _mm512_set1_ps(EXP_LO), _CMP_NLT_UQ);  // NaN lanes kept
    __m512 v = _mm512_max_ps(_mm512_set1_ps(EXP_LO), x);  // NaN x stays NaN (max returns its second operand)
    __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(v, _mm512_set1_ps(LOG2E)), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(LN2_HI), v);
    r = _mm512_fnmadd_ps(n, _mm512_set1_ps(LN2_LO), r);
    __m512 p = _mm512_set1_ps(P0);
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(P1));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(P2));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(P3));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(P4));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(P5));
    __m512 e = _mm512_fmadd_ps(p, _mm512_mul_ps(r, r), _mm512_add_ps(r, _mm512_set1_ps(1.0f)));
    return _mm512_maskz_scalef_ps(normal, e, n);
}

/// σ(v) = 1 / (1 + e^{−v}).
__attribute__((target("avx512f")))
static inline __m512 sigmoid512(__m512 v) {
    const __m512 one = _mm512_set1_ps(1.0f);
    return _mm512_div_ps(one, _mm512_add_ps(one, exp512(_mm512_sub_ps(_mm512_setzero_ps(), v))));
}

/// v · σ(v), as v / (1 + e^{−v}) (one division).
__attribute__((target("avx512f")))
static inline __m512 silu512(__m512 v) {
    return _mm512_div_ps(v, _mm512_add_ps(_mm512_set1_ps(1.0f), exp512(_mm512_sub_ps(_mm512_setzero_ps(), v))));
}

__attribute__((target("avx512f")))
static void silu_avx512(const float *x, float *y, size_t n) {
    for (size_t i = 0; i < n; i += 16) {
        __mmask16 m = tail16(n - i);
        _mm512_mask_storeu_ps(y + i, m, silu512(_mm512_maskz_loadu_ps(m, x + i)));
    }
}

__attribute__((target("avx512f")))
static void silu_grad_avx512(const float *x, const float *dy, float *dx, size_t n, int accumulate) {
    const __m512 one = _mm512_set1_ps(1.0f);
    for (size_t i = 0; i < n; i += 16) {
        __mmask16 m = tail16(n - i);
        __m512 v = _mm512_maskz_loadu_ps(m, x + i), g = _mm512_maskz_loadu_ps(m, dy + i);
        __m512 s = sigmoid512(v);
        // dy·s·(1 + v·(1 − s)); σ(−∞) is NaN here (e^{−(−∞)} is NaN by the reduction), as wanted.
        __m512 t = _mm512_fmadd_ps(v, _mm512_sub_ps(one, s), one);
        g = _mm512_mul_ps(_mm512_mul_ps(g, s), t);
        if (accumulate) g = _mm512_add_ps(_mm512_maskz_loadu_ps(m, dx + i), g);
        _mm512_mask_storeu_ps(dx + i, m, g);
    }
}

__attribute__((target("avx512f")))
static void scale_channels_avx512(const float *x, const float *s, float *y, size_t p0, size_t p1, size_t hw, size_t c) {
    for (size_t p = p0; p < p1; p++) {
        const float *src = x + p * c, *sc = s + p / hw * c;
        float *dst = y + p * c;
        for (size_t k = 0; k < c; k += 16) {
            __mmask16 m = tail16(c - k);
            _mm512_mask_storeu_ps(dst + k, m, _mm512_mul_ps(_mm512_maskz_loadu_ps(m, src + k), _mm512_maskz_loadu_ps(m, sc + k)));
        }
    }
}

// Channel blocks of 64 (four accumulators) walk the image's pixels; sums in f32 like the
// portable loop (PyTorch's mean over a 112×112 map is f32 too).
__attribute__((target("avx512f")))
static void channel_means_avx512(const float *x, float *y, size_t i0, size_t i1, size_t hw, size_t c) {
    const __m512 inv = _mm512_set1_ps(1.0f / (float)hw);
    for (size_t i = i0; i < i1; i++) {
        const float *img = x + i * hw * c;
        for (size_t k = 0; k < c; k += 64) {
            __mmask16 m[4];
            for (int j = 0; j < 4; j++) {
                size_t at = k + 16 * (size_t)j;
                m[j] = at >= c ? 0 : tail16(c - at);
            }
            __m512 a0 = _mm512_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
            for (size_t p = 0; p < hw; p++) {
                const float *src = img + p * c + k;
                a0 = _mm512_add_ps(a0, _mm512_maskz_loadu_ps(m[0], src));
                a1 = _mm512_add_ps(a1, _mm512_maskz_loadu_ps(m[1], src + 16));
                a2 = _mm512_add_ps(a2, _mm512_maskz_loadu_ps(m[2], src + 32));
                a3 = _mm512_add_ps(a3, _mm512_maskz_loadu_ps(m[3], src + 48));
            }
            float *dst = y + i * c + k;
            _mm512_mask_storeu_ps(dst, m[0], _mm512_mul_ps(a0, inv));
            _mm512_mask_storeu_ps(dst + 16, m[1], _mm512_mul_ps(a1, inv));
            _mm512_mask_storeu_ps(dst + 32, m[2], _mm512_mul_ps(a2, inv));
            _mm512_mask_storeu_ps(dst + 48, m[3], _mm512_mul_ps(a3, inv));
        }
    }
}

__attribute__((target("avx512f")))
static void silu_channel_sums_avx512(float *y, float *sums, size_t p0, size_t p1, size_t c) {
    for (size_t p = p0; p < p1; p++) {
        float *px = y + p * c;
        for (size_t k = 0; k < c; k += 16) {
            __mmask16 m = tail16(c - k);
            __m512 v = silu512(_mm512_maskz_loadu_ps(m, px + k));
            _mm512_mask_storeu_ps(px + k, m, v);
            _mm512_mask_storeu_ps(sums + k, m, _mm512_add_ps(_mm512_maskz_loadu_ps(m, sums + k), v));
        }
    }
}

__attribute__((target("avx512f")))
static inline __m512 erf512(__m512 u, __m512 e) {
    const __m512 one = _mm512_set1_ps(1.0f);
    __m512 a = _mm512_abs_ps(u);
    __m512 t = _mm512_div_ps(one, _mm512_fmadd_ps(_mm512_set1_ps(AS_P), a, one));
    __m512 r = _mm512_fmadd_ps(_mm512_set1_ps(AS_A5), t, _mm512_set1_ps(AS_A4));
    r = _mm512_fmadd_ps(r, t, _mm512_set1_ps(AS_A3));
    r = _mm512_fmadd_ps(r, t, _mm512_set1_ps(AS_A2));
    r = _mm512_fmadd_ps(r, t, _mm512_set1_ps(AS_A1));
    __m512 v = _mm512_fnmadd_ps(_mm512_mul_ps(r, t), e, one);
    // sign of u onto v
    return _mm512_castsi512_ps(_mm512_or_si512(_mm512_castps_si512(v),
                               _mm512_and_si512(_mm512_castps_si512(u), _mm512_set1_epi32((int)0x80000000u))));
}

__attribute__((target("avx512f")))
static void gelu_avx512(const float *x, float *y, size_t n) {
    const __m512 half = _mm512_set1_ps(0.5f), one = _mm512_set1_ps(1.0f), k = _mm512_set1_ps(INV_SQRT2);
    for (size_t i = 0; i < n; i += 16) {
        __mmask16 m = tail16(n - i);
        __m512 v = _mm512_maskz_loadu_ps(m, x + i), u = _mm512_mul_ps(v, k);
        __m512 e = exp512(_mm512_sub_ps(_mm512_setzero_ps(), _mm512_mul_ps(u, u)));
        _mm512_mask_storeu_ps(y + i, m, _mm512_mul_ps(_mm512_mul_ps(half, v), _mm512_add_ps(one, erf512(u, e))));
    }
}

__attribute__((target("avx512f")))
static void gelu_grad_avx512(const float *x, const float *dy, float *dx, size_t n) {
    const __m512 half = _mm512_set1_ps(0.5f), one = _mm512_set1_ps(1.0f), k = _mm512_set1_ps(INV_SQRT2), c = _mm512_set1_ps(INV_SQRT_2PI);
    for (size_t i = 0; i < n; i += 16) {
        __mmask16 m = tail16(n - i);
        __m512 v = _mm512_maskz_loadu_ps(m, x + i), u = _mm512_mul_ps(v, k);
        __m512 e = exp512(_mm512_sub_ps(_mm512_setzero_ps(), _mm512_mul_ps(u, u)));
        __m512 cdf = _mm512_mul_ps(half, _mm512_add_ps(one, erf512(u, e)));
        __m512 g = _mm512_mul_ps(_mm512_maskz_loadu_ps(m, dy + i), _mm512_fmadd_ps(_mm512_mul_ps(v, e), c, cdf));
        _mm512_mask_storeu_ps(dx + i, m, _mm512_add_ps(_mm512_maskz_loadu_ps(m, dx + i), g));
    }
}

__attribute__((target("avx512f")))
static void softmax_rows_avx512(const float *x, float *y, size_t rows, size_t n) {
    for (size_t r = 0; r < rows; r++) {
        const float *px = x + r * n;
        float *py = y + r * n;
        __m512 mx = _mm512_set1_ps(-INFINITY), sum = _mm512_setzero_ps();
        for (size_t i = 0; i < n; i += 16) {
            __mmask16 m = tail16(n - i);
            mx = _mm512_mask_max_ps(mx, m, mx, _mm512_maskz_loadu_ps(m, px + i));
        }
        // A NaN entry makes its exp, the sum and so the whole row NaN, whatever the max became.
        __m512 top = _mm512_set1_ps(_mm512_reduce_max_ps(mx));
        for (size_t i = 0; i < n; i += 16) {
            __mmask16 m = tail16(n - i);
            __m512 e = exp512(_mm512_sub_ps(_mm512_maskz_loadu_ps(m, px + i), top));
            e = _mm512_maskz_mov_ps(m, e);
            _mm512_mask_storeu_ps(py + i, m, e);
            sum = _mm512_add_ps(sum, e);
        }
        __m512 inv = _mm512_set1_ps(1.0f / _mm512_reduce_add_ps(sum));
        for (size_t i = 0; i < n; i += 16) {
            __mmask16 m = tail16(n - i);
            _mm512_mask_storeu_ps(py + i, m, _mm512_mul_ps(_mm512_maskz_loadu_ps(m, py + i), inv));
        }
    }
}

// Sums in double, 8 lanes per half of each 16-float load (the same terms as the portable loop,
// added in another order: the totals agree to double rounding).
__attribute__((target("avx512f")))
static void layer_norm_rows_avx512(const float *x, float *y, size_t rows, size_t n, const float *w, const float *b, float eps,
                                   float *mo, float *io) {
    for (size_t r = 0; r < rows; r++) {
        const float *p = x + r * n;
        float *q = y + r * n;
        __m512d s0 = _mm512_setzero_pd(), s1 = _mm512_setzero_pd();
        for (size_t i = 0; i < n; i += 16) {
            __mmask16 m = tail16(n - i);
            __m512 v = _mm512_maskz_loadu_ps(m, p + i);
            s0 = _mm512_add_pd(s0, _mm512_cvtps_pd(_mm512_castps512_ps256(v)));
            s1 = _mm512_add_pd(s1, _mm512_cvtps_pd(_mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(v), 1))));
        }
        double mean = _mm512_reduce_add_pd(_mm512_add_pd(s0, s1)) / (double)n;
        __m512d mv = _mm512_set1_pd(mean);
        s0 = _mm512_setzero_pd(); s1 = _mm512_setzero_pd();
        for (size_t i = 0; i < n; i += 16) {
            size_t left = n - i;
            __mmask8 m0 = left >= 8 ? 0xff : (__mmask8)((1u << left) - 1);
            __mmask8 m1 = left >= 16 ? 0xff : left > 8 ? (__mmask8)((1u << (left - 8)) - 1) : 0;
            __mmask16 m = tail16(left);
            __m512 v = _mm512_maskz_loadu_ps(m, p + i);
            __m512d d0 = _mm512_maskz_sub_pd(m0, _mm512_cvtps_pd(_mm512_castps512_ps256(v)), mv);
            __m512d d1 = _mm512_maskz_sub_pd(m1, _mm512_cvtps_pd(_mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(v), 1))), mv);
            s0 = _mm512_fmadd_pd(d0, d0, s0);
            s1 = _mm512_fmadd_pd(d1, d1, s1);
        }
        double sq = _mm512_reduce_add_pd(_mm512_add_pd(s0, s1));
        float inv = (float)(1.0 / sqrt(sq / (double)n + (double)eps)), mf = (float)mean;
        if (mo) mo[r] = mf;
        if (io) io[r] = inv;
        __m512 mfv = _mm512_set1_ps(mf), iv = _mm512_set1_ps(inv);
        for (size_t i = 0; i < n; i += 16) {
            __mmask16 m = tail16(n - i);
            __m512 v = _mm512_mul_ps(_mm512_sub_ps(_mm512_maskz_loadu_ps(m, p + i), mfv), iv);
            if (w) v = _mm512_mul_ps(v, _mm512_maskz_loadu_ps(m, w + i));
            if (b) v = _mm512_add_ps(v, _mm512_maskz_loadu_ps(m, b + i));
            _mm512_mask_storeu_ps(q + i, m, v);
        }
    }
}

#endif

// 0 portable, 1 AVX2+FMA, 2 AVX-512F; -1 not yet decided. Deciding twice is harmless (same answer).
static int isa_level = -1;

static int cpu_level(void) {
    int level = 0;
#ifdef WCONV_X86
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) level = 1;
    if (level == 1 && __builtin_cpu_supports("avx512f")) level = 2;
#endif
    return level;
}

static int level_named(const char *name) {
    return strcmp(name, "avx512") == 0 ? 2 : strcmp(name, "avx2") == 0 ? 1 : strcmp(name, "portable") == 0 ? 0 : -1;
}

static int decide_isa(void) {
    int level = cpu_level();
    const char *cap = getenv("WCONV_VECTOR_ISA");
    int capped = cap ? level_named(cap) : -1;
    return capped >= 0 && capped < level ? capped : level;
}

static inline int isa(void) {
    int level = __atomic_load_n(&isa_level, __ATOMIC_RELAXED);
    if (level < 0) {
        level = decide_isa();
        __atomic_store_n(&isa_level, level, __ATOMIC_RELAXED);
    }
    return level;
}

int wconv_vector_level(void) { return isa(); }

int wconv_vector_use(const char *name) {
    int want = level_named(name);
    if (want < 0 || want > cpu_level()) return 0;
    __atomic_store_n(&isa_level, want, __ATOMIC_RELAXED);
    return 1;
}

const char *wconv_vector_isa(void) {
    switch (isa()) {
    case 2: return "avx512";
    case 1: return "avx2";
    default: return "portable";
    }
}

void wconv_silu(const float *x, float *y, size_t n) {
#ifdef WCONV_X86
    switch (isa()) {
    case 2: silu_avx512(x, y, n); return;
    case 1: silu_avx2(x, y, n); return;
    }
#endif
    silu_portable(x, y, n);
}

void wconv_silu_grad(const float *x, const float *dy, float *dx, size_t n, int accumulate) {
#ifdef WCONV_X86
    switch (isa()) {
    case 2: silu_grad_avx512(x, dy, dx, n, accumulate); return;
    case 1: silu_grad_avx2(x, dy, dx, n, accumulate); return;
    }
#endif
    silu_grad_portable(x, dy, dx, n, accumulate);
}

void wconv_scale_channels(const float *x, const float *s, float *y, size_t p0, size_t p1, size_t hw, size_t c) {
#ifdef WCONV_X86
    switch (isa()) {
    case 2: scale_channels_avx512(x, s, y, p0, p1, hw, c); return;
    case 1: scale_channels_avx2(x, s, y, p0, p1, hw, c); return;
    }
#endif
    scale_channels_portable(x, s, y, p0, p1, hw, c);
}

void wconv_channel_means(const float *x, float *y, size_t i0, size_t i1, size_t hw, size_t c) {
#ifdef WCONV_X86
    switch (isa()) {
    case 2: channel_means_avx512(x, y, i0, i1, hw, c); return;
    case 1: channel_means_avx2(x, y, i0, i1, hw, c); return;
    }
#endif
    channel_means_portable(x, y, i0, i1, hw, c);
}

void wconv_silu_channel_sums(float *y, float *sums, size_t p0, size_t p1, size_t c) {
#ifdef WCONV_X86
    switch (isa()) {
    case 2: silu_channel_sums_avx512(y, sums, p0, p1, c); return;
    case 1: silu_channel_sums_with(silu_avx2, y, sums, p0, p1, c); return;
    }
#endif
    silu_channel_sums_with(silu_portable, y, sums, p0, p1, c);
}

void wconv_gelu(const float *x, float *y, size_t n) {
#ifdef WCONV_X86
    switch (isa()) {
    case 2: gelu_avx512(x, y, n); return;
    case 1: gelu_avx2(x, y, n); return;
    }
#endif
    gelu_portable(x, y, n);
}

void wconv_gelu_grad(const float *x, const float *dy, float *dx, size_t n) {
#ifdef WCONV_X86
    switch (isa()) {
    case 2: gelu_grad_avx512(x, dy, dx, n); return;
    case 1: gelu_grad_avx2(x, dy, dx, n); return;
    }
#endif
    gelu_grad_portable(x, dy, dx, n);
}

void wconv_softmax_rows(const float *x, float *y, size_t rows, size_t n) {
#ifdef WCONV_X86
    switch (isa()) {
    case 2: softmax_rows_avx512(x, y, rows, n); return;
    case 1: softmax_rows_avx2(x, y, rows, n); return;
    }
#endif
    softmax_rows_portable(x, y, rows, n);
}

void wconv_softmax_rows_masked(const float *x, const float *mask, size_t mask_row_stride, float *y, size_t rows, size_t n) {
    for (size_t r = 0; r < rows; r++) {
        const float *px = x + r * n, *pm = mask + r * mask_row_stride;
        float *py = y + r * n;
#ifdef WCONV_X86
        switch (isa()) {
        case 2: add_row_avx512(px, pm, py, n); break;
        case 1: add_row_avx2(px, pm, py, n); break;
        default: add_row_portable(px, pm, py, n);
        }
#else
        add_row_portable(px, pm, py, n);
#endif
        wconv_softmax_rows(py, py, 1, n);  // the row is in L1 now: a second pass costs little
    }
}

void wconv_layer_norm_rows(const float *x, float *y, size_t rows, size_t n, const float *w, const float *b, float epsilon,
                           float *mean_out, float *inv_std_out) {
#ifdef WCONV_X86
    switch (isa()) {
    case 2: layer_norm_rows_avx512(x, y, rows, n, w, b, epsilon, mean_out, inv_std_out); return;
    case 1: layer_norm_rows_avx2(x, y, rows, n, w, b, epsilon, mean_out, inv_std_out); return;
    }
#endif
    layer_norm_rows_portable(x, y, rows, n, w, b, epsilon, mean_out, inv_std_out);
}
