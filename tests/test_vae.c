/* VAE (tiny SDXL AutoencoderKL) against the goldens in cases/vae: untiled decodes with their
 * intermediates and post-processing, diffusers' tiled decode, encode with intermediates; diffusers'
 * tiled encode (no golden) against a plain second implementation built on untiled encodes; the
 * tiling decisions for the real SDXL VAE config; plus the load / argument error paths. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/fileio.h"
#include "core/safetensors.h"
#include "harness.h"
#include "instantstyle.h"
#include "tiny/tiny_model.h"
#include "vae/vae_internal.h" /* an is_vae holding only the SDXL config, and the workspace's size */

#define MAX_CHECKED 64

/* One case: its expectations and which of its outputs have been compared. */
typedef struct {
    const char *case_name;
    const cJSON *c;
    is_st *exp;
    char checked[MAX_CHECKED][64];
    int nchecked;
} case_ctx;

static int g_bf16;    /* compare with the bf16 tolerances (docs/PRECISION.md) */
static int g_measure; /* only measure (simulated bugs): the worst excess over the bf16 limits */
static double g_worst;
static char g_worst_name[64];

static void compare(case_ctx *cx, const char *name, const float *data, int ndim, const int64_t *shape) {
    const is_tensor *t = is_st_find(cx->exp, name);
    if (!t) return; /* an intermediate the golden does not store */
    char what[160];
    snprintf(what, sizeof what, "%s%s %s", cx->case_name, g_bf16 ? " [bf16]" : "", name);
    int same = ndim + 1 == t->ndim && t->shape[0] == 1; /* golden [1,...]; ours excludes the batch axis */
    for (int i = 0; same && i < ndim; i++) same = shape[i] == t->shape[i + 1];
    double atol = 0, rtol = 0;
    int64_t n = 1;
    for (int i = 0; i < ndim; i++) n *= shape[i];
    if (g_measure) {
        th_tolerance(cx->c, name, &atol, &rtol);
        double x = th_bf16_excess(data, (size_t)n, t, th_bf16_tolerance("vae", name), atol);
        if (x > g_worst) g_worst = x, snprintf(g_worst_name, sizeof g_worst_name, "%s", name);
        if (cx->nchecked < MAX_CHECKED) snprintf(cx->checked[cx->nchecked++], 64, "%s", name);
        return;
    }
    th_check(same, "%s: shape matches the golden", what);
    th_tolerance(cx->c, name, &atol, &rtol);
    double rel = g_bf16 ? th_bf16_tolerance("vae", name) : 0;
    if (rel > 0) th_close_rel(what, data, (size_t)n, t, rel, TH_BF16_MAX_RMS, atol);
    else th_close(what, data, (size_t)n, t, atol, rtol);
    if (cx->nchecked < MAX_CHECKED) snprintf(cx->checked[cx->nchecked++], 64, "%s", name);
}

static void on_tensor(void *user, const char *name, int batch_index, const float *data, int ndim,
                      const int64_t *shape) {
    th_check(batch_index == 0, "hook batch index 0 for %s", name);
    compare(user, name, data, ndim, shape);
}

/* Every output listed in the case (except the input `input_name`) must have been compared. */
static void all_outputs_checked(const case_ctx *cx, const char *input_name) {
    const cJSON *outs = cJSON_GetObjectItemCaseSensitive(cx->c, "outputs");
    for (const cJSON *o = outs ? outs->child : NULL; o; o = o->next) {
        if (!strcmp(o->string, input_name)) continue;
        int found = 0;
        for (int i = 0; i < cx->nchecked && !found; i++) found = !strcmp(cx->checked[i], o->string);
        th_check(found, "%s: output '%s' was compared", cx->case_name, o->string);
    }
}

static float *input_f32(case_ctx *cx, const char *name, int64_t *shape4) {
    const is_tensor *t = th_tensor(cx->exp, name);
    if (!t || t->ndim != 4 || t->shape[0] != 1) {
        th_check(0, "%s: input %s has shape [1,C,H,W]", cx->case_name, name);
        return NULL;
    }
    memcpy(shape4, t->shape, 4 * sizeof(int64_t));
    return is_tensor_dup_f32(t);
}

static void decode_case(is_vae *v, case_ctx *cx, int tiled) {
    int64_t s[4];
    float *latents = input_f32(cx, "latents", s);
    if (!latents) return;
    int h = (int)s[2], w = (int)s[3], H = 8 * h, W = 8 * w;
    int64_t n = 3 * (int64_t)H * W, shape[3] = {3, H, W};
    float *image = malloc((size_t)n * sizeof(float));
    is_vae_options opt = {tiled ? 1 : 0, on_tensor, cx};
    th_check(is_vae_decode_will_tile(v, h, w, opt.tiling) == tiled, "%s: tiling decision", cx->case_name);
    th_check(is_vae_decode_will_tile(v, h, w, -1) == 0, "%s: automatic mode does not tile a tiny decode", cx->case_name);
    if (th_ok(is_vae_decode(v, latents, h, w, &opt, image), cx->case_name)) {
        compare(cx, "latents", latents, 3, s + 1); /* the input itself, read back */
        if (!tiled) {
            float *u = malloc((size_t)n * sizeof(float));
            is_vae_options automatic = {-1, NULL, NULL};
            th_ok(is_vae_decode(v, latents, h, w, &automatic, u), "automatic decode");
            th_check(!memcmp(u, image, (size_t)n * sizeof(float)), "%s: automatic == untiled", cx->case_name);
            free(u);
            is_image_postprocess(image, n);
            compare(cx, "image_pt", image, 3, shape);
            uint8_t *rgb = malloc((size_t)n);
            is_image_to_u8_hwc(image, H, W, rgb);
            float *rgbf = malloc((size_t)n * sizeof(float));
            for (int64_t i = 0; i < n; i++) rgbf[i] = rgb[i];
            int64_t hwc[3] = {H, W, 3};
            compare(cx, "image_u8", rgbf, 3, hwc);
            free(rgb);
            free(rgbf);
        } else {
            /* the untiled decode of the same latents really differs (README: by 0.814) */
            float *u = malloc((size_t)n * sizeof(float));
            is_vae_options never = {0, NULL, NULL};
            th_ok(is_vae_decode(v, latents, h, w, &never, u), "untiled decode of the tiled case");
            double md = 0;
            for (int64_t i = 0; i < n; i++) md = fmax(md, fabs((double)u[i] - image[i]));
            if (!g_bf16)
                th_check(fabs(md - 0.814) < 0.01, "%s: untiled differs by %.4f (README: 0.814)", cx->case_name, md);
            free(u);
        }
    }
    all_outputs_checked(cx, "");
    free(image);
    free(latents);
}

