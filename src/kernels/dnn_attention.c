/* Attention in bf16: per head, scores S = Q K^T and output O = P V are bf16 products with f32
 * accumulation (oneDNN); the softmax in between is f32. Q, K and V are bf16 copies in head-major order
 * ([heads][N][dh]: each product reads a contiguous tile; read in place from [N][heads*dh] rows, a query tile
 * touches a page per row and the products ran 10-14% slower): from f32 they are rounded once into those
 * copies (the 1/sqrt(dh) scale riding on the queries' rounding); the self-attention entry has them from its
 * stacked projection, which writes bf16 straight away, and copies them (the scale is then the score
 * product's output scale). Each head's K^T and V are then reordered once per call into the blocked layout
 * the products read (given plain, every product would copy its B operand again: half a MiB per job at 4096
 * keys). The work is split into (head, tile of query rows) jobs, one per thread at a time, each with a
 * score tile small enough to stay in the core's cache (the products are small-K, so memory traffic decides
 * their speed) unless that leaves too few query rows per job to repay reading K and V; all tiles have the
 * same height (the queries are padded with zero rows), so one primitive per product serves every job, run
 * single-threaded inside the parallel region. The Nq x Nk matrix is never held whole. Causal masks and very
 * small problems (the IP-Adapter's 4 keys) run in the f32 kernel. */
#include <math.h>
#include <omp.h>
#include <string.h>

#include "kernels/dnn_internal.h"
#include "kernels/kernels.h"
#include "kernels/vmath.h"

#define ATT_TILE_BYTES ((int64_t)1024 << 10) /* f32 scores per job */
#define ATT_MIN_KEYS 16
#define ATT_MAX_TILE 256                     /* query rows per job */
/* Every job reads all of its head's K and V (4 Nk dh bytes) for 4 T Nk dh FLOP: T FLOP per byte. With
 * 1 MiB of scores the VAE's 16384 keys (dh 512, 1024x1024) gave T = 16, and its 32 MiB of K and V per
 * job made that attention run at 58% of the bf16 ceiling; at T >= 128, 86% (is_bench --only micro
 * --precision bf16 --filter "attention bf16"), the score tile then 8 MiB. At 4096 keys (T 64 -> 128) and
 * fewer the speed did not change. */
#define ATT_MIN_TILE 128

/* s * x[N][heads*dh] (row stride ld) -> bf16 [heads][N_pad][dh], rows N..N_pad-1 of each head zero. */
static void to_head_major(uint16_t *dst, int64_t N_pad, const float *x, int64_t ld, int64_t N, int64_t heads,
                          int64_t dh, float s) {
#pragma omp parallel for schedule(static)
    for (int64_t n = 0; n < N_pad; n++)
        for (int64_t h = 0; h < heads; h++)
            for (int64_t j = 0; j < dh; j++)
                dst[(h * N_pad + n) * dh + j] = n < N ? is_f32_to_bf16(s * x[n * ld + h * dh + j]) : 0;
}

/* The same from bf16 rows (no rounding, no scale): a copy into head-major order. */
static void bf16_head_major(uint16_t *dst, int64_t N_pad, const uint16_t *x, int64_t ld, int64_t N, int64_t heads,
                            int64_t dh) {
#pragma omp parallel for schedule(static)
    for (int64_t n = 0; n < N_pad; n++)
        for (int64_t h = 0; h < heads; h++) {
            uint16_t *o = dst + (h * N_pad + n) * dh;
            if (n < N)
                memcpy(o, x + n * ld + h * dh, (size_t)dh * 2);
            else
                memset(o, 0, (size_t)dh * 2);
        }
}

/* dst[M,N] (f32, row-major) = scale * src[M,K] (bf16 row-major) @ B[K,N] (bf16, in the blocked layout the
 * primitive chose: K and V are reordered into it once per head and call, not copied by every product).
 * Cached per shape. */
