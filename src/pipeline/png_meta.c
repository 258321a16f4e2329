/* is_save_png: the image plus an A1111-style "parameters" text chunk, so existing
 * tools (A1111, ComfyUI, image viewers) show how it was made. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pipeline/pipeline_internal.h"
#include "pipeline/png_write.h"

typedef struct {
    char *buf;
    size_t len, cap;
} sbuf;

static void sb_put(sbuf *b, const char *s) {
    size_t n = strlen(s);
    if (b->len + n + 1 > b->cap) {
        size_t cap = (b->cap ? b->cap * 2 : 256) + n;
        char *nb = realloc(b->buf, cap);
        if (!nb) return; /* leaves a shorter text; checked by the caller through buf */
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

static const char *base_name(const char *path) {
    size_t n = strlen(path);
    while (n > 1 && path[n - 1] == '/') n--; /* "model/" -> "model" */
    static char name[256];
    size_t end = n, start = end;
    while (start > 0 && path[start - 1] != '/') start--;
    size_t len = end - start < sizeof name - 1 ? end - start : sizeof name - 1;
    memcpy(name, path + start, len);
    name[len] = 0;
    return name;
}

/* A1111's sampler label and schedule type for one of our scheduler names ("dpmpp_2m_karras"). */
static void sampler_label(const char *name, const char **label, int *karras) {
    static const struct {
        const char *prefix, *label;
    } names[] = {{"euler_a", "Euler a"}, {"euler", "Euler"}, {"ddim", "DDIM"}, {"dpmpp_2m", "DPM++ 2M"}};
    *label = name;
    *karras = strstr(name, "karras") != NULL;
    for (size_t i = 0; i < sizeof names / sizeof *names; i++)
        if (!strncmp(name, names[i].prefix, strlen(names[i].prefix))) {
            *label = names[i].label;
            return;
        }
}

char *is_format_parameters(const is_pipeline *p, const is_generate_params *gp, int width, int height,
                           is_precision ran) {
    sbuf b = {NULL, 0, 0};
    char num[64];
    sb_put(&b, gp->prompt ? gp->prompt : "");
    if (gp->negative_prompt) {
        sb_put(&b, "\nNegative prompt: ");
        sb_put(&b, gp->negative_prompt);
    }
    sb_put(&b, "\nSteps: ");
    snprintf(num, sizeof num, "%d", gp->steps);
    sb_put(&b, num);
    /* The scheduler that actually ran: options resolved against the model's scheduler config. */
    is_scheduler *sched = NULL;
    is_error *e = is_scheduler_load(p->scheduler_config, gp->sampler, gp->karras, gp->timestep_spacing, &sched);
    if (!e) {
        const char *label;
        int karras;
        sampler_label(is_scheduler_name(sched), &label, &karras);
        sb_field(&b, "Sampler", label);
        if (karras) sb_field(&b, "Schedule type", "Karras");
    }
    is_error_free(e);
    is_scheduler_free(sched);
    snprintf(num, sizeof num, "%g", gp->cfg);
    sb_field(&b, "CFG scale", num);
    if (gp->guidance_rescale > 0) {
        snprintf(num, sizeof num, "%g", gp->guidance_rescale);
        sb_field(&b, "CFG rescale", num);
    }
    snprintf(num, sizeof num, "%llu", (unsigned long long)gp->seed);
    sb_field(&b, "Seed", num);
    snprintf(num, sizeof num, "%dx%d", width, height);
    sb_field(&b, "Size", num);
    sb_field(&b, "Model", base_name(p->model_dir));
    if (p->ip_adapter && gp->style_image) {
        sb_field(&b, "IP-Adapter", base_name(p->ip_adapter));
        snprintf(num, sizeof num, "%g", gp->ip_scale);
        sb_field(&b, "IP-Adapter scale", num);
        sb_field(&b, "Style image", base_name(gp->style_image));
        sb_field(&b, "Style blocks", gp->style_blocks ? gp->style_blocks : "style");
        if (gp->content_prompt) {
            sb_field(&b, "Content prompt", gp->content_prompt);
            snprintf(num, sizeof num, "%g", gp->content_scale);
            sb_field(&b, "Content scale", num);
        }
    }
    sb_field(&b, "Precision", is_precision_name(ran == IS_PRECISION_AUTO ? IS_PRECISION_F32 : ran));
    sb_field(&b, "Version", "instantstyle " IS_VERSION_STRING);
    return b.buf;
}

is_error *is_save_png(const char *path, const is_image_result *img, const is_pipeline *p,
                      const is_generate_params *params) {
    if (!img || !img->rgb) return is_errorf(IS_E_ARGUMENT, "%s: no image to save", path);
    char *text = is_format_parameters(p, params, img->width, img->height, img->precision);
    if (!text) return is_error_oom("PNG parameters");
    is_png_text chunk = {"parameters", text};
    is_error *e = is_png_write_rgb8(path, img->rgb, img->width, img->height, &chunk, 1);
    free(text);
    return e;
}