static void encode_case(is_vae *v, case_ctx *cx) {
    int64_t s[4];
    float *image = input_f32(cx, "image", s);
    if (!image) return;
    int H = (int)s[2], W = (int)s[3];
    int64_t shape[3] = {4, H / 8, W / 8}, n = 4 * (int64_t)(H / 8) * (W / 8);
    float *mean = malloc((size_t)n * sizeof(float)), *logvar = malloc((size_t)n * sizeof(float));
    is_vae_options opt = {0, on_tensor, cx};
    if (th_ok(is_vae_encode_ex(v, image, H, W, &opt, mean, logvar), cx->case_name)) {
        compare(cx, "image", image, 3, s + 1);
        compare(cx, "mean", mean, 3, shape);
        compare(cx, "logvar", logvar, 3, shape);
        for (int64_t i = 0; i < n; i++) logvar[i] = expf(0.5f * logvar[i]); /* DiagonalGaussianDistribution.std */
        compare(cx, "std", logvar, 3, shape);
        float *mean2 = malloc((size_t)n * sizeof(float));
        th_ok(is_vae_encode(v, image, H, W, mean2, NULL), "encode without hook, mean only");
        th_check(!memcmp(mean, mean2, (size_t)n * sizeof(float)), "encode is repeatable");
        free(mean2);
    }
    all_outputs_checked(cx, "");
    free(mean);
    free(logvar);
    free(image);
}

static void test_goldens(is_vae *v) {
    cJSON *cases = th_load_cases("vae");
    const cJSON *list = cJSON_GetObjectItemCaseSensitive(cases, "cases");
    int ncase = 0;
    for (const cJSON *c = list ? list->child : NULL; c; c = c->next, ncase++) {
        const char *name = cJSON_GetObjectItemCaseSensitive(c, "name")->valuestring;
        const char *file = cJSON_GetObjectItemCaseSensitive(c, "expected")->valuestring;
        case_ctx cx = {.case_name = name, .c = c, .exp = th_open_expected("vae", file)};
        if (!cx.exp) continue;
        printf("case %s\n", name);
        if (!strncmp(name, "decode_", 7))
            decode_case(v, &cx, 0);
        else if (!strncmp(name, "diffusers_tiled_decode_", 23))
            decode_case(v, &cx, 1);
        else if (!strncmp(name, "encode_", 7))
            encode_case(v, &cx);
        else
            th_check(0, "unknown vae case %s", name);
        is_st_close(cx.exp);
    }
    th_check(ncase == 5, "5 vae cases (got %d)", ncase);
    cJSON_Delete(cases);
}

static void test_basics(is_vae *v) {
    th_check(is_vae_scaling_factor(v) == 0.13025f, "scaling_factor");
    th_check(is_vae_latent_channels(v) == 4, "latent channels");
    th_check(is_vae_scale(v) == 8, "scale 8");
    /* untiled 8x8 decode: largest activation 32x64x64 floats (x3 buffers) + attention 4x64x64 */
    /* the largest step: the last block's resnet holds its input and hidden map, 32 ch x 64x64 each */
    th_check(is_vae_decode_workspace_bytes(v, 8, 8) == 2 * 32 * 64 * 64 * 4, "workspace bytes (%lld)",
             (long long)is_vae_decode_workspace_bytes(v, 8, 8));
    th_check(is_vae_decode_will_tile(v, 8, 8, 1) == 0, "tiling needs latents larger than one tile (8)");
    th_check(is_vae_decode_will_tile(v, 8, 9, 1) == 1, "tiling applies above one tile");
    th_check(is_vae_decode_will_tile(v, 8, 9, 0) == 0, "tiling 0 never tiles");
    /* image post-processing: clamp, and numpy's round-half-even (0.5/255*255 etc.) */
    float px[6] = {-3.0f, 3.0f, 0.0f, 2.0f * (0.5f / 255.0f) - 1.0f, 2.0f * (1.5f / 255.0f) - 1.0f, NAN};
    is_image_postprocess(px, 5);
    th_check(px[0] == 0.0f && px[1] == 1.0f && px[2] == 0.5f, "postprocess clamps and maps to [0,1]");
    float img01[3] = {0.5f / 255.0f, 1.5f / 255.0f, 2.5f / 255.0f};
    uint8_t rgb[3];
    is_image_to_u8_hwc(img01, 1, 1, rgb);
    th_check(rgb[0] == 0 && rgb[1] == 2 && rgb[2] == 2, "u8: round half to even (got %d %d %d)", rgb[0], rgb[1], rgb[2]);
}

/* ------------------------------------------------------------------ error paths */

