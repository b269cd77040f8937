#ifndef WCONV_VECTOR_H
#define WCONV_VECTOR_H
// Pointwise kernels in C with per-function ISA targets (wconv_vector.c): Swift compiles for the
// baseline x86-64 (SSE2) and cannot target AVX-512 or AVX2 per function, so its loops run 4 lanes
// wide where the CPU has 16. Each kernel picks AVX-512, AVX2+FMA or portable code from CPUID once.
#include <stddef.h>

/// y = x·σ(x) over n floats (x and y may be the same buffer); −∞ gives NaN, as in PyTorch.
/// Relative error ≤ 3e-7 against float64.
void wconv_silu(const float *x, float *y, size_t n);

/// SiLU's gradient dy·σ(x)·(1 + x·(1 − σ(x))) into dx, or added to dx when `accumulate` is non-zero.
/// dx may be dy.
void wconv_silu_grad(const float *x, const float *dy, float *dx, size_t n, int accumulate);

/// GELU, y = x·Φ(x) (PyTorch's approximate='none'); erf by Abramowitz–Stegun 7.1.26 (absolute error
/// ≤ 1.5e-7, the formula PyTorch's own vectorised GELU uses). x and y may be the same buffer.
void wconv_gelu(const float *x, float *y, size_t n);

/// GELU's gradient dy·(Φ(x) + x·φ(x)) added to dx (dx may be dy only when the caller zeroed nothing else).
void wconv_gelu_grad(const float *x, const float *dy, float *dx, size_t n);

/// tanh over n floats (y may be x): Eigen's rational approximation below |x| = 0.625 (x itself for
/// |x| < 4e-4), 1 − 2/(e^{2|x|} + 1) above; relative error ≤ 5e-7 against float64; NaN stays NaN.
void wconv_tanh(const float *x, float *y, size_t n);

/// σ(x) = 1 / (1 + e^{−x}) over n floats (y may be x); exactly 0 below −88.3, NaN stays NaN.
void wconv_sigmoid(const float *x, float *y, size_t n);

/// GELU's tanh form, 0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³))) (PyTorch's approximate='tanh').
void wconv_gelu_tanh(const float *x, float *y, size_t n);

/// The gradients of the three, dy·f′(x), added to dx.
void wconv_tanh_grad(const float *x, const float *dy, float *dx, size_t n);
void wconv_sigmoid_grad(const float *x, const float *dy, float *dx, size_t n);
void wconv_gelu_tanh_grad(const float *x, const float *dy, float *dx, size_t n);

/// Softmax of each of `rows` contiguous rows of n values, y may be x. A −∞ entry gets exactly 0; a row
/// with no finite maximum gives NaN (as PyTorch). exp's relative error ≤ 2e-7.
void wconv_softmax_rows(const float *x, float *y, size_t rows, size_t n);

/// softmax(x + mask) of each row, mask row r at mask + r·mask_row_stride (0: one row for all), y may
/// be x: attention scores with an additive padding or causal mask, in one call per head.
void wconv_softmax_rows_masked(const float *x, const float *mask, size_t mask_row_stride, float *y, size_t rows, size_t n);

/// Layer norm of `rows` contiguous rows of n values: mean and variance summed in double (two passes),
/// y = (x − mean)·invStd·w + b in float (w, b may be NULL); mean and invStd per row into `mean_out`,
/// `inv_std_out` when not NULL. y may be x.
void wconv_layer_norm_rows(const float *x, float *y, size_t rows, size_t n, const float *w, const float *b, float epsilon,
                           float *mean_out, float *inv_std_out);

/// NHWC per-image channel scaling: y[p·c + k] = x[p·c + k] · s[(p / hw)·c + k] for the pixels
/// p in [p0, p1) (images of hw pixels, c channels). y may be x.
void wconv_scale_channels(const float *x, const float *s, float *y, size_t p0, size_t p1, size_t hw, size_t c);

