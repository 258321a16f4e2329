/* Reference (first, straightforward) version kept to test the optimised kernels against. */
/* GroupNorm (optionally fused with SiLU) and LayerNorm; statistics accumulated in double
 * so the result does not depend on summation order beyond float rounding. */
#include <math.h>
#include <stdlib.h>

#include "kernels/kernels_ref.h"

void is_kref_group_norm(float *y, const float *x, int64_t C, int64_t HW, int64_t groups, float eps,
                     const is_tensor *gamma, const is_tensor *beta, int silu) {
    int64_t cpg = C / groups;
    float *g = malloc((size_t)C * sizeof(float)), *b = malloc((size_t)C * sizeof(float));
    if (!g || !b) abort();
    is_tensor_to_f32(gamma, g);
    is_tensor_to_f32(beta, b);
#pragma omp parallel for schedule(static)
    for (int64_t gi = 0; gi < groups; gi++) {
        const float *xs = x + gi * cpg * HW;
        int64_t n = cpg * HW;
        double sum = 0, sq = 0;
        for (int64_t i = 0; i < n; i++) sum += xs[i];
        double mean = sum / (double)n;
        for (int64_t i = 0; i < n; i++) {
            double d = xs[i] - mean;
            sq += d * d;
        }
        float inv = (float)(1.0 / sqrt(sq / (double)n + eps)), m = (float)mean;
        for (int64_t c = gi * cpg; c < (gi + 1) * cpg; c++) {
            float sc = g[c] * inv, sh = b[c] - m * sc;
            const float *xc = x + c * HW;
            float *yc = y + c * HW;
            if (silu) {
                for (int64_t i = 0; i < HW; i++) {
                    float v = xc[i] * sc + sh;
                    yc[i] = v / (1.0f + expf(-v));
                }
            } else {
                for (int64_t i = 0; i < HW; i++) yc[i] = xc[i] * sc + sh;
            }
        }
    }
    free(g);
    free(b);
}

void is_kref_layer_norm(float *y, const float *x, int64_t rows, int64_t dim, const is_tensor *gamma,
                     const is_tensor *beta, float eps) {
    float *g = NULL, *b = NULL;
    if (gamma) {
        g = malloc((size_t)dim * sizeof(float));
        if (!g) abort();
        is_tensor_to_f32(gamma, g);
    }
    if (beta) {
        b = malloc((size_t)dim * sizeof(float));
        if (!b) abort();
        is_tensor_to_f32(beta, b);
    }
#pragma omp parallel for schedule(static)
    for (int64_t r = 0; r < rows; r++) {
        const float *xr = x + r * dim;
        float *yr = y + r * dim;
        double sum = 0, sq = 0;
        for (int64_t i = 0; i < dim; i++) sum += xr[i];
        double mean = sum / (double)dim;
        for (int64_t i = 0; i < dim; i++) {
            double d = xr[i] - mean;
            sq += d * d;
        }
        float inv = (float)(1.0 / sqrt(sq / (double)dim + eps)), m = (float)mean;
        for (int64_t i = 0; i < dim; i++) {
            float v = (xr[i] - m) * inv;
            if (g) v *= g[i];
            if (b) v += b[i];
            yr[i] = v;
        }
    }
    free(g);
    free(b);
}
