/* JSON bodies -> checked generation requests. Two front doors with one set of checks: the native API
 * (strict: unknown fields are refused) and A1111's (field names of modules/api/models.py; unknown fields
 * ignored, as pydantic does there). Every refusal is a 400 naming the field and what was expected. */
#include <ctype.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <time.h>

#include "server/base64.h"
#include "server/server_internal.h"

/* ---- typed field readers: 0 absent (or null), 1 read, -1 refused (*e filled) */

static int field_num(const cJSON *o, const char *key, double lo, double hi, double *out, srv_err *e) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    if (!v || cJSON_IsNull(v)) return 0;
    if (!cJSON_IsNumber(v) || !isfinite(v->valuedouble))
        return srv_fail(e, 400, key, "%s: expected a number in %g..%g", key, lo, hi);
    if (v->valuedouble < lo || v->valuedouble > hi)
        return srv_fail(e, 400, key, "%s: expected a number in %g..%g, got %g", key, lo, hi, v->valuedouble);
    *out = v->valuedouble;
    return 1;
}

static int field_int(const cJSON *o, const char *key, long long lo, long long hi, long long *out, srv_err *e) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    if (!v || cJSON_IsNull(v)) return 0;
    double d = cJSON_IsNumber(v) ? v->valuedouble : NAN;
    if (!isfinite(d) || d != floor(d))
        return srv_fail(e, 400, key, "%s: expected an integer in %lld..%lld", key, lo, hi);
    if (d < (double)lo || d > (double)hi)
        return srv_fail(e, 400, key, "%s: expected an integer in %lld..%lld, got %.17g", key, lo, hi, d);
    *out = (long long)d;
    return 1;
}

static int field_bool(const cJSON *o, const char *key, int *out, srv_err *e) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    if (!v || cJSON_IsNull(v)) return 0;
    if (!cJSON_IsBool(v)) return srv_fail(e, 400, key, "%s: expected true or false", key);
    *out = cJSON_IsTrue(v);
    return 1;
}

/* A string (copied into *out, replacing it) of at most max bytes. */
static int field_str(const cJSON *o, const char *key, size_t max, char **out, srv_err *e) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    if (!v || cJSON_IsNull(v)) return 0;
    if (!cJSON_IsString(v)) return srv_fail(e, 400, key, "%s: expected a string", key);
    size_t n = strlen(v->valuestring);
    if (n > max) return srv_fail(e, 400, key, "%s: %zu bytes, at most %zu", key, n, max);
    char *copy = strdup(v->valuestring);
    if (!copy) return srv_fail(e, 500, key, "%s: out of memory", key);
    free(*out);
    *out = copy;
    return 1;
}

/* A base64 PNG / JPEG string: decoded into img (the library's pixel limit applies). name: the field. */
static int decode_image(const char *text, const char *name, is_image *img, srv_err *e) {
    uint8_t *bytes = NULL;
    size_t n = 0, bad = 0;
    int rc = b64_decode(text, strlen(text), &bytes, &n, &bad);
    if (rc == -2) return srv_fail(e, 500, name, "%s: out of memory decoding base64", name);
    if (rc) return srv_fail(e, 400, name, "%s: not base64 (bad character or length at offset %zu)", name, bad);
    if (n == 0) {
        free(bytes);
        return srv_fail(e, 400, name, "%s: empty image", name);
    }
    is_error *err = is_image_decode(bytes, n, name, img);
    free(bytes);
    if (err) {
        srv_fail(e, is_error_code(err) == IS_E_NOMEM ? 500 : 400, name, "%s", is_error_message(err));
        is_error_free(err);
        return -1;
    }
    return 1;
}

static int field_image(const cJSON *o, const char *key, is_image *img, srv_err *e) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    if (!v || cJSON_IsNull(v)) return 0;
    if (!cJSON_IsString(v)) return srv_fail(e, 400, key, "%s: expected a base64 PNG or JPEG string", key);
    return decode_image(v->valuestring, key, img, e);
}

/* ---- the request */

