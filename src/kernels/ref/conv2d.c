/* Reference (first, straightforward) version kept to test the optimised kernels against. */
/* 2-D convolution as im2col + GEMM (weights converted to f32 one layer at a time). */
#include <stdlib.h>
#include <string.h>

#include "kernels/kernels_ref.h"

static void im2col(float *col, const float *in, int64_t Cin, int64_t H, int64_t W, int64_t kh, int64_t kw,
                   int stride, int pad, int64_t Ho, int64_t Wo) {
#pragma omp parallel for schedule(static)
    for (int64_t c = 0; c < Cin; c++) {
        for (int64_t ky = 0; ky < kh; ky++) {
            for (int64_t kx = 0; kx < kw; kx++) {
                float *dst = col + ((c * kh + ky) * kw + kx) * Ho * Wo;
                for (int64_t oy = 0; oy < Ho; oy++) {
                    int64_t iy = oy * stride - pad + ky;
                    float *row = dst + oy * Wo;
                    if (iy < 0 || iy >= H) {
                        memset(row, 0, (size_t)Wo * sizeof(float));
                        continue;
                    }
                    const float *src = in + (c * H + iy) * W;
                    for (int64_t ox = 0; ox < Wo; ox++) {
                        int64_t ix = ox * stride - pad + kx;
                        row[ox] = (ix >= 0 && ix < W) ? src[ix] : 0.0f;
                    }
                }
            }
        }
    }
}

void is_kref_conv2d(float *out, const float *in, int64_t Cin, int64_t H, int64_t W, const is_tensor *weight,
                 const is_tensor *bias, int stride, int pad) {
    int64_t Cout = weight->shape[0], kh = weight->shape[2], kw = weight->shape[3];
    int64_t Ho = is_conv_out_size(H, kh, stride, pad), Wo = is_conv_out_size(W, kw, stride, pad);
    int64_t K = Cin * kh * kw, P = Ho * Wo;
    float *wf = NULL;
    const float *w = (const float *)weight->data;
    if (weight->dtype != IS_DT_F32) {
        wf = malloc((size_t)(Cout * K) * sizeof(float));
        if (!wf) abort();
        is_tensor_to_f32(weight, wf);
        w = wf;
    }
    if (kh == 1 && kw == 1 && stride == 1 && pad == 0) {
        is_kref_gemm(out, w, in, Cout, P, K, 0, 1.0f, 0.0f);
    } else {
        float *col = malloc((size_t)(K * P) * sizeof(float));
        if (!col) abort();
        im2col(col, in, Cin, H, W, kh, kw, stride, pad, Ho, Wo);
        is_kref_gemm(out, w, col, Cout, P, K, 0, 1.0f, 0.0f);
        free(col);
    }
    free(wf);
    if (bias) {
#pragma omp parallel for schedule(static)
        for (int64_t c = 0; c < Cout; c++) {
            float b = is_tensor_get_f32(bias, (size_t)c);
            float *o = out + c * P;
            for (int64_t i = 0; i < P; i++) o[i] += b;
        }
    }
}
