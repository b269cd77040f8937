// Winograd F(4×4, 3×3) transforms for 3×3 stride-1 convolutions on NHWC buffers (Lavin & Gray,
// "Fast Algorithms for Convolutional Neural Networks", 2016): Y = Aᵀ[(G g Gᵀ) ⊙ (Bᵀ d B)]A per 6×6
// input tile and channel; the 36 element-wise products summed over channels are 36 GEMMs. The weight
// gradient is that bilinear form transposed, dg = Gᵀ[Σ_tiles (A dY Aᵀ) ⊙ (Bᵀ d B)]G, the sums over
// tiles again 36 GEMMs. The caller runs the GEMMs (oneDNN's sgemm); these loops only move tiles in
// and out, vectorised across channels (the contiguous NHWC dimension) in blocks of 16.
// Why ours: oneDNN 2.6.3 (Debian 12) has Winograd kernels for AVX-512 only, so on AVX2 CPUs every 3×3
// convolution ran direct, at ≈ 91 % of the AVX2 FMA roof yet 2.25–4× more multiplies than needed.
#include "wconv_vector.h"
#include "isa_level.h"
#include "vector_math.h"
#include <string.h>

#define CB 16

static inline __attribute__((always_inline)) void tile_of(const wconv_wino_geom *g, size_t t, size_t *n, size_t *ty, size_t *tx) {
    size_t per = g->tiles_h * g->tiles_w, r = t % per;
    *n = t / per; *ty = r / g->tiles_w; *tx = r % g->tiles_w;
}

// 16 channels as one value: written with vector types (not loops over arrays the compiler must
// scalar-replace) because SwiftPM builds C at -O2, where clang left the loop form of the output
// transform in memory: 42 ms for ResNet's 64-channel 56×56 layer at batch 16, against 5 ms at -O3.
typedef float vf __attribute__((vector_size(CB * sizeof(float)), aligned(4)));
typedef int vi __attribute__((vector_size(CB * sizeof(int)), aligned(4)));

static inline __attribute__((always_inline)) vf load_vf(const float *p) { vf v; memcpy(&v, p, sizeof v); return v; }
static inline __attribute__((always_inline)) void store_vf(float *p, vf v) { memcpy(p, &v, sizeof v); }
static inline __attribute__((always_inline)) vf load_part(const float *p, size_t n) {
    float t[CB] = {0};
    memcpy(t, p, n * sizeof(float));
    return load_vf(t);
}
static inline __attribute__((always_inline)) void store_part(float *p, vf v, size_t n) {
    float t[CB];
    store_vf(t, v);
    memcpy(p, t, n * sizeof(float));
}

// A block of n ≤ 16 channels: whole vectors where n is 16, through a buffer at a block's tail.
static inline __attribute__((always_inline)) vf load_n(const float *p, size_t n) { return n == CB ? load_vf(p) : load_part(p, n); }
static inline __attribute__((always_inline)) void store_n(float *p, vf v, size_t n) { if (n == CB) store_vf(p, v); else store_part(p, v, n); }

// Bᵀ d for one column of six values.
#define BT_ROWS(d0, d1, d2, d3, d4, d5, o0, o1, o2, o3, o4, o5) do { \
    vf a_ = d4 - 4.0f * d2, b_ = d3 - 4.0f * d1, c_ = d4 - d2, e_ = 2.0f * (d3 - d1); \
    o0 = 4.0f * d0 - 5.0f * d2 + d4; o1 = a_ + b_; o2 = a_ - b_; o3 = c_ + e_; o4 = c_ - e_; o5 = 4.0f * d1 - 5.0f * d3 + d5; } while (0)

// Aᵀ m for six values into four.
#define AT_ROWS(m0, m1, m2, m3, m4, m5, o0, o1, o2, o3) do { \
    vf a12 = m1 + m2, s12 = m1 - m2, a34 = m3 + m4, s34 = m3 - m4; \
    o0 = m0 + a12 + a34; o1 = s12 + 2.0f * s34; o2 = a12 + 4.0f * a34; o3 = s12 + 8.0f * s34 + m5; } while (0)

