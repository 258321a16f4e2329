/* The bf16 attention's softmax row with AVX-512, chosen at run time (the build targets AVX2, so these
 * functions carry their own target attribute): the exp of every score is the largest elementwise cost
 * of a 1024x1024 UNet step. 16 lanes, an exp only as accurate as a result rounded to bf16 needs, and
 * AVX512-BF16's vcvtneps2bf16 for the rounding where the CPU has it (AMX CPUs, Zen 4). */
#include <immintrin.h>
#include <math.h>

#include "kernels/vmath.h"

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
