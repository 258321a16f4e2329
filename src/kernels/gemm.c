/* Matrix products through OpenBLAS sgemm. Weights stay in their stored dtype in the mmap and are
 * converted to f32 into reused scratch: for many rows (M) the whole layer at once, then one
 * multi-threaded sgemm (or tiles of a fixed size, where OpenBLAS's rounding follows how a product is
 * split: the thread count never changes a result); for few rows panel by panel, each thread converting
 * its own panel (in cache) and running a single-threaded sgemm on it, which keeps both cores busy on
 * small products. */
#include <cblas.h>
#include <omp.h>
#include <string.h>
#include <strings.h>

#include "kernels/kernels.h"
#include "kernels/scratch.h"
#include "kernels/split.h"

/* Rows at which converting the whole layer is cheap next to the product (and sgemm's own
 * blocking then does best). */
#define LINEAR_LAYER_MIN_ROWS 256

/* Whether OpenBLAS's sgemm gives every element the same bits however a product is split: true of its
 * AVX-512 kernels (SkylakeX and the cores that use them), not of its AVX2 (Haswell, Zen) and older
 * ones, whose results moved with its own thread split (measured: OPENBLAS_CORETYPE=Haswell on an AMD
 * Zen 5 changed 2-20% of the elements of 1-thread vs 2-thread products at SDXL shapes; the AVX-512
 * kernels none). */
static int blas_split_stable(void) {
    static const char *const stable[] = {"SkylakeX", "Cooperlake", "SapphireRapids"};
    const char *core = openblas_get_corename();
    for (size_t i = 0; core && i < sizeof stable / sizeof *stable; i++)
        if (!strcasecmp(core, stable[i])) return 1;
    return 0;
}

int is_k_split_threads(void) { return blas_split_stable() ? omp_get_max_threads() : IS_SPLIT_THREADS; }

/* Tile edge for the split below: about `target`, a multiple of 16, the whole extent when it is small. */
static int64_t tile_edge(int64_t n, int64_t target) {
    int64_t tiles = (n + target - 1) / target, edge = (n + tiles - 1) / tiles;
    edge = (edge + 15) / 16 * 16;
    return edge < n ? edge : n;
}

void is_k_gemm(float *C, const float *A, const float *B, int64_t M, int64_t N, int64_t K, int trans_b,
               float alpha, float beta) {
    if (M <= 0 || N <= 0) return;
    is_flops_add(2.0 * (double)M * (double)N * (double)K);
    const CBLAS_TRANSPOSE tb = trans_b ? CblasTrans : CblasNoTrans;
    const blasint ldb = (blasint)(trans_b ? K : N);
    if (blas_split_stable()) { /* OpenBLAS's own threads, which share the packed operands */
        cblas_sgemm(CblasRowMajor, CblasNoTrans, tb, (blasint)M, (blasint)N, (blasint)K, alpha, A, (blasint)K, B, ldb,
                    beta, C, (blasint)N);
        return;
    }
    /* Tiles of about 1024 x 1024 (packing each operand again per tile costs a few percent), at least
     * IS_SPLIT_THREADS of them where the rows allow, each a single-threaded sgemm. */
    int64_t nb = tile_edge(N, 1024), ntn = (N + nb - 1) / nb;
    int64_t row_blocks = (IS_SPLIT_THREADS + ntn - 1) / ntn, rows = (M + row_blocks - 1) / row_blocks;
    int64_t mb = tile_edge(M, rows < 64 ? 64 : rows > 1024 ? 1024 : rows), ntm = (M + mb - 1) / mb;
#pragma omp parallel for schedule(dynamic)
    for (int64_t t = 0; t < ntm * ntn; t++) {
        int64_t m0 = t / ntn * mb, n0 = t % ntn * nb, mm = M - m0 < mb ? M - m0 : mb, nn = N - n0 < nb ? N - n0 : nb;
        const float *b = trans_b ? B + n0 * K : B + n0;
        cblas_sgemm(CblasRowMajor, CblasNoTrans, tb, (blasint)mm, (blasint)nn, (blasint)K, alpha, A + m0 * K,
                    (blasint)K, b, ldb, beta, C + m0 * N + n0, (blasint)N);
    }
}