static char *make_dir(const char *name) {
    char *dir = is_path_join(th_tmpdir(), name);
    mkdir(dir, 0755);
    return dir;
}

static void write_config_ex(const char *dir, const char *drop_field, const char *add_json);
static void write_config(const char *dir, const char *drop_field) { write_config_ex(dir, drop_field, NULL); }

/* Golden config minus one field, plus the fields of the JSON object add_json. */
static void write_config_ex(const char *dir, const char *drop_field, const char *add_json) {
    char *src = th_golden_path("models/tiny-sdxl/vae/config.json"), *text = NULL;
    size_t n = 0;
    th_ok(is_read_file(src, 1 << 20, &text, &n), "read vae config");
    cJSON *root = cJSON_Parse(text);
    if (drop_field) cJSON_DeleteItemFromObjectCaseSensitive(root, drop_field);
    cJSON *add = add_json ? cJSON_Parse(add_json) : NULL;
    for (cJSON *it = add ? add->child : NULL; it; it = it->next) {
        cJSON_DeleteItemFromObjectCaseSensitive(root, it->string);
        cJSON_AddItemToObject(root, it->string, cJSON_Duplicate(it, 1));
    }
    cJSON_Delete(add);
    char *out = cJSON_Print(root), *path = is_path_join(dir, "config.json");
    th_ok(is_write_file_atomic(path, out, strlen(out)), "write crafted config");
    free(path);
    free(out);
    cJSON_Delete(root);
    free(text);
    free(src);
}

/* A copy of the tiny VAE weights with one tensor replaced by a zero tensor of another shape. */
static void write_weights(const char *dir, const char *bad_name, int ndim, const int64_t *bad_shape) {
    char *src = th_golden_path("models/tiny-sdxl/vae/diffusion_pytorch_model.safetensors");
    is_st *st = NULL;
    if (!th_ok(is_st_open(src, &st), src)) {
        free(src);
        return;
    }
    is_st_writer *w = is_st_writer_new();
    for (size_t i = 0; i < is_st_count(st); i++) {
        const is_tensor *t = is_st_at(st, i);
        if (!strcmp(t->name, bad_name)) {
            int64_t n = 1;
            for (int d = 0; d < ndim; d++) n *= bad_shape[d];
            float *zeros = calloc((size_t)n, sizeof(float));
            th_ok(is_st_writer_add_f32(w, t->name, ndim, bad_shape, zeros), "add crafted tensor");
            free(zeros);
        } else {
            th_ok(is_st_writer_add(w, t->name, t->dtype, t->ndim, t->shape, t->data), "copy tensor");
        }
    }
    char *path = is_path_join(dir, "diffusion_pytorch_model.safetensors");
    th_ok(is_st_writer_save(w, path), "save crafted weights");
    free(path);
    is_st_writer_free(w);
    is_st_close(st);
    free(src);
}

typedef struct {
    float z[4 * 2 * 3];
    int seen;
} z_capture;

static void capture_z(void *user, const char *name, int batch_index, const float *data, int ndim,
                      const int64_t *shape) {
    z_capture *c = user;
    if (strcmp(name, "z") != 0) return;
    memcpy(c->z, data, sizeof c->z);
    c->seen = 1;
}

/* With latents_mean/std in the config, z = latents * std / scaling_factor + mean (SDXL pipeline). */
static void test_latents_stats(void) {
    char *dir = make_dir("vae_latents_stats");
    write_config_ex(dir, NULL, "{\"latents_mean\": [0.1, 0.2, 0.3, 0.4], \"latents_std\": [2, 3, 4, 5]}");
    char *src = th_golden_path("models/tiny-sdxl/vae/diffusion_pytorch_model.safetensors");
    char *dst = is_path_join(dir, "diffusion_pytorch_model.safetensors");
    remove(dst);
    th_check(symlink(src, dst) == 0, "link weights");
    is_vae *v = NULL;
    if (th_ok(is_vae_load(dir, &v), "load VAE with latents_mean/std")) {
        float lat[4 * 2 * 3], img[3 * 16 * 24];
        for (int i = 0; i < 24; i++) lat[i] = 0.37f * (float)(i - 11);
        z_capture cap = {{0}, 0};
        is_vae_options opt = {0, capture_z, &cap};
        th_ok(is_vae_decode(v, lat, 2, 3, &opt, img), "decode 2x3 with latents stats");
        const float mean[4] = {0.1f, 0.2f, 0.3f, 0.4f}, sd[4] = {2, 3, 4, 5};
        int ok = cap.seen;
        for (int i = 0; i < 24; i++) ok &= cap.z[i] == lat[i] * sd[i / 6] / 0.13025f + mean[i / 6];
        th_check(ok, "z = latents * latents_std / scaling_factor + latents_mean");
        is_vae_free(v);
    }
    write_config_ex(dir, NULL, "{\"latents_mean\": [0.1, 0.2, 0.3]}");
    th_fails(is_vae_load(dir, &v), "latents_mean", "latents_mean of the wrong length");
    free(src);
    free(dst);
    free(dir);
}

