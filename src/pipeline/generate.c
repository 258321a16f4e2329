/* is_generate: diffusers' SDXL pipelines with an IP-Adapter, top to bottom, as composable stages:
 * inputs (decode the init / mask / control images) -> encode prompts -> encode style image (minus
 * content) -> start latents (noise, or the init image encoded and noised: img2img, inpainting) ->
 * denoise with CFG (+ ControlNet residuals, + the inpainting mask) -> VAE decode. Text-to-image is
 * StableDiffusionXLPipeline; an init image makes it StableDiffusionXLImg2ImgPipeline, a mask
 * StableDiffusionXLInpaintPipeline, a control image StableDiffusionXLControlNetPipeline.
 * Each stage takes its network from the pipeline (KEEP: loaded on first use and kept) or opens it and
 * releases it when done (LOW). The cancel callback is asked before every stage and every denoising step. */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <omp.h>
#include <unistd.h>

#include "kernels/kernels.h"
#include "pipeline/generate_internal.h"

double gen_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

void gen_log(const is_generate_params *gp, const char *fmt, ...) {
    if (!gp->log) return;
    char line[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    gp->log(gp->user, line);
}

static void gen_state_free(gen_state *s) {
    float *bufs[] = {s->text_states, s->text_pooled, s->ip_embeds, s->ip_tokens, s->latents, s->latent_in,
                     s->unet_out, s->guided, s->unet_out_steps, s->noise_pred_steps, s->latents_steps, s->timesteps,
                     s->image, s->init_image, s->mask, s->image_latents, s->noise, s->mask_latents, s->masked_latents,
                     s->step_out_steps, s->proper, s->control, s->ctrl_in, s->ctrl_down, s->ctrl_mid, s->res_down,
                     s->res_mid, s->ctrl_mid_steps, s->ctrl_first_down};
    for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++) free(bufs[i]);
    free(s->ctrl_scale);
    free(s->rgb);
    free(s->x0);
    free(s->preview_rgb);
    if (s->text != s->p->kept.text) is_sdxl_text_free(s->text);
    if (s->image_encoder != s->p->kept.image_encoder) is_image_encoder_free(s->image_encoder);
    if (s->unet != s->p->kept.unet) is_unet_free(s->unet);
    if (s->vae != s->p->kept.vae) is_vae_free(s->vae);
    if (s->controlnet != s->p->kept.controlnet) is_controlnet_free(s->controlnet);
    is_scheduler_free(s->sched);
    is_image_free(&s->style_file);
    is_image_free(&s->init_file);
    is_image_free(&s->mask_file);
    is_image_free(&s->control_file);
}

/* partial: the denoising stopped early on IS_CANCEL_KEEP_PARTIAL, whose repeats then let the image finish */
static is_error *check_cancel(const is_generate_params *gp, const char *before, int partial) {
    int c = gp->cancel ? gp->cancel(gp->user) : 0;
    if (c && !(partial && c == IS_CANCEL_KEEP_PARTIAL)) return is_errorf(IS_E_CANCELLED, "cancelled before %s", before);
    return NULL;
}

/* The output size (decided by gen_decide_size) against the library's limits and this machine's memory. */
static is_error *check_size(const is_pipeline *p, const int *width, const int *height) {
    if (*width < 8 || *height < 8 || *width % 8 || *height % 8)
        return is_errorf(IS_E_ARGUMENT, "width and height must be positive multiples of 8 (got %dx%d)", *width, *height);
    if (*width > 8192 || *height > 8192)
        return is_errorf(IS_E_ARGUMENT, "%dx%d is larger than the supported 8192x8192", *width, *height);
    /* The UNet's activations grow with the pixel count and the channel widths (measured: about
     * 1.2 GiB per megapixel with CFG on SDXL, block_out_channels[0] = 320): refuse up front what
     * cannot fit rather than be killed mid-run by the OOM killer. */
    double need = 1.2 * (p->unet_base_channels / 320.0) * (double)*width * (double)*height / (1 << 20) *
                  (double)(1 << 30);
    double have = (double)sysconf(_SC_PHYS_PAGES) * (double)sysconf(_SC_PAGESIZE);
    if (have > 0 && need > have)
        return is_errorf(IS_E_NOMEM, "%dx%d needs about %.0f GiB of activations; this machine has %.0f GiB of memory",
                         *width, *height, need / (1 << 30), have / (1 << 30));
    return NULL;
}

