/* The VAE's building blocks (diffusers ResnetBlock2D, the mid block's Attention,
 * Upsample2D, Downsample2D) on [C,H,W] activations rotating through the workspace. */
#include <string.h>

#include "kernels/kernels.h"
#include "vae/vae_internal.h"

void vae_emit(is_tensor_hook hook, void *user, const char *name, const vae_act *x) {
    if (!hook) return;
    int64_t shape[3] = {x->C, x->H, x->W}; /* the hook's shapes exclude the batch axis */
    hook(user, name, 0, x->data, 3, shape);
}

void vae_conv(vae_act *x, vae_workspace *ws, const vae_param *conv, int stride, int pad) {
    float *out = vae_ws_other(ws, x->data, NULL);
    const is_tensor *w = conv->w;
    is_k_conv2d(out, x->data, x->C, x->H, x->W, w, conv->b, stride, pad);
    x->data = out;
    x->C = w->shape[0];
    x->H = is_conv_out_size(x->H, w->shape[2], stride, pad);
    x->W = is_conv_out_size(x->W, w->shape[3], stride, pad);
}

/* out = x + conv2(silu(gn2(conv1(silu(gn1(x)))))), x through a 1x1 conv when channels change. */
void vae_resnet_forward(const vae_resnet *r, vae_workspace *ws, vae_act *x) {
    int64_t H = x->H, W = x->W, HW = H * W;
    float *t1 = vae_ws_other(ws, x->data, NULL), *t2 = vae_ws_other(ws, x->data, t1);
    is_k_group_norm(t1, x->data, r->cin, HW, r->groups, VAE_GN_EPS, r->norm1.w, r->norm1.b, 1);
    is_k_conv2d(t2, t1, r->cin, H, W, r->conv1.w, r->conv1.b, 1, 1);
    is_k_group_norm(t2, t2, r->cout, HW, r->groups, VAE_GN_EPS, r->norm2.w, r->norm2.b, 1);
    is_k_conv2d(t1, t2, r->cout, H, W, r->conv2.w, r->conv2.b, 1, 1);
    if (r->shortcut.w) {
        is_k_conv2d(t2, x->data, r->cin, H, W, r->shortcut.w, r->shortcut.b, 1, 0);
        is_k_add(t2, t1, r->cout * HW);
        x->data = t2;
    } else {
        is_k_add(x->data, t1, r->cout * HW);
    }
    x->C = r->cout;
}

/* Single-head self-attention over the H*W positions (diffusers Attention with group norm,
 * residual connection, rescale_output_factor 1). Blocked: never builds the N x N matrix. */
static void attention_forward(const vae_attention *a, vae_workspace *ws, vae_act *x) {
    int64_t C = x->C, N = x->H * x->W;
    float *s0 = ws->attn, *s1 = s0 + C * N, *s2 = s1 + C * N, *s3 = s2 + C * N;
    is_k_group_norm(s0, x->data, C, N, a->groups, VAE_GN_EPS, a->norm.w, a->norm.b, 0);
    is_k_transpose(s1, s0, C, N); /* [C,N] -> tokens [N,C] */
    is_k_linear(s2, s1, N, a->q.w, a->q.b);
    is_k_linear(s3, s1, N, a->k.w, a->k.b);
    is_k_linear(s0, s1, N, a->v.w, a->v.b);
    is_k_attention(s1, C, s2, C, s3, C, s0, C, N, N, 1, C, 0, 1.0f, 0);
    is_k_linear(s2, s1, N, a->out.w, a->out.b);
    is_k_transpose(s3, s2, N, C);
    is_k_add(x->data, s3, C * N);
}

void vae_mid_forward(const vae_mid *m, vae_workspace *ws, vae_act *x) {
    vae_resnet_forward(&m->res0, ws, x);
    if (m->has_attn) attention_forward(&m->attn, ws, x);
    vae_resnet_forward(&m->res1, ws, x);
}

/* Upsample2D: nearest 2x, then 3x3 conv. */
void vae_upsample_forward(const vae_param *conv, vae_workspace *ws, vae_act *x) {
    float *up = vae_ws_other(ws, x->data, NULL);
    is_k_upsample_nearest2x(up, x->data, x->C, x->H, x->W);
    x->data = up;
    x->H *= 2;
    x->W *= 2;
    vae_conv(x, ws, conv, 1, 1);
}

/* Downsample2D (encoder): zero-pad one row at the bottom and one column at the right,
 * then 3x3 conv with stride 2 and no padding. */
void vae_downsample_forward(const vae_param *conv, vae_workspace *ws, vae_act *x) {
    int64_t H = x->H, W = x->W, Wp = W + 1;
    float *p = vae_ws_other(ws, x->data, NULL);
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
