/* Reference (first, straightforward) version kept to test the optimised kernels against. */
/* Elementwise activations and data movement. */
#include <math.h>
#include <stdlib.h>

#include "kernels/kernels_ref.h"

void is_kref_silu(float *x, int64_t n) {
#pragma omp parallel for schedule(static)
    for (int64_t i = 0; i < n; i++) x[i] = x[i] / (1.0f + expf(-x[i]));
}

void is_kref_gelu(float *x, int64_t n) {
#pragma omp parallel for schedule(static)
    for (int64_t i = 0; i < n; i++) x[i] = 0.5f * x[i] * (1.0f + erff(x[i] * 0.70710678118654752f));
}

void is_kref_gelu_tanh(float *x, int64_t n) {
#pragma omp parallel for schedule(static)
    for (int64_t i = 0; i < n; i++) {
        float v = x[i];
        x[i] = 0.5f * v * (1.0f + tanhf(0.7978845608028654f * (v + 0.044715f * v * v * v)));
    }
}

void is_kref_quick_gelu(float *x, int64_t n) {
#pragma omp parallel for schedule(static)
    for (int64_t i = 0; i < n; i++) x[i] = x[i] / (1.0f + expf(-1.702f * x[i]));
}

void is_kref_add(float *y, const float *x, int64_t n) {
#pragma omp parallel for schedule(static)
    for (int64_t i = 0; i < n; i++) y[i] += x[i];
}

void is_kref_scale(float *y, float s, int64_t n) {
#pragma omp parallel for schedule(static)
    for (int64_t i = 0; i < n; i++) y[i] *= s;
}

void is_kref_add_bias_rows(float *y, int64_t rows, const is_tensor *bias) {
    int64_t n = bias->numel;
    float *b = malloc((size_t)n * sizeof(float));
    if (!b) abort();
    is_tensor_to_f32(bias, b);
#pragma omp parallel for schedule(static)
    for (int64_t r = 0; r < rows; r++)
        for (int64_t i = 0; i < n; i++) y[r * n + i] += b[i];
    free(b);
}

void is_kref_geglu(float *out, const float *in, int64_t rows, int64_t dim) {
#pragma omp parallel for schedule(static)
    for (int64_t r = 0; r < rows; r++) {
        const float *a = in + r * 2 * dim, *g = a + dim;
        float *o = out + r * dim;
        for (int64_t i = 0; i < dim; i++) o[i] = a[i] * (0.5f * g[i] * (1.0f + erff(g[i] * 0.70710678118654752f)));
    }
}

void is_kref_transpose(float *out, const float *in, int64_t R, int64_t C) {
#pragma omp parallel for schedule(static)
    for (int64_t c = 0; c < C; c++)
        for (int64_t r = 0; r < R; r++) out[c * R + r] = in[r * C + c];
}

void is_kref_upsample_nearest2x(float *out, const float *in, int64_t C, int64_t H, int64_t W) {
#pragma omp parallel for schedule(static)
    for (int64_t c = 0; c < C; c++)
        for (int64_t y = 0; y < 2 * H; y++) {
            const float *src = in + (c * H + y / 2) * W;
            float *dst = out + (c * 2 * H + y) * 2 * W;
            for (int64_t x = 0; x < 2 * W; x++) dst[x] = src[x / 2];
        }
}
