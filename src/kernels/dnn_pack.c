/* Weights into bf16, reordered once into the layout oneDNN's bf16 kernels read (blocked for AMX /
 * AVX512-BF16). The layout is the one a primitive of a representative shape asks for; primitives of
 * other shapes are then created for exactly that layout. Linear [N, K] is the matmul's weights
 * [K, N] in "ba" order; Conv2d [Cout, Cin, kh, kw] is "oihw". */
#include <stdlib.h>
#include <string.h>

#include "kernels/dnn_internal.h"


/* Representative geometry for the layout query: rows of a linear's input; spatial size of a conv. */
#define PACK_ROWS 256
#define PACK_SPATIAL 64

/* The convolution geometry packing assumes for a kernel of size k: same-size 3x3 / 1x1 convolutions,
 * and patch embeddings (k > 3, stride k). */
static void conv_geometry(int64_t k, int *stride, int *pad) {
    *stride = k > 3 ? (int)k : 1;
    *pad = k > 3 ? 0 : (int)(k / 2);
}

/* Weights layout a primitive of the representative shape prefers (written to *md). */
static int preferred_layout(is_dnn *d, const is_tensor *w, dnnl_memory_desc_t *md) {
    dnnl_memory_desc_t src, wei, dst;
    dnnl_primitive_desc_t pd = NULL;
    dnnl_primitive_attr_t attr = dnn_attr();
    dnnl_status_t st;
    if (w->ndim == 2) {
        int64_t N = w->shape[0], K = w->shape[1];
        dnnl_dims_t sd = {PACK_ROWS, K}, wd = {K, N}, dd = {PACK_ROWS, N};
        dnnl_memory_desc_init_by_tag(&src, 2, sd, dnnl_bf16, dnnl_ab);
        dnnl_memory_desc_init_by_tag(&wei, 2, wd, dnnl_bf16, dnnl_format_tag_any);
        dnnl_memory_desc_init_by_tag(&dst, 2, dd, dnnl_f32, dnnl_ab);
        dnnl_matmul_desc_t op;
        st = dnnl_matmul_desc_init(&op, &src, &wei, NULL, &dst);
        if (st == dnnl_success) st = dnnl_primitive_desc_create(&pd, &op, attr, d->engine, NULL);
    } else {
        int64_t O = w->shape[0], I = w->shape[1], kh = w->shape[2], kw = w->shape[3];
        int s, p;
        conv_geometry(kh, &s, &p);
        int64_t H = kh > 3 ? kh * 16 : PACK_SPATIAL, Wd = kw > 3 ? kw * 16 : PACK_SPATIAL;
        int64_t Ho = (H + 2 * p - kh) / s + 1, Wo = (Wd + 2 * p - kw) / s + 1;
        dnnl_dims_t sd = {1, I, H, Wd}, wd = {O, I, kh, kw}, dd = {1, O, Ho, Wo}, sv = {s, s}, pv = {p, p};
        dnnl_memory_desc_init_by_tag(&src, 4, sd, dnnl_bf16, dnnl_nhwc);
        dnnl_memory_desc_init_by_tag(&wei, 4, wd, dnnl_bf16, dnnl_format_tag_any);
        dnnl_memory_desc_init_by_tag(&dst, 4, dd, dnnl_f32, dnnl_nhwc);
        dnnl_convolution_desc_t op;
        st = dnnl_convolution_forward_desc_init(&op, dnnl_forward_inference, dnnl_convolution_direct, &src, &wei,
                                                NULL, &dst, sv, pv, pv);
        if (st == dnnl_success && !(pd = dnn_conv_pd(d, &op, kh == 1 && kw == 1))) st = dnnl_unimplemented;
    }
    if (attr) dnnl_primitive_attr_destroy(attr);
    if (st != dnnl_success || !pd) return -1;
    const dnnl_memory_desc_t *q = dnnl_primitive_desc_query_md(pd, dnnl_query_weights_md, 0);
    *md = *q;
    dnnl_primitive_desc_destroy(pd);
    return 0;
}

/* The values of src[0..n) one after the other (rows of a stacked weight), in bf16, reordered into `data` of
 * layout md: w is the key (its shape decides the plain layout). */
