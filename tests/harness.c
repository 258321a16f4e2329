#include "harness.h"

#include "kernels/bf16.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <fnmatch.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/fileio.h"

static int n_pass, n_fail;

const char *th_golden(void) {
    const char *env = getenv("IS_GOLDEN_DIR");
    return (env && *env) ? env : IS_GOLDEN_DEFAULT;
}

char *th_golden_path(const char *rel) { return is_path_join(th_golden(), rel); }

const char *th_tmpdir(void) {
    static char dir[4096];
    if (!dir[0]) {
        snprintf(dir, sizeof dir, "%s/test-tmp", IS_BINARY_DIR);
        mkdir(dir, 0755);
    }
    return dir;
}

char *th_case_path(const char *group, const char *rel) {
    char buf[4096];
    snprintf(buf, sizeof buf, "%s/cases/%s/%s", th_golden(), group, rel);
    return strdup(buf);
}

cJSON *th_load_cases(const char *group) {
    char *path = th_case_path(group, "cases.json");
    char *text = NULL;
    size_t n = 0;
    is_error *e = is_read_file(path, 64u << 20, &text, &n);
    if (e) {
        fprintf(stderr, "FATAL: %s (set IS_GOLDEN_DIR to the golden folder)\n", is_error_message(e));
        is_error_free(e);
        free(path);
        n_fail++;
        exit(th_done());
    }
    cJSON *root = cJSON_ParseWithLength(text, n);
    free(text);
    if (!root) {
        fprintf(stderr, "FATAL: %s: invalid JSON\n", path);
        free(path);
        n_fail++;
        exit(th_done());
    }
    free(path);
    return root;
}

is_st *th_open_expected(const char *group, const char *file) {
    char *path = th_case_path(group, file);
    is_st *st = NULL;
    is_error *e = is_st_open(path, &st);
    free(path);
    if (!th_ok(e, file)) return NULL;
    return st;
}

void th_check(int ok, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    if (ok) {
        n_pass++;
    } else {
        n_fail++;
        fprintf(stderr, "FAIL: ");
        vfprintf(stderr, fmt, ap);
        fprintf(stderr, "\n");
    }
    va_end(ap);
}

int th_ok(is_error *err, const char *what) {
    if (!err) {
        n_pass++;
        return 1;
    }
    n_fail++;
    fprintf(stderr, "FAIL: %s: unexpected error: %s\n", what, is_error_message(err));
    is_error_free(err);
    return 0;
}

int th_fails(is_error *err, const char *needle, const char *what) {
    if (!err) {
        n_fail++;
        fprintf(stderr, "FAIL: %s: expected an error, got success\n", what);
        return 0;
    }
    const char *msg = is_error_message(err);
    int ok = !needle || strstr(msg, needle) != NULL;
    if (ok) {
        n_pass++;
        printf("  ok (expected error) %s: %s\n", what, msg);
    } else {
        n_fail++;
        fprintf(stderr, "FAIL: %s: error message '%s' does not mention '%s'\n", what, msg, needle);
    }
    is_error_free(err);
    return ok;
}

int th_close_f32(const char *what, const float *got, const float *expected, size_t n, double atol,
                 double rtol) {
    size_t worst = 0, bad = 0;
    double worst_excess = -INFINITY, max_abs = 0;
    for (size_t i = 0; i < n; i++) {
        double g = got[i], x = expected[i], d = fabs(g - x);
        double limit = atol + rtol * fabs(x);
        if (!(d <= limit)) bad++; /* NaN counts as bad */
        double excess = isnan(d) ? INFINITY : d - limit;
        if (excess > worst_excess) worst_excess = excess, worst = i;
        if (d > max_abs || isnan(d)) max_abs = isnan(d) ? INFINITY : d;
    }
    if (bad) {
        n_fail++;
        fprintf(stderr, "FAIL: %s: %zu of %zu elements out of tolerance (atol %g, rtol %g); worst at [%zu]: got %.9g "
                "expected %.9g (diff %.3g); max abs diff %.3g\n", what, bad, n, atol, rtol, worst, got[worst],
                expected[worst], fabs((double)got[worst] - expected[worst]), max_abs);
        return 0;
    }
    n_pass++;
    printf("  ok %s: %zu elements, max abs diff %.3g (atol %g)\n", what, n, max_abs, atol);
    return 1;
}