void srv_request_free(srv_request *r) {
    if (!r) return;
    free(r->prompt), free(r->negative_prompt), free(r->style_blocks), free(r->content_prompt);
    is_image_free(&r->style), is_image_free(&r->init), is_image_free(&r->mask);
    cJSON_Delete(r->params);
    free(r);
}

static srv_request *request_new(srv_err *e) {
    srv_request *r = calloc(1, sizeof *r);
    if (!r) {
        srv_fail(e, 500, "", "out of memory");
        return NULL;
    }
    is_generate_params_init(&r->gp);
    r->n_images = r->batch_size = r->n_iter = 1;
    return r;
}

/* The generate params' pointers into r, once every field is read. */
static void bind_params(srv_request *r) {
    is_generate_params *g = &r->gp;
    g->prompt = r->prompt ? r->prompt : "";
    g->negative_prompt = r->negative_prompt;
    if (r->style_blocks) g->style_blocks = r->style_blocks;
    g->content_prompt = r->content_prompt && *r->content_prompt ? r->content_prompt : NULL;
    g->style_rgb = r->style.rgb ? &r->style : NULL;
    g->init_rgb = r->init.rgb ? &r->init : NULL;
    g->mask_rgb = r->mask.rgb ? &r->mask : NULL;
    g->style_image = g->init_image = g->mask_image = NULL;
}

static uint64_t random_seed(void) {
    uint32_t v = 0;
    if (getrandom(&v, sizeof v, 0) != (ssize_t)sizeof v) v = (uint32_t)time(NULL) ^ (uint32_t)clock();
    return v; /* A1111 draws seeds below 2^32 */
}

/* Size: a multiple of 8 in 64..max (A1111 rounds down to 8; the native API requires it). */
static int read_size(const cJSON *o, const char *key, int round, const srv_config *cfg, int *out, srv_err *e) {
    long long v = 0;
    int rc = field_int(o, key, round ? 8 : 64, cfg->max_size, &v, e);
    if (rc <= 0) return rc;
    if (round) v -= v % 8;
    if (v < 64) return srv_fail(e, 400, key, "%s: at least 64, got %lld", key, v);
    if (v % 8) return srv_fail(e, 400, key, "%s: must be a multiple of 8, got %lld", key, v);
    *out = (int)v;
    return 1;
}

static int read_seed(const cJSON *o, const char *key, srv_request *r, srv_err *e) {
    long long s = -1;
    if (field_int(o, key, -1, 9007199254740991LL, &s, e) < 0) return -1; /* 2^53 - 1: exact in JSON */
    r->seed = s < 0 ? random_seed() : (uint64_t)s;
    return 0;
}

/* ---- native */

static const char *const native_fields[] = {"prompt", "negative_prompt", "width", "height", "steps", "cfg", "sampler",
                                            "karras", "seed", "style_image", "style_mode", "ip_scale", "ip_start", "ip_end",
                                            "content_prompt", "content_scale", "preset", "init_image", "strength",
                                            "mask_image", NULL};

static int native_known(const char *k) {
    for (int i = 0; native_fields[i]; i++)
        if (!strcmp(native_fields[i], k)) return 1;
    return 0;
}

