/* UNet golden tests (cases/unet): every case's noise_pred and every stored intermediate, each with
 * its own tolerance; ImageProjModel tokens; and the IP-Adapter errors (an adapter made for another
 * model, a wrong image-encoder size). The UNet is loaded once. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/config.h"
#include "core/fileio.h"
#include "core/safetensors.h"
#include "harness.h"
#include "instantstyle.h"
#include "unet/unet_internal.h"

#define GROUP "unet"


/* ---- inputs */
static float *input(const is_st *inputs, const char *name, size_t *numel) {
    const is_tensor *t = th_tensor(inputs, name);
    if (!t) return NULL;
    if (numel) *numel = (size_t)t->numel;
    return is_tensor_dup_f32(t);
}

static const char *jstr(const cJSON *o, const char *key) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

/* The case's ip_scale_table reproduced by is_unet_set_ip_scale. */
static void check_scale_table(const is_unet *u, const cJSON *c, const char *cname) {
    const cJSON *table = cJSON_GetObjectItemCaseSensitive(c, "ip_scale_table");
    int n = 0, bad = 0;
    const cJSON *e;
    cJSON_ArrayForEach(e, table) {
        int found = -1;
        for (int i = 0; i < is_unet_num_cross_attn(u); i++)
            if (!strcmp(is_unet_cross_attn_name(u, i), e->string)) found = i;
        if (found < 0 || fabs(is_unet_cross_attn_scale(u, found) - (float)e->valuedouble) > 1e-7) {
            bad++;
            fprintf(stderr, "  %s: %s scale %g, expected %g\n", cname, e->string,
                    found < 0 ? NAN : is_unet_cross_attn_scale(u, found), e->valuedouble);
        }
        n++;
    }
    th_check(!bad && n == is_unet_num_cross_attn(u), "%s: ip_scale_table (%d layers) reproduced", cname, n);
}

/* bf16 tolerances (docs/PRECISION.md): relative L2 per tensor and max|diff| <= atol + BF16_MAX_RMS * rel * rms. */
static int g_bf16;          /* compare with the bf16 tolerances */
static int g_measure;       /* only measure (simulated bugs): the worst excess over the bf16 limits */
static float *g_noise;      /* when set: run_case copies its noise_pred here (g_noise_n floats) */
static size_t g_noise_n;
static double g_worst;
static char g_worst_name[64];

static void compare_output(const char *what, const cJSON *c, const char *name, const float *got, size_t n,
                           const is_tensor *expected) {
    double atol, rtol;
    th_tolerance(c, name, &atol, &rtol);
    if (g_measure) {
        double x = th_bf16_excess(got, n, expected, th_bf16_tolerance(GROUP, name), atol);
        if (x > g_worst) g_worst = x, snprintf(g_worst_name, sizeof g_worst_name, "%s", name);
        return;
    }
    if (!g_bf16) {
        th_close(what, got, n, expected, atol, rtol);
        return;
    }
    double rel = th_bf16_tolerance(GROUP, name);
    if (rel == 0) th_close(what, got, n, expected, atol, rtol); /* no bf16 product on its path: f32 exactly */
    else th_close_rel(what, got, n, expected, rel, TH_BF16_MAX_RMS, atol);
}

