/* Compute kernels: every public is_k_* kernel against its plain reference (src/kernels/ref) on
 * random inputs of awkward sizes (odd, not multiples of any tile, causal, accumulate, F32/F16/BF16
 * weights), with 1 and 2 threads; plus a few hand-checked tiny values and the FLOP accounting. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "instantstyle.h"
#include "kernels/kernels.h"
#include "kernels/bf16.h"
#include "kernels/kernels_ref.h"
#include "kernels/vmath.h"

/* ---- random numbers and test tensors */

static uint64_t g_rng = 0x9e3779b97f4a7c15ull;

static float frand(void) { return th_frand(&g_rng); } /* uniform in [-1, 1) */

static float *rand_buf(int64_t n, float scale) {
    float *p = malloc((size_t)(n > 0 ? n : 1) * sizeof(float));
    for (int64_t i = 0; i < n; i++) p[i] = scale * frand();
    return p;
}

static float *copy_buf(const float *src, int64_t n) {
    float *p = malloc((size_t)(n > 0 ? n : 1) * sizeof(float));
    memcpy(p, src, (size_t)n * sizeof(float));
    return p;
}

/* A random weight tensor owning its bytes (freed with free_weight). */
static is_tensor make_weight(is_dtype dt, int ndim, const int64_t *shape, float scale) {
    int64_t n = 1;
    for (int i = 0; i < ndim; i++) n *= shape[i];
    float *v = rand_buf(n, scale);
    is_tensor t = th_weight(dt, ndim, shape, v);
    free(v);
    return t;
}

static is_tensor make_vec(is_dtype dt, int64_t n, float scale) { return make_weight(dt, 1, &n, scale); }
static void free_weight(is_tensor *t) { free((void *)t->data); }

static const is_dtype DTYPES[3] = {IS_DT_F32, IS_DT_F16, IS_DT_BF16};

/* Optimised kernels may sum in another order: compare against the reference with a tolerance
 * relative to the output's magnitude (indexing bugs give errors of order 1). */
static int close_to_ref(const char *what, const float *got, const float *ref, int64_t n) {
    double mx = 1e-3;
    for (int64_t i = 0; i < n; i++) mx = fabs(ref[i]) > mx ? fabs(ref[i]) : mx;
    return th_close_f32(what, got, ref, (size_t)n, 2e-5 * mx, 1e-4);
}

static int g_threads;

/* ---- matrix products */

static void check_linear(int64_t M, int64_t N, int64_t K, is_dtype wdt, int with_bias, is_dtype bdt) {
    int64_t wshape[2] = {N, K};
    is_tensor W = make_weight(wdt, 2, wshape, 0.5f);
    is_tensor b = make_vec(bdt, N, 1.0f);
    float *x = rand_buf(M * K, 1.0f);
    float *y = rand_buf(M * N, 9.0f), *r = rand_buf(M * N, 9.0f); /* garbage must be overwritten */
    is_k_linear(y, x, M, &W, with_bias ? &b : NULL);
    is_kref_linear(r, x, M, &W, with_bias ? &b : NULL);
    char what[160];
    snprintf(what, sizeof what, "linear M=%lld N=%lld K=%lld W=%s bias=%s threads=%d", (long long)M,
             (long long)N, (long long)K, is_dtype_name(wdt), with_bias ? is_dtype_name(bdt) : "none", g_threads);
    close_to_ref(what, y, r, M * N);
    free(x), free(y), free(r);
    free_weight(&W), free_weight(&b);
}

static void test_linear(void) {
    const int64_t Ms[] = {1, 7, 77, 301}, Ns[] = {1, 5, 257, 1283}, Ks[] = {3, 33, 320};
    for (int d = 0; d < 3; d++)
        for (size_t mi = 0; mi < 4; mi++)
            for (size_t ni = 0; ni < 4; ni++)
                for (size_t ki = 0; ki < 3; ki++)
                    check_linear(Ms[mi], Ns[ni], Ks[ki], DTYPES[d], (int)((mi + ni + ki) % 2), DTYPES[(mi + d) % 3]);
    check_linear(2, 4099, 129, IS_DT_F16, 1, IS_DT_F16); /* many panels with a ragged last one */
    check_linear(1030, 640, 2048, IS_DT_F16, 1, IS_DT_F32);
}

/* How many of a[0..n) and b[0..n) differ in any bit. */
static int64_t bits_differ(const float *a, const float *b, int64_t n) {
    int64_t differ = 0;
    for (int64_t j = 0; j < n; j++) differ += memcmp(&a[j], &b[j], sizeof(float)) != 0;
    return differ;
}

/* The linear gives the same bits with 1 and 2 threads, few rows (weights converted panel by panel) and
 * many (one product, split by the engine where OpenBLAS's rounding follows the split: test_kernels also
 * runs as test_kernels_avx2_blas with OpenBLAS's AVX2 kernels): `--threads` must not change an image. */
static void test_linear_thread_invariance(void) {
    const int64_t shapes[][3] = {{77, 1280, 2048}, {77, 5120, 1280}, {2, 4099, 129}, {1, 1280, 320}, {154, 640, 2048},
                                 {600, 2100, 64}, {1030, 640, 320}, {4096, 320, 96}};
    for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++) {
        int64_t M = shapes[i][0], N = shapes[i][1], K = shapes[i][2];
        const int64_t wshape[2] = {N, K};
        is_tensor w = make_weight(IS_DT_F16, 2, wshape, 0.05f);
        float *x = rand_buf(M * K, 1.0f), *y1 = malloc((size_t)(M * N) * sizeof(float)),
              *y2 = malloc((size_t)(M * N) * sizeof(float));
        is_set_threads(1);
        is_k_linear(y1, x, M, &w, NULL);
        is_set_threads(2);
        is_k_linear(y2, x, M, &w, NULL);
        int64_t differ = bits_differ(y1, y2, M * N);
        th_check(differ == 0, "linear M=%lld N=%lld K=%lld (F16): 1 and 2 threads give the same bits (%lld differ)",
                 (long long)M, (long long)N, (long long)K, (long long)differ);
        free(x), free(y1), free(y2);
        free_weight(&w);
    }
}

