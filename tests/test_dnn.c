/* The bf16 compute path (src/kernels/dnn.h) against the exact f32 kernels (kernels.h).
 *
 * Error bounds used here (derivation in docs/PRECISION.md, "Kernel tests"). u = 2^-8 is bf16's unit
 * roundoff (8 significant bits, round to nearest even: |bf16(x) - x| <= u |x|), e = 2^-24 f32's. For one
 * output element y = sum_k a_k b_k (+ bias, + the old value when accumulating), K terms, let
 *   L1 = sum_k |a_k b_k| + |bias| (+ |old|)    the element's L1 norm, computed with the f32 kernels on |a|, |b|.
 * - bf16-exact operands (rounded with is_round_bf16 before the call): every product is exact in f32, so the
 *   bf16 path and the f32 kernel differ only by their f32 summation orders. Each partial sum is rounded with
 *   error <= e |partial| <= e L1; those errors are independent with random signs, so the difference of two
 *   orders is <= 2 * 4 sqrt(K) e L1 with overwhelming probability (the rigorous worst case is 2 K e L1):
 *       |got - f32| <= EXACT(K) L1,  EXACT(K) = (8 sqrt(K) + 4) e   (3.1e-6 for K = 54, 2.2e-5 for K = 5760).
 *   A bf16-rounded output, a missing bias or a missing accumulate breaks it by 10x-10^5x.
 * - arbitrary operands: each product gains a relative error <= (1+u)^2 - 1 = 2u + u^2, the bias <= u, so
 *       |got - f32| <= (2u + u^2) L1 + u |bias| + EXACT(K) L1            (rigorous)
 *   and, over a whole output with many elements, the rounding errors (relative rms <= u/sqrt(3) each) give
 *       ||got - f32||_2 <= 1.5 sqrt(2/3) u sqrt(sum_n sum_k (a_k b_nk)^2)   (statistical, 1.5 = fluctuation margin;
 *   x sqrt((1 + 25/9)/2) for a 3x3 convolution of a nearest-2x input, whose repeated values share errors)
 *   and at least a quarter of that (else bf16 did not run: a silent f32 fallback).
 * - attention: scores in bf16 products with f32 accumulation, softmax in f32, probabilities rounded to
 *   bf16 for the AV product. With bf16-exact q, k, v and a power-of-two scale 1/sqrt(dh) only the rounding
 *   of the probabilities remains: |got - f32| <= alpha (2u + 2 dS) A, A_ic = sum_j p_ij |v_jc|, dS the f32
 *   error of the scores. With arbitrary q, k, v: scores err <= dS = 2u scale max_j sum_d |q_d k_jd|, which
 *   moves p_j by <= 2 dS p_j: |got - f32| <= alpha ((3u + 2 dS (1 + 2 dS)) A) (+ the f32 terms).
 *
 * Also: d == NULL runs the f32 kernels bit for bit; an unpacked weight runs in f32 bit for bit; padding
 * columns of strided attention rows are never written; oneDNN picks its AMX kernels on an AMX CPU without
 * any environment variable; with oneDNN capped below bf16 (ONEDNN_MAX_CPU_ISA=AVX2, in a child process)
 * bf16 resolves to f32 and a network set to BF16 gives the f32 numbers. */
#include <cpuid.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"
#include "instantstyle.h"
#include "kernels/bf16.h"
#include "kernels/dnn.h"
#include "kernels/dnn_internal.h"
#include "kernels/kernels.h"

#define U_BF16 (1.0 / 256.0)
#define U_F32 (1.0 / 16777216.0)

static double exact_rel(int64_t K) { return (8.0 * sqrt((double)K) + 4.0) * U_F32; }

/* ---- random numbers and test tensors (as tests/test_kernels.c) */

static uint64_t g_rng = 0x2545f4914f6cdd1dull;

static float frand(void) { return th_frand(&g_rng); } /* uniform in [-1, 1) */

/* A bf16-exact value that is also exact in F16 (no f16 subnormals). */
static float exactify(float v) {
    float r[1] = {v};
    is_round_bf16(r, 1);
    if (fabsf(r[0]) < 1.0f / 8192.0f) r[0] = 0.0f;
    return r[0];
}

static float *rand_buf(int64_t n, float scale, int exact) {
    float *p = malloc((size_t)(n > 0 ? n : 1) * sizeof(float));
    for (int64_t i = 0; i < n; i++) p[i] = exact ? exactify(scale * frand()) : scale * frand();
    return p;
}

static float *copy_buf(const float *src, int64_t n) {
    float *p = malloc((size_t)(n > 0 ? n : 1) * sizeof(float));
    memcpy(p, src, (size_t)n * sizeof(float));
    return p;
}

static is_tensor make_weight(is_dtype dt, int ndim, const int64_t *shape, float scale, int exact) {
    int64_t n = 1;
    for (int i = 0; i < ndim; i++) n *= shape[i];
    float *v = rand_buf(n, scale, exact);
    is_tensor t = th_weight(dt, ndim, shape, v);
    free(v);
    return t;
}

/* F32 tensor of f(w) for every element of w (|w| or w^2): for L1 norms through the f32 kernels. */
static is_tensor map_tensor(const is_tensor *w, int square) {
    float *v = malloc((size_t)w->numel * sizeof(float));
    is_tensor_to_f32(w, v);
    for (int64_t i = 0; i < w->numel; i++) v[i] = square ? v[i] * v[i] : fabsf(v[i]);
    is_tensor t = th_weight(IS_DT_F32, w->ndim, w->shape, v);
    free(v);
    return t;
}

static void free_tensor(is_tensor *t) { free((void *)t->data); }

static float *map_buf(const float *x, int64_t n, int square) {
    float *p = malloc((size_t)(n > 0 ? n : 1) * sizeof(float));
    for (int64_t i = 0; i < n; i++) p[i] = square ? x[i] * x[i] : fabsf(x[i]);
    return p;
}

static const is_dtype DTYPES[3] = {IS_DT_F32, IS_DT_F16, IS_DT_BF16};

/* ---- the bounds */

typedef struct {
    double worst_ratio;   /* max over elements of |diff| / bound */
    size_t worst;
} bound_report;

/* |got - ref| <= bound[i] elementwise (NaN fails). */
static int within(const char *what, const float *got, const float *ref, const double *bound, int64_t n,
                  bound_report *rep) {
    double worst = 0;
    size_t wi = 0, bad = 0;
    for (int64_t i = 0; i < n; i++) {
        double d = fabs((double)got[i] - ref[i]);
        double r = bound[i] > 0 ? d / bound[i] : (d > 0 ? INFINITY : 0);
        if (isnan(d)) r = INFINITY;
        if (!(r <= 1.0)) bad++;
        if (r > worst || isnan(r)) worst = r, wi = (size_t)i;
    }
    if (rep) rep->worst_ratio = worst, rep->worst = wi;
    th_check(bad == 0, "%s: %zu of %lld elements beyond the bound; worst [%zu]: got %.9g, f32 %.9g, bound %.3g (x%.3g)",
             what, bad, (long long)n, wi, n ? got[wi] : 0.0, n ? ref[wi] : 0.0, n ? bound[wi] : 0.0, worst);
    return bad == 0;
}

static int same_bits(const float *a, const float *b, int64_t n) { return !memcmp(a, b, (size_t)n * sizeof(float)); }

/* Statistical check of a bf16 run with arbitrary operands: ||diff||^2 against (2/3) u^2 sum (a b)^2. */
/* corr: the input's rounding errors are shared by several terms (nearest-2x upsampling repeats each value
 * in a 3x3 window 25/9 times in the mean square), which multiplies the prediction by sqrt((1 + 25/9) / 2). */
static void l2_check(const char *what, const float *got, const float *ref, int64_t n, double sum_sq_terms,
                     double corr, int must_have_run) {
    double d2 = 0;
    for (int64_t i = 0; i < n; i++) d2 += ((double)got[i] - ref[i]) * ((double)got[i] - ref[i]);
    double pred = corr * sqrt(2.0 / 3.0) * U_BF16 * sqrt(sum_sq_terms);
    double ratio = pred > 0 ? sqrt(d2) / pred : 0;
    th_check(ratio <= 1.5, "%s: ||bf16 - f32|| = %.3g is %.2fx the predicted rounding error %.3g (limit 1.5x)", what,
             sqrt(d2), ratio, pred);
    if (must_have_run)
        th_check(ratio >= 0.25, "%s: ||bf16 - f32|| = %.3g is only %.2fx the predicted bf16 rounding error %.3g: "
                 "did the product run in bf16?", what, sqrt(d2), ratio, pred);
    printf("  ok %s: ||bf16-f32|| / predicted rounding error = %.3f\n", what, ratio);
}

