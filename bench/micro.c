/* Kernel micro-benchmark (is_bench --only micro): each public kernel at real SDXL shapes,
 * to see where the time of a network goes and how close each kernel is to the sgemm ceiling.
 * With --precision bf16 each matrix product, convolution and attention is followed by its bf16 row
 * (kernels/dnn.h: weights packed once before timing, a fresh is_dnn per shape; three times the f32
 * row's repetitions, as they are shorter), whose percentage is against oneDNN's bf16 matmul ceiling
 * measured the same way (per CPU-second). */
#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"
#include "kernels/dnn.h"
#include "kernels/kernels.h"

static float *rnd(int64_t n) {
    float *p = malloc((size_t)n * sizeof(float));
    if (!p) {
        fprintf(stderr, "out of memory (%lld floats)\n", (long long)n);
        exit(1);
    }
    uint32_t s = 12345;
    for (int64_t i = 0; i < n; i++) {
        s = s * 1664525u + 1013904223u;
        p[i] = (float)(s >> 8) / (float)(1u << 24) - 0.5f;
    }
    return p;
}

/* A random F16 weight owning its bytes. */
static is_tensor f16_weight(int ndim, const int64_t *shape) {
    is_tensor t;
    memset(&t, 0, sizeof t);
    t.name = "w";
    t.file = "micro";
    t.dtype = IS_DT_F16;
    t.ndim = ndim;
    t.numel = 1;
    for (int i = 0; i < ndim; i++) t.shape[i] = shape[i], t.numel *= shape[i];
    t.nbytes = (size_t)t.numel * 2;
    uint16_t *d = malloc(t.nbytes);
    for (int64_t i = 0; i < t.numel; i++) d[i] = is_f32_to_f16(0.02f * (float)((i * 7919) % 101 - 50) / 50.0f);
    t.data = d;
    return t;
}

/* Other processes share the cores, so efficiency is measured in CPU time: GFLOP per CPU-second of
 * this process against the same for a large sgemm (g_cpu_ceiling), or for bf16 rows a large oneDNN
 * bf16 matmul (g_cpu_ceiling_bf16). */
static double g_cpu_ceiling, g_cpu_ceiling_bf16;

static void report(const char *what, double secs, double cpu, double flops, double ceiling, const char *note) {
    double gf = flops / secs * 1e-9, gfc = flops / cpu * 1e-9;
    printf("  %-48s %8.4f s %7.1f GFLOP/s  %6.1f%% (cpu)%s%s%s\n", what, secs, gf, 100.0 * gfc / ceiling,
           note ? "  [" : "", note ? note : "", note ? "]" : "");
    fflush(stdout);
}

static const char *g_filter;
static int g_bf16; /* also the bf16 rows */

static int wanted(const char *label) { return !g_filter || strstr(label, g_filter); }

/* Best of reps runs (wall and CPU time taken separately), after one warm-up run. The FLOPs are the
 * kernels' own count; expect (> 0) is used when the kernel counted none. */
#define TIMEX(label, reps, ceiling, note, expect, body)                \
    do {                                                               \
        if (!wanted(label)) break;                                     \
        body; /* warm-up: scratch buffers grow, pages fault in */     \
        double best_ = 1e30, best_cpu_ = 1e30, flops_ = 0;             \
        for (int r_ = 0; r_ < (reps); r_++) {                          \
            is_flops_reset();                                          \
            double t0_ = bench_now(), c0_ = bench_cpu_now();           \
            body;                                                      \
            double dt_ = bench_now() - t0_, dc_ = bench_cpu_now() - c0_; \
            best_ = dt_ < best_ ? dt_ : best_;                         \
            best_cpu_ = dc_ < best_cpu_ ? dc_ : best_cpu_;             \
            flops_ = is_flops_total();                                 \
        }                                                              \
        if (flops_ <= 0) flops_ = (expect);                            \
        report(label, best_, best_cpu_, flops_, ceiling, note);        \
    } while (0)
#define TIME(label, reps, body) TIMEX(label, reps, g_cpu_ceiling, NULL, 0.0, body)

/* A fresh bf16 context for one shape (packed weights are found by tensor, and the next shape's
 * weight may reuse a freed address); NULL after printing why when there is none. */
static is_dnn *micro_dnn(const char *label) {
    is_dnn *d = NULL;
    is_error *e = is_dnn_create(&d);
    if (!e) return d;
    printf("  %-48s no bf16 context: %s\n", label, is_error_message(e));
    is_error_free(e);
    return NULL;
}