/* Convolutions too: their tiles are sized for a thread count that is not the real one where needed. */
static void test_conv_thread_invariance(void) {
    const int64_t shapes[][4] = {{64, 32, 32, 128}, {32, 96, 80, 32}, {320, 16, 16, 320}}; /* Cin, H, W, Cout */
    for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++) {
        int64_t Cin = shapes[i][0], H = shapes[i][1], W = shapes[i][2], Cout = shapes[i][3];
        const int64_t wshape[4] = {Cout, Cin, 3, 3};
        is_tensor w = make_weight(IS_DT_F16, 4, wshape, 0.3f);
        float *x = rand_buf(Cin * H * W, 1.0f), *y1 = malloc((size_t)(Cout * H * W) * sizeof(float)),
              *y2 = malloc((size_t)(Cout * H * W) * sizeof(float));
        is_set_threads(1);
        is_k_conv2d(y1, x, Cin, H, W, &w, NULL, 1, 1);
        is_set_threads(2);
        is_k_conv2d(y2, x, Cin, H, W, &w, NULL, 1, 1);
        int64_t differ = bits_differ(y1, y2, Cout * H * W);
        th_check(differ == 0, "conv2d 3x3 Cin=%lld %lldx%lld Cout=%lld (F16): 1 and 2 threads give the same bits (%lld differ)",
                 (long long)Cin, (long long)H, (long long)W, (long long)Cout, (long long)differ);
        free(x), free(y1), free(y2);
        free_weight(&w);
    }
}

static void check_gemm(int64_t M, int64_t N, int64_t K, int trans_b, float alpha, float beta) {
    float *A = rand_buf(M * K, 1.0f), *B = rand_buf(K * N, 1.0f);
    float *C = rand_buf(M * N, 1.0f), *R = copy_buf(C, M * N);
    is_k_gemm(C, A, B, M, N, K, trans_b, alpha, beta);
    is_kref_gemm(R, A, B, M, N, K, trans_b, alpha, beta);
    char what[160];
    snprintf(what, sizeof what, "gemm M=%lld N=%lld K=%lld trans_b=%d alpha=%g beta=%g threads=%d", (long long)M,
             (long long)N, (long long)K, trans_b, alpha, beta, g_threads);
    close_to_ref(what, C, R, M * N);
    free(A), free(B), free(C), free(R);
}

static void test_gemm(void) {
    const int64_t sizes[][3] = {{1, 1, 1},    {3, 5, 7},     {77, 129, 65}, {257, 31, 513},
                                {64, 64, 64}, {5, 1000, 3}, {600, 2100, 24}}; /* the last: tiles both ways */
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++)
        for (int tb = 0; tb < 2; tb++) {
            check_gemm(sizes[i][0], sizes[i][1], sizes[i][2], tb, 1.0f, 0.0f);
            check_gemm(sizes[i][0], sizes[i][1], sizes[i][2], tb, 0.37f, 1.0f);
            check_gemm(sizes[i][0], sizes[i][1], sizes[i][2], tb, -2.0f, 0.5f);
        }
}

/* ---- convolution */

static void check_conv(int64_t Cin, int64_t H, int64_t W, int64_t Cout, int64_t k, int stride, int pad,
                       is_dtype wdt, int with_bias) {
    int64_t wshape[4] = {Cout, Cin, k, k};
    is_tensor w = make_weight(wdt, 4, wshape, 0.3f);
    is_tensor b = make_vec(wdt, Cout, 1.0f);
    int64_t Ho = is_conv_out_size(H, k, stride, pad), Wo = is_conv_out_size(W, k, stride, pad);
    float *x = rand_buf(Cin * H * W, 1.0f);
    float *y = rand_buf(Cout * Ho * Wo, 9.0f), *r = rand_buf(Cout * Ho * Wo, 9.0f);
    is_k_conv2d(y, x, Cin, H, W, &w, with_bias ? &b : NULL, stride, pad);
    is_kref_conv2d(r, x, Cin, H, W, &w, with_bias ? &b : NULL, stride, pad);
    char what[200];
    snprintf(what, sizeof what, "conv2d Cin=%lld %lldx%lld Cout=%lld k=%lld s=%d p=%d W=%s bias=%d threads=%d",
             (long long)Cin, (long long)H, (long long)W, (long long)Cout, (long long)k, stride, pad,
             is_dtype_name(wdt), with_bias, g_threads);
    close_to_ref(what, y, r, Cout * Ho * Wo);
    free(x), free(y), free(r);
    free_weight(&w), free_weight(&b);
}

static void test_conv2d(void) {
    for (int d = 0; d < 3; d++) {
        is_dtype dt = DTYPES[d];
        check_conv(4, 7, 9, 5, 3, 1, 1, dt, 1);      /* 3x3 same, odd non-square */
        check_conv(3, 13, 5, 8, 3, 1, 1, dt, 0);
        check_conv(6, 9, 11, 7, 3, 2, 1, dt, 1);     /* 3x3 stride-2 downsample, odd input */
        check_conv(6, 8, 8, 7, 3, 2, 1, dt, 1);
        check_conv(5, 10, 6, 3, 3, 1, 0, dt, 1);     /* valid padding */
        check_conv(9, 7, 5, 11, 1, 1, 0, dt, 1);     /* 1x1 */
        check_conv(3, 29, 31, 10, 14, 14, 0, dt, 1); /* ViT patch embedding, ragged edge */
        check_conv(2, 1, 1, 3, 3, 1, 1, dt, 1);      /* 1x1 image, 3x3 kernel */
    }
    check_conv(40, 67, 45, 36, 3, 1, 1, IS_DT_F16, 1); /* many output rows: spans row tiles */
    check_conv(33, 130, 70, 20, 3, 1, 1, IS_DT_F16, 0);
    check_conv(65, 64, 64, 96, 3, 1, 1, IS_DT_BF16, 1);
    check_conv(32, 66, 67, 17, 3, 2, 1, IS_DT_F16, 1);
    check_conv(320, 32, 32, 77, 1, 1, 0, IS_DT_F16, 1);
}

