/* The bf16 ceiling: what oneDNN itself reaches in bf16 on this CPU, measured in the process that then
 * runs a bf16 row (the cores may be shared; the ceiling moves with them). Two products at SDXL shapes:
 *   matmul  M=8192 K=640 N=5760: src bf16 [M,K] row-major, weights bf16 in the layout oneDNN prefers
 *           (format_tag_any, reordered once, not timed), dst f32 [M,N] row-major;
 *   conv3x3 N=2, 640->640 channels, 64x64, pad 1: src bf16 nhwc, weights any, dst f32 nhwc.
 * All threads (OpenMP, as set by is_set_threads), best of reps runs after one warm-up run.
 * oneDNN is called directly (libdnnl is linked through the library's PUBLIC link line). */
#include <oneapi/dnnl/dnnl.h>
#include <oneapi/dnnl/dnnl_debug.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"

const char *bench_dnnl_isa_name(void) {
    switch (dnnl_get_effective_cpu_isa()) {
    case dnnl_cpu_isa_sse41: return "sse41";
    case dnnl_cpu_isa_avx: return "avx";
    case dnnl_cpu_isa_avx2: return "avx2";
    case dnnl_cpu_isa_avx2_vnni: return "avx2_vnni";
    case dnnl_cpu_isa_avx512_mic: return "avx512_mic";
    case dnnl_cpu_isa_avx512_mic_4ops: return "avx512_mic_4ops";
    case dnnl_cpu_isa_avx512_core: return "avx512_core";
    case dnnl_cpu_isa_avx512_core_vnni: return "avx512_core_vnni";
    case dnnl_cpu_isa_avx512_core_bf16: return "avx512_core_bf16";
    case dnnl_cpu_isa_avx512_core_amx: return "avx512_core_amx";
    default: return "unknown";
    }
}

/* Everything one measurement owns; released by ctx_free whatever state it reached. */
typedef struct {
    dnnl_engine_t eng;
    dnnl_stream_t strm;
    dnnl_primitive_desc_t pd, rpd;
    dnnl_primitive_t prim, reorder;
    dnnl_memory_t src, wei_plain, wei, dst;
} ctx;

static void ctx_free(ctx *c) {
    if (c->prim) dnnl_primitive_destroy(c->prim);
    if (c->reorder) dnnl_primitive_destroy(c->reorder);
    if (c->pd) dnnl_primitive_desc_destroy(c->pd);
    if (c->rpd) dnnl_primitive_desc_destroy(c->rpd);
    if (c->src) dnnl_memory_destroy(c->src);
    if (c->wei_plain) dnnl_memory_destroy(c->wei_plain);
    if (c->wei) dnnl_memory_destroy(c->wei);
    if (c->dst) dnnl_memory_destroy(c->dst);
    if (c->strm) dnnl_stream_destroy(c->strm);
    if (c->eng) dnnl_engine_destroy(c->eng);
    memset(c, 0, sizeof *c);
}

/* Fill a plain bf16 buffer with values in [-0.5, 0.5) (truncated f32: the rounding does not matter here). */
static void fill_bf16(dnnl_memory_t m, size_t n, uint32_t seed) {
    void *p = NULL;
    if (dnnl_memory_get_data_handle(m, &p) != dnnl_success || !p) return;
    uint16_t *h = p;
    for (size_t i = 0; i < n; i++) {
        seed = seed * 1664525u + 1013904223u;
        float f = (float)(seed >> 8) / (float)(1u << 24) - 0.5f;
        uint32_t u;
        memcpy(&u, &f, 4);
        h[i] = (uint16_t)(u >> 16);
    }
}

#define DN(call, what)                                                                                      \
    do {                                                                                                    \
        dnnl_status_t s_ = (call);                                                                          \
        if (s_ != dnnl_success) {                                                                           \
            snprintf(err, err_cap, "%s: %s", what, dnnl_status2str(s_));                                    \
            return -1;                                                                                      \
        }                                                                                                   \
    } while (0)

/* Creates the engine, stream and the primitive described by op (weights in the layout it prefers,
 * filled through a reorder from a plain random bf16 tensor of descriptor wei_plain_md). */