static void test_errors(is_vae *v) {
    is_vae *bad = NULL;
    char *dir = make_dir("vae_missing_field");
    write_config(dir, "scaling_factor");
    th_fails(is_vae_load(dir, &bad), "scaling_factor", "config without scaling_factor");
    th_check(bad == NULL, "no vae on failure");
    write_config(dir, "block_out_channels");
    th_fails(is_vae_load(dir, &bad), "block_out_channels", "config without block_out_channels");
    write_config(dir, NULL);
    th_fails(is_vae_load(dir, &bad), "diffusion_pytorch_model.safetensors", "missing weights file");
    free(dir);

    /* A VAE for other than RGB images, weights and config consistent: refused at load (the pipeline's images
     * and the API's encode input are [3, H, W]; such a VAE read past the init image and wrote past the output). */
    for (int k = 0; k < 2; k++) {
        tm_spec spec;
        tm_spec_default(&spec);
        *(k ? &spec.vae.out_channels : &spec.vae.in_channels) = 4;
        dir = make_dir(k ? "vae_out_4" : "vae_in_4");
        if (th_ok(tm_write_vae(dir, &spec.vae, 5), "write a 4-channel VAE")) {
            th_fails(is_vae_load(dir, &bad), k ? "in_channels 3 / out_channels 4: only RGB images" :
                     "in_channels 4 / out_channels 3: only RGB images", k ? "VAE with out_channels 4" : "VAE with in_channels 4");
            th_check(bad == NULL, "no vae on failure");
        }
        free(dir);
    }

    dir = make_dir("vae_bad_shape");
    write_config(dir, NULL);
    int64_t shape[4] = {32, 64, 3, 3}; /* a 3x3 kernel where the 1x1 conv_shortcut belongs */
    write_weights(dir, "decoder.up_blocks.2.resnets.0.conv_shortcut.weight", 4, shape);
    th_fails(is_vae_load(dir, &bad), "'decoder.up_blocks.2.resnets.0.conv_shortcut.weight' has shape [32, 64, 3, 3], expected [32, 64, 1, 1]",
             "wrong-shaped weight");
    int64_t attn[2] = {64, 32};
    write_weights(dir, "encoder.mid_block.attentions.0.to_k.weight", 2, attn);
    th_fails(is_vae_load(dir, &bad), "encoder.mid_block.attentions.0.to_k.weight", "wrong-shaped attention weight");
    free(dir);

    float lat[4 * 8 * 8] = {0}, img[3 * 64 * 64];
    th_fails(is_vae_decode(v, lat, 0, 8, NULL, img), "latents size 0x8 is invalid", "h = 0");
    th_fails(is_vae_decode(v, lat, 8, -1, NULL, img), "invalid", "w = -1");
    is_vae_options o = {2, NULL, NULL};
    th_fails(is_vae_decode(v, lat, 8, 8, &o, img), "tiling", "tiling = 2");
    th_fails(is_vae_decode(v, NULL, 8, 8, NULL, img), "NULL", "NULL latents");
    th_fails(is_vae_encode(v, img, 60, 64, lat, NULL), "multiples of 8", "encode 60x64");
    th_fails(is_vae_encode(v, img, 0, 64, lat, NULL), "invalid", "encode 0x64");
    th_fails(is_vae_encode_ex(v, img, 64, 64, &o, lat, NULL), "tiling", "encode tiling = 2");
}

/* Sensitivity: bugs of the kinds a bf16 path can have, simulated in the f32 VAE, must fail the bf16
 * tolerances on decode_8x8 / encode_64x64 (docs/PRECISION.md). The VAE stores F32: no f16 misread. */
static void test_bf16_sensitivity(void) {
    static const th_bug_case bugs[] = {
        {1, "wrong layout: one 3x3 conv with Cin/Cout swapped (decoder.up_blocks.3.resnets.1.conv2)",
         {{"decoder.up_blocks.3.resnets.1.conv2.weight", TH_BUG_TRANSPOSE}}, 1},
        {1, "wrong layout: decoder conv_out's kernel transposed", {{"decoder.conv_out.weight", TH_BUG_TRANSPOSE}}, 1},
        {1, "wrong layout: mid-block attention to_q transposed (decoder)",
         {{"decoder.mid_block.attentions.0.to_q.weight", TH_BUG_TRANSPOSE}}, 1},
        {1, "wrong layout: mid-block attention to_v transposed (encoder)",
         {{"encoder.mid_block.attentions.0.to_v.weight", TH_BUG_TRANSPOSE}}, 1},
        {1, "wrong layout: one 3x3 conv with Cin/Cout swapped (encoder.down_blocks.1.resnets.0.conv1)",
         {{"encoder.down_blocks.1.resnets.0.conv1.weight", TH_BUG_TRANSPOSE}}, 1},
        {1, "skipped residual: a resnet's shortcut dropped (decoder.up_blocks.2.resnets.0)",
         {{"decoder.up_blocks.2.resnets.0.conv_shortcut.weight", TH_BUG_ZERO},
          {"decoder.up_blocks.2.resnets.0.conv_shortcut.bias", TH_BUG_ZERO}}, 2},
        {1, "missing bias: every convolution", {{"*conv*.bias", TH_BUG_ZERO}}, 1},
        {1, "missing bias: every resnet's conv2 (the accumulating convolutions)", {{"*resnets.*.conv2.bias", TH_BUG_ZERO}}, 1},
        {1, "missing bias: the attention projections", {{"*attentions.0.to_*.bias", TH_BUG_ZERO}}, 1},
        {0, "missing bias: one 3x3 conv (decoder.up_blocks.3.resnets.1.conv2)",
         {{"decoder.up_blocks.3.resnets.1.conv2.bias", TH_BUG_ZERO}}, 1},
        {0, "missing bias: the decoder's mid-block attention output",
         {{"decoder.mid_block.attentions.0.to_out.0.bias", TH_BUG_ZERO}}, 1},
    };
    char *src = th_golden_path("models/tiny-sdxl/vae");
    cJSON *cases = th_load_cases("vae");
    const cJSON *list = cJSON_GetObjectItemCaseSensitive(cases, "cases");
    for (size_t i = 0; i < sizeof bugs / sizeof bugs[0]; i++) {
        char name[32];
        snprintf(name, sizeof name, "vae-bug-%zu", i);
        char *dir = th_bugged_model(src, "diffusion_pytorch_model.safetensors", name, bugs[i].e, bugs[i].n);
        is_vae *b = NULL;
        if (!dir || !th_ok(is_vae_load(dir, &b), "load the VAE with a simulated bug")) {
            free(dir);
            continue;
        }
        g_measure = 1;
        g_worst = 0;
        g_worst_name[0] = 0;
        for (const cJSON *c = list ? list->child : NULL; c; c = c->next) {
            const char *cn = cJSON_GetObjectItemCaseSensitive(c, "name")->valuestring;
            if (strcmp(cn, "decode_8x8") && strcmp(cn, "encode_64x64")) continue;
            case_ctx cx = {.case_name = cn, .c = c,
                           .exp = th_open_expected("vae", cJSON_GetObjectItemCaseSensitive(c, "expected")->valuestring)};
            if (!cx.exp) continue;
            if (cn[0] == 'd') decode_case(b, &cx, 0);
            else encode_case(b, &cx);
            is_st_close(cx.exp);
        }
        g_measure = 0;
        th_bug_verdict(bugs[i].must_fail, bugs[i].what, g_worst_name, g_worst);
        is_vae_free(b);
        free(dir);
    }
    cJSON_Delete(cases);
    free(src);
}

