/* Vectorised exp / erf / tanh loops (see vmath.h). exp: Cephes-style range reduction
 * x = n ln2 + r with a degree-6 polynomial; erf: Numerical Recipes erfc(t) = t exp(-x^2 + P(t)),
 * fractional error < 1.2e-7; tanh(y) = 1 - 2 / (exp(2y) + 1). */
#include "kernels/vmath.h"

#include "kernels/bf16.h"

#include <math.h>
#include <string.h>

#if defined(__AVX2__) && defined(__FMA__)
#include <immintrin.h>
#define IS_VMATH_AVX2 1
#endif

#ifdef IS_VMATH_AVX2

static inline __m256 v_exp(__m256 x) {
    const __m256 hi = _mm256_set1_ps(88.3762626647949f), lo = _mm256_set1_ps(-87.33654f);
    __m256 under = _mm256_cmp_ps(x, lo, _CMP_LT_OQ); /* exp underflows: return 0 */
    x = _mm256_min_ps(_mm256_max_ps(x, lo), hi);
    __m256 fx = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(1.44269504088896341f)),
                                _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    x = _mm256_fnmadd_ps(fx, _mm256_set1_ps(0.693359375f), x);
    x = _mm256_fnmadd_ps(fx, _mm256_set1_ps(-2.12194440e-4f), x);
    __m256 y = _mm256_set1_ps(1.9875691500e-4f);
    y = _mm256_fmadd_ps(y, x, _mm256_set1_ps(1.3981999507e-3f));
    y = _mm256_fmadd_ps(y, x, _mm256_set1_ps(8.3334519073e-3f));
    y = _mm256_fmadd_ps(y, x, _mm256_set1_ps(4.1665795894e-2f));
    y = _mm256_fmadd_ps(y, x, _mm256_set1_ps(1.6666665459e-1f));
    y = _mm256_fmadd_ps(y, x, _mm256_set1_ps(5.0000001201e-1f));
    y = _mm256_fmadd_ps(y, _mm256_mul_ps(x, x), _mm256_add_ps(x, _mm256_set1_ps(1.0f)));
    /* fx >= -127 here, so 2^fx is built directly in the exponent field (fx = -127 -> denormal 0) */
    __m256i e = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(fx), _mm256_set1_epi32(127)), 23);
    y = _mm256_mul_ps(y, _mm256_castsi256_ps(e));
    return _mm256_andnot_ps(under, y);
}

static inline __m256 v_sigmoid_mul(__m256 x, __m256 k) { /* x * sigmoid(k x) */
    __m256 e = v_exp(_mm256_mul_ps(_mm256_sub_ps(_mm256_setzero_ps(), k), x));
    return _mm256_div_ps(x, _mm256_add_ps(_mm256_set1_ps(1.0f), e));
}

static inline __m256 v_erf(__m256 x) {
    const __m256 sign = _mm256_set1_ps(-0.0f);
    __m256 ax = _mm256_andnot_ps(sign, x);
    __m256 t = _mm256_div_ps(_mm256_set1_ps(1.0f), _mm256_fmadd_ps(_mm256_set1_ps(0.5f), ax, _mm256_set1_ps(1.0f)));
    __m256 p = _mm256_set1_ps(0.17087277f);
    p = _mm256_fmadd_ps(p, t, _mm256_set1_ps(-0.82215223f));
    p = _mm256_fmadd_ps(p, t, _mm256_set1_ps(1.48851587f));
    p = _mm256_fmadd_ps(p, t, _mm256_set1_ps(-1.13520398f));
    p = _mm256_fmadd_ps(p, t, _mm256_set1_ps(0.27886807f));
    p = _mm256_fmadd_ps(p, t, _mm256_set1_ps(-0.18628806f));
    p = _mm256_fmadd_ps(p, t, _mm256_set1_ps(0.09678418f));
    p = _mm256_fmadd_ps(p, t, _mm256_set1_ps(0.37409196f));
    p = _mm256_fmadd_ps(p, t, _mm256_set1_ps(1.00002368f));
    p = _mm256_fmadd_ps(p, t, _mm256_set1_ps(-1.26551223f));
    __m256 erfc = _mm256_mul_ps(t, v_exp(_mm256_fnmadd_ps(ax, ax, p)));
    __m256 r = _mm256_sub_ps(_mm256_set1_ps(1.0f), erfc);
    return _mm256_or_ps(r, _mm256_and_ps(sign, x));
}

