// tanh, the logistic sigmoid and GELU's tanh form, forward and backward, vectorised per ISA like the
// other kernels (wconv_vector.h). They ran as scalar calls of libm's tanhf / expf in Swift loops:
// magika's GELU (tanh form, written out in ONNX) spent a fifth of its time in __expm1f and __tanhf.
// tanh near 0 is the rational approximation Eigen and TensorFlow use for float (odd degree-13
// numerator over an even degree-6 denominator; x itself below 4e-4), elsewhere from e^{2|x|}:
// branch-free, so it vectorises; within 5e-7 relative of float64 (ActivationVectorTests).
#include "wconv_vector.h"
#include "isa_level.h"
#include "vector_math.h"

static inline __attribute__((always_inline)) float tanh_rational(float x) {
    const float clamp = 7.90531110763549805f;
    float v = x > clamp ? clamp : x;  // NaN stays NaN through both comparisons
    v = v < -clamp ? -clamp : v;
    const float x2 = v * v;
    float p = -2.76076847742355e-16f;
    p = p * x2 + 2.00018790482477e-13f;
    p = p * x2 + -8.60467152213735e-11f;
    p = p * x2 + 5.12229709037114e-08f;
    p = p * x2 + 1.48572235717979e-05f;
    p = p * x2 + 6.37261928875436e-04f;
    p = p * x2 + 4.89352455891786e-03f;
    float q = 1.19825839466702e-06f;
    q = q * x2 + 1.18534705686654e-04f;
    q = q * x2 + 2.26843463243900e-03f;
    q = q * x2 + 4.89352518554385e-03f;
    return (x < 4e-4f && x > -4e-4f) ? x : v * p / q;
}

// tanh: the rational form below |x| = 0.625, above it ±(1 − 2 / (e^{2|x|} + 1)), whose error near ±1 is
// float's own spacing there (the rational form's tail was off by up to 2.7e-7 before it reaches ±1,
// which GELU's 0.5·x·(1 + t) multiplies by x). Both are computed and one selected, so it vectorises.
static inline __attribute__((always_inline)) float tanh_approx(float x) {
    const float a = x < 0 ? -x : x;
    float big = 1.0f - 2.0f / (exp_portable(2.0f * a) + 1.0f);
    big = x < 0 ? -big : big;
    return a < 0.625f ? tanh_rational(x) : big;  // NaN: a < 0.625 is false and big is NaN
}

// σ(v) = 1 / (1 + e^{−v}); 0 below −88.3 (no denormal), NaN stays NaN.
static inline __attribute__((always_inline)) float sigmoid_exp(float v) {
    return v < -EXP_HI ? 0.0f : 1.0f / (1.0f + exp_portable(-v));
}

#define GELU_K 0.79788456080286536f
#define GELU_C 0.044715f

static inline __attribute__((always_inline)) void tanh_body(const float *x, float *y, size_t n) {
    VECTORISE_IN_PLACE
    for (size_t i = 0; i < n; i++) y[i] = tanh_approx(x[i]);
}

static inline __attribute__((always_inline)) void sigmoid_body(const float *x, float *y, size_t n) {
    VECTORISE_IN_PLACE
    for (size_t i = 0; i < n; i++) y[i] = sigmoid_exp(x[i]);
}

static inline __attribute__((always_inline)) void gelu_tanh_body(const float *x, float *y, size_t n) {
    VECTORISE_IN_PLACE
    for (size_t i = 0; i < n; i++) {
        const float v = x[i];
        y[i] = 0.5f * v * (1.0f + tanh_approx(GELU_K * (v + GELU_C * v * v * v)));
    }
}

static inline __attribute__((always_inline)) void tanh_grad_body(const float *x, const float *dy, float *dx, size_t n) {
    VECTORISE_IN_PLACE
    for (size_t i = 0; i < n; i++) { const float t = tanh_approx(x[i]); dx[i] += dy[i] * (1.0f - t * t); }
}

static inline __attribute__((always_inline)) void sigmoid_grad_body(const float *x, const float *dy, float *dx, size_t n) {
    VECTORISE_IN_PLACE
    for (size_t i = 0; i < n; i++) { const float s = sigmoid_exp(x[i]); dx[i] += dy[i] * s * (1.0f - s); }
}

static inline __attribute__((always_inline)) void gelu_tanh_grad_body(const float *x, const float *dy, float *dx, size_t n) {
    VECTORISE_IN_PLACE
    for (size_t i = 0; i < n; i++) {
        const float v = x[i], t = tanh_approx(GELU_K * (v + GELU_C * v * v * v)), d = GELU_K * (1.0f + 3.0f * GELU_C * v * v);
        dx[i] += dy[i] * (0.5f * (1.0f + t) + 0.5f * v * (1.0f - t * t) * d);
    }
}

KERNEL_BUILDS(tanh, (const float *x, float *y, size_t n), (x, y, n))
KERNEL_BUILDS(sigmoid, (const float *x, float *y, size_t n), (x, y, n))
KERNEL_BUILDS(gelu_tanh, (const float *x, float *y, size_t n), (x, y, n))
KERNEL_BUILDS(tanh_grad, (const float *x, const float *dy, float *dx, size_t n), (x, dy, dx, n))
KERNEL_BUILDS(sigmoid_grad, (const float *x, const float *dy, float *dx, size_t n), (x, dy, dx, n))
KERNEL_BUILDS(gelu_tanh_grad, (const float *x, const float *dy, float *dx, size_t n), (x, dy, dx, n))

void wconv_tanh(const float *x, float *y, size_t n) { DISPATCH(tanh, x, y, n); }
void wconv_sigmoid(const float *x, float *y, size_t n) { DISPATCH(sigmoid, x, y, n); }
void wconv_gelu_tanh(const float *x, float *y, size_t n) { DISPATCH(gelu_tanh, x, y, n); }
void wconv_tanh_grad(const float *x, const float *dy, float *dx, size_t n) { DISPATCH(tanh_grad, x, dy, dx, n); }
void wconv_sigmoid_grad(const float *x, const float *dy, float *dx, size_t n) { DISPATCH(sigmoid_grad, x, dy, dx, n); }
void wconv_gelu_tanh_grad(const float *x, const float *dy, float *dx, size_t n) { DISPATCH(gelu_tanh_grad, x, dy, dx, n); }
