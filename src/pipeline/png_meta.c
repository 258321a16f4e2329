/* is_save_png / is_encode_png: the image plus an A1111-style "parameters" text chunk, so existing
 * tools (A1111, ComfyUI, image viewers) show how it was made, and every option that changes the
 * pixels is there to reproduce the run. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/fileio.h"
#include "pipeline/pipeline_internal.h"
#include "pipeline/png_write.h"

typedef struct {
    char *buf;
    size_t len, cap;
    int failed; /* an allocation failed: the text is incomplete and must not be used */
} sbuf;

static void sb_put(sbuf *b, const char *s) {
    size_t n = strlen(s);
    if (b->failed) return;
    if (b->len + n + 1 > b->cap) {
        size_t cap = (b->cap ? b->cap * 2 : 256) + n;
        char *nb = realloc(b->buf, cap);
        if (!nb) {
            b->failed = 1;
            return;
        }
        b->buf = nb;
        b->cap = cap;
    }
    memcpy(b->buf + b->len, s, n + 1);
    b->len += n;
}

/* A1111 quotes a value that contains its separators. */
static void sb_field(sbuf *b, const char *key, const char *value) {
    sb_put(b, ", ");
    sb_put(b, key);
    sb_put(b, ": ");
    if (strpbrk(value, ",:\"\n")) {
        sb_put(b, "\"");
        for (const char *c = value; *c; c++) {
            char one[3] = {*c, 0, 0};
            if (*c == '"' || *c == '\\') one[0] = '\\', one[1] = *c;
            else if (*c == '\n') one[0] = '\\', one[1] = 'n';
            sb_put(b, one);
        }
        sb_put(b, "\"");
    } else {
        sb_put(b, value);
    }
}

/* The shortest decimal that reads back as the same float (%g alone loses digits: 7.1234567 -> 7.12346). */
static void sb_float(sbuf *b, const char *key, float v) {
    char num[32];
    for (int digits = 6; digits <= 9; digits++) {
        snprintf(num, sizeof num, "%.*g", digits, (double)v);
        if (strtof(num, NULL) == v) break;
    }
    sb_field(b, key, num);
}

static void sb_int(sbuf *b, const char *key, long long v) {
    char num[32];
    snprintf(num, sizeof num, "%lld", v);
    sb_field(b, key, num);
}

static void sb_size(sbuf *b, const char *key, int w, int h) {
    char num[32];
    snprintf(num, sizeof num, "%dx%d", w, h);
    sb_field(b, key, num);
}

/* The last path component ("models/sdxl/" -> "sdxl"), into name. */
static const char *base_name(const char *path, char *name, size_t cap) {
    size_t n = strlen(path);
    while (n > 1 && path[n - 1] == '/') n--;
    size_t start = n;
    while (start > 0 && path[start - 1] != '/') start--;
    size_t len = n - start < cap - 1 ? n - start : cap - 1;
    memcpy(name, path + start, len);
    name[len] = 0;
    return name;
}

static void sb_name(sbuf *b, const char *key, const char *path) {
    char name[256];
    sb_field(b, key, base_name(path, name, sizeof name));
}

/* A1111's sampler label and schedule type for one of our scheduler names ("dpmpp_2m_karras"). */
static void sampler_label(const char *name, const char **label, int *karras) {
    static const struct {
        const char *prefix, *label;
    } names[] = {{"euler_a", "Euler a"}, {"euler", "Euler"}, {"ddim", "DDIM"}, {"dpmpp_2m", "DPM++ 2M"},
                 {"lcm", "LCM"},         {"tcd", "TCD"}};
    *label = name;
    *karras = strstr(name, "karras") != NULL;
    for (size_t i = 0; i < sizeof names / sizeof *names; i++)
        if (!strncmp(name, names[i].prefix, strlen(names[i].prefix))) {
            *label = names[i].label;
            return;
        }
}