static is_error *check_params(const is_pipeline *p, const is_generate_params *gp) {
    if (!gp->prompt) return is_errorf(IS_E_ARGUMENT, "no prompt given (--prompt)");
    if ((gp->width && (gp->width < 8 || gp->width % 8)) || (gp->height && (gp->height < 8 || gp->height % 8)))
        return is_errorf(IS_E_ARGUMENT, "width and height must be positive multiples of 8 (got %dx%d)", gp->width,
                         gp->height);
    if (gp->width < 0 || gp->height < 0 || gp->width > 8192 || gp->height > 8192)
        return is_errorf(IS_E_ARGUMENT, "%dx%d is larger than the supported 8192x8192", gp->width, gp->height);
    if (gp->steps < 1) return is_errorf(IS_E_ARGUMENT, "steps must be at least 1 (got %d)", gp->steps);
    if (!isfinite(gp->cfg) || !isfinite(gp->guidance_rescale) || !isfinite(gp->ip_scale) || !isfinite(gp->content_scale))
        return is_errorf(IS_E_ARGUMENT, "cfg, guidance rescale, ip scale and content scale must be finite numbers");
    if (gp->guidance_rescale < 0 || gp->guidance_rescale > 1)
        return is_errorf(IS_E_ARGUMENT, "guidance rescale must be within 0..1 (got %g)", gp->guidance_rescale);
    if (gp->style_rgb && !gp->style_image &&
        (!gp->style_rgb->rgb || gp->style_rgb->width < 1 || gp->style_rgb->height < 1 ||
         gp->style_rgb->width > 65535 || gp->style_rgb->height > 65535))
        return is_errorf(IS_E_ARGUMENT, "style_rgb: expected 8-bit RGB pixels of 1..65535 x 1..65535 (got %dx%d%s)",
                         gp->style_rgb->width, gp->style_rgb->height, gp->style_rgb->rgb ? "" : ", no pixels");
    if ((gp->style_image || gp->style_rgb) && !p->ip_adapter)
        return is_errorf(IS_E_ARGUMENT, "a style image needs an IP-Adapter (--ip-adapter FILE)");
    if (gp->content_prompt && !gp->style_image && !gp->style_rgb)
        return is_errorf(IS_E_ARGUMENT, "a content prompt is subtracted from the style image's embedding: give --style-image too");
    IS_TRY(gen_check_loras(gp));
    return gen_check_image_params(p, gp);
}