/* ------------------------------------------------------------------ linear */

/* A streamed weight (a network's first use with stream_first: no pack, the weight rounded into a plain bf16
 * buffer per product) gives the packed product's bits: oneDNN runs the same kernel on both layouts; no
 * fallback, nothing packed, and the streaming context ends with packing. */
static void check_streamed(const float *want, const float *x, int64_t M, const is_tensor *W,
                           const is_tensor *bias, const char *what) {
    is_dnn *d = NULL;
    if (!th_ok(is_dnn_create(&d), "is_dnn_create")) return;
    d->streaming = 1;
    int64_t N = W->shape[0];
    float *got = rand_buf(M * N, 9.0f, 0);
    for (int rep = 0; rep < 2; rep++) {
        is_dnn_linear(d, got, x, M, W, bias);
        th_check(same_bits(got, want, M * N) && !is_dnn_is_packed(d, W) && is_dnn_packed_bytes(d) == 0 &&
                     is_dnn_fallbacks(d) == 0,
                 "%s: streamed weight%s = the packed product bit for bit, nothing packed", what,
                 rep ? " (second call)" : "");
    }
    free(got);
    is_dnn_free(d);
}

/* A fresh context per check (with bf16 hardware): the test's weights are freed afterwards and a later one
 * may get the same address; test_shared_context covers one context holding several weights. */
static void check_linear(int bf16, int64_t M, int64_t N, int64_t K, is_dtype wdt, is_dtype bdt, int with_bias,
                         int exact) {
    is_dnn *d = NULL;
    if (bf16 && !th_ok(is_dnn_create(&d), "is_dnn_create")) return;
    char what[200];
    snprintf(what, sizeof what, "dnn linear M=%lld N=%lld K=%lld W=%s bias=%s %s", (long long)M, (long long)N,
             (long long)K, is_dtype_name(wdt), with_bias ? is_dtype_name(bdt) : "none",
             exact ? "bf16-exact operands" : "arbitrary operands");
    int64_t ws[2] = {N, K};
    is_tensor W = make_weight(wdt, 2, ws, 0.5f, exact);
    is_tensor b = make_weight(bdt, 1, &N, 2.0f, exact);
    const is_tensor *bp = with_bias ? &b : NULL;
    float *x = rand_buf(M * K, 1.0f, exact);
    float *ref = rand_buf(M * N, 9.0f, 0), *got = rand_buf(M * N, 9.0f, 0);
    is_k_linear(ref, x, M, &W, bp);

    /* d == NULL, and a weight not packed: the f32 kernel bit for bit. */
    is_dnn_linear(NULL, got, x, M, &W, bp);
    th_check(same_bits(got, ref, M * N), "%s: d == NULL is the f32 kernel bit for bit", what);
    if (d) {
        th_check(!is_dnn_is_packed(d, &W), "%s: not packed yet", what);
        th_check(is_dnn_linear_impl(d, M, &W) == NULL, "%s: no bf16 implementation for an unpacked weight", what);
        memset(got, 0x7f, (size_t)(M * N) * sizeof(float));
        is_dnn_linear(d, got, x, M, &W, bp);
        th_check(same_bits(got, ref, M * N), "%s: unpacked weight runs the f32 kernel bit for bit", what);
    }
    if (!d) goto done;

    size_t before = is_dnn_packed_bytes(d);
    th_ok(is_dnn_pack(d, NULL, &W), "pack linear weight");
    size_t after = is_dnn_packed_bytes(d);
    th_check(is_dnn_is_packed(d, &W) && after >= before + (size_t)(N * K) * 2,
             "%s: packed (%zu -> %zu bytes, >= 2 bytes per weight)", what, before, after);
    th_ok(is_dnn_pack(d, NULL, &W), "pack the same weight again");
    th_check(is_dnn_packed_bytes(d) == after, "%s: packing twice is a no-op", what);

    for (int rep = 0; rep < 2; rep++) { /* the second call reuses the primitive */
        for (int64_t i = 0; i < M * N; i++) got[i] = 9.0f * frand(); /* garbage must be overwritten */
        is_dnn_linear(d, got, x, M, &W, bp);
        /* L1 norms: |x| |W|^T + |b| with the f32 kernel */
        is_tensor aW = map_tensor(&W, 0), ab = map_tensor(&b, 0);
        float *ax = map_buf(x, M * K, 0), *l1 = malloc((size_t)(M * N) * sizeof(float));
        is_k_linear(l1, ax, M, &aW, with_bias ? &ab : NULL);
        double *bound = malloc((size_t)(M * N) * sizeof(double));
        float *bvals = malloc((size_t)N * sizeof(float));
        is_tensor_to_f32(&b, bvals);
        for (int64_t i = 0; i < M * N; i++) {
            double L1 = l1[i], bias_abs = with_bias ? fabs(bvals[i % N]) : 0;
            bound[i] = exact ? exact_rel(K) * L1
                             : (2 * U_BF16 + U_BF16 * U_BF16 + exact_rel(K)) * L1 + U_BF16 * bias_abs;
        }
        char w2[240];
        snprintf(w2, sizeof w2, "%s%s", what, rep ? " (second call)" : "");
        bound_report r;
        if (within(w2, got, ref, bound, M * N, &r))
            printf("  ok %s: worst |bf16-f32| / bound = %.3f\n", w2, r.worst_ratio);
        if (!exact && rep == 0 && M * N >= 256 && K >= 16) {
            is_tensor sW = map_tensor(&W, 1);
            float *sx = map_buf(x, M * K, 1), *s2 = malloc((size_t)(M * N) * sizeof(float));
            is_k_linear(s2, sx, M, &sW, NULL);
            double sum = 0;
            for (int64_t i = 0; i < M * N; i++) sum += s2[i];
            l2_check(w2, got, ref, M * N, sum, 1.0, is_dnn_linear_impl(d, M, &W) != NULL);
            free(sx), free(s2), free_tensor(&sW);
        }
        free(ax), free(l1), free(bound), free(bvals);
        free_tensor(&aW), free_tensor(&ab);
    }
    check_streamed(got, x, M, &W, bp, what);
done:
    is_dnn_free(d);
    free(x), free(ref), free(got);
    free_tensor(&W), free_tensor(&b);
}

static void test_linear(int d) {
    const int64_t Ms[] = {1, 7, 77, 301}, Ns[] = {5, 257, 1283}, Ks[] = {3, 33, 320};
    int i = 0;
    for (size_t mi = 0; mi < 4; mi++)
        for (size_t ni = 0; ni < 3; ni++)
            for (size_t ki = 0; ki < 3; ki++, i++)
                check_linear(d, Ms[mi], Ns[ni], Ks[ki], DTYPES[i % 3], DTYPES[(i / 3) % 3], i % 2, (i / 2) % 2);
    /* UNet-like shapes: attention projections and the feed-forward of a 32x32 latent, text tokens */
    check_linear(d, 1024, 640, 640, IS_DT_F16, IS_DT_F16, 1, 1);
    check_linear(d, 1024, 640, 640, IS_DT_F16, IS_DT_F16, 1, 0);
    check_linear(d, 77, 1280, 2048, IS_DT_F16, IS_DT_F16, 0, 1);
    check_linear(d, 77, 1280, 2048, IS_DT_BF16, IS_DT_BF16, 0, 0);
    check_linear(d, 300, 2560, 640, IS_DT_F32, IS_DT_F32, 1, 0);
    check_linear(d, 2, 1280, 2816, IS_DT_F16, IS_DT_F16, 1, 0); /* time embedding: M = batch */
}

/* ------------------------------------------------------------------ residual products */

/* is_dnn_linear_residual: y += src W^T + bias, src = x or GEGLU(x). Without a context (or with the weight
 * not packed) it is is_k_geglu + is_k_linear + is_k_add bit for bit; with the weight packed, the fused bf16
 * product (GEGLU rounded straight into the bf16 operand) gives the bits of the unfused bf16 sequence
 * (is_k_geglu, is_dnn_linear, is_k_add), with no fallback to f32; that sequence's accuracy is check_linear's.
 * GEGLU's f32 buffer is not touched in bf16. */