static inline __m256 v_gelu(__m256 x) {
    __m256 e = v_erf(_mm256_mul_ps(x, _mm256_set1_ps(0.70710678118654752f)));
    return _mm256_mul_ps(_mm256_mul_ps(_mm256_set1_ps(0.5f), x), _mm256_add_ps(_mm256_set1_ps(1.0f), e));
}

static inline __m256 v_gelu_tanh(__m256 v) {
    __m256 u = _mm256_mul_ps(_mm256_set1_ps(0.7978845608028654f),
                             _mm256_fmadd_ps(_mm256_mul_ps(_mm256_set1_ps(0.044715f), v), _mm256_mul_ps(v, v), v));
    /* 1 + tanh(u) = 2 - 2 / (exp(2u) + 1) = 2 exp(2u) / (exp(2u) + 1); written to stay finite */
    __m256 e = v_exp(_mm256_mul_ps(_mm256_set1_ps(-2.0f), u));
    __m256 one_plus_tanh = _mm256_div_ps(_mm256_set1_ps(2.0f), _mm256_add_ps(_mm256_set1_ps(1.0f), e));
    return _mm256_mul_ps(_mm256_mul_ps(_mm256_set1_ps(0.5f), v), one_plus_tanh);
}

/* Load/store up to 8 floats (tail) through a zero-padded buffer. */
static inline __m256 load_tail(const float *x, int64_t n) {
    float b[8] = {0};
    memcpy(b, x, (size_t)n * sizeof(float));
    return _mm256_loadu_ps(b);
}
static inline void store_tail(float *y, __m256 v, int64_t n) {
    float b[8];
    _mm256_storeu_ps(b, v);
    memcpy(y, b, (size_t)n * sizeof(float));
}

#define UNARY_LOOP(y, x, n, expr)                                              \
    do {                                                                       \
        int64_t i_ = 0;                                                        \
        for (; i_ + 8 <= (n); i_ += 8) {                                       \
            __m256 v = _mm256_loadu_ps((x) + i_);                              \
            _mm256_storeu_ps((y) + i_, (expr));                                \
        }                                                                      \
        if (i_ < (n)) {                                                        \
            __m256 v = load_tail((x) + i_, (n) - i_);                          \
            store_tail((y) + i_, (expr), (n) - i_);                            \
        }                                                                      \
    } while (0)

void is_v_silu(float *y, const float *x, int64_t n) { UNARY_LOOP(y, x, n, v_sigmoid_mul(v, _mm256_set1_ps(1.0f))); }
void is_v_quick_gelu(float *y, const float *x, int64_t n) {
    UNARY_LOOP(y, x, n, v_sigmoid_mul(v, _mm256_set1_ps(1.702f)));
}
void is_v_gelu(float *y, const float *x, int64_t n) { UNARY_LOOP(y, x, n, v_gelu(v)); }
void is_v_gelu_tanh(float *y, const float *x, int64_t n) { UNARY_LOOP(y, x, n, v_gelu_tanh(v)); }

void is_v_geglu(float *out, const float *a, const float *g, int64_t n) {
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(out + i, _mm256_mul_ps(_mm256_loadu_ps(a + i), v_gelu(_mm256_loadu_ps(g + i))));
    if (i < n) store_tail(out + i, _mm256_mul_ps(load_tail(a + i, n - i), v_gelu(load_tail(g + i, n - i))), n - i);
}

