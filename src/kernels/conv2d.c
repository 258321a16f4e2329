/* 2-D convolution as GEMM: out[Cout, P] = W[Cout, Cin*kh*kw] @ col[Cin*kh*kw, P].
 * The weight is converted to f32 once per call into reused scratch (one layer, never the model).
 * col is built one tile of output rows at a time per thread (bounded memory, in cache while that
 * thread's single-threaded sgemm consumes it); 1x1 convolutions use the input as col directly. */
#include <cblas.h>
#include <omp.h>
#include <string.h>

#include "kernels/kernels.h"
#include "kernels/scratch.h"

int64_t is_conv_out_size(int64_t in, int64_t k, int stride, int pad) {
    return (in + 2 * pad - k) / stride + 1;
}

/* im2col of output rows [r0, r0+nr): col[(c*kh+ky)*kw+kx][(oy-r0)*Wo + ox]. */
static void im2col_rows(float *col, const float *in, int64_t Cin, int64_t H, int64_t W, int64_t kh, int64_t kw,
                        int stride, int pad, int64_t Wo, int64_t r0, int64_t nr) {
    int64_t cols = nr * Wo, K = Cin * kh * kw;
    for (int64_t kk = 0; kk < K; kk++) {
        int64_t c = kk / (kh * kw), ky = (kk / kw) % kh, kx = kk % kw;
        float *dst = col + kk * cols;
        /* output columns whose input x = ox*stride - pad + kx lies inside [0, W) */
        int64_t ox_lo = pad - kx > 0 ? (pad - kx + stride - 1) / stride : 0;
        int64_t ox_hi = (W - 1 + pad - kx) >= 0 ? (W - 1 + pad - kx) / stride + 1 : 0;
        ox_hi = ox_hi < Wo ? ox_hi : Wo;
        for (int64_t oy = r0; oy < r0 + nr; oy++) {
            int64_t iy = oy * stride - pad + ky;
            float *row = dst + (oy - r0) * Wo;
            if (iy < 0 || iy >= H || ox_lo >= ox_hi) {
                memset(row, 0, (size_t)Wo * sizeof(float));
                continue;
            }
            const float *src = in + (c * H + iy) * W;
            int64_t x0 = ox_lo * stride - pad + kx; /* input x of output column ox_lo */
            for (int64_t ox = 0; ox < ox_lo; ox++) row[ox] = 0.0f;
            if (stride == 1) {
                memcpy(row + ox_lo, src + x0, (size_t)(ox_hi - ox_lo) * sizeof(float));
            } else {
                for (int64_t ox = ox_lo; ox < ox_hi; ox++) row[ox] = src[x0 + (ox - ox_lo) * stride];
            }
            for (int64_t ox = ox_hi; ox < Wo; ox++) row[ox] = 0.0f;
        }
    }
}

void is_k_conv2d(float *out, const float *in, int64_t Cin, int64_t H, int64_t W, const is_tensor *weight,
                 const is_tensor *bias, int stride, int pad) {
    int64_t Cout = weight->shape[0], kh = weight->shape[2], kw = weight->shape[3];
    int64_t Ho = is_conv_out_size(H, kh, stride, pad), Wo = is_conv_out_size(W, kw, stride, pad);
    int64_t K = Cin * kh * kw, P = Ho * Wo;
    if (Cout <= 0 || Ho <= 0 || Wo <= 0) return;
    if (K <= 0) { /* no input channels: the output is the bias */
        for (int64_t c = 0; c < Cout; c++)
            for (int64_t i = 0; i < P; i++) out[c * P + i] = bias ? is_tensor_get_f32(bias, (size_t)c) : 0.0f;
        return;
    }
    is_flops_add(2.0 * (double)Cout * (double)P * (double)K);
    float *b = NULL;
    if (bias) {
        b = is_scratch(IS_SCR_BIAS, (size_t)Cout);
        is_tensor_to_f32(bias, b);
    }
    const float *w = (const float *)weight->data;
    if (weight->dtype != IS_DT_F32) {
        float *wf = is_scratch(IS_SCR_WEIGHT, (size_t)(Cout * K));
        is_k_convert_parallel(weight, 0, (size_t)(Cout * K), wf);
        w = wf;
    }
    int direct = kh == 1 && kw == 1 && stride == 1 && pad == 0; /* 1x1: the input is already col */
    /* Jobs = (tile of output rows) x (block of output channels), each run by one thread with a
     * single-threaded sgemm on its own im2col tile. Tiles fit IS_SCR_TILE_FLOATS; when there are
     * few, they shrink (to >= 256 columns) and the channels split, so every core gets work. */
    int threads = omp_get_max_threads();
    int64_t rows = (int64_t)IS_SCR_TILE_FLOATS / (K * Wo);
    rows = rows < 1 ? 1 : rows > Ho ? Ho : rows;
    int64_t ntiles = (Ho + rows - 1) / rows;
    if (ntiles < 4 * threads) {
        int64_t want = (Ho + 4 * threads - 1) / (4 * threads), min_rows = (256 + Wo - 1) / Wo;
        rows = want > min_rows ? want : min_rows;
        rows = rows > Ho ? Ho : rows;
        ntiles = (Ho + rows - 1) / rows;
    }
    rows = (Ho + ntiles - 1) / ntiles; /* even tiles */
    ntiles = (Ho + rows - 1) / rows;
    int64_t cblocks = 1;
    if (ntiles < 4 * threads) {
        cblocks = (4 * threads + ntiles - 1) / ntiles;
        int64_t max_blocks = Cout / 64 > 1 ? Cout / 64 : 1;
        cblocks = cblocks < max_blocks ? cblocks : max_blocks;
    }
    int64_t cstep = (Cout + cblocks - 1) / cblocks;
    cstep = (cstep + 15) / 16 * 16;
    cblocks = (Cout + cstep - 1) / cstep;
#pragma omp parallel for schedule(dynamic) collapse(2)
    for (int64_t t = 0; t < ntiles; t++) {
        for (int64_t cb = 0; cb < cblocks; cb++) {
            int64_t r0 = t * rows, nr = Ho - r0 < rows ? Ho - r0 : rows, n = nr * Wo;
            int64_t c0 = cb * cstep, nc = Cout - c0 < cstep ? Cout - c0 : cstep;
            const float *col = in + r0 * Wo;
            int64_t ldcol = P;
            if (!direct) {
                float *tile = is_scratch_thread(IS_SCR_T_TILE, (size_t)(K * n));
                im2col_rows(tile, in, Cin, H, W, kh, kw, stride, pad, Wo, r0, nr);
                col = tile, ldcol = n;
            }
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (blasint)nc, (blasint)n, (blasint)K, 1.0f,
                        w + c0 * K, (blasint)K, col, (blasint)ldcol, 0.0f, out + c0 * P + r0 * Wo, (blasint)P);
            if (b)
                for (int64_t c = c0; c < c0 + nc; c++) {
                    float *o = out + c * P + r0 * Wo, v = b[c];
                    for (int64_t i = 0; i < n; i++) o[i] += v;
                }
        }
    }
}