// One block of cb channels (from c0) of the size × size window at (y0, x0) of image n of an NHWC map
// (h × w, c channels) into d[i·size + j], zero outside the map.
static inline __attribute__((always_inline)) void load_window(vf *d, int size, const float *map, size_t n, long y0, long x0,
                                                              size_t h, size_t w, size_t c, size_t c0, size_t cb) {
    const vf zero = {0};
    for (int i = 0; i < size; i++) {
        const long yy = y0 + i;
        for (int j = 0; j < size; j++) {
            const long xx = x0 + j;
            d[i * size + j] = yy >= 0 && yy < (long)h && xx >= 0 && xx < (long)w
                ? load_n(map + ((n * h + (size_t)yy) * w + (size_t)xx) * c + c0, cb) : zero;
        }
    }
}

static inline __attribute__((always_inline)) void input_body(const float *x, float *v, size_t t0, size_t t1, const wconv_wino_geom *g) {
    const size_t c = g->c, tiles = g->chunk_tiles, base = g->chunk_start;
    for (size_t t = t0; t < t1; t++) {
        size_t n, ty, tx;
        tile_of(g, t, &n, &ty, &tx);
        const long y0 = (long)(ty * 4) - (long)g->pt, x0 = (long)(tx * 4) - (long)g->pl;
        for (size_t c0 = 0; c0 < c; c0 += CB) {
            const size_t cb = c - c0 < CB ? c - c0 : CB;
            vf d[6][6], u[6][6];
            load_window(&d[0][0], 6, x, n, y0, x0, g->h, g->w, c, c0, cb);
            for (int j = 0; j < 6; j++)
                BT_ROWS(d[0][j], d[1][j], d[2][j], d[3][j], d[4][j], d[5][j], u[0][j], u[1][j], u[2][j], u[3][j], u[4][j], u[5][j]);
            for (int i = 0; i < 6; i++) {
                vf r[6];
                BT_ROWS(u[i][0], u[i][1], u[i][2], u[i][3], u[i][4], u[i][5], r[0], r[1], r[2], r[3], r[4], r[5]);
                for (int j = 0; j < 6; j++) {
                    float *q = v + ((size_t)(i * 6 + j) * tiles + t - base) * c + c0;
                    store_n(q, r[j], cb);
                }
            }
        }
    }
}

static inline __attribute__((always_inline)) void output_body(const float *m, float *y, const float *bias, const float *residual, int relu,
                                                              size_t t0, size_t t1, const wconv_wino_geom *g) {
    const size_t o = g->o, tiles = g->chunk_tiles, base = g->chunk_start;
    const vf zero = {0};
    for (size_t t = t0; t < t1; t++) {
        size_t n, ty, tx;
        tile_of(g, t, &n, &ty, &tx);
        for (size_t o0 = 0; o0 < o; o0 += CB) {
            const size_t ob = o - o0 < CB ? o - o0 : CB;
            vf s[6][6], u[4][6];
            for (int i = 0; i < 36; i++) {
                const float *p = m + ((size_t)i * tiles + t - base) * o + o0;
                s[i / 6][i % 6] = load_n(p, ob);
            }
            const vf b = bias ? load_n(bias + o0, ob) : zero;
            for (int j = 0; j < 6; j++)
                AT_ROWS(s[0][j], s[1][j], s[2][j], s[3][j], s[4][j], s[5][j], u[0][j], u[1][j], u[2][j], u[3][j]);
            for (int i = 0; i < 4; i++) {
                const size_t yy = ty * 4 + (size_t)i;
                if (yy >= g->ho) break;
                vf r[4];
                AT_ROWS(u[i][0], u[i][1], u[i][2], u[i][3], u[i][4], u[i][5], r[0], r[1], r[2], r[3]);
                for (int j = 0; j < 4; j++) {
                    const size_t xx = tx * 4 + (size_t)j;
                    if (xx >= g->wo) break;
                    const size_t at = ((n * g->ho + yy) * g->wo + xx) * o + o0;
                    vf val = r[j] + b;
                    // The residual may be y itself: each element is read once, before it is written.
                    if (residual) val += load_n(residual + at, ob);
                    if (relu) val = (vf)((vi)val & ~(val < zero)); // NaN stays NaN, as in PyTorch
                    store_n(y + at, val, ob);
                }
            }
        }
    }
}