static void check_residual(int bf16, int64_t M, int64_t N, int64_t K, int geglu, int with_bias) {
    char what[160];
    snprintf(what, sizeof what, "dnn residual M=%lld N=%lld K=%lld%s%s", (long long)M, (long long)N, (long long)K,
             geglu ? " GEGLU" : "", with_bias ? " bias" : "");
    int64_t ws[2] = {N, K}, kin = geglu ? 2 * K : K;
    is_tensor W = make_weight(IS_DT_F16, 2, ws, 0.2f, 0);
    is_tensor b = make_weight(IS_DT_F16, 1, &N, 1.0f, 0);
    const is_tensor *bp = with_bias ? &b : NULL;
    float *x = rand_buf(M * kin, 3.0f, 0), *y0 = rand_buf(M * N, 2.0f, 0);
    float *ref = copy_buf(y0, M * N), *got = copy_buf(y0, M * N);
    float *g = rand_buf(M * K, 1.0f, 0), *tmp = rand_buf(M * N, 1.0f, 0);
    float *gr = malloc((size_t)(M * K) * sizeof(float)), *tr = malloc((size_t)(M * N) * sizeof(float));
    if (geglu) is_k_geglu(gr, x, M, K);
    const float *src = geglu ? gr : x;
    is_k_linear(tr, src, M, &W, bp);
    is_k_add(ref, tr, M * N);
    is_dnn_linear_residual(NULL, got, x, M, &W, bp, geglu ? g : NULL, tmp);
    th_check(same_bits(got, ref, M * N), "%s: d == NULL is is_k_geglu + is_k_linear + is_k_add bit for bit", what);

    is_dnn *d = NULL;
    if (bf16 && th_ok(is_dnn_create(&d), "is_dnn_create")) {
        memcpy(got, y0, (size_t)(M * N) * sizeof(float));
        is_dnn_linear_residual(d, got, x, M, &W, bp, geglu ? g : NULL, tmp);
        th_check(same_bits(got, ref, M * N), "%s: an unpacked weight runs the f32 kernels bit for bit", what);
        th_ok(is_dnn_pack(d, NULL, &W), "pack the residual product's weight");
        /* the unfused bf16 sequence */
        memcpy(ref, y0, (size_t)(M * N) * sizeof(float));
        is_dnn_linear(d, tr, src, M, &W, bp);
        is_k_add(ref, tr, M * N);
        for (int rep = 0; rep < 2; rep++) { /* the second call reuses the primitive */
            float *g0 = copy_buf(g, M * K);
            memcpy(got, y0, (size_t)(M * N) * sizeof(float));
            is_dnn_linear_residual(d, got, x, M, &W, bp, geglu ? g : NULL, tmp);
            th_check(same_bits(got, ref, M * N), "%s%s: the fused bf16 product gives the unfused bf16 bits", what,
                     rep ? " (second call)" : "");
            th_check(same_bits(g, g0, M * K), "%s: GEGLU is not stored in f32 in bf16", what);
            free(g0);
        }
        th_check(is_dnn_fallbacks(d) == 0, "%s: every product ran in bf16 (%lld fallbacks)", what,
                 (long long)is_dnn_fallbacks(d));
        is_dnn_free(d);
    }
    free(x), free(y0), free(ref), free(got), free(g), free(tmp), free(gr), free(tr);
    free_tensor(&W), free_tensor(&b);
}

static void test_residual(int bf16) {
    check_residual(bf16, 1, 5, 3, 0, 1);
    check_residual(bf16, 7, 33, 17, 1, 1);
    check_residual(bf16, 77, 257, 320, 0, 0);
    check_residual(bf16, 301, 320, 1283, 1, 1);
    check_residual(bf16, 1024, 640, 640, 0, 1);  /* an attention's out projection at a 32x32 latent */
    check_residual(bf16, 1024, 640, 2560, 1, 1); /* its feed-forward's second product */
}

/* ------------------------------------------------------------------ convolution */

typedef struct {
    int64_t Cin, H, W, Cout, k;
    int stride, pad, norm, silu, up, acc, bias;
    is_dtype wdt;
} conv_case;

/* Per-channel scale/shift: exact when asked (x = i/8, scale in {0.5, 1, 2, -1}, shift = j/8, so
 * x*scale + shift has at most 8 significant bits and is the same in every evaluation order). */
static void make_affine(int64_t Cin, int exact, float *sc, float *sh) {
    static const float scales[4] = {0.5f, 1.0f, 2.0f, -1.0f};
    for (int64_t c = 0; c < Cin; c++) {
        if (exact) {
            sc[c] = scales[c % 4];
            sh[c] = (float)((int)(8 * frand())) / 8.0f;
        } else {
            sc[c] = 0.5f + frand();
            sh[c] = frand();
        }
    }
}

static float *conv_input(int64_t n, int exact, int norm) {
    float *x = malloc((size_t)n * sizeof(float));
    for (int64_t i = 0; i < n; i++) x[i] = exact && norm ? (float)((int)(16 * frand())) / 8.0f : 2.0f * frand();
    if (exact && !norm) is_round_bf16(x, n);
    return x;
}

/* The transformed input T(x) (upsampling, scale/shift, SiLU) as the kernel `dd` computes it, on the full
 * (upsampled) grid: a 1x1 identity convolution through the fused kernel (products by 1 and 0 are exact,
 * so on the bf16 path this returns bf16(T) exactly as that path rounds it). */
static float *transformed(is_dnn *dd, const conv_case *c, const float *x, const float *sc, const float *sh,
                          int64_t Hv, int64_t Wv) {
    int64_t ws[4] = {c->Cin, c->Cin, 1, 1};
    float *eye = calloc((size_t)(c->Cin * c->Cin), sizeof(float));
    for (int64_t i = 0; i < c->Cin; i++) eye[i * c->Cin + i] = 1.0f;
    is_tensor I = th_weight(IS_DT_F32, 4, ws, eye);
    if (dd) th_ok(is_dnn_pack(dd, NULL, &I), "pack identity");
    float *t = malloc((size_t)(c->Cin * Hv * Wv) * sizeof(float));
    is_dnn_conv2d_fused(dd, t, x, c->Cin, c->H, c->W, &I, NULL, 1, 0, c->norm ? sc : NULL, c->norm ? sh : NULL,
                        c->silu, c->up, 0);
    free(eye);
    free_tensor(&I); /* dd is freed by the caller before any later tensor may reuse this address */
    return t;
}

