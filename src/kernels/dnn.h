/* The bf16 compute path: matrix products, convolutions and attention in bfloat16 with f32
 * accumulation through oneDNN (AMX or AVX512-BF16 kernels, chosen by oneDNN at run time).
 *
 * An is_dnn belongs to one network object (UNet, VAE, encoder) and holds everything the path needs:
 * the oneDNN engine and stream, the weights converted to bf16 and reordered ONCE into the layout the
 * primitives prefer (packed at load: no whole-model f32 copy; the packed copy replaces the mmap'ed
 * pages, which are dropped), the primitives created once per shape and reused, their scratchpad and
 * the bf16 staging buffers of the activations. No process-global state. One thread at a time.
 *
 * Every entry point takes the network's is_dnn, which may be NULL: the exact f32 kernels (kernels.h)
 * then run, with the numbers of the golden references. A weight that was not packed, or a shape no
 * bf16 primitive accepts, also runs in f32. Activations stay f32 and channel-major [C, H, W] between
 * operations; norms, softmax and the scheduler stay f32. Internal. */
#ifndef IS_KERNELS_DNN_H
#define IS_KERNELS_DNN_H

#include <stddef.h>
#include <stdint.h>

#include "core/safetensors.h"
#include "core/tensor.h"
#include "instantstyle.h"
#include "kernels/bf16.h"

typedef struct is_dnn is_dnn;

/* A context for the bf16 path; IS_E_UNSUPPORTED (naming the CPU's best ISA) when oneDNN finds no
 * bf16 instructions on this CPU. */
is_error *is_dnn_create(is_dnn **out);
void is_dnn_free(is_dnn *d);

/* Pack one weight: a Linear [N, K] (ndim 2) or Conv2d [Cout, Cin, kh, kw] (ndim 4) in F32/F16/BF16.
 * Packing the same tensor twice is a no-op. When st is given and holds the tensor in its mmap, the
 * mapped pages of the original are released afterwards (they are re-read from the file if needed). */
is_error *is_dnn_pack(is_dnn *d, const is_st *st, const is_tensor *w);
/* Pack the Linear weights parts[0..n) ([N_i, K] each, tensors of st: their mapped pages are released
 * afterwards) stacked row-wise as one [sum N_i, K] weight, so one
 * product computes all n outputs side by side ([M, sum N_i]). key (caller-owned, kept alive and unmoved
 * while packed) receives a descriptor of the stacked weight without data: pass it to is_dnn_linear_packed. */
is_error *is_dnn_pack_rows(is_dnn *d, const is_st *st, is_tensor *key, const is_tensor *const *parts, int n,
                           const char *name);
/* y = x W^T with W packed (no f32 fallback: returns -1, computing nothing, when the bf16 product cannot run). */
int is_dnn_linear_packed(is_dnn *d, float *y, const float *x, int64_t M, const is_tensor *W);
/* The same with y in bf16 (the f32 result rounded to nearest even by oneDNN). */
int is_dnn_linear_packed_bf16(is_dnn *d, uint16_t *y, const float *x, int64_t M, const is_tensor *W);
/* Pack every 2-D and 4-D float tensor of st whose name `keep` accepts (keep NULL: all of them). */
is_error *is_dnn_pack_st(is_dnn *d, const is_st *st, int (*keep)(const char *name));
/* Drop the packed copy of w (no-op if w is not packed): w then runs in f32 from its file. */
void is_dnn_forget(is_dnn *d, const is_tensor *w);
/* Drop the packed copies of st's tensors (before st is closed: its tensor addresses may be reused). */
void is_dnn_forget_st(is_dnn *d, const is_st *st);
size_t is_dnn_packed_bytes(const is_dnn *d);
/* A network's precision switch: *slot is its context. p resolving to F32 frees it (the f32 kernels
 * run); BF16 creates it (once) and packs the weights of the n files in sts (keep as in
 * is_dnn_pack_st). `what` names the network in errors. With stream_first (a network run once per
 * generation), the first call packs only the convolution weights: the matrix products round each weight into
 * a plain bf16 buffer as they run it (packing costs more than it saves for one forward; oneDNN gives the
 * same bits from either layout), and the next call packs them, for a network kept loaded and run again. */
is_error *is_dnn_apply_precision(is_dnn **slot, is_precision p, const is_st *const *sts, int n,
                                 int (*keep)(const char *name), const char *what, int stream_first);
