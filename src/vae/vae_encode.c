/* VAE encode: Encoder (conv_in, down blocks, mid block, norm/SiLU/conv_out), quant_conv, and
 * the DiagonalGaussianDistribution's mean and clamped logvar. */
#include <stdio.h>
#include <string.h>

#include "kernels/kernels.h"
#include "vae/vae_internal.h"

#define VAE_MAX_PIXELS_SIDE 131072

is_error *is_vae_encode_ex(is_vae *v, const float *image, int H, int W, const is_vae_options *opt, float *mean,
                           float *logvar) {
    if (!v || !image) return is_errorf(IS_E_ARGUMENT, "is_vae_encode: vae and image must not be NULL");
    int s = is_vae_scale(v);
    if (H < 1 || W < 1 || H > VAE_MAX_PIXELS_SIDE || W > VAE_MAX_PIXELS_SIDE || H % s || W % s)
        return is_errorf(IS_E_ARGUMENT, "is_vae_encode: image size %dx%d is invalid (sides must be positive multiples of %d)",
                         H, W, s);
    is_tensor_hook hook = opt ? opt->hook : NULL;
    void *user = opt ? opt->hook_user : NULL;
    IS_TRY(vae_ws_reserve(&v->ws, vae_encode_needs(v, H, W), vae_norm_needs(v)));
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
    vae_emit(hook, user, "moments", &x);

    int64_t n = v->latent_channels * x.H * x.W;
    if (mean) memcpy(mean, x.data, (size_t)n * sizeof(float));
    if (logvar)
        for (int64_t i = 0; i < n; i++) {
            float lv = x.data[n + i];
            logvar[i] = lv < -30.0f ? -30.0f : lv > 20.0f ? 20.0f : lv; /* torch.clamp(logvar, -30, 20) */
        }
    return NULL;
}

is_error *is_vae_encode(is_vae *v, const float *image, int H, int W, float *mean, float *logvar) {
    return is_vae_encode_ex(v, image, H, W, NULL, mean, logvar);
}