static void check_conv(const conv_case *c, int exact) {
    char what[260];
    snprintf(what, sizeof what, "dnn conv Cin=%lld %lldx%lld Cout=%lld k=%lld s=%d p=%d norm=%d silu=%d up=%d acc=%d "
             "bias=%d W=%s %s", (long long)c->Cin, (long long)c->H, (long long)c->W, (long long)c->Cout,
             (long long)c->k, c->stride, c->pad, c->norm, c->silu, c->up, c->acc, c->bias, is_dtype_name(c->wdt),
             exact ? "bf16-exact operands" : "arbitrary operands");
    /* A fresh context per case: the identity weights above are freed and their addresses reused. */
    is_dnn *d = NULL;
    if (!th_ok(is_dnn_create(&d), "is_dnn_create")) return;
    int64_t ws[4] = {c->Cout, c->Cin, c->k, c->k};
    is_tensor w = make_weight(c->wdt, 4, ws, 0.3f, exact), b = make_weight(c->wdt, 1, &c->Cout, 1.0f, exact);
    const is_tensor *bp = c->bias ? &b : NULL;
    int64_t Hv = c->up ? 2 * c->H : c->H, Wv = c->up ? 2 * c->W : c->W;
    int64_t Ho = is_conv_out_size(Hv, c->k, c->stride, c->pad), Wo = is_conv_out_size(Wv, c->k, c->stride, c->pad);
    int64_t nin = c->Cin * c->H * c->W, nt = c->Cin * Hv * Wv, n = c->Cout * Ho * Wo, K = c->Cin * c->k * c->k;
    float *x = conv_input(nin, exact, c->norm);
    float *sc = malloc((size_t)c->Cin * sizeof(float)), *sh = malloc((size_t)c->Cin * sizeof(float));
    make_affine(c->Cin, exact, sc, sh);
    const float *scp = c->norm ? sc : NULL, *shp = c->norm ? sh : NULL;
    float *old = rand_buf(n, 3.0f, 0);
    float *ref = copy_buf(old, n), *got = copy_buf(old, n);

    is_k_conv2d_fused(ref, x, c->Cin, c->H, c->W, &w, bp, c->stride, c->pad, scp, shp, c->silu, c->up, c->acc);
    is_dnn_conv2d_fused(NULL, got, x, c->Cin, c->H, c->W, &w, bp, c->stride, c->pad, scp, shp, c->silu, c->up, c->acc);
    th_check(same_bits(got, ref, n), "%s: d == NULL is the f32 kernel bit for bit", what);
    memcpy(got, old, (size_t)n * sizeof(float));
    is_dnn_conv2d_fused(d, got, x, c->Cin, c->H, c->W, &w, bp, c->stride, c->pad, scp, shp, c->silu, c->up, c->acc);
    th_check(same_bits(got, ref, n), "%s: unpacked weight runs the f32 kernel bit for bit", what);
    th_check(is_dnn_conv_impl(d, c->Cin, Hv, Wv, &w, c->stride, c->pad) == NULL, "%s: no implementation unpacked", what);

    th_ok(is_dnn_pack(d, NULL, &w), "pack conv weight");
    th_check(is_dnn_is_packed(d, &w), "%s: packed", what);
    /* The transformed input: as the f32 kernel computes it, and as the bf16 path rounds it. */
    float *t32 = transformed(NULL, c, x, sc, sh, Hv, Wv);
    float *t16 = transformed(d, c, x, sc, sh, Hv, Wv);
    {
        float *r = copy_buf(t32, nt);
        is_round_bf16(r, nt);
        int64_t flips = 0, far = 0;
        for (int64_t i = 0; i < nt; i++) {
            if (r[i] != t16[i]) flips++;
            if (fabs((double)t16[i] - t32[i]) > 2 * U_BF16 * fabs(t32[i])) far++;
        }
        /* equal to round_bf16 of the f32 prologue, up to rare one-ulp flips where the two prologues'
         * f32 values (e.g. their SiLU) straddle a bf16 rounding boundary */
        th_check(far == 0 && flips * 1000 <= nt, "%s: bf16 path's transformed input = bf16(f32 prologue) (%lld of %lld "
                 "differ by one bf16 ulp, %lld by more)", what, (long long)flips, (long long)nt, (long long)far);
        free(r);
    }
    for (int rep = 0; rep < 2; rep++) {
        char w2[300];
        snprintf(w2, sizeof w2, "%s%s", what, rep ? " (second call)" : "");
        memcpy(got, old, (size_t)n * sizeof(float));
        is_dnn_conv2d_fused(d, got, x, c->Cin, c->H, c->W, &w, bp, c->stride, c->pad, scp, shp, c->silu, c->up, c->acc);
        /* Reference: the f32 convolution of the operands the bf16 path saw (exact) / of T itself. */
        float *r = copy_buf(old, n);
        is_k_conv2d_fused(r, exact ? t16 : t32, c->Cin, Hv, Wv, &w, bp, c->stride, c->pad, NULL, NULL, 0, 0, c->acc);
        /* L1 = conv(|T|, |w|) + |b| + |old| */
        is_tensor aw = map_tensor(&w, 0), ab = map_tensor(&b, 0);
        float *at = map_buf(t32, nt, 0), *l1 = malloc((size_t)n * sizeof(float));
        is_k_conv2d(l1, at, c->Cin, Hv, Wv, &aw, c->bias ? &ab : NULL, c->stride, c->pad);
        double *bound = malloc((size_t)n * sizeof(double));
        float *bv = malloc((size_t)c->Cout * sizeof(float));
        is_tensor_to_f32(&b, bv);
        for (int64_t i = 0; i < n; i++) {
            double L1 = l1[i] + (c->acc ? fabs(old[i]) : 0), babs = c->bias ? fabs(bv[i / (Ho * Wo)]) : 0;
            bound[i] = exact ? exact_rel(K) * L1
                             : (2 * U_BF16 + U_BF16 * U_BF16 + exact_rel(K)) * L1 + U_BF16 * babs;
        }
        bound_report rr;
        if (within(w2, got, r, bound, n, &rr)) printf("  ok %s: worst |bf16-f32| / bound = %.3f\n", w2, rr.worst_ratio);
        if (!exact && rep == 0 && n >= 256 && K >= 16) {
            is_tensor sw = map_tensor(&w, 1);
            float *st = map_buf(t32, nt, 1), *s2 = malloc((size_t)n * sizeof(float));
            is_k_conv2d(s2, st, c->Cin, Hv, Wv, &sw, NULL, c->stride, c->pad);
            double sum = 0;
            for (int64_t i = 0; i < n; i++) sum += s2[i];
            double corr = c->up && c->k == 3 ? sqrt((1.0 + 25.0 / 9.0) / 2.0) : 1.0;
            l2_check(w2, got, r, n, sum, corr, is_dnn_conv_impl(d, c->Cin, Hv, Wv, &w, c->stride, c->pad) != NULL);
            free(st), free(s2), free_tensor(&sw);
        }
        /* and against the fused f32 kernel itself (the numbers of the goldens) */
        if (exact && !c->silu) {
            for (int64_t i = 0; i < n; i++) bound[i] *= 2;
            char w3[360];
            snprintf(w3, sizeof w3, "%s vs is_k_conv2d_fused", w2);
            within(w3, got, ref, bound, n, NULL);
        }
        free(r), free(at), free(l1), free(bound), free(bv);
        free_tensor(&aw), free_tensor(&ab);
    }
    /* the unfused entry point = fused with no prologue */
    if (!c->norm && !c->silu && !c->up && !c->acc) {
        float *g2 = rand_buf(n, 5.0f, 0);
        is_dnn_conv2d(d, g2, x, c->Cin, c->H, c->W, &w, bp, c->stride, c->pad);
        th_check(same_bits(g2, got, n), "%s: is_dnn_conv2d = is_dnn_conv2d_fused without prologue", what);
        free(g2);
    }
    is_dnn_free(d);
    free(x), free(sc), free(sh), free(old), free(ref), free(got), free(t32), free(t16);
    free_tensor(&w), free_tensor(&b);
}

static void test_conv(void) {
    /* every combination of prologue (norm, silu), upsample and accumulate on small odd shapes: 3x3 same,
     * 1x1, 3x3 stride 2, unpadded 3x3; channels not multiples of 16 */
    int i = 0;
    for (int mask = 0; mask < 16; mask++) {
        int norm = mask & 1, silu = mask >> 1 & 1, up = mask >> 2 & 1, acc = mask >> 3 & 1;
        conv_case cs[4] = {
            {6, 7, 9, 5, 3, 1, 1, norm, silu, up, acc, 1, IS_DT_F16},
            {4, 13, 5, 8, 1, 1, 0, norm, silu, up, acc, 0, IS_DT_BF16},
            {6, 9, 11, 7, 3, 2, 1, norm, silu, up, acc, 1, IS_DT_F32},
            {5, 10, 6, 3, 3, 1, 0, norm, silu, up, acc, 1, IS_DT_F16},
        };
        for (int j = 0; j < 4; j++, i++) check_conv(&cs[j], i % 2);
    }
    /* the ViT patch embedding: kernel 14, stride 14, no bias */
    conv_case patch = {3, 29, 31, 10, 14, 14, 0, 0, 0, 0, 0, 0, IS_DT_F16};
    check_conv(&patch, 1);
    check_conv(&patch, 0);
    /* SDXL-like: 3x3 with GroupNorm+SiLU prologue and residual, channels 33 and 20, 1x1 shortcut */
    conv_case big[] = {
        {33, 35, 70, 20, 3, 1, 1, 1, 1, 0, 1, 1, IS_DT_F16},
        {64, 64, 64, 96, 3, 1, 1, 1, 1, 0, 0, 1, IS_DT_F16},
        {96, 64, 64, 64, 1, 1, 0, 0, 0, 0, 1, 1, IS_DT_F16},
        {32, 66, 67, 17, 3, 2, 1, 0, 0, 0, 0, 1, IS_DT_F16},
        {64, 48, 48, 32, 3, 1, 1, 0, 0, 1, 0, 1, IS_DT_F16},   /* VAE upsampler: 96x96 after the 2x */
        {32, 128, 128, 32, 3, 1, 1, 1, 1, 0, 1, 1, IS_DT_F32}, /* large image: several row bands */
        {320, 32, 32, 320, 3, 1, 1, 1, 1, 0, 1, 1, IS_DT_F16}, /* UNet level 0 at 256x256 */
    };
    for (size_t j = 0; j < sizeof big / sizeof big[0]; j++) {
        check_conv(&big[j], 1);
        check_conv(&big[j], 0);
    }
    /* An image large enough for the staging to go in row bands (2 bands of 600 rows with 64 MiB bands),
     * with the 2x upsampling, GroupNorm+SiLU prologue and accumulate across the band boundary. */
    conv_case bands = {8, 600, 600, 8, 3, 1, 1, 1, 1, 1, 1, 1, IS_DT_F16};
    check_conv(&bands, 1);
}

/* ------------------------------------------------------------------ attention */