static int micro_pack(is_dnn *d, const char *label, const is_tensor *w) {
    is_error *e = is_dnn_pack(d, NULL, w);
    if (!e) return 0;
    printf("  %-48s packing failed: %s\n", label, is_error_message(e));
    is_error_free(e);
    return -1;
}

/* The note of a bf16 row: oneDNN's implementation, or "f32 fallback" when the bf16 path ran none. */
static const char *bf16_note(is_dnn *d, const char *impl, char *buf, size_t cap) {
    int64_t fb = is_dnn_fallbacks(d);
    if (fb > 0)
        snprintf(buf, cap, "%s; ran in f32 (%lld fallbacks in the warm-up and timed calls)",
                 impl ? impl : "no bf16 primitive", (long long)fb);
    else
        snprintf(buf, cap, "%s", impl ? impl : "oneDNN");
    return buf;
}

static void micro_linear(int64_t M, int64_t K, int64_t N, int reps) {
    int64_t sh[2] = {N, K};
    is_tensor w = f16_weight(2, sh), b = f16_weight(1, &N);
    float *x = rnd(M * K), *y = rnd(M * N);
    char label[96];
    snprintf(label, sizeof label, "linear f16 M=%lld K=%lld N=%lld", (long long)M, (long long)K, (long long)N);
    TIME(label, reps, is_k_linear(y, x, M, &w, &b));
    snprintf(label, sizeof label, "linear bf16 M=%lld K=%lld N=%lld", (long long)M, (long long)K, (long long)N);
    is_dnn *d = g_bf16 && wanted(label) ? micro_dnn(label) : NULL;
    if (d && !micro_pack(d, label, &w)) {
        char note[128];
        const char *impl = is_dnn_linear_impl(d, M, &w);
        TIMEX(label, 3 * (reps), g_cpu_ceiling_bf16, bf16_note(d, impl, note, sizeof note), 2.0 * (double)(M * K * N),
              is_dnn_linear(d, y, x, M, &w, &b));
    }
    if (d) is_dnn_free(d);
    free(x), free(y), free((void *)w.data), free((void *)b.data);
}

static void micro_conv(int64_t Cin, int64_t Cout, int64_t H, int64_t k, int stride, int reps) {
    int64_t sh[4] = {Cout, Cin, k, k};
    is_tensor w = f16_weight(4, sh), b = f16_weight(1, &Cout);
    int pad = (int)(k / 2);
    int64_t Ho = is_conv_out_size(H, k, stride, pad);
    float *x = rnd(Cin * H * H), *y = rnd(Cout * Ho * Ho);
    char label[96];
    snprintf(label, sizeof label, "conv%lldx%lld/%d f16 %lld->%lld @%lldx%lld", (long long)k, (long long)k, stride,
             (long long)Cin, (long long)Cout, (long long)H, (long long)H);
    TIME(label, reps, is_k_conv2d(y, x, Cin, H, H, &w, &b, stride, pad));
    snprintf(label, sizeof label, "conv%lldx%lld/%d bf16 %lld->%lld @%lldx%lld", (long long)k, (long long)k, stride,
             (long long)Cin, (long long)Cout, (long long)H, (long long)H);
    is_dnn *d = g_bf16 && wanted(label) ? micro_dnn(label) : NULL;
    if (d && !micro_pack(d, label, &w)) {
        char note[128];
        const char *impl = is_dnn_conv_impl(d, Cin, H, H, &w, stride, pad);
        TIMEX(label, 3 * (reps), g_cpu_ceiling_bf16, bf16_note(d, impl, note, sizeof note),
              2.0 * (double)(Cout * Ho * Ho) * (double)(Cin * k * k),
              is_dnn_conv2d(d, y, x, Cin, H, H, &w, &b, stride, pad));
    }
    if (d) is_dnn_free(d);
    free(x), free(y), free((void *)w.data), free((void *)b.data);
}