/* The fused convolution against the unfused sequence it replaces: [nearest 2x upsample], [GroupNorm
 * (as scale/shift from is_k_group_norm_affine) + optional SiLU], conv, [out += conv]. Same kernels, same
 * arithmetic, so the results must be identical. */
static void check_conv_fused(int64_t Cin, int64_t H, int64_t W, int64_t Cout, int64_t k, int stride, int pad,
                             int norm, int silu, int up, int accumulate, int64_t groups) {
    int64_t wshape[4] = {Cout, Cin, k, k};
    is_tensor w = make_weight(IS_DT_F16, 4, wshape, 0.3f), b = make_vec(IS_DT_F16, Cout, 1.0f);
    is_tensor g = make_vec(IS_DT_F32, Cin, 1.0f), be = make_vec(IS_DT_F32, Cin, 1.0f);
    int64_t Hv = up ? 2 * H : H, Wv = up ? 2 * W : W;
    int64_t Ho = is_conv_out_size(Hv, k, stride, pad), Wo = is_conv_out_size(Wv, k, stride, pad), n = Cout * Ho * Wo;
    float *x = rand_buf(Cin * H * W, 2.0f), *t = rand_buf(Cin * Hv * Wv, 1.0f);
    float *sc = malloc((size_t)Cin * sizeof(float)), *sh = malloc((size_t)Cin * sizeof(float));
    float *y = rand_buf(n, 3.0f), *r = copy_buf(y, n), *c = rand_buf(n, 1.0f);
    if (up)
        is_k_upsample_nearest2x(t, x, Cin, H, W);
    else
        memcpy(t, x, (size_t)(Cin * H * W) * sizeof(float));
    if (norm) { /* statistics of the convolution's input, as the VAE does */
        is_k_group_norm_affine(t, Cin, Hv * Wv, groups, 1e-6f, &g, &be, sc, sh);
        is_k_group_norm(t, t, Cin, Hv * Wv, groups, 1e-6f, &g, &be, silu);
    } else if (silu) {
        is_k_silu(t, Cin * Hv * Wv);
    }
    is_k_conv2d(accumulate ? c : r, t, Cin, Hv, Wv, &w, &b, stride, pad);
    if (accumulate) is_k_add(r, c, n);
    is_k_conv2d_fused(y, x, Cin, H, W, &w, &b, stride, pad, norm ? sc : NULL, norm ? sh : NULL, silu, up, accumulate);
    char what[200];
    snprintf(what, sizeof what, "conv2d_fused Cin=%lld %lldx%lld Cout=%lld k=%lld s=%d p=%d norm=%d silu=%d up=%d acc=%d threads=%d",
             (long long)Cin, (long long)H, (long long)W, (long long)Cout, (long long)k, stride, pad, norm, silu, up,
             accumulate, g_threads);
    th_close_f32(what, y, r, (size_t)n, 0, 0);
    free(x), free(t), free(sc), free(sh), free(y), free(r), free(c);
    free_weight(&w), free_weight(&b), free_weight(&g), free_weight(&be);
}

/* A 1x1 convolution written over its own input (out = in + shift*H*W), as the VAE's shortcut does. */
static void check_conv_in_place(int64_t Cin, int64_t H, int64_t W, int64_t Cout, int64_t shift) {
    int64_t wshape[4] = {Cout, Cin, 1, 1}, P = H * W;
    is_tensor w = make_weight(IS_DT_F16, 4, wshape, 0.3f), b = make_vec(IS_DT_F16, Cout, 1.0f);
    float *x = rand_buf(Cin * P, 1.0f), *r = rand_buf(Cout * P, 1.0f), *buf = copy_buf(x, Cin * P);
    is_k_conv2d(r, x, Cin, H, W, &w, &b, 1, 0);
    is_k_conv2d(buf + shift * P, buf, Cin, H, W, &w, &b, 1, 0);
    char what[160];
    snprintf(what, sizeof what, "conv2d in place Cin=%lld %lldx%lld Cout=%lld at channel %lld threads=%d",
             (long long)Cin, (long long)H, (long long)W, (long long)Cout, (long long)shift, g_threads);
    th_close_f32(what, buf + shift * P, r, (size_t)(Cout * P), 0, 0);
    free(x), free(r), free(buf);
    free_weight(&w), free_weight(&b);
}

static void test_conv2d_fused(void) {
    for (int mask = 0; mask < 16; mask++) { /* every combination of norm, silu, upsample, accumulate */
        int norm = mask & 1, silu = mask >> 1 & 1, up = mask >> 2 & 1, acc = mask >> 3 & 1;
        check_conv_fused(6, 7, 9, 5, 3, 1, 1, norm, silu, up, acc, 3);
        check_conv_fused(4, 13, 5, 8, 1, 1, 0, norm, silu, up, acc, 2);
        check_conv_fused(6, 9, 11, 7, 3, 2, 1, norm, silu, up, acc, 1);
        check_conv_fused(2, 1, 1, 3, 3, 1, 1, norm, silu, up, acc, 2);
    }
    check_conv_fused(40, 67, 45, 36, 3, 1, 1, 1, 1, 0, 1, 8); /* spans row tiles */
    check_conv_fused(33, 35, 70, 20, 3, 1, 1, 0, 0, 1, 0, 1);
    check_conv_fused(64, 64, 64, 96, 3, 1, 1, 1, 1, 0, 0, 32);
    check_conv_in_place(9, 7, 5, 9, 0);
    check_conv_in_place(12, 33, 41, 7, 0);
    check_conv_in_place(12, 33, 41, 7, 5);
    check_conv_in_place(96, 64, 64, 64, 32);
}

/* ---- normalisation */