int th_close(const char *what, const float *got, size_t n, const is_tensor *expected, double atol, double rtol) {
    if (!expected) {
        th_check(0, "%s: expected tensor missing", what);
        return 0;
    }
    if ((size_t)expected->numel != n) {
        char sh[128];
        th_check(0, "%s: got %zu elements, expected %lld (shape %s)", what, n, (long long)expected->numel,
                 is_shape_str(expected->shape, expected->ndim, sh, sizeof sh));
        return 0;
    }
    float *exp = is_tensor_dup_f32(expected);
    int ok = th_close_f32(what, got, exp, n, atol, rtol);
    free(exp);
    return ok;
}

th_rel_stats th_rel_measure(const float *got, const float *expected, size_t n) {
    double d2 = 0, e2 = 0, mx = 0;
    int nan = 0;
    for (size_t i = 0; i < n; i++) {
        double g = got[i], x = expected[i], d = g - x;
        if (isnan(d)) nan = 1;
        d2 += d * d;
        e2 += x * x;
        if (fabs(d) > mx) mx = fabs(d);
    }
    th_rel_stats s;
    s.rms = n ? sqrt(e2 / (double)n) : 0;
    s.max_abs = nan ? INFINITY : mx;
    s.rel_l2 = nan ? INFINITY : e2 > 0 ? sqrt(d2 / e2) : d2 > 0 ? INFINITY : 0;
    return s;
}

int th_close_rel_f32(const char *what, const float *got, const float *expected, size_t n, double rel_l2,
                     double max_rms, double atol) {
    th_rel_stats s = th_rel_measure(got, expected, n);
    double max_limit = atol + max_rms * rel_l2 * s.rms;
    int ok = s.rel_l2 <= rel_l2 && s.max_abs <= max_limit;
    double max_over_rms = s.rms > 0 ? s.max_abs / s.rms : (s.max_abs > 0 ? INFINITY : 0);
    if (!ok) {
        n_fail++;
        fprintf(stderr, "FAIL: %s: %zu elements: relative L2 %.3g (limit %.3g), max abs diff %.3g (limit %.3g = %g + "
                "%g x %.3g x rms %.3g)\n", what, n, s.rel_l2, rel_l2, s.max_abs, max_limit, atol, max_rms, rel_l2,
                s.rms);
        return 0;
    }
    n_pass++;
    printf("  ok rel %s: %zu elements, relative L2 %.3g (limit %.3g, margin %.1fx), max|diff|/rms %.3g (limit %.3g)\n",
           what, n, s.rel_l2, rel_l2, s.rel_l2 > 0 ? rel_l2 / s.rel_l2 : INFINITY, max_over_rms,
           s.rms > 0 ? max_limit / s.rms : INFINITY);
    return 1;
}

int th_close_rel(const char *what, const float *got, size_t n, const is_tensor *expected, double rel_l2,
                 double max_rms, double atol) {
    if (!expected) {
        th_check(0, "%s: expected tensor missing", what);
        return 0;
    }
    if ((size_t)expected->numel != n) {
        th_check(0, "%s: got %zu elements, expected %lld", what, n, (long long)expected->numel);
        return 0;
    }
    float *exp = is_tensor_dup_f32(expected);
    int ok = th_close_rel_f32(what, got, exp, n, rel_l2, max_rms, atol);
    free(exp);
    return ok;
}

double th_bf16_excess(const float *got, size_t n, const is_tensor *expected, double rel_l2, double atol) {
    if (!expected || (size_t)expected->numel != n) return INFINITY;
    float *exp = is_tensor_dup_f32(expected);
    th_rel_stats s = th_rel_measure(got, exp, n);
    free(exp);
    if (rel_l2 <= 0) return atol > 0 ? s.max_abs / atol : (s.max_abs > 0 ? INFINITY : 0);
    double a = s.rel_l2 / rel_l2, b = s.max_abs / (atol + TH_BF16_MAX_RMS * rel_l2 * s.rms);
    return a > b ? a : b;
}

/* bf16 tolerances (docs/PRECISION.md): rel_l2 = S * e1 * sqrt(D), e1 = sqrt(2/3) * 2^-8 the rms relative
 * error of one product stage whose two operands are rounded to bf16, D the number of product stages (matrix
 * products, convolutions, the two products of an attention) on the longest path from the network's input
 * to the tensor, S = 2 a safety factor. D = 0: no bf16 product on the path, the f32 tolerance applies. */
