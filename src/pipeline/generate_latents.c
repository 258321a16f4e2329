/* Start latents, as diffusers' prepare_latents of each pipeline computes them, with the generator's
 * draws in the same order:
 *   text-to-image / ControlNet: randn * init_noise_sigma;
 *   img2img: (1) the init image's posterior sample, (2) noise; add_noise(image_latents, noise, t_begin);
 *   inpainting: (1) the posterior sample when needed (strength < 1 or a 4-channel UNet), (2) noise, then
 *     add_noise (strength 1: noise * init_noise_sigma), (3) the masked image's posterior sample.
 * And the per-step parts of inpainting: the 9-channel UNet input, the 4-channel latent blend. */
#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF
#elif defined(__GNUC__)
#pragma GCC optimize("fp-contract=off") /* float32 ops one by one, as torch computes them */
#endif

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/kernels.h"
#include "pipeline/generate_internal.h"
#include "vae/vae_internal.h"

/* latent_dist.sample(generator) * scaling_factor of vae.encode(image [3, H, W]): mean + std * randn,
 * std = exp(0.5 * logvar). `img2img` also applies the config's latents_mean / latents_std as diffusers'
 * img2img pipeline does (its inpainting pipeline does not). */
static is_error *encode_sample(const is_generate_params *gp, gen_state *s, const float *image, const char *suffix,
                               int img2img, is_torch_rng *rng, float *out, is_dump *d) {
    const int64_t n = s->latent_n;
    float *mean = malloc((size_t)n * sizeof(float)), *logvar = malloc((size_t)n * sizeof(float));
    float *draw = malloc((size_t)n * sizeof(float));
    is_error *e = mean && logvar && draw ? NULL : is_error_oom("VAE posterior");
    if (!e) {
        is_vae_options vo;
        is_vae_options_init(&vo);
        vo.tiling = gp->vae_tiling;
        e = is_vae_encode_ex(s->vae, image, s->height, s->width, &vo, mean, logvar);
    }
    if (!e) {
        is_torch_randn(rng, draw, n);
        const float sf = is_vae_scaling_factor(s->vae);
        const is_vae *v = s->vae;
        const int stats = img2img && v->has_latents_stats;
        const int64_t hw = (int64_t)s->lh * s->lw;
        for (int64_t k = 0; k < n; k++) {
            float half = 0.5f * logvar[k];
            logvar[k] = expf(half); /* now the std */
            float sd = logvar[k] * draw[k];
            float x = mean[k] + sd;
            if (stats) {
                float centred = x - v->latents_mean[k / hw];
                float scaled = centred * sf;
                out[k] = scaled / v->latents_std[k / hw];
            } else {
                out[k] = sf * x;
            }
        }
        char name[64];
        const int64_t c = s->lc, h = s->lh, w = s->lw;
        snprintf(name, sizeof name, "vae_posterior_mean%s", suffix);
        e = is_dump_f32(d, name, mean, 4, (int64_t)1, c, h, w);
        snprintf(name, sizeof name, "vae_posterior_std%s", suffix);
        if (!e) e = is_dump_f32(d, name, logvar, 4, (int64_t)1, c, h, w);
        snprintf(name, sizeof name, "vae_posterior_noise%s", suffix);
        if (!e) e = is_dump_f32(d, name, draw, 4, (int64_t)1, c, h, w);
    }
    free(mean);
    free(logvar);
    free(draw);
    return e;
}

static is_error *inpaint_mask_latents(const is_generate_params *gp, gen_state *s, is_torch_rng *rng, is_dump *d) {
    const int f = s->width / s->lw;
    const int64_t hw = (int64_t)s->lh * s->lw, plane = (int64_t)s->width * s->height;
    s->mask_latents = malloc((size_t)hw * sizeof(float));
    s->masked_latents = malloc((size_t)s->latent_n * sizeof(float));
    float *masked = malloc((size_t)(3 * plane) * sizeof(float));
    is_error *e = s->mask_latents && s->masked_latents && masked ? NULL : is_error_oom("mask latents");
    if (!e) {
        /* F.interpolate(mask, size=(h, w)), mode 'nearest': mask[f*i, f*j] */
        for (int i = 0; i < s->lh; i++)
            for (int j = 0; j < s->lw; j++) s->mask_latents[i * s->lw + j] = s->mask[(int64_t)f * i * s->width + (int64_t)f * j];
        /* masked_image = init_image * (mask < 0.5): the region to repaint becomes 0 */
        for (int c = 0; c < 3; c++)
            for (int64_t k = 0; k < plane; k++) {
                float keep = s->mask[k] < 0.5f ? 1.0f : 0.0f;
                masked[c * plane + k] = s->init_image[c * plane + k] * keep;
            }
        e = is_dump_f32(d, "mask_latents", s->mask_latents, 4, (int64_t)1, (int64_t)1, (int64_t)s->lh, (int64_t)s->lw);
    }
    if (!e) e = is_dump_f32(d, "masked_image", masked, 4, (int64_t)1, (int64_t)3, (int64_t)s->height, (int64_t)s->width);
    if (!e) {
        /* diffusers encodes the masked image for every UNet; only the 9-channel one reads it. A 4-channel
         * generation still draws its sample, so that the generator's later draws stay the same. */
        if (s->unet_in != s->lc || d->w != NULL) {
            double t0 = gen_now();
            e = encode_sample(gp, s, masked, "_masked", 0, rng, s->masked_latents, d);
            if (!e) e = is_dump_f32(d, "masked_image_latents", s->masked_latents, 4, (int64_t)1, (int64_t)s->lc,
                                    (int64_t)s->lh, (int64_t)s->lw);
            gen_log(gp, "vae encode (masked image): %.2f s", gen_now() - t0);
        } else {
            is_torch_randn(rng, s->masked_latents, s->latent_n);
        }
    }
    free(masked);
    return e;
}

