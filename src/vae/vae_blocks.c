/* The VAE's building blocks (diffusers ResnetBlock2D, the mid block's Attention, Upsample2D,
 * Downsample2D) on [C,H,W] activations in the workspace arena. GroupNorm+SiLU, the nearest 2x
 * upsampling and the residual additions are folded into the convolutions (is_dnn_conv2d_fused), so
 * the normalised, upsampled and pre-residual tensors are never stored. */
#include <string.h>

#include "kernels/kernels.h"
#include "vae/vae_internal.h"

void vae_emit(is_tensor_hook hook, void *user, const char *name, const vae_act *x) {
    if (!hook) return;
    int64_t shape[3] = {x->C, x->H, x->W}; /* the hook's shapes exclude the batch axis */
    hook(user, name, 0, x->data, 3, shape);
}

/* x -> conv(x) at the other end of the arena, optionally reading x through a 2x upsampling. */
static void conv_step(vae_act *x, vae_workspace *ws, const vae_param *conv, int stride, int pad, int up) {
    const is_tensor *w = conv->w;
    int64_t H = up ? 2 * x->H : x->H, W = up ? 2 * x->W : x->W;
    int64_t C = w->shape[0], Ho = is_conv_out_size(H, w->shape[2], stride, pad);
    int64_t Wo = is_conv_out_size(W, w->shape[3], stride, pad);
    float *out = vae_ws_opposite(ws, x->data, C * Ho * Wo);
    is_dnn_conv2d_fused(ws->dnn, out, x->data, x->C, x->H, x->W, w, conv->b, stride, pad, NULL, NULL, 0, up, 0);
    *x = (vae_act){out, C, Ho, Wo};
}

void vae_conv(vae_act *x, vae_workspace *ws, const vae_param *conv, int stride, int pad) {
    conv_step(x, ws, conv, stride, pad, 0);
}

void vae_norm_silu_conv(const vae_act *x, vae_workspace *ws, const vae_param *norm, int64_t groups,
                        const vae_param *conv, float *out) {
    float *scale = ws->norm, *shift = ws->norm + ws->norm_cap / 2;
    is_k_group_norm_affine(x->data, x->C, x->H * x->W, groups, VAE_GN_EPS, norm->w, norm->b, scale, shift);
    is_dnn_conv2d_fused(ws->dnn, out, x->data, x->C, x->H, x->W, conv->w, conv->b, 1, 1, scale, shift, 1, 0, 0);
}

/* out = shortcut(x) + conv2(silu(gn2(h))), h = conv1(silu(gn1(x))); shortcut is a 1x1 conv when the
 * channels change, else the identity. h goes to the other end of the arena; the shortcut is
 * computed in place (aligned to x's end) and conv2 is added into it, so only x and h are alive. */
void vae_resnet_forward(const vae_resnet *r, vae_workspace *ws, vae_act *x) {
    int64_t H = x->H, W = x->W, HW = H * W;
    vae_act h = {vae_ws_opposite(ws, x->data, r->cout * HW), r->cout, H, W};
    vae_norm_silu_conv(x, ws, &r->norm1, r->groups, &r->conv1, h.data);
    float *out = x->data;
    if (r->shortcut.w) {
        if (x->data != ws->base) out = x->data + (r->cin - r->cout) * HW; /* keep it at the arena's end */
        is_dnn_conv2d(ws->dnn, out, x->data, r->cin, H, W, r->shortcut.w, r->shortcut.b, 1, 0);
    }
    float *scale = ws->norm, *shift = ws->norm + ws->norm_cap / 2;
    is_k_group_norm_affine(h.data, r->cout, HW, r->groups, VAE_GN_EPS, r->norm2.w, r->norm2.b, scale, shift);
    is_dnn_conv2d_fused(ws->dnn, out, h.data, r->cout, H, W, r->conv2.w, r->conv2.b, 1, 1, scale, shift, 1, 0, 1);
    x->data = out;
    x->C = r->cout;
}

/* Single-head self-attention over the H*W positions (diffusers Attention with group norm,
 * residual connection, rescale_output_factor 1). Blocked: never builds the N x N matrix.
 * Its four [N, C] scratch matrices sit at the other end of the arena. */
static void attention_forward(const vae_attention *a, vae_workspace *ws, vae_act *x) {
    int64_t C = x->C, N = x->H * x->W;
    float *s0 = vae_ws_opposite(ws, x->data, 4 * C * N), *s1 = s0 + C * N, *s2 = s1 + C * N, *s3 = s2 + C * N;
    is_k_group_norm(s0, x->data, C, N, a->groups, VAE_GN_EPS, a->norm.w, a->norm.b, 0);
    is_k_transpose(s1, s0, C, N); /* [C,N] -> tokens [N,C] */
    is_dnn_linear(ws->dnn, s2, s1, N, a->q.w, a->q.b);
    is_dnn_linear(ws->dnn, s3, s1, N, a->k.w, a->k.b);
    is_dnn_linear(ws->dnn, s0, s1, N, a->v.w, a->v.b);
    is_dnn_attention(ws->dnn, s1, C, s2, C, s3, C, s0, C, N, N, 1, C, 0, 1.0f, 0);
    is_dnn_linear(ws->dnn, s2, s1, N, a->out.w, a->out.b);
    is_k_transpose(s3, s2, N, C);
    is_k_add(x->data, s3, C * N);
}

void vae_mid_forward(const vae_mid *m, vae_workspace *ws, vae_act *x) {
    vae_resnet_forward(&m->res0, ws, x);
    if (m->has_attn) attention_forward(&m->attn, ws, x);
    vae_resnet_forward(&m->res1, ws, x);
}

/* Upsample2D: nearest 2x, then 3x3 conv (the conv reads x through the 2x view). */
void vae_upsample_forward(const vae_param *conv, vae_workspace *ws, vae_act *x) {
    conv_step(x, ws, conv, 1, 1, 1);
}

/* Downsample2D (encoder): zero-pad one row at the bottom and one column at the right,
 * then 3x3 conv with stride 2 and no padding. */
void vae_downsample_forward(const vae_param *conv, vae_workspace *ws, vae_act *x) {
    int64_t H = x->H, W = x->W, Wp = W + 1;
    float *p = vae_ws_opposite(ws, x->data, x->C * (H + 1) * Wp);
    for (int64_t c = 0; c < x->C; c++) {
        float *dst = p + c * (H + 1) * Wp;
        const float *src = x->data + c * H * W;
        for (int64_t y = 0; y < H; y++) {
            memcpy(dst + y * Wp, src + y * W, (size_t)W * sizeof(float));
            dst[y * Wp + W] = 0.0f;
        }
        memset(dst + H * Wp, 0, (size_t)Wp * sizeof(float));
    }
    x->data = p;
    x->H = H + 1;
    x->W = Wp;
    vae_conv(x, ws, conv, 2, 0);
}