/* Every golden case again with the VAE in bf16 (docs/PRECISION.md), then f32 again. */
static void test_bf16(is_vae *v) {
    th_check(is_vae_precision(v) == IS_PRECISION_F32, "a loaded VAE runs in f32");
    if (is_precision_resolve(IS_PRECISION_BF16, NULL, 0) != IS_PRECISION_BF16) {
        printf("  no bf16 on this CPU: BF16 runs as f32, the bf16 cases are the f32 ones\n");
        return;
    }
    if (!th_ok(is_vae_set_precision(v, IS_PRECISION_BF16), "set_precision(BF16)")) return;
    th_check(is_vae_precision(v) == IS_PRECISION_BF16, "VAE precision bf16");
    g_bf16 = 1;
    test_goldens(v);
    g_bf16 = 0;
    if (th_ok(is_vae_set_precision(v, IS_PRECISION_F32), "set_precision(F32)")) {
        th_check(is_vae_precision(v) == IS_PRECISION_F32, "VAE precision f32 again");
        test_goldens(v); /* the f32 numbers again */
    }
    test_bf16_sensitivity();
}

/* ------------------------------------------------------------------ tiled encode (no golden) */

/* A smooth pattern plus pixel noise in [-1,1]: deterministic, different at every pixel. */
static float *test_image(int H, int W) {
    float *img = malloc((size_t)3 * H * W * sizeof(float));
    uint32_t r = 12345u;
    for (int c = 0; c < 3; c++)
        for (int y = 0; y < H; y++)
            for (int x = 0; x < W; x++) {
                r = r * 1664525u + 1013904223u;
                float noise = ((float)(r >> 8) / 16777216.0f - 0.5f) * 0.3f;
                float v = 0.7f * sinf(0.13f * (float)x + 0.9f * (float)c) * cosf(0.07f * (float)y - 0.4f * (float)c);
                v += noise;
                img[((size_t)c * H + y) * W + x] = v < -1.0f ? -1.0f : v > 1.0f ? 1.0f : v;
            }
    return img;
}

typedef struct {
    float *m; /* a copy of the last "moments" seen */
    int64_t n;
} moments_capture;

static void capture_moments(void *user, const char *name, int batch_index, const float *data, int ndim,
                            const int64_t *shape) {
    moments_capture *c = user;
    if (strcmp(name, "moments") != 0) return;
    c->n = shape[0] * shape[1] * shape[2];
    free(c->m);
    c->m = malloc((size_t)c->n * sizeof(float));
    memcpy(c->m, data, (size_t)c->n * sizeof(float));
}

/* Untiled moments (before the clamp) of an H x W image, through the public hook. */
static float *untiled_moments(is_vae *v, const float *img, int H, int W) {
    moments_capture cap = {NULL, 0};
    is_vae_options o = {0, capture_moments, &cap};
    th_ok(is_vae_encode_ex(v, img, H, W, &o, NULL, NULL), "untiled encode of a tile");
    th_check(cap.n == 8 * (int64_t)(H / 8) * (W / 8), "moments of %dx%d: 8 x %d x %d", H, W, H / 8, W / 8);
    return cap.m;
}

static float clamp_logvar(float x) { return x < -30.0f ? -30.0f : x > 20.0f ? 20.0f : x; }

/* diffusers' tiled_encode once more, written plainly for the tiny VAE (sample_size 64, scale 8):
 * tiles of T = 64 pixels every O = int(64 * 0.75) = 48; tile_latent 8, blend E = int(8 * 0.25) = 2,
 * row_limit R = 8 - 2 = 6. Every tile's moments come from an UNTILED encode of its crop and are all
 * kept; then in raster order each is blended with the tile above and then the one to the left (both as
 * they are after their own blending), cropped to R x R, concatenated, and the logvar clamped.
 * clamp_first: the wrong order (clamp each tile before blending), to show the test can tell. */
