/* Reference kernels: the first, straightforward implementations of kernels.h, kept unchanged
 * so tests/test_kernels.c can check the optimised public kernels against them.
 * Same semantics as the is_k_* declaration of the same name; they do not count FLOPs.
 * Not for use by the networks. */
#ifndef IS_KERNELS_REF_H
#define IS_KERNELS_REF_H

#include "kernels/kernels.h"

void is_kref_linear(float *y, const float *x, int64_t M, const is_tensor *W, const is_tensor *bias);
void is_kref_gemm(float *C, const float *A, const float *B, int64_t M, int64_t N, int64_t K, int trans_b,
                  float alpha, float beta);
void is_kref_conv2d(float *out, const float *in, int64_t Cin, int64_t H, int64_t W, const is_tensor *weight,
                    const is_tensor *bias, int stride, int pad);
void is_kref_group_norm(float *y, const float *x, int64_t C, int64_t HW, int64_t groups, float eps,
                        const is_tensor *gamma, const is_tensor *beta, int silu);
void is_kref_layer_norm(float *y, const float *x, int64_t rows, int64_t dim, const is_tensor *gamma,
                        const is_tensor *beta, float eps);
void is_kref_attention(float *out, int64_t ldo, const float *q, int64_t ldq, const float *k, int64_t ldk,
                       const float *v, int64_t ldv, int64_t Nq, int64_t Nk, int64_t heads, int64_t dh,
                       int causal, float alpha, int accumulate);
void is_kref_silu(float *x, int64_t n);
void is_kref_gelu(float *x, int64_t n);
void is_kref_gelu_tanh(float *x, int64_t n);
void is_kref_quick_gelu(float *x, int64_t n);
void is_kref_add(float *y, const float *x, int64_t n);
void is_kref_scale(float *y, float s, int64_t n);
void is_kref_add_bias_rows(float *y, int64_t rows, const is_tensor *bias);
void is_kref_geglu(float *out, const float *in, int64_t rows, int64_t dim);
void is_kref_transpose(float *out, const float *in, int64_t R, int64_t C);
void is_kref_upsample_nearest2x(float *out, const float *in, int64_t C, int64_t H, int64_t W);

#endif
