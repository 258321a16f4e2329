/* ResnetBlock2D and the down/up samplers, one batch item at a time on [C, H, W] maps. */
#include <string.h>

#include "kernels/kernels.h"
#include "unet/unet_internal.h"

/* ResnetBlock2D (pre-norm, time_embedding_norm "default"):
 * y = (shortcut(x) + conv2(silu(norm2(conv1(silu(norm1(x))) + temb_proj)))) / output_scale_factor (r->out_scale).
 * tmp holds max(cin, cout) * H * W floats. */
void unet_resnet_forward(const is_unet *u, const unet_resnet *r, const float *x, float *y, int64_t H, int64_t W,
                         const float *temb_proj, float *tmp) {
    const unet_config *c = &u->cfg;
    const int64_t HW = H * W;
    is_k_group_norm(tmp, x, r->cin, HW, c->norm_groups, c->norm_eps, r->norm1.w, r->norm1.b, 1);
    is_dnn_conv2d(u->dnn, y, tmp, r->cin, H, W, r->conv1.w, r->conv1.b, 1, 1);
    for (int64_t ch = 0; ch < r->cout; ch++) {
        float t = temb_proj[ch], *row = y + ch * HW;
        for (int64_t i = 0; i < HW; i++) row[i] += t;
    }
    is_k_group_norm(tmp, y, r->cout, HW, c->norm_groups, c->norm_eps, r->norm2.w, r->norm2.b, 1);
    is_dnn_conv2d(u->dnn, y, tmp, r->cout, H, W, r->conv2.w, r->conv2.b, 1, 1);
    if (r->shortcut.w) {
        is_dnn_conv2d(u->dnn, tmp, x, r->cin, H, W, r->shortcut.w, r->shortcut.b, 1, 0);
        is_k_add(y, tmp, r->cout * HW);
    } else {
        is_k_add(y, x, r->cout * HW);
    }
    if (r->out_scale != 1.0f) {
        float s = r->out_scale;
        for (int64_t i = 0; i < r->cout * HW; i++) y[i] /= s;
    }
}

/* Downsample2D output size: conv 3x3 stride 2 with padding p (p = 0: diffusers first pads right/bottom by 1). */
int64_t unet_down_size(const is_unet *u, int64_t n) {
    int p = u->cfg.downsample_padding;
    return is_conv_out_size(n + (p == 0 ? 1 : 0), 3, 2, p);
}

/* tmp: C * (H+1) * (W+1) floats when downsample_padding is 0, unused otherwise. */
void unet_downsample(const is_unet *u, const unet_linear *conv, int64_t C, const float *x, float *y, int64_t H,
                     int64_t W, float *tmp) {
    int p = u->cfg.downsample_padding;
    if (p > 0) {
        is_dnn_conv2d(u->dnn, y, x, C, H, W, conv->w, conv->b, 2, p);
        return;
    }
    const int64_t Hp = H + 1, Wp = W + 1;
    for (int64_t ch = 0; ch < C; ch++) {
        for (int64_t i = 0; i < H; i++) {
            memcpy(tmp + (ch * Hp + i) * Wp, x + (ch * H + i) * W, (size_t)W * sizeof(float));
            tmp[(ch * Hp + i) * Wp + W] = 0.0f;
        }
        memset(tmp + (ch * Hp + H) * Wp, 0, (size_t)Wp * sizeof(float));
    }
    is_dnn_conv2d(u->dnn, y, tmp, C, Hp, Wp, conv->w, conv->b, 2, 0);
}

/* Upsample2D: nearest to (Ho, Wo) (2x unless the skip connection's size says otherwise, as diffusers'
 * forward_upsample_size does for odd sizes), then conv 3x3. tmp: C * Ho * Wo floats. */
void unet_upsample(const is_unet *u, const unet_linear *conv, int64_t C, const float *x, float *y, int64_t H, int64_t W, int64_t Ho,
                   int64_t Wo, float *tmp) {
    if (Ho == 2 * H && Wo == 2 * W) {
        is_k_upsample_nearest2x(tmp, x, C, H, W);
    } else { /* PyTorch "nearest": src = min(floor(dst * in / out), in - 1) with a float scale */
        float sy = (float)H / (float)Ho, sx = (float)W / (float)Wo;
        for (int64_t ch = 0; ch < C; ch++)
            for (int64_t oy = 0; oy < Ho; oy++) {
                int64_t iy = (int64_t)((float)oy * sy);
                if (iy > H - 1) iy = H - 1;
                const float *src = x + (ch * H + iy) * W;
                float *dst = tmp + (ch * Ho + oy) * Wo;
                for (int64_t ox = 0; ox < Wo; ox++) {
                    int64_t ix = (int64_t)((float)ox * sx);
                    dst[ox] = src[ix > W - 1 ? W - 1 : ix];
                }
            }
    }
    is_dnn_conv2d(u->dnn, y, tmp, C, Ho, Wo, conv->w, conv->b, 1, 1);
}
