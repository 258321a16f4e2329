/* The ControlNet stage of StableDiffusionXLControlNetPipeline (diffusers 0.30.3): per step i of the S
 * steps run, keep_i = 1 - float(i/S < start or (i+1)/S > end) and the ControlNet runs on the same
 * scaled latents, timestep, text states and time ids as the UNet, its residuals scaled by
 * control_scale * keep_i. Outside the window the residuals are zeros, which added to the UNet's skips
 * change nothing: the ControlNet is not run there. In guess mode with CFG it sees the conditional half
 * only and the negative half gets zero residuals. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pipeline/generate_internal.h"

static is_error *load_controlnet(const is_pipeline *p, gen_state *s) {
    return is_controlnet_load(p->controlnet_dir, &s->controlnet);
}

is_error *gen_control_check(is_pipeline *p, const is_generate_params *gp, gen_state *s) {
    GEN_ACQUIRE(gp, p, s, controlnet, "controlnet", load_controlnet(p, s));
    /* The control image is prepared as RGB (diffusers too: another channel count fails in its conv_in). */
    const int channels = is_controlnet_conditioning_channels(s->controlnet);
    if (channels != 3)
        return is_errorf(IS_E_UNSUPPORTED, "--controlnet %s: conditioning_channels = %d in its config.json: the "
                         "pipeline gives a ControlNet an RGB control image (3 channels)", p->controlnet_dir, channels);
    /* The control image has the output's size: its latents must be the VAE's (diffusers fails adding them). */
    const int cn_scale = is_controlnet_image_scale(s->controlnet), vae_scale = is_vae_scale(s->vae);
    if (cn_scale != vae_scale)
        return is_errorf(IS_E_CONFIG, "--controlnet %s: the ControlNet's conditioning embedding takes the control "
                         "image to 1/%d of its size, the VAE's latents are 1/%d (%s)", p->controlnet_dir, cn_scale,
                         vae_scale, p->vae_dir);
    return is_error_wrap(is_controlnet_check_unet(s->controlnet, s->unet), "--controlnet %s", p->controlnet_dir);
}

is_error *gen_control_prepare(const is_generate_params *gp, gen_state *s, int dumping) {
    IS_TRY(is_controlnet_set_precision(s->controlnet, s->precision));
    const int nd = is_controlnet_num_down_residuals(s->controlnet);
    int64_t shape[3];
    if (is_controlnet_residual_shape(s->controlnet, nd, s->lh, s->lw, shape))
        return is_errorf(IS_E_INTERNAL, "controlnet: no mid residual shape");
    s->mid_floats = shape[0] * shape[1] * shape[2];
    s->down_floats = is_controlnet_down_floats(s->controlnet, s->lh, s->lw);
    const size_t bc = (size_t)s->batch_c, b = (size_t)s->batch;
    s->ctrl_in = malloc(bc * (size_t)s->latent_n * sizeof(float));
    s->ctrl_down = malloc(bc * (size_t)s->down_floats * sizeof(float));
    s->ctrl_mid = malloc(bc * (size_t)s->mid_floats * sizeof(float));
    s->ctrl_scale = malloc((size_t)s->steps_run * sizeof(double));
    if (!s->ctrl_in || !s->ctrl_down || !s->ctrl_mid || !s->ctrl_scale) return is_error_oom("ControlNet residuals");
    if (bc != b) { /* guess mode with CFG: the negative half's residuals stay zero */
        s->res_down = calloc(b * (size_t)s->down_floats, sizeof(float));
        s->res_mid = calloc(b * (size_t)s->mid_floats, sizeof(float));
        if (!s->res_down || !s->res_mid) return is_error_oom("ControlNet residuals");
    }
    const double S = s->steps_run;
    for (int i = 0; i < s->steps_run; i++) {
        double keep = 1.0 - (double)(i / S < gp->control_start || (i + 1) / S > gp->control_end);
        s->ctrl_scale[i] = (double)gp->control_scale * keep;
    }
    if (dumping) {
        s->ctrl_mid_steps = calloc((size_t)s->steps_run * b * (size_t)s->mid_floats, sizeof(float));
        s->ctrl_first_down = malloc(b * (size_t)s->down_floats * sizeof(float));
        if (!s->ctrl_mid_steps || !s->ctrl_first_down) return is_error_oom("tensor dump");
    }
    return NULL;
}

/* Copy the ControlNet's batch_c residuals into the last batch_c items of the UNet's batch (per residual:
 * [batch, C, H, W] one after the other). */
