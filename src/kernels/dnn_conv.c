/* Convolution in bf16: the input is staged band of rows by band as bf16 channels-last [rows, W, Cin]
 * (the fused prologue - nearest-2x upsampling, GroupNorm's per-channel affine, SiLU - is applied on
 * the way, with the f32 kernel's arithmetic), oneDNN convolves it with the packed weight and adds the
 * bias into an f32 channels-last band, which is written (or added, for residuals) into the
 * channel-major output. Bands bound the staging memory on VAE-size images; the vertical zero padding
 * is staged as zero rows (so every band is the same unpadded-in-height convolution, a shape the
 * AMX kernels take), the horizontal one is oneDNN's. */
#include <omp.h>
#include <string.h>

#include "kernels/dnn_internal.h"
#include "kernels/kernels.h"
#include "kernels/vmath.h"

/* Staged input plus output band, at most (larger single rows still make one-row bands). */
#define BAND_BYTES ((int64_t)64 << 20)
/* Channels transposed together (a 32-byte run of bf16 per pixel). */
#define CBLK 16

typedef struct {
    int64_t Cin, Hs, Ws, H, W, Cout, kh, kw, Ho, Wo;
    int stride, pad, up, silu;
    const float *scale, *shift;
} conv_geom;

/* Input rows [y0, y0+nh) of the virtual input, transformed, as bf16 [nh][W][Cin]; rows outside the
 * image are zeros (padding). */
static void stage(const conv_geom *g, uint16_t *dst, float *rowbuf, const float *in, int64_t y0, int64_t nh) {
    int64_t W = g->W, Cin = g->Cin, nblk = (Cin + CBLK - 1) / CBLK;
#pragma omp parallel for schedule(static) collapse(2)
    for (int64_t yy = 0; yy < nh; yy++) {
        for (int64_t cb = 0; cb < nblk; cb++) {
            float *t = rowbuf + (int64_t)omp_get_thread_num() * CBLK * W;
            int64_t c0 = cb * CBLK, nc = Cin - c0 < CBLK ? Cin - c0 : CBLK, y = y0 + yy;
            uint16_t *o = dst + yy * W * Cin + c0;
            if (y < 0 || y >= g->H) {
                for (int64_t x = 0; x < W; x++) memset(o + x * Cin, 0, (size_t)nc * sizeof(uint16_t));
                continue;
            }
            /* channel c0 + j's row: src + j * lds */
            const float *src = in + (c0 * g->Hs + (g->up ? y / 2 : y)) * g->Ws;
            int64_t lds = g->Hs * g->Ws;
            if (g->up) {
                for (int64_t j = 0; j < nc; j++)
                    for (int64_t x = 0; x < g->Ws; x++) t[j * W + 2 * x] = t[j * W + 2 * x + 1] = src[j * lds + x];
                src = t;
                lds = W;
            }
            is_v_transpose_to_bf16(o, Cin, src, lds, W, nc, g->scale ? g->scale + c0 : NULL,
                                   g->shift ? g->shift + c0 : NULL, g->silu);
        }
    }
}

/* out[c, r0 + r, x] (+)= band[r, x, c] for the band's rows. */
static void unstage(const conv_geom *g, float *out, const float *band, int64_t r0, int64_t rows, int accumulate) {
    int64_t Wo = g->Wo, Cout = g->Cout, P = g->Ho * Wo, nblk = (Cout + CBLK - 1) / CBLK;
#pragma omp parallel for schedule(static) collapse(2)
    for (int64_t r = 0; r < rows; r++) {
        for (int64_t cb = 0; cb < nblk; cb++) {
            int64_t c0 = cb * CBLK, nc = Cout - c0 < CBLK ? Cout - c0 : CBLK;
            is_v_transpose_add(out + c0 * P + (r0 + r) * Wo, P, band + r * Wo * Cout + c0, Cout, Wo, nc, accumulate);
        }
    }
}

/* The convolution of an nh-row staged band (padding rows included) giving `rows` output rows, for the
 * weights layout wmd (NULL: the layout the primitive prefers). *pd_out receives the descriptor instead
 * of a cached primitive when asked (layout queries). */
