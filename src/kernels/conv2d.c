/* 2-D convolution as GEMM: out[Cout, P] = W[Cout, Cin*kh*kw] @ col[Cin*kh*kw, P].
 * The weight is converted to f32 once per call into reused scratch (one layer, never the model).
 * col is built one tile of output rows at a time per thread (bounded memory, in cache while that
 * thread's single-threaded sgemm consumes it); 1x1 convolutions use the input as col directly.
 * The fused entry point can transform the input on the way in (per-channel affine + SiLU, i.e. a
 * folded GroupNorm; nearest 2x upsampling) and add the result into out, so those intermediate
 * tensors are never materialised: the input is transformed band of rows by band into scratch
 * (with exactly the arithmetic of the unfused kernels), then convolved like an ordinary input. */
#include <cblas.h>
#include <stdint.h>
#include <string.h>

#include "kernels/kernels.h"
#include "kernels/scratch.h"
#include "kernels/split.h"
#include "kernels/vmath.h"

/* Staged (transformed) input rows per band: 64 MiB, a few dozen rows at SDXL VAE sizes. */
#define CONV_BAND_FLOATS ((int64_t)16 << 20)

int64_t is_conv_out_size(int64_t in, int64_t k, int stride, int pad) {
    return (in + 2 * pad - k) / stride + 1;
}

/* im2col of output rows [r0, r0+nr): col[(c*kh+ky)*kw+kx][(oy-r0)*Wo + ox]. The input holds rows
 * [y0, y0+nh) of each channel of an H x W image (rows outside [0, H) are zero padding). */
static void im2col_rows(float *col, const float *in, int64_t Cin, int64_t H, int64_t W, int64_t y0, int64_t nh,
                        int64_t kh, int64_t kw, int stride, int pad, int64_t Wo, int64_t r0, int64_t nr) {
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
            const float *src = in + (c * nh + iy - y0) * W;
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

/* Rows [y0, y0+nh) of the virtual input (H x W after the optional 2x upsampling of in) with the
 * optional affine + SiLU applied, into stage[Cin][nh][W]. */
static void stage_rows(float *stage, const float *in, int64_t Cin, int64_t H, int64_t W, int64_t y0, int64_t nh,
                       const float *scale, const float *shift, int silu, int up) {
    int64_t Hs = up ? H / 2 : H, Ws = up ? W / 2 : W; /* stored input size */
#pragma omp parallel for schedule(static)
    for (int64_t cy = 0; cy < Cin * nh; cy++) {
        int64_t c = cy / nh, y = y0 + cy % nh;
        float *dst = stage + cy * W;
        const float *src = in + (c * Hs + (up ? y / 2 : y)) * Ws;
        if (up) {
            for (int64_t x = 0; x < Ws; x++) dst[2 * x] = dst[2 * x + 1] = src[x];
            src = dst; /* the affine below runs in place on the upsampled row */
        }
        if (scale)
            is_v_affine(dst, src, W, scale[c], shift[c], silu);
        else if (silu)
            is_v_silu(dst, src, W);
        else if (!up)
            memcpy(dst, src, (size_t)W * sizeof(float));
    }
}

static int regions_overlap(const float *a, int64_t na, const float *b, int64_t nb) {
    uintptr_t a0 = (uintptr_t)a, a1 = (uintptr_t)(a + na), b0 = (uintptr_t)b, b1 = (uintptr_t)(b + nb);
    return a0 < b1 && b0 < a1;
}

/* Geometry and operands shared by the row jobs of one call. */
typedef struct {
    int64_t Cin, H, W, Cout, kh, kw, Ho, Wo, K, P;
    int stride, pad, direct, accumulate;
    const float *w, *b;
} conv_geom;

/* Output rows [r_begin, r_end) from src, which holds rows [y0, y0+nh) of the (transformed) input. */
static void conv_rows(const conv_geom *g, float *out, const float *src, int64_t y0, int64_t nh, int64_t r_begin,
                      int64_t r_end) {
    int64_t Cout = g->Cout, K = g->K, Wo = g->Wo, P = g->P, nrows = r_end - r_begin;
    /* Jobs = (tile of output rows) x (block of output channels), each run by one thread with a
     * single-threaded sgemm on its own im2col tile. Tiles fit IS_SCR_TILE_FLOATS; when there are
     * few, they shrink (to >= 256 columns) and the channels split, so every core gets work. */
    const int threads = is_k_split_threads();
    int64_t rows = (int64_t)IS_SCR_TILE_FLOATS / (K * Wo);
    rows = rows < 1 ? 1 : rows > nrows ? nrows : rows;
    int64_t ntiles = (nrows + rows - 1) / rows;
    if (ntiles < 4 * threads) {
        int64_t want = (nrows + 4 * threads - 1) / (4 * threads), min_rows = (256 + Wo - 1) / Wo;
        rows = want > min_rows ? want : min_rows;
        rows = rows > nrows ? nrows : rows;
        ntiles = (nrows + rows - 1) / rows;
    }
    rows = (nrows + ntiles - 1) / ntiles; /* even tiles */
    ntiles = (nrows + rows - 1) / rows;
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
            int64_t r0 = r_begin + t * rows, nr = r_end - r0 < rows ? r_end - r0 : rows, n = nr * Wo;
            int64_t c0 = cb * cstep, nc = Cout - c0 < cstep ? Cout - c0 : cstep;
            int64_t n_col = g->direct ? 0 : K * n;
            float *scr = is_scratch_thread(IS_SCR_T_TILE, (size_t)(n_col + (g->accumulate ? nc * n : 0)));
            const float *col = src + (r0 - y0) * Wo; /* 1x1: rows [r0, r0+nr) of every channel */
            int64_t ldcol = nh * g->W;
            if (!g->direct) {
                im2col_rows(scr, src, g->Cin, g->H, g->W, y0, nh, g->kh, g->kw, g->stride, g->pad, Wo, r0, nr);
                col = scr, ldcol = n;
            }
            float *dst = out + c0 * P + r0 * Wo;
            int64_t ldd = P;
            if (g->accumulate) dst = scr + n_col, ldd = n; /* product first, then out += product + bias */
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (blasint)nc, (blasint)n, (blasint)K, 1.0f,
                        g->w + c0 * K, (blasint)K, col, (blasint)ldcol, 0.0f, dst, (blasint)ldd);
            const float *b = g->b;
            for (int64_t c = 0; c < nc; c++) {
                float *o = out + (c0 + c) * P + r0 * Wo, v = b ? b[c0 + c] : 0.0f;
                if (g->accumulate) {
                    const float *pr = dst + c * ldd;
                    for (int64_t i = 0; i < n; i++) o[i] += b ? pr[i] + v : pr[i];
                } else if (b) {
                    for (int64_t i = 0; i < n; i++) o[i] += v;
                }
            }
        }
    }
}