/* Run one case: scales, ip tokens, forward with capture; compare every stored output. */
static void run_case(is_unet *u, const is_st *inputs, const cJSON *c, const char *tag, const char *scale_override) {
    const char *cname = jstr(c, "name");
    char what[160];
    const cJSON *in_names = cJSON_GetObjectItemCaseSensitive(c, "inputs");
    const cJSON *hw = cJSON_GetObjectItemCaseSensitive(c, "latent_hw");
    int ip = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(c, "ip_adapter"));
    is_st *expected = th_open_expected(GROUP, jstr(c, "expected"));
    if (!expected) return;

    is_unet_input in = {0};
    in.batch = 2;
    in.height = cJSON_GetArrayItem(hw, 0)->valueint;
    in.width = cJSON_GetArrayItem(hw, 1)->valueint;
    in.timestep = (float)cJSON_GetObjectItemCaseSensitive(c, "timestep")->valuedouble;
    size_t n_ctx = 0;
    float *sample = input(inputs, jstr(in_names, "sample"), NULL);
    float *ctx = input(inputs, jstr(in_names, "encoder_hidden_states"), &n_ctx);
    float *text = input(inputs, jstr(in_names, "text_embeds"), NULL);
    float *ids = input(inputs, jstr(in_names, "time_ids"), NULL);
    in.sample = sample;
    in.encoder_hidden_states = ctx;
    in.seq_len = (int)(n_ctx / 2 / (size_t)is_unet_cross_attention_dim(u));
    in.text_embeds = text;
    in.time_ids = ids;

    float *tokens = NULL, *embeds = NULL;
    if (ip) {
        const cJSON *spec = cJSON_GetObjectItemCaseSensitive(c, "ip_scale_spec");
        char *spec_text = cJSON_PrintUnformatted(spec);
        snprintf(what, sizeof what, "%s%s: set_ip_scale(%s)", cname, tag, scale_override ? scale_override : spec_text);
        if (th_ok(is_unet_set_ip_scale(u, scale_override ? scale_override : spec_text, 1.0f), what) && !scale_override)
            check_scale_table(u, c, cname);
        free(spec_text);
        size_t n_emb = 0;
        embeds = input(inputs, jstr(in_names, "image_embeds"), &n_emb);
        size_t n_tok = (size_t)in.batch * is_unet_ip_num_tokens(u) * is_unet_cross_attention_dim(u);
        tokens = malloc(n_tok * sizeof(float));
        th_check(n_emb == (size_t)in.batch * is_unet_ip_embed_dim(u), "%s: image_embeds size", cname);
        snprintf(what, sizeof what, "%s%s: ip tokens", cname, tag);
        th_ok(is_unet_ip_tokens(u, embeds, in.batch, tokens), what);
        in.ip_tokens = tokens;
    }

    th_capture cap = {.batch = in.batch};
    in.hook = th_capture_hook;
    in.hook_user = &cap;
    size_t n_out = (size_t)in.batch * is_unet_out_channels(u) * in.height * in.width;
    float *noise = calloc(n_out, sizeof(float));
    snprintf(what, sizeof what, "%s%s: forward", cname, tag);
    if (th_ok(is_unet_forward(u, &in, noise), what)) {
        if (g_noise && g_noise_n == n_out) memcpy(g_noise, noise, n_out * sizeof(float));
        const cJSON *o;
        cJSON_ArrayForEach(o, cJSON_GetObjectItemCaseSensitive(c, "outputs")) {
            const float *got = NULL;
            size_t n = 0;
            const th_captured *cp = th_capture_get(&cap, o->string);
            if (!strcmp(o->string, "ip_tokens")) {
                got = tokens;
                n = (size_t)in.batch * is_unet_ip_num_tokens(u) * is_unet_cross_attention_dim(u);
            } else if (!strcmp(o->string, "noise_pred")) {
                got = noise;
                n = n_out;
            } else if (cp) {
                got = cp->data;
                n = cp->per_item * (size_t)in.batch;
            }
            snprintf(what, sizeof what, "%s%s: %s", cname, tag, o->string);
            if (!got) th_check(0, "%s: not produced", what);
            else compare_output(what, c, o->string, got, n, th_tensor(expected, o->string));
        }
    }
    th_capture_free(&cap);
    free(noise);
    free(tokens);
    free(embeds);
    free(sample);
    free(ctx);
    free(text);
    free(ids);
    is_st_close(expected);
}

static const cJSON *find_case(const cJSON *cases, const char *name) {
    const cJSON *c;
    cJSON_ArrayForEach(c, cases) if (!strcmp(jstr(c, "name"), name)) return c;
    return NULL;
}

/* ---- crafted adapters (from the real adapter's tensors) */

typedef enum { CRAFT_DROP_LAST, CRAFT_EXTRA_LAYER, CRAFT_CROSS_DIM, CRAFT_HIDDEN } craft_kind;

/* First `cols` columns of a 2-D F16 tensor's rows (and first `rows` rows). */
static uint16_t *slice_f16(const is_tensor *t, int64_t rows, int64_t cols) {
    uint16_t *out = malloc((size_t)(rows * cols) * sizeof(uint16_t));
    const uint16_t *src = t->data;
    int64_t in_cols = t->ndim == 2 ? t->shape[1] : 1;
    for (int64_t r = 0; r < rows; r++)
        for (int64_t c = 0; c < cols; c++) out[r * cols + c] = src[(r % t->shape[0]) * in_cols + (c % in_cols)];
    return out;
}

