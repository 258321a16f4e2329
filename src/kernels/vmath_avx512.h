/* 16-lane AVX-512 ports of vmath.c's 8-lane AVX2 arithmetic, operation for operation, so a loop chosen at
 * run time on an AVX-512 CPU gives the bits of the AVX2 build's loops (the build targets AVX2, so these
 * carry their own target attribute). ISO C builds do not contract the separate multiplies and adds.
 * Internal. */
#ifndef IS_KERNELS_VMATH_AVX512_H
#define IS_KERNELS_VMATH_AVX512_H

#include <immintrin.h>

#define IS_AVX512_TARGET __attribute__((target("avx512f,avx512bw,avx512vl")))

/* vmath.c's v_exp. */
IS_AVX512_TARGET static inline __m512 is_exp16(__m512 x) {
    const __m512 hi = _mm512_set1_ps(88.3762626647949f), lo = _mm512_set1_ps(-87.33654f);
    __mmask16 under = _mm512_cmp_ps_mask(x, lo, _CMP_LT_OQ); /* exp underflows: 0 */
    x = _mm512_min_ps(_mm512_max_ps(x, lo), hi);
    __m512 fx = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(1.44269504088896341f)),
                                     _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    x = _mm512_fnmadd_ps(fx, _mm512_set1_ps(0.693359375f), x);
    x = _mm512_fnmadd_ps(fx, _mm512_set1_ps(-2.12194440e-4f), x);
    __m512 y = _mm512_set1_ps(1.9875691500e-4f);
    y = _mm512_fmadd_ps(y, x, _mm512_set1_ps(1.3981999507e-3f));
    y = _mm512_fmadd_ps(y, x, _mm512_set1_ps(8.3334519073e-3f));
    y = _mm512_fmadd_ps(y, x, _mm512_set1_ps(4.1665795894e-2f));
    y = _mm512_fmadd_ps(y, x, _mm512_set1_ps(1.6666665459e-1f));
    y = _mm512_fmadd_ps(y, x, _mm512_set1_ps(5.0000001201e-1f));
    y = _mm512_fmadd_ps(y, _mm512_mul_ps(x, x), _mm512_add_ps(x, _mm512_set1_ps(1.0f)));
    __m512i e = _mm512_slli_epi32(_mm512_add_epi32(_mm512_cvtps_epi32(fx), _mm512_set1_epi32(127)), 23);
    y = _mm512_mul_ps(y, _mm512_castsi512_ps(e));
    return _mm512_maskz_mov_ps((__mmask16)~under, y);
}

/* vmath.c's v_sigmoid_mul(x, 1): x * sigmoid(x) = x / (1 + exp(-x)), -x computed as (0 - 1) * x as there. */
IS_AVX512_TARGET static inline __m512 is_silu16(__m512 x) {
    __m512 e = is_exp16(_mm512_mul_ps(_mm512_sub_ps(_mm512_setzero_ps(), _mm512_set1_ps(1.0f)), x));
    return _mm512_div_ps(x, _mm512_add_ps(_mm512_set1_ps(1.0f), e));
}

#endif
