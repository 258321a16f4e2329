/* The bf16 path's elementwise loops with AVX-512, chosen at run time (the build targets AVX2, so these
 * functions carry their own target attribute).
 * - The attention's softmax row: the exp of every score is the largest elementwise cost of a 1024x1024
 *   UNet step. 16 lanes, an exp only as accurate as a result rounded to bf16 needs, and AVX512-BF16's
 *   vcvtneps2bf16 for the rounding where the CPU has it (AMX CPUs, Zen 4).
 * - GEGLU written straight into the next product's bf16 operand: vmath.c's 8-lane arithmetic, operation
 *   for operation on 16 lanes, so the values and their rounding are those of is_v_geglu + is_f32_to_bf16. */
#include <immintrin.h>
#include <math.h>

#include "kernels/bf16.h"
#include "kernels/bf16_avx512.h"
#include "kernels/vmath.h"
#include "kernels/vmath_avx512.h"

#define AVX512 __attribute__((target("avx512f,avx512bw,avx512vl")))
#define AVX512_BF16 __attribute__((target("avx512f,avx512bw,avx512vl,avx512bf16")))

/* exp for values about to be rounded to bf16, x in [-87, 0] (the caller clamps: exp(-87) = 1.6e-38 is
 * already below what matters next to the row's maximum, exp(0) = 1): degree-4 Taylor polynomial on
 * |r| <= ln2/2 (relative error < 4.3e-5, 1% of a bf16 rounding step) times 2^n, with n rounded by the
 * 1.5 * 2^23 shifter and added to the exponent field as an integer. A dozen instructions. */
#define EXP16_FOR_BF16(x)                                                                                          \
    __m512 t = _mm512_fmadd_ps(x, _mm512_set1_ps(1.44269504088896341f), _mm512_set1_ps(12582912.0f));           \
    __m512 n = _mm512_sub_ps(t, _mm512_set1_ps(12582912.0f));                                                    \
    __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693359375f), x);                                              \
    r = _mm512_fnmadd_ps(n, _mm512_set1_ps(-2.12194440e-4f), r);                                                  \
    __m512 y = _mm512_fmadd_ps(r, _mm512_set1_ps(1.0f / 24.0f), _mm512_set1_ps(1.0f / 6.0f));                   \
    y = _mm512_fmadd_ps(y, r, _mm512_set1_ps(0.5f));                                                             \
    y = _mm512_fmadd_ps(y, r, _mm512_set1_ps(1.0f));                                                             \
    y = _mm512_fmadd_ps(y, r, _mm512_set1_ps(1.0f));                                                             \
    __m512 e = _mm512_castsi512_ps(                                                                              \
        _mm512_add_epi32(_mm512_castps_si512(y), _mm512_slli_epi32(_mm512_castps_si512(t), 23)))

/* 16 finite non-negative floats to bf16, round to nearest even (without AVX512-BF16's instruction). */
AVX512 static inline __m256i bf16x16(__m512 e) {
    __m512i u = _mm512_castps_si512(e);
    __m512i odd = _mm512_and_si512(_mm512_srli_epi32(u, 16), _mm512_set1_epi32(1));
    return _mm512_cvtepi32_epi16(_mm512_srli_epi32(_mm512_add_epi32(u, _mm512_add_epi32(_mm512_set1_epi32(0x7fff), odd)), 16));
}

AVX512 static float row_max(const float *x, int64_t n) {
    __m512 mv = _mm512_set1_ps(-INFINITY);
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) mv = _mm512_max_ps(mv, _mm512_loadu_ps(x + i));
    if (i < n) mv = _mm512_max_ps(mv, _mm512_mask_loadu_ps(mv, (__mmask16)((1u << (n - i)) - 1), x + i));
    return _mm512_reduce_max_ps(mv);
}

/* The row: one pass for the maximum, one for exp, the bf16 store and the sum. CVT(e) rounds to bf16. */
#define SOFTMAX_ROW(CVT)                                                                                           \
    __m512 m = _mm512_set1_ps(row_max(x, n)), lo = _mm512_set1_ps(-87.0f), acc = _mm512_setzero_ps();            \
    int64_t i = 0;                                                                                                 \
    for (; i + 16 <= n; i += 16) {                                                                                 \
        __m512 xv = _mm512_max_ps(_mm512_sub_ps(_mm512_loadu_ps(x + i), m), lo);                                   \
        EXP16_FOR_BF16(xv);                                                                                        \
        _mm256_storeu_si256((__m256i *)(p + i), CVT(e));                                                           \
        acc = _mm512_add_ps(acc, e);                                                                               \
    }                                                                                                              \
    if (i < n) {                                                                                                   \
        __mmask16 k = (__mmask16)((1u << (n - i)) - 1);                                                            \
        __m512 xv = _mm512_max_ps(_mm512_sub_ps(_mm512_maskz_loadu_ps(k, x + i), m), lo);                          \
        EXP16_FOR_BF16(xv);                                                                                        \
        e = _mm512_maskz_mov_ps(k, e);                                                                             \
        _mm256_mask_storeu_epi16(p + i, k, CVT(e));                                                                \
        acc = _mm512_add_ps(acc, e);                                                                               \
    }                                                                                                              \
    return _mm512_reduce_add_ps(acc)

#define CVT_NE(e) ((__m256i)_mm512_cvtneps_pbh(e))