/* Stage 1: prompts -> [negative, positive] hidden states and pooled embeddings. */
static is_error *encode_text(const is_pipeline *p, const is_generate_params *gp, gen_state *s, is_dump *d,
                             float **content_pooled) {
    IS_TRY(check_cancel(gp, "the text encoders", 0));
    GEN_ACQUIRE(gp, s->p, s, text, "text encoders", is_sdxl_text_load(p->model_dir, &s->text));
    IS_TRY(gen_text_loras(gp, s));
    double t0 = gen_now();
    IS_TRY(is_sdxl_text_set_precision(s->text, s->precision));
    s->seq = is_sdxl_text_seq_len(s->text);
    s->dim = is_sdxl_text_embed_dim(s->text);
    s->pooled_dim = is_sdxl_text_pooled_dim(s->text);
    size_t ns = (size_t)s->seq * (size_t)s->dim;
    s->text_states = calloc((size_t)s->batch * ns, sizeof(float));
    s->text_pooled = calloc((size_t)s->batch * (size_t)s->pooled_dim, sizeof(float));
    if (!s->text_states || !s->text_pooled) return is_error_oom("prompt embeddings");
    float *pos = s->text_states + (s->batch - 1) * ns, *pos_pooled = s->text_pooled + (s->batch - 1) * s->pooled_dim;
    is_prompt_info info = {0, 0};
    IS_TRY(is_error_wrap(is_sdxl_encode_prompt(s->text, gp->prompt, gp->prompt_2, pos, pos_pooled, &info), "prompt"));
    if (info.truncated_1 || info.truncated_2)
        gen_log(gp, "warning: the prompt is longer than %d tokens; %d tokens were dropped (CLIP's limit)", s->seq,
              info.truncated_1 > info.truncated_2 ? info.truncated_1 : info.truncated_2);
    IS_TRY(is_dump_f32(d, "prompt_embeds", pos, 3, (int64_t)1, (int64_t)s->seq, (int64_t)s->dim));
    IS_TRY(is_dump_f32(d, "pooled_prompt_embeds", pos_pooled, 2, (int64_t)1, (int64_t)s->pooled_dim));
    if (s->cfg_on) {
        is_prompt_info ninfo = {0, 0};
        IS_TRY(is_error_wrap(is_sdxl_encode_prompt(s->text, gp->negative_prompt, gp->negative_prompt_2,
                                                   s->text_states, s->text_pooled, &ninfo), "negative prompt"));
        if (ninfo.truncated_1 || ninfo.truncated_2)
            gen_log(gp, "warning: the negative prompt is longer than %d tokens; the rest was dropped", s->seq);
        IS_TRY(is_dump_f32(d, "negative_prompt_embeds", s->text_states, 3, (int64_t)1, (int64_t)s->seq, (int64_t)s->dim));
        IS_TRY(is_dump_f32(d, "negative_pooled_prompt_embeds", s->text_pooled, 2, (int64_t)1, (int64_t)s->pooled_dim));
    }
    if (gp->content_prompt) {
        /* InstantStyle: the content prompt's pooled text_encoder_2 embedding. */
        float *states = malloc(ns * sizeof(float));
        *content_pooled = malloc((size_t)s->pooled_dim * sizeof(float));
        if (!states || !*content_pooled) {
            free(states);
            return is_error_oom("content prompt");
        }
        is_error *e = is_sdxl_encode_prompt(s->text, gp->content_prompt, NULL, states, *content_pooled, NULL);
        free(states);
        IS_TRY(is_error_wrap(e, "content prompt"));
        IS_TRY(is_dump_f32(d, "content_pooled", *content_pooled, 2, (int64_t)1, (int64_t)s->pooled_dim));
    }
    GEN_RELEASE(s, text, is_sdxl_text_free);
    gen_log(gp, "text encoders: %.2f s", gen_now() - t0);
    return NULL;
}

