/* Vectorised transcendental loops (exp, erf, tanh) for the activation, norm and softmax kernels.
 * AVX2+FMA when compiled for it (8 floats at a time, tails padded through a small buffer so every
 * element sees the same arithmetic), plain libm loops otherwise. Accuracy: exp within ~2 ulp,
 * erf within ~1.2e-7 absolute, well below the float32 rounding noise of the networks. Internal. */
#ifndef IS_KERNELS_VMATH_H
#define IS_KERNELS_VMATH_H

#include <stdint.h>

/* y may equal x in all of these. */
void is_v_silu(float *y, const float *x, int64_t n);       /* x * sigmoid(x) */
void is_v_quick_gelu(float *y, const float *x, int64_t n); /* x * sigmoid(1.702 x) */
void is_v_gelu(float *y, const float *x, int64_t n);       /* 0.5 x (1 + erf(x / sqrt 2)) */
void is_v_gelu_tanh(float *y, const float *x, int64_t n);
/* out = a * gelu(g) */
void is_v_geglu(float *out, const float *a, const float *g, int64_t n);
/* y = x * sc + sh, then SiLU if silu. */
void is_v_affine(float *y, const float *x, int64_t n, float sc, float sh, int silu);
/* y = (x - mean) * inv * gamma + beta (gamma/beta may be NULL). */
void is_v_normalize(float *y, const float *x, int64_t n, float mean, float inv, const float *gamma,
                    const float *beta);
/* Sum and sum of squares in double (so statistics do not depend on summation order). */
void is_v_sum_sq(const float *x, int64_t n, double *sum, double *sumsq);
/* Maximum of x[0..n) (n >= 1). */
float is_v_max(const float *x, int64_t n);
/* x[i] = exp(x[i] - m); returns the sum of the results. */
float is_v_exp_sum(float *x, int64_t n, float m);
/* p[i] = exp(x[i] - m) rounded to bf16 (nearest even; x finite); returns the sum of the unrounded values. */
float is_v_exp_sum_bf16(const float *x, uint16_t *p, int64_t n, float m);
/* One softmax row for the bf16 attention: p[i] = exp(x[i] - max(x)) rounded to bf16; returns the sum of the
 * unrounded values. AVX-512 (16 at a time) when the CPU has it, chosen at run time; else the loops above. */
float is_v_softmax_row_bf16(const float *x, uint16_t *p, int64_t n);
/* The same row by one named variant, for tests: IS_V_ROW_PORTABLE (the loops above), IS_V_ROW_AVX512,
 * IS_V_ROW_AVX512_BF16 (vcvtneps2bf16). Returns NAN, writing nothing, when the CPU lacks the variant. */
enum { IS_V_ROW_PORTABLE, IS_V_ROW_AVX512, IS_V_ROW_AVX512_BF16 };
float is_v_softmax_row_bf16_variant(const float *x, uint16_t *p, int64_t n, int variant);
/* out[i] = is_f32_to_bf16(a[i] * gelu(g[i])): is_v_geglu's values (bit for bit: the AVX-512 loop does the same
 * operations on 16 lanes) rounded to bf16, without an f32 copy. is_v_geglu_bf16_variant runs one variant
 * (IS_V_ROW_PORTABLE: is_v_geglu then the rounding; IS_V_ROW_AVX512) and returns -1, writing nothing, when the
 * CPU lacks it. */
void is_v_geglu_bf16(uint16_t *out, const float *a, const float *g, int64_t n);
int is_v_geglu_bf16_variant(uint16_t *out, const float *a, const float *g, int64_t n, int variant);
/* out[c * ldo + x] = in[x * ldi + c] (or += when accumulate) for x < X, c < C: a [X][C] block to [C][X]
 * (transpose_avx512.c: 16x16 tiles in AVX-512 registers where the CPU has them). The _variant form runs
 * IS_V_ROW_PORTABLE or IS_V_ROW_AVX512 and returns -1, writing nothing, when the CPU lacks it. */
void is_v_transpose_add(float *out, int64_t ldo, const float *in, int64_t ldi, int64_t X, int64_t C, int accumulate);
int is_v_transpose_add_variant(float *out, int64_t ldo, const float *in, int64_t ldi, int64_t X, int64_t C,
                               int accumulate, int variant);
/* out[x * ldo + c] = is_f32_to_bf16(f_c(in[c * ldi + x])) for x < X, c < C: [C][X] f32 to [X][C] bf16 (same
 * tiles; the _variant form as above), where f_c is a convolution's prologue: v * scale[c] + shift[c] then SiLU
 * as is_v_affine (scale non-NULL), SiLU alone as is_v_silu (scale NULL, silu), or nothing; bit for bit. */
void is_v_transpose_to_bf16(uint16_t *out, int64_t ldo, const float *in, int64_t ldi, int64_t X, int64_t C,
                            const float *scale, const float *shift, int silu);
int is_v_transpose_to_bf16_variant(uint16_t *out, int64_t ldo, const float *in, int64_t ldi, int64_t X, int64_t C,
                                   const float *scale, const float *shift, int silu, int variant);
/* Scalar exp with the same arithmetic as the vector loops. */
float is_v_expf(float x);

#endif