static int parse_native(const cJSON *b, const srv_config *cfg, srv_request *r, srv_err *e) {
    const cJSON *it;
    cJSON_ArrayForEach(it, b) if (!native_known(it->string)) return srv_fail(e, 400, it->string, "%s: unknown field (docs/SERVER.md lists the fields)", it->string);
    is_generate_params *g = &r->gp;
    char *preset = NULL;
    int rc = field_str(b, "preset", 64, &preset, e);
    if (rc < 0) return -1;
    if (rc) {
        is_error *err = is_generate_params_preset(g, preset);
        free(preset);
        if (err) {
            srv_fail(e, 400, "preset", "preset: %s", is_error_message(err));
            is_error_free(err);
            return -1;
        }
    }
    if (field_str(b, "prompt", SRV_MAX_TEXT, &r->prompt, e) <= 0 || !*r->prompt)
        return e->status ? -1 : srv_fail(e, 400, "prompt", "prompt: required (a non-empty string)");
    if (field_str(b, "negative_prompt", SRV_MAX_TEXT, &r->negative_prompt, e) < 0) return -1;
    if (read_size(b, "width", 0, cfg, &g->width, e) < 0 || read_size(b, "height", 0, cfg, &g->height, e) < 0) return -1;
    long long steps;
    if ((rc = field_int(b, "steps", 1, SRV_MAX_STEPS, &steps, e)) < 0) return -1;
    if (rc) g->steps = (int)steps;
    double d;
    if ((rc = field_num(b, "cfg", 0, 30, &d, e)) < 0) return -1;
    if (rc) g->cfg = (float)d;
    char *sampler = NULL;
    if ((rc = field_str(b, "sampler", 64, &sampler, e)) < 0) return -1;
    if (rc) {
        int bad = is_sampler_parse(sampler, &g->sampler);
        snprintf(r->sampler_label, sizeof r->sampler_label, "%.39s", sampler);
        free(sampler);
        if (bad) return srv_fail(e, 400, "sampler", "sampler: unknown (euler, euler_a, ddim, dpmpp_2m, lcm, tcd)");
    } else {
        snprintf(r->sampler_label, sizeof r->sampler_label, "%s", is_sampler_name(g->sampler));
    }
    int karras = 0;
    if ((rc = field_bool(b, "karras", &karras, e)) < 0) return -1;
    if (rc) g->karras = karras;
    if (read_seed(b, "seed", r, e)) return -1;
    if (field_image(b, "style_image", &r->style, e) < 0) return -1;
    if (field_str(b, "style_mode", 4096, &r->style_blocks, e) < 0) return -1;
    if ((rc = field_num(b, "ip_scale", 0, 10, &d, e)) < 0) return -1;
    if (rc) g->ip_scale = (float)d;
    if ((rc = field_num(b, "ip_start", 0, 1, &d, e)) < 0) return -1;
    if (rc) g->ip_start = d;
    if ((rc = field_num(b, "ip_end", 0, 1, &d, e)) < 0) return -1;
    if (rc) g->ip_end = d;
    if (g->ip_start >= g->ip_end)
        return srv_fail(e, 400, "ip_start", "ip_start: must be smaller than ip_end (got %g and %g)", g->ip_start, g->ip_end);
    if (field_str(b, "content_prompt", SRV_MAX_TEXT, &r->content_prompt, e) < 0) return -1;
    if ((rc = field_num(b, "content_scale", -10, 10, &d, e)) < 0) return -1;
    if (rc) g->content_scale = (float)d;
    if (field_image(b, "init_image", &r->init, e) < 0 || field_image(b, "mask_image", &r->mask, e) < 0) return -1;
    if ((rc = field_num(b, "strength", 0, 1, &d, e)) < 0) return -1;
    if (rc) {
        if (d <= 0) return srv_fail(e, 400, "strength", "strength: expected a number in (0, 1], got %g", d);
        g->strength = d;
    }
    if (r->mask.rgb && !r->init.rgb) return srv_fail(e, 400, "mask_image", "mask_image: needs init_image");
    return 0;
}

/* The echo: the body as sent, with the defaults and the seed used filled in. */
static int echo(srv_request *r, const cJSON *body, srv_err *e) {
    r->params = cJSON_Duplicate(body, 1);
    if (!r->params) return srv_fail(e, 500, "", "out of memory");
    return 0;
}

static void echo_set_num(cJSON *o, const char *key, double v) {
    cJSON_DeleteItemFromObjectCaseSensitive(o, key);
    cJSON_AddNumberToObject(o, key, v);
}

static void echo_set_str(cJSON *o, const char *key, const char *v) {
    cJSON_DeleteItemFromObjectCaseSensitive(o, key);
    if (v) cJSON_AddStringToObject(o, key, v);
    else cJSON_AddNullToObject(o, key);
}