static dnnl_primitive_desc_t conv_pd(is_dnn *d, const conv_geom *g, int64_t nh, int64_t rows, int has_bias,
                                     const dnnl_memory_desc_t *wmd) {
    dnnl_memory_desc_t src, dst, bias;
    dnnl_dims_t sd = {1, g->Cin, nh, g->W}, dd = {1, g->Cout, rows, g->Wo}, bd = {g->Cout};
    dnnl_dims_t sv = {g->stride, g->stride}, pl = {0, g->pad}, pr_ = {0, g->pad};
    dnnl_memory_desc_init_by_tag(&src, 4, sd, dnnl_bf16, dnnl_nhwc);
    dnnl_memory_desc_init_by_tag(&dst, 4, dd, dnnl_f32, dnnl_nhwc);
    dnnl_memory_desc_init_by_tag(&bias, 1, bd, dnnl_f32, dnnl_a);
    dnnl_memory_desc_t any;
    dnnl_dims_t wd = {g->Cout, g->Cin, g->kh, g->kw};
    dnnl_memory_desc_init_by_tag(&any, 4, wd, dnnl_bf16, dnnl_format_tag_any);
    dnnl_convolution_desc_t op;
    if (dnnl_convolution_forward_desc_init(&op, dnnl_forward_inference, dnnl_convolution_direct, &src,
                                           wmd ? wmd : &any, has_bias ? &bias : NULL, &dst, sv, pl, pr_) != dnnl_success)
        return NULL;
    return dnn_conv_pd(d, &op, g->kh == 1 && g->kw == 1);
}

static dnn_prim *conv_prim(is_dnn *d, const conv_geom *g, int64_t nh, int64_t rows, int has_bias, const dnn_pack *p) {
    int64_t key[DNN_KEY_N] = {DNN_CONV, g->Cin, nh, g->W, g->Cout, g->kh, g->kw, g->stride, g->pad, has_bias, rows};
    dnn_prim *pr = dnn_prim_find(d, key, &p->md);
    return pr ? pr : dnn_prim_add(d, key, &p->md, conv_pd(d, g, nh, rows, has_bias, &p->md));
}

/* The packed weight in the layout the convolution of this band prefers (AMX kernels choose their output
 * channel blocking by image width, so a weight packed for one width may need moving once). */
static const dnn_pack *fit_layout(is_dnn *d, const conv_geom *g, int64_t nh, int64_t rows, int has_bias,
                                  const is_tensor *w) {
    dnnl_primitive_desc_t pd = conv_pd(d, g, nh, rows, has_bias, NULL);
    if (!pd) return NULL;
    const dnnl_memory_desc_t *md = dnnl_primitive_desc_query_md(pd, dnnl_query_weights_md, 0);
    const dnn_pack *p = md ? dnn_pack_relayout(d, w, md) : NULL;
    dnnl_primitive_desc_destroy(pd);
    return p;
}

/* Output rows [r0, r1) read the staged input rows [y0, y0+nh) (padding rows included). */
static void band_rows(const conv_geom *g, int64_t r0, int64_t r1, int64_t *y0, int64_t *nh) {
    *y0 = r0 * g->stride - g->pad;
    *nh = (r1 - 1 - r0) * g->stride + g->kh;
}

/* 0 when every band's primitive exists and buffers are in place; *band_out the band height; *pp the
 * pack (moved to another layout if this width needs one). */
static int prepare(is_dnn *d, const conv_geom *g, int has_bias, const is_tensor *w, const dnn_pack **pp,
                   int64_t *band_out) {
    const dnn_pack *p = *pp;
    int64_t row_bytes = g->stride * g->W * g->Cin * 2 + g->Wo * g->Cout * 4;
    int64_t band = BAND_BYTES / (row_bytes > 0 ? row_bytes : 1);
    band = band < 1 ? 1 : band > g->Ho ? g->Ho : band;
    int64_t nb = (g->Ho + band - 1) / band;
    band = (g->Ho + nb - 1) / nb; /* even bands */
    int64_t max_nh = 0;
    for (int64_t r0 = 0; r0 < g->Ho; r0 += band) {
        int64_t r1 = r0 + band < g->Ho ? r0 + band : g->Ho, y0, nh;
        band_rows(g, r0, r1, &y0, &nh);
        dnn_prim *pr = conv_prim(d, g, nh, r1 - r0, has_bias, p);
        if ((!pr || !pr->ok) && r0 == 0 && (p = fit_layout(d, g, nh, r1 - r0, has_bias, w)) != NULL)
            pr = conv_prim(d, g, nh, r1 - r0, has_bias, p);
        if (!pr || !pr->ok) return -1;
        max_nh = nh > max_nh ? nh : max_nh;
    }
    if (!dnn_buf_get(&d->src, (size_t)(max_nh * g->W * g->Cin) * 2) ||
        !dnn_buf_get(&d->dst, (size_t)(band * g->Wo * g->Cout) * 4) ||
        !dnn_buf_get(&d->rowbuf, (size_t)(omp_get_max_threads() * CBLK * g->W) * 4))
        return -1;
    *band_out = band;
    *pp = p;
    return 0;
}