static dnn_prim *product(is_dnn *d, int kind, int64_t M, int64_t N, int64_t K, float scale) {
    uint32_t sbits;
    memcpy(&sbits, &scale, sizeof sbits);
    int64_t key[DNN_KEY_N] = {kind, M, N, K, sbits};
    dnn_prim *pr = dnn_prim_find(d, key, NULL);
    if (pr) return pr;
    dnnl_memory_desc_t src, wei, dst;
    dnnl_dims_t sd = {M, K}, wd = {K, N}, dd = {M, N};
    dnnl_memory_desc_init_by_tag(&src, 2, sd, dnnl_bf16, dnnl_ab);
    dnnl_memory_desc_init_by_tag(&wei, 2, wd, dnnl_bf16, dnnl_format_tag_any);
    dnnl_memory_desc_init_by_tag(&dst, 2, dd, dnnl_f32, dnnl_ab);
    dnnl_matmul_desc_t op;
    dnnl_primitive_desc_t pd = NULL;
    dnnl_primitive_attr_t attr = dnn_attr();
    if (attr && scale != 1.0f && dnnl_primitive_attr_set_output_scales(attr, 1, 0, &scale) != dnnl_success) {
        dnnl_primitive_attr_destroy(attr);
        attr = NULL;
    }
    if (!attr || dnnl_matmul_desc_init(&op, &src, &wei, NULL, &dst) != dnnl_success ||
        dnnl_primitive_desc_create(&pd, &op, attr, d->engine, NULL) != dnnl_success)
        pd = NULL;
    if (attr) dnnl_primitive_attr_destroy(attr);
    return dnn_prim_add(d, key, NULL, pd);
}

/* The reorder of one head's plain bf16 operand (dims {rows, cols}, tag) into the layout of p's weights. */
static dnn_prim *operand_reorder(is_dnn *d, const dnn_prim *p, int64_t rows, int64_t cols, dnnl_format_tag_t tag,
                                 size_t *bytes) {
    const dnnl_memory_desc_t *wmd = NULL;
    if (!p->ok || dnnl_memory_get_memory_desc(p->mem[DNN_ARG_WEI], &wmd) != dnnl_success) return NULL;
    *bytes = dnnl_memory_desc_get_size(wmd);
    int64_t key[DNN_KEY_N] = {DNN_REORDER, -1, rows, cols, tag};
    dnn_prim *r = dnn_prim_find(d, key, wmd);
    if (r) return r->ok ? r : NULL;
    dnnl_memory_desc_t plain;
    dnnl_dims_t dims = {rows, cols};
    dnnl_memory_desc_init_by_tag(&plain, 2, dims, dnnl_bf16, tag);
    dnnl_primitive_desc_t pd = NULL;
    if (dnnl_reorder_primitive_desc_create(&pd, &plain, d->engine, wmd, d->engine, NULL) != dnnl_success) pd = NULL;
    r = dnn_prim_add(d, key, wmd, pd);
    return r && r->ok ? r : NULL;
}

typedef struct {
    int64_t T, ntiles;      /* query rows per job; jobs per head (the last tile is padded with zero rows) */
    dnn_prim *qk, *pv;      /* S = Q_tile K^T, O = P V */
    dnn_prim *k_in, *v_in;  /* one head's K (as K^T) and V into the products' layouts */
    size_t k_bytes, v_bytes; /* one head's blocked K^T and V */
} att_plan;

/* The tile height for Nq queries and Nk keys. */
static int64_t tile_rows(int64_t Nq, int64_t Nk, int64_t *ntiles) {
    int64_t T = ATT_TILE_BYTES / (Nk * (int64_t)sizeof(float));
    T = T < ATT_MIN_TILE ? ATT_MIN_TILE : T > ATT_MAX_TILE ? ATT_MAX_TILE : T / 16 * 16;
    T = T > Nq ? Nq : T;
    *ntiles = (Nq + T - 1) / T;
    return (Nq + *ntiles - 1) / *ntiles;
}