srv_request *srv_parse_native(const cJSON *body, const srv_config *cfg, srv_err *e) {
    memset(e, 0, sizeof *e);
    srv_request *r = request_new(e);
    if (!r) return NULL;
    r->gp.precision = cfg->precision;
    if (parse_native(body, cfg, r, e) || echo(r, body, e)) {
        srv_request_free(r);
        return NULL;
    }
    /* the echo leaves the images out (they are large and the client has them) */
    cJSON_DeleteItemFromObjectCaseSensitive(r->params, "style_image");
    cJSON_DeleteItemFromObjectCaseSensitive(r->params, "init_image");
    cJSON_DeleteItemFromObjectCaseSensitive(r->params, "mask_image");
    echo_set_num(r->params, "seed", (double)r->seed);
    echo_set_num(r->params, "steps", r->gp.steps);
    echo_set_num(r->params, "cfg", r->gp.cfg);
    echo_set_str(r->params, "sampler", r->sampler_label);
    if (r->gp.width) echo_set_num(r->params, "width", r->gp.width);
    if (r->gp.height) echo_set_num(r->params, "height", r->gp.height);
    bind_params(r);
    return r;
}

/* ---- A1111 */

/* A1111's sampler labels, their aliases, and ours (karras: Karras sigmas). */
static const struct {
    const char *name, *alias;
    is_sampler sampler;
    int karras;
} a1111_samplers[] = {{"Euler a", "k_euler_a", IS_SAMPLER_EULER_A, -1},
                      {"Euler", "k_euler", IS_SAMPLER_EULER, -1},
                      {"DPM++ 2M", "k_dpmpp_2m", IS_SAMPLER_DPMPP_2M, -1},
                      {"DPM++ 2M Karras", "k_dpmpp_2m_ka", IS_SAMPLER_DPMPP_2M, 1},
                      {"DDIM", "ddim", IS_SAMPLER_DDIM, -1},
                      {"LCM", "k_lcm", IS_SAMPLER_LCM, -1},
                      {"TCD", "tcd", IS_SAMPLER_TCD, -1}};
#define N_A1111_SAMPLERS (int)(sizeof a1111_samplers / sizeof a1111_samplers[0])

const char *srv_a1111_sampler(int i, const char **alias) {
    if (i < 0 || i >= N_A1111_SAMPLERS) return NULL;
    if (alias) *alias = a1111_samplers[i].alias;
    return a1111_samplers[i].name;
}

static int a1111_sampler(const char *key, const char *name, srv_request *r, srv_err *e) {
    for (int i = 0; i < N_A1111_SAMPLERS; i++)
        if (!strcasecmp(name, a1111_samplers[i].name) || !strcasecmp(name, a1111_samplers[i].alias)) {
            r->gp.sampler = a1111_samplers[i].sampler;
            if (a1111_samplers[i].karras >= 0) r->gp.karras = a1111_samplers[i].karras;
            snprintf(r->sampler_label, sizeof r->sampler_label, "%s", a1111_samplers[i].name);
            return 0;
        }
    if (!is_sampler_parse(name, &r->gp.sampler)) { /* our own names too */
        snprintf(r->sampler_label, sizeof r->sampler_label, "%s", is_sampler_name(r->gp.sampler));
        return 0;
    }
    return srv_fail(e, 400, key, "%s: unknown sampler '%.60s' (GET /sdapi/v1/samplers lists them)", key, name);
}

static int a1111_scheduler(const char *name, srv_request *r, srv_err *e) {
    if (!strcasecmp(name, "automatic")) return 0;
    if (!strcasecmp(name, "karras")) {
        r->gp.karras = 1;
        return 0;
    }
    if (!strcasecmp(name, "uniform")) {
        r->gp.karras = 0;
        return 0;
    }
    if (!strcasecmp(name, "sgm_uniform") || !strcasecmp(name, "sgm uniform")) {
        r->gp.karras = 0;
        r->gp.timestep_spacing = "trailing";
        return 0;
    }
    return srv_fail(e, 400, "scheduler", "scheduler: unknown '%.60s' (Automatic, Karras, Uniform, SGM Uniform)", name);
}

