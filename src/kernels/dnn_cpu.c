/* Which precision runs here. bf16 needs oneDNN to find bf16 instructions (AVX512-BF16 or AMX);
 * AMX is always faster than f32. With AVX512-BF16 alone it depends on the CPU (about 2x faster
 * than f32 on AMD Zen 4, slower on Intel Sapphire Rapids with AMX disabled), so AUTO measures a
 * short bf16 matrix product against the f32 one (OpenBLAS sgemm) and keeps bf16 only when it wins
 * clearly. */
#include <cblas.h>
#include <math.h>
#include <oneapi/dnnl/dnnl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "kernels/dnn.h"
#include "kernels/kernels.h"

/* bf16 must beat f32 by this factor to be chosen on a CPU without AMX. */
#define AUTO_MIN_SPEEDUP 1.25

int is_dnn_has_bf16(void) {
    dnnl_cpu_isa_t isa = dnnl_get_effective_cpu_isa();
    return (isa & dnnl_cpu_isa_avx512_core_bf16) == dnnl_cpu_isa_avx512_core_bf16;
}

int is_dnn_has_amx(void) {
    dnnl_cpu_isa_t isa = dnnl_get_effective_cpu_isa();
    return (isa & dnnl_cpu_isa_avx512_core_amx) == dnnl_cpu_isa_avx512_core_amx;
}

const char *is_dnn_isa_name(void) {
    switch (dnnl_get_effective_cpu_isa()) {
    case dnnl_cpu_isa_avx512_core_amx: return "AMX-BF16 (avx512_core_amx)";
    case dnnl_cpu_isa_avx512_core_bf16: return "AVX512-BF16 (avx512_core_bf16)";
    case dnnl_cpu_isa_avx512_core_vnni: return "AVX-512 VNNI, no bf16 (avx512_core_vnni)";
    case dnnl_cpu_isa_avx512_core: return "AVX-512, no bf16 (avx512_core)";
    case dnnl_cpu_isa_avx2_vnni: return "AVX2 VNNI, no bf16 (avx2_vnni)";
    case dnnl_cpu_isa_avx2: return "AVX2, no bf16 (avx2)";
    default: return "no AVX2 or better";
    }
}

const char *is_precision_name(is_precision p) {
    switch (p) {
    case IS_PRECISION_AUTO: return "auto";
    case IS_PRECISION_F32: return "f32";
    case IS_PRECISION_BF16: return "bf16";
    }
    return "?";
}

int is_precision_parse(const char *text, is_precision *out) {
    static const is_precision all[] = {IS_PRECISION_AUTO, IS_PRECISION_F32, IS_PRECISION_BF16};
    for (size_t i = 0; text && i < sizeof all / sizeof all[0]; i++)
        if (!strcmp(text, is_precision_name(all[i]))) {
            if (out) *out = all[i];
            return 0;
        }
    return -1;
}

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* Best time of a few runs of f, after one warm-up. */
#define BEST_OF(reps, best, stmt)                                                                                  \
    do {                                                                                                           \
        stmt;                                                                                                      \
        best = INFINITY;                                                                                           \
        for (int r_ = 0; r_ < (reps); r_++) {                                                                      \
            double t0_ = now_s();                                                                                  \
            stmt;                                                                                                  \
            double t_ = now_s() - t0_;                                                                             \
            best = t_ < best ? t_ : best;                                                                          \
        }                                                                                                          \
    } while (0)

/* Seconds of one 512x1280x1280 product in f32 (sgemm) and in bf16 (this path); < 0 on failure. */
static int measure(double *t_f32, double *t_bf16) {
    enum { M = 512, N = 1280, K = 1280 };
    float *x = calloc((size_t)M * K, sizeof(float)), *y = calloc((size_t)M * N, sizeof(float));
    float *w = calloc((size_t)N * K, sizeof(float));
    is_dnn *d = NULL;
    is_error *e = x && y && w ? is_dnn_create(&d) : is_error_oom("measurement");
    is_tensor t = {.name = "probe", .file = "probe", .dtype = IS_DT_F32, .ndim = 2, .shape = {N, K}, .numel = N * K,
                   .data = w, .nbytes = sizeof(float) * N * K};
    for (int64_t i = 0; x && w && i < (int64_t)M * K; i++) x[i] = w[i % (N * K)] = (float)(i % 7) * 0.25f - 0.75f;
    if (!e) e = is_dnn_pack(d, NULL, &t);
    int ok = !e;
    if (ok) {
        double fl = is_flops_total();
        BEST_OF(3, *t_f32, cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, M, N, K, 1.0f, x, K, w, K, 0.0f, y, N));
        BEST_OF(3, *t_bf16, is_dnn_linear(d, y, x, M, &t, NULL));
        ok = is_dnn_fallbacks(d) == 0;
        is_flops_reset();
        is_flops_add(fl); /* the probe is not the caller's work */
    }
    is_error_free(e);
    is_dnn_free(d);
    free(x), free(y), free(w);
    return ok ? 0 : -1;
}

is_precision is_precision_resolve(is_precision want, char *why, size_t why_cap) {
    char buf[256];
    is_precision got = IS_PRECISION_F32;
    if (want == IS_PRECISION_F32) {
        snprintf(buf, sizeof buf, "f32 as requested");
    } else if (!is_dnn_has_bf16()) {
        snprintf(buf, sizeof buf, "f32: this CPU has no bf16 instructions (oneDNN: %s)%s", is_dnn_isa_name(),
                 want == IS_PRECISION_BF16 ? "; bf16 was requested and runs as f32" : "");
    } else if (want == IS_PRECISION_BF16 || is_dnn_has_amx()) {
        got = IS_PRECISION_BF16;
        snprintf(buf, sizeof buf, "bf16 (oneDNN: %s)%s", is_dnn_isa_name(),
                 want == IS_PRECISION_AUTO ? ", chosen by auto" : "");
    } else {
        double tf = 0, tb = 0;
        if (measure(&tf, &tb)) {
            snprintf(buf, sizeof buf, "f32: the bf16 probe product failed on %s", is_dnn_isa_name());
        } else {
            got = tf / tb >= AUTO_MIN_SPEEDUP ? IS_PRECISION_BF16 : IS_PRECISION_F32;
            snprintf(buf, sizeof buf, "%s, chosen by auto: on %s a bf16 product ran %.2fx as fast as f32 (bf16 needs %.2fx)",
                     is_precision_name(got), is_dnn_isa_name(), tf / tb, AUTO_MIN_SPEEDUP);
        }
    }
    if (why && why_cap) snprintf(why, why_cap, "%s", buf);
    return got;
}
