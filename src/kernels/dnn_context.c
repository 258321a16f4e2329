/* The bf16 context: engine and stream, packed-weight table, primitive cache and buffers. */
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "kernels/dnn_internal.h"

is_error *is_dnn_create(is_dnn **out) {
    *out = NULL;
    if (!is_dnn_has_bf16())
        return is_errorf(IS_E_UNSUPPORTED, "bf16 needs AVX512-BF16 or AMX; oneDNN finds %s on this CPU",
                         is_dnn_isa_name());
    is_dnn *d = calloc(1, sizeof *d);
    if (!d) return is_error_oom("bf16 context");
    d->threads = omp_get_max_threads();
    d->tstreams = calloc((size_t)d->threads, sizeof *d->tstreams);
    d->tscratch = calloc((size_t)d->threads, sizeof *d->tscratch);
    int ok = d->tstreams && d->tscratch && dnnl_engine_create(&d->engine, dnnl_cpu, 0) == dnnl_success &&
             dnnl_stream_create(&d->stream, d->engine, dnnl_stream_default_flags) == dnnl_success;
    for (int t = 0; ok && t < d->threads; t++)
        ok = dnnl_stream_create(&d->tstreams[t], d->engine, dnnl_stream_default_flags) == dnnl_success;
    if (!ok) {
        is_dnn_free(d);
        return is_errorf(IS_E_INTERNAL, "oneDNN: could not create a CPU engine and its streams");
    }
    *out = d;
    return NULL;
}

void *dnn_alloc(size_t bytes) {
    void *p = mmap(NULL, bytes ? bytes : 1, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    return p == MAP_FAILED ? NULL : p;
}

void dnn_dealloc(void *p, size_t bytes) {
    if (p) munmap(p, bytes ? bytes : 1);
}

void dnn_buf_release(dnn_buf *b) {
    dnn_dealloc(b->p, b->bytes);
    b->p = NULL, b->bytes = 0;
}

void is_dnn_free(is_dnn *d) {
    if (!d) return;
    for (size_t i = 0; i < d->pack_cap; i++) dnn_dealloc(d->packs[i].data, d->packs[i].bytes);
    free(d->packs);
    for (size_t i = 0; i < d->n_prims; i++) {
        dnn_prim *p = d->prims[i];
        for (int a = 0; a < DNN_N_ARGS; a++)
            if (p->mem[a]) dnnl_memory_destroy(p->mem[a]);
        for (int m = 0; p->tmem && m < d->threads * DNN_N_ARGS; m++)
            if (p->tmem[m]) dnnl_memory_destroy(p->tmem[m]);
        free(p->tmem);
        if (p->prim) dnnl_primitive_destroy(p->prim);
        free(p);
    }
    free(d->prims);
    dnn_buf *bufs[] = {&d->scratchpad, &d->src,   &d->dst,   &d->bias,  &d->att_s,   &d->att_p,   &d->att_o,
                       &d->att_q,      &d->att_k, &d->att_v, &d->att_kb, &d->att_vb, &d->att_sum, &d->att_qkv,
                       &d->rowbuf,     &d->pack_tmp, &d->wstream};
    for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++) dnn_buf_release(bufs[i]);
    for (int t = 0; t < d->threads; t++) {
        if (d->tstreams && d->tstreams[t]) dnnl_stream_destroy(d->tstreams[t]);
        if (d->tscratch) dnn_buf_release(&d->tscratch[t]);
    }
    free(d->tstreams);
    free(d->tscratch);
    if (d->stream) dnnl_stream_destroy(d->stream);
    if (d->engine) dnnl_engine_destroy(d->engine);
    free(d);
}

void *dnn_buf_get(dnn_buf *b, size_t n) {
    if (b->bytes >= n) return b->p;
    size_t bytes = (n + 63) / 64 * 64;
    dnn_dealloc(b->p, b->bytes);
    b->p = dnn_alloc(bytes);
    b->bytes = b->p ? bytes : 0;
    return b->p;
}

static size_t ptr_hash(const void *p, size_t cap) {
    uint64_t x = (uint64_t)(uintptr_t)p;
    x ^= x >> 33, x *= 0xff51afd7ed558ccdull, x ^= x >> 33;
    return (size_t)x & (cap - 1);
}

const dnn_pack *dnn_find_pack(const is_dnn *d, const is_tensor *w) {
    if (!d || !d->pack_n || !w) return NULL;
    for (size_t i = ptr_hash(w, d->pack_cap);; i = (i + 1) & (d->pack_cap - 1)) {
        if (d->packs[i].key == w) return &d->packs[i];
        if (!d->packs[i].key) return NULL;
    }
}