#define TH_BF16_SAFETY 2.0
static const struct {
    const char *group, *name;
    int depth;
} bf16_depths[] = {
    /* UNet (tiny SDXL: blocks 32/32/64, transformer layers 1/1/2, 2 resnets down, 3 up) */
    {"unet", "t_emb", 0}, {"unet", "time_ids_emb", 0}, {"unet", "time_emb", 2}, {"unet", "aug_emb", 2},
    {"unet", "ip_tokens", 1}, {"unet", "conv_in", 1}, {"unet", "down_blocks.0", 6}, {"unet", "down_blocks.1", 35},
    {"unet", "down_blocks.2", 83}, {"unet", "mid_block", 109}, {"unet", "up_blocks.0", 182},
    {"unet", "up_blocks.1", 225}, {"unet", "up_blocks.2", 231}, {"unet", "noise_pred", 232},
    /* ControlNet (the tiny UNet's down path and mid block; the conditioning embedding, 8 convolutions, joins
     * conv_in) and the UNet step taking its residuals */
    {"controlnet", "cn.time_emb", 2}, {"controlnet", "cn.aug_emb", 2}, {"controlnet", "cn.conv_in", 1},
    {"controlnet", "cn.cond_embedding", 8}, {"controlnet", "cn.mid_block", 116},
    {"controlnet", "down_block_res_samples.0", 9}, {"controlnet", "down_block_res_samples.1", 11},
    {"controlnet", "down_block_res_samples.2", 13}, {"controlnet", "down_block_res_samples.3", 14},
    {"controlnet", "down_block_res_samples.4", 28}, {"controlnet", "down_block_res_samples.5", 42},
    {"controlnet", "down_block_res_samples.6", 43}, {"controlnet", "down_block_res_samples.7", 67},
    {"controlnet", "down_block_res_samples.8", 91}, {"controlnet", "mid_block_res_sample", 117},
    {"controlnet", "noise_pred", 240}, {"controlnet", "noise_pred_without_control", 232},
    /* VAE (blocks 32/32/64/64, 1 resnet per encoder block, 2 per decoder block, mid-block attention) */
    {"vae", "latents", 0}, {"vae", "z", 0}, {"vae", "post_quant_conv", 1}, {"vae", "decoder.conv_in", 2},
    {"vae", "decoder.mid_block", 10}, {"vae", "image", 30}, {"vae", "image_pt", 30}, {"vae", "image_u8", 30},
    {"vae", "encoder.down_blocks.1", 7}, {"vae", "encoder.down_blocks.2", 10}, {"vae", "encoder.down_blocks.3", 12},
    {"vae", "encoder.mid_block", 20}, {"vae", "encoder.conv_out", 21}, {"vae", "moments", 22}, {"vae", "mean", 22},
    {"vae", "logvar", 22}, {"vae", "std", 22},
    /* CLIP text encoders (3 layers each; the prompt embeddings are hidden_states[-2]) */
    {"text_encoders", "prompt_embeds", 12}, {"text_encoders", "negative_prompt_embeds", 12},
    {"text_encoders", "pooled_prompt_embeds", 19}, {"text_encoders", "negative_pooled_prompt_embeds", 19},
    {"text_encoders", "input_ids_1", 0}, {"text_encoders", "input_ids_2", 0},
    {"text_encoders", "negative_input_ids_1", 0}, {"text_encoders", "negative_input_ids_2", 0},
    /* CLIP vision encoder (patch conv + 2 layers) */
    {"image_encoder", "penultimate_hidden_state", 7}, {"image_encoder", "last_hidden_state", 13},
    {"image_encoder", "image_embeds", 14},
};

double th_bf16_tolerance(const char *group, const char *name) {
    for (size_t i = 0; i < sizeof bf16_depths / sizeof bf16_depths[0]; i++)
        if (!strcmp(bf16_depths[i].group, group) && !strcmp(bf16_depths[i].name, name))
            return TH_BF16_SAFETY * sqrt(2.0 / 3.0) / 256.0 * sqrt((double)bf16_depths[i].depth);
    th_check(0, "no bf16 tolerance for %s tensor '%s'", group, name);
    return 0;
}