/// NHWC channel means of the images [i0, i1): y[i·c + k] = mean over the image's hw pixels of
/// x[(i·hw + p)·c + k].
void wconv_channel_means(const float *x, float *y, size_t i0, size_t i1, size_t hw, size_t c);

/// SiLU in place over the NHWC pixels [p0, p1) of c channels, adding each channel's SiLU outputs
/// into sums[0..c) (one pass for a conv's activation and the global pool reading it).
void wconv_silu_channel_sums(float *y, float *sums, size_t p0, size_t p1, size_t c);

/// The code path the kernels run: "avx512", "avx2" or "portable". WCONV_VECTOR_ISA=avx2 or
/// =portable holds them below the CPU's best (tests of other CPUs).
const char *wconv_vector_isa(void);

/// Runs the kernels on `name`'s path ("avx512", "avx2", "portable") from now on, for tests of each
/// path on one machine; returns 0 (and changes nothing) when the CPU lacks it or the name is unknown.
int wconv_vector_use(const char *name);

/// Geometry of a Winograd F(4×4, 3×3) convolution (3×3, stride 1, no dilation or groups) on NHWC
/// buffers: n images of h×w×c in, ho×wo×o out, padding pt (top) and pl (left); the output is cut
/// into tiles_h × tiles_w tiles of 4×4 (tiles_h = ⌈ho/4⌉, tiles_w = ⌈wo/4⌉), T = n·tiles_h·tiles_w.
/// The transformed buffers hold the chunk of tiles [chunk_start, chunk_start + chunk_tiles).
typedef struct {
    size_t n, h, w, c, o, ho, wo, pt, pl, tiles_h, tiles_w;
    size_t chunk_start, chunk_tiles;
} wconv_wino_geom;

/// Input transform of the tiles [t0, t1) (inside the chunk): v[ξ][t − chunk_start][k] = (Bᵀ d B)[ξ]
/// of tile t's 6×6 input window, channel k (zero outside the image); v holds 36 × chunk_tiles × c floats.
void wconv_wino43_input(const float *x, float *v, size_t t0, size_t t1, const wconv_wino_geom *g);

/// Weight transform of the input channels [c0, c1): u[ξ][k][j] = (G w[j][k] Gᵀ)[ξ] for OIHW 3×3
/// weights w of o outputs and c inputs; u holds 36 × c × o floats. With `flipped`, w is the forward
/// convolution's weights (c outputs × o inputs) and the transform is of its input gradient's
/// convolution: w'[j][k] = w[k][j] rotated by 180°.
void wconv_wino43_weights(const float *w, float *u, size_t c0, size_t c1, size_t o, size_t c, int flipped);

/// Output transform of the tiles [t0, t1) (inside the chunk): y = Aᵀ m A + bias (+ residual), then
/// max(0, ·) when `relu`, for the output pixels inside ho × wo; m holds 36 × chunk_tiles × o floats
/// (the 36 GEMMs' products).
/// bias and residual may be NULL; residual (NHWC like y) may be y itself.
void wconv_wino43_output(const float *m, float *y, const float *bias, const float *residual, int relu,
                         size_t t0, size_t t1, const wconv_wino_geom *g);

/// Output-gradient transform of the tiles [t0, t1) (inside the chunk), for the weight gradient:
/// w[ξ][t − chunk_start][k] = (A dY Aᵀ)[ξ] of tile t's 4×4 window of dy (NHWC, o channels, zero
/// outside ho × wo); w holds 36 × chunk_tiles × o floats.
void wconv_wino43_dy(const float *dy, float *w, size_t t0, size_t t1, const wconv_wino_geom *g);

/// Weight gradient of the input channels [c0, c1) from m[ξ][k][j] = Σ_tiles v[ξ][·][k]·w[ξ][·][j]
/// (36 × c × o floats): dw[j][k] = Gᵀ m[·][k][j] G, OIHW 3×3, written or added (`accumulate`).
void wconv_wino43_weight_grad(const float *m, float *dw, size_t c0, size_t c1, size_t o, size_t c, int accumulate);

#endif