static void reference_tiled(is_vae *v, const float *img, int H, int W, int clamp_first, float *mean, float *logvar) {
    enum { T = 64, O = 48, E = 2, R = 6, C = 8 };
    int nr = (H + O - 1) / O, nc = (W + O - 1) / O, h = H / 8, w = W / 8;
    float **tiles = calloc((size_t)(nr * nc), sizeof *tiles);
    int *th = calloc((size_t)nr, sizeof *th), *tw = calloc((size_t)nc, sizeof *tw); /* tile latents */
    float *crop = malloc((size_t)3 * T * T * sizeof(float));
    for (int r = 0; r < nr; r++)
        for (int c = 0; c < nc; c++) {
            int i = r * O, j = c * O, ph = H - i < T ? H - i : T, pw = W - j < T ? W - j : T;
            for (int ch = 0; ch < 3; ch++)
                for (int y = 0; y < ph; y++)
                    for (int x = 0; x < pw; x++)
                        crop[(ch * ph + y) * pw + x] = img[((size_t)ch * H + i + y) * W + j + x];
            tiles[r * nc + c] = untiled_moments(v, crop, ph, pw);
            th[r] = ph / 8;
            tw[c] = pw / 8;
            float *t = tiles[r * nc + c];
            if (clamp_first)
                for (int k = 4 * th[r] * tw[c]; k < C * th[r] * tw[c]; k++) t[k] = clamp_logvar(t[k]);
        }
    for (int r = 0; r < nr; r++)
        for (int c = 0; c < nc; c++) {
            float *b = tiles[r * nc + c];
            int hb = th[r], wb = tw[c];
            if (r > 0) { /* blend_v: rows of the tile above, which has the same width */
                const float *a = tiles[(r - 1) * nc + c];
                int ha = th[r - 1], e = ha < hb ? ha : hb;
                e = e < E ? e : E;
                for (int y = 0; y < e; y++)
                    for (int ch = 0; ch < C; ch++)
                        for (int x = 0; x < wb; x++) {
                            float fa = a[(ch * ha + ha - e + y) * wb + x] * (float)(1.0 - (double)y / e);
                            float fb = b[(ch * hb + y) * wb + x] * (float)((double)y / e);
                            b[(ch * hb + y) * wb + x] = fa + fb;
                        }
            }
            if (c > 0) { /* blend_h: columns of the tile to the left, which has the same height */
                const float *a = tiles[r * nc + c - 1];
                int wa = tw[c - 1], e = wa < wb ? wa : wb;
                e = e < E ? e : E;
                for (int x = 0; x < e; x++)
                    for (int ch = 0; ch < C; ch++)
                        for (int y = 0; y < hb; y++) {
                            float fa = a[(ch * hb + y) * wa + wa - e + x] * (float)(1.0 - (double)x / e);
                            float fb = b[(ch * hb + y) * wb + x] * (float)((double)x / e);
                            b[(ch * hb + y) * wb + x] = fa + fb;
                        }
            }
        }
    int oy = 0, ox = 0;
    for (int r = 0; r < nr; r++) {
        int kh = th[r] < R ? th[r] : R;
        ox = 0;
        for (int c = 0; c < nc; c++) {
            int kw = tw[c] < R ? tw[c] : R;
            for (int ch = 0; ch < C; ch++)
                for (int y = 0; y < kh; y++)
                    for (int x = 0; x < kw; x++) {
                        float m = tiles[r * nc + c][(ch * th[r] + y) * tw[c] + x];
                        size_t at = ((size_t)(ch % 4) * h + oy + y) * w + ox + x;
                        if (ch < 4) mean[at] = m;
                        else logvar[at] = clamp_logvar(m);
                    }
            ox += kw;
        }
        oy += kh;
    }
    th_check(oy == h && ox == w, "reference tiles cover %dx%d latents (got %dx%d)", h, w, oy, ox);
    for (int k = 0; k < nr * nc; k++) free(tiles[k]);
    free(tiles);
    free(th);
    free(tw);
    free(crop);
}

static double max_abs_diff(const float *a, const float *b, int64_t n) {
    double m = 0;
    for (int64_t i = 0; i < n; i++) m = fmax(m, fabs((double)a[i] - b[i]));
    return m;
}

/* One image: tiled (forced) against the reference; returns the tiled-vs-untiled difference. */
static double check_tiled(is_vae *v, int H, int W, const char *what, int expect_clamped) {
    int64_t n = 4 * (int64_t)(H / 8) * (W / 8);
    float *img = test_image(H, W), *mean = malloc((size_t)n * sizeof(float)), *lv = malloc((size_t)n * sizeof(float));
    float *rmean = malloc((size_t)n * sizeof(float)), *rlv = malloc((size_t)n * sizeof(float));
    float *umean = malloc((size_t)n * sizeof(float)), *ulv = malloc((size_t)n * sizeof(float));
    double du = -1;
    th_check(is_vae_encode_will_tile(v, H, W, 1) == 1, "%s: tiling 1 tiles %dx%d", what, H, W);
    is_vae_release_workspace(v);
    moments_capture cap = {NULL, 0};
    is_vae_options on = {1, capture_moments, &cap}, off = {0, NULL, NULL};
    int ok = th_ok(is_vae_encode_ex(v, img, H, W, &on, mean, lv), what);
    /* the workspace held one tile's activations (the first, largest tile), not the image's */
    int64_t tile = vae_encode_needs(v, H < 64 ? H : 64, W < 64 ? W : 64);
    th_check(v->ws.cap == tile && tile < vae_encode_needs(v, H, W),
             "%s: the workspace holds one tile (%lld of %lld floats)", what, (long long)v->ws.cap, (long long)vae_encode_needs(v, H, W));
    if (ok && th_ok(is_vae_encode_ex(v, img, H, W, &off, umean, ulv), what)) {
        th_check(cap.n == 2 * n, "%s: a tiled encode reports the blended moments", what);
        reference_tiled(v, img, H, W, 0, rmean, rlv);
        double dm = max_abs_diff(mean, rmean, n), dl = max_abs_diff(lv, rlv, n);
        printf("  %s %dx%d: tiled vs reference max |diff| mean %.3g logvar %.3g\n", what, H, W, dm, dl);
        th_check(!memcmp(mean, rmean, (size_t)n * sizeof(float)) && !memcmp(lv, rlv, (size_t)n * sizeof(float)),
                 "%s: tiled encode == the plain reference bit for bit", what);
        int64_t over = 0;
        for (int64_t i = 0; cap.m && i < n; i++) over += cap.m[n + i] > 20.0f || cap.m[n + i] < -30.0f;
        if (expect_clamped) { /* clamping each tile before blending must give another answer */
            reference_tiled(v, img, H, W, 1, rmean, rlv);
            double dc = max_abs_diff(lv, rlv, n);
            printf("  %s: %lld logvar moments outside [-30, 20]; clamp-before-blend would differ by %.3g\n", what,
                   (long long)over, dc);
            th_check(over > 0 && dc > 1e-3, "%s: the clamp comes after the blending (%lld clamped, %.3g)", what,
                     (long long)over, dc);
        }
        du = fmax(max_abs_diff(mean, umean, n), max_abs_diff(lv, ulv, n));
        printf("  %s %dx%d: tiled vs untiled max |diff| mean %.4f logvar %.4f\n", what, H, W,
               max_abs_diff(mean, umean, n), max_abs_diff(lv, ulv, n));
    }
    free(cap.m);
    free(img);
    free(mean);
    free(lv);
    free(rmean);
    free(rlv);
    free(umean);
    free(ulv);
    return du;
}