static int contains_ci(const char *s, const char *needle) {
    size_t n = strlen(needle);
    for (; s && *s; s++)
        if (!strncasecmp(s, needle, n)) return 1;
    return 0;
}

/* One alwayson_scripts.controlnet.args[i] unit: the IP-Adapter style image and its weights. */
static int controlnet_unit(const cJSON *u, int i, srv_request *r, int *seen, srv_err *e) {
    char f[64];
    snprintf(f, sizeof f, "alwayson_scripts.controlnet.args[%d]", i);
    if (!cJSON_IsObject(u)) return srv_fail(e, 400, f, "%s: expected an object (a ControlNet unit)", f);
    int enabled = 1;
    const cJSON *en = cJSON_GetObjectItemCaseSensitive(u, "enabled");
    if (en && !cJSON_IsNull(en)) {
        if (!cJSON_IsBool(en)) return srv_fail(e, 400, f, "%s.enabled: expected true or false", f);
        enabled = cJSON_IsTrue(en);
    }
    if (!enabled) return 0;
    const cJSON *module = cJSON_GetObjectItemCaseSensitive(u, "module"), *model = cJSON_GetObjectItemCaseSensitive(u, "model");
    const char *ms = cJSON_IsString(module) ? module->valuestring : NULL, *md = cJSON_IsString(model) ? model->valuestring : NULL;
    if (!contains_ci(ms, "ip-adapter") && !contains_ci(ms, "ip_adapter") && !contains_ci(md, "ip-adapter") &&
        !contains_ci(md, "ip_adapter"))
        return srv_fail(e, 400, f, "%s: only IP-Adapter units are supported (module or model naming ip-adapter; got "
                        "module '%.40s', model '%.40s')", f, ms ? ms : "", md ? md : "");
    if ((*seen)++) return srv_fail(e, 400, f, "%s: one IP-Adapter unit (one style image) per request", f);
    /* the image: a string, or {"image": ...} as sd-webui-controlnet also takes; "input_image" in older clients */
    const cJSON *img = cJSON_GetObjectItemCaseSensitive(u, "image");
    if (!img || cJSON_IsNull(img)) img = cJSON_GetObjectItemCaseSensitive(u, "input_image");
    if (cJSON_IsObject(img)) img = cJSON_GetObjectItemCaseSensitive(img, "image");
    char g[128];
    snprintf(g, sizeof g, "%s.image", f);
    if (!cJSON_IsString(img)) return srv_fail(e, 400, g, "%s: expected the style image as a base64 string", g);
    if (decode_image(img->valuestring, g, &r->style, e) < 0) return -1;
    double weight = 1, start = 0, end = 1;
    snprintf(g, sizeof g, "%s.weight", f);
    const cJSON *w = cJSON_GetObjectItemCaseSensitive(u, "weight");
    if (w && !cJSON_IsNull(w)) {
        if (!cJSON_IsNumber(w) || !(w->valuedouble >= 0 && w->valuedouble <= 10))
            return srv_fail(e, 400, g, "%s: expected a number in 0..10", g);
        weight = w->valuedouble;
    }
    const cJSON *gs = cJSON_GetObjectItemCaseSensitive(u, "guidance_start"), *ge = cJSON_GetObjectItemCaseSensitive(u, "guidance_end");
    if (cJSON_IsNumber(gs)) start = gs->valuedouble;
    if (cJSON_IsNumber(ge)) end = ge->valuedouble;
    if (!(start >= 0 && start < end && end <= 1)) {
        snprintf(g, sizeof g, "%s.guidance_start", f);
        return srv_fail(e, 400, g, "%s.guidance_start / guidance_end: fractions of the steps with 0 <= start < end <= 1 "
                        "(got %g and %g)", f, start, end);
    }
    r->gp.ip_start = start, r->gp.ip_end = end;
    r->gp.ip_scale = (float)weight;
    /* style_blocks (ours) wins over advanced_weighting */
    if (field_str(u, "style_blocks", 4096, &r->style_blocks, e) < 0) {
        snprintf(e->field, sizeof e->field, "%s.style_blocks", f);
        return -1;
    }
    const cJSON *aw = cJSON_GetObjectItemCaseSensitive(u, "advanced_weighting");
    if (!r->style_blocks && aw && !cJSON_IsNull(aw)) {
        snprintf(g, sizeof g, "%s.advanced_weighting", f);
        if (!cJSON_IsArray(aw) || cJSON_GetArraySize(aw) != 11)
            return srv_fail(e, 400, g, "%s: expected 11 numbers (one per SDXL attention module, ComfyUI order)", g);
        char spec[256];
        size_t at = 0;
        int k = 0;
        const cJSON *x;
        cJSON_ArrayForEach(x, aw) {
            if (!cJSON_IsNumber(x) || !(x->valuedouble >= 0 && x->valuedouble <= 10))
                return srv_fail(e, 400, g, "%s[%d]: expected a number in 0..10", g, k);
            at += (size_t)snprintf(spec + at, sizeof spec - at, "%s%d:%.9g", k ? "," : "", k, x->valuedouble);
            k++;
        }
        r->style_blocks = strdup(spec);
        if (!r->style_blocks) return srv_fail(e, 500, g, "out of memory");
    }
    if (field_str(u, "content_prompt", SRV_MAX_TEXT, &r->content_prompt, e) < 0) {
        snprintf(e->field, sizeof e->field, "%s.content_prompt", f);
        return -1;
    }
    double cs;
    int rc = field_num(u, "content_scale", -10, 10, &cs, e);
    if (rc < 0) {
        snprintf(e->field, sizeof e->field, "%s.content_scale", f);
        return -1;
    }
    if (rc) r->gp.content_scale = (float)cs;
    return 0;
}