/* Stage 2: style image -> CLIP image embedding (minus content) -> IP tokens for both CFG rows. */
static is_error *encode_style(const is_pipeline *p, const is_generate_params *gp, gen_state *s, is_dump *d,
                              const float *content_pooled) {
    IS_TRY(check_cancel(gp, "the image encoder", 0));
    GEN_ACQUIRE(gp, s->p, s, image_encoder, "image encoder", is_image_encoder_load(p->image_encoder_dir, &s->image_encoder));
    double t0 = gen_now();
    IS_TRY(is_image_encoder_set_precision(s->image_encoder, s->precision));
    int size = is_image_encoder_image_size(s->image_encoder);
    s->embed_dim = is_image_encoder_projection_dim(s->image_encoder);
    float *pixels = malloc((size_t)3 * size * size * sizeof(float));
    s->ip_embeds = calloc((size_t)s->batch * (size_t)s->embed_dim, sizeof(float));
    if (!pixels || !s->ip_embeds) {
        free(pixels);
        return is_error_oom("style image");
    }
    float *embeds = s->ip_embeds + (s->batch - 1) * s->embed_dim; /* row 0 stays zeros = negative */
    const is_image *style = gp->style_image ? &s->style_file : gp->style_rgb;
    is_error *e = is_image_preprocess(s->image_encoder, style, pixels);
    if (!e) e = is_image_encoder_forward(s->image_encoder, pixels, embeds, NULL);
    free(pixels);
    IS_TRY(is_error_wrap(e, "style image %s", gp->style_image ? gp->style_image : "(in memory)"));
    GEN_RELEASE(s, image_encoder, is_image_encoder_free);
    IS_TRY(is_dump_f32(d, "image_embeds_raw", embeds, 2, (int64_t)1, (int64_t)s->embed_dim));
    if (content_pooled) {
        IS_TRY(is_content_subtract(embeds, s->embed_dim, content_pooled, s->pooled_dim, gp->content_scale));
    }
    IS_TRY(is_dump_f32(d, "image_embeds", embeds, 2, (int64_t)1, (int64_t)s->embed_dim));
    /* as the UNet receives it: [negative zeros, positive] with CFG, the positive row alone without */
    IS_TRY(is_dump_f32(d, "ip_image_embeds_cfg", s->ip_embeds, 3, (int64_t)s->batch, (int64_t)1, (int64_t)s->embed_dim));
    gen_log(gp, "image encoder: %.2f s", gen_now() - t0);
    return NULL;
}

/* Stage 3 setup: UNet, adapter, block scales, IP tokens. */
static is_error *load_unet(const is_pipeline *p, gen_state *s) {
    return p->unet_file ? is_unet_load_file(p->unet_dir, p->unet_file, &s->unet) : is_unet_load(p->unet_dir, &s->unet);
}

/* The pipeline's adapter (if any) on the UNet: part of the kept network. A kept UNet gets it whatever this
 * generation needs; a released one only when used. */
static is_error *attach_adapter(const is_pipeline *p, gen_state *s) {
    if (!p->ip_adapter || is_unet_has_ip_adapter(s->unet) || (p->memory != IS_MEMORY_KEEP && !s->have_ip)) return NULL;
    return is_unet_load_ip_adapter(s->unet, p->ip_adapter, s->embed_dim);
}

static is_error *prepare_unet(is_pipeline *p, const is_generate_params *gp, gen_state *s, is_dump *d) {
    IS_TRY(check_cancel(gp, "the UNet", 0));
    GEN_ACQUIRE(gp, p, s, unet, "unet", load_unet(p, s));
    IS_TRY(attach_adapter(p, s));
    IS_TRY(gen_unet_loras(gp, s));
    IS_TRY(is_unet_set_precision(s->unet, s->precision)); /* the adapter's weights are packed too */
    s->cross_dim = is_unet_cross_attention_dim(s->unet);
    if (s->cross_dim != s->dim)
        return is_errorf(IS_E_CONFIG, "%s: cross_attention_dim %d does not match the text encoders' %d features",
                         p->unet_dir, s->cross_dim, s->dim);
    if (is_unet_pooled_dim(s->unet) != s->pooled_dim)
        return is_errorf(IS_E_CONFIG, "%s: add_embedding expects pooled text embeddings of %d, text_encoder_2 gives %d",
                         p->unet_dir, is_unet_pooled_dim(s->unet), s->pooled_dim);
    if (is_unet_in_channels(s->unet) != s->unet_in || is_unet_out_channels(s->unet) != s->lc)
        return is_errorf(IS_E_CONFIG, "%s: UNet has %d/%d in/out channels; with the VAE's %d latent channels expected "
                         "%d/%d (%d in for an inpainting UNet)", p->unet_dir, is_unet_in_channels(s->unet),
                         is_unet_out_channels(s->unet), s->lc, s->lc, s->lc, 2 * s->lc + 1);
    if (!s->have_ip) return NULL;
    if (is_unet_ip_embed_dim(s->unet) != s->embed_dim)
        return is_errorf(IS_E_CONFIG, "%s: the IP-Adapter expects image embeddings of %d, the image encoder gives %d",
                         p->ip_adapter, is_unet_ip_embed_dim(s->unet), s->embed_dim);
    IS_TRY(is_unet_set_ip_scale(s->unet, gp->style_blocks ? gp->style_blocks : "style", gp->ip_scale));
    s->ip_tokens_n = is_unet_ip_num_tokens(s->unet);
    s->ip_tokens = malloc((size_t)s->batch * s->ip_tokens_n * s->cross_dim * sizeof(float));
    if (!s->ip_tokens) return is_error_oom("IP tokens");
    IS_TRY(is_unet_ip_tokens(s->unet, s->ip_embeds, s->batch, s->ip_tokens));
    IS_TRY(is_dump_f32(d, "ip_tokens", s->ip_tokens, 4, (int64_t)s->batch, (int64_t)1, (int64_t)s->ip_tokens_n,
                       (int64_t)s->cross_dim));
    return NULL;
}

