/* CLIPImageProcessor: config, geometry, Pillow resize + centre crop on uint8; rescale + normalise is
 * clip_normalize.c. */
#include "vision/clip_preprocess.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/config.h"
#include "vision/image.h"

void is_clip_preproc_defaults(is_clip_preproc *pp) {
    static const float mean[3] = {0.48145466f, 0.4578275f, 0.40821073f};
    static const float std[3] = {0.26862954f, 0.26130258f, 0.27577711f};
    memset(pp, 0, sizeof *pp);
    pp->do_resize = pp->do_center_crop = pp->do_rescale = pp->do_normalize = 1;
    pp->shortest_edge = 224;
    pp->crop_h = pp->crop_w = 224;
    pp->resample = IS_PIL_BICUBIC;
    pp->rescale_factor = 1.0 / 255.0;
    memcpy(pp->mean, mean, sizeof mean);
    memcpy(pp->std, std, sizeof std);
}

static cJSON *field(const is_config *cfg, const char *key) {
    cJSON *v = cJSON_GetObjectItemCaseSensitive(cfg->root, key);
    return (v && !cJSON_IsNull(v)) ? v : NULL;
}

static int positive_int(const cJSON *v, int *out) {
    /* range before the conversion: (int) of a double beyond INT_MAX is undefined behaviour */
    if (!cJSON_IsNumber(v) || !(v->valuedouble >= 1 && v->valuedouble <= IS_IMAGE_MAX_SIDE) ||
        v->valuedouble != floor(v->valuedouble))
        return 0;
    *out = (int)v->valuedouble;
    return 1;
}

/* "size": 224 | {"shortest_edge": 224} | {"height": h, "width": w}. */
static is_error *parse_size(const is_config *cfg, is_clip_preproc *pp) {
    cJSON *v = field(cfg, "size");
    if (!v) return NULL;
    int s, h, w;
    if (positive_int(v, &s)) {
        pp->shortest_edge = s;
        return NULL;
    }
    if (cJSON_IsObject(v)) {
        cJSON *se = cJSON_GetObjectItemCaseSensitive(v, "shortest_edge");
        if (se && positive_int(se, &s)) {
            pp->shortest_edge = s;
            return NULL;
        }
        if (!se && positive_int(cJSON_GetObjectItemCaseSensitive(v, "height"), &h) &&
            positive_int(cJSON_GetObjectItemCaseSensitive(v, "width"), &w)) {
            pp->shortest_edge = 0;
            pp->size_h = h;
            pp->size_w = w;
            return NULL;
        }
    }
    return is_errorf(IS_E_CONFIG, "%s: field 'size' must be a positive integer, {\"shortest_edge\": n} or "
                                  "{\"height\": h, \"width\": w}", cfg->path);
}

/* "crop_size": 224 | {"height": h, "width": w}. */
static is_error *parse_crop(const is_config *cfg, is_clip_preproc *pp) {
    cJSON *v = field(cfg, "crop_size");
    if (!v) return NULL;
    int s, h, w;
    if (positive_int(v, &s)) {
        pp->crop_h = pp->crop_w = s;
        return NULL;
    }
    if (cJSON_IsObject(v) && positive_int(cJSON_GetObjectItemCaseSensitive(v, "height"), &h) &&
        positive_int(cJSON_GetObjectItemCaseSensitive(v, "width"), &w)) {
        pp->crop_h = h;
        pp->crop_w = w;
        return NULL;
    }
    return is_errorf(IS_E_CONFIG, "%s: field 'crop_size' must be a positive integer or {\"height\": h, \"width\": w}",
                     cfg->path);
}

/* "image_mean" / "image_std": a list of 3 numbers or one number for all channels. */
static is_error *parse_triple(const is_config *cfg, const char *key, float out[3], int nonzero) {
    cJSON *v = field(cfg, key);
    if (!v) return NULL;
    double d[3];
    int ok = 1;
    if (cJSON_IsNumber(v)) {
        d[0] = d[1] = d[2] = v->valuedouble;
    } else if (cJSON_IsArray(v) && cJSON_GetArraySize(v) == 3) {
        for (int i = 0; i < 3; i++) {
            cJSON *it = cJSON_GetArrayItem(v, i);
            ok &= cJSON_IsNumber(it);
            d[i] = ok ? it->valuedouble : 0;
        }
    } else {
        ok = 0;
    }
    for (int i = 0; ok && nonzero && i < 3; i++) ok = d[i] != 0;
    if (!ok)
        return is_errorf(IS_E_CONFIG, "%s: field '%s' must be a list of 3 numbers%s", cfg->path, key,
                         nonzero ? " (none zero)" : "");
    for (int i = 0; i < 3; i++) out[i] = (float)d[i]; /* numpy: np.array(mean, dtype=float32) */
    return NULL;
}