static int parse_a1111(const cJSON *b, int img2img, const srv_config *cfg, srv_request *r, srv_err *e) {
    is_generate_params *g = &r->gp;
    /* A1111's defaults (StableDiffusionProcessing): 50 steps, cfg 7, 512x512, sampler_index "Euler" */
    g->steps = 50, g->cfg = 7.0f, g->width = g->height = 512, g->sampler = IS_SAMPLER_EULER;
    snprintf(r->sampler_label, sizeof r->sampler_label, "Euler");
    g->style_blocks = "style";
    if (field_str(b, "prompt", SRV_MAX_TEXT, &r->prompt, e) < 0) return -1;
    if (field_str(b, "negative_prompt", SRV_MAX_TEXT, &r->negative_prompt, e) < 0) return -1;
    long long v;
    int rc;
    if ((rc = field_int(b, "steps", 1, SRV_MAX_STEPS, &v, e)) < 0) return -1;
    if (rc) g->steps = (int)v;
    double d;
    if ((rc = field_num(b, "cfg_scale", 0, 30, &d, e)) < 0) return -1;
    if (rc) g->cfg = (float)d;
    if (read_size(b, "width", 1, cfg, &g->width, e) < 0 || read_size(b, "height", 1, cfg, &g->height, e) < 0) return -1;
    if (read_seed(b, "seed", r, e)) return -1;
    long long bs = 1, ni = 1;
    if (field_int(b, "batch_size", 1, SRV_MAX_IMAGES, &bs, e) < 0 || field_int(b, "n_iter", 1, SRV_MAX_IMAGES, &ni, e) < 0)
        return -1;
    if (bs * ni > SRV_MAX_IMAGES)
        return srv_fail(e, 400, "batch_size", "batch_size x n_iter: %lld images, at most %d per request", bs * ni, SRV_MAX_IMAGES);
    r->batch_size = (int)bs, r->n_iter = (int)ni, r->n_images = (int)(bs * ni);
    char *name = NULL;
    const char *key = "sampler_name";
    if ((rc = field_str(b, key, 64, &name, e)) < 0) return -1;
    if (!rc && (rc = field_str(b, key = "sampler_index", 64, &name, e)) < 0) return -1;
    if (rc) {
        rc = a1111_sampler(key, name, r, e);
        free(name);
        if (rc) return -1;
    }
    name = NULL;
    if ((rc = field_str(b, "scheduler", 64, &name, e)) < 0) return -1;
    if (rc) {
        rc = a1111_scheduler(name, r, e);
        free(name);
        if (rc) return -1;
    }
    int flag = 0;
    if (field_bool(b, "enable_hr", &flag, e) < 0) return -1;
    if (flag) return srv_fail(e, 400, "enable_hr", "enable_hr: the hires. fix is not supported");
    if (img2img) {
        const cJSON *imgs = cJSON_GetObjectItemCaseSensitive(b, "init_images");
        if (!cJSON_IsArray(imgs) || cJSON_GetArraySize(imgs) < 1 || !cJSON_IsString(cJSON_GetArrayItem(imgs, 0)))
            return srv_fail(e, 400, "init_images", "init_images: expected a list with one base64 image");
        if (decode_image(cJSON_GetArrayItem(imgs, 0)->valuestring, "init_images[0]", &r->init, e) < 0) return -1;
        g->strength = 0.75;
        if ((rc = field_num(b, "denoising_strength", 0, 1, &d, e)) < 0) return -1;
        if (rc) {
            if (d <= 0) return srv_fail(e, 400, "denoising_strength", "denoising_strength: expected (0, 1], got %g", d);
            g->strength = d;
        }
        if (field_image(b, "mask", &r->mask, e) < 0) return -1;
    }
    const cJSON *scripts = cJSON_GetObjectItemCaseSensitive(b, "alwayson_scripts");
    if (scripts && !cJSON_IsNull(scripts)) {
        if (!cJSON_IsObject(scripts)) return srv_fail(e, 400, "alwayson_scripts", "alwayson_scripts: expected an object");
        const cJSON *cn = cJSON_GetObjectItemCaseSensitive(scripts, "controlnet");
        if (!cn) cn = cJSON_GetObjectItemCaseSensitive(scripts, "ControlNet");
        if (cn && !cJSON_IsNull(cn)) {
            const cJSON *args = cJSON_GetObjectItemCaseSensitive(cn, "args");
            if (!cJSON_IsArray(args))
                return srv_fail(e, 400, "alwayson_scripts.controlnet.args", "alwayson_scripts.controlnet.args: expected a list of units");
            int i = 0, seen = 0;
            const cJSON *u;
            cJSON_ArrayForEach(u, args) if (controlnet_unit(u, i++, r, &seen, e)) return -1;
        }
    }
    return 0;
}