void th_tolerance(const cJSON *c, const char *name, double *atol, double *rtol) {
    *atol = 0;
    *rtol = 0;
    const cJSON *tol = cJSON_GetObjectItemCaseSensitive(c, "tolerance");
    const cJSON *t = tol ? cJSON_GetObjectItemCaseSensitive(tol, name) : NULL;
    const cJSON *a = t ? cJSON_GetObjectItemCaseSensitive(t, "atol") : NULL;
    const cJSON *r = t ? cJSON_GetObjectItemCaseSensitive(t, "rtol") : NULL;
    if (!cJSON_IsNumber(a)) {
        th_check(0, "no tolerance for tensor '%s' in the case", name);
        return;
    }
    *atol = a->valuedouble;
    *rtol = cJSON_IsNumber(r) ? r->valuedouble : 0.0;
}

const is_tensor *th_tensor(const is_st *st, const char *name) {
    const is_tensor *t = st ? is_st_find(st, name) : NULL;
    if (!t) th_check(0, "expected tensor '%s' not in golden file", name);
    return t;
}

/* The edited bytes of tensor t (malloc'ed), or NULL when the edit does not apply. */
static void *bug_bytes(const is_tensor *t, th_bug_kind kind, is_dtype *dt) {
    size_t es = is_dtype_size(t->dtype);
    *dt = t->dtype;
    if (kind == TH_BUG_ZERO) return calloc(1, t->nbytes ? t->nbytes : 1);
    if (kind == TH_BUG_NAN) {
        if (t->dtype != IS_DT_F32 && t->dtype != IS_DT_F16 && t->dtype != IS_DT_BF16) return NULL;
        unsigned char *p = malloc(t->nbytes ? t->nbytes : 1);
        for (size_t i = 0; i < t->nbytes; i += es) {
            if (t->dtype == IS_DT_F32) memcpy(p + i, &(uint32_t){0x7fc00000u}, 4);
            else memcpy(p + i, &(uint16_t){t->dtype == IS_DT_F16 ? 0x7e00u : 0x7fc0u}, 2);
        }
        return p;
    }
    if (kind == TH_BUG_F16_AS_BF16) {
        if (t->dtype != IS_DT_F16) return NULL;
        *dt = IS_DT_BF16;
        void *p = malloc(t->nbytes);
        memcpy(p, t->data, t->nbytes);
        return p;
    }
    const char *src = t->data;
    char *p = malloc(t->nbytes ? t->nbytes : 1);
    if (t->ndim == 2 && t->shape[0] == t->shape[1]) {
        int64_t n = t->shape[0];
        for (int64_t i = 0; i < n; i++)
            for (int64_t j = 0; j < n; j++) memcpy(p + (size_t)(j * n + i) * es, src + (size_t)(i * n + j) * es, es);
        return p;
    }
    if (t->ndim == 4) {
        int64_t co = t->shape[0], ci = t->shape[1], kh = t->shape[2], kw = t->shape[3], k = kh * kw;
        if (co == ci) {
            for (int64_t o = 0; o < co; o++)
                for (int64_t i = 0; i < ci; i++)
                    memcpy(p + (size_t)((i * ci + o) * k) * es, src + (size_t)((o * ci + i) * k) * es, (size_t)k * es);
            return p;
        }
        if (kh == kw && kh > 1) {
            for (int64_t oi = 0; oi < co * ci; oi++)
                for (int64_t y = 0; y < kh; y++)
                    for (int64_t x = 0; x < kw; x++)
                        memcpy(p + (size_t)(oi * k + x * kw + y) * es, src + (size_t)(oi * k + y * kw + x) * es, es);
            return p;
        }
    }
    free(p);
    return NULL;
}