static void check_group_norm(int64_t C, int64_t HW, int64_t groups, int silu, int inplace, is_dtype dt) {
    is_tensor g = make_vec(dt, C, 1.0f), b = make_vec(dt, C, 1.0f);
    float *x = rand_buf(C * HW, 3.0f);
    for (int64_t i = 0; i < C * HW; i++) x[i] += 2.0f; /* a non-zero mean */
    float *r = rand_buf(C * HW, 9.0f), *y = inplace ? copy_buf(x, C * HW) : rand_buf(C * HW, 9.0f);
    is_kref_group_norm(r, x, C, HW, groups, 1e-5f, &g, &b, silu);
    is_k_group_norm(y, inplace ? y : x, C, HW, groups, 1e-5f, &g, &b, silu);
    char what[160];
    snprintf(what, sizeof what, "group_norm C=%lld HW=%lld groups=%lld silu=%d inplace=%d %s threads=%d",
             (long long)C, (long long)HW, (long long)groups, silu, inplace, is_dtype_name(dt), g_threads);
    close_to_ref(what, y, r, C * HW);
    free(x), free(y), free(r);
    free_weight(&g), free_weight(&b);
}

static void test_group_norm(void) {
    for (int d = 0; d < 3; d++)
        for (int silu = 0; silu < 2; silu++)
            for (int inplace = 0; inplace < 2; inplace++) {
                check_group_norm(64, 37, 32, silu, inplace, DTYPES[d]);
                check_group_norm(6, 1, 3, silu, inplace, DTYPES[d]);
                check_group_norm(96, 1001, 32, silu, inplace, DTYPES[d]);
                check_group_norm(12, 5, 1, silu, inplace, DTYPES[d]);
            }
}

static void check_layer_norm(int64_t rows, int64_t dim, int affine, int inplace, is_dtype dt) {
    is_tensor g = make_vec(dt, dim, 1.0f), b = make_vec(dt, dim, 1.0f);
    float *x = rand_buf(rows * dim, 2.0f);
    for (int64_t i = 0; i < rows * dim; i++) x[i] -= 1.5f;
    float *r = rand_buf(rows * dim, 9.0f), *y = inplace ? copy_buf(x, rows * dim) : rand_buf(rows * dim, 9.0f);
    const is_tensor *gp = (affine & 1) ? &g : NULL, *bp = (affine & 2) ? &b : NULL;
    is_kref_layer_norm(r, x, rows, dim, gp, bp, 1e-5f);
    is_k_layer_norm(y, inplace ? y : x, rows, dim, gp, bp, 1e-5f);
    char what[160];
    snprintf(what, sizeof what, "layer_norm rows=%lld dim=%lld affine=%d inplace=%d %s threads=%d",
             (long long)rows, (long long)dim, affine, inplace, is_dtype_name(dt), g_threads);
    close_to_ref(what, y, r, rows * dim);
    free(x), free(y), free(r);
    free_weight(&g), free_weight(&b);
}

static void test_layer_norm(void) {
    for (int d = 0; d < 3; d++)
        for (int affine = 0; affine < 4; affine++)
            for (int inplace = 0; inplace < 2; inplace++) {
                check_layer_norm(77, 33, affine, inplace, DTYPES[d]);
                check_layer_norm(1, 1280, affine, inplace, DTYPES[d]);
                check_layer_norm(5, 1, affine, inplace, DTYPES[d]);
            }
}

/* ---- attention */

static void check_attention(int64_t Nq, int64_t Nk, int64_t heads, int64_t dh, int64_t pad, int causal,
                            float alpha, int accumulate) {
    int64_t ldq = heads * dh + pad, ldk = heads * dh + 2 * pad, ldv = heads * dh + 3 * pad, ldo = heads * dh + pad;
    float *q = rand_buf(Nq * ldq, 2.0f), *k = rand_buf(Nk * ldk, 2.0f), *v = rand_buf(Nk * ldv, 1.0f);
    float *o = rand_buf(Nq * ldo, 1.0f), *r = copy_buf(o, Nq * ldo);
    is_k_attention(o, ldo, q, ldq, k, ldk, v, ldv, Nq, Nk, heads, dh, causal, alpha, accumulate);
    is_kref_attention(r, ldo, q, ldq, k, ldk, v, ldv, Nq, Nk, heads, dh, causal, alpha, accumulate);
    char what[200];
    snprintf(what, sizeof what, "attention Nq=%lld Nk=%lld heads=%lld dh=%lld pad=%lld causal=%d alpha=%g acc=%d "
             "threads=%d", (long long)Nq, (long long)Nk, (long long)heads, (long long)dh, (long long)pad, causal,
             alpha, accumulate, g_threads);
    close_to_ref(what, o, r, Nq * ldo); /* also checks the padding columns are left alone */
    free(q), free(k), free(v), free(o), free(r);
}

static void test_attention(void) {
    check_attention(1, 1, 1, 8, 0, 0, 1.0f, 0);
    check_attention(77, 77, 3, 16, 0, 1, 1.0f, 0);   /* causal text self-attention */
    check_attention(77, 77, 2, 64, 5, 1, 1.0f, 0);
    check_attention(130, 77, 5, 40, 3, 0, 1.0f, 0);  /* cross-attention */
    check_attention(130, 77, 5, 40, 0, 0, 0.6f, 1);  /* IP-Adapter: out += scale * attn */
    check_attention(257, 257, 2, 8, 1, 0, 1.0f, 0);  /* vision tokens */
    check_attention(300, 4, 2, 64, 0, 0, 2.0f, 1);   /* IP-Adapter image tokens */
    check_attention(1029, 1029, 2, 64, 0, 0, 1.0f, 0); /* spans many key/query tiles */
    check_attention(333, 333, 1, 24, 2, 1, 0.5f, 1);
    check_attention(5, 600, 3, 8, 0, 0, 1.0f, 0);
    check_attention(600, 5, 3, 8, 0, 1, 1.0f, 0);    /* causal with Nq > Nk */
}