// U[ξ][c][o] = (G g Gᵀ)[ξ] for the weights OIHW, input channels [c0, c1); across output channels in
// blocks so each store is contiguous. In training this runs every call: vector types here too.
#define G_ROWS(g0, g1, g2, o0, o1, o2, o3, o4, o5) do { \
    vf s02 = g0 + g2; o0 = g0 * 0.25f; o1 = (s02 + g1) * (-1.0f / 6); o2 = (s02 - g1) * (-1.0f / 6); \
    vf q = g0 * (1.0f / 24) + g2 * (1.0f / 6); o3 = q + g1 * (1.0f / 12); o4 = q - g1 * (1.0f / 12); o5 = g2; } while (0)

static inline __attribute__((always_inline)) void weights_body(const float *w, float *u, size_t c0, size_t c1, size_t o, size_t c, int flipped) {
    for (size_t ci = c0; ci < c1; ci++) {
        for (size_t o0 = 0; o0 < o; o0 += CB) {
            const size_t ob = o - o0 < CB ? o - o0 : CB;
            vf gk[9], t[6][3];
            for (int e = 0; e < 9; e++) {
                float lane[CB] = {0};
                for (size_t k = 0; k < ob; k++)
                    lane[k] = flipped ? w[(ci * o + o0 + k) * 9 + 8 - (size_t)e] : w[((o0 + k) * c + ci) * 9 + (size_t)e];
                gk[e] = load_vf(lane);
            }
            for (int j = 0; j < 3; j++) G_ROWS(gk[j], gk[3 + j], gk[6 + j], t[0][j], t[1][j], t[2][j], t[3][j], t[4][j], t[5][j]);
            for (int i = 0; i < 6; i++) {
                vf r[6];
                G_ROWS(t[i][0], t[i][1], t[i][2], r[0], r[1], r[2], r[3], r[4], r[5]);
                for (int j = 0; j < 6; j++) {
                    float *q = u + ((size_t)(i * 6 + j) * c + ci) * o + o0;
                    store_n(q, r[j], ob);
                }
            }
        }
    }
}

// A q for four values into six (A = (Aᵀ)ᵀ, 6×4): the weight gradient's transform of output-gradient tiles.
#define A_ROWS(q0, q1, q2, q3, o0, o1, o2, o3, o4, o5) do { \
    vf a02 = q0 + q2, a13 = q1 + q3, b_ = q0 + 4.0f * q2, e_ = 2.0f * q1 + 8.0f * q3; \
    o0 = q0; o1 = a02 + a13; o2 = a02 - a13; o3 = b_ + e_; o4 = b_ - e_; o5 = q3; } while (0)

// Gᵀ s for six values into three (Gᵀ is 3×6): the weight gradient's inverse transform.
#define GT_ROWS(s0, s1, s2, s3, s4, s5, o0, o1, o2) do { \
    vf a12 = s1 + s2, a34 = s3 + s4; \
    o0 = s0 * 0.25f - a12 * (1.0f / 6) + a34 * (1.0f / 24); \
    o1 = (s2 - s1) * (1.0f / 6) + (s3 - s4) * (1.0f / 12); \
    o2 = (a34 - a12) * (1.0f / 6) + s5; } while (0)

// W[ξ][t − base][k] = (A dY Aᵀ)[ξ] of tile t's 4×4 output gradient (zero outside ho × wo).
static inline __attribute__((always_inline)) void dy_body(const float *dy, float *w, size_t t0, size_t t1, const wconv_wino_geom *g) {
    const size_t o = g->o, tiles = g->chunk_tiles, base = g->chunk_start;
    for (size_t t = t0; t < t1; t++) {
        size_t n, ty, tx;
        tile_of(g, t, &n, &ty, &tx);
        for (size_t o0 = 0; o0 < o; o0 += CB) {
            const size_t ob = o - o0 < CB ? o - o0 : CB;
            vf q[4][4], u[6][4], r[6];
            load_window(&q[0][0], 4, dy, n, (long)(ty * 4), (long)(tx * 4), g->ho, g->wo, o, o0, ob);
            for (int j = 0; j < 4; j++) A_ROWS(q[0][j], q[1][j], q[2][j], q[3][j], u[0][j], u[1][j], u[2][j], u[3][j], u[4][j], u[5][j]);
            for (int i = 0; i < 6; i++) {
                A_ROWS(u[i][0], u[i][1], u[i][2], u[i][3], r[0], r[1], r[2], r[3], r[4], r[5]);
                for (int j = 0; j < 6; j++) {
                    float *p = w + ((size_t)(i * 6 + j) * tiles + t - base) * o + o0;
                    store_n(p, r[j], ob);
                }
            }
        }
    }
}