/* Stage 4: the denoising loop over the steps run (all, or the last ones for img2img / inpainting).
 * No allocation inside it. */
static is_error *denoise(const is_generate_params *gp, gen_state *s, is_torch_rng *rng, int dumping) {
    const int steps = s->steps_run;
    const int64_t n = s->latent_n;
    double t0 = gen_now();
    for (int j = 0; j < steps; j++) {
        const int i = s->begin + j; /* the scheduler's step index */
        int stop = gp->cancel ? gp->cancel(gp->user) : 0;
        if (stop == IS_CANCEL_KEEP_PARTIAL && j > 0 && !dumping) { /* A1111's interrupt: decode the last x0 */
            memcpy(s->latents, s->x0, (size_t)n * sizeof(float));
            gen_log(gp, "denoising: stopped after %d of %d steps (the last x0 prediction is decoded)", j, steps);
            return NULL;
        }
        if (stop) return is_errorf(IS_E_CANCELLED, "cancelled before denoising step %d of %d", j + 1, steps);
        const float *down = NULL, *mid = NULL;
        if (s->control_on) IS_TRY(gen_control_step(gp, s, j, &down, &mid));
        gen_unet_input(s, i);
        is_unet_input in;
        is_unet_input_init(&in);
        in.batch = s->batch;
        in.height = s->lh;
        in.width = s->lw;
        in.sample = s->latent_in;
        in.timestep = is_scheduler_timestep(s->sched, i);
        in.encoder_hidden_states = s->text_states;
        in.seq_len = s->seq;
        in.text_embeds = s->text_pooled;
        in.time_ids = s->time_ids;
        /* the IP-Adapter's window, as the ControlNet's: step j of S is in when j/S >= start and (j+1)/S <= end */
        const double S = steps;
        in.ip_tokens = (double)j / S < gp->ip_start || (double)(j + 1) / S > gp->ip_end ? NULL : s->ip_tokens;
        in.down_residuals = down;
        in.mid_residual = mid;
        IS_TRY(is_error_wrap(is_unet_forward(s->unet, &in, s->unet_out), "denoising step %d", j + 1));
        if (s->cfg_on) {
            const float *un = s->unet_out, *tx = s->unet_out + n;
            for (int64_t k = 0; k < n; k++) s->guided[k] = un[k] + gp->cfg * (tx[k] - un[k]);
            if (gp->guidance_rescale > 0) is_rescale_noise_cfg(s->guided, tx, n, gp->guidance_rescale);
        } else {
            memcpy(s->guided, s->unet_out, (size_t)n * sizeof(float));
        }
        IS_TRY(is_scheduler_step(s->sched, i, s->guided, s->latents, n, rng));
        if (s->mode == GEN_INPAINT && s->unet_in == s->lc) IS_TRY(gen_inpaint_blend(s, j));
        for (int64_t k = 0; k < n; k++)
            if (!isfinite(s->latents[k]))
                return is_errorf(IS_E_INTERNAL, "denoising step %d produced non-finite latents (bad weights?)", j + 1);
        s->steps_done = j + 1;
        gen_preview_step(gp, s, j + 1, steps);
        if (dumping) {
            memcpy(s->unet_out_steps + (size_t)j * s->batch * n, s->unet_out, (size_t)(s->batch * n) * sizeof(float));
            memcpy(s->noise_pred_steps + (size_t)j * n, s->guided, (size_t)n * sizeof(float));
            memcpy(s->latents_steps + (size_t)j * n, s->latents, (size_t)n * sizeof(float));
        }
        if (gp->progress) gp->progress(gp->user, j + 1, steps, gen_now() - t0);
    }
    gen_log(gp, "denoising: %d steps, %.2f s (%.2f s/step)", steps, gen_now() - t0, (gen_now() - t0) / steps);
    return NULL;
}

