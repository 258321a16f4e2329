/* VAE encode: Encoder (conv_in, down blocks, mid block, norm/SiLU/conv_out), quant_conv, untiled or
 * diffusers-tiled, and the DiagonalGaussianDistribution's mean and clamped logvar. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/kernels.h"
#include "vae/vae_internal.h"

#define VAE_MAX_PIXELS_SIDE 131072

vae_act vae_encode_moments(is_vae *v, const float *image, int64_t H, int64_t W, is_tensor_hook hook, void *user) {
    vae_workspace *ws = &v->ws;
    const vae_coder *e = &v->enc;
    char name[64];

    vae_act x = {ws->base, e->conv_in.w->shape[0], H, W};
    is_dnn_conv2d(v->ws.dnn, x.data, image, v->in_channels, H, W, e->conv_in.w, e->conv_in.b, 1, 1);
    vae_emit(hook, user, "encoder.conv_in", &x);
    for (int i = 0; i < e->nblocks; i++) {
        const vae_block *b = &e->blocks[i];
        for (int j = 0; j < b->nres; j++) vae_resnet_forward(&b->res[j], ws, &x);
        if (b->resample.w) vae_downsample_forward(&b->resample, ws, &x);
        snprintf(name, sizeof name, "encoder.down_blocks.%d", i);
        vae_emit(hook, user, name, &x);
    }
    vae_mid_forward(&e->mid, ws, &x);
    vae_emit(hook, user, "encoder.mid_block", &x);
    float *out = vae_ws_opposite(ws, x.data, e->conv_out.w->shape[0] * x.H * x.W);
    vae_norm_silu_conv(&x, ws, &e->norm_out, v->groups, &e->conv_out, out);
    x = (vae_act){out, e->conv_out.w->shape[0], x.H, x.W};
    vae_emit(hook, user, "encoder.conv_out", &x);
    if (v->use_quant_conv) vae_conv(&x, ws, &v->quant_conv, 1, 0);
    return x;
}

/* DiagonalGaussianDistribution: moments' first half is the mean, the second the logvar, clamped. */
static void distribution(const float *moments, int64_t n, float *mean, float *logvar) {
    if (mean) memcpy(mean, moments, (size_t)n * sizeof(float));
    if (logvar)
        for (int64_t i = 0; i < n; i++) {
            float lv = moments[n + i];
            logvar[i] = lv < -30.0f ? -30.0f : lv > 20.0f ? 20.0f : lv; /* torch.clamp(logvar, -30, 20) */
        }
}

int64_t is_vae_encode_workspace_bytes(const is_vae *v, int H, int W) {
    if (!v || H < 1 || W < 1 || H > VAE_MAX_PIXELS_SIDE || W > VAE_MAX_PIXELS_SIDE || H % is_vae_scale(v) ||
        W % is_vae_scale(v))
        return 0;
    return vae_encode_needs(v, H, W) * (int64_t)sizeof(float);
}

int is_vae_encode_will_tile(const is_vae *v, int H, int W, int tiling) {
    if (tiling == 0 || !v || !vae_encode_tiling_applies(v, H, W)) return 0;
    if (tiling > 0) return 1;
    return is_vae_encode_workspace_bytes(v, H, W) > IS_VAE_AUTO_TILE_BYTES;
}

is_error *is_vae_encode_ex(is_vae *v, const float *image, int H, int W, const is_vae_options *opt, float *mean,
                           float *logvar) {
    if (!v || !image) return is_errorf(IS_E_ARGUMENT, "is_vae_encode: vae and image must not be NULL");
    int s = is_vae_scale(v);
    if (H < 1 || W < 1 || H > VAE_MAX_PIXELS_SIDE || W > VAE_MAX_PIXELS_SIDE || H % s || W % s)
        return is_errorf(IS_E_ARGUMENT, "is_vae_encode: image size %dx%d is invalid (sides must be positive multiples of %d)",
                         H, W, s);
    int tiling = opt ? opt->tiling : -1;
    if (tiling < -1 || tiling > 1)
        return is_errorf(IS_E_ARGUMENT, "is_vae_encode: tiling is %d, expected -1 (automatic), 0 or 1", tiling);
    is_tensor_hook hook = opt ? opt->hook : NULL;
    void *user = opt ? opt->hook_user : NULL;
    int64_t n = v->latent_channels * (H / s) * (W / s);

    if (is_vae_encode_will_tile(v, H, W, tiling)) {
        float *moments = malloc((size_t)(2 * n) * sizeof(float));
        if (!moments) return is_error_oom("vae moments");
        is_error *e = vae_tiled_encode(v, image, H, W, moments);
        if (!e) {
            vae_act m = {moments, 2 * v->latent_channels, H / s, W / s};
            vae_emit(hook, user, "moments", &m);
            distribution(moments, n, mean, logvar);
        }
        free(moments);
        return e;
    }
    IS_TRY(vae_ws_reserve(&v->ws, vae_encode_needs(v, H, W), vae_norm_needs(v)));
    vae_act x = vae_encode_moments(v, image, H, W, hook, user);
    vae_emit(hook, user, "moments", &x);
    distribution(x.data, n, mean, logvar);
    return NULL;
}

is_error *is_vae_encode(is_vae *v, const float *image, int H, int W, float *mean, float *logvar) {
    return is_vae_encode_ex(v, image, H, W, NULL, mean, logvar);
}