/* Double-precision attention on the given operands: out (alpha, accumulate applied to old) and per element
 * A = sum_j p_j |v_jc|; per (query, head) the largest sum_d |q_d k_jd| over the visible keys. */
static void attention_ref(double *out, double *A, double *qk_l1, const float *old, int64_t ldo, const float *q,
                          int64_t ldq, const float *k, int64_t ldk, const float *v, int64_t ldv, int64_t Nq,
                          int64_t Nk, int64_t heads, int64_t dh, int causal, float alpha, int accumulate) {
    double scale = 1.0 / sqrt((double)dh);
    double *s = malloc((size_t)Nk * sizeof(double));
    for (int64_t h = 0; h < heads; h++)
        for (int64_t i = 0; i < Nq; i++) {
            int64_t valid = causal ? (i + 1 < Nk ? i + 1 : Nk) : Nk;
            double mx = -INFINITY, sum = 0, l1max = 0;
            for (int64_t j = 0; j < valid; j++) {
                double acc = 0, l1 = 0;
                for (int64_t e = 0; e < dh; e++) {
                    double t = (double)q[i * ldq + h * dh + e] * k[j * ldk + h * dh + e];
                    acc += t;
                    l1 += fabs(t);
                }
                s[j] = acc * scale;
                if (s[j] > mx) mx = s[j];
                if (l1 > l1max) l1max = l1;
            }
            for (int64_t j = 0; j < valid; j++) sum += (s[j] = exp(s[j] - mx));
            qk_l1[i * heads + h] = l1max;
            for (int64_t e = 0; e < dh; e++) {
                double o = 0, a = 0;
                for (int64_t j = 0; j < valid; j++) {
                    double vv = v[j * ldv + h * dh + e];
                    o += s[j] * vv;
                    a += s[j] * fabs(vv);
                }
                int64_t at = i * ldo + h * dh + e;
                out[at] = (accumulate ? old[at] : 0.0) + alpha * o / sum;
                A[at] = a / sum;
            }
        }
    free(s);
}

/* The bound of the header for each output element (padding columns 0), from attention_ref's out, A and
 * qk_l1; old: the output's values before an accumulating call. */
static void attention_bound(double *bound, const double *o64, const double *A, const double *qk, const float *old,
                            int64_t ldo, int64_t Nq, int64_t Nk, int64_t heads, int64_t dh, float alpha, int accumulate,
                            int exact) {
    double scale = 1.0 / sqrt((double)dh);
    for (int64_t i = 0; i < Nq; i++)
        for (int64_t h = 0; h < heads; h++) {
            double l1 = qk[i * heads + h] * scale;
            double dS32 = (dh + 4) * U_F32 * l1; /* f32 error of the scores */
            double dS = exact ? dS32 : 2 * U_BF16 * l1 + dS32;
            double rel = exact ? 2 * U_BF16 + 2 * dS * (1 + 2 * dS) : 3 * U_BF16 + 2 * dS * (1 + 2 * dS);
            for (int64_t e = 0; e < dh; e++) {
                int64_t at = i * ldo + h * dh + e;
                bound[at] = fabs(alpha) * (rel + (Nk + 8) * U_F32) * A[at] +
                            4 * U_F32 * (fabs(o64[at]) + (accumulate ? fabs(old[at]) : 0));
            }
        }
}

static void check_attention(is_dnn *d, int64_t Nq, int64_t Nk, int64_t heads, int64_t dh, int64_t pad, int causal,
                            float alpha, int accumulate, int exact) {
    char what[220];
    snprintf(what, sizeof what, "dnn attention Nq=%lld Nk=%lld heads=%lld dh=%lld pad=%lld causal=%d alpha=%g acc=%d %s",
             (long long)Nq, (long long)Nk, (long long)heads, (long long)dh, (long long)pad, causal, alpha, accumulate,
             exact ? "bf16-exact operands" : "arbitrary operands");
    int64_t ldq = heads * dh + pad, ldk = heads * dh + 2 * pad, ldv = heads * dh + 3 * pad, ldo = heads * dh + pad;
    float *q = rand_buf(Nq * ldq, 2.0f, exact), *k = rand_buf(Nk * ldk, 2.0f, exact), *v = rand_buf(Nk * ldv, 1.0f, exact);
    float *old = rand_buf(Nq * ldo, 1.0f, 0), *ref = copy_buf(old, Nq * ldo), *got = copy_buf(old, Nq * ldo);
    is_k_attention(ref, ldo, q, ldq, k, ldk, v, ldv, Nq, Nk, heads, dh, causal, alpha, accumulate);
    is_dnn_attention(NULL, got, ldo, q, ldq, k, ldk, v, ldv, Nq, Nk, heads, dh, causal, alpha, accumulate);
    th_check(same_bits(got, ref, Nq * ldo), "%s: d == NULL is the f32 kernel bit for bit", what);
    if (d) {
        double *o64 = malloc((size_t)(Nq * ldo) * sizeof(double)), *A = calloc((size_t)(Nq * ldo), sizeof(double));
        for (int64_t i = 0; i < Nq * ldo; i++) o64[i] = old[i]; /* padding columns keep the old values */
        double *qk = malloc((size_t)(Nq * heads) * sizeof(double));
        attention_ref(o64, A, qk, old, ldo, q, ldq, k, ldk, v, ldv, Nq, Nk, heads, dh, causal, alpha, accumulate);
        for (int rep = 0; rep < 2; rep++) {
            memcpy(got, old, (size_t)(Nq * ldo) * sizeof(float));
            is_dnn_attention(d, got, ldo, q, ldq, k, ldk, v, ldv, Nq, Nk, heads, dh, causal, alpha, accumulate);
            /* padding columns untouched */
            int pad_ok = 1;
            for (int64_t i = 0; i < Nq; i++)
                pad_ok &= !memcmp(got + i * ldo + heads * dh, old + i * ldo + heads * dh, (size_t)pad * sizeof(float));
            th_check(pad_ok, "%s: padding columns of the output rows left alone", what);
            double *bound = calloc((size_t)(Nq * ldo), sizeof(double));
            float *r = malloc((size_t)(Nq * ldo) * sizeof(float));
            attention_bound(bound, o64, A, qk, old, ldo, Nq, Nk, heads, dh, alpha, accumulate, exact);
            for (int64_t i = 0; i < Nq * ldo; i++) r[i] = (float)o64[i];
            /* padding: both equal old there, bound 0 */
            char w2[260];
            snprintf(w2, sizeof w2, "%s%s", what, rep ? " (second call)" : "");
            bound_report rr;
            if (within(w2, got, r, bound, Nq * ldo, &rr)) printf("  ok %s: worst |bf16-exact| / bound = %.3f\n", w2, rr.worst_ratio);
            free(bound), free(r);
        }
        free(o64), free(A), free(qk);
    }
    free(q), free(k), free(v), free(old), free(ref), free(got);
}

static void test_attention(is_dnn *d) {
    /* exact operands need a power-of-two scale 1/sqrt(dh): dh = 16 or 64 */
    check_attention(d, 1, 1, 1, 16, 0, 0, 1.0f, 0, 1);
    check_attention(d, 77, 77, 3, 16, 0, 1, 1.0f, 0, 1);    /* causal text self-attention */
    check_attention(d, 77, 77, 2, 64, 5, 1, 1.0f, 0, 0);
    check_attention(d, 130, 77, 5, 64, 3, 0, 1.0f, 0, 1);   /* cross-attention, strided rows */
    check_attention(d, 130, 77, 5, 40, 3, 0, 1.0f, 0, 0);
    check_attention(d, 130, 77, 5, 64, 0, 0, 0.6f, 1, 1);   /* IP-Adapter: out += scale * attn */
    check_attention(d, 130, 77, 5, 40, 2, 0, 0.6f, 1, 0);
    check_attention(d, 300, 4, 2, 64, 0, 0, 2.0f, 1, 1);    /* IP-Adapter image tokens: Nk small */
    check_attention(d, 300, 4, 2, 64, 1, 0, 2.0f, 1, 0);
    check_attention(d, 257, 257, 2, 16, 1, 0, 1.0f, 0, 1);  /* vision tokens */
    check_attention(d, 1029, 1029, 2, 64, 0, 0, 1.0f, 0, 1); /* Nk large: spans key/query tiles */
    check_attention(d, 1029, 1029, 2, 64, 3, 0, 1.0f, 0, 0);
    check_attention(d, 2101, 1100, 1, 64, 1, 0, 0.7f, 1, 1); /* query tiles (8 MiB of scores) of unequal size */
    check_attention(d, 333, 333, 1, 24, 2, 1, 0.5f, 1, 0);
    /* more than 2048 keys: the tiles' minimum height (128) rules, score tiles above 1 MiB */
    check_attention(d, 700, 5000, 1, 32, 0, 0, 1.0f, 0, 1);
    check_attention(d, 260, 2600, 1, 512, 1, 0, 0.8f, 1, 1); /* the VAE's dh */
    check_attention(d, 5, 600, 3, 16, 0, 0, 1.0f, 0, 1);
    check_attention(d, 600, 5, 3, 16, 0, 1, 1.0f, 0, 1);   /* causal with Nq > Nk */
}