srv_request *srv_parse_a1111(const cJSON *body, int img2img, const srv_config *cfg, srv_err *e) {
    memset(e, 0, sizeof *e);
    srv_request *r = request_new(e);
    if (!r) return NULL;
    r->a1111 = 1;
    r->gp.precision = cfg->precision;
    if (parse_a1111(body, img2img, cfg, r, e) || echo(r, body, e)) {
        srv_request_free(r);
        return NULL;
    }
    /* as A1111: the init images and mask are not echoed; the defaults are */
    cJSON_DeleteItemFromObjectCaseSensitive(r->params, "init_images");
    cJSON_DeleteItemFromObjectCaseSensitive(r->params, "mask");
    cJSON *p = r->params;
    echo_set_str(p, "prompt", r->prompt ? r->prompt : "");
    echo_set_str(p, "negative_prompt", r->negative_prompt ? r->negative_prompt : "");
    if (!cJSON_GetObjectItemCaseSensitive(p, "seed")) cJSON_AddNumberToObject(p, "seed", -1);
    echo_set_num(p, "steps", r->gp.steps);
    echo_set_num(p, "cfg_scale", r->gp.cfg);
    echo_set_num(p, "width", r->gp.width);
    echo_set_num(p, "height", r->gp.height);
    echo_set_num(p, "batch_size", r->batch_size);
    echo_set_num(p, "n_iter", r->n_iter);
    echo_set_str(p, "sampler_name", r->sampler_label);
    if (img2img) echo_set_num(p, "denoising_strength", r->gp.strength);
    bind_params(r);
    return r;
}