/* Convert n elements of a weight (from element `first`) to f32, in parallel. */
void is_k_convert_parallel(const is_tensor *t, size_t first, size_t n, float *dst) {
    const size_t chunk = 1 << 16;
    int64_t nchunks = (int64_t)((n + chunk - 1) / chunk);
#pragma omp parallel for schedule(static) if (nchunks > 1)
    for (int64_t c = 0; c < nchunks; c++) {
        size_t s = (size_t)c * chunk, m = n - s < chunk ? n - s : chunk;
        is_convert_to_f32(t->dtype, t->data, first + s, m, dst + s);
    }
}

/* y[:, n0:n0+nn] += bias[n0:n0+nn] for rows [0, M), row stride ld. */
static void add_bias_cols(float *y, int64_t ld, int64_t M, int64_t n0, int64_t nn, const float *b) {
    for (int64_t m = 0; m < M; m++) {
        float *row = y + m * ld + n0;
        for (int64_t i = 0; i < nn; i++) row[i] += b[i];
    }
}

/* Panel height for the few-rows path: fits IS_SCR_PANEL_FLOATS, a multiple of 16 rows, and splits
 * N into a multiple of `threads` panels so no core idles at the end. */
static int64_t panel_rows(int64_t N, int64_t K, int threads) {
    int64_t cap = (int64_t)IS_SCR_PANEL_FLOATS / (K > 0 ? K : 1);
    cap = cap < 16 ? 16 : cap / 16 * 16;
    int64_t panels = (N + cap - 1) / cap;
    panels = (panels + threads - 1) / threads * threads;
    int64_t rows = (N + panels - 1) / panels;
    rows = (rows + 15) / 16 * 16;
    return rows < N ? rows : N;
}

void is_k_linear(float *y, const float *x, int64_t M, const is_tensor *W, const is_tensor *bias) {
    int64_t N = W->shape[0], K = W->numel / (N ? N : 1);
    if (M <= 0 || N <= 0) return;
    float *b = NULL;
    if (bias) {
        b = is_scratch(IS_SCR_BIAS, (size_t)N);
        is_tensor_to_f32(bias, b);
    }
    if (W->dtype == IS_DT_F32 || M >= LINEAR_LAYER_MIN_ROWS) {
        const float *w = (const float *)W->data;
        if (W->dtype != IS_DT_F32) {
            float *wf = is_scratch(IS_SCR_WEIGHT, (size_t)(N * K));
            is_k_convert_parallel(W, 0, (size_t)(N * K), wf);
            w = wf;
        }
        is_k_gemm(y, x, w, M, N, K, 1, 1.0f, 0.0f);
        if (b) {
#pragma omp parallel for schedule(static)
            for (int64_t m = 0; m < M; m++) add_bias_cols(y + m * N, N, 1, 0, N, b);
        }
        return;
    }
    is_flops_add(2.0 * (double)M * (double)N * (double)K);
    int64_t P = panel_rows(N, K, IS_SPLIT_THREADS), npanels = (N + P - 1) / P;
#pragma omp parallel for schedule(dynamic)
    for (int64_t p = 0; p < npanels; p++) {
        int64_t n0 = p * P, nn = N - n0 < P ? N - n0 : P;
        float *wp = is_scratch_thread(IS_SCR_T_PANEL, (size_t)(nn * K));
        is_convert_to_f32(W->dtype, W->data, (size_t)(n0 * K), (size_t)(nn * K), wp);
        /* single-threaded inside the region (OpenMP OpenBLAS), writing straight into y's columns */
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (blasint)M, (blasint)nn, (blasint)K, 1.0f, x,
                    (blasint)K, wp, (blasint)K, 0.0f, y + n0, (blasint)N);
        if (b) add_bias_cols(y, N, M, n0, nn, b + n0);
    }
}