static char *craft_adapter(const char *real_path, craft_kind kind, const char *file) {
    is_st *st = NULL;
    if (!th_ok(is_st_open(real_path, &st), "open real adapter")) return NULL;
    is_st_writer *w = is_st_writer_new();
    const int small = 64; /* another model's cross-attention size */
    for (size_t i = 0; i < is_st_count(st); i++) {
        const is_tensor *t = is_st_at(st, i);
        int64_t shape[2] = {t->shape[0], t->ndim == 2 ? t->shape[1] : 0};
        if (kind == CRAFT_DROP_LAST && strstr(t->name, "ip_adapter.33.")) continue;
        if (kind == CRAFT_CROSS_DIM) {
            if (!strncmp(t->name, "ip_adapter.", 11)) shape[1] = small;
            else if (!strcmp(t->name, "image_proj.proj.weight") || !strcmp(t->name, "image_proj.proj.bias"))
                shape[0] = 4 * small;
            else if (!strncmp(t->name, "image_proj.norm.", 16)) shape[0] = small;
        }
        if (kind == CRAFT_HIDDEN && !strncmp(t->name, "ip_adapter.5.", 13)) shape[0] = 32; /* a 32-wide layer's size */
        uint16_t *data = slice_f16(t, shape[0], t->ndim == 2 ? shape[1] : 1);
        th_ok(is_st_writer_add(w, t->name, IS_DT_F16, t->ndim, shape, data), t->name);
        free(data);
        if (kind == CRAFT_EXTRA_LAYER && strstr(t->name, "ip_adapter.33.")) {
            char name[64];
            snprintf(name, sizeof name, "ip_adapter.35.%s", t->name + strlen("ip_adapter.33."));
            data = slice_f16(t, shape[0], shape[1]);
            th_ok(is_st_writer_add(w, name, IS_DT_F16, 2, shape, data), name);
            free(data);
        }
    }
    char *path = is_path_join(th_tmpdir(), file);
    th_ok(is_st_writer_save(w, path), file);
    is_st_writer_free(w);
    is_st_close(st);
    return path;
}