static is_error *dump_steps(gen_state *s, is_dump *d) {
    const int64_t S = s->steps_run, B = s->batch, c = s->lc, h = s->lh, w = s->lw;
    IS_TRY(is_dump_f32(d, "timesteps", s->timesteps, 1, S));
    IS_TRY(is_dump_f32(d, "unet_out_steps", s->unet_out_steps, 5, S, B, c, h, w));
    IS_TRY(is_dump_f32(d, "noise_pred_steps", s->noise_pred_steps, 5, S, (int64_t)1, c, h, w));
    IS_TRY(is_dump_f32(d, "latents_steps", s->latents_steps, 5, S, (int64_t)1, c, h, w));
    if (s->step_out_steps) IS_TRY(is_dump_f32(d, "latents_step_out_steps", s->step_out_steps, 5, S, (int64_t)1, c, h, w));
    if (s->control_on) IS_TRY(gen_control_dump(s, d));
    return NULL;
}

/* Buffers of the denoising loop, allocated before it. */
static is_error *alloc_loop(gen_state *s, int dumping) {
    const int64_t n = s->latent_n, hw = (int64_t)s->lh * s->lw;
    const size_t S = (size_t)s->steps_run;
    s->latent_in = malloc((size_t)(s->batch * s->unet_in * hw) * sizeof(float));
    s->unet_out = malloc((size_t)(s->batch * n) * sizeof(float));
    s->guided = malloc((size_t)n * sizeof(float));
    if (!s->latent_in || !s->unet_out || !s->guided) return is_error_oom("latents");
    if (!dumping) return NULL;
    s->unet_out_steps = malloc(S * s->batch * n * sizeof(float));
    s->noise_pred_steps = malloc(S * n * sizeof(float));
    s->latents_steps = malloc(S * n * sizeof(float));
    s->timesteps = malloc(S * sizeof(float));
    if (s->mode == GEN_INPAINT && s->unet_in == s->lc) s->step_out_steps = malloc(S * n * sizeof(float));
    if (!s->unet_out_steps || !s->noise_pred_steps || !s->latents_steps || !s->timesteps ||
        (s->mode == GEN_INPAINT && s->unet_in == s->lc && !s->step_out_steps))
        return is_error_oom("tensor dump");
    for (int j = 0; j < s->steps_run; j++) s->timesteps[j] = is_scheduler_timestep(s->sched, s->begin + j);
    return NULL;
}