static void micro_attention(int64_t Nq, int64_t Nk, int64_t heads, int64_t dh, int reps) {
    int64_t D = heads * dh;
    float *q = rnd(Nq * D), *k = rnd(Nk * D), *v = rnd(Nk * D), *o = rnd(Nq * D);
    char label[96];
    snprintf(label, sizeof label, "attention Nq=%lld Nk=%lld heads=%lld dh=%lld", (long long)Nq, (long long)Nk,
             (long long)heads, (long long)dh);
    TIME(label, reps, is_k_attention(o, D, q, D, k, D, v, D, Nq, Nk, heads, dh, 0, 1.0f, 0));
    snprintf(label, sizeof label, "attention bf16 Nq=%lld Nk=%lld heads=%lld dh=%lld", (long long)Nq, (long long)Nk,
             (long long)heads, (long long)dh);
    is_dnn *d = g_bf16 && wanted(label) ? micro_dnn(label) : NULL;
    if (d) {
        char note[128];
        TIMEX(label, 3 * (reps), g_cpu_ceiling_bf16, bf16_note(d, NULL, note, sizeof note),
              4.0 * (double)(Nq * Nk) * (double)(heads * dh),
              is_dnn_attention(d, o, D, q, D, k, D, v, D, Nq, Nk, heads, dh, 0, 1.0f, 0));
    }
    if (d) is_dnn_free(d);
    free(q), free(k), free(v), free(o);
}

/* The transformer's residual products in bf16, y += src W^T + b with src = x or GEGLU(x): the unfused
 * sequence (f32 GEGLU, product into a buffer, add) against is_dnn_linear_residual (GEGLU rounded straight
 * into the bf16 operand), one after the other on the same context. */
static void micro_residual(int64_t M, int64_t K, int64_t N, int geglu, int reps) {
    int64_t sh[2] = {N, K};
    is_tensor w = f16_weight(2, sh), b = f16_weight(1, &N);
    int64_t kin = geglu ? 2 * K : K;
    float *x = rnd(M * kin), *y = rnd(M * N), *g = rnd(M * K), *t = rnd(M * N);
    char label[96], fused[96];
    snprintf(label, sizeof label, "%s bf16 unfused M=%lld K=%lld N=%lld", geglu ? "geglu+linear+add" : "linear+add",
             (long long)M, (long long)K, (long long)N);
    snprintf(fused, sizeof fused, "%s bf16 fused M=%lld K=%lld N=%lld", geglu ? "geglu+linear+add" : "linear+add",
             (long long)M, (long long)K, (long long)N);
    is_dnn *d = g_bf16 && (wanted(label) || wanted(fused)) ? micro_dnn(label) : NULL;
    if (d && !micro_pack(d, label, &w)) {
        char note[128];
        const char *impl = is_dnn_linear_impl(d, M, &w);
        double flops = 2.0 * (double)(M * K * N);
        TIMEX(label, 3 * (reps), g_cpu_ceiling_bf16, bf16_note(d, impl, note, sizeof note), flops, {
            if (geglu) is_k_geglu(g, x, M, K);
            is_dnn_linear(d, t, geglu ? g : x, M, &w, &b);
            is_k_add(y, t, M * N);
        });
        TIMEX(fused, 3 * (reps), g_cpu_ceiling_bf16, bf16_note(d, impl, note, sizeof note), flops,
              is_dnn_linear_residual(d, y, x, M, &w, &b, geglu ? g : NULL, t));
    }
    if (d) is_dnn_free(d);
    free(x), free(y), free(g), free(t), free((void *)w.data), free((void *)b.data);
}

/* The whole bf16 feed-forward of a transformer block, x += GEGLU(xn W1^T + b1) W2^T + b2 over M rows: at once
 * (the [M, 2*ff] f32 intermediate goes through memory) and in row chunks of `chunk` (it stays in cache). */
static void micro_feed_forward(int64_t M, int64_t C, int64_t ff, int64_t chunk, int reps) {
    int64_t s1[2] = {2 * ff, C}, s2[2] = {C, ff}, n1 = 2 * ff;
    is_tensor w1 = f16_weight(2, s1), b1 = f16_weight(1, &n1), w2 = f16_weight(2, s2), b2 = f16_weight(1, &C);
    float *xn = rnd(M * C), *x = rnd(M * C), *f = rnd(M * 2 * ff), *g = rnd(M * ff), *t = rnd(M * C);
    char label[96];
    snprintf(label, sizeof label, "feed-forward bf16 M=%lld C=%lld ff=%lld rows %lld", (long long)M, (long long)C,
             (long long)ff, (long long)chunk);
    is_dnn *d = g_bf16 && wanted(label) ? micro_dnn(label) : NULL;
    if (d && !micro_pack(d, label, &w1) && !micro_pack(d, label, &w2)) {
        char note[128];
        TIMEX(label, reps, g_cpu_ceiling_bf16, bf16_note(d, NULL, note, sizeof note), 6.0 * (double)(M * C * ff), {
            for (int64_t r = 0; r < M; r += chunk) {
                int64_t m = M - r < chunk ? M - r : chunk;
                is_dnn_linear(d, f, xn + r * C, m, &w1, &b1);
                is_dnn_linear_residual(d, x + r * C, f, m, &w2, &b2, g, t);
            }
        });
    }
    if (d) is_dnn_free(d);
    free(xn), free(x), free(f), free(g), free(t);
    free((void *)w1.data), free((void *)b1.data), free((void *)w2.data), free((void *)b2.data);
}