static int setup(ctx *c, const_dnnl_op_desc_t op, const dnnl_memory_desc_t *src_md,
                 const dnnl_memory_desc_t *wei_plain_md, const dnnl_memory_desc_t *dst_md, char *impl, size_t impl_cap,
                 char *err, size_t err_cap) {
    DN(dnnl_primitive_desc_create(&c->pd, op, NULL, c->eng, NULL), "no bf16 primitive");
    const char *info = NULL;
    DN(dnnl_primitive_desc_query(c->pd, dnnl_query_impl_info_str, 0, &info), "implementation query");
    snprintf(impl, impl_cap, "%s", info ? info : "?");
    const dnnl_memory_desc_t *wei_md = dnnl_primitive_desc_query_md(c->pd, dnnl_query_weights_md, 0);
    DN(dnnl_memory_create(&c->src, src_md, c->eng, DNNL_MEMORY_ALLOCATE), "source memory");
    DN(dnnl_memory_create(&c->dst, dst_md, c->eng, DNNL_MEMORY_ALLOCATE), "destination memory");
    DN(dnnl_memory_create(&c->wei_plain, wei_plain_md, c->eng, DNNL_MEMORY_ALLOCATE), "weight memory");
    DN(dnnl_memory_create(&c->wei, wei_md, c->eng, DNNL_MEMORY_ALLOCATE), "packed weight memory");
    fill_bf16(c->src, dnnl_memory_desc_get_size(src_md) / 2, 11);
    fill_bf16(c->wei_plain, dnnl_memory_desc_get_size(wei_plain_md) / 2, 13);
    DN(dnnl_reorder_primitive_desc_create(&c->rpd, wei_plain_md, c->eng, wei_md, c->eng, NULL), "weight reorder");
    DN(dnnl_primitive_create(&c->reorder, c->rpd), "weight reorder");
    dnnl_exec_arg_t rargs[2] = {{DNNL_ARG_FROM, c->wei_plain}, {DNNL_ARG_TO, c->wei}};
    DN(dnnl_primitive_execute(c->reorder, c->strm, 2, rargs), "weight reorder");
    DN(dnnl_stream_wait(c->strm), "weight reorder");
    DN(dnnl_primitive_create(&c->prim, c->pd), "primitive");
    return 0;
}

/* Best wall and CPU GFLOP/s of reps runs after one warm-up run. */
static int time_it(ctx *c, double flop, int reps, double *gflops, double *cpu_gflops, char *err, size_t err_cap) {
    dnnl_exec_arg_t args[3] = {{DNNL_ARG_SRC, c->src}, {DNNL_ARG_WEIGHTS, c->wei}, {DNNL_ARG_DST, c->dst}};
    *gflops = *cpu_gflops = 0;
    for (int r = -1; r < reps; r++) {
        double t0 = bench_now(), c0 = bench_cpu_now();
        DN(dnnl_primitive_execute(c->prim, c->strm, 3, args), "execute");
        DN(dnnl_stream_wait(c->strm), "execute");
        double dt = bench_now() - t0, dc = bench_cpu_now() - c0;
        if (r < 0) continue; /* warm-up: the primitive's first run pages in its buffers */
        if (flop / dt * 1e-9 > *gflops) *gflops = flop / dt * 1e-9;
        if (flop / dc * 1e-9 > *cpu_gflops) *cpu_gflops = flop / dc * 1e-9;
    }
    return 0;
}

static int matmul_ceiling(ctx *c, int reps, bench_bf16_ceiling *out, char *err, size_t err_cap) {
    const int64_t M = 8192, K = 640, N = 5760;
    dnnl_memory_desc_t src_md, wei_md, wei_plain_md, dst_md;
    dnnl_dims_t sd = {M, K}, wd = {K, N}, dd = {M, N};
    DN(dnnl_memory_desc_init_by_tag(&src_md, 2, sd, dnnl_bf16, dnnl_ab), "matmul source descriptor");
    DN(dnnl_memory_desc_init_by_tag(&wei_md, 2, wd, dnnl_bf16, dnnl_format_tag_any), "matmul weight descriptor");
    DN(dnnl_memory_desc_init_by_tag(&wei_plain_md, 2, wd, dnnl_bf16, dnnl_ab), "matmul weight descriptor");
    DN(dnnl_memory_desc_init_by_tag(&dst_md, 2, dd, dnnl_f32, dnnl_ab), "matmul destination descriptor");
    dnnl_matmul_desc_t md;
    DN(dnnl_matmul_desc_init(&md, &src_md, &wei_md, NULL, &dst_md), "matmul descriptor");
    if (setup(c, &md, &src_md, &wei_plain_md, &dst_md, out->matmul_impl, sizeof out->matmul_impl, err, err_cap))
        return -1;
    return time_it(c, 2.0 * (double)M * (double)K * (double)N, reps, &out->matmul, &out->matmul_cpu, err, err_cap);
}