/* Stage 5: VAE decode to 8-bit RGB. */
static is_error *decode(const is_generate_params *gp, gen_state *s, is_dump *d) {
    IS_TRY(check_cancel(gp, "the VAE decode", s->steps_done < s->steps_run));
    const int width = s->width, height = s->height;
    double t0 = gen_now();
    s->image = malloc((size_t)3 * width * height * sizeof(float));
    s->rgb = malloc((size_t)3 * width * height);
    if (!s->image || !s->rgb) return is_error_oom("image");
    is_vae_options vo;
    is_vae_options_init(&vo);
    vo.tiling = gp->vae_tiling;
    IS_TRY(is_vae_set_precision(s->vae, s->precision)); /* packed only now: not resident while the UNet runs */
    IS_TRY(is_vae_decode(s->vae, s->latents, s->lh, s->lw, &vo, s->image));
    is_vae_release_workspace(s->vae);
    /* diffusers would warn and cast NaN to black pixels; an image that is not one is an error here */
    for (int64_t k = 0; k < (int64_t)3 * width * height; k++)
        if (!isfinite(s->image[k]))
            return is_errorf(IS_E_INTERNAL, "the VAE decode produced non-finite pixels (bad weights in %s?)", s->p->vae_dir);
    is_image_postprocess(s->image, (int64_t)3 * width * height);
    is_image_to_u8_hwc(s->image, height, width, s->rgb);
    gen_log(gp, "vae decode: %.2f s", gen_now() - t0);
    IS_TRY(is_dump_f32(d, "image", s->image, 4, (int64_t)1, (int64_t)3, (int64_t)height, (int64_t)width));
    return is_dump_u8(d, "image_u8", s->rgb, 4, (int64_t)1, (int64_t)height, (int64_t)width, (int64_t)3);
}