void is_v_affine(float *y, const float *x, int64_t n, float sc, float sh, int silu) {
    __m256 s = _mm256_set1_ps(sc), b = _mm256_set1_ps(sh), one = _mm256_set1_ps(1.0f);
    if (silu)
        UNARY_LOOP(y, x, n, v_sigmoid_mul(_mm256_fmadd_ps(v, s, b), one));
    else
        UNARY_LOOP(y, x, n, _mm256_fmadd_ps(v, s, b));
}

void is_v_sum_sq(const float *x, int64_t n, double *sum, double *sumsq) {
    __m256d s0 = _mm256_setzero_pd(), s1 = _mm256_setzero_pd(), q0 = _mm256_setzero_pd(), q1 = _mm256_setzero_pd();
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256 v = _mm256_loadu_ps(x + i);
        __m256d a = _mm256_cvtps_pd(_mm256_castps256_ps128(v)), b = _mm256_cvtps_pd(_mm256_extractf128_ps(v, 1));
        s0 = _mm256_add_pd(s0, a);
        s1 = _mm256_add_pd(s1, b);
        q0 = _mm256_fmadd_pd(a, a, q0);
        q1 = _mm256_fmadd_pd(b, b, q1);
    }
    double s[4], q[4];
    _mm256_storeu_pd(s, _mm256_add_pd(s0, s1));
    _mm256_storeu_pd(q, _mm256_add_pd(q0, q1));
    double ts = s[0] + s[1] + s[2] + s[3], tq = q[0] + q[1] + q[2] + q[3];
    for (; i < n; i++) {
        ts += x[i];
        tq += (double)x[i] * x[i];
    }
    *sum = ts;
    *sumsq = tq;
}

float is_v_max(const float *x, int64_t n) {
    __m256 m = _mm256_set1_ps(-INFINITY);
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) m = _mm256_max_ps(m, _mm256_loadu_ps(x + i));
    float b[8];
    _mm256_storeu_ps(b, m);
    float r = b[0];
    for (int j = 1; j < 8; j++) r = b[j] > r ? b[j] : r;
    for (; i < n; i++) r = x[i] > r ? x[i] : r;
    return r;
}

float is_v_exp_sum(float *x, int64_t n, float m) {
    __m256 mv = _mm256_set1_ps(m), acc = _mm256_setzero_ps();
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256 e = v_exp(_mm256_sub_ps(_mm256_loadu_ps(x + i), mv));
        _mm256_storeu_ps(x + i, e);
        acc = _mm256_add_ps(acc, e);
    }
    float b[8];
    _mm256_storeu_ps(b, acc);
    float s = ((b[0] + b[1]) + (b[2] + b[3])) + ((b[4] + b[5]) + (b[6] + b[7]));
    for (; i < n; i++) {
        x[i] = is_v_expf(x[i] - m);
        s += x[i];
    }
    return s;
}

/* 8 finite non-negative floats to bf16, round to nearest even. */
static inline __m128i v_to_bf16(__m256 e) {
    __m256i u = _mm256_castps_si256(e);
    __m256i odd = _mm256_and_si256(_mm256_srli_epi32(u, 16), _mm256_set1_epi32(1));
    __m256i r = _mm256_srli_epi32(_mm256_add_epi32(u, _mm256_add_epi32(_mm256_set1_epi32(0x7fff), odd)), 16);
    return _mm_packus_epi32(_mm256_castsi256_si128(r), _mm256_extracti128_si256(r, 1));
}