static void test_tiled_encode(is_vae *v) {
    /* (1) no larger than one tile (64 pixels): tiling 1 does not tile, results identical */
    static const int small[][2] = {{64, 64}, {64, 40}, {16, 64}};
    for (size_t k = 0; k < sizeof small / sizeof *small; k++) {
        int H = small[k][0], W = small[k][1];
        int64_t n = 4 * (int64_t)(H / 8) * (W / 8);
        float *img = test_image(H, W), *a = malloc((size_t)(4 * n) * sizeof(float)), *b = a + n, *c = b + n, *d = c + n;
        is_vae_options on = {1, NULL, NULL}, off = {0, NULL, NULL};
        th_check(is_vae_encode_will_tile(v, H, W, 1) == 0, "%dx%d: one tile, not tiled", H, W);
        if (th_ok(is_vae_encode_ex(v, img, H, W, &on, a, b), "encode tiling 1") &&
            th_ok(is_vae_encode_ex(v, img, H, W, &off, c, d), "encode tiling 0"))
            th_check(!memcmp(a, c, (size_t)(2 * n) * sizeof(float)), "%dx%d: tiling 1 == tiling 0 bit for bit", H, W);
        free(a);
        free(img);
    }
    th_check(is_vae_encode_will_tile(v, 72, 64, 1) == 1 && is_vae_encode_will_tile(v, 64, 72, 1) == 1,
             "one side over 64 pixels tiles");
    th_check(is_vae_encode_will_tile(v, 72, 64, 0) == 0, "tiling 0 never tiles an encode");

    /* (2) + (3) forced tiling against the reference: 3 x 4 tiles (edge tiles of 16 pixels), a single
     * column of tiles, a single row of a full and a 16-pixel tile */
    double d = check_tiled(v, 112, 160, "tiled 3x4", 0);
    th_check(d > 1e-3, "tiled encode differs from the untiled one (%.4f)", d);
    check_tiled(v, 136, 64, "tiled 3x1", 0);
    check_tiled(v, 64, 72, "tiled 2x2", 0);

    /* (4) automatic: these sizes are far below 4 GiB, so untiled (== tiling 0) */
    int H = 112, W = 160;
    int64_t n = 4 * (int64_t)(H / 8) * (W / 8);
    th_check(is_vae_encode_will_tile(v, H, W, -1) == 0, "automatic mode does not tile a small encode");
    float *img = test_image(H, W), *a = malloc((size_t)(3 * n) * sizeof(float)), *b = a + n, *c = b + n;
    is_vae_options off = {0, NULL, NULL}, automatic;
    is_vae_options_init(&automatic);
    if (th_ok(is_vae_encode_ex(v, img, H, W, &off, a, NULL), "encode untiled") &&
        th_ok(is_vae_encode_ex(v, img, H, W, &automatic, b, NULL), "encode automatic") &&
        th_ok(is_vae_encode(v, img, H, W, c, NULL), "encode without options"))
        th_check(!memcmp(a, b, (size_t)n * sizeof(float)) && !memcmp(a, c, (size_t)n * sizeof(float)),
                 "automatic and default encodes == untiled");
    free(a);
    free(img);
    th_check(is_vae_encode_workspace_bytes(v, 60, 64) == 0 && is_vae_encode_workspace_bytes(v, 0, 64) == 0,
             "encode workspace bytes: 0 for invalid sizes");
}

/* The clamp after the blending: the tiny VAE with quant_conv's logvar biases raised by 20, so that
 * about half the logvar moments are over 20. */
