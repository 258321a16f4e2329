/* f32 -> bf16 rounding (round to nearest even, NaN kept quiet), shared by the bf16 path and the
 * vector loops that write bf16. Internal. */
#ifndef IS_KERNELS_BF16_H
#define IS_KERNELS_BF16_H

#include <stdint.h>

static inline uint16_t is_f32_to_bf16(float f) {
    union { float f; uint32_t u; } v = {f};
    if ((v.u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((v.u >> 16) | 0x40); /* NaN stays NaN */
    return (uint16_t)((v.u + 0x7fffu + ((v.u >> 16) & 1u)) >> 16);
}
/* dst[i] = is_f32_to_bf16(src[i]) (dnn_convert.c, parallel for long arrays). */
void is_f32_to_bf16_n(uint16_t *dst, const float *src, int64_t n);
/* dst[rows, dim] = GEGLU of in[rows, 2*dim] = [a | gate] (a * gelu(gate), is_k_geglu's values) rounded to
 * bf16 (dnn_convert.c, parallel over rows). */
void is_geglu_to_bf16(uint16_t *dst, const float *in, int64_t rows, int64_t dim);
/* Round every element of x to the nearest bf16 value, in place (the rounding the bf16 path applies to
 * the operands of its products; for tests and error estimates). */
void is_round_bf16(float *x, int64_t n);

#endif
