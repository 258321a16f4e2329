/* Matrix products through OpenBLAS sgemm. Weights stay in their stored dtype in the mmap and are
 * converted to f32 into reused scratch: for many rows (M) the whole layer at once, then one
 * multi-threaded sgemm; for few rows panel by panel, each thread converting its own panel (in cache)
 * and running a single-threaded sgemm on it, which keeps both cores busy on small products. */
#include <cblas.h>
#include <string.h>

#include "kernels/kernels.h"
#include "kernels/scratch.h"

/* Rows at which converting the whole layer is cheap next to the product (and sgemm's own
 * blocking then does best). */
#define LINEAR_LAYER_MIN_ROWS 256

void is_k_gemm(float *C, const float *A, const float *B, int64_t M, int64_t N, int64_t K, int trans_b,
               float alpha, float beta) {
    if (M <= 0 || N <= 0) return;
    is_flops_add(2.0 * (double)M * (double)N * (double)K);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, trans_b ? CblasTrans : CblasNoTrans, (blasint)M, (blasint)N,
                (blasint)K, alpha, A, (blasint)K, B, (blasint)(trans_b ? K : N), beta, C, (blasint)N);
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

/* Panels of the few-rows path are split for this many threads whatever the real count: the panel
 * width decides which of OpenBLAS's edge kernels (which round differently) compute a column, so a
 * width that follows the thread count made --threads 1 and 2 differ in the last bit. 8 keeps 1, 2,
 * 4 and 8 threads balanced. */
#define PANEL_SPLIT 8

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
    int64_t P = panel_rows(N, K, PANEL_SPLIT), npanels = (N + P - 1) / P;
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