/* The scheduler that actually ran: the options resolved against the model's scheduler config. */
static void put_sampler(sbuf *b, const is_pipeline *p, const is_generate_params *gp) {
    is_scheduler *sched = NULL;
    is_error *e = p ? is_scheduler_load(p->scheduler_config, gp->sampler, gp->karras, gp->timestep_spacing, &sched)
                    : is_errorf(IS_E_ARGUMENT, "no pipeline");
    if (!e) {
        const char *label;
        int karras;
        sampler_label(is_scheduler_name(sched), &label, &karras);
        sb_field(b, "Sampler", label);
        if (karras) sb_field(b, "Schedule type", "Karras");
    }
    is_error_free(e);
    is_scheduler_free(sched);
    if (gp->timestep_spacing) sb_field(b, "Timestep spacing", gp->timestep_spacing);
    if (gp->prediction_type) sb_field(b, "Prediction type", gp->prediction_type);
    if (gp->eta != 0) sb_float(b, "Eta", gp->eta);
}

/* SDXL's micro-conditioning, where it differs from the defaults (output size, no crop). */
static void put_size_conditioning(sbuf *b, const is_generate_params *gp, int width, int height) {
    if (gp->original_width || gp->original_height)
        sb_size(b, "Original size", gp->original_width ? gp->original_width : width,
                gp->original_height ? gp->original_height : height);
    if (gp->target_width || gp->target_height)
        sb_size(b, "Target size", gp->target_width ? gp->target_width : width,
                gp->target_height ? gp->target_height : height);
    if (gp->crop_top) sb_int(b, "Crop top", gp->crop_top);
    if (gp->crop_left) sb_int(b, "Crop left", gp->crop_left);
}

/* An image encoder other than the image_encoder/ folder beside the adapter file. */
static int custom_image_encoder(const is_pipeline *p) {
    if (!p->image_encoder_dir) return 0;
    char *dir = is_path_dirname(p->ip_adapter);
    char *def = dir ? is_path_join(dir, "image_encoder") : NULL;
    int custom = def && strcmp(def, p->image_encoder_dir) != 0;
    free(dir);
    free(def);
    return custom;
}

static void put_style(sbuf *b, const is_pipeline *p, const is_generate_params *gp) {
    if (!p || !p->ip_adapter || (!gp->style_image && !gp->style_rgb)) return;
    sb_name(b, "IP-Adapter", p->ip_adapter);
    if (custom_image_encoder(p)) sb_name(b, "Image encoder", p->image_encoder_dir);
    sb_float(b, "IP-Adapter scale", gp->ip_scale);
    if (gp->ip_start != 0 || gp->ip_end != 1) {
        char num[64];
        snprintf(num, sizeof num, "%g, %g", gp->ip_start, gp->ip_end);
        sb_field(b, "IP-Adapter window", num);
    }
    if (gp->style_image) sb_name(b, "Style image", gp->style_image);
    sb_field(b, "Style blocks", gp->style_blocks ? gp->style_blocks : "style");
    if (gp->content_prompt) {
        sb_field(b, "Content prompt", gp->content_prompt);
        sb_float(b, "Content scale", gp->content_scale);
    }
}

/* img2img / inpainting and ControlNet inputs (A1111's "Denoising strength"; our own names otherwise). */
static void put_image_inputs(sbuf *b, const is_pipeline *p, const is_generate_params *gp) {
    int init = gp->init_image || gp->init_rgb, mask = gp->mask_image || gp->mask_rgb;
    if (init) {
        sb_name(b, "Init image", gp->init_image ? gp->init_image : "(in memory)");
        if (mask) sb_name(b, "Mask image", gp->mask_image ? gp->mask_image : "(in memory)");
        char num[32];
        double st = gp->strength >= 0 ? gp->strength : mask ? 0.9999 : 0.3;
        snprintf(num, sizeof num, "%g", st);
        sb_field(b, "Denoising strength", num);
    }
    if (!p || !p->controlnet_dir || (!gp->control_image && !gp->control_rgb)) return;
    sb_name(b, "ControlNet", p->controlnet_dir);
    sb_name(b, gp->control_canny ? "Control canny image" : "Control image",
            gp->control_image ? gp->control_image : "(in memory)");
    if (gp->control_canny) {
        char num[64];
        snprintf(num, sizeof num, "%g, %g", gp->canny_low, gp->canny_high);
        sb_field(b, "Canny thresholds", num);
    }
    sb_float(b, "Control scale", gp->control_scale);
    if (gp->control_start != 0 || gp->control_end != 1) {
        char num[64];
        snprintf(num, sizeof num, "%g, %g", gp->control_start, gp->control_end);
        sb_field(b, "Control window", num);
    }
    if (gp->guess_mode) sb_field(b, "Guess mode", "on");
}

