/* Elementwise activations and data movement; the transcendental loops are vectorised (vmath.c)
 * and every loop is split across threads in cache-sized chunks. */
#include "kernels/kernels.h"
#include "kernels/scratch.h"
#include "kernels/vmath.h"

#define CHUNK 16384 /* floats per parallel work item */

/* Apply fn to x[0..n) in place, chunk by chunk across threads. */
static void unary(float *x, int64_t n, void (*fn)(float *, const float *, int64_t)) {
    int64_t nchunks = (n + CHUNK - 1) / CHUNK;
#pragma omp parallel for schedule(static) if (nchunks > 1)
    for (int64_t c = 0; c < nchunks; c++) {
        int64_t i = c * CHUNK, m = n - i < CHUNK ? n - i : CHUNK;
        fn(x + i, x + i, m);
    }
}

void is_k_silu(float *x, int64_t n) { unary(x, n, is_v_silu); }
void is_k_gelu(float *x, int64_t n) { unary(x, n, is_v_gelu); }
void is_k_gelu_tanh(float *x, int64_t n) { unary(x, n, is_v_gelu_tanh); }
void is_k_quick_gelu(float *x, int64_t n) { unary(x, n, is_v_quick_gelu); }

void is_k_add(float *y, const float *x, int64_t n) {
#pragma omp parallel for schedule(static) if (n > CHUNK)
    for (int64_t i = 0; i < n; i++) y[i] += x[i];
}

void is_k_scale(float *y, float s, int64_t n) {
#pragma omp parallel for schedule(static) if (n > CHUNK)
    for (int64_t i = 0; i < n; i++) y[i] *= s;
}

void is_k_add_bias_rows(float *y, int64_t rows, const is_tensor *bias) {
    int64_t n = bias->numel;
    float *b = is_scratch(IS_SCR_BIAS, (size_t)n);
    is_tensor_to_f32(bias, b);
#pragma omp parallel for schedule(static) if (rows * n > CHUNK)
    for (int64_t r = 0; r < rows; r++) {
        float *yr = y + r * n;
        for (int64_t i = 0; i < n; i++) yr[i] += b[i];
    }
}

void is_k_geglu(float *out, const float *in, int64_t rows, int64_t dim) {
#pragma omp parallel for schedule(static) if (rows * dim > CHUNK)
    for (int64_t r = 0; r < rows; r++) is_v_geglu(out + r * dim, in + r * 2 * dim, in + r * 2 * dim + dim, dim);
}

/* Blocked so both the reads and the writes stay within a few cache lines per block. */
void is_k_transpose(float *out, const float *in, int64_t R, int64_t C) {
    const int64_t B = 32;
    int64_t nrb = (R + B - 1) / B, ncb = (C + B - 1) / B;
#pragma omp parallel for schedule(static) collapse(2) if (R * C > CHUNK)
    for (int64_t rb = 0; rb < nrb; rb++)
        for (int64_t cb = 0; cb < ncb; cb++) {
            int64_t r1 = (rb + 1) * B < R ? (rb + 1) * B : R, c1 = (cb + 1) * B < C ? (cb + 1) * B : C;
            for (int64_t c = cb * B; c < c1; c++)
                for (int64_t r = rb * B; r < r1; r++) out[c * R + r] = in[r * C + c];
        }
}

void is_k_upsample_nearest2x(float *out, const float *in, int64_t C, int64_t H, int64_t W) {
#pragma omp parallel for schedule(static) collapse(2) if (C * H * W > CHUNK)
    for (int64_t c = 0; c < C; c++)
        for (int64_t y = 0; y < H; y++) {
            const float *src = in + (c * H + y) * W;
            float *d0 = out + (c * 2 * H + 2 * y) * 2 * W, *d1 = d0 + 2 * W;
            for (int64_t x = 0; x < W; x++) d0[2 * x] = d0[2 * x + 1] = src[x];
            for (int64_t x = 0; x < 2 * W; x++) d1[x] = d0[x];
        }
}