/* ---- the bf16 attention's softmax row, every variant this CPU has */

static uint16_t g_p[3][4096];

static double bf16_value(uint16_t b) {
    uint32_t u = (uint32_t)b << 16;
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

/* exp(x - max) rounded to bf16 within half a bf16 step (+ the exp's own 4.3e-5) of the double value, where
 * the value is not below exp(-87) (the vector variants clamp there); the sum of the unrounded values
 * within 5e-5 relative (the exp's bound, summed). AVX-512 with and without the bf16 conversion
 * instruction agree bit for bit. */
static void check_softmax_row(int64_t n, float spread) {
    float *x = rand_buf(n, spread);
    double m = -INFINITY, sum = 0;
    for (int64_t i = 0; i < n; i++) m = x[i] > m ? x[i] : m;
    for (int64_t i = 0; i < n; i++) sum += exp((double)x[i] - m);
    const char *names[3] = {"portable", "avx512", "avx512_bf16"};
    int ran[3] = {0};
    for (int v = 0; v < 3; v++) {
        char what[96];
        snprintf(what, sizeof what, "softmax row bf16 %s n=%lld spread=%g", names[v], (long long)n, spread);
        float s = is_v_softmax_row_bf16_variant(x, g_p[v], n, v);
        if (isnan(s)) {
            if (v == IS_V_ROW_PORTABLE) th_check(0, "%s: the portable variant always runs", what);
            continue;
        }
        ran[v] = 1;
        int bad = 0;
        for (int64_t i = 0; i < n && !bad; i++) {
            double e = exp((double)x[i] - m), got = bf16_value(g_p[v][i]);
            double tol = e * (1.0 / 256 + 5e-5) + (e < 1.7e-38 ? 1.7e-38 : 0);
            if (fabs(got - e) > tol) {
                th_check(0, "%s: p[%lld] = %.9g, exp = %.9g", what, (long long)i, got, e);
                bad = 1;
            }
        }
        th_check(fabs(s - sum) <= 5e-5 * sum, "%s: sum %.9g, expected %.9g", what, s, sum);
    }
    if (ran[IS_V_ROW_AVX512] && ran[IS_V_ROW_AVX512_BF16])
        th_check(!memcmp(g_p[IS_V_ROW_AVX512], g_p[IS_V_ROW_AVX512_BF16], (size_t)n * 2),
                 "softmax row n=%lld: avx512 and avx512_bf16 give the same bf16 bits", (long long)n);
    free(x);
}

static void test_softmax_row_bf16(void) {
    const int64_t lens[] = {1, 15, 16, 17, 77, 1029, 4096};
    for (size_t i = 0; i < sizeof lens / sizeof lens[0]; i++) {
        check_softmax_row(lens[i], 8.0f);
        check_softmax_row(lens[i], 200.0f); /* most values far below the maximum: exp underflows */
    }
}

/* ---- GEGLU rounded to bf16 (the feed-forward's bf16 operand), every variant this CPU has */

/* Each variant gives is_f32_to_bf16(is_v_geglu(a, g)) bit for bit: the AVX-512 loop repeats the 8-lane
 * f32 arithmetic on 16 lanes, and the rounding keeps denormals and NaN as is_f32_to_bf16 does. Inputs
 * cover erf's whole curve (g in [-4, 4]), the gelu tails (every fifth g in [-32, 32]: erfc underflows; tiny a:
 * denormal products), exact zeros and NaN. */
static void check_geglu_bf16(int64_t n) {
    float *a = rand_buf(n, 4.0f), *g = rand_buf(n, 4.0f), *f = malloc((size_t)n * sizeof(float));
    for (int64_t i = 0; i < n; i++) {
        if (i % 5 == 2) g[i] *= 8.0f;             /* the tails: gelu(g) = g, or erfc underflows */
        if (i % 7 == 3) a[i] *= 1e-36f;          /* products near and below FLT_MIN */
        if (i % 11 == 5) g[i] = (float)(i % 3) - 1; /* -1, 0, 1 */
        if (i % 13 == 8) a[i] = 0.0f;
        if (n > 40 && i == n / 2) g[i] = NAN;
    }
    uint16_t *want = malloc((size_t)n * 2), *got = malloc((size_t)n * 2);
    is_v_geglu(f, a, g, n);
    for (int64_t i = 0; i < n; i++) want[i] = is_f32_to_bf16(f[i]);
    const char *names[2] = {"portable", "avx512"};
    for (int v = IS_V_ROW_PORTABLE; v <= IS_V_ROW_AVX512; v++) {
        memset(got, 0xa5, (size_t)n * 2);
        if (is_v_geglu_bf16_variant(got, a, g, n, v)) {
            th_check(v != IS_V_ROW_PORTABLE, "geglu bf16: the portable variant always runs");
            continue;
        }
        int64_t bad = 0, first = -1;
        for (int64_t i = 0; i < n; i++)
            if (got[i] != want[i]) bad++, first = first < 0 ? i : first;
        th_check(bad == 0, "geglu bf16 %s n=%lld: %lld elements differ from is_f32_to_bf16(is_v_geglu) (first [%lld]: "
                 "0x%04x, want 0x%04x)", names[v], (long long)n, (long long)bad, (long long)first,
                 first >= 0 ? got[first] : 0, first >= 0 ? want[first] : 0);
    }
    /* the rows kernel: dst[r] = GEGLU of [a | gate] row r */
    int64_t rows = 3, dim = n;
    float *in = malloc((size_t)(rows * 2 * dim) * sizeof(float)), *ref = malloc((size_t)(rows * dim) * sizeof(float));
    uint16_t *dst = malloc((size_t)(rows * dim) * 2);
    for (int64_t r = 0; r < rows; r++) {
        memcpy(in + r * 2 * dim, a, (size_t)dim * sizeof(float));
        memcpy(in + r * 2 * dim + dim, g, (size_t)dim * sizeof(float));
    }
    is_k_geglu(ref, in, rows, dim);
    is_geglu_to_bf16(dst, in, rows, dim);
    int same = 1;
    for (int64_t i = 0; i < rows * dim; i++) same &= dst[i] == is_f32_to_bf16(ref[i]);
    th_check(same, "is_geglu_to_bf16 rows=%lld dim=%lld: is_k_geglu rounded to bf16 bit for bit", (long long)rows,
             (long long)dim);
    free(a), free(g), free(f), free(want), free(got), free(in), free(ref), free(dst);
}

static void test_geglu_bf16(void) {
    const int64_t lens[] = {1, 15, 16, 17, 255, 256, 257, 1280, 5120 + 3};
    for (size_t i = 0; i < sizeof lens / sizeof lens[0]; i++) check_geglu_bf16(lens[i]);
}

/* ---- [X][C] -> [C][X] transpose (the bf16 convolutions' output), every variant this CPU has: the exact
 * values (a copy, or one f32 add), nothing outside the block written. Strides larger than the block;
 * sizes around the 16x16 tiles. */
static void check_transpose_add(int64_t X, int64_t C, int accumulate) {
    int64_t ldi = C + 3, ldo = X + 5, ni = X * ldi, no = C * ldo;
    float *in = rand_buf(ni, 4.0f), *old = rand_buf(no, 2.0f), *want = copy_buf(old, no), *got = malloc((size_t)no * 4);
    for (int64_t c = 0; c < C; c++)
        for (int64_t x = 0; x < X; x++) want[c * ldo + x] = accumulate ? old[c * ldo + x] + in[x * ldi + c] : in[x * ldi + c];
    const char *names[2] = {"portable", "avx512"};
    for (int v = IS_V_ROW_PORTABLE; v <= IS_V_ROW_AVX512; v++) {
        memcpy(got, old, (size_t)no * 4);
        if (is_v_transpose_add_variant(got, ldo, in, ldi, X, C, accumulate, v)) {
            th_check(v != IS_V_ROW_PORTABLE, "transpose_add: the portable variant always runs");
            continue;
        }
        th_check(!memcmp(got, want, (size_t)no * 4), "transpose_add %s X=%lld C=%lld accumulate=%d: exact, padding untouched",
                 names[v], (long long)X, (long long)C, accumulate);
    }
    free(in), free(old), free(want), free(got);
}

/* And the way in: [C][X] f32 to [X][C] bf16 with the convolution's prologue (none; GroupNorm's affine then
 * SiLU; the affine alone; SiLU alone), each element is_f32_to_bf16 of vmath.c's loop on its channel's row
 * (values spanning the rounding cases and SiLU's saturated tails, a NaN and a denormal), nothing outside
 * the block written. */
static void check_transpose_to_bf16(int64_t X, int64_t C, int prologue) {
    int64_t ldi = X + 3, ldo = C + 5, ni = C * ldi, no = X * ldo;
    float *in = rand_buf(ni, 100.0f), *scale = rand_buf(C, 2.0f), *shift = rand_buf(C, 3.0f);
    float *row = malloc((size_t)X * sizeof(float));
    if (ni > 20) in[7] = NAN, in[11] = 1e-39f;
    const float *sc = prologue == 1 || prologue == 2 ? scale : NULL, *sh = sc ? shift : NULL;
    int silu = prologue == 1 || prologue == 3;
    uint16_t *want = malloc((size_t)no * 2), *got = malloc((size_t)no * 2);
    for (int64_t i = 0; i < no; i++) want[i] = (uint16_t)(0x1234 + i);
    for (int64_t c = 0; c < C; c++) {
        if (sc)
            is_v_affine(row, in + c * ldi, X, sc[c], sh[c], silu);
        else if (silu)
            is_v_silu(row, in + c * ldi, X);
        else
            memcpy(row, in + c * ldi, (size_t)X * sizeof(float));
        for (int64_t x = 0; x < X; x++) want[x * ldo + c] = is_f32_to_bf16(row[x]);
    }
    const char *names[2] = {"portable", "avx512"};
    for (int v = IS_V_ROW_PORTABLE; v <= IS_V_ROW_AVX512; v++) {
        for (int64_t i = 0; i < no; i++) got[i] = (uint16_t)(0x1234 + i);
        if (is_v_transpose_to_bf16_variant(got, ldo, in, ldi, X, C, sc, sh, silu, v)) {
            th_check(v != IS_V_ROW_PORTABLE, "transpose_to_bf16: the portable variant always runs");
            continue;
        }
        th_check(!memcmp(got, want, (size_t)no * 2),
                 "transpose_to_bf16 %s X=%lld C=%lld prologue %d: bits of the f32 loop rounded, padding untouched",
                 names[v], (long long)X, (long long)C, prologue);
    }
    free(in), free(scale), free(shift), free(row), free(want), free(got);
}

static void test_transpose_add(void) {
    const int64_t shapes[][2] = {{1, 1}, {16, 16}, {15, 16}, {17, 16}, {16, 33}, {37, 3}, {1024, 16}, {70, 20}, {129, 130}};
    for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++) {
        for (int acc = 0; acc < 2; acc++) check_transpose_add(shapes[i][0], shapes[i][1], acc);
        for (int prologue = 0; prologue < 4; prologue++) check_transpose_to_bf16(shapes[i][0], shapes[i][1], prologue);
    }
}