char *is_format_parameters(const is_pipeline *p, const is_generate_params *gp, int width, int height,
                           is_precision ran) {
    sbuf b = {NULL, 0, 0, 0};
    sb_put(&b, gp->prompt ? gp->prompt : "");
    if (gp->negative_prompt) {
        sb_put(&b, "\nNegative prompt: ");
        sb_put(&b, gp->negative_prompt);
    }
    sb_put(&b, "\nSteps: ");
    char num[32];
    snprintf(num, sizeof num, "%d", gp->steps);
    sb_put(&b, num);
    put_sampler(&b, p, gp);
    sb_float(&b, "CFG scale", gp->cfg);
    if (gp->guidance_rescale > 0) sb_float(&b, "CFG rescale", gp->guidance_rescale);
    snprintf(num, sizeof num, "%llu", (unsigned long long)gp->seed);
    sb_field(&b, "Seed", num);
    sb_size(&b, "Size", width, height);
    if (p) sb_name(&b, "Model", p->model_dir);
    if (p && p->unet_file) sb_name(&b, "UNet", p->unet_file);
    if (gp->prompt_2 && *gp->prompt_2) sb_field(&b, "Prompt 2", gp->prompt_2);
    if (gp->negative_prompt_2 && *gp->negative_prompt_2) sb_field(&b, "Negative prompt 2", gp->negative_prompt_2);
    put_size_conditioning(&b, gp, width, height);
    /* Tiled decoding blends overlapping tiles: other pixels than one decode whenever it tiles. */
    if (gp->vae_tiling >= 0) sb_field(&b, "VAE tiling", gp->vae_tiling ? "on" : "off");
    put_style(&b, p, gp);
    put_image_inputs(&b, p, gp);
    for (int i = 0; i < gp->n_loras && gp->loras; i++) {
        char key[32], num[32];
        snprintf(key, sizeof key, "LoRA %d", i + 1);
        snprintf(num, sizeof num, "%g", (double)gp->loras[i].weight);
        sb_name(&b, key, gp->loras[i].path);
        snprintf(key, sizeof key, "LoRA %d weight", i + 1);
        sb_field(&b, key, num);
    }
    sb_field(&b, "Precision", is_precision_name(ran == IS_PRECISION_AUTO ? IS_PRECISION_F32 : ran));
    sb_field(&b, "Version", "instantstyle " IS_VERSION_STRING);
    if (b.failed) {
        free(b.buf);
        return NULL;
    }
    return b.buf;
}

is_error *is_encode_png(const is_image_result *img, const is_pipeline *p, const is_generate_params *params,
                        uint8_t **data, size_t *size) {
    if (!data || !size) return is_errorf(IS_E_ARGUMENT, "is_encode_png: no output buffer given");
    *data = NULL;
    *size = 0;
    if (!img || !img->rgb || !params) return is_errorf(IS_E_ARGUMENT, "is_encode_png: no image or parameters");
    char *text = is_format_parameters(p, params, img->width, img->height, img->precision);
    if (!text) return is_error_oom("PNG parameters");
    is_png_text chunk = {"parameters", text};
    is_error *e = is_png_encode_rgb8(img->rgb, img->width, img->height, &chunk, 1, data, size);
    free(text);
    return e;
}

is_error *is_save_png(const char *path, const is_image_result *img, const is_pipeline *p,
                      const is_generate_params *params) {
    if (!path) return is_errorf(IS_E_ARGUMENT, "is_save_png: no path given");
    uint8_t *data = NULL;
    size_t size = 0;
    IS_TRY(is_error_wrap(is_encode_png(img, p, params, &data, &size), "%s", path));
    is_error *e = is_write_file_atomic(path, data, size);
    free(data);
    return e;
}

char *is_parameters_text(const is_image_result *img, const is_pipeline *p, const is_generate_params *params) {
    if (!img || !params) return NULL;
    return is_format_parameters(p, params, img->width, img->height, img->precision);
}