/* Whether d's products stream their weights (stream_first's first use). */
int is_dnn_is_streaming(const is_dnn *d);
int is_dnn_is_packed(const is_dnn *d, const is_tensor *w);
/* The packs as slots 0..is_dnn_pack_slots() (some empty): a slot's sources are the tensors whose values it
 * holds (the weight, or the parts stacked); is_dnn_pack_sources writes up to cap of them and returns how many
 * (0: empty slot). is_dnn_repack converts the sources' current values into the slot's pack again (same layout,
 * same memory: the table does not change), e.g. after their values changed (LoRA). */
#define IS_DNN_PACK_MAX_SOURCES 4 /* parts of one stacked pack */
size_t is_dnn_pack_slots(const is_dnn *d);
int is_dnn_pack_sources(const is_dnn *d, size_t slot, const is_tensor **src, int cap);
is_error *is_dnn_repack(is_dnn *d, const is_st *st, size_t slot);

/* The operations, same contracts as their f32 counterparts in kernels.h. */
void is_dnn_linear(is_dnn *d, float *y, const float *x, int64_t M, const is_tensor *W, const is_tensor *bias);
/* The transformer's residual products: y[M,N] += src W^T + bias, src = x[M,K], or with geglu given
 * src = GEGLU(x) of x[M, 2K] = [a | gate] (a * gelu(gate), as is_k_geglu). In bf16 the GEGLU is computed
 * straight into the product's bf16 operand (never stored in f32; geglu is not written); the product goes
 * to tmp [M,N], then y += tmp. In f32 (d NULL, W not packed) geglu [M,K] receives GEGLU(x): is_k_geglu,
 * is_k_linear and is_k_add, bit for bit. The bf16 result is the bits of is_dnn_linear (after is_k_geglu)
 * followed by is_k_add. */
void is_dnn_linear_residual(is_dnn *d, float *y, const float *x, int64_t M, const is_tensor *W, const is_tensor *bias,
                            float *geglu, float *tmp);
void is_dnn_conv2d_fused(is_dnn *d, float *out, const float *in, int64_t Cin, int64_t H, int64_t W,
                         const is_tensor *weight, const is_tensor *bias, int stride, int pad, const float *in_scale,
                         const float *in_shift, int in_silu, int upsample2x, int accumulate);
void is_dnn_conv2d(is_dnn *d, float *out, const float *in, int64_t Cin, int64_t H, int64_t W,
                   const is_tensor *weight, const is_tensor *bias, int stride, int pad);
void is_dnn_attention(is_dnn *d, float *out, int64_t ldo, const float *q, int64_t ldq, const float *k, int64_t ldk,
                      const float *v, int64_t ldv, int64_t Nq, int64_t Nk, int64_t heads, int64_t dh, int causal,
                      float alpha, int accumulate);
/* Self-attention without biases of each of B batch items x[N, K] (rows of x: B*N): q | k | v = x Wqkv^T with
 * Wqkv [3*heads*dh, K] packed as stacked rows (is_dnn_pack_rows), computed in bf16 straight into bf16 (never
 * f32), then out[B*N, heads*dh] = softmax(q k^T / sqrt(dh)) v per item and head, as is_dnn_attention (alpha 1,
 * no accumulation). The same bits as is_dnn_linear_packed + is_dnn_attention when 1/sqrt(dh) is a power of
 * two (dh = 4, 16, 64, 256, ...: scaling q before or after its rounding is then exact); with few tokens (fewer
 * keys than the bf16 attention takes) it is that pair. Returns -1, computing nothing the caller needs, when
 * Wqkv is not packed or its bf16 product cannot run (then compute it some other way). */
int is_dnn_self_attention(is_dnn *d, float *out, const float *x, int64_t B, int64_t N, const is_tensor *Wqkv,
                          int64_t heads, int64_t dh);

/* oneDNN's implementation name for the bf16 matrix product y[M,N] = x[M,K] W^T with W packed
 * ("brg:avx512_core_amx_bf16" on AMX), or NULL when W is not packed / no primitive fits. */
const char *is_dnn_linear_impl(is_dnn *d, int64_t M, const is_tensor *W);
/* Same for the convolution of a [Cin, H, W] input with a packed 4-D weight. */
const char *is_dnn_conv_impl(is_dnn *d, int64_t Cin, int64_t H, int64_t W, const is_tensor *weight, int stride,
                             int pad);
/* Number of operations that fell back to f32 because no bf16 primitive fitted (0 when all ran in bf16). */
int64_t is_dnn_fallbacks(const is_dnn *d);

/* ---- CPU capability (dnn_cpu.c). The ISA oneDNN will use (respects ONEDNN_MAX_CPU_ISA), as text. */
const char *is_dnn_isa_name(void);
int is_dnn_has_bf16(void); /* avx512_core_bf16 or better */
int is_dnn_has_amx(void);

#endif