is_error *gen_prepare_latents(const is_generate_params *gp, gen_state *s, is_torch_rng *rng, is_dump *d) {
    const int64_t n = s->latent_n, c = s->lc, h = s->lh, w = s->lw;
    s->latents = malloc((size_t)n * sizeof(float));
    if (!s->latents) return is_error_oom("latents");
    if (s->mode == GEN_TXT2IMG) {
        /* diffusers' prepare_latents: randn(generator) * init_noise_sigma */
        is_torch_randn(rng, s->latents, n);
        IS_TRY(is_dump_f32(d, "latents_noise", s->latents, 4, (int64_t)1, c, h, w));
        is_k_scale(s->latents, is_scheduler_init_noise_sigma(s->sched), n);
        IS_TRY(is_dump_f32(d, "latents_init", s->latents, 4, (int64_t)1, c, h, w));
        return is_dump_f32(d, "latents_start", s->latents, 4, (int64_t)1, c, h, w);
    }
    IS_TRY(is_vae_set_precision(s->vae, s->precision));
    int strength_max = s->strength == 1.0;
    int need_image = s->mode == GEN_IMG2IMG || !strength_max || s->unet_in == s->lc;
    s->noise = malloc((size_t)n * sizeof(float));
    if (!s->noise) return is_error_oom("latents");
    if (need_image) {
        s->image_latents = malloc((size_t)n * sizeof(float));
        if (!s->image_latents) return is_error_oom("image latents");
        double t0 = gen_now();
        IS_TRY(encode_sample(gp, s, s->init_image, "", s->mode == GEN_IMG2IMG, rng, s->image_latents, d));
        gen_log(gp, "vae encode (init image): %.2f s", gen_now() - t0);
        IS_TRY(is_dump_f32(d, "image_latents", s->image_latents, 4, (int64_t)1, c, h, w));
    }
    is_torch_randn(rng, s->noise, n);
    IS_TRY(is_dump_f32(d, "noise", s->noise, 4, (int64_t)1, c, h, w));
    float t = is_scheduler_timestep(s->sched, s->begin);
    IS_TRY(is_dump_f32(d, "latent_timestep", &t, 1, (int64_t)1));
    if (s->mode == GEN_INPAINT && strength_max) {
        memcpy(s->latents, s->noise, (size_t)n * sizeof(float));
        is_k_scale(s->latents, is_scheduler_init_noise_sigma(s->sched), n);
    } else {
        IS_TRY(is_scheduler_add_noise(s->sched, s->begin, s->image_latents, s->noise, s->latents, n));
    }
    IS_TRY(is_dump_f32(d, "latents_start", s->latents, 4, (int64_t)1, c, h, w));
    if (s->mode == GEN_INPAINT) {
        IS_TRY(inpaint_mask_latents(gp, s, rng, d));
        if (s->unet_in == s->lc) {
            s->proper = malloc((size_t)n * sizeof(float));
            if (!s->proper) return is_error_oom("inpainting latents");
        }
    }
    is_vae_release_workspace(s->vae);
    return NULL;
}

void gen_unet_input(gen_state *s, int step) {
    const int64_t n = s->latent_n, hw = (int64_t)s->lh * s->lw, per = (int64_t)s->unet_in * hw;
    for (int b = 0; b < s->batch; b++) {
        float *dst = s->latent_in + b * per;
        is_scheduler_scale_model_input(s->sched, step, s->latents, dst, n);
        if (s->unet_in != s->lc) { /* inpainting UNet: cat([latents, mask, masked_image_latents], dim=1) */
            memcpy(dst + n, s->mask_latents, (size_t)hw * sizeof(float));
            memcpy(dst + n + hw, s->masked_latents, (size_t)n * sizeof(float));
        }
    }
}

is_error *gen_inpaint_blend(gen_state *s, int j) {
    const int64_t n = s->latent_n, hw = (int64_t)s->lh * s->lw;
    if (s->step_out_steps) memcpy(s->step_out_steps + j * n, s->latents, (size_t)n * sizeof(float));
    const float *proper = s->image_latents;
    if (j < s->steps_run - 1) {
        /* add_noise at the next timestep (the scheduler's step index has moved on to it) */
        IS_TRY(is_scheduler_add_noise(s->sched, s->begin + j + 1, s->image_latents, s->noise, s->proper, n));
        proper = s->proper;
    }
    for (int64_t k = 0; k < n; k++) {
        float m = s->mask_latents[k % hw];
        float keep = 1.0f - m;
        float a = keep * proper[k], b = m * s->latents[k];
        s->latents[k] = a + b;
    }
    return NULL;
}