static is_error *convert_into(is_dnn *d, const is_tensor *w, const is_tensor *const *src, int n,
                              const dnnl_memory_desc_t *md, void *data) {
    dnnl_memory_desc_t plain;
    if (w->ndim == 2) {
        dnnl_dims_t wd = {w->shape[1], w->shape[0]};
        dnnl_memory_desc_init_by_tag(&plain, 2, wd, dnnl_bf16, dnnl_ba);
    } else {
        dnnl_dims_t wd = {w->shape[0], w->shape[1], w->shape[2], w->shape[3]};
        dnnl_memory_desc_init_by_tag(&plain, 4, wd, dnnl_bf16, dnnl_oihw);
    }
    uint16_t *bf = dnn_buf_get(&d->pack_tmp, (size_t)w->numel * sizeof(uint16_t));
    if (!bf) return is_errorf(IS_E_NOMEM, "%s: out of memory packing tensor '%s' for bf16", w->file, w->name);
    /* stored dtype -> bf16 (plain), then oneDNN reorders into the packed layout. */
    is_tensors_to_bf16(bf, src, n);
    int64_t key[DNN_KEY_N] = {DNN_REORDER, w->ndim, w->shape[0], w->shape[1], w->ndim == 4 ? w->shape[2] : 0,
                              w->ndim == 4 ? w->shape[3] : 0};
    dnn_prim *r = dnn_prim_find(d, key, md);
    if (!r) {
        dnnl_primitive_desc_t pd = NULL;
        if (dnnl_reorder_primitive_desc_create(&pd, &plain, d->engine, md, d->engine, NULL) != dnnl_success) pd = NULL;
        r = dnn_prim_add(d, key, md, pd);
    }
    if (!r || !r->ok || dnn_prim_run(d, r, bf, NULL, NULL, data))
        return is_errorf(IS_E_INTERNAL, "%s: oneDNN could not reorder tensor '%s' into its bf16 layout", w->file, w->name);
    return NULL;
}

/* Pack w, whose values are w's own data or (parts != NULL) the rows of parts[0..nparts) one after the other. */
static is_error *pack(is_dnn *d, const is_st *st, const is_tensor *w, const is_tensor *const *parts, int nparts) {
    if (!d || !w) return is_errorf(IS_E_ARGUMENT, "is_dnn_pack: NULL argument");
    if (dnn_find_pack(d, w)) return NULL;
    if ((w->ndim != 2 && w->ndim != 4) || w->numel <= 0 || !dnn_float_dtype(w->dtype))
        return is_errorf(IS_E_SHAPE, "%s: tensor '%s' cannot be packed for bf16 (needs a 2-D or 4-D float weight)",
                         w->file, w->name);
    dnnl_memory_desc_t packed;
    if (preferred_layout(d, w, &packed))
        return is_errorf(IS_E_UNSUPPORTED, "%s: tensor '%s': oneDNN has no bf16 primitive for its shape", w->file,
                         w->name);
    size_t bytes = dnnl_memory_desc_get_size(&packed);
    void *data = dnn_alloc(bytes);
    if (!data)
        return is_errorf(IS_E_NOMEM, "%s: out of memory packing tensor '%s' for bf16 (%.1f MiB)", w->file, w->name,
                         (double)bytes / (1 << 20));
    const is_tensor *self[1] = {w};
    const is_tensor *const *src = parts ? parts : self;
    int n = parts ? nparts : 1;
    is_error *e = convert_into(d, w, src, n, &packed, data);
    if (!e) e = dnn_pack_insert(d, w, src, n, data, bytes, &packed);
    if (e) {
        dnn_dealloc(data, bytes);
        return e;
    }
    for (int i = 0; i < n; i++) is_st_drop_pages(st, src[i]); /* read again for another stacking */
    return NULL;
}

size_t is_dnn_pack_slots(const is_dnn *d) { return d ? d->pack_cap : 0; }

int is_dnn_pack_sources(const is_dnn *d, size_t slot, const is_tensor **src, int cap) {
    if (!d || slot >= d->pack_cap || !d->packs[slot].key) return 0;
    const dnn_pack *p = &d->packs[slot];
    for (int i = 0; i < p->nsrc && i < cap; i++) src[i] = p->src[i];
    return p->nsrc;
}

is_error *is_dnn_repack(is_dnn *d, const is_st *st, size_t slot) {
    if (!d || slot >= d->pack_cap || !d->packs[slot].key) return is_errorf(IS_E_ARGUMENT, "is_dnn_repack: no such pack");
    dnn_pack *p = &d->packs[slot];
    IS_TRY(convert_into(d, p->key, p->src, p->nsrc, &p->md, p->data)); /* same layout, same buffer */
    for (int i = 0; i < p->nsrc; i++) is_st_drop_pages(st, p->src[i]);
    return NULL;
}

is_error *is_dnn_pack(is_dnn *d, const is_st *st, const is_tensor *w) { return pack(d, st, w, NULL, 0); }

is_error *is_dnn_pack_rows(is_dnn *d, const is_st *st, is_tensor *key, const is_tensor *const *parts, int n,
                           const char *name) {
    if (!d || !key || !parts || n < 1) return is_errorf(IS_E_ARGUMENT, "is_dnn_pack_rows: bad arguments");
    int64_t rows = 0, K = parts[0]->ndim == 2 ? parts[0]->shape[1] : -1;
    for (int i = 0; i < n; i++) {
        if (parts[i]->ndim != 2 || parts[i]->shape[1] != K)
            return is_errorf(IS_E_SHAPE, "%s: tensor '%s' does not stack with '%s' (needs [N, %lld])", parts[i]->file,
                             parts[i]->name, parts[0]->name, (long long)K);
        rows += parts[i]->shape[0];
    }
    *key = (is_tensor){.name = name, .file = parts[0]->file, .dtype = IS_DT_F32, .ndim = 2, .shape = {rows, K},
                       .numel = rows * K};
    return pack(d, st, key, parts, n);
}