/* ---- elementwise */

static void test_elementwise(void) {
    const int64_t sizes[] = {1, 7, 1001, 65537};
    for (size_t si = 0; si < 4; si++) {
        int64_t n = sizes[si];
        char what[128];
        void (*act[4])(float *, int64_t) = {is_k_silu, is_k_gelu, is_k_gelu_tanh, is_k_quick_gelu};
        void (*ref[4])(float *, int64_t) = {is_kref_silu, is_kref_gelu, is_kref_gelu_tanh, is_kref_quick_gelu};
        const char *names[4] = {"silu", "gelu", "gelu_tanh", "quick_gelu"};
        for (int a = 0; a < 4; a++) {
            float *x = rand_buf(n, 12.0f), *r = copy_buf(x, n);
            if (n > 2) x[0] = r[0] = -100.0f, x[1] = r[1] = 100.0f; /* saturated tails */
            act[a](x, n);
            ref[a](r, n);
            snprintf(what, sizeof what, "%s n=%lld threads=%d", names[a], (long long)n, g_threads);
            th_close_f32(what, x, r, (size_t)n, 1e-6, 1e-5);
            free(x), free(r);
        }
        float *y = rand_buf(n, 1.0f), *x = rand_buf(n, 1.0f), *r = copy_buf(y, n);
        is_k_add(y, x, n);
        is_kref_add(r, x, n);
        snprintf(what, sizeof what, "add n=%lld", (long long)n);
        th_close_f32(what, y, r, (size_t)n, 0, 0);
        is_k_scale(y, -0.3f, n);
        is_kref_scale(r, -0.3f, n);
        snprintf(what, sizeof what, "scale n=%lld", (long long)n);
        th_close_f32(what, y, r, (size_t)n, 0, 0);
        free(x), free(y), free(r);
    }
    for (int d = 0; d < 3; d++) {
        int64_t rows = 13, n = 321;
        is_tensor b = make_vec(DTYPES[d], n, 1.0f);
        float *y = rand_buf(rows * n, 1.0f), *r = copy_buf(y, rows * n);
        is_k_add_bias_rows(y, rows, &b);
        is_kref_add_bias_rows(r, rows, &b);
        th_close_f32("add_bias_rows", y, r, (size_t)(rows * n), 0, 0);
        free(y), free(r), free_weight(&b);
    }
    const int64_t gshape[][2] = {{1, 1}, {7, 33}, {130, 1280}};
    for (int i = 0; i < 3; i++) {
        int64_t rows = gshape[i][0], dim = gshape[i][1];
        float *in = rand_buf(rows * 2 * dim, 5.0f), *o = rand_buf(rows * dim, 9.0f), *r = rand_buf(rows * dim, 9.0f);
        is_k_geglu(o, in, rows, dim);
        is_kref_geglu(r, in, rows, dim);
        th_close_f32("geglu", o, r, (size_t)(rows * dim), 1e-6, 1e-5);
        free(in), free(o), free(r);
    }
    const int64_t tshape[][2] = {{1, 1}, {1, 9}, {9, 1}, {37, 53}, {130, 1280}, {4096, 5}};
    for (int i = 0; i < 6; i++) {
        int64_t R = tshape[i][0], C = tshape[i][1];
        float *in = rand_buf(R * C, 1.0f), *o = rand_buf(R * C, 9.0f), *r = rand_buf(R * C, 9.0f);
        is_k_transpose(o, in, R, C);
        is_kref_transpose(r, in, R, C);
        th_close_f32("transpose", o, r, (size_t)(R * C), 0, 0);
        free(in), free(o), free(r);
    }
    const int64_t ushape[][3] = {{1, 1, 1}, {3, 5, 7}, {64, 33, 17}};
    for (int i = 0; i < 3; i++) {
        int64_t C = ushape[i][0], H = ushape[i][1], W = ushape[i][2], n = 4 * C * H * W;
        float *in = rand_buf(C * H * W, 1.0f), *o = rand_buf(n, 9.0f), *r = rand_buf(n, 9.0f);
        is_k_upsample_nearest2x(o, in, C, H, W);
        is_kref_upsample_nearest2x(r, in, C, H, W);
        th_close_f32("upsample_nearest2x", o, r, (size_t)n, 0, 0);
        free(in), free(o), free(r);
    }
}

