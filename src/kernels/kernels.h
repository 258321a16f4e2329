/* Compute kernels on f32 activations with weights in their stored dtype (is_tensor views).
 * Layouts follow PyTorch: Linear weight [out, in], Conv2d weight [Cout, Cin, kh, kw],
 * images are channel-major [C, H, W] (one batch item at a time).
 * Every kernel adds the FLOPs it performs to the calling thread's counter (see is_flops_*). */
#ifndef IS_KERNELS_H
#define IS_KERNELS_H

#include <stdint.h>

#include "core/tensor.h"

/* ---- FLOP accounting (2 per multiply-add), per calling thread: kernels add from the thread that
 * calls them (outside their parallel regions), so two pipelines on two threads count separately. */
void is_flops_add(double n);
double is_flops_total(void);
void is_flops_reset(void);

/* y[M,N] = x[M,K] @ W^T + bias, W = [N,K] in any float dtype; bias may be NULL.
 * y must not alias x. */
void is_k_linear(float *y, const float *x, int64_t M, const is_tensor *W, const is_tensor *bias);

/* C[M,N] = alpha * A[M,K] @ B (+ beta*C); B is [K,N] (trans_b=0) or [N,K] (trans_b=1). f32 only. */
void is_k_gemm(float *C, const float *A, const float *B, int64_t M, int64_t N, int64_t K, int trans_b,
               float alpha, float beta);

/* out[Cout,Ho,Wo] = conv2d(in[Cin,H,W]), weight [Cout,Cin,kh,kw], square stride/padding (zeros).
 * Ho = (H + 2*pad - kh)/stride + 1. bias may be NULL. */
void is_k_conv2d(float *out, const float *in, int64_t Cin, int64_t H, int64_t W, const is_tensor *weight,
                 const is_tensor *bias, int stride, int pad);
/* Convolution output size along one axis. */
int64_t is_conv_out_size(int64_t in, int64_t k, int stride, int pad);

/* GroupNorm over x[C,HW] (biased variance, eps inside sqrt), affine, optional SiLU after. y may == x. */
void is_k_group_norm(float *y, const float *x, int64_t C, int64_t HW, int64_t groups, float eps,
                     const is_tensor *gamma, const is_tensor *beta, int silu);

/* LayerNorm over rows of x[rows,dim]; gamma/beta may be NULL (no affine). y may == x. */
void is_k_layer_norm(float *y, const float *x, int64_t rows, int64_t dim, const is_tensor *gamma,
                     const is_tensor *beta, float eps);

/* Multi-head scaled-dot-product attention, heads packed in the feature axis:
 * q [Nq, heads*dh] (row stride ldq), k/v [Nk, heads*dh] (strides ldk, ldv), out [Nq, heads*dh] (ldo).
 * scale = 1/sqrt(dh). causal: query i sees keys j <= i. accumulate: out += alpha*attn, else out = alpha*attn.
 * Never materialises the full Nq x Nk matrix at once. */
void is_k_attention(float *out, int64_t ldo, const float *q, int64_t ldq, const float *k, int64_t ldk,
                    const float *v, int64_t ldv, int64_t Nq, int64_t Nk, int64_t heads, int64_t dh,
                    int causal, float alpha, int accumulate);

/* Elementwise. */
void is_k_silu(float *x, int64_t n);
void is_k_gelu(float *x, int64_t n);       /* exact erf GELU */
void is_k_gelu_tanh(float *x, int64_t n);  /* tanh approximation ("gelu_pytorch_tanh") */
void is_k_quick_gelu(float *x, int64_t n); /* x * sigmoid(1.702 x) */
void is_k_add(float *y, const float *x, int64_t n);           /* y += x */
void is_k_scale(float *y, float s, int64_t n);                /* y *= s */
void is_k_add_bias_rows(float *y, int64_t rows, const is_tensor *bias); /* y[r,:] += bias */
/* out[rows,dim] = a * gelu(gate) where in[rows, 2*dim] = [a | gate] (diffusers GEGLU). */
void is_k_geglu(float *out, const float *in, int64_t rows, int64_t dim);
/* [R,C] -> [C,R]. */
void is_k_transpose(float *out, const float *in, int64_t R, int64_t C);
/* Nearest-neighbour 2x upsampling of [C,H,W] -> [C,2H,2W]. */
void is_k_upsample_nearest2x(float *out, const float *in, int64_t C, int64_t H, int64_t W);

/* ---- Scratch memory (src/kernels/scratch.c). Kernels keep reusable buffers (weights converted to
 * f32 layer- or panel-wise, per-thread tiles) that grow on demand and persist, so repeated calls do
 * not allocate. Each OS thread has its own buffers (freed when it exits), so kernels called from
 * different threads at once never share scratch. Growing aborts if memory runs out; call
 * is_kernels_reserve() once up front (after is_set_threads, e.g. when loading a model) to allocate
 * now, for the calling thread and its OpenMP team, and get IS_E_NOMEM instead.
 * max_weight_numel: the largest weight (elements) the caller will pass to is_k_conv2d or is_k_linear. */
is_error *is_kernels_reserve(int64_t max_weight_numel);
size_t is_kernels_scratch_bytes(void); /* bytes held now by the calling thread and its team */
void is_kernels_release(void);         /* free that scratch (it regrows on the next call) */

/* ---- Fused convolution and its GroupNorm prologue (src/kernels/conv2d.c, norm.c).
 * out = conv2d(T(in)) (+= when accumulate), with the input transformed on the fly, never materialised:
 * T = optional nearest-2x upsampling of in[Cin,H,W] (the convolution then sees [Cin,2H,2W]), then when
 * in_scale/in_shift are given x*in_scale[c] + in_shift[c] per channel, then SiLU when in_silu; the
 * convolution's zero padding is applied after T. Same numbers as running those steps one by one
 * (is_k_upsample_nearest2x, is_k_group_norm, is_k_conv2d, is_k_add(out, conv)). out may overlap in only
 * for a 1x1, stride-1, unpadded convolution whose out - in is a multiple of H*W (e.g. in place). */
void is_k_conv2d_fused(float *out, const float *in, int64_t Cin, int64_t H, int64_t W, const is_tensor *weight,
                       const is_tensor *bias, int stride, int pad, const float *in_scale, const float *in_shift,
                       int in_silu, int upsample2x, int accumulate);
/* The GroupNorm of x[C,HW] as per-channel scale[C] and shift[C] (is_k_group_norm(y) == x*scale + shift,
 * computed with the same statistics). */
void is_k_group_norm_affine(const float *x, int64_t C, int64_t HW, int64_t groups, float eps, const is_tensor *gamma,
                            const is_tensor *beta, float *scale, float *shift);

#endif