/* Primitives (scores scaled by scale) and buffers, the head-major copies included; 0 when everything is ready. */
static int prepare(is_dnn *d, int64_t Nq, int64_t Nk, int64_t heads, int64_t dh, float scale, att_plan *a) {
    int64_t T = a->T = tile_rows(Nq, Nk, &a->ntiles);
    a->qk = product(d, DNN_ATT_QK, T, Nk, dh, scale);
    a->pv = product(d, DNN_ATT_PV, T, dh, Nk, 1.0f);
    if (!a->qk || !a->pv || dnn_prim_threaded(d, a->qk) || dnn_prim_threaded(d, a->pv)) return -1;
    a->k_in = operand_reorder(d, a->qk, dh, Nk, dnnl_ba, &a->k_bytes);
    a->v_in = operand_reorder(d, a->pv, Nk, dh, dnnl_ab, &a->v_bytes);
    if (!a->k_in || !a->v_in) return -1;
    size_t th = (size_t)d->threads, HD = (size_t)(heads * dh), Nq_pad = (size_t)(a->ntiles * T);
    if (!dnn_buf_get(&d->att_q, Nq_pad * HD * 2) || !dnn_buf_get(&d->att_k, (size_t)Nk * HD * 2) ||
        !dnn_buf_get(&d->att_v, (size_t)Nk * HD * 2) || !dnn_buf_get(&d->att_kb, (size_t)heads * a->k_bytes) ||
        !dnn_buf_get(&d->att_vb, (size_t)heads * a->v_bytes) ||
        !dnn_buf_get(&d->att_s, th * (size_t)(T * Nk) * 4) || !dnn_buf_get(&d->att_p, th * (size_t)(T * Nk) * 2) ||
        !dnn_buf_get(&d->att_o, th * (size_t)(T * dh) * 4) || !dnn_buf_get(&d->att_sum, th * (size_t)T * 4))
        return -1;
    return 0;
}

/* Rows of S (already scaled): p = exp(s - max) rounded to bf16 into P, and the row sums (of the unrounded
 * values; the output is divided by them after the product). */
static void softmax_rows(const float *S, uint16_t *P, float *sums, int64_t rows, int64_t Nk) {
    for (int64_t r = 0; r < rows; r++) {
        const float *s = S + r * Nk;
        sums[r] = is_v_softmax_row_bf16(s, P + r * Nk, Nk);
    }
}

/* out (+)= alpha * softmax(Q K^T) V from the head-major copies in d->att_q, att_k, att_v, with a's primitives;
 * 0 on success (-1 cannot happen once they exist). */
static int attend(is_dnn *d, const att_plan *a, float *out, int64_t ldo, int64_t Nq, int64_t Nk, int64_t heads,
                  int64_t dh, float alpha, int accumulate) {
    const int64_t T = a->T, ntiles = a->ntiles, Nq_pad = ntiles * T, jobs = heads * ntiles;
    uint16_t *qb = d->att_q.p, *kb = d->att_k.p, *vb = d->att_v.p;
    char *kblk = d->att_kb.p, *vblk = d->att_vb.p;
    for (int64_t h = 0; h < heads; h++)
        if (dnn_prim_run(d, a->k_in, kb + h * Nk * dh, NULL, NULL, kblk + h * a->k_bytes) ||
            dnn_prim_run(d, a->v_in, vb + h * Nk * dh, NULL, NULL, vblk + h * a->v_bytes))
            return -1;
    int failed = 0;
#pragma omp parallel for schedule(dynamic) num_threads(d->threads) reduction(| : failed)
    for (int64_t job = 0; job < jobs; job++) {
        int t = omp_get_thread_num();
        int64_t h = job / ntiles, t0 = job % ntiles * T, rows = Nq - t0 < T ? Nq - t0 : T;
        float *S = (float *)d->att_s.p + t * T * Nk, *O = (float *)d->att_o.p + t * T * dh;
        float *sums = (float *)d->att_sum.p + t * T;
        uint16_t *P = (uint16_t *)d->att_p.p + t * T * Nk;
        if (dnn_prim_run_thread(d, a->qk, t, qb + (h * Nq_pad + t0) * dh, kblk + h * a->k_bytes, NULL, S)) {
            failed |= 1;
            continue;
        }
        softmax_rows(S, P, sums, rows, Nk);
        if (dnn_prim_run_thread(d, a->pv, t, P, vblk + h * a->v_bytes, NULL, O)) {
            failed |= 1;
            continue;
        }
        for (int64_t r = 0; r < rows; r++) {
            float f = alpha / sums[r], *o = out + (t0 + r) * ldo + h * dh;
            const float *src = O + r * dh;
            if (accumulate)
                for (int64_t j = 0; j < dh; j++) o[j] += f * src[j];
            else
                for (int64_t j = 0; j < dh; j++) o[j] = f * src[j];
        }
    }
    return failed ? -1 : 0;
}