/* ---- hand-checked values */

static is_tensor f32_tensor(const float *v, int ndim, const int64_t *shape) {
    is_tensor t = make_weight(IS_DT_F32, ndim, shape, 0.0f);
    memcpy((void *)t.data, v, t.nbytes);
    return t;
}

static void test_hand_values(void) {
    /* linear: [1,1] @ [[1,2],[3,4]]^T + [10,20] = [13, 27] */
    float wv[4] = {1, 2, 3, 4}, bv[2] = {10, 20}, x[2] = {1, 1}, y[2];
    int64_t ws[2] = {2, 2}, bs[1] = {2};
    is_tensor w = f32_tensor(wv, 2, ws), b = f32_tensor(bv, 1, bs);
    is_k_linear(y, x, 1, &w, &b);
    th_check(y[0] == 13.0f && y[1] == 27.0f, "linear hand values: got [%g, %g], want [13, 27]", y[0], y[1]);
    free_weight(&w), free_weight(&b);

    /* 3x3 all-ones conv on a 3x3 all-ones image, padding 1: corners 4, edges 6, centre 9 (+0.5 bias). */
    float ones9[9], cb[1] = {0.5f}, out[9];
    for (int i = 0; i < 9; i++) ones9[i] = 1.0f;
    int64_t cs[4] = {1, 1, 3, 3}, cbs[1] = {1};
    is_tensor cw = f32_tensor(ones9, 4, cs), cbt = f32_tensor(cb, 1, cbs);
    is_k_conv2d(out, ones9, 1, 3, 3, &cw, &cbt, 1, 1);
    const float want[9] = {4.5f, 6.5f, 4.5f, 6.5f, 9.5f, 6.5f, 4.5f, 6.5f, 4.5f};
    th_close_f32("conv2d hand values", out, want, 9, 0, 0);
    free_weight(&cw), free_weight(&cbt);

    /* layer_norm [1,2,3] -> [-sqrt(1.5), 0, sqrt(1.5)] (eps 0) */
    float ln[3] = {1, 2, 3};
    is_k_layer_norm(ln, ln, 1, 3, NULL, NULL, 0.0f);
    const float lnw[3] = {-1.22474487f, 0.0f, 1.22474487f};
    th_close_f32("layer_norm hand values", ln, lnw, 3, 1e-6, 1e-6);

    /* group_norm, 2 groups of one channel each: [0, 2] becomes [-1, 1], then SiLU. */
    float gx[4] = {0, 2, 5, 7}, gg[2] = {1, 1}, gb[2] = {0, 0};
    int64_t gs[1] = {2};
    is_tensor gt = f32_tensor(gg, 1, gs), bt = f32_tensor(gb, 1, gs);
    is_k_group_norm(gx, gx, 2, 2, 2, 0.0f, &gt, &bt, 1);
    const float gw[2] = {-0.268941421f, 0.731058578f};
    th_close_f32("group_norm+silu hand values", gx, gw, 2, 1e-6, 1e-6);
    free_weight(&gt), free_weight(&bt);

    /* attention with one key returns its value; two equal keys average the values; causal row 0 sees key 0. */
    float q[4] = {0.3f, -1.0f, 2.0f, 0.5f}, k[4] = {1, 2, 1, 2}, v[4] = {1, 2, 3, 6}, o[4] = {0, 0, 0, 0};
    is_k_attention(o, 2, q, 2, k, 2, v, 2, 2, 1, 1, 2, 0, 1.0f, 0);
    th_check(fabsf(o[0] - 1) < 1e-6f && fabsf(o[1] - 2) < 1e-6f && fabsf(o[2] - 1) < 1e-6f,
             "attention with one key returns v");
    is_k_attention(o, 2, q, 2, k, 2, v, 2, 2, 2, 1, 2, 0, 1.0f, 0);
    th_check(fabsf(o[0] - 2) < 1e-6f && fabsf(o[1] - 4) < 1e-6f, "attention over equal keys averages v");
    is_k_attention(o, 2, q, 2, k, 2, v, 2, 2, 2, 1, 2, 1, 2.0f, 1);
    th_check(fabsf(o[0] - 4) < 1e-6f && fabsf(o[1] - 8) < 1e-6f && fabsf(o[2] - 6) < 1e-6f,
             "causal accumulate: row 0 += 2 * v0, row 1 += 2 * mean(v)");

    float act[3] = {1.0f, 1.0f, 1.0f};
    is_k_silu(act, 1);
    is_k_gelu(act + 1, 1);
    is_k_quick_gelu(act + 2, 1);
    const float actw[3] = {0.731058578f, 0.841344746f, 0.845796716f};
    th_close_f32("silu/gelu/quick_gelu(1)", act, actw, 3, 1e-6, 1e-6);
    float gin[2] = {3.0f, 1.0f}, gout[1];
    is_k_geglu(gout, gin, 1, 1);
    th_check(fabsf(gout[0] - 3 * 0.841344746f) < 1e-6f, "geglu(3, gate 1) = 3*gelu(1)");
}