static void test_adapter_errors(is_unet *u, const char *real_path) {
    struct {
        craft_kind kind;
        const char *file, *needle, *what;
    } bad[] = {
        {CRAFT_CROSS_DIM, "ip-wrong-cross-dim.safetensors", "cross_attention_dim 64",
         "adapter for a UNet with cross_attention_dim 64"},
        {CRAFT_DROP_LAST, "ip-16-layers.safetensors", "has 16 cross-attention layers", "adapter with 16 layers"},
        {CRAFT_EXTRA_LAYER, "ip-18-layers.safetensors", "has 18 cross-attention layers", "adapter with 18 layers"},
        {CRAFT_HIDDEN, "ip-wrong-hidden.safetensors", "down_blocks.2.attentions.0.transformer_blocks.0.attn2",
         "adapter whose layer 5 has another hidden size"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char *path = craft_adapter(real_path, bad[i].kind, bad[i].file);
        if (!path) continue;
        th_fails(is_unet_load_ip_adapter(u, path, 48), bad[i].needle, bad[i].what);
        th_check(is_unet_has_ip_adapter(u) && is_unet_ip_num_tokens(u) == 4, "%s: previous adapter kept", bad[i].what);
        free(path);
    }
    th_fails(is_unet_load_ip_adapter(u, real_path, 64), "produces 64-dim", "image encoder projection dim 64 vs 48");
    char *missing = is_path_join(th_tmpdir(), "no-such-adapter.safetensors");
    th_fails(is_unet_load_ip_adapter(u, missing, 48), "no-such-adapter", "missing adapter file");
    free(missing);
}

static void test_basics(is_unet *u, const cJSON *root) {
    th_check(is_unet_in_channels(u) == 4 && is_unet_out_channels(u) == 4, "in/out channels 4");
    th_check(is_unet_cross_attention_dim(u) == 96, "cross_attention_dim 96");
    th_check(is_unet_pooled_dim(u) == 48, "pooled dim 48 (= 96 - 6*8)");
    th_check(is_unet_time_ids_count(u) == 6, "6 time ids");
    /* attn2 layers in diffusers' attn_processors order = ip_layer_map order, h94 ids 1, 3, 5, ... */
    const cJSON *map = cJSON_GetObjectItemCaseSensitive(root, "ip_layer_map"), *e;
    int k = 0, ok = 1;
    cJSON_ArrayForEach(e, map) {
        const char *name = is_unet_cross_attn_name(u, k);
        int id = cJSON_GetObjectItemCaseSensitive(e, "h94_key_id")->valueint;
        if (!name || strcmp(name, e->string) || id != 2 * k + 1) {
            ok = 0;
            fprintf(stderr, "  layer %d: %s, expected %s (h94 %d)\n", k, name ? name : "(none)", e->string, id);
        }
        k++;
    }
    th_check(ok && k == is_unet_num_cross_attn(u), "cross-attention layers match ip_layer_map (%d layers)", k);
    th_check(is_unet_cross_attn_name(u, k) == NULL && is_unet_cross_attn_name(u, -1) == NULL, "name out of range");
    th_check(!strcmp(is_unet_cross_attn_module(u, 8), "up_blocks.0.attentions.1") &&
                 is_unet_cross_attn_comfy_index(u, 8) == 6 && is_unet_cross_attn_comfy_index(u, 16) == 4,
             "module names and ComfyUI indices");

    is_unet *bad = NULL;
    char *nodir = is_path_join(th_tmpdir(), "no-such-unet");
    th_fails(is_unet_load(nodir, &bad), "config.json", "UNet from a missing folder");
    th_check(bad == NULL, "no handle on failure");
    free(nodir);
}

/* ---- config parsing: the real SDXL base config (head-count quirk) and refused features. */

static const char *SDXL_CONFIG =
    "{\"_class_name\": \"UNet2DConditionModel\", \"act_fn\": \"silu\", \"addition_embed_type\": \"text_time\","
    " \"addition_embed_type_num_heads\": 64, \"addition_time_embed_dim\": 256, \"attention_head_dim\": [5, 10, 20],"
    " \"block_out_channels\": [320, 640, 1280], \"center_input_sample\": false, \"class_embed_type\": null,"
    " \"class_embeddings_concat\": false, \"conv_in_kernel\": 3, \"conv_out_kernel\": 3, \"cross_attention_dim\": 2048,"
    " \"cross_attention_norm\": null, \"down_block_types\": [\"DownBlock2D\", \"CrossAttnDownBlock2D\","
    " \"CrossAttnDownBlock2D\"], \"downsample_padding\": 1, \"dual_cross_attention\": false, \"encoder_hid_dim\": null,"
    " \"encoder_hid_dim_type\": null, \"flip_sin_to_cos\": true, \"freq_shift\": 0, \"in_channels\": 4,"
    " \"layers_per_block\": 2, \"mid_block_only_cross_attention\": null, \"mid_block_scale_factor\": 1,"
    " \"mid_block_type\": \"UNetMidBlock2DCrossAttn\", \"norm_eps\": 1e-05, \"norm_num_groups\": 32,"
    " \"num_attention_heads\": null, \"num_class_embeds\": null, \"only_cross_attention\": false, \"out_channels\": 4,"
    " \"projection_class_embeddings_input_dim\": 2816, \"resnet_out_scale_factor\": 1.0, \"resnet_skip_time_act\": false,"
    " \"resnet_time_scale_shift\": \"default\", \"sample_size\": 128, \"time_cond_proj_dim\": null,"
    " \"time_embedding_act_fn\": null, \"time_embedding_dim\": null, \"time_embedding_type\": \"positional\","
    " \"timestep_post_act\": null, \"transformer_layers_per_block\": [1, 2, 10], \"up_block_types\":"
    " [\"CrossAttnUpBlock2D\", \"CrossAttnUpBlock2D\", \"UpBlock2D\"], \"upcast_attention\": null,"
    " \"use_linear_projection\": true}";

static is_error *parse_config_text(const char *text, const char *file, unet_config *c) {
    char *path = is_path_join(th_tmpdir(), file);
    is_error *err = is_write_file_atomic(path, text, strlen(text));
    is_config cfg = {0};
    if (!err) err = is_config_load(path, &cfg);
    if (!err) err = unet_config_parse(&cfg, c);
    is_config_free(&cfg);
    free(path);
    return err;
}

/* SDXL_CONFIG with `key`'s value text replaced. */
static char *config_with(const char *key, const char *value) {
    char needle[96];
    snprintf(needle, sizeof needle, "\"%s\": ", key);
    const char *at = strstr(SDXL_CONFIG, needle);
    if (!at) return NULL;
    const char *v = at + strlen(needle), *end = v;
    int depth = 0;
    while (*end && (depth > 0 || (*end != ',' && *end != '}'))) {
        if (*end == '[') depth++;
        if (*end == ']') depth--;
        end++;
    }
    size_t n = strlen(SDXL_CONFIG) + strlen(value) + 1;
    char *out = malloc(n);
    snprintf(out, n, "%.*s%s%s", (int)(v - SDXL_CONFIG), SDXL_CONFIG, value, end);
    return out;
}

static void test_configs(void) {
    unet_config c;
    if (th_ok(parse_config_text(SDXL_CONFIG, "sdxl-unet-config.json", &c), "real SDXL UNet config")) {
        th_check(c.heads[0] == 5 && c.heads[1] == 10 && c.heads[2] == 20,
                 "SDXL: attention_head_dim [5, 10, 20] are head COUNTS (num_attention_heads is null)");
        th_check(c.block_out[1] / c.heads[1] == 64 && c.block_out[2] / c.heads[2] == 64, "SDXL: head size 64");
        th_check(c.transformer_layers[2] == 10 && c.time_embed_dim == 1280 && c.cross_attention_dim == 2048,
                 "SDXL: 10 transformer layers in block 2, time embedding 1280, cross-attention 2048");
        th_check(c.add_in_dim - 6 * c.add_time_dim == 1280, "SDXL: pooled text embedding 1280");
        th_check(c.down_cross[1] && !c.down_cross[0] && c.up_cross[0] && !c.up_cross[2] && c.has_mid,
                 "SDXL: block types");
    }
    struct {
        const char *key, *value, *needle;
    } bad[] = {
        {"resnet_time_scale_shift", "\"scale_shift\"", "resnet_time_scale_shift"},
        {"down_block_types", "[\"DownBlock2D\", \"SimpleCrossAttnDownBlock2D\", \"CrossAttnDownBlock2D\"]",
         "SimpleCrossAttnDownBlock2D"},
        {"attention_head_dim", "[5, 7, 20]", "not divisible by attention_head_dim[1] = 7"},
        {"block_out_channels", "[320, 640]", "one entry per block_out_channels"},
        {"class_embed_type", "\"timestep\"", "class_embed_type"},
        {"only_cross_attention", "[false, true, false]", "only_cross_attention"},
        {"projection_class_embeddings_input_dim", "1536", "projection_class_embeddings_input_dim"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char *text = config_with(bad[i].key, bad[i].value), what[96];
        snprintf(what, sizeof what, "config with %s = %s", bad[i].key, bad[i].value);
        if (!text) {
            th_check(0, "%s: key missing from the test config", what);
            continue;
        }
        th_fails(parse_config_text(text, "bad-unet-config.json", &c), bad[i].needle, what);
        free(text);
    }
}

/* A UNet folder whose weights lack one tensor, and one whose config disagrees with the weights. */
static void test_bad_unet_folders(const char *unet_dir) {
    char *real_weights = is_path_join(unet_dir, "diffusion_pytorch_model.safetensors");
    char *real_config = is_path_join(unet_dir, "config.json");
    is_st *st = NULL;
    if (!th_ok(is_st_open(real_weights, &st), "open tiny UNet weights")) goto done;
    const char *dropped = "mid_block.attentions.0.transformer_blocks.1.ff.net.2.weight";
    is_st_writer *w = is_st_writer_new();
    for (size_t i = 0; i < is_st_count(st); i++) {
        const is_tensor *t = is_st_at(st, i);
        if (strcmp(t->name, dropped)) is_st_writer_add(w, t->name, t->dtype, t->ndim, t->shape, t->data);
    }
    char *dir = is_path_join(th_tmpdir(), "unet-missing-tensor");
    char *cfg = NULL, *wpath = is_path_join(dir, "diffusion_pytorch_model.safetensors"), *cpath = is_path_join(dir, "config.json");
    size_t n = 0;
    is_unet *u = NULL;
    if (th_ok(is_read_file(real_config, 1 << 20, &cfg, &n), "read tiny config") &&
        (mkdir(dir, 0755) == 0 || is_file_exists(dir)) && th_ok(is_write_file_atomic(cpath, cfg, n), "write config") &&
        th_ok(is_st_writer_save(w, wpath), "write weights")) {
        th_fails(is_unet_load(dir, &u), dropped, "UNet weights without one tensor");
        /* Same folder, complete weights, but a config saying cross_attention_dim 64. */
        is_st_writer_free(w);
        w = is_st_writer_new();
        for (size_t i = 0; i < is_st_count(st); i++) {
            const is_tensor *t = is_st_at(st, i);
            is_st_writer_add(w, t->name, t->dtype, t->ndim, t->shape, t->data);
        }
        char *c2 = strdup(cfg), *at = strstr(c2, "\"cross_attention_dim\": 96");
        if (at) memcpy(at, "\"cross_attention_dim\": 64", 25);
        th_ok(is_write_file_atomic(cpath, c2, strlen(c2)), "write config");
        th_ok(is_st_writer_save(w, wpath), "write weights");
        th_fails(is_unet_load(dir, &u), "attn2.to_k.weight", "config cross_attention_dim 64 vs weights 96");
        th_check(u == NULL, "no UNet on failure");
        free(c2);
    }
    is_st_writer_free(w);
    free(cfg);
    free(wpath);
    free(cpath);
    free(dir);
    is_st_close(st);
done:
    free(real_weights);
    free(real_config);
}

/* ---- bf16 at a latent larger than the goldens' 8x8: 40x48, whose 20x24 level gives the transformers
 * 960 token rows, so the bf16 feed-forward runs in several row chunks (the last one short) and the
 * self-attention in several query tiles. No golden exists at that size: the bf16 noise_pred is held to
 * the bf16 tolerance of noise_pred against the same UNet's f32 output (a chunk or tile computed from the
 * wrong rows is far outside it). Call with the UNet in bf16 (which = 0) and then in f32 (which = 1). */
static float *g_big[2];
static void big_latent(is_unet *u, const is_st *inputs, const cJSON *noip, int which) {
    const cJSON *in_names = cJSON_GetObjectItemCaseSensitive(noip, "inputs");
    const int H = 40, W = 48;
    size_t n_ctx = 0, n = (size_t)2 * 4 * H * W;
    float *ctx = input(inputs, jstr(in_names, "encoder_hidden_states"), &n_ctx);
    float *text = input(inputs, jstr(in_names, "text_embeds"), NULL);
    float *ids = input(inputs, jstr(in_names, "time_ids"), NULL);
    float *sample = malloc(n * sizeof(float));
    uint64_t rng = 0x9e3779b97f4a7c15ull;
    for (size_t i = 0; i < n; i++) sample[i] = th_frand(&rng);
    is_unet_input in = {.batch = 2, .height = H, .width = W, .timestep = 751.0f, .sample = sample,
                        .encoder_hidden_states = ctx, .text_embeds = text, .time_ids = ids};
    in.seq_len = (int)(n_ctx / 2 / (size_t)is_unet_cross_attention_dim(u));
    g_big[which] = calloc(n, sizeof(float));
    if (!th_ok(is_unet_forward(u, &in, g_big[which]), which ? "40x48 latent in f32" : "40x48 latent in bf16")) {
        free(g_big[which]);
        g_big[which] = NULL;
    }
    if (which == 1 && g_big[0] && g_big[1])
        th_close_rel_f32("40x48 latent: bf16 noise_pred against f32", g_big[0], g_big[1], n,
                         th_bf16_tolerance(GROUP, "noise_pred"), TH_BF16_MAX_RMS, 0);
    if (which == 1) free(g_big[0]), free(g_big[1]), g_big[0] = g_big[1] = NULL;
    free(ctx), free(text), free(ids), free(sample);
}

/* ---- bf16: every case again with the UNet and its adapter in bf16 (docs/PRECISION.md). */
static void test_bf16(is_unet *u, const is_st *inputs, const cJSON *cases, const char *unet_dir, const char *ip_path) {
    const cJSON *c;
    th_check(is_unet_precision(u) == IS_PRECISION_F32, "a loaded UNet runs in f32");
    if (is_precision_resolve(IS_PRECISION_BF16, NULL, 0) != IS_PRECISION_BF16) {
        printf("  no bf16 on this CPU: BF16 runs as f32, the bf16 cases are the f32 ones\n");
        return;
    }
    if (!th_ok(is_unet_set_precision(u, IS_PRECISION_BF16), "set_precision(BF16)")) return;
    th_check(is_unet_precision(u) == IS_PRECISION_BF16, "UNet precision bf16");
    g_bf16 = 1;
    cJSON_ArrayForEach(c, cases) run_case(u, inputs, c, " [bf16]", NULL);
    big_latent(u, inputs, find_case(cases, "noip"), 0);
    /* The order of set_precision and the adapter's load does not matter: an adapter loaded into a bf16 UNet
     * is packed too (same numbers bit for bit; an unpacked adapter would run its products in f32). */
    size_t n_out = (size_t)2 * 4 * 8 * 8;
    float *a = calloc(n_out, sizeof(float)), *b = calloc(n_out, sizeof(float));
    is_unet *u2 = NULL;
    g_noise_n = n_out;
    g_noise = a;
    run_case(u, inputs, find_case(cases, "ip_style"), " [bf16, adapter then set_precision]", NULL);
    if (th_ok(is_unet_load(unet_dir, &u2), "load a second UNet") &&
        th_ok(is_unet_set_precision(u2, IS_PRECISION_BF16), "set_precision(BF16) before the adapter") &&
        th_ok(is_unet_load_ip_adapter(u2, ip_path, 48), "adapter into a bf16 UNet")) {
        g_noise = b;
        run_case(u2, inputs, find_case(cases, "ip_style"), " [bf16, set_precision then adapter]", NULL);
        th_check(!memcmp(a, b, n_out * sizeof(float)), "bf16: adapter loaded before or after set_precision, same numbers");
    }
    g_noise = NULL;
    is_unet_free(u2);
    free(a), free(b);
    g_bf16 = 0;
    /* Back to f32: the f32 numbers exactly again. */
    if (th_ok(is_unet_set_precision(u, IS_PRECISION_F32), "set_precision(F32)")) {
        th_check(is_unet_precision(u) == IS_PRECISION_F32, "UNet precision f32 again");
        run_case(u, inputs, find_case(cases, "ip_style"), " (f32 after bf16)", NULL);
        big_latent(u, inputs, find_case(cases, "noip"), 1);
    }

    /* Sensitivity: a bug of the kinds a bf16 path can have, simulated in ONE layer of the f32 network,
     * must fail the bf16 tolerances (docs/PRECISION.md, "Sensitivity"). */
    static const th_bug_case bugs[] = {
        {1, "wrong layout: one linear transposed (mid_block proj_out)",
         {{"mid_block.attentions.0.proj_out.weight", TH_BUG_TRANSPOSE}}, 1},
        {1, "wrong layout: one attention projection transposed (up_blocks.1.attentions.2 attn1.to_v)",
         {{"up_blocks.1.attentions.2.transformer_blocks.0.attn1.to_v.weight", TH_BUG_TRANSPOSE}}, 1},
        {1, "wrong layout: one 3x3 conv with Cin/Cout swapped (up_blocks.1.resnets.1.conv2)",
         {{"up_blocks.1.resnets.1.conv2.weight", TH_BUG_TRANSPOSE}}, 1},
        {1, "wrong layout: conv_out's kernel transposed", {{"conv_out.weight", TH_BUG_TRANSPOSE}}, 1},
        {1, "f16 misread as bf16: one conv (down_blocks.1.resnets.0.conv1)",
         {{"down_blocks.1.resnets.0.conv1.weight", TH_BUG_F16_AS_BF16}}, 1},
        {1, "f16 misread as bf16: one linear (up_blocks.0.attentions.2 ff.net.2)",
         {{"up_blocks.0.attentions.2.transformer_blocks.1.ff.net.2.weight", TH_BUG_F16_AS_BF16}}, 1},
        {1, "skipped residual: one resnet's shortcut dropped (up_blocks.1.resnets.0)",
         {{"up_blocks.1.resnets.0.conv_shortcut.weight", TH_BUG_ZERO},
          {"up_blocks.1.resnets.0.conv_shortcut.bias", TH_BUG_ZERO}}, 2},
        {1, "skipped residual: the last resnet's shortcut dropped (up_blocks.2.resnets.2)",
         {{"up_blocks.2.resnets.2.conv_shortcut.weight", TH_BUG_ZERO},
          {"up_blocks.2.resnets.2.conv_shortcut.bias", TH_BUG_ZERO}}, 2},
        {1, "missing bias: every convolution", {{"*conv*.bias", TH_BUG_ZERO}}, 1},
        {1, "missing bias: every resnet's conv2 (the accumulating convolutions)", {{"*resnets.*.conv2.bias", TH_BUG_ZERO}}, 1},
        {1, "missing bias: every linear layer of the transformers", {{"*attentions.*.bias", TH_BUG_ZERO}}, 1},
        {1, "missing bias: every attention output projection", {{"*.to_out.0.bias", TH_BUG_ZERO}}, 1},
        {0, "missing bias: one 3x3 conv (up_blocks.1.resnets.1.conv2)", {{"up_blocks.1.resnets.1.conv2.bias", TH_BUG_ZERO}}, 1},
        {0, "missing bias: one linear (mid_block feed-forward output)",
         {{"mid_block.attentions.0.transformer_blocks.0.ff.net.2.bias", TH_BUG_ZERO}}, 1},
    };
    for (size_t i = 0; i < sizeof bugs / sizeof bugs[0]; i++) {
        char name[32];
        snprintf(name, sizeof name, "unet-bug-%zu", i);
        char *dir = th_bugged_model(unet_dir, "diffusion_pytorch_model.safetensors", name, bugs[i].e, bugs[i].n);
        is_unet *b = NULL;
        if (!dir || !th_ok(is_unet_load(dir, &b), "load the UNet with a simulated bug") ||
            !th_ok(is_unet_load_ip_adapter(b, ip_path, 48), "its adapter")) {
            is_unet_free(b);
            free(dir);
            continue;
        }
        g_measure = 1;
        g_worst = 0;
        g_worst_name[0] = 0;
        run_case(b, inputs, find_case(cases, "ip_style"), " [simulated bug]", NULL);
        g_measure = 0;
        th_bug_verdict(bugs[i].must_fail, bugs[i].what, g_worst_name, g_worst);
        is_unet_free(b);
        free(dir);
    }
}

int main(void) {
    cJSON *root = th_load_cases(GROUP);
    const cJSON *cases = cJSON_GetObjectItemCaseSensitive(root, "cases"), *c;
    char *unet_dir = th_golden_path("models/tiny-sdxl/unet");
    char *ip_path = th_golden_path("models/tiny-ip-adapter/ip-adapter_sdxl.safetensors");
    is_unet *u = NULL;
    is_st *inputs = th_open_expected(GROUP, "inputs.safetensors");
    if (!th_ok(is_unet_load(unet_dir, &u), "load tiny SDXL UNet") || !inputs) return th_done();
    test_basics(u, root);
    test_configs();
    test_bad_unet_folders(unet_dir);

    /* Plain UNet (no adapter loaded). */
    cJSON_ArrayForEach(c, cases) if (!cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(c, "ip_adapter")))
        run_case(u, inputs, c, " (no adapter loaded)", NULL);
    float dummy[1] = {0}, out[1];
    is_unet_input bad_in = {.batch = 1, .height = 8, .width = 8, .sample = dummy, .encoder_hidden_states = dummy,
                            .seq_len = 1, .text_embeds = dummy, .time_ids = dummy, .ip_tokens = dummy};
    th_fails(is_unet_forward(u, &bad_in, out), "no IP-Adapter is loaded", "ip_tokens without an adapter");
    th_fails(is_unet_ip_tokens(u, dummy, 1, out), "no IP-Adapter", "ip tokens without an adapter");
    bad_in.ip_tokens = NULL;
    bad_in.text_embeds = NULL;
    th_fails(is_unet_forward(u, &bad_in, out), "text_embeds", "missing text_embeds");

    if (!th_ok(is_unet_load_ip_adapter(u, ip_path, 48), "load tiny IP-Adapter")) return th_done();
    th_check(is_unet_has_ip_adapter(u) && is_unet_ip_embed_dim(u) == 48 && is_unet_ip_num_tokens(u) == 4,
             "adapter: 48-dim embeddings -> 4 tokens");

    /* Every case; the no-IP cases again with the adapter loaded but no ip_tokens. */
    cJSON_ArrayForEach(c, cases) run_case(u, inputs, c, "", NULL);

    /* Presets and other spellings give the same numbers; scale 0 everywhere = the plain UNet. */
    run_case(u, inputs, find_case(cases, "ip_style"), " (preset style)", "style");
    run_case(u, inputs, find_case(cases, "ip_style_layout"), " (ComfyUI 3:1,6:1)", "3:1,6:1");
    is_st *noip = th_open_expected(GROUP, "noip.safetensors");
    if (noip) {
        /* ip_style's inputs with every scale 0 must equal the noip case's prediction exactly. */
        cJSON *zero = cJSON_Duplicate(find_case(cases, "ip_style"), 1);
        cJSON_ReplaceItemInObject(zero, "expected", cJSON_CreateString("noip.safetensors"));
        cJSON_DeleteItemFromObject(zero, "outputs");
        cJSON *outs = cJSON_AddObjectToObject(zero, "outputs");
        cJSON_AddItemToObject(outs, "noise_pred", cJSON_CreateIntArray((const int[]){2, 4, 8, 8}, 4));
        cJSON_ReplaceItemInObject(zero, "tolerance", cJSON_Duplicate(cJSON_GetObjectItemCaseSensitive(
                                                         find_case(cases, "noip"), "tolerance"), 1));
        run_case(u, inputs, zero, " (scale none = noip)", "none");
        cJSON_Delete(zero);
        is_st_close(noip);
    }

    test_adapter_errors(u, ip_path);
    /* The adapter still works after the refused loads. */
    run_case(u, inputs, find_case(cases, "ip_style_layout_8x12"), " (after refused adapters)", NULL);

    test_bf16(u, inputs, cases, unet_dir, ip_path);

    is_unet_free(u);
    is_st_close(inputs);
    free(unet_dir);
    free(ip_path);
    cJSON_Delete(root);
    return th_done();
}
