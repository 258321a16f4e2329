/* VAE decode: pipeline latents -> z (the SDXL pipeline's scaling), post_quant_conv,
 * Decoder (conv_in, mid block, up blocks, norm/SiLU/conv_out), untiled or diffusers-tiled. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/kernels.h"
#include "vae/vae_internal.h"

#define VAE_MAX_SIDE 16384 /* latents per side; keeps every size computation far from overflow */

void vae_decode_z(is_vae *v, vae_act x, float *image, is_tensor_hook hook, void *user) {
    vae_workspace *ws = &v->ws;
    const vae_coder *d = &v->dec;
    char name[64];
    if (v->use_post_quant_conv) {
        vae_conv(&x, ws, &v->post_quant_conv, 1, 0);
        vae_emit(hook, user, "post_quant_conv", &x);
    }
    vae_conv(&x, ws, &d->conv_in, 1, 1);
    vae_emit(hook, user, "decoder.conv_in", &x);
    vae_mid_forward(&d->mid, ws, &x);
    vae_emit(hook, user, "decoder.mid_block", &x);
    for (int i = 0; i < d->nblocks; i++) {
        const vae_block *b = &d->blocks[i];
        for (int j = 0; j < b->nres; j++) vae_resnet_forward(&b->res[j], ws, &x);
        if (b->resample.w) vae_upsample_forward(&b->resample, ws, &x);
        snprintf(name, sizeof name, "decoder.up_blocks.%d", i);
        vae_emit(hook, user, name, &x);
    }
    vae_norm_silu_conv(&x, ws, &d->norm_out, v->groups, &d->conv_out, image);
    vae_act out = {image, v->out_channels, x.H, x.W};
    vae_emit(hook, user, "image", &out);
}

/* z = latents / scaling_factor, or latents * std / scaling_factor + mean (that order) when the
 * config has latents_mean/std: StableDiffusionXLPipeline's step before vae.decode. */
static void latents_to_z(const is_vae *v, const float *latents, int64_t hw, float *z) {
    float sf = v->scaling_factor;
    for (int64_t c = 0; c < v->latent_channels; c++) {
        const float *src = latents + c * hw;
        float *dst = z + c * hw;
        if (v->has_latents_stats) {
            float sd = v->latents_std[c], mu = v->latents_mean[c];
            for (int64_t i = 0; i < hw; i++) dst[i] = src[i] * sd / sf + mu;
        } else {
            for (int64_t i = 0; i < hw; i++) dst[i] = src[i] / sf;
        }
    }
}

int64_t is_vae_decode_workspace_bytes(const is_vae *v, int h, int w) {
    if (!v || h < 1 || w < 1 || h > VAE_MAX_SIDE || w > VAE_MAX_SIDE) return 0;
    return vae_decode_needs(v, h, w) * (int64_t)sizeof(float);
}

int is_vae_decode_will_tile(const is_vae *v, int h, int w, int tiling) {
    if (tiling == 0 || !vae_tiling_applies(v, h, w)) return 0;
    if (tiling > 0) return 1;
    return is_vae_decode_workspace_bytes(v, h, w) > IS_VAE_AUTO_TILE_BYTES;
}

void is_vae_options_init(is_vae_options *o) {
    memset(o, 0, sizeof *o);
    o->tiling = -1;
}

is_error *is_vae_decode(is_vae *v, const float *latents, int h, int w, const is_vae_options *opt, float *image) {
    if (!v || !latents || !image) return is_errorf(IS_E_ARGUMENT, "is_vae_decode: vae, latents and image must not be NULL");
    if (h < 1 || w < 1 || h > VAE_MAX_SIDE || w > VAE_MAX_SIDE)
        return is_errorf(IS_E_ARGUMENT, "is_vae_decode: latents size %dx%d is invalid (each side must be 1..%d)", h, w,
                         VAE_MAX_SIDE);
    int tiling = opt ? opt->tiling : -1;
    if (tiling < -1 || tiling > 1)
        return is_errorf(IS_E_ARGUMENT, "is_vae_decode: tiling is %d, expected -1 (automatic), 0 or 1", tiling);
    is_tensor_hook hook = opt ? opt->hook : NULL;
    void *user = opt ? opt->hook_user : NULL;
    int64_t C = v->latent_channels, hw = (int64_t)h * w;
    vae_act z = {NULL, C, h, w};

    if (is_vae_decode_will_tile(v, h, w, tiling)) {
        z.data = malloc((size_t)(C * hw) * sizeof(float));
        if (!z.data) return is_error_oom("vae latents");
        latents_to_z(v, latents, hw, z.data);
        vae_emit(hook, user, "z", &z);
        is_error *e = vae_tiled_decode(v, z.data, h, w, image);
        free(z.data);
        if (e) return e;
        int64_t s = is_vae_scale(v);
        vae_act out = {image, v->out_channels, s * h, s * w};
        vae_emit(hook, user, "image", &out);
        return NULL;
    }
    IS_TRY(vae_ws_reserve(&v->ws, vae_decode_needs(v, h, w), vae_norm_needs(v)));
    z.data = v->ws.base;
    latents_to_z(v, latents, hw, z.data);
    vae_emit(hook, user, "z", &z);
    vae_decode_z(v, z, image, hook, user);
    return NULL;
}