static int conv_ceiling(ctx *c, int reps, bench_bf16_ceiling *out, char *err, size_t err_cap) {
    const int64_t B = 2, C = 640, H = 64, W = 64, k = 3;
    dnnl_memory_desc_t src_md, wei_md, wei_plain_md, dst_md;
    dnnl_dims_t sd = {B, C, H, W}, wd = {C, C, k, k}, strides = {1, 1}, pad = {1, 1};
    DN(dnnl_memory_desc_init_by_tag(&src_md, 4, sd, dnnl_bf16, dnnl_nhwc), "conv source descriptor");
    DN(dnnl_memory_desc_init_by_tag(&wei_md, 4, wd, dnnl_bf16, dnnl_format_tag_any), "conv weight descriptor");
    DN(dnnl_memory_desc_init_by_tag(&wei_plain_md, 4, wd, dnnl_bf16, dnnl_oihw), "conv weight descriptor");
    DN(dnnl_memory_desc_init_by_tag(&dst_md, 4, sd, dnnl_f32, dnnl_nhwc), "conv destination descriptor");
    dnnl_convolution_desc_t cd;
    DN(dnnl_convolution_forward_desc_init(&cd, dnnl_forward_inference, dnnl_convolution_direct, &src_md, &wei_md, NULL,
                                          &dst_md, strides, pad, pad),
       "conv descriptor");
    if (setup(c, &cd, &src_md, &wei_plain_md, &dst_md, out->conv_impl, sizeof out->conv_impl, err, err_cap)) return -1;
    return time_it(c, 2.0 * (double)(B * C * H * W) * (double)(C * k * k), reps, &out->conv, &out->conv_cpu, err,
                   err_cap);
}

int bench_bf16_ceiling_measure(int reps, bench_bf16_ceiling *out) {
    memset(out, 0, sizeof *out);
    snprintf(out->isa, sizeof out->isa, "%s", bench_dnnl_isa_name());
    const dnnl_version_t *v = dnnl_version();
    snprintf(out->version, sizeof out->version, "oneDNN %d.%d.%d", v->major, v->minor, v->patch);
    int rc = 0;
    for (int which = 0; which < 2; which++) {
        ctx c;
        memset(&c, 0, sizeof c);
        char err[sizeof out->msg / 2] = "";
        const size_t err_cap = sizeof err;
        int bad = 0;
        dnnl_status_t s = dnnl_engine_create(&c.eng, dnnl_cpu, 0);
        if (s == dnnl_success) s = dnnl_stream_create(&c.strm, c.eng, dnnl_stream_default_flags);
        if (s != dnnl_success) {
            snprintf(err, err_cap, "engine/stream: %s", dnnl_status2str(s));
            bad = 1;
        } else {
            bad = which == 0 ? matmul_ceiling(&c, reps, out, err, err_cap) : conv_ceiling(&c, reps, out, err, err_cap);
        }
        ctx_free(&c);
        if (bad) {
            size_t used = strlen(out->msg);
            snprintf(out->msg + used, sizeof out->msg - used, "%s%s %s", used ? "; " : "", which ? "conv" : "matmul",
                     err);
            rc = -1;
        }
    }
    return rc;
}

void bench_bf16_ceiling_print(const bench_bf16_ceiling *c, int threads) {
    printf("bf16 ceiling (%s, effective ISA %s%s%s, %d threads):\n", c->version, c->isa,
           getenv("ONEDNN_MAX_CPU_ISA") ? ", ONEDNN_MAX_CPU_ISA=" : "",
           getenv("ONEDNN_MAX_CPU_ISA") ? getenv("ONEDNN_MAX_CPU_ISA") : "", threads);
    if (c->matmul > 0)
        printf("  matmul 8192x640x5760 (bf16 x bf16 -> f32): %.1f GFLOP/s  [%s]\n", c->matmul, c->matmul_impl);
    if (c->conv > 0)
        printf("  conv3x3 2x640x64x64 -> 640 (bf16 nhwc -> f32 nhwc): %.1f GFLOP/s  [%s]\n", c->conv, c->conv_impl);
    if (c->msg[0]) printf("  not measured: %s\n", c->msg);
}