void is_dnn_attention(is_dnn *d, float *out, int64_t ldo, const float *q, int64_t ldq, const float *k, int64_t ldk,
                      const float *v, int64_t ldv, int64_t Nq, int64_t Nk, int64_t heads, int64_t dh, int causal,
                      float alpha, int accumulate) {
    att_plan a;
    if (!d || causal || Nk < ATT_MIN_KEYS || Nq <= 0 || prepare(d, Nq, Nk, heads, dh, 1.0f, &a)) {
        if (d && !causal && Nk >= ATT_MIN_KEYS && Nq > 0) d->fallbacks++;
        is_k_attention(out, ldo, q, ldq, k, ldk, v, ldv, Nq, Nk, heads, dh, causal, alpha, accumulate);
        return;
    }
    const int64_t HD = heads * dh;
    /* The 1/sqrt(dh) scale rides on the queries' conversion (one rounding, as for any bf16 operand). */
    to_head_major(d->att_q.p, a.ntiles * a.T, q, ldq, Nq, heads, dh, 1.0f / sqrtf((float)dh));
    to_head_major(d->att_k.p, Nk, k, ldk, Nk, heads, dh, 1.0f);
    to_head_major(d->att_v.p, Nk, v, ldv, Nk, heads, dh, 1.0f);
    if (attend(d, &a, out, ldo, Nq, Nk, heads, dh, alpha, accumulate)) {
        d->fallbacks++; /* cannot happen once the primitives exist */
        is_k_attention(out, ldo, q, ldq, k, ldk, v, ldv, Nq, Nk, heads, dh, causal, alpha, accumulate);
        return;
    }
    is_flops_add(4.0 * (double)Nq * (double)Nk * (double)HD);
}

/* The stacked product in f32, then is_dnn_attention per item (which takes the f32 kernel for few keys). */
static int self_attention_f32_operands(is_dnn *d, float *out, const float *x, int64_t B, int64_t N,
                                       const is_tensor *Wqkv, int64_t heads, int64_t dh) {
    const int64_t HD = heads * dh, ld = 3 * HD;
    float *qkv = dnn_buf_get(&d->att_qkv, (size_t)(B * N * ld) * sizeof(float));
    if (!qkv || is_dnn_linear_packed(d, qkv, x, B * N, Wqkv)) return -1;
    for (int64_t b = 0; b < B; b++) {
        const float *q = qkv + b * N * ld;
        is_dnn_attention(d, out + b * N * HD, HD, q, ld, q + HD, ld, q + 2 * HD, ld, N, N, heads, dh, 0, 1.0f, 0);
    }
    return 0;
}

int is_dnn_self_attention(is_dnn *d, float *out, const float *x, int64_t B, int64_t N, const is_tensor *Wqkv,
                          int64_t heads, int64_t dh) {
    const int64_t HD = heads * dh, ld = 3 * HD, M = B * N;
    att_plan a;
    if (!d || B <= 0 || N <= 0 || Wqkv->ndim != 2 || Wqkv->shape[0] != ld || !dnn_find_pack(d, Wqkv)) return -1;
    if (N < ATT_MIN_KEYS || prepare(d, N, N, heads, dh, 1.0f / sqrtf((float)dh), &a))
        return self_attention_f32_operands(d, out, x, B, N, Wqkv, heads, dh);
    uint16_t *qkv = dnn_buf_get(&d->att_qkv, (size_t)(M * ld) * 2);
    if (!qkv || is_dnn_linear_packed_bf16(d, qkv, x, M, Wqkv)) return -1;
    for (int64_t b = 0; b < B; b++) {
        const uint16_t *rows = qkv + b * N * ld;
        bf16_head_major(d->att_q.p, a.ntiles * a.T, rows, ld, N, heads, dh);
        bf16_head_major(d->att_k.p, N, rows + HD, ld, N, heads, dh);
        bf16_head_major(d->att_v.p, N, rows + 2 * HD, ld, N, heads, dh);
        if (attend(d, &a, out + b * N * HD, HD, N, N, heads, dh, 1.0f, 0)) {
            d->fallbacks++; /* cannot happen once the primitives exist; the caller computes it again */
            return -1;
        }
    }
    is_flops_add(4.0 * (double)M * (double)N * (double)HD);
    return 0;
}
