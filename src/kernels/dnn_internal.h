/* Inside the bf16 path (dnn_*.c): the context, its packed weights and its primitive cache. */
#ifndef IS_KERNELS_DNN_INTERNAL_H
#define IS_KERNELS_DNN_INTERNAL_H

#include <oneapi/dnnl/dnnl.h>

#include "kernels/dnn.h"

/* A weight converted to bf16 and reordered into the layout its primitives prefer. */
typedef struct {
    const is_tensor *key;  /* the tensor it was packed from (NULL: empty slot) */
    const is_tensor *src[IS_DNN_PACK_MAX_SOURCES]; /* whose values it holds: key itself, or the stacked parts */
    int nsrc;
    void *data;
    size_t bytes;          /* allocated for data (dnn_alloc) */
    dnnl_memory_desc_t md; /* the packed layout */
} dnn_pack;

/* A buffer that grows and is kept. */
typedef struct {
    void *p;
    size_t bytes;
} dnn_buf;

enum { DNN_ARG_SRC, DNN_ARG_WEI, DNN_ARG_BIAS, DNN_ARG_DST, DNN_ARG_SCRATCH, DNN_N_ARGS };

/* One primitive for one shape, created on first use and kept. ok == 0 records a shape no bf16
 * primitive accepts (the op then runs in f32). */
#define DNN_KEY_N 14
typedef struct {
    int64_t key[DNN_KEY_N];
    dnnl_memory_desc_t wmd; /* weights layout it was created for (packed ones) */
    int ok;
    dnnl_primitive_t prim;
    dnnl_memory_t mem[DNN_N_ARGS];
    dnnl_memory_t *tmem;    /* [threads][DNN_N_ARGS]: for runs from inside a parallel region (dnn_prim_threaded) */
    size_t scratch_bytes;
    const char *impl;
} dnn_prim;

struct is_dnn {
    dnnl_engine_t engine;
    dnnl_stream_t stream;
    dnn_pack *packs;          /* open addressing on the tensor pointer */
    size_t pack_cap, pack_n, packed_bytes;
    dnn_prim **prims;
    size_t n_prims, cap_prims;
    dnn_buf scratchpad, src, dst, bias, rowbuf, pack_tmp;
    /* Streamed weights (is_dnn_apply_precision's first use of a network run once per generation): a weight
     * with no pack is rounded into `wstream` in plain [N, K] order for each product instead of running in
     * f32; streaming ends when the network is packed. */
    int streaming;
    dnn_buf wstream;
    dnn_buf att_s, att_p, att_o, att_q, att_k, att_v, att_kb, att_vb, att_sum, att_qkv; /* dnn_attention.c */
    int64_t fallbacks;
    /* Per OpenMP thread, for primitives run one per thread inside a parallel region (oneDNN then runs
     * them single-threaded): a stream and a scratchpad each. */
    int threads;
    dnnl_stream_t *tstreams;
    dnn_buf *tscratch;
};

/* Key kinds. */
enum { DNN_MATMUL = 1, DNN_CONV, DNN_ATT_QK, DNN_ATT_PV, DNN_REORDER };

const dnn_pack *dnn_find_pack(const is_dnn *d, const is_tensor *w);
/* Add w's packed data (dnn_alloc'ed, bytes long, layout md; made from the values of src[0..nsrc)) to the table,
 * which grows at half load. */
is_error *dnn_pack_insert(is_dnn *d, const is_tensor *w, const is_tensor *const *src, int nsrc, void *data, size_t bytes,
                          const dnnl_memory_desc_t *md);
/* Move w's packed data into layout md (when a primitive of another shape wants another blocking:
 * convolutions choose theirs by image width). Returns the updated pack, or NULL on failure. */
const dnn_pack *dnn_pack_relayout(is_dnn *d, const is_tensor *w, const dnnl_memory_desc_t *md);
/* Memory of packed weights and buffers, straight from the kernel (mmap): returned to the system when
 * freed, so a network's packed weights leave the resident set with the network (glibc would keep
 * large freed blocks in its heap once its mmap threshold has adapted). Page-aligned; NULL on failure. */
void *dnn_alloc(size_t bytes);
void dnn_dealloc(void *p, size_t bytes);

/* Grow b to at least n bytes (64-byte aligned; contents not kept). NULL when out of memory. */
void *dnn_buf_get(dnn_buf *b, size_t n);
void dnn_buf_release(dnn_buf *b);
/* The cached primitive for key (+ weights layout wmd, may be NULL), or NULL if it is not cached yet. */
dnn_prim *dnn_prim_find(is_dnn *d, const int64_t *key, const dnnl_memory_desc_t *wmd);
/* Create and cache the primitive of pd (taking ownership of pd; pd NULL caches a failure). Rejects
 * reference (unoptimised) implementations. Returns the entry, whose ok says whether it is usable. */
dnn_prim *dnn_prim_add(is_dnn *d, const int64_t *key, const dnnl_memory_desc_t *wmd, dnnl_primitive_desc_t pd);
/* Run p with the given buffers (NULL for absent arguments); 0 on success. */
int dnn_prim_run(is_dnn *d, dnn_prim *p, void *src, const void *wei, const void *bias, void *dst);
/* Give p per-thread memory objects and scratchpads so threads 0..d->threads-1 may each run it at once;
 * 0 on success. */
int dnn_prim_threaded(is_dnn *d, dnn_prim *p);
/* Run p on the calling thread (number t, inside a parallel region) with its own stream and scratchpad. */
int dnn_prim_run_thread(is_dnn *d, dnn_prim *p, int t, void *src, const void *wei, const void *bias, void *dst);
/* The primitive descriptor of convolution op (user-managed scratchpad), or NULL when none fits. For
 * kernels larger than 1x1 it passes over oneDNN 2.6.3's AMX "brgconv": creating that primitive reads
 * one element past a heap array (seen under Electric Fence on every 3x3 shape, and as crashes of the
 * sanitizer build); the next in line, jit:avx512_core_amx_bf16, measured as fast. */
dnnl_primitive_desc_t dnn_conv_pd(is_dnn *d, const dnnl_convolution_desc_t *op, int kernel_1x1);
/* A plain attribute: user-managed scratchpad. */
dnnl_primitive_attr_t dnn_attr(void);

/* Bias of n outputs as f32 in d's buffer (NULL when bias is NULL or out of memory: check bias). */
const float *dnn_bias_f32(is_dnn *d, const is_tensor *bias, int64_t n);

/* Whether a weight's stored dtype is one bf16 packing (or streaming) reads: f32, f16 or bf16. */
static inline int dnn_float_dtype(is_dtype dt) { return dt == IS_DT_F32 || dt == IS_DT_F16 || dt == IS_DT_BF16; }

/* The values of src[0..n) one after the other, from their stored dtype, rounded as is_f32_to_bf16 (dnn_convert.c,
 * parallel over chunks; no f32 copy of a whole weight while packing). */
void is_tensors_to_bf16(uint16_t *dst, const is_tensor *const *src, int n);

#endif
