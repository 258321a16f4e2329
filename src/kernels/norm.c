/* GroupNorm (optionally fused with SiLU) and LayerNorm. Statistics are one pass of sum and sum of
 * squares in double (exact enough that the order of summation does not matter at float precision),
 * then one fused normalise(+affine, +SiLU) pass. */
#include <math.h>

#include "kernels/kernels.h"
#include "kernels/scratch.h"
#include "kernels/vmath.h"

/* mean and 1/sqrt(var + eps) of n floats (biased variance). */
static void moments(const float *x, int64_t n, float eps, float *mean, float *inv) {
    double s, q;
    is_v_sum_sq(x, n, &s, &q);
    double m = s / (double)n, var = q / (double)n - m * m;
    var = var > 0 ? var : 0;
    *mean = (float)m;
    *inv = (float)(1.0 / sqrt(var + eps));
}

/* Per-channel scale and shift of group gi: y = x * scale + shift is the normalised, affine output. */
static void group_affine(const float *x, int64_t gi, int64_t cpg, int64_t HW, float eps, const float *g,
                         const float *b, float *scale, float *shift) {
    float m, inv;
    moments(x + gi * cpg * HW, cpg * HW, eps, &m, &inv);
    for (int64_t c = gi * cpg; c < (gi + 1) * cpg; c++) {
        float sc = g[c] * inv;
        scale[c] = sc;
        shift[c] = b[c] - m * sc;
    }
}

void is_k_group_norm(float *y, const float *x, int64_t C, int64_t HW, int64_t groups, float eps,
                     const is_tensor *gamma, const is_tensor *beta, int silu) {
    int64_t cpg = C / groups;
    float *g = is_scratch(IS_SCR_NORM, (size_t)(4 * C)), *b = g + C, *sc = b + C, *sh = sc + C;
    is_tensor_to_f32(gamma, g);
    is_tensor_to_f32(beta, b);
#pragma omp parallel for schedule(dynamic)
    for (int64_t gi = 0; gi < groups; gi++) {
        group_affine(x, gi, cpg, HW, eps, g, b, sc, sh);
        for (int64_t c = gi * cpg; c < (gi + 1) * cpg; c++) is_v_affine(y + c * HW, x + c * HW, HW, sc[c], sh[c], silu);
    }
    is_flops_add(7.0 * (double)C * (double)HW);
}

void is_k_group_norm_affine(const float *x, int64_t C, int64_t HW, int64_t groups, float eps, const is_tensor *gamma,
                            const is_tensor *beta, float *scale, float *shift) {
    int64_t cpg = C / groups;
    float *g = is_scratch(IS_SCR_NORM, (size_t)(2 * C)), *b = g + C;
    is_tensor_to_f32(gamma, g);
    is_tensor_to_f32(beta, b);
#pragma omp parallel for schedule(dynamic)
    for (int64_t gi = 0; gi < groups; gi++) group_affine(x, gi, cpg, HW, eps, g, b, scale, shift);
    is_flops_add(3.0 * (double)C * (double)HW);
}

void is_k_layer_norm(float *y, const float *x, int64_t rows, int64_t dim, const is_tensor *gamma,
                     const is_tensor *beta, float eps) {
    float *g = NULL, *b = NULL, *buf = is_scratch(IS_SCR_NORM, (size_t)(2 * dim));
    if (gamma) is_tensor_to_f32(gamma, g = buf);
    if (beta) is_tensor_to_f32(beta, b = buf + dim);
#pragma omp parallel for schedule(static)
    for (int64_t r = 0; r < rows; r++) {
        float m, inv;
        moments(x + r * dim, dim, eps, &m, &inv);
        is_v_normalize(y + r * dim, x + r * dim, dim, m, inv, g, b);
    }
    is_flops_add(7.0 * (double)rows * (double)dim);
}
