/* The images of image-based generation: option checks, decoding (before any network loads, so a bad
 * file fails at once), the output size, and diffusers' preprocessing of each image at that size. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "pipeline/generate_internal.h"
#include "vision/image.h"
#include "vision/image_processor.h"

/* A caller's in-memory image must hold pixels of a sane size. */
static is_error *check_rgb(const char *what, const is_image *img) {
    if (!img->rgb || img->width < 1 || img->height < 1 || img->width > 65535 || img->height > 65535)
        return is_errorf(IS_E_ARGUMENT, "%s: expected 8-bit RGB pixels of 1..65535 x 1..65535 (got %dx%d%s)", what,
                         img->width, img->height, img->rgb ? "" : ", no pixels");
    return NULL;
}

is_error *gen_check_image_params(const is_pipeline *p, const is_generate_params *gp) {
    int init = gp->init_image || gp->init_rgb, mask = gp->mask_image || gp->mask_rgb;
    int control = gp->control_image || gp->control_rgb;
    if (gp->init_rgb && !gp->init_image) IS_TRY(check_rgb("init_rgb", gp->init_rgb));
    if (gp->mask_rgb && !gp->mask_image) IS_TRY(check_rgb("mask_rgb", gp->mask_rgb));
    if (gp->control_rgb && !gp->control_image) IS_TRY(check_rgb("control_rgb", gp->control_rgb));
    if (isnan(gp->strength) || (gp->strength >= 0 && !(gp->strength > 0 && gp->strength <= 1)))
        return is_errorf(IS_E_ARGUMENT, "strength must be within (0, 1] (got %g)", gp->strength);
    if (gp->strength >= 0 && !init)
        return is_errorf(IS_E_ARGUMENT, "strength applies to an init image (--init-image): none was given");
    if (mask && !init)
        return is_errorf(IS_E_ARGUMENT, "a mask (--mask-image) marks what to repaint in an init image: give --init-image too");
    if (p->unet_in_channels != p->unet_out_channels && !mask)
        return is_errorf(IS_E_ARGUMENT, "%s: this UNet takes %d input channels for %d output channels (an inpainting "
                         "UNet): it needs an init image and a mask (--init-image, --mask-image)", p->unet_dir,
                         p->unet_in_channels, p->unet_out_channels);
    if (control && !p->controlnet_dir)
        return is_errorf(IS_E_ARGUMENT, "a control image needs a ControlNet (--controlnet DIR)");
    if (gp->control_canny && !control)
        return is_errorf(IS_E_ARGUMENT, "Canny edges are taken from a control image: none was given (--control-canny FILE)");
    if (!isfinite(gp->control_scale))
        return is_errorf(IS_E_ARGUMENT, "control scale must be a finite number (got %g)", gp->control_scale);
    if (!(gp->ip_start >= 0 && gp->ip_start <= 1) || !(gp->ip_end >= 0 && gp->ip_end <= 1) || gp->ip_start >= gp->ip_end)
        return is_errorf(IS_E_ARGUMENT, "IP-Adapter start and end are fractions of the steps, 0 <= start < end <= 1 (got %g "
                         "and %g)", gp->ip_start, gp->ip_end);
    if (!(gp->control_start >= 0 && gp->control_start <= 1) || !(gp->control_end >= 0 && gp->control_end <= 1))
        return is_errorf(IS_E_ARGUMENT, "control start and end are fractions of the steps, within 0..1 (got %g and %g)",
                         gp->control_start, gp->control_end);
    if (gp->control_start >= gp->control_end)
        return is_errorf(IS_E_ARGUMENT, "control start %g must be smaller than control end %g", gp->control_start,
                         gp->control_end);
    if (!isfinite(gp->canny_low) || !isfinite(gp->canny_high) || gp->canny_low < 0 || gp->canny_high < 0 ||
        gp->canny_low > 1e6 || gp->canny_high > 1e6)
        return is_errorf(IS_E_ARGUMENT, "Canny thresholds must be within 0..1000000 (got %g and %g)", gp->canny_low,
                         gp->canny_high);
    return NULL;
}

static is_error *decode(const char *what, const char *path, const is_image *rgb, is_image *file, const is_image **px) {
    *px = NULL;
    if (path) {
        IS_TRY(is_error_wrap(is_image_load(path, file), "%s", what));
        *px = file;
    } else if (rgb) {
        *px = rgb;
    }
    return NULL;
}