/* is_dnn_self_attention: q | k | v from one stacked bf16 product written in bf16, attention per batch item.
 * Its operands are the f32 result of that product (is_dnn_linear_packed) rounded to bf16, and the 1/sqrt(dh)
 * scale multiplies the f32 scores: so against attention_ref (double) on those rounded values, only the
 * "bf16-exact operands" errors remain (f32 sums, the probabilities' rounding), for every dh. Where
 * 1/sqrt(dh) is a power of two, and with fewer than 16 tokens, also the bits of is_dnn_linear_packed +
 * is_dnn_attention. */
static void check_self_attention(int64_t B, int64_t N, int64_t heads, int64_t dh, int64_t K) {
    char what[160];
    snprintf(what, sizeof what, "dnn self-attention B=%lld N=%lld heads=%lld dh=%lld K=%lld", (long long)B,
             (long long)N, (long long)heads, (long long)dh, (long long)K);
    const int64_t HD = heads * dh, ld = 3 * HD, M = B * N;
    int64_t ws[2] = {HD, K};
    is_tensor Wp[3];
    for (int i = 0; i < 3; i++) Wp[i] = make_weight(IS_DT_F16, 2, ws, 5.0f / sqrtf((float)K), 0); /* peaked rows */
    const is_tensor *parts[3] = {&Wp[0], &Wp[1], &Wp[2]};
    is_tensor key;
    memset(&key, 0, sizeof key);
    float *x = rand_buf(M * K, 1.0f, 0), *qkv = malloc((size_t)(M * ld) * sizeof(float));
    float *got = rand_buf(M * HD, 5.0f, 0), *unf = malloc((size_t)(M * HD) * sizeof(float));
    th_check(is_dnn_self_attention(NULL, got, x, B, N, &key, heads, dh) == -1, "%s: no context: -1", what);
    is_dnn *d = NULL;
    if (!th_ok(is_dnn_create(&d), "is_dnn_create")) goto done;
    th_ok(is_dnn_pack_rows(d, NULL, &key, parts, 3, "qkv"), "pack q | k | v");
    th_check(is_dnn_self_attention(d, got, x, B, N, &Wp[0], heads, dh) == -1, "%s: an unpacked weight: -1", what);
    th_check(!is_dnn_linear_packed(d, qkv, x, M, &key), "%s: the stacked product in f32", what);
    float *qkv_r = copy_buf(qkv, M * ld);
    is_round_bf16(qkv_r, M * ld);
    const int few = N < 16; /* fewer keys than the bf16 attention takes: the f32 kernel on the f32 product */
    for (int rep = 0; rep < 2; rep++) { /* the second call reuses the primitives */
        for (int64_t i = 0; i < M * HD; i++) got[i] = 9.0f * frand(); /* garbage must be overwritten */
        int rc = is_dnn_self_attention(d, got, x, B, N, &key, heads, dh);
        th_check(rc == 0, "%s: runs in bf16 (%d)", what, rc);
        if (rc) break;
        for (int64_t b = 0; b < B && !few; b++) {
            const float *q = qkv_r + b * N * ld;
            double *o64 = calloc((size_t)(N * HD), sizeof(double)), *A = calloc((size_t)(N * HD), sizeof(double));
            double *qk = malloc((size_t)(N * heads) * sizeof(double)), *bound = malloc((size_t)(N * HD) * sizeof(double));
            float *r = malloc((size_t)(N * HD) * sizeof(float));
            attention_ref(o64, A, qk, NULL, HD, q, ld, q + HD, ld, q + 2 * HD, ld, N, N, heads, dh, 0, 1.0f, 0);
            attention_bound(bound, o64, A, qk, NULL, HD, N, N, heads, dh, 1.0f, 0, 1);
            for (int64_t i = 0; i < N * HD; i++) r[i] = (float)o64[i];
            char w2[220];
            snprintf(w2, sizeof w2, "%s item %lld%s", what, (long long)b, rep ? " (second call)" : "");
            bound_report rr;
            if (within(w2, got + b * N * HD, r, bound, N * HD, &rr))
                printf("  ok %s: worst |bf16-exact| / bound = %.3f\n", w2, rr.worst_ratio);
            free(o64), free(A), free(qk), free(bound), free(r);
        }
    }
    float sc = 1.0f / sqrtf((float)dh);
    if (few || frexpf(sc, &(int){0}) == 0.5f) { /* a power of two */
        for (int64_t b = 0; b < B; b++) {
            const float *q = qkv + b * N * ld;
            is_dnn_attention(d, unf + b * N * HD, HD, q, ld, q + HD, ld, q + 2 * HD, ld, N, N, heads, dh, 0, 1.0f, 0);
        }
        th_check(same_bits(got, unf, M * HD), "%s: the bits of the stacked f32 product + is_dnn_attention", what);
    }
    th_check(is_dnn_fallbacks(d) == 0, "%s: no fallbacks (%lld)", what, (long long)is_dnn_fallbacks(d));
    is_dnn_free(d);
    free(qkv_r);
done:
    free(x), free(qkv), free(got), free(unf);
    for (int i = 0; i < 3; i++) free_tensor(&Wp[i]);
}

static void test_self_attention(int bf16) {
    if (!bf16) return; /* without bf16 there is no context; check_self_attention's NULL case is is_dnn's */
    check_self_attention(1, 16, 1, 16, 24);
    check_self_attention(2, 9, 2, 40, 24);     /* few tokens: the stacked product, then the f32 attention */
    check_self_attention(2, 77, 3, 64, 96);    /* the last query tile reads past the second item */
    check_self_attention(2, 300, 2, 32, 64);   /* 1/sqrt(32) is not a power of two */
    check_self_attention(2, 1029, 2, 64, 128); /* several query tiles */
    check_self_attention(3, 257, 5, 40, 200);
}

/* ------------------------------------------------------------------ one context, many weights */

/* One product on bf16-exact operands through d against the f32 kernel: within EXACT(K) L1 (y garbage in). */
static int exact_product(is_dnn *d, const is_tensor *w, const float *x, int64_t M, int64_t H, int64_t W, float *y,
                         const char *what) {
    int conv = w->ndim == 4;
    int64_t N = w->shape[0], K = w->numel / N, pad = conv && w->shape[2] == 3 ? 1 : 0;
    int64_t n = conv ? N * H * W : M * N;
    float *ref = malloc((size_t)n * sizeof(float)), *l1 = malloc((size_t)n * sizeof(float));
    float *ax = map_buf(x, conv ? w->shape[1] * H * W : M * K, 0);
    is_tensor aw = map_tensor(w, 0);
    if (conv) {
        is_dnn_conv2d(d, y, x, w->shape[1], H, W, w, NULL, 1, (int)pad);
        is_k_conv2d(ref, x, w->shape[1], H, W, w, NULL, 1, (int)pad);
        is_k_conv2d(l1, ax, w->shape[1], H, W, &aw, NULL, 1, (int)pad);
    } else {
        is_dnn_linear(d, y, x, M, w, NULL);
        is_k_linear(ref, x, M, w, NULL);
        is_k_linear(l1, ax, M, &aw, NULL);
    }
    double *bound = malloc((size_t)n * sizeof(double));
    for (int64_t i = 0; i < n; i++) bound[i] = exact_rel(K) * l1[i];
    int ok = within(what, y, ref, bound, n, NULL);
    free(ref), free(l1), free(ax), free(bound);
    free_tensor(&aw);
    return ok;
}

/* One context holding several packed weights (linear and convolution), called with different row counts
 * and image widths (a convolution's weights may move to another layout for another width) in an
 * interleaved order, twice: every result within the bf16-exact bound of the f32 kernel. */