void is_k_conv2d_fused(float *out, const float *in, int64_t Cin, int64_t H, int64_t W, const is_tensor *weight,
                       const is_tensor *bias, int stride, int pad, const float *in_scale, const float *in_shift,
                       int in_silu, int upsample2x, int accumulate) {
    int64_t in_floats = Cin * H * W;
    if (upsample2x) H *= 2, W *= 2; /* from here on H x W is the (virtual) convolution input */
    conv_geom g = {.Cin = Cin, .H = H, .W = W, .Cout = weight->shape[0], .kh = weight->shape[2],
                   .kw = weight->shape[3], .stride = stride, .pad = pad, .accumulate = accumulate};
    g.Ho = is_conv_out_size(H, g.kh, stride, pad), g.Wo = is_conv_out_size(W, g.kw, stride, pad);
    g.K = Cin * g.kh * g.kw, g.P = g.Ho * g.Wo;
    int64_t Cout = g.Cout, P = g.P;
    if (Cout <= 0 || g.Ho <= 0 || g.Wo <= 0) return;
    if (g.K <= 0) { /* no input channels: the output is the bias */
        for (int64_t c = 0; c < Cout; c++)
            for (int64_t i = 0; i < P; i++) {
                float v = bias ? is_tensor_get_f32(bias, (size_t)c) : 0.0f;
                out[c * P + i] = accumulate ? out[c * P + i] + v : v;
            }
        return;
    }
    is_flops_add(2.0 * (double)Cout * (double)P * (double)g.K);
    float *b = NULL;
    if (bias) {
        b = is_scratch(IS_SCR_BIAS, (size_t)Cout);
        is_tensor_to_f32(bias, b);
    }
    g.b = b;
    g.w = (const float *)weight->data;
    if (weight->dtype != IS_DT_F32) {
        float *wf = is_scratch(IS_SCR_WEIGHT, (size_t)(Cout * g.K));
        is_k_convert_parallel(weight, 0, (size_t)(Cout * g.K), wf);
        g.w = wf;
    }
    g.direct = g.kh == 1 && g.kw == 1 && stride == 1 && pad == 0; /* 1x1: the input is already col */
    /* A 1x1 convolution may write over its own input (out - in a multiple of P): its input is then
     * staged (copied) band by band before the band's rows are written. */
    int staged = in_scale || in_silu || upsample2x || regions_overlap(out, Cout * P, in, in_floats);
    if (!staged) {
        conv_rows(&g, out, in, 0, H, 0, g.Ho);
        return;
    }
    /* Bands of output rows whose (transformed) input rows fit CONV_BAND_FLOATS, staged once in
     * parallel and then convolved like an ordinary input: each input element is transformed about
     * once (a band re-stages only its kh - stride halo rows). */
    int64_t band_in = CONV_BAND_FLOATS / (Cin * W), band = band_in > g.kh ? (band_in - g.kh) / stride + 1 : 1;
    band = band > g.Ho ? g.Ho : band;
    band = (g.Ho + (g.Ho + band - 1) / band - 1) / ((g.Ho + band - 1) / band); /* even bands */
    int64_t max_nh = (band - 1) * stride + g.kh;
    max_nh = max_nh < H ? max_nh : H;
    float *stage = is_scratch(IS_SCR_NORM, (size_t)(Cin * max_nh * W));
    for (int64_t r0 = 0; r0 < g.Ho; r0 += band) {
        int64_t r1 = r0 + band < g.Ho ? r0 + band : g.Ho;
        int64_t y0 = r0 * stride - pad, y1 = (r1 - 1) * stride - pad + g.kh; /* input rows, clipped */
        y0 = y0 < 0 ? 0 : y0, y1 = y1 > H ? H : y1;
        int64_t nh = y1 > y0 ? y1 - y0 : 0;
        stage_rows(stage, in, Cin, H, W, y0, nh, in_scale, in_shift, in_silu, upsample2x);
        conv_rows(&g, out, stage, y0, nh, r0, r1);
    }
}

void is_k_conv2d(float *out, const float *in, int64_t Cin, int64_t H, int64_t W, const is_tensor *weight,
                 const is_tensor *bias, int stride, int pad) {
    is_k_conv2d_fused(out, in, Cin, H, W, weight, bias, stride, pad, NULL, NULL, 0, 0, 0);
}