is_error *gen_decode_images(const is_generate_params *gp, gen_state *s, is_dump *d) {
    IS_TRY(decode("init image", gp->init_image, gp->init_rgb, &s->init_file, &s->init_px));
    IS_TRY(decode("mask image", gp->mask_image, gp->mask_rgb, &s->mask_file, &s->mask_px));
    IS_TRY(decode(gp->control_canny ? "Canny source image" : "control image", gp->control_image, gp->control_rgb,
                  &s->control_file, &s->control_px));
    /* diffusers resizes a mask of another size silently; a mask drawn for another picture is a mistake */
    if (s->mask_px && (s->mask_px->width != s->init_px->width || s->mask_px->height != s->init_px->height))
        return is_errorf(IS_E_ARGUMENT, "mask image %s is %dx%d but the init image %s is %dx%d: they must be the same size",
                         gp->mask_image ? gp->mask_image : "(in memory)", s->mask_px->width, s->mask_px->height,
                         gp->init_image ? gp->init_image : "(in memory)", s->init_px->width, s->init_px->height);
    s->mode = s->mask_px ? GEN_INPAINT : s->init_px ? GEN_IMG2IMG : GEN_TXT2IMG;
    s->control_on = s->control_px != NULL;
    if (gp->control_canny) {
        /* InstantStyle: cv2.Canny of the photo, its edges in all three channels. The edge map replaces
         * the decoded photo as the control image. */
        const is_image *src = s->control_px;
        is_image edges = {src->width, src->height, malloc((size_t)src->width * src->height * 3)};
        uint8_t *map = malloc((size_t)src->width * src->height);
        is_error *e = edges.rgb && map ? is_canny(src, gp->canny_low, gp->canny_high, map) : is_error_oom("Canny edges");
        if (!e)
            for (size_t i = 0; i < (size_t)src->width * src->height; i++)
                edges.rgb[3 * i] = edges.rgb[3 * i + 1] = edges.rgb[3 * i + 2] = map[i];
        if (!e) e = is_dump_u8(d, "edges", map, 2, (int64_t)src->height, (int64_t)src->width); /* as cases/canny */
        free(map);
        if (e) {
            free(edges.rgb);
            return is_error_wrap(e, "Canny edges of %s", gp->control_image ? gp->control_image : "(in memory)");
        }
        is_image_free(&s->control_file);
        s->control_file = edges;
        s->control_px = &s->control_file;
    }
    return NULL;
}

is_error *gen_decide_size(const is_pipeline *p, const is_generate_params *gp, int vae_scale, gen_state *s) {
    /* explicit size > the init image's > the control image's > the model's, each rounded down to a
     * multiple of the VAE scale as diffusers' image processor does */
    const is_image *from = s->init_px ? s->init_px : s->control_px;
    int w = p->default_width, h = p->default_height;
    if (from) {
        is_image_default_size(from, vae_scale, &w, &h);
        if ((!gp->width && w < vae_scale) || (!gp->height && h < vae_scale))
            return is_errorf(IS_E_ARGUMENT, "the %s image is %dx%d, smaller than one latent (%d pixels): give --width and "
                             "--height", s->init_px ? "init" : "control", from->width, from->height, vae_scale);
    }
    s->width = gp->width ? gp->width : w;
    s->height = gp->height ? gp->height : h;
    if (s->width % vae_scale || s->height % vae_scale)
        return is_errorf(IS_E_ARGUMENT, "width and height must be multiples of %d for this VAE (got %dx%d)", vae_scale,
                         s->width, s->height);
    return NULL;
}

is_error *gen_preprocess_images(const is_generate_params *gp, gen_state *s, is_dump *d) {
    const int64_t W = s->width, H = s->height;
    const size_t plane = (size_t)W * H;
    if (s->init_px) {
        s->init_image = malloc(3 * plane * sizeof(float));
        if (!s->init_image) return is_error_oom("init image");
        IS_TRY(is_error_wrap(is_preprocess_init_image(s->init_px, s->width, s->height, s->init_image), "init image"));
        IS_TRY(is_dump_f32(d, "init_image", s->init_image, 4, (int64_t)1, (int64_t)3, H, W));
    }
    if (s->mask_px) {
        s->mask = malloc(plane * sizeof(float));
        if (!s->mask) return is_error_oom("mask");
        IS_TRY(is_error_wrap(is_preprocess_mask(s->mask_px, s->width, s->height, s->mask), "mask image"));
        IS_TRY(is_dump_f32(d, "mask", s->mask, 4, (int64_t)1, (int64_t)1, H, W));
    }
    if (s->control_on) {
        s->batch_c = gp->guess_mode && s->cfg_on ? 1 : s->batch;
        s->control = malloc((size_t)s->batch_c * 3 * plane * sizeof(float));
        if (!s->control) return is_error_oom("control image");
        IS_TRY(is_error_wrap(is_preprocess_control_image(s->control_px, s->width, s->height, s->control), "control image"));
        for (int b = 1; b < s->batch_c; b++) memcpy(s->control + b * 3 * plane, s->control, 3 * plane * sizeof(float));
        IS_TRY(is_dump_f32(d, "control_image", s->control, 4, (int64_t)1, (int64_t)3, H, W));
    }
    return NULL;
}

is_error *gen_apply_strength(const is_generate_params *gp, gen_state *s) {
    int n = is_scheduler_num_steps(s->sched);
    s->begin = 0;
    s->strength = 1.0f;
    if (s->mode != GEN_TXT2IMG) {
        /* diffusers get_timesteps: int(S * strength) steps from the end (S = the requested steps) */
        s->strength = gp->strength >= 0 ? gp->strength : s->mode == GEN_INPAINT ? 0.9999 : 0.3;
        int S = gp->steps;
        int init_timestep = (int)((double)S * s->strength);
        if (init_timestep > S) init_timestep = S;
        int t_start = S - init_timestep > 0 ? S - init_timestep : 0;
        if (t_start >= n)
            return is_errorf(IS_E_ARGUMENT, "strength %g with %d steps runs no step (int(%d * %g) = %d): raise the strength "
                             "or the steps", s->strength, S, S, s->strength, init_timestep);
        s->begin = t_start;
        if (s->begin) IS_TRY(is_scheduler_set_begin_index(s->sched, s->begin));
    }
    s->steps_run = n - s->begin;
    return NULL;
}