static void spread(const gen_state *s, const float *from, float *to) {
    const int nd = is_controlnet_num_down_residuals(s->controlnet);
    const int skip = s->batch - s->batch_c;
    for (int k = 0; k < nd; k++) {
        int64_t shape[3];
        is_controlnet_residual_shape(s->controlnet, k, s->lh, s->lw, shape);
        const int64_t chw = shape[0] * shape[1] * shape[2];
        memcpy(to + skip * chw, from, (size_t)(s->batch_c * chw) * sizeof(float));
        from += s->batch_c * chw;
        to += s->batch * chw;
    }
}

is_error *gen_control_step(const is_generate_params *gp, gen_state *s, int j, const float **down, const float **mid) {
    *down = *mid = NULL;
    if (s->ctrl_scale[j] == 0.0) return NULL;
    const int step = s->begin + j, skip = s->batch - s->batch_c;
    for (int b = 0; b < s->batch_c; b++)
        is_scheduler_scale_model_input(s->sched, step, s->latents, s->ctrl_in + b * s->latent_n, s->latent_n);
    is_controlnet_input in;
    is_controlnet_input_init(&in);
    in.unet.batch = s->batch_c;
    in.unet.height = s->lh;
    in.unet.width = s->lw;
    in.unet.sample = s->ctrl_in;
    in.unet.timestep = is_scheduler_timestep(s->sched, step);
    in.unet.encoder_hidden_states = s->text_states + (size_t)skip * s->seq * s->dim;
    in.unet.seq_len = s->seq;
    in.unet.text_embeds = s->text_pooled + (size_t)skip * s->pooled_dim;
    in.unet.time_ids = s->time_ids + 6 * skip;
    in.cond = s->control;
    in.conditioning_scale = (float)s->ctrl_scale[j]; /* torch multiplies float32 tensors by it as float32 */
    in.guess_mode = gp->guess_mode;
    IS_TRY(is_error_wrap(is_controlnet_forward(s->controlnet, &in, s->ctrl_down, s->ctrl_mid), "ControlNet, step %d", j + 1));
    const float *rd = s->ctrl_down, *rm = s->ctrl_mid;
    if (s->res_down) {
        spread(s, s->ctrl_down, s->res_down);
        memcpy(s->res_mid + skip * s->mid_floats, s->ctrl_mid, (size_t)(s->batch_c * s->mid_floats) * sizeof(float));
        rd = s->res_down;
        rm = s->res_mid;
    }
    if (s->ctrl_mid_steps) {
        memcpy(s->ctrl_mid_steps + (size_t)j * s->batch * s->mid_floats, rm, (size_t)(s->batch * s->mid_floats) * sizeof(float));
        if (!s->ctrl_first_active) {
            memcpy(s->ctrl_first_down, rd, (size_t)(s->batch * s->down_floats) * sizeof(float));
            s->ctrl_first_active = 1;
        }
    }
    *down = rd;
    *mid = rm;
    return NULL;
}

is_error *gen_control_dump(gen_state *s, is_dump *d) {
    if (!d->w) return NULL;
    float *scales = malloc((size_t)s->steps_run * sizeof(float));
    if (!scales) return is_error_oom("tensor dump");
    for (int i = 0; i < s->steps_run; i++) scales[i] = (float)s->ctrl_scale[i];
    is_error *e = is_dump_f32(d, "control_scale_steps", scales, 1, (int64_t)s->steps_run);
    free(scales);
    IS_TRY(e);
    int64_t m[3];
    const int nd = is_controlnet_num_down_residuals(s->controlnet);
    if (is_controlnet_residual_shape(s->controlnet, nd, s->lh, s->lw, m))
        return is_errorf(IS_E_INTERNAL, "controlnet: no mid residual shape");
    IS_TRY(is_dump_f32(d, "ctrl_mid_res_steps", s->ctrl_mid_steps, 5, (int64_t)s->steps_run, (int64_t)s->batch, m[0], m[1],
                       m[2]));
    if (!s->ctrl_first_active) return NULL;
    const float *at = s->ctrl_first_down;
    for (int k = 0; k < nd; k++) {
        int64_t shape[3];
        if (is_controlnet_residual_shape(s->controlnet, k, s->lh, s->lw, shape))
            return is_errorf(IS_E_INTERNAL, "controlnet: no shape for residual %d", k);
        char name[64];
        snprintf(name, sizeof name, "ctrl_down_res_first_active.%d", k);
        IS_TRY(is_dump_f32(d, name, at, 4, (int64_t)s->batch, shape[0], shape[1], shape[2]));
        at += s->batch * shape[0] * shape[1] * shape[2];
    }
    return NULL;
}
