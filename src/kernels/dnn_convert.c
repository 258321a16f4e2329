/* f32 -> bf16 rounding (round to nearest even, as oneDNN's and PyTorch's conversions do) of the products'
 * operands: plain loops over independent elements (the compiler vectorises them), GEGLU rounded on its
 * way into the feed-forward's second product, and weights rounded from their stored dtype for packing. */
#include <omp.h>

#include "kernels/bf16.h"
#include "kernels/dnn_internal.h"
#include "kernels/vmath.h"

void is_f32_to_bf16_n(uint16_t *dst, const float *src, int64_t n) {
    const int64_t chunk = 1 << 15;
#pragma omp parallel for schedule(static) if (n > 4 * chunk)
    for (int64_t c = 0; c < (n + chunk - 1) / chunk; c++) {
        int64_t e = (c + 1) * chunk < n ? (c + 1) * chunk : n;
        for (int64_t i = c * chunk; i < e; i++) dst[i] = is_f32_to_bf16(src[i]);
    }
}

void is_tensors_to_bf16(uint16_t *dst, const is_tensor *const *src, int n) {
    const int64_t chunk = 1 << 13;
    for (int i = 0; i < n; dst += src[i]->numel, i++) {
        const is_tensor *t = src[i];
#pragma omp parallel for schedule(static) if (t->numel > 4 * chunk)
        for (int64_t c = 0; c < (t->numel + chunk - 1) / chunk; c++) {
            float f32[1 << 13];
            int64_t at = c * chunk, m = t->numel - at < chunk ? t->numel - at : chunk;
            is_convert_to_f32(t->dtype, t->data, (size_t)at, (size_t)m, f32);
            for (int64_t j = 0; j < m; j++) dst[at + j] = is_f32_to_bf16(f32[j]);
        }
    }
}

void is_geglu_to_bf16(uint16_t *dst, const float *in, int64_t rows, int64_t dim) {
#pragma omp parallel for schedule(static) if (rows * dim > 4 * (1 << 15))
    for (int64_t r = 0; r < rows; r++) is_v_geglu_bf16(dst + r * dim, in + r * 2 * dim, in + r * 2 * dim + dim, dim);
}

void is_round_bf16(float *x, int64_t n) {
    for (int64_t i = 0; i < n; i++) {
        union { uint32_t u; float f; } v = {.u = (uint32_t)is_f32_to_bf16(x[i]) << 16};
        x[i] = v.f;
    }
}