float is_v_exp_sum_bf16(const float *x, uint16_t *p, int64_t n, float m) {
    __m256 mv = _mm256_set1_ps(m), acc = _mm256_setzero_ps();
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256 e = v_exp(_mm256_sub_ps(_mm256_loadu_ps(x + i), mv));
        _mm_storeu_si128((__m128i *)(p + i), v_to_bf16(e));
        acc = _mm256_add_ps(acc, e);
    }
    float b[8];
    _mm256_storeu_ps(b, acc);
    float s = ((b[0] + b[1]) + (b[2] + b[3])) + ((b[4] + b[5]) + (b[6] + b[7]));
    for (; i < n; i++) {
        float e = is_v_expf(x[i] - m);
        p[i] = is_f32_to_bf16(e);
        s += e;
    }
    return s;
}

float is_v_expf(float x) {
    float b[8];
    _mm256_storeu_ps(b, v_exp(_mm256_set1_ps(x)));
    return b[0];
}

#else /* portable fallback */

void is_v_silu(float *y, const float *x, int64_t n) {
    for (int64_t i = 0; i < n; i++) y[i] = x[i] / (1.0f + expf(-x[i]));
}
void is_v_quick_gelu(float *y, const float *x, int64_t n) {
    for (int64_t i = 0; i < n; i++) y[i] = x[i] / (1.0f + expf(-1.702f * x[i]));
}
void is_v_gelu(float *y, const float *x, int64_t n) {
    for (int64_t i = 0; i < n; i++) y[i] = 0.5f * x[i] * (1.0f + erff(x[i] * 0.70710678118654752f));
}
void is_v_gelu_tanh(float *y, const float *x, int64_t n) {
    for (int64_t i = 0; i < n; i++) {
        float v = x[i];
        y[i] = 0.5f * v * (1.0f + tanhf(0.7978845608028654f * (v + 0.044715f * v * v * v)));
    }
}
void is_v_geglu(float *out, const float *a, const float *g, int64_t n) {
    for (int64_t i = 0; i < n; i++) out[i] = a[i] * (0.5f * g[i] * (1.0f + erff(g[i] * 0.70710678118654752f)));
}
void is_v_affine(float *y, const float *x, int64_t n, float sc, float sh, int silu) {
    for (int64_t i = 0; i < n; i++) {
        float v = x[i] * sc + sh;
        y[i] = silu ? v / (1.0f + expf(-v)) : v;
    }
}
void is_v_sum_sq(const float *x, int64_t n, double *sum, double *sumsq) {
    double s = 0, q = 0;
    for (int64_t i = 0; i < n; i++) {
        s += x[i];
        q += (double)x[i] * x[i];
    }
    *sum = s;
    *sumsq = q;
}
float is_v_max(const float *x, int64_t n) {
    float r = x[0];
    for (int64_t i = 1; i < n; i++) r = x[i] > r ? x[i] : r;
    return r;
}
float is_v_exp_sum(float *x, int64_t n, float m) {
    float s = 0;
    for (int64_t i = 0; i < n; i++) {
        x[i] = expf(x[i] - m);
        s += x[i];
    }
    return s;
}
float is_v_expf(float x) { return expf(x); }
float is_v_exp_sum_bf16(const float *x, uint16_t *p, int64_t n, float m) {
    float s = 0;
    for (int64_t i = 0; i < n; i++) {
        float e = expf(x[i] - m);
        p[i] = is_f32_to_bf16(e);
        s += e;
    }
    return s;
}

#endif

void is_v_normalize(float *y, const float *x, int64_t n, float mean, float inv, const float *gamma,
                    const float *beta) {
    /* plain loops: the compiler vectorises these */
    if (gamma && beta)
        for (int64_t i = 0; i < n; i++) y[i] = (x[i] - mean) * inv * gamma[i] + beta[i];
    else if (gamma)
        for (int64_t i = 0; i < n; i++) y[i] = (x[i] - mean) * inv * gamma[i];
    else if (beta)
        for (int64_t i = 0; i < n; i++) y[i] = (x[i] - mean) * inv + beta[i];
    else
        for (int64_t i = 0; i < n; i++) y[i] = (x[i] - mean) * inv;
}