char *th_bugged_model(const char *src_dir, const char *weights_file, const char *name, const th_bug_edit *edits,
                      int n_edits) {
    char *dir = is_path_join(th_tmpdir(), name), *src = is_path_join(src_dir, weights_file);
    char *dst = is_path_join(dir, weights_file);
    mkdir(dir, 0755);
    DIR *dp = opendir(src_dir);
    struct dirent *ent;
    while (dp && (ent = readdir(dp))) {
        if (ent->d_name[0] == '.' || !strcmp(ent->d_name, weights_file)) continue;
        char *from = is_path_join(src_dir, ent->d_name), *to = is_path_join(dir, ent->d_name);
        unlink(to);
        if (symlink(from, to) != 0) th_check(0, "link %s", to);
        free(from);
        free(to);
    }
    if (dp) closedir(dp);
    is_st *st = NULL;
    int ok = th_ok(is_st_open(src, &st), src), applied = 0, used[16] = {0};
    is_st_writer *w = ok ? is_st_writer_new() : NULL;
    for (size_t i = 0; ok && i < is_st_count(st); i++) {
        const is_tensor *t = is_st_at(st, i);
        void *edited = NULL;
        is_dtype dt = t->dtype;
        for (int e = 0; e < n_edits && e < 16 && !edited; e++)
            if (!fnmatch(edits[e].tensor, t->name, 0)) { /* a name or a pattern: "*.conv2.bias" */
                edited = bug_bytes(t, edits[e].kind, &dt);
                if (!edited) th_check(0, "%s: simulated bug %d does not apply to this tensor", t->name, edits[e].kind);
                else used[e] = 1;
            }
        is_error *e = is_st_writer_add(w, t->name, dt, t->ndim, t->shape, edited ? edited : t->data);
        if (e) ok = th_ok(e, t->name); /* counts failures only: one check per model, not per tensor */
        free(edited);
    }
    for (int e = 0; e < n_edits && e < 16; e++) applied += used[e];
    th_check(applied == n_edits, "%s: %d of %d simulated-bug edits matched a tensor", name, applied, n_edits);
    if (ok) ok = th_ok(is_st_writer_save(w, dst), dst);
    is_st_writer_free(w);
    is_st_close(st);
    free(src);
    free(dst);
    if (!ok || applied != n_edits) {
        free(dir);
        return NULL;
    }
    return dir;
}

int th_done(void) {
    printf("%d passed, %d failed\n", n_pass, n_fail);
    return n_fail ? 1 : 0;
}

void th_bug_verdict(int must_fail, const char *what, const char *worst_name, double worst) {
    if (must_fail)
        th_check(worst > 1, "simulated bug (%s) passes the bf16 tolerances (worst: %s at %.2fx its limit)", what,
                 worst_name, worst);
    printf("  sensitivity: %s: %s at %.2fx its bf16 limit%s\n", what, worst_name, worst,
           must_fail ? "" : " (reported, not required)");
}

float th_frand(uint64_t *state) {
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    return (float)((*state >> 40) * (1.0 / (double)(1ull << 23))) - 1.0f;
}

is_tensor th_weight(is_dtype dt, int ndim, const int64_t *shape, const float *values) {
    is_tensor t;
    memset(&t, 0, sizeof t);
    t.name = "test.weight";
    t.file = "test";
    t.dtype = dt;
    t.ndim = ndim;
    t.numel = 1;
    for (int i = 0; i < ndim; i++) t.shape[i] = shape[i], t.numel *= shape[i];
    t.nbytes = (size_t)t.numel * is_dtype_size(dt);
    void *data = malloc(t.nbytes ? t.nbytes : 1);
    for (int64_t i = 0; i < t.numel; i++) {
        if (dt == IS_DT_F32) ((float *)data)[i] = values[i];
        else if (dt == IS_DT_F16) ((uint16_t *)data)[i] = is_f32_to_f16(values[i]);
        else ((uint16_t *)data)[i] = is_f32_to_bf16(values[i]);
    }
    t.data = data;
    return t;
}

void th_capture_hook(void *user, const char *name, int b, const float *data, int ndim, const int64_t *shape) {
    th_capture *cap = user;
    size_t numel = 1;
    for (int i = 0; i < ndim; i++) numel *= (size_t)shape[i];
    th_captured *c = NULL;
    for (int i = 0; i < cap->n; i++)
        if (!strcmp(cap->t[i].name, name)) c = &cap->t[i];
    if (!c) {
        if (cap->n == 40) return;
        c = &cap->t[cap->n++];
        snprintf(c->name, sizeof c->name, "%s", name);
        c->per_item = numel;
        c->data = calloc(numel * (size_t)cap->batch, sizeof(float));
    }
    if (c->data && c->per_item == numel && b >= 0 && b < cap->batch)
        memcpy(c->data + (size_t)b * numel, data, numel * sizeof(float));
}

const th_captured *th_capture_get(const th_capture *cap, const char *name) {
    for (int i = 0; i < cap->n; i++)
        if (!strcmp(cap->t[i].name, name)) return &cap->t[i];
    return NULL;
}

void th_capture_free(th_capture *cap) {
    for (int i = 0; i < cap->n; i++) free(cap->t[i].data);
    cap->n = 0;
}
