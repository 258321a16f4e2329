/* y[M,N] = x[M,K] @ W^T + bias in bf16: x is rounded to bf16 into a staging buffer, W is packed (or, for
 * a network's streamed first use, rounded into a plain buffer per product), the product accumulates in f32
 * and oneDNN adds the bias on the way out. The residual form may compute
 * GEGLU while staging x (no f32 copy of GEGLU(x)); its sum is a separate pass: as oneDNN's sum post-op it
 * measured 0-7% slower on Zen 5 (docs/PERFORMANCE.md). */
#include <string.h>

#include "kernels/dnn_internal.h"
#include "kernels/kernels.h"

/* The matmul primitive for M rows and weights of layout wmd (a pack's, or plain for streamed ones; cached per
 * shape); dst_bf16: dst is bf16 (rounded to nearest even by oneDNN), else f32. */
static dnn_prim *matmul(is_dnn *d, int64_t M, int64_t N, int64_t K, int has_bias, int dst_bf16,
                        const dnnl_memory_desc_t *wmd) {
    int64_t key[DNN_KEY_N] = {DNN_MATMUL, M, N, K, has_bias, dst_bf16};
    dnn_prim *pr = dnn_prim_find(d, key, wmd);
    if (pr) return pr;
    dnnl_memory_desc_t src, dst, bias;
    dnnl_dims_t sd = {M, K}, dd = {M, N}, bd = {1, N};
    dnnl_memory_desc_init_by_tag(&src, 2, sd, dnnl_bf16, dnnl_ab);
    dnnl_memory_desc_init_by_tag(&dst, 2, dd, dst_bf16 ? dnnl_bf16 : dnnl_f32, dnnl_ab);
    dnnl_memory_desc_init_by_tag(&bias, 2, bd, dnnl_f32, dnnl_ab);
    dnnl_matmul_desc_t op;
    dnnl_primitive_desc_t pd = NULL;
    dnnl_primitive_attr_t attr = dnn_attr();
    if (!attr || dnnl_matmul_desc_init(&op, &src, wmd, has_bias ? &bias : NULL, &dst) != dnnl_success ||
        dnnl_primitive_desc_create(&pd, &op, attr, d->engine, NULL) != dnnl_success)
        pd = NULL;
    if (attr) dnnl_primitive_attr_destroy(attr);
    return dnn_prim_add(d, key, wmd, pd);
}

/* A streamed weight W [N, K] (no pack, d->streaming): its values rounded to bf16 into d->wstream, plain
 * [N, K] rows, which the matmul reads as weights [K, N] in "ba" order; *wmd receives that layout. NULL when
 * W cannot be streamed (the f32 kernels run it). */
static const void *streamed_weight(is_dnn *d, const is_tensor *W, dnnl_memory_desc_t *wmd) {
    if (!d || !d->streaming || W->ndim != 2 || !dnn_float_dtype(W->dtype)) return NULL;
    uint16_t *wb = dnn_buf_get(&d->wstream, (size_t)W->numel * sizeof(uint16_t));
    if (!wb) return NULL;
    dnnl_dims_t wd = {W->shape[1], W->shape[0]};
    dnnl_memory_desc_init_by_tag(wmd, 2, wd, dnnl_bf16, dnnl_ba);
    const is_tensor *src[1] = {W};
    is_tensors_to_bf16(wb, src, 1);
    return wb;
}

/* y = src W^T (+ bias) in bf16, y f32 or bf16 (dst_bf16), src = x [M,K], or with geglu_src GEGLU of x
 * [M, 2K] rounded straight into the bf16 operand. Returns 0 when it ran; 1 when W is neither packed nor
 * streamed (the f32 kernels are the path); -1 when no bf16 product could run for it (a fallback). Writes
 * nothing to y unless it returns 0. */
static int linear_bf16(is_dnn *d, void *y, int dst_bf16, const float *x, int64_t M, const is_tensor *W,
                       const is_tensor *bias, int geglu_src) {
    if (M <= 0 || W->ndim != 2) return 1;
    const dnn_pack *p = dnn_find_pack(d, W);
    dnnl_memory_desc_t plain;
    const void *wdata = p ? p->data : streamed_weight(d, W, &plain);
    if (!wdata) return 1;
    int64_t N = W->shape[0], K = W->shape[1];
    dnn_prim *pr = matmul(d, M, N, K, bias != NULL, dst_bf16, p ? &p->md : &plain);
    uint16_t *xb = dnn_buf_get(&d->src, (size_t)(M * K) * sizeof(uint16_t));
    const float *b = dnn_bias_f32(d, bias, N);
    if (!pr || !pr->ok || !xb || (bias && !b)) return -1;
    if (geglu_src)
        is_geglu_to_bf16(xb, x, M, K); /* the values is_k_geglu computes, rounded as is_f32_to_bf16_n would */
    else
        is_f32_to_bf16_n(xb, x, M * K);
    if (dnn_prim_run(d, pr, xb, wdata, b, y)) return -1; /* cannot happen once the primitive exists */
    is_flops_add(2.0 * (double)M * (double)N * (double)K);
    return 0;
}

void is_dnn_linear(is_dnn *d, float *y, const float *x, int64_t M, const is_tensor *W, const is_tensor *bias) {
    int rc = linear_bf16(d, y, 0, x, M, W, bias, 0);
    if (rc < 0) d->fallbacks++;
    if (rc) is_k_linear(y, x, M, W, bias);
}

void is_dnn_linear_residual(is_dnn *d, float *y, const float *x, int64_t M, const is_tensor *W, const is_tensor *bias,
                            float *geglu, float *tmp) {
    int rc = linear_bf16(d, tmp, 0, x, M, W, bias, geglu != NULL);
    if (rc < 0) d->fallbacks++;
    if (rc) { /* the f32 kernels, in the order of the unfused code */
        if (geglu) {
            is_k_geglu(geglu, x, M, W->shape[1]);
            x = geglu;
        }
        is_k_linear(tmp, x, M, W, bias);
    }
    is_k_add(y, tmp, M * W->shape[0]);
}

int is_dnn_linear_packed(is_dnn *d, float *y, const float *x, int64_t M, const is_tensor *W) {
    return linear_bf16(d, y, 0, x, M, W, NULL, 0) ? -1 : 0;
}

int is_dnn_linear_packed_bf16(is_dnn *d, uint16_t *y, const float *x, int64_t M, const is_tensor *W) {
    return linear_bf16(d, y, 1, x, M, W, NULL, 0) ? -1 : 0;
}

const char *is_dnn_linear_impl(is_dnn *d, int64_t M, const is_tensor *W) {
    const dnn_pack *p = dnn_find_pack(d, W);
    if (!p || M <= 0) return NULL;
    dnn_prim *pr = matmul(d, M, W->shape[0], W->shape[1], 0, 0, &p->md);
    return pr && pr->ok ? pr->impl : NULL;
}