void is_dnn_conv2d_fused(is_dnn *d, float *out, const float *in, int64_t Cin, int64_t H, int64_t W,
                         const is_tensor *weight, const is_tensor *bias, int stride, int pad, const float *in_scale,
                         const float *in_shift, int in_silu, int upsample2x, int accumulate) {
    const dnn_pack *p = dnn_find_pack(d, weight);
    conv_geom g = {.Cin = Cin, .Hs = H, .Ws = W, .H = upsample2x ? 2 * H : H, .W = upsample2x ? 2 * W : W,
                   .Cout = weight->shape[0], .stride = stride, .pad = pad, .up = upsample2x, .silu = in_silu,
                   .scale = in_scale, .shift = in_shift};
    if (p && weight->ndim == 4 && weight->shape[1] == Cin && Cin > 0) {
        g.kh = weight->shape[2], g.kw = weight->shape[3];
        g.Ho = is_conv_out_size(g.H, g.kh, stride, pad), g.Wo = is_conv_out_size(g.W, g.kw, stride, pad);
    }
    int64_t band = 0;
    const float *b = p ? dnn_bias_f32(d, bias, g.Cout) : NULL;
    if (!p || g.Ho <= 0 || g.Wo <= 0 || (bias && !b) || prepare(d, &g, bias != NULL, weight, &p, &band)) {
        if (p) d->fallbacks++;
        is_k_conv2d_fused(out, in, Cin, H, W, weight, bias, stride, pad, in_scale, in_shift, in_silu, upsample2x,
                          accumulate);
        return;
    }
    is_flops_add(2.0 * (double)g.Cout * (double)(g.Ho * g.Wo) * (double)(Cin * g.kh * g.kw));
    for (int64_t r0 = 0; r0 < g.Ho; r0 += band) {
        int64_t r1 = r0 + band < g.Ho ? r0 + band : g.Ho, y0, nh;
        band_rows(&g, r0, r1, &y0, &nh);
        dnn_prim *pr = conv_prim(d, &g, nh, r1 - r0, bias != NULL, p);
        stage(&g, d->src.p, d->rowbuf.p, in, y0, nh);
        if (dnn_prim_run(d, pr, d->src.p, p->data, b, d->dst.p)) {
            /* cannot happen once the primitive exists; keep the output defined anyway */
            memset(d->dst.p, 0, (size_t)((r1 - r0) * g.Wo * g.Cout) * sizeof(float));
            d->fallbacks++;
        }
        unstage(&g, out, d->dst.p, r0, r1 - r0, accumulate);
    }
}

void is_dnn_conv2d(is_dnn *d, float *out, const float *in, int64_t Cin, int64_t H, int64_t W,
                   const is_tensor *weight, const is_tensor *bias, int stride, int pad) {
    is_dnn_conv2d_fused(d, out, in, Cin, H, W, weight, bias, stride, pad, NULL, NULL, 0, 0, 0);
}

const char *is_dnn_conv_impl(is_dnn *d, int64_t Cin, int64_t H, int64_t W, const is_tensor *weight, int stride,
                             int pad) {
    const dnn_pack *p = dnn_find_pack(d, weight);
    if (!p || weight->ndim != 4) return NULL;
    conv_geom g = {.Cin = Cin, .H = H, .W = W, .Cout = weight->shape[0], .kh = weight->shape[2],
                   .kw = weight->shape[3], .stride = stride, .pad = pad};
    g.Ho = is_conv_out_size(H, g.kh, stride, pad), g.Wo = is_conv_out_size(W, g.kw, stride, pad);
    if (g.Ho <= 0 || g.Wo <= 0) return NULL;
    int64_t y0, nh;
    band_rows(&g, 0, g.Ho, &y0, &nh);
    dnn_prim *pr = conv_prim(d, &g, nh, g.Ho, 0, p);
    return pr && pr->ok ? pr->impl : NULL;
}