static void test_shared_context(void) {
    int64_t s1[2] = {96, 64}, s2[2] = {640, 96}, s3[4] = {17, 33, 3, 3}, s4[4] = {33, 33, 1, 1};
    is_tensor w[4] = {make_weight(IS_DT_F16, 2, s1, 0.2f, 1), make_weight(IS_DT_BF16, 2, s2, 0.2f, 1),
                      make_weight(IS_DT_F16, 4, s3, 0.2f, 1), make_weight(IS_DT_F32, 4, s4, 0.2f, 1)};
    const int64_t Ms[3] = {7, 77, 1024}, Hs[3] = {19, 9, 40}, Ws[3] = {23, 130, 64};
    float *x = rand_buf(1024 * 640, 1.0f, 1), *y = malloc((size_t)1024 * 640 * sizeof(float));
    is_dnn *d = NULL;
    if (th_ok(is_dnn_create(&d), "is_dnn_create (shared)")) {
        for (int i = 0; i < 4; i++) th_ok(is_dnn_pack(d, NULL, &w[i]), "pack into the shared context");
        size_t bytes = is_dnn_packed_bytes(d);
        int ok = 1;
        for (int round = 0; round < 2; round++)
            for (int m = 0; m < 3; m++)
                for (int i = 3; i >= 0; i--) {
                    int mm = (m + i) % 3;
                    char what[160];
                    snprintf(what, sizeof what, "shared context: weight %d (%s), size %d, round %d", i,
                             i < 2 ? "linear" : "conv", mm, round);
                    ok &= exact_product(d, &w[i], x, Ms[mm], Hs[mm], Ws[mm], y, what);
                }
        th_check(ok, "one context, 4 weights, 3 sizes each (conv widths 23, 130, 64), interleaved twice");
        th_check(is_dnn_fallbacks(d) == 0, "no fallbacks in the shared context (%lld)", (long long)is_dnn_fallbacks(d));
        printf("  shared context: %zu packed bytes after packing, %zu after the calls\n", bytes, is_dnn_packed_bytes(d));
        is_dnn_free(d);
    }
    for (int i = 0; i < 4; i++) free_tensor(&w[i]);
    free(x), free(y);
}

/* ------------------------------------------------------------------ capability, precision, ISA */

/* AMX-BF16: CPUID.(EAX=7,ECX=0):EDX bit 22, and the kernel lists it (it enables the tile state). */
/* Packing's conversion: several tensors of each stored dtype one after the other (sizes below, at and above
 * its parallel chunks of 8192), each element is_f32_to_bf16 of its f32 value: ties, NaN, infinities, denormals. */
static void test_tensors_to_bf16(void) {
    const int64_t shapes[5][2] = {{100, 100}, {1, 1}, {200, 201}, {8192, 4}, {300, 301}};
    const is_dtype dts[5] = {IS_DT_F16, IS_DT_BF16, IS_DT_F32, IS_DT_F32, IS_DT_F16};
    is_tensor t[5];
    const is_tensor *parts[5];
    int64_t total = 0;
    for (int i = 0; i < 5; i++) {
        int64_t n = shapes[i][0] * shapes[i][1];
        float *v = rand_buf(n, 1000.0f, 0);
        if (n > 8) {
            v[0] = 1.0f + 1.0f / 256, v[1] = 1.0f + 3.0f / 256, v[2] = NAN, v[3] = -INFINITY, v[4] = 3e-39f;
            v[5] = -1e-40f, v[6] = 65504.0f, v[7] = -0.0f;
        }
        t[i] = th_weight(dts[i], 2, shapes[i], v);
        parts[i] = &t[i];
        total += n;
        free(v);
    }
    uint16_t *got = malloc((size_t)(total + 1) * 2), *want = malloc((size_t)(total + 1) * 2);
    got[total] = want[total] = 0xbeef;
    for (int i = 0, at = 0; i < 5; at += (int)t[i].numel, i++)
        for (int64_t j = 0; j < t[i].numel; j++) want[at + j] = is_f32_to_bf16(is_tensor_get_f32(&t[i], (size_t)j));
    is_tensors_to_bf16(got, parts, 5);
    th_check(!memcmp(got, want, (size_t)(total + 1) * 2), "is_tensors_to_bf16: %lld elements of 5 tensors (f16, bf16, "
             "f32) = is_f32_to_bf16 of their values, nothing written past them", (long long)total);
    is_tensors_to_bf16(got, parts + 4, 1);
    th_check(!memcmp(got, want + total - t[4].numel, (size_t)t[4].numel * 2), "is_tensors_to_bf16: one f16 tensor");
    for (int i = 0; i < 5; i++) free_tensor(&t[i]);
    free(got), free(want);
}

static int cpu_has_amx_bf16(void) {
    unsigned a, b, c, dx;
    if (!__get_cpuid_count(7, 0, &a, &b, &c, &dx) || !(dx & (1u << 22))) return 0;
    FILE *fp = fopen("/proc/cpuinfo", "r");
    if (!fp) return 1;
    char line[8192];
    int found = 0;
    while (!found && fgets(line, sizeof line, fp))
        if (!strncmp(line, "flags", 5) && strstr(line, " amx_bf16")) found = 1;
    fclose(fp);
    return found;
}

static int cpu_has_avx512_bf16(void) {
    unsigned a, b, c, dx;
    return __get_cpuid_count(7, 1, &a, &b, &c, &dx) && (a & (1u << 5));
}

static void test_precision_names(void) {
    is_precision p = IS_PRECISION_F32;
    th_check(!strcmp(is_precision_name(IS_PRECISION_AUTO), "auto") && !strcmp(is_precision_name(IS_PRECISION_F32), "f32")
                 && !strcmp(is_precision_name(IS_PRECISION_BF16), "bf16"), "precision names");
    th_check(is_precision_parse("bf16", &p) == 0 && p == IS_PRECISION_BF16, "parse bf16");
    th_check(is_precision_parse("f32", &p) == 0 && p == IS_PRECISION_F32, "parse f32");
    th_check(is_precision_parse("auto", &p) == 0 && p == IS_PRECISION_AUTO, "parse auto");
    p = IS_PRECISION_F32;
    th_check(is_precision_parse("fp16", &p) == -1 && p == IS_PRECISION_F32, "parse refuses fp16, leaves out alone");
    th_check(is_precision_parse("", &p) == -1, "parse refuses an empty name");
    char why[256] = "";
    th_check(is_precision_resolve(IS_PRECISION_F32, why, sizeof why) == IS_PRECISION_F32, "f32 resolves to f32");
    is_precision a = is_precision_resolve(IS_PRECISION_AUTO, why, sizeof why);
    th_check(a == IS_PRECISION_F32 || a == IS_PRECISION_BF16, "auto resolves to f32 or bf16, never auto");
    th_check(why[0] != 0, "resolve gives a reason: %s", why);
    printf("  auto -> %s: %s\n", is_precision_name(a), why);
    th_check(is_precision_resolve(IS_PRECISION_BF16, NULL, 0) != IS_PRECISION_AUTO, "why may be NULL");
}

/* On this CPU, with no oneDNN environment variable. */
static void test_isa(is_dnn *d) {
    int amx = cpu_has_amx_bf16(), avx512bf16 = cpu_has_avx512_bf16();
    printf("  CPU: AMX-BF16 %d, AVX512-BF16 %d; oneDNN ISA %s\n", amx, avx512bf16, is_dnn_isa_name());
    th_check(is_dnn_has_amx() == amx, "is_dnn_has_amx() = %d, cpuid/cpuinfo say %d", is_dnn_has_amx(), amx);
    th_check(is_dnn_has_bf16() == (amx || avx512bf16), "is_dnn_has_bf16() = %d, cpuid says %d", is_dnn_has_bf16(),
             amx || avx512bf16);
    char why[256] = "";
    if (amx) {
        th_check(is_precision_resolve(IS_PRECISION_AUTO, why, sizeof why) == IS_PRECISION_BF16,
                 "AMX CPU: auto resolves to bf16 (%s)", why);
        th_check(is_precision_resolve(IS_PRECISION_BF16, why, sizeof why) == IS_PRECISION_BF16, "AMX CPU: bf16 runs bf16");
    }
    if (!is_dnn_has_bf16()) {
        th_check(is_precision_resolve(IS_PRECISION_BF16, why, sizeof why) == IS_PRECISION_F32,
                 "no bf16 instructions: bf16 resolves to f32 (%s)", why);
        th_check(is_precision_resolve(IS_PRECISION_AUTO, why, sizeof why) == IS_PRECISION_F32,
                 "no bf16 instructions: auto resolves to f32 (%s)", why);
    }
    if (!d) return;
    /* UNet-like shapes: a 64x64-latent attention projection and a 3x3 convolution of level 1 */
    int64_t ws[2] = {640, 640}, cs[4] = {320, 320, 3, 3};
    is_tensor W = make_weight(IS_DT_F16, 2, ws, 0.05f, 0), C = make_weight(IS_DT_F16, 4, cs, 0.05f, 0);
    th_ok(is_dnn_pack(d, NULL, &W), "pack 640x640");
    th_ok(is_dnn_pack(d, NULL, &C), "pack 320x320x3x3");
    const char *li = is_dnn_linear_impl(d, 4096, &W), *ci = is_dnn_conv_impl(d, 320, 64, 64, &C, 1, 1);
    printf("  oneDNN implementations: matmul %s, convolution %s\n", li ? li : "(none)", ci ? ci : "(none)");
    th_check(li != NULL && ci != NULL, "bf16 primitives exist for UNet shapes");
    if (amx) {
        th_check(li && strstr(li, "amx") != NULL, "AMX CPU: oneDNN's matmul is an AMX kernel (got %s)", li ? li : "none");
        th_check(ci && strstr(ci, "amx") != NULL, "AMX CPU: oneDNN's convolution is an AMX kernel (got %s)",
                 ci ? ci : "none");
    } else {
        th_check(li && strstr(li, "amx") == NULL, "no AMX: matmul is not an AMX kernel (%s)", li ? li : "none");
    }
    float *x = rand_buf(4096 * 640, 1.0f, 0), *y = malloc((size_t)4096 * 640 * sizeof(float));
    int64_t fb = is_dnn_fallbacks(d);
    is_dnn_linear(d, y, x, 4096, &W, NULL);
    th_check(is_dnn_fallbacks(d) == fb, "the UNet-shaped product ran in bf16 (no fallback)");
    free(x), free(y);
    free_tensor(&W), free_tensor(&C);
}