// dW[j][k] (OIHW, input channels [c0, c1)) = Gᵀ M[·][k][j] G, written or added.
static inline __attribute__((always_inline)) void weight_grad_body(const float *m, float *dw, size_t c0, size_t c1, size_t o, size_t c, int accumulate) {
    for (size_t ci = c0; ci < c1; ci++) {
        for (size_t o0 = 0; o0 < o; o0 += CB) {
            const size_t ob = o - o0 < CB ? o - o0 : CB;
            vf s[6][6], t[3][6];
            for (int e = 0; e < 36; e++) {
                const float *p = m + ((size_t)e * c + ci) * o + o0;
                s[e / 6][e % 6] = load_n(p, ob);
            }
            for (int j = 0; j < 6; j++) GT_ROWS(s[0][j], s[1][j], s[2][j], s[3][j], s[4][j], s[5][j], t[0][j], t[1][j], t[2][j]);
            for (int a = 0; a < 3; a++) {
                vf r[3];
                GT_ROWS(t[a][0], t[a][1], t[a][2], t[a][3], t[a][4], t[a][5], r[0], r[1], r[2]);
                for (int b = 0; b < 3; b++) {
                    float lane[CB];
                    store_vf(lane, r[b]);
                    for (size_t k = 0; k < ob; k++) {
                        float *d = dw + ((o0 + k) * c + ci) * 9 + (size_t)(a * 3 + b);
                        *d = accumulate ? *d + lane[k] : lane[k];
                    }
                }
            }
        }
    }
}


KERNEL_BUILDS(input, (const float *x, float *v, size_t t0, size_t t1, const wconv_wino_geom *g), (x, v, t0, t1, g))
KERNEL_BUILDS(output, (const float *m, float *y, const float *b, const float *r, int relu, size_t t0, size_t t1, const wconv_wino_geom *g),
              (m, y, b, r, relu, t0, t1, g))
KERNEL_BUILDS(weights, (const float *w, float *u, size_t c0, size_t c1, size_t o, size_t c, int flipped), (w, u, c0, c1, o, c, flipped))
KERNEL_BUILDS(dy, (const float *dy, float *w, size_t t0, size_t t1, const wconv_wino_geom *g), (dy, w, t0, t1, g))
KERNEL_BUILDS(weight_grad, (const float *m, float *dw, size_t c0, size_t c1, size_t o, size_t c, int acc), (m, dw, c0, c1, o, c, acc))

void wconv_wino43_input(const float *x, float *v, size_t t0, size_t t1, const wconv_wino_geom *g) { DISPATCH(input, x, v, t0, t1, g); }

void wconv_wino43_output(const float *m, float *y, const float *bias, const float *residual, int relu, size_t t0, size_t t1, const wconv_wino_geom *g) {
    DISPATCH(output, m, y, bias, residual, relu, t0, t1, g);
}

void wconv_wino43_weights(const float *w, float *u, size_t c0, size_t c1, size_t o, size_t c, int flipped) {
    DISPATCH(weights, w, u, c0, c1, o, c, flipped);
}

void wconv_wino43_dy(const float *dy, float *w, size_t t0, size_t t1, const wconv_wino_geom *g) { DISPATCH(dy, dy, w, t0, t1, g); }

void wconv_wino43_weight_grad(const float *m, float *dw, size_t c0, size_t c1, size_t o, size_t c, int accumulate) {
    DISPATCH(weight_grad, m, dw, c0, c1, o, c, accumulate);
}