/* The UNet's bf16 self-attention of one batch item: the stacked q | k | v product with f32 output, then
 * is_dnn_attention (which rounds q, k, v into head-major bf16 copies), against is_dnn_self_attention (the
 * product writes bf16, the attention reads it in place). FLOPs: the product and the two attention products. */
static void micro_self_attention(int64_t N, int64_t K, int64_t heads, int64_t dh, int reps) {
    const int64_t HD = heads * dh, ld = 3 * HD;
    int64_t sh[2] = {HD, K};
    is_tensor w[3] = {f16_weight(2, sh), f16_weight(2, sh), f16_weight(2, sh)}, key;
    const is_tensor *parts[3] = {&w[0], &w[1], &w[2]};
    float *x = rnd(N * K), *qkv = rnd(N * ld), *o = rnd(N * HD);
    char label[96], fused[96];
    snprintf(label, sizeof label, "self-attention bf16 unfused N=%lld K=%lld heads=%lld", (long long)N, (long long)K,
             (long long)heads);
    snprintf(fused, sizeof fused, "self-attention bf16 fused N=%lld K=%lld heads=%lld", (long long)N, (long long)K,
             (long long)heads);
    is_dnn *d = g_bf16 && (wanted(label) || wanted(fused)) ? micro_dnn(label) : NULL;
    is_error *e = d ? is_dnn_pack_rows(d, NULL, &key, parts, 3, "qkv") : NULL;
    if (e) {
        printf("  %-48s packing failed: %s\n", label, is_error_message(e));
        is_error_free(e);
    } else if (d) {
        char note[128];
        double flops = 2.0 * (double)(N * K * ld) + 4.0 * (double)(N * N * HD);
        TIMEX(label, reps, g_cpu_ceiling_bf16, bf16_note(d, NULL, note, sizeof note), flops, {
            if (!is_dnn_linear_packed(d, qkv, x, N, &key))
                is_dnn_attention(d, o, HD, qkv, ld, qkv + HD, ld, qkv + 2 * HD, ld, N, N, heads, dh, 0, 1.0f, 0);
        });
        TIMEX(fused, reps, g_cpu_ceiling_bf16, bf16_note(d, NULL, note, sizeof note), flops,
              is_dnn_self_attention(d, o, x, 1, N, &key, heads, dh));
    }
    if (d) is_dnn_free(d);
    free(x), free(qkv), free(o);
    for (int i = 0; i < 3; i++) free((void *)w[i].data);
}