/* ---- FLOP accounting: each kernel adds what it performs (2 per multiply-add). */

static void test_flops(void) {
    int64_t ws[2] = {5, 3};
    is_tensor w = make_weight(IS_DT_F16, 2, ws, 1.0f);
    float x[7 * 3], y[7 * 5];
    for (int i = 0; i < 21; i++) x[i] = 1.0f;
    is_flops_reset();
    is_k_linear(y, x, 7, &w, NULL);
    th_check(is_flops_total() == 2.0 * 7 * 5 * 3, "linear counts 2*M*N*K flops (got %g)", is_flops_total());
    free_weight(&w);

    int64_t cs[4] = {4, 2, 3, 3};
    is_tensor cw = make_weight(IS_DT_F16, 4, cs, 1.0f);
    float cin[2 * 6 * 5], cout[4 * 3 * 3];
    for (int i = 0; i < 60; i++) cin[i] = 1.0f;
    is_flops_reset();
    is_k_conv2d(cout, cin, 2, 6, 5, &cw, NULL, 2, 1);
    th_check(is_flops_total() == 2.0 * 4 * 3 * 3 * 2 * 9, "conv2d counts 2*Cout*Ho*Wo*Cin*kh*kw (got %g)",
             is_flops_total());
    free_weight(&cw);

    float *q = rand_buf(9 * 8, 1.0f), *o = rand_buf(9 * 8, 1.0f);
    is_flops_reset();
    is_k_attention(o, 8, q, 8, q, 8, q, 8, 9, 9, 2, 4, 0, 1.0f, 0);
    th_check(is_flops_total() >= 4.0 * 9 * 9 * 4 * 2, "attention counts at least 4*Nq*Nk*dh*heads (got %g)",
             is_flops_total());
    free(q), free(o);
}

/* Scratch memory: reserve up front, report, release; kernels regrow it afterwards. */
static void test_scratch(void) {
    th_fails(is_kernels_reserve(-1), "negative", "is_kernels_reserve(-1) is an argument error");
    th_ok(is_kernels_reserve(1 << 20), "is_kernels_reserve(1M weights)");
    th_check(is_kernels_scratch_bytes() >= ((size_t)1 << 22), "scratch holds the reserved weight buffer (%zu bytes)",
             is_kernels_scratch_bytes());
    is_kernels_release();
    th_check(is_kernels_scratch_bytes() == 0, "release frees all scratch (%zu bytes left)", is_kernels_scratch_bytes());
    check_conv(8, 9, 9, 8, 3, 1, 1, IS_DT_F16, 1);
    check_linear(3, 40, 24, IS_DT_F16, 1, IS_DT_F16);
    th_check(is_kernels_scratch_bytes() > 0, "kernels regrow scratch after a release");
}

int main(void) {
    test_hand_values();
    test_flops();
    test_scratch();
    test_softmax_row_bf16();
    test_geglu_bf16();
    test_transpose_add();
    test_linear_thread_invariance();
    test_conv_thread_invariance();
    for (g_threads = 1; g_threads <= 2; g_threads++) {
        is_set_threads(g_threads);
        test_linear();
        test_gemm();
        test_conv2d();
        test_conv2d_fused();
        test_group_norm();
        test_layer_norm();
        test_attention();
        test_elementwise();
    }
    return th_done();
}