is_error *is_clip_preproc_load(const char *path, is_clip_preproc *pp) {
    is_clip_preproc_defaults(pp);
    is_config cfg;
    IS_TRY(is_config_load(path, &cfg));
    int64_t resample = pp->resample;
    is_error *e = is_config_bool_or(&cfg, "do_resize", 1, &pp->do_resize);
    if (!e) e = is_config_bool_or(&cfg, "do_center_crop", 1, &pp->do_center_crop);
    if (!e) e = is_config_bool_or(&cfg, "do_rescale", 1, &pp->do_rescale);
    if (!e) e = is_config_bool_or(&cfg, "do_normalize", 1, &pp->do_normalize);
    if (!e) e = is_config_float_or(&cfg, "rescale_factor", pp->rescale_factor, &pp->rescale_factor);
    if (!e) e = is_config_int_or(&cfg, "resample", resample, &resample);
    if (!e && (resample < IS_PIL_LANCZOS || resample > IS_PIL_HAMMING))
        e = is_errorf(IS_E_UNSUPPORTED, "%s: field 'resample' is %lld; supported: 1 LANCZOS, 2 BILINEAR, 3 BICUBIC, "
                                        "4 BOX, 5 HAMMING", path, (long long)resample);
    pp->resample = (int)resample;
    if (!e) e = parse_size(&cfg, pp);
    if (!e) e = parse_crop(&cfg, pp);
    if (!e) e = parse_triple(&cfg, "image_mean", pp->mean, 0);
    if (!e) e = parse_triple(&cfg, "image_std", pp->std, 1);
    is_config_free(&cfg);
    return e;
}

is_error *is_clip_geometry_of(const is_clip_preproc *pp, int width, int height, is_clip_geometry *g) {
    memset(g, 0, sizeof *g);
    if (width <= 0 || height <= 0) return is_errorf(IS_E_ARGUMENT, "preprocess: image of %dx%d pixels", width, height);
    g->resize_w = width;
    g->resize_h = height;
    if (pp->do_resize && pp->shortest_edge > 0) {
        /* transformers get_resize_output_image_size(default_to_square=False) */
        int short_side = width <= height ? width : height, long_side = width <= height ? height : width;
        double long_new = (double)pp->shortest_edge * long_side / short_side;
        if (long_new > 1e8) return is_errorf(IS_E_ARGUMENT, "preprocess: a %dx%d image resizes to an absurd size", width, height);
        int s = pp->shortest_edge, l = (int)long_new;
        if (l < 1) l = 1;
        g->resize_w = width <= height ? s : l;
        g->resize_h = width <= height ? l : s;
    } else if (pp->do_resize) {
        g->resize_w = pp->size_w;
        g->resize_h = pp->size_h;
    }
    g->out_w = g->resize_w;
    g->out_h = g->resize_h;
    if (pp->do_center_crop) {
        /* transformers center_crop: floor division, so negative offsets pad symmetrically */
        int dh = g->resize_h - pp->crop_h, dw = g->resize_w - pp->crop_w;
        g->crop_top = dh >= 0 ? dh / 2 : -((-dh + 1) / 2);
        g->crop_left = dw >= 0 ? dw / 2 : -((-dw + 1) / 2);
        g->out_w = pp->crop_w;
        g->out_h = pp->crop_h;
    }
    return NULL;
}

is_error *is_clip_resize_crop_u8(const is_clip_preproc *pp, const is_image *img, const is_clip_geometry *g,
                                 uint8_t *out) {
    /* The part of the crop that lies inside the resized image; the rest stays zero (padding). */
    int y0 = g->crop_top > 0 ? g->crop_top : 0, x0 = g->crop_left > 0 ? g->crop_left : 0;
    int y1 = g->crop_top + g->out_h < g->resize_h ? g->crop_top + g->out_h : g->resize_h;
    int x1 = g->crop_left + g->out_w < g->resize_w ? g->crop_left + g->out_w : g->resize_w;
    int win_w = x1 - x0, win_h = y1 - y0;
    memset(out, 0, (size_t)g->out_w * g->out_h * 3);
    if (win_w <= 0 || win_h <= 0) return NULL;
    uint8_t *win = malloc((size_t)win_w * win_h * 3);
    if (!win) return is_error_oom("preprocess crop");
    is_error *e = is_pil_resize_window(img, g->resize_w, g->resize_h, pp->resample, x0, y0, win_w, win_h, win);
    if (!e) {
        for (int r = 0; r < win_h; r++)
            memcpy(out + ((size_t)(y0 - g->crop_top + r) * g->out_w + (x0 - g->crop_left)) * 3,
                   win + (size_t)r * win_w * 3, (size_t)win_w * 3);
    }
    free(win);
    return e;
}

is_error *is_clip_preprocess(const is_clip_preproc *pp, const is_image *img, int size, float *pixel_values) {
    if (!img || !img->rgb || !pixel_values) return is_errorf(IS_E_ARGUMENT, "preprocess: missing image or output");
    is_clip_geometry g;
    IS_TRY(is_clip_geometry_of(pp, img->width, img->height, &g));
    if (g.out_w != size || g.out_h != size)
        return is_errorf(IS_E_CONFIG, "preprocess: the processor yields %dx%d pixel values but the encoder takes %dx%d",
                         g.out_w, g.out_h, size, size);
    uint8_t *crop = malloc((size_t)size * size * 3);
    if (!crop) return is_error_oom("preprocess");
    is_error *e = is_clip_resize_crop_u8(pp, img, &g, crop);
    if (!e) is_clip_normalize(pp, crop, size, size, pixel_values);
    free(crop);
    return e;
}