void bench_micro(const char *filter, int bf16) {
    g_filter = filter;
    g_bf16 = bf16;
    double cpu = 0;
    bench_sgemm_ceiling(2048, 3, &cpu);
    g_cpu_ceiling = cpu;
    printf("sgemm per CPU-second: %.1f GFLOP (cpu)\n", cpu);
    if (bf16) {
        bench_bf16_ceiling c;
        bench_bf16_ceiling_measure(8, &c);
        g_cpu_ceiling_bf16 = c.matmul_cpu;
        printf("bf16 matmul 8192x640x5760 per CPU-second: %.1f GFLOP (cpu) [%s, ISA %s]; "
               "bf16 rows are against it%s%s\n",
               c.matmul_cpu, c.matmul_impl[0] ? c.matmul_impl : "-", c.isa, c.msg[0] ? "; " : "", c.msg);
        if (g_cpu_ceiling_bf16 <= 0) g_cpu_ceiling_bf16 = g_cpu_ceiling;
    }
    printf("kernel micro-benchmark (SDXL shapes, one batch item):\n");
    micro_linear(4096, 640, 640, 3);
    micro_linear(4096, 640, 5120, 2);
    micro_linear(1024, 1280, 10240, 2);
    micro_linear(1024, 5120, 1280, 2);
    micro_linear(512, 1280, 10240, 2);
    micro_linear(512, 5120, 1280, 2);
    micro_linear(512, 1280, 1280, 3);
    micro_linear(2048, 640, 640, 3);
    micro_linear(77, 2048, 1280, 5);
    micro_linear(77, 1280, 5120, 5);
    micro_linear(1, 1280, 1280, 20);
    micro_residual(4096, 2560, 640, 1, 2);  /* feed-forward second product, 64x64 latent */
    micro_residual(1024, 5120, 1280, 1, 2); /* and at 32x32 */
    micro_residual(4096, 640, 640, 0, 3);   /* attention out projection */
    micro_conv(320, 320, 128, 3, 1, 2);
    micro_conv(640, 640, 64, 3, 1, 2);
    micro_conv(1280, 1280, 32, 3, 1, 2);
    micro_conv(2560, 1280, 32, 3, 1, 1);
    micro_conv(320, 320, 128, 3, 2, 2);
    micro_conv(512, 512, 256, 3, 1, 1);
    micro_conv(128, 128, 1024, 3, 1, 1);
    micro_conv(960, 320, 128, 1, 1, 2);
    micro_conv(3, 1664, 224, 14, 14, 3);
    for (int64_t chunk = 256; chunk <= 8192; chunk *= 2) micro_feed_forward(8192, 640, 2560, chunk, 3);
    for (int64_t chunk = 128; chunk <= 2048; chunk *= 2) micro_feed_forward(2048, 1280, 5120, chunk, 3);
    micro_self_attention(4096, 640, 10, 64, 3);  /* 64x64 latent */
    micro_self_attention(1024, 1280, 20, 64, 5); /* 32x32 */
    micro_attention(4096, 4096, 10, 64, 1);
    micro_attention(4096, 77, 10, 64, 3);
    micro_attention(1024, 1024, 20, 64, 3);
    micro_attention(4096, 4096, 1, 512, 1);   /* the VAE's mid-block at 512x512 */
    micro_attention(16384, 16384, 1, 512, 1); /* and at 1024x1024 */
    micro_attention(77, 77, 20, 64, 10);
    {
        int64_t C = 320, HW = 128 * 128;
        is_tensor g = f16_weight(1, &C);
        float *x = rnd(C * HW), *y = rnd(C * HW);
        TIME("group_norm+silu 320 x 128x128", 5, is_k_group_norm(y, x, C, HW, 32, 1e-5f, &g, &g, 1));
        TIME("silu 320 x 128x128", 5, is_k_silu(y, C * HW));
        TIME("add 320 x 128x128", 5, is_k_add(y, x, C * HW));
        free(x), free(y), free((void *)g.data);
    }
    {
        int64_t rows = 4096, dim = 640;
        is_tensor g = f16_weight(1, &dim);
        float *x = rnd(rows * dim * 8), *y = rnd(rows * dim * 4);
        TIME("layer_norm 4096 x 640", 5, is_k_layer_norm(y, x, rows, dim, &g, &g, 1e-5f));
        TIME("geglu 4096 x 2560", 5, is_k_geglu(y, x, rows, 4 * dim));
        TIME("transpose 640 x 4096", 5, is_k_transpose(y, x, dim, rows));
        free(x), free(y), free((void *)g.data);
    }
}

double bench_sgemm_ceiling(int64_t n, int reps, double *cpu_gflops) {
    float *a = rnd(n * n), *b = rnd(n * n), *c = rnd(n * n);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (blasint)n, (blasint)n, (blasint)n, 1.0f, a, (blasint)n,
                b, (blasint)n, 0.0f, c, (blasint)n);
    double best = 0, best_cpu = 0;
    for (int r = 0; r < reps; r++) {
        double t0 = bench_now(), c0 = bench_cpu_now();
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (blasint)n, (blasint)n, (blasint)n, 1.0f, a,
                    (blasint)n, b, (blasint)n, 0.0f, c, (blasint)n);
        double f = 2.0 * (double)n * (double)n * (double)n * 1e-9;
        double gf = f / (bench_now() - t0), gfc = f / (bench_cpu_now() - c0);
        best = gf > best ? gf : best;
        best_cpu = gfc > best_cpu ? gfc : best_cpu;
    }
    if (cpu_gflops) *cpu_gflops = best_cpu;
    free(a), free(b), free(c);
    return best;
}