static is_error *run(is_pipeline *p, const is_generate_params *gp, gen_state *s, is_dump *d, is_image_result *out) {
    s->p = p;
    IS_TRY(check_params(p, gp));
    s->cfg_on = gp->cfg > 1.0f;
    s->batch = s->cfg_on ? 2 : 1;
    s->have_ip = gp->style_image != NULL || gp->style_rgb != NULL;
    /* Read every input image before any network: a bad file fails in a moment. */
    if (gp->style_image) IS_TRY(is_error_wrap(is_image_load(gp->style_image, &s->style_file), "style image"));
    IS_TRY(gen_decode_images(gp, s, d));
    char why[256];
    s->precision = is_precision_resolve(gp->precision, why, sizeof why);
    gen_log(gp, "precision: %s", why);

    /* The VAE fixes the latent geometry; open it first so size errors come early. */
    GEN_ACQUIRE(gp, p, s, vae, "vae", is_vae_load(p->vae_dir, &s->vae));
    int scale = is_vae_scale(s->vae);
    IS_TRY(gen_decide_size(p, gp, scale, s));
    IS_TRY(check_size(p, &s->width, &s->height));
    s->lc = is_vae_latent_channels(s->vae);
    s->lh = s->height / scale;
    s->lw = s->width / scale;
    s->latent_n = (int64_t)s->lc * s->lh * s->lw;
    s->unet_in = p->unet_in_channels;
    IS_TRY(gen_preprocess_images(gp, s, d));

    /* Scheduler, strength and seed before any heavy work, so a bad option fails fast. */
    IS_TRY(is_scheduler_load(p->scheduler_config, gp->sampler, gp->karras, gp->timestep_spacing, &s->sched));
    if (gp->eta != 0) IS_TRY(is_scheduler_set_eta(s->sched, gp->eta));
    if (gp->prediction_type) IS_TRY(is_scheduler_set_prediction_type(s->sched, gp->prediction_type));
    IS_TRY(is_scheduler_set_timesteps(s->sched, gp->steps));
    IS_TRY(gen_apply_strength(gp, s));

    /* A ControlNet must fit the UNet: both are opened (not run) now, before the text encoders. */
    if (s->control_on) {
        GEN_ACQUIRE(gp, p, s, unet, "unet", load_unet(p, s));
        IS_TRY(gen_control_check(p, gp, s));
    }

    float *content_pooled = NULL;
    is_error *e = encode_text(p, gp, s, d, &content_pooled);
    if (!e && s->have_ip) e = encode_style(p, gp, s, d, content_pooled);
    free(content_pooled);
    IS_TRY(e);

    /* SDXL micro-conditioning: (original size, crop top-left, target size), as (h, w) pairs. */
    float ids[6] = {(float)(gp->original_height ? gp->original_height : s->height),
                    (float)(gp->original_width ? gp->original_width : s->width),
                    (float)gp->crop_top, (float)gp->crop_left,
                    (float)(gp->target_height ? gp->target_height : s->height),
                    (float)(gp->target_width ? gp->target_width : s->width)};
    for (int b = 0; b < s->batch; b++) memcpy(s->time_ids + 6 * b, ids, sizeof ids);
    IS_TRY(is_dump_f32(d, "add_time_ids", ids, 2, (int64_t)1, (int64_t)6));

    /* Start latents: the init image (if any) is encoded now, before the UNet's activations exist. */
    is_torch_rng rng;
    is_torch_rng_seed(&rng, gp->seed);
    IS_TRY(check_cancel(gp, "the start latents", 0));
    IS_TRY(gen_prepare_latents(gp, s, &rng, d));

    double t0 = gen_now();
    IS_TRY(prepare_unet(p, gp, s, d));
    gen_log(gp, "unet + adapter load: %.2f s", gen_now() - t0);
    int dumping = d->w != NULL;
    if (s->control_on) IS_TRY(gen_control_prepare(gp, s, dumping));
    IS_TRY(alloc_loop(s, dumping));
    IS_TRY(is_scheduler_reserve(s->sched, s->latent_n)); /* so that no step allocates */
    IS_TRY(gen_preview_prepare(gp, s));

    IS_TRY(denoise(gp, s, &rng, dumping));
    if (dumping) IS_TRY(dump_steps(s, d)); /* the ControlNet's residual shapes come from the network */
    is_unet_release_workspace(s->unet); /* a kept UNet keeps its weights, not its activations */
    GEN_RELEASE(s, unet, is_unet_free);
    if (s->control_on) {
        is_controlnet_release_workspace(s->controlnet);
        GEN_RELEASE(s, controlnet, is_controlnet_free);
    }
    IS_TRY(is_dump_f32(d, "latents_final", s->latents, 4, (int64_t)1, (int64_t)s->lc, (int64_t)s->lh, (int64_t)s->lw));

    IS_TRY(decode(gp, s, d));
    out->width = s->width;
    out->height = s->height;
    out->image = s->image;
    out->rgb = s->rgb;
    out->precision = s->precision;
    out->steps_done = s->steps_done;
    out->steps = s->steps_run;
    s->image = NULL;
    s->rgb = NULL;
    return NULL;
}

is_error *is_generate(is_pipeline *p, const is_generate_params *gp, is_image_result *out) {
    memset(out, 0, sizeof *out);
    if (!p || !gp) return is_errorf(IS_E_ARGUMENT, "is_generate: NULL pipeline or parameters");
    gen_state s;
    memset(&s, 0, sizeof s);
    s.p = p;
    /* The thread count is an OpenMP setting of the calling thread only: other threads' pipelines keep theirs. */
    int threads_before = omp_get_max_threads();
    if (p->threads > 0) omp_set_num_threads(p->threads);
    is_dump d;
    is_error *e = is_dump_begin(&d, gp->dump_tensors);
    if (!e) e = run(p, gp, &s, &d, out);
    if (!e) e = is_dump_finish(&d);
    else is_dump_abort(&d);
    gen_state_free(&s);
    if (p->threads > 0) omp_set_num_threads(threads_before);
    if (e) is_image_result_free(out);
    return e;
}

void is_image_result_free(is_image_result *r) {
    if (!r) return;
    free(r->image);
    free(r->rgb);
    memset(r, 0, sizeof *r);
}