/* is_dnn_pack_st, or only its convolution weights (convs_only). */
static is_error *pack_st(is_dnn *d, const is_st *st, int (*keep)(const char *name), int convs_only) {
    for (size_t i = 0; i < is_st_count(st); i++) {
        const is_tensor *t = is_st_at(st, i);
        if ((t->ndim != 2 && t->ndim != 4) || (convs_only && t->ndim != 4) || (keep && !keep(t->name))) continue;
        if (!dnn_float_dtype(t->dtype)) continue;
        IS_TRY(is_dnn_pack(d, st, t));
    }
    dnn_buf_release(&d->pack_tmp); /* conversion buffer of the largest weight: not needed after loading */
    return NULL;
}

is_error *is_dnn_pack_st(is_dnn *d, const is_st *st, int (*keep)(const char *name)) { return pack_st(d, st, keep, 0); }

is_error *is_dnn_apply_precision(is_dnn **slot, is_precision p, const is_st *const *sts, int n,
                                 int (*keep)(const char *name), const char *what, int stream_first) {
    if (is_precision_resolve(p, NULL, 0) == IS_PRECISION_F32) {
        is_dnn_free(*slot);
        *slot = NULL;
        return NULL;
    }
    if (*slot && !(*slot)->streaming) return NULL; /* already packed */
    is_dnn *d = *slot;
    int stream = !d && stream_first; /* convolutions are packed even then: only products stream */
    if (!d) IS_TRY(is_dnn_create(&d));
    is_error *err = NULL;
    for (int i = 0; i < n && !err; i++)
        if (sts[i]) err = pack_st(d, sts[i], keep, stream);
    if (err) {
        is_dnn_free(d);
        *slot = NULL;
        return is_error_wrap(err, "packing the %s's weights for bf16", what);
    }
    d->streaming = stream;
    if (!stream) dnn_buf_release(&d->wstream);
    *slot = d;
    return NULL;
}

int is_dnn_is_streaming(const is_dnn *d) { return d && d->streaming; }

const dnn_pack *dnn_pack_relayout(is_dnn *d, const is_tensor *w, const dnnl_memory_desc_t *md) {
    dnn_pack *p = (dnn_pack *)dnn_find_pack(d, w);
    if (!p) return NULL;
    if (dnnl_memory_desc_equal(&p->md, md)) return p;
    size_t bytes = dnnl_memory_desc_get_size(md);
    void *data = dnn_alloc(bytes);
    dnnl_primitive_desc_t pd = NULL;
    dnnl_primitive_t r = NULL;
    dnnl_memory_t src = NULL, dst = NULL;
    int ok = data && dnnl_reorder_primitive_desc_create(&pd, &p->md, d->engine, md, d->engine, NULL) == dnnl_success &&
             dnnl_primitive_create(&r, pd) == dnnl_success &&
             dnnl_memory_create(&src, &p->md, d->engine, p->data) == dnnl_success &&
             dnnl_memory_create(&dst, md, d->engine, data) == dnnl_success;
    if (ok) {
        dnnl_exec_arg_t args[2] = {{DNNL_ARG_FROM, src}, {DNNL_ARG_TO, dst}};
        ok = dnnl_primitive_execute(r, d->stream, 2, args) == dnnl_success && dnnl_stream_wait(d->stream) == dnnl_success;
    }
    if (src) dnnl_memory_destroy(src);
    if (dst) dnnl_memory_destroy(dst);
    if (r) dnnl_primitive_destroy(r);
    if (pd) dnnl_primitive_desc_destroy(pd);
    if (!ok) {
        dnn_dealloc(data, bytes);
        return NULL;
    }
    d->packed_bytes += bytes - dnnl_memory_desc_get_size(&p->md);
    dnn_dealloc(p->data, p->bytes);
    p->data = data;
    p->bytes = bytes;
    p->md = *md;
    return p;
}

void is_dnn_forget(is_dnn *d, const is_tensor *w) {
    dnn_pack *p = (dnn_pack *)dnn_find_pack(d, w);
    if (!p) return;
    d->packed_bytes -= dnnl_memory_desc_get_size(&p->md);
    dnn_dealloc(p->data, p->bytes);
    *p = (dnn_pack){0};
    d->pack_n--;
    /* Re-insert the rest of the cluster (open addressing has no holes). */
    for (size_t j = (size_t)(p - d->packs + 1) & (d->pack_cap - 1); d->packs[j].key; j = (j + 1) & (d->pack_cap - 1)) {
        dnn_pack moved = d->packs[j];
        d->packs[j] = (dnn_pack){0}; /* the data moves with the entry */
        d->pack_n--;
        d->packed_bytes -= dnnl_memory_desc_get_size(&moved.md);
        dnn_pack_insert(d, moved.key, moved.src, moved.nsrc, moved.data, moved.bytes, &moved.md); /* the table does not grow: cannot fail */
    }
}

void is_dnn_forget_st(is_dnn *d, const is_st *st) {
    if (!d || !st) return;
    for (size_t i = 0; i < is_st_count(st) && d->pack_n; i++) is_dnn_forget(d, is_st_at(st, i));
}

