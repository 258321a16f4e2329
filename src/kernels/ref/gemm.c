/* Reference (first, straightforward) version kept to test the optimised kernels against. */
/* Matrix products: OpenBLAS sgemm, with weights converted from their stored dtype in row
 * panels into a reused buffer, so an f16 model is never copied whole to f32. */
#include <cblas.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/kernels_ref.h"

/* Rows of W converted per panel: large enough for sgemm efficiency, small enough for cache. */
#define PANEL_ROWS 256

void is_kref_gemm(float *C, const float *A, const float *B, int64_t M, int64_t N, int64_t K, int trans_b,
               float alpha, float beta) {
    if (M <= 0 || N <= 0) return;
    cblas_sgemm(CblasRowMajor, CblasNoTrans, trans_b ? CblasTrans : CblasNoTrans, (blasint)M, (blasint)N,
                (blasint)K, alpha, A, (blasint)K, B, (blasint)(trans_b ? K : N), beta, C, (blasint)N);
}

void is_kref_linear(float *y, const float *x, int64_t M, const is_tensor *W, const is_tensor *bias) {
    int64_t N = W->shape[0], K = W->numel / (N ? N : 1);
    if (W->dtype == IS_DT_F32) {
        is_kref_gemm(y, x, (const float *)W->data, M, N, K, 1, 1.0f, 0.0f);
    } else {
        int64_t panel = N < PANEL_ROWS ? N : PANEL_ROWS;
        float *wbuf = malloc((size_t)(panel * K) * sizeof(float));
        float *ybuf = malloc((size_t)(M * panel) * sizeof(float));
        if (!wbuf || !ybuf) abort(); /* activation-sized; callers pre-check big buffers */
        for (int64_t n0 = 0; n0 < N; n0 += panel) {
            int64_t nn = N - n0 < panel ? N - n0 : panel;
            is_convert_to_f32(W->dtype, W->data, (size_t)(n0 * K), (size_t)(nn * K), wbuf);
            if (nn == N) {
                is_kref_gemm(y, x, wbuf, M, nn, K, 1, 1.0f, 0.0f);
            } else {
                is_kref_gemm(ybuf, x, wbuf, M, nn, K, 1, 1.0f, 0.0f);
                for (int64_t m = 0; m < M; m++) memcpy(y + m * N + n0, ybuf + m * nn, (size_t)nn * sizeof(float));
            }
        }
        free(wbuf);
        free(ybuf);
    }
    if (bias) is_kref_add_bias_rows(y, M, bias);
}
