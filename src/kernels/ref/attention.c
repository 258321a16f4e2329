/* Reference (first, straightforward) version kept to test the optimised kernels against. */
/* Multi-head attention in query blocks: for each head and block of queries, scores are
 * computed with sgemm, soft-maxed row-wise and multiplied by V. Memory is one
 * block x Nk score tile per thread, never Nq x Nk. */
#include <cblas.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/kernels_ref.h"

#define QBLOCK 64

void is_kref_attention(float *out, int64_t ldo, const float *q, int64_t ldq, const float *k, int64_t ldk,
                    const float *v, int64_t ldv, int64_t Nq, int64_t Nk, int64_t heads, int64_t dh,
                    int causal, float alpha, int accumulate) {
    float scale = 1.0f / sqrtf((float)dh);
    int64_t nqb = (Nq + QBLOCK - 1) / QBLOCK;
    int64_t jobs = heads * nqb;
#pragma omp parallel
    {
        float *s = malloc((size_t)(QBLOCK * Nk) * sizeof(float));
        float *o = malloc((size_t)(QBLOCK * dh) * sizeof(float));
        if (!s || !o) abort();
#pragma omp for schedule(dynamic)
        for (int64_t job = 0; job < jobs; job++) {
            int64_t h = job / nqb, q0 = (job % nqb) * QBLOCK;
            int64_t nq = Nq - q0 < QBLOCK ? Nq - q0 : QBLOCK;
            /* s = scale * q_blk @ k_h^T  (OpenBLAS runs single-threaded inside an omp region) */
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (blasint)nq, (blasint)Nk, (blasint)dh, scale,
                        q + q0 * ldq + h * dh, (blasint)ldq, k + h * dh, (blasint)ldk, 0.0f, s, (blasint)Nk);
            for (int64_t i = 0; i < nq; i++) {
                float *row = s + i * Nk;
                int64_t valid = causal ? (q0 + i + 1 < Nk ? q0 + i + 1 : Nk) : Nk;
                float mx = -INFINITY;
                for (int64_t j = 0; j < valid; j++) mx = row[j] > mx ? row[j] : mx;
                float sum = 0.0f;
                for (int64_t j = 0; j < valid; j++) {
                    row[j] = expf(row[j] - mx);
                    sum += row[j];
                }
                float inv = 1.0f / sum;
                for (int64_t j = 0; j < valid; j++) row[j] *= inv;
                for (int64_t j = valid; j < Nk; j++) row[j] = 0.0f;
            }
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (blasint)nq, (blasint)dh, (blasint)Nk, 1.0f, s,
                        (blasint)Nk, v + h * dh, (blasint)ldv, 0.0f, o, (blasint)dh);
            for (int64_t i = 0; i < nq; i++) {
                float *dst = out + (q0 + i) * ldo + h * dh;
                const float *src = o + i * dh;
                if (accumulate)
                    for (int64_t d = 0; d < dh; d++) dst[d] += alpha * src[d];
                else
                    for (int64_t d = 0; d < dh; d++) dst[d] = alpha * src[d];
            }
        }
        free(s);
        free(o);
    }
}