int is_dnn_is_packed(const is_dnn *d, const is_tensor *w) { return dnn_find_pack(d, w) != NULL; }
size_t is_dnn_packed_bytes(const is_dnn *d) { return d ? d->packed_bytes : 0; }
int64_t is_dnn_fallbacks(const is_dnn *d) { return d ? d->fallbacks : 0; }

is_error *dnn_pack_insert(is_dnn *d, const is_tensor *w, const is_tensor *const *src, int nsrc, void *data, size_t bytes,
                          const dnnl_memory_desc_t *md) {
    if (nsrc < 1 || nsrc > IS_DNN_PACK_MAX_SOURCES) return is_errorf(IS_E_INTERNAL, "bf16 weight '%s': %d sources", w->name, nsrc);
    if (2 * (d->pack_n + 1) > d->pack_cap) {
        size_t cap = d->pack_cap ? 2 * d->pack_cap : 256;
        dnn_pack *t = calloc(cap, sizeof *t);
        if (!t) return is_error_oom("bf16 weight table");
        for (size_t i = 0; i < d->pack_cap; i++) {
            if (!d->packs[i].key) continue;
            size_t j = ptr_hash(d->packs[i].key, cap);
            while (t[j].key) j = (j + 1) & (cap - 1);
            t[j] = d->packs[i];
        }
        free(d->packs);
        d->packs = t, d->pack_cap = cap;
    }
    size_t j = ptr_hash(w, d->pack_cap);
    while (d->packs[j].key) j = (j + 1) & (d->pack_cap - 1);
    d->packs[j] = (dnn_pack){.key = w, .nsrc = nsrc, .data = data, .bytes = bytes, .md = *md};
    for (int i = 0; i < nsrc; i++) d->packs[j].src[i] = src[i];
    d->pack_n++;
    d->packed_bytes += dnnl_memory_desc_get_size(md);
    return NULL;
}

dnnl_primitive_attr_t dnn_attr(void) {
    dnnl_primitive_attr_t attr = NULL;
    if (dnnl_primitive_attr_create(&attr) != dnnl_success) return NULL;
    dnnl_primitive_attr_set_scratchpad_mode(attr, dnnl_scratchpad_mode_user);
    return attr;
}

dnnl_primitive_desc_t dnn_conv_pd(is_dnn *d, const dnnl_convolution_desc_t *op, int kernel_1x1) {
    dnnl_primitive_attr_t attr = dnn_attr();
    dnnl_primitive_desc_iterator_t it = NULL;
    dnnl_primitive_desc_t pd = NULL;
    if (attr && dnnl_primitive_desc_iterator_create(&it, op, attr, d->engine, NULL) == dnnl_success) {
        do {
            dnnl_primitive_desc_t cand = dnnl_primitive_desc_iterator_fetch(it);
            const char *impl = NULL;
            if (cand) dnnl_primitive_desc_query(cand, dnnl_query_impl_info_str, 0, &impl);
            if (cand && impl && (kernel_1x1 || strncmp(impl, "brgconv:avx512_core_amx", 23))) {
                pd = cand;
                break;
            }
            if (cand) dnnl_primitive_desc_destroy(cand);
        } while (dnnl_primitive_desc_iterator_next(it) == dnnl_success);
        dnnl_primitive_desc_iterator_destroy(it);
    }
    if (attr) dnnl_primitive_attr_destroy(attr);
    return pd;
}

dnn_prim *dnn_prim_find(is_dnn *d, const int64_t *key, const dnnl_memory_desc_t *wmd) {
    for (size_t i = 0; i < d->n_prims; i++) {
        dnn_prim *p = d->prims[i];
        if (memcmp(p->key, key, sizeof p->key)) continue;
        if (wmd && !dnnl_memory_desc_equal(&p->wmd, wmd)) continue;
        return p;
    }
    return NULL;
}

static const dnnl_query_t arg_query[DNN_N_ARGS] = {dnnl_query_src_md, dnnl_query_weights_md, dnnl_query_weights_md,
                                                   dnnl_query_dst_md, dnnl_query_scratchpad_md};

