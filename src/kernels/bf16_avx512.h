/* f32 -> bf16 rounding of 16 lanes for the AVX-512 loops chosen at run time (the build targets AVX2, so the
 * function carries its own target attribute): the bits of is_f32_to_bf16 (bf16.h), nearest even, denormals
 * kept, NaN made quiet. Internal. */
#ifndef IS_KERNELS_BF16_AVX512_H
#define IS_KERNELS_BF16_AVX512_H

#include <immintrin.h>

__attribute__((target("avx512f,avx512bw,avx512vl"))) static inline __m256i is_bf16x16_any(__m512 v) {
    __m512i u = _mm512_castps_si512(v);
    __m512i odd = _mm512_and_si512(_mm512_srli_epi32(u, 16), _mm512_set1_epi32(1));
    __m512i r = _mm512_srli_epi32(_mm512_add_epi32(u, _mm512_add_epi32(_mm512_set1_epi32(0x7fff), odd)), 16);
    __mmask16 nan = _mm512_cmp_ps_mask(v, v, _CMP_UNORD_Q);
    r = _mm512_mask_or_epi32(r, nan, _mm512_srli_epi32(u, 16), _mm512_set1_epi32(0x40));
    return _mm512_cvtepi32_epi16(r);
}

#endif