AVX512 static float row_avx512(const float *x, uint16_t *p, int64_t n) { SOFTMAX_ROW(bf16x16); }
AVX512_BF16 static float row_avx512_bf16(const float *x, uint16_t *p, int64_t n) { SOFTMAX_ROW(CVT_NE); }

/* ---- GEGLU: the operations of vmath.c's v_exp, v_erf and v_gelu in the same order (ISO C: no contraction). */

AVX512 static inline __m512 erf16(__m512 x) {
    const __m512i sign = _mm512_set1_epi32((int)0x80000000u);
    __m512 ax = _mm512_castsi512_ps(_mm512_andnot_si512(sign, _mm512_castps_si512(x)));
    __m512 t = _mm512_div_ps(_mm512_set1_ps(1.0f),
                             _mm512_fmadd_ps(_mm512_set1_ps(0.5f), ax, _mm512_set1_ps(1.0f)));
    __m512 p = _mm512_set1_ps(0.17087277f);
    p = _mm512_fmadd_ps(p, t, _mm512_set1_ps(-0.82215223f));
    p = _mm512_fmadd_ps(p, t, _mm512_set1_ps(1.48851587f));
    p = _mm512_fmadd_ps(p, t, _mm512_set1_ps(-1.13520398f));
    p = _mm512_fmadd_ps(p, t, _mm512_set1_ps(0.27886807f));
    p = _mm512_fmadd_ps(p, t, _mm512_set1_ps(-0.18628806f));
    p = _mm512_fmadd_ps(p, t, _mm512_set1_ps(0.09678418f));
    p = _mm512_fmadd_ps(p, t, _mm512_set1_ps(0.37409196f));
    p = _mm512_fmadd_ps(p, t, _mm512_set1_ps(1.00002368f));
    p = _mm512_fmadd_ps(p, t, _mm512_set1_ps(-1.26551223f));
    __m512 erfc = _mm512_mul_ps(t, is_exp16(_mm512_fnmadd_ps(ax, ax, p)));
    __m512 r = _mm512_sub_ps(_mm512_set1_ps(1.0f), erfc);
    __m512i x_sign = _mm512_and_si512(sign, _mm512_castps_si512(x));
    return _mm512_castsi512_ps(_mm512_or_si512(_mm512_castps_si512(r), x_sign));
}

AVX512 static inline __m512 geglu16(__m512 a, __m512 g) {
    __m512 e = erf16(_mm512_mul_ps(g, _mm512_set1_ps(0.70710678118654752f)));
    __m512 half_g = _mm512_mul_ps(_mm512_set1_ps(0.5f), g);
    return _mm512_mul_ps(a, _mm512_mul_ps(half_g, _mm512_add_ps(_mm512_set1_ps(1.0f), e)));
}

AVX512 static void geglu_bf16_avx512(uint16_t *out, const float *a, const float *g, int64_t n) {
    int64_t i = 0;
    for (; i + 16 <= n; i += 16)
        _mm256_storeu_si256((__m256i *)(out + i),
                            is_bf16x16_any(geglu16(_mm512_loadu_ps(a + i), _mm512_loadu_ps(g + i))));
    if (i < n) {
        __mmask16 k = (__mmask16)((1u << (n - i)) - 1);
        __m512 v = geglu16(_mm512_maskz_loadu_ps(k, a + i), _mm512_maskz_loadu_ps(k, g + i));
        _mm256_mask_storeu_epi16(out + i, k, is_bf16x16_any(v));
    }
}

/* Without AVX-512: the f32 loop through a small buffer, then the rounding. */
static void geglu_bf16_portable(uint16_t *out, const float *a, const float *g, int64_t n) {
    float buf[256];
    for (int64_t i = 0; i < n; i += 256) {
        int64_t m = n - i < 256 ? n - i : 256;
        is_v_geglu(buf, a + i, g + i, m);
        for (int64_t j = 0; j < m; j++) out[i + j] = is_f32_to_bf16(buf[j]);
    }
}

static int has_avx512(void) {
    return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
           __builtin_cpu_supports("avx512vl");
}

float is_v_softmax_row_bf16_variant(const float *x, uint16_t *p, int64_t n, int variant) {
    if (variant == IS_V_ROW_AVX512_BF16) return has_avx512() && __builtin_cpu_supports("avx512bf16") ? row_avx512_bf16(x, p, n) : NAN;
    if (variant == IS_V_ROW_AVX512) return has_avx512() ? row_avx512(x, p, n) : NAN;
    return is_v_exp_sum_bf16(x, p, n, is_v_max(x, n));
}

float is_v_softmax_row_bf16(const float *x, uint16_t *p, int64_t n) {
    if (has_avx512() && __builtin_cpu_supports("avx512bf16")) return row_avx512_bf16(x, p, n);
    if (has_avx512()) return row_avx512(x, p, n);
    return is_v_exp_sum_bf16(x, p, n, is_v_max(x, n));
}

int is_v_geglu_bf16_variant(uint16_t *out, const float *a, const float *g, int64_t n, int variant) {
    if (variant == IS_V_ROW_PORTABLE) {
        geglu_bf16_portable(out, a, g, n);
        return 0;
    }
    if (variant != IS_V_ROW_AVX512 || !has_avx512()) return -1;
    geglu_bf16_avx512(out, a, g, n);
    return 0;
}

void is_v_geglu_bf16(uint16_t *out, const float *a, const float *g, int64_t n) {
    if (has_avx512())
        geglu_bf16_avx512(out, a, g, n);
    else
        geglu_bf16_portable(out, a, g, n);
}