dnn_prim *dnn_prim_add(is_dnn *d, const int64_t *key, const dnnl_memory_desc_t *wmd, dnnl_primitive_desc_t pd) {
    if (d->n_prims == d->cap_prims) {
        size_t cap = d->cap_prims ? 2 * d->cap_prims : 64;
        dnn_prim **t = realloc(d->prims, cap * sizeof *t);
        if (!t) {
            if (pd) dnnl_primitive_desc_destroy(pd);
            return NULL;
        }
        d->prims = t, d->cap_prims = cap;
    }
    dnn_prim *p = calloc(1, sizeof *p);
    if (!p) {
        if (pd) dnnl_primitive_desc_destroy(pd);
        return NULL;
    }
    memcpy(p->key, key, sizeof p->key);
    if (wmd) p->wmd = *wmd;
    d->prims[d->n_prims++] = p;
    if (!pd) return p;
    const char *impl = NULL;
    dnnl_primitive_desc_query(pd, dnnl_query_impl_info_str, 0, &impl);
    /* "ref" implementations are unoptimised loops: slower than the f32 path, so never used for the
     * operations (weight reorders at load may use them). */
    int reject = key[0] != DNN_REORDER && impl && strstr(impl, "ref") != NULL;
    if (impl && !reject && dnnl_primitive_create(&p->prim, pd) == dnnl_success) {
        p->ok = 1;
        /* The implementation name is static in oneDNN (it outlives the primitive descriptor). */
        p->impl = impl;
        int idx[DNN_N_ARGS] = {0, 0, 1, 0, 0};
        for (int a = 0; a < DNN_N_ARGS && p->ok; a++) {
            const dnnl_memory_desc_t *md = dnnl_primitive_desc_query_md(pd, arg_query[a], idx[a]);
            if (!md || md->ndims == 0) continue; /* absent argument (no bias, empty scratchpad) */
            if (a == DNN_ARG_SCRATCH) p->scratch_bytes = dnnl_memory_desc_get_size(md);
            if (a == DNN_ARG_SCRATCH && !dnn_buf_get(&d->scratchpad, p->scratch_bytes)) p->ok = 0;
            if (dnnl_memory_create(&p->mem[a], md, d->engine, DNNL_MEMORY_NONE) != dnnl_success) p->ok = 0;
        }
    }
    dnnl_primitive_desc_destroy(pd);
    return p;
}

/* Execute prim on stream with the memory objects mem (absent arguments NULL) bound to the pointers. */
static int execute(dnnl_primitive_t prim, dnnl_stream_t stream, dnnl_memory_t *mem, void *const *ptr) {
    static const int arg_id[DNN_N_ARGS] = {DNNL_ARG_SRC, DNNL_ARG_WEIGHTS, DNNL_ARG_BIAS, DNNL_ARG_DST,
                                           DNNL_ARG_SCRATCHPAD};
    dnnl_exec_arg_t args[DNN_N_ARGS];
    int n = 0;
    for (int a = 0; a < DNN_N_ARGS; a++) {
        if (!mem[a]) continue;
        if (dnnl_memory_set_data_handle(mem[a], ptr[a]) != dnnl_success) return -1;
        args[n++] = (dnnl_exec_arg_t){arg_id[a], mem[a]};
    }
    if (dnnl_primitive_execute(prim, stream, n, args) != dnnl_success) return -1;
    return dnnl_stream_wait(stream) == dnnl_success ? 0 : -1;
}

int dnn_prim_run(is_dnn *d, dnn_prim *p, void *src, const void *wei, const void *bias, void *dst) {
    void *ptr[DNN_N_ARGS] = {src, (void *)wei, (void *)bias, dst, d->scratchpad.p};
    return execute(p->prim, d->stream, p->mem, ptr);
}

int dnn_prim_threaded(is_dnn *d, dnn_prim *p) {
    if (p->tmem) return 0;
    if (!p->ok) return -1;
    p->tmem = calloc((size_t)(d->threads * DNN_N_ARGS), sizeof *p->tmem);
    if (!p->tmem) return -1;
    for (int t = 0; t < d->threads; t++) {
        if (p->scratch_bytes && !dnn_buf_get(&d->tscratch[t], p->scratch_bytes)) return -1;
        for (int a = 0; a < DNN_N_ARGS; a++) {
            if (!p->mem[a]) continue;
            const dnnl_memory_desc_t *md = NULL;
            if (dnnl_memory_get_memory_desc(p->mem[a], &md) != dnnl_success ||
                dnnl_memory_create(&p->tmem[t * DNN_N_ARGS + a], md, d->engine, DNNL_MEMORY_NONE) != dnnl_success)
                return -1;
        }
    }
    return 0;
}

int dnn_prim_run_thread(is_dnn *d, dnn_prim *p, int t, void *src, const void *wei, const void *bias, void *dst) {
    void *ptr[DNN_N_ARGS] = {src, (void *)wei, (void *)bias, dst, d->tscratch[t].p};
    return execute(p->prim, d->tstreams[t], p->tmem + t * DNN_N_ARGS, ptr);
}

const float *dnn_bias_f32(is_dnn *d, const is_tensor *bias, int64_t n) {
    if (!bias) return NULL;
    float *b = dnn_buf_get(&d->bias, (size_t)n * sizeof(float));
    if (b) is_tensor_to_f32(bias, b);
    return b;
}
