/* The bf16 attention's softmax row with AVX-512, chosen at run time (the build targets AVX2, so these
 * functions carry their own target attribute): the exp of every score is the largest elementwise cost
 * of a 1024x1024 UNet step. 16 lanes, and an exp only as accurate as a result rounded to bf16 needs. */
#include <immintrin.h>
#include <math.h>

#include "kernels/vmath.h"

#define AVX512 __attribute__((target("avx512f,avx512bw,avx512vl")))

/* exp for values about to be rounded to bf16 (x <= 0 here): degree-4 Taylor polynomial on
 * |r| <= ln2/2 (relative error < 4.3e-5, 1% of a bf16 rounding step) and vscalefps for the 2^n, which
 * also flushes to zero below the float range. Half the instructions of exp16. */
AVX512 static inline __m512 exp16_for_bf16(__m512 x) {
    __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(1.44269504088896341f)),
                                    _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693359375f), x);
    r = _mm512_fnmadd_ps(n, _mm512_set1_ps(-2.12194440e-4f), r);
    __m512 y = _mm512_fmadd_ps(r, _mm512_set1_ps(1.0f / 24.0f), _mm512_set1_ps(1.0f / 6.0f));
    y = _mm512_fmadd_ps(y, r, _mm512_set1_ps(0.5f));
    y = _mm512_fmadd_ps(y, r, _mm512_set1_ps(1.0f));
    y = _mm512_fmadd_ps(y, r, _mm512_set1_ps(1.0f));
    return _mm512_scalef_ps(y, n);
}

/* 16 finite non-negative floats to bf16, round to nearest even. */
AVX512 static inline __m256i bf16x16(__m512 e) {
    __m512i u = _mm512_castps_si512(e);
    __m512i odd = _mm512_and_si512(_mm512_srli_epi32(u, 16), _mm512_set1_epi32(1));
    return _mm512_cvtepi32_epi16(_mm512_srli_epi32(_mm512_add_epi32(u, _mm512_add_epi32(_mm512_set1_epi32(0x7fff), odd)), 16));
}

AVX512 static float row_avx512(const float *x, uint16_t *p, int64_t n) {
    __m512 mv = _mm512_set1_ps(-INFINITY);
    for (int64_t i = 0; i < n; i += 16) {
        __mmask16 k = n - i >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << (n - i)) - 1);
        mv = _mm512_max_ps(mv, _mm512_mask_loadu_ps(_mm512_set1_ps(-INFINITY), k, x + i));
    }
    __m512 m = _mm512_set1_ps(_mm512_reduce_max_ps(mv)), acc = _mm512_setzero_ps();
    for (int64_t i = 0; i < n; i += 16) {
        __mmask16 k = n - i >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << (n - i)) - 1);
        __m512 e = _mm512_maskz_mov_ps(k, exp16_for_bf16(_mm512_sub_ps(_mm512_maskz_loadu_ps(k, x + i), m)));
        _mm256_mask_storeu_epi16(p + i, k, bf16x16(e));
        acc = _mm512_add_ps(acc, e);
    }
    return _mm512_reduce_add_ps(acc);
}

float is_v_softmax_row_bf16(const float *x, uint16_t *p, int64_t n) {
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl"))
        return row_avx512(x, p, n);
    return is_v_exp_sum_bf16(x, p, n, is_v_max(x, n));
}