static void test_tiled_encode_clamp(void) {
    char *dir = make_dir("vae_logvar_shift");
    write_config(dir, NULL);
    char *src = th_golden_path("models/tiny-sdxl/vae/diffusion_pytorch_model.safetensors");
    is_st *st = NULL;
    if (th_ok(is_st_open(src, &st), src)) {
        is_st_writer *w = is_st_writer_new();
        for (size_t i = 0; i < is_st_count(st); i++) {
            const is_tensor *t = is_st_at(st, i);
            if (!strcmp(t->name, "quant_conv.bias")) {
                float *b = is_tensor_dup_f32(t);
                for (int k = 4; k < 8; k++) b[k] += 20.0f;
                th_ok(is_st_writer_add_f32(w, t->name, t->ndim, t->shape, b), "add shifted bias");
                free(b);
            } else {
                th_ok(is_st_writer_add(w, t->name, t->dtype, t->ndim, t->shape, t->data), "copy tensor");
            }
        }
        char *path = is_path_join(dir, "diffusion_pytorch_model.safetensors");
        th_ok(is_st_writer_save(w, path), "save shifted weights");
        free(path);
        is_st_writer_free(w);
        is_st_close(st);
        is_vae *v = NULL;
        if (th_ok(is_vae_load(dir, &v), "load the VAE with logvar + 20")) {
            check_tiled(v, 112, 160, "logvar+20", 1);
            is_vae_free(v);
        }
    }
    /* a tile plan whose tiles would not line up with the latents is refused, not approximated:
     * sample_size 40 gives tiles every int(40 * 0.75) = 30 pixels, not a multiple of 8 */
    write_config_ex(dir, NULL, "{\"sample_size\": 40}");
    is_vae *v = NULL;
    if (th_ok(is_vae_load(dir, &v), "load the VAE with sample_size 40")) {
        float *img = test_image(64, 64), lat[4 * 8 * 8];
        is_vae_options on = {1, NULL, NULL};
        th_fails(is_vae_encode_ex(v, img, 64, 64, &on, lat, NULL), "tiled encode", "tiles every 30 pixels");
        free(img);
        is_vae_free(v);
    }
    free(src);
    free(dir);
}

/* The real SDXL VAE config (stabilityai/stable-diffusion-xl-base-1.0 vae/config.json: block_out_channels
 * [128, 256, 512, 512], layers_per_block 2, latent_channels 4, sample_size 1024) as an is_vae without
 * weights: the size queries read only the config. Hand-checked numbers:
 *  encode: the first downsampler holds its 128-channel H x W input and its (H+1) x (W+1) padded copy,
 *    4 * 128 * (H*W + (H+1)*(W+1)) bytes: 1024x1024 1074790912 (1.0 GiB); 2040x2040 4263567872 (< 4 GiB
 *    = 4294967296); 2048x2048 4297064960 (> 4 GiB);
 *  decode: the last block's first resnet holds 256 + 128 channels at 8h x 8w, 1536 bytes per pixel:
 *    128x128 latents 1610612736; 210x210 (1680 px) 4335206400 (> 4 GiB); 208x208 4253024256. */
static void test_sdxl_config(void) {
    is_vae sdxl = {.in_channels = 3, .out_channels = 3, .latent_channels = 4, .groups = 32, .layers_per_block = 2,
                   .nblocks = 4, .block_out = {128, 256, 512, 512}, .sample_size = 1024, .mid_attention = 1};
    is_vae *v = &sdxl;
    th_check(is_vae_scale(v) == 8, "SDXL: scale 8");
    th_check(is_vae_encode_workspace_bytes(v, 1024, 1024) == 1074790912LL, "SDXL encode 1024x1024: %lld bytes",
             (long long)is_vae_encode_workspace_bytes(v, 1024, 1024));
    th_check(is_vae_encode_workspace_bytes(v, 2040, 2040) == 4263567872LL, "SDXL encode 2040x2040: %lld bytes",
             (long long)is_vae_encode_workspace_bytes(v, 2040, 2040));
    th_check(is_vae_encode_workspace_bytes(v, 2048, 2048) == 4297064960LL, "SDXL encode 2048x2048: %lld bytes",
             (long long)is_vae_encode_workspace_bytes(v, 2048, 2048));
    th_check(is_vae_encode_will_tile(v, 1024, 1024, 1) == 0, "SDXL: a 1024x1024 image is one tile");
    th_check(is_vae_encode_will_tile(v, 1032, 1024, 1) == 1 && is_vae_encode_will_tile(v, 1024, 1032, 1) == 1,
             "SDXL: 1032 pixels on a side tile when forced");
    th_check(is_vae_encode_will_tile(v, 1032, 1024, -1) == 0, "SDXL: automatic leaves 1032x1024 untiled");
    th_check(is_vae_encode_will_tile(v, 2040, 2040, -1) == 0, "SDXL: automatic leaves 2040x2040 untiled");
    th_check(is_vae_encode_will_tile(v, 2048, 2048, -1) == 1, "SDXL: automatic tiles 2048x2048");
    th_check(is_vae_encode_will_tile(v, 2048, 2048, 0) == 0, "SDXL: tiling 0 never tiles");
    th_check(is_vae_decode_workspace_bytes(v, 128, 128) == 1610612736LL, "SDXL decode 128x128: %lld bytes",
             (long long)is_vae_decode_workspace_bytes(v, 128, 128));
    th_check(is_vae_decode_will_tile(v, 128, 128, -1) == 0 && is_vae_decode_will_tile(v, 208, 208, -1) == 0 &&
                 is_vae_decode_will_tile(v, 210, 210, -1) == 1,
             "SDXL decode: automatic tiling from 1680x1680 pixels");
    vae_tiling_plan p = vae_tiling_params(v);
    th_check(p.overlap_px == 768 && p.blend_latent == 32 && p.row_limit_latent == 96 && p.tile_latent == 128,
             "SDXL encode tiles: 1024 px every 768, blend 32 latents, keep 96");
}

int main(void) {
    is_set_threads(2);
    char *dir = th_golden_path("models/tiny-sdxl/vae");
    is_vae *v = NULL;
    if (th_ok(is_vae_load(dir, &v), "load tiny VAE")) {
        test_basics(v);
        test_goldens(v);
        test_bf16(v);
        test_errors(v);
        test_tiled_encode(v);
        test_tiled_encode_clamp();
        test_sdxl_config();
        test_latents_stats();
        is_vae_release_workspace(v);
        is_vae_free(v);
    }
    free(dir);
    return th_done();
}