/* ------------------------------------------------------------------ child processes: other ISAs */

static int run_child(const char *mode, const char *isa) {
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    if (pid < 0) return -1;
    if (pid == 0) {
        setenv("ONEDNN_MAX_CPU_ISA", isa, 1);
        execl("/proc/self/exe", "test_dnn", mode, (char *)NULL);
        _exit(127);
    }
    int status = 0;
    if (waitpid(pid, &status, 0) < 0) return -1;
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

/* ONEDNN_MAX_CPU_ISA=AVX2: no bf16. Every bf16 request runs the exact f32 numbers. */
static int child_no_bf16(void) {
    printf("child: ONEDNN_MAX_CPU_ISA=%s, oneDNN ISA %s\n", getenv("ONEDNN_MAX_CPU_ISA"), is_dnn_isa_name());
    th_check(!is_dnn_has_bf16() && !is_dnn_has_amx(), "capped at AVX2: no bf16, no AMX");
    char why[256] = "";
    th_check(is_precision_resolve(IS_PRECISION_BF16, why, sizeof why) == IS_PRECISION_F32,
             "no bf16 instructions: bf16 resolves to f32 (%s)", why);
    th_check(why[0] != 0, "the reason is given: %s", why);
    th_check(is_precision_resolve(IS_PRECISION_AUTO, why, sizeof why) == IS_PRECISION_F32,
             "no bf16 instructions: auto resolves to f32 (%s)", why);
    is_dnn *d = NULL;
    th_fails(is_dnn_create(&d), NULL, "is_dnn_create without bf16 instructions");
    th_check(d == NULL, "no context on failure");
    /* A network set to BF16 runs (in f32) and gives the f32 numbers bit for bit. */
    char *dir = th_golden_path("models/tiny-ip-adapter/image_encoder");
    is_image_encoder *enc = NULL;
    if (th_ok(is_image_encoder_load(dir, &enc), dir)) {
        int S = is_image_encoder_image_size(enc), E = is_image_encoder_projection_dim(enc);
        float *pv = rand_buf((int64_t)3 * S * S, 1.0f, 0), *a = malloc((size_t)E * sizeof(float)),
              *b = malloc((size_t)E * sizeof(float));
        th_ok(is_image_encoder_forward(enc, pv, a, NULL), "f32 forward");
        th_ok(is_image_encoder_set_precision(enc, IS_PRECISION_BF16), "set_precision(BF16) without bf16 hardware");
        th_ok(is_image_encoder_forward(enc, pv, b, NULL), "\"bf16\" forward");
        th_check(same_bits(a, b, E), "BF16 without bf16 hardware gives the f32 numbers bit for bit");
        free(pv), free(a), free(b);
        is_image_encoder_free(enc);
    }
    free(dir);
    return th_done();
}

/* ONEDNN_MAX_CPU_ISA=AVX512_CORE_BF16 on an AMX CPU: bf16 without AMX, same accuracy. */
static int child_avx512_bf16(void) {
    printf("child: ONEDNN_MAX_CPU_ISA=%s, oneDNN ISA %s\n", getenv("ONEDNN_MAX_CPU_ISA"), is_dnn_isa_name());
    th_check(is_dnn_has_bf16() && !is_dnn_has_amx(), "capped at AVX512_CORE_BF16: bf16 without AMX");
    char why[256] = "";
    is_precision a = is_precision_resolve(IS_PRECISION_AUTO, why, sizeof why);
    th_check(a == IS_PRECISION_F32 || a == IS_PRECISION_BF16, "auto is decided (%s: %s)", is_precision_name(a), why);
    th_check(is_precision_resolve(IS_PRECISION_BF16, NULL, 0) == IS_PRECISION_BF16, "bf16 runs bf16");
    is_dnn *d = NULL;
    if (th_ok(is_dnn_create(&d), "is_dnn_create on AVX512_CORE_BF16")) {
        int64_t ws[2] = {640, 640};
        is_tensor W = make_weight(IS_DT_F16, 2, ws, 0.05f, 0);
        th_ok(is_dnn_pack(d, NULL, &W), "pack");
        const char *li = is_dnn_linear_impl(d, 1024, &W);
        printf("  oneDNN matmul: %s\n", li ? li : "(none)");
        th_check(li && !strstr(li, "amx"), "no AMX kernel when capped at AVX512_CORE_BF16 (%s)", li ? li : "none");
        check_linear(1, 301, 257, 320, IS_DT_F16, IS_DT_F16, 1, 1);
        check_linear(1, 301, 257, 320, IS_DT_F16, IS_DT_F32, 1, 0);
        conv_case c = {33, 35, 70, 20, 3, 1, 1, 1, 1, 0, 1, 1, IS_DT_F16};
        check_conv(&c, 1);
        check_conv(&c, 0);
        is_dnn_free(d);
        free_tensor(&W);
    }
    return th_done();
}

int main(int argc, char **argv) {
    if (argc == 2 && !strcmp(argv[1], "--child-no-bf16")) return child_no_bf16();
    if (argc == 2 && !strcmp(argv[1], "--child-avx512-bf16")) return child_avx512_bf16();
    /* No environment variable steers oneDNN here: the choices below are its own. */
    unsetenv("ONEDNN_MAX_CPU_ISA");
    unsetenv("DNNL_MAX_CPU_ISA");
    unsetenv("ONEDNN_VERBOSE");
    unsetenv("DNNL_VERBOSE");
    is_set_threads(2);
    test_precision_names();
    test_tensors_to_bf16();

    is_dnn *d = NULL;
    is_error *err = is_dnn_create(&d);
    if (is_dnn_has_bf16()) {
        th_ok(err, "is_dnn_create on a CPU with bf16");
    } else {
        th_fails(err, NULL, "is_dnn_create without bf16 instructions");
        d = NULL;
    }
    int bf16 = d != NULL;
    test_isa(d);
    test_linear(bf16);
    test_residual(bf16);
    test_self_attention(bf16);
    test_attention(d);
    if (d) {
        printf("  %lld attention calls fell back to f32\n", (long long)is_dnn_fallbacks(d));
        is_dnn_free(d);
    }
    if (bf16) {
        test_conv();
        test_shared_context();
        is_set_threads(1); /* one thread */
        check_linear(1, 301, 257, 320, IS_DT_F16, IS_DT_F16, 1, 1);
        conv_case one = {33, 35, 70, 20, 3, 1, 1, 1, 1, 0, 1, 1, IS_DT_F16};
        check_conv(&one, 1);
        if (th_ok(is_dnn_create(&d), "is_dnn_create")) {
            check_attention(d, 130, 77, 5, 64, 3, 0, 0.6f, 1, 1);
            is_dnn_free(d);
        }
        is_set_threads(2);
    }

    th_check(run_child("--child-no-bf16", "AVX2") == 0, "child with ONEDNN_MAX_CPU_ISA=AVX2 passed");
    if (cpu_has_amx_bf16())
        th_check(run_child("--child-avx512-bf16", "AVX512_CORE_BF16") == 0,
                 "child with ONEDNN_MAX_CPU_ISA=AVX512_CORE_BF16 passed");
    return th_done();
}
