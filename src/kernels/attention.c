/* Multi-head attention, flash style: for each (head, block of queries) the keys are visited in
 * blocks; scores S = scale * Q K^T come from sgemm, a running row maximum and sum rescale the
 * output accumulator (online softmax), and O += exp(S - max) V is another sgemm. Memory per thread
 * is one query-block x key-block score tile plus the accumulator, never Nq x Nk. */
#include <cblas.h>
#include <math.h>

#include "kernels/kernels.h"
#include "kernels/scratch.h"
#include "kernels/vmath.h"

#define QBLOCK 128  /* queries per job */
#define KBLOCK 512  /* keys per score tile (tile = 256 KiB, stays in L2) */

/* One job: queries [q0, q0+nq) of head h. */
static void attend_block(float *out, int64_t ldo, const float *q, int64_t ldq, const float *k, int64_t ldk,
                         const float *v, int64_t ldv, int64_t q0, int64_t nq, int64_t Nk, int64_t dh, int causal,
                         float scale, float alpha, int accumulate) {
    int64_t kb = Nk < KBLOCK ? Nk : KBLOCK;
    float *s = is_scratch_thread(IS_SCR_T_TILE, (size_t)(nq * kb));
    float *o = is_scratch_thread(IS_SCR_T_ACC, (size_t)(nq * dh));
    float *stats = is_scratch_thread(IS_SCR_T_STATS, (size_t)(2 * nq));
    float *mx = stats, *sum = stats + nq;
    for (int64_t i = 0; i < nq; i++) mx[i] = -INFINITY, sum[i] = 0.0f;
    for (int64_t i = 0; i < nq * dh; i++) o[i] = 0.0f;
    /* causal: the last query of the block sees keys [0, q0+nq) */
    int64_t nk_used = causal ? (q0 + nq < Nk ? q0 + nq : Nk) : Nk;
    for (int64_t k0 = 0; k0 < nk_used; k0 += kb) {
        int64_t nk = nk_used - k0 < kb ? nk_used - k0 : kb;
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (blasint)nq, (blasint)nk, (blasint)dh, scale, q + q0 * ldq,
                    (blasint)ldq, k + k0 * ldk, (blasint)ldk, 0.0f, s, (blasint)nk);
        for (int64_t i = 0; i < nq; i++) {
            float *row = s + i * nk, *oi = o + i * dh;
            int64_t valid = causal ? q0 + i + 1 - k0 : nk; /* keys k0+j <= q0+i */
            valid = valid > nk ? nk : valid;
            if (valid <= 0) { /* nothing visible in this block: contributes zero */
                for (int64_t j = 0; j < nk; j++) row[j] = 0.0f;
                continue;
            }
            float m = is_v_max(row, valid);
            m = m > mx[i] ? m : mx[i];
            float corr = k0 == 0 ? 0.0f : is_v_expf(mx[i] - m);
            sum[i] = sum[i] * corr + is_v_exp_sum(row, valid, m);
            for (int64_t j = valid; j < nk; j++) row[j] = 0.0f;
            mx[i] = m;
            if (k0 > 0 && corr != 1.0f)
                for (int64_t d = 0; d < dh; d++) oi[d] *= corr;
        }
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (blasint)nq, (blasint)dh, (blasint)nk, 1.0f, s,
                    (blasint)nk, v + k0 * ldv, (blasint)ldv, 1.0f, o, (blasint)dh);
    }
    for (int64_t i = 0; i < nq; i++) {
        float *dst = out + (q0 + i) * ldo;
        const float *src = o + i * dh;
        float f = sum[i] > 0.0f ? alpha / sum[i] : 0.0f; /* Nk == 0: no keys, zero output */
        if (accumulate)
            for (int64_t d = 0; d < dh; d++) dst[d] += f * src[d];
        else
            for (int64_t d = 0; d < dh; d++) dst[d] = f * src[d];
    }
}

void is_k_attention(float *out, int64_t ldo, const float *q, int64_t ldq, const float *k, int64_t ldk,
                    const float *v, int64_t ldv, int64_t Nq, int64_t Nk, int64_t heads, int64_t dh,
                    int causal, float alpha, int accumulate) {
    if (Nq <= 0 || heads <= 0 || dh <= 0) return;
    float scale = 1.0f / sqrtf((float)dh);
    int64_t nqb = (Nq + QBLOCK - 1) / QBLOCK, jobs = heads * nqb;
    is_flops_add(4.0 * (double)Nq * (double)Nk * (double)dh * (double)heads);
#pragma omp parallel for schedule(dynamic)
    for (int64_t job = 0; job < jobs; job++) {
        int64_t h = job / nqb, q0 = (job % nqb) * QBLOCK;
        int64_t nq = Nq - q0 < QBLOCK ? Nq - q0 : QBLOCK;
        attend_block(out + h * dh, ldo, q + h * dh, ldq, k + h * dh, ldk, v + h * dh, ldv, q0, nq, Nk, dh, causal,
                     scale, alpha, accumulate);
    }
}
