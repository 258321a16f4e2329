/* CLIP text encoders against the text_encoders goldens (from the golden ids), plus error paths
 * and small behaviours checked on a crafted tiny model. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/fileio.h"
#include "core/safetensors.h"
#include "harness.h"
#include "instantstyle.h"

#define GROUP "text_encoders"

/* ---------------------------------------------------------------- helpers */

/* An I64 [1, n] ids tensor from the expected file as int32 (NULL + failure when absent). */
static int32_t *ids_of(const is_st *st, const char *name, int *n) {
    const is_tensor *t = th_tensor(st, name);
    if (!t) return NULL;
    th_check(t->dtype == IS_DT_I64, "%s is I64", name);
    int32_t *ids = malloc((size_t)t->numel * sizeof *ids);
    for (int64_t i = 0; i < t->numel; i++) ids[i] = (int32_t)((const int64_t *)t->data)[i];
    *n = (int)t->numel;
    return ids;
}

/* prompt_embeds [n, h1+h2] = concat(te1 penultimate, te2 penultimate); pooled = te2 text_embeds. */
static void encode_pair(is_clip_text *te1, is_clip_text *te2, const int32_t *ids1, const int32_t *ids2, int n,
                        float *embeds, float *pooled) {
    int h1 = is_clip_text_hidden_size(te1), h2 = is_clip_text_hidden_size(te2);
    float *p1 = malloc((size_t)n * (size_t)h1 * sizeof(float)), *p2 = malloc((size_t)n * (size_t)h2 * sizeof(float));
    th_ok(is_clip_text_forward(te1, ids1, n, p1, NULL, NULL, NULL), "text_encoder forward");
    th_ok(is_clip_text_forward(te2, ids2, n, p2, NULL, NULL, pooled), "text_encoder_2 forward");
    for (int t = 0; t < n; t++) {
        memcpy(embeds + (size_t)t * (size_t)(h1 + h2), p1 + (size_t)t * (size_t)h1, (size_t)h1 * sizeof(float));
        memcpy(embeds + (size_t)t * (size_t)(h1 + h2) + h1, p2 + (size_t)t * (size_t)h2, (size_t)h2 * sizeof(float));
    }
    free(p1);
    free(p2);
}

static int g_bf16;    /* compare with the bf16 tolerances (docs/PRECISION.md) */
static int g_measure; /* only measure (simulated bugs): the worst excess over the bf16 limits */
static double g_worst;
static char g_worst_name[64];

static void compare(const cJSON *c, const is_st *st, const char *name, const float *got, size_t n, const char *case_name) {
    double atol, rtol;
    th_tolerance(c, name, &atol, &rtol);
    const is_tensor *exp = th_tensor(st, name);
    if (g_measure) {
        double x = th_bf16_excess(got, n, exp, th_bf16_tolerance(GROUP, name), atol);
        if (x > g_worst) g_worst = x, snprintf(g_worst_name, sizeof g_worst_name, "%s", name);
        return;
    }
    char what[256];
    snprintf(what, sizeof what, "%s%s: %s", case_name, g_bf16 ? " [bf16]" : "", name);
    double rel = g_bf16 ? th_bf16_tolerance(GROUP, name) : 0;
    if (!exp) return;
    if (rel > 0) th_close_rel(what, got, n, exp, rel, TH_BF16_MAX_RMS, atol);
    else th_close(what, got, n, exp, atol, rtol);
}

/* ---------------------------------------------------------------- goldens from ids */

static void encode_and_compare(const cJSON *c, const is_st *st, is_clip_text *te1, is_clip_text *te2,
                               const char *ids1_name, const char *ids2_name, const char *embeds_name,
                               const char *pooled_name, const char *case_name) {
    int n1 = 0, n2 = 0;
    int32_t *ids1 = ids_of(st, ids1_name, &n1), *ids2 = ids_of(st, ids2_name, &n2);
    if (ids1 && ids2 && n1 == n2) {
        int dim = is_clip_text_hidden_size(te1) + is_clip_text_hidden_size(te2);
        float *embeds = malloc((size_t)n1 * (size_t)dim * sizeof(float));
        float *pooled = malloc((size_t)is_clip_text_projection_dim(te2) * sizeof(float));
        encode_pair(te1, te2, ids1, ids2, n1, embeds, pooled);
        compare(c, st, embeds_name, embeds, (size_t)n1 * (size_t)dim, case_name);
        compare(c, st, pooled_name, pooled, (size_t)is_clip_text_projection_dim(te2), case_name);
        free(embeds);
        free(pooled);
    }
    free(ids1);
    free(ids2);
}

/* A case's prompt (and negative prompt, when it has one) through both encoders. */
static void compare_case(const cJSON *c, const is_st *st, is_clip_text *te1, is_clip_text *te2, const char *name) {
    encode_and_compare(c, st, te1, te2, "input_ids_1", "input_ids_2", "prompt_embeds", "pooled_prompt_embeds", name);
    if (is_st_find(st, "negative_input_ids_1"))
        encode_and_compare(c, st, te1, te2, "negative_input_ids_1", "negative_input_ids_2", "negative_prompt_embeds",
                           "negative_pooled_prompt_embeds", name);
}

static void test_encoders_from_golden_ids(void) {
    char *d1 = th_golden_path("models/tiny-sdxl/text_encoder"), *d2 = th_golden_path("models/tiny-sdxl/text_encoder_2");
    is_clip_text *te1 = NULL, *te2 = NULL;
    if (th_ok(is_clip_text_load(d1, &te1), d1) && th_ok(is_clip_text_load(d2, &te2), d2)) {
        th_check(is_clip_text_hidden_size(te1) == 32 && is_clip_text_projection_dim(te1) == 0, "text_encoder: 32, no proj");
        th_check(is_clip_text_hidden_size(te2) == 64 && is_clip_text_projection_dim(te2) == 48, "text_encoder_2: 64, proj 48");
        th_check(is_clip_text_max_positions(te1) == 77, "max positions 77");
        cJSON *root = th_load_cases(GROUP), *c;
        /* f32, then both encoders in bf16 (when this CPU has bf16), then f32 again */
        int passes = is_precision_resolve(IS_PRECISION_BF16, NULL, 0) == IS_PRECISION_BF16 ? 3 : 1;
        for (int pass = 0; pass < passes; pass++) {
            g_bf16 = pass == 1;
            if (pass > 0) {
                is_precision p = g_bf16 ? IS_PRECISION_BF16 : IS_PRECISION_F32;
                th_ok(is_clip_text_set_precision(te1, p), "text_encoder set_precision");
                th_ok(is_clip_text_set_precision(te2, p), "text_encoder_2 set_precision");
            }
            cJSON_ArrayForEach(c, cJSON_GetObjectItem(root, "cases")) {
                const char *name = cJSON_GetObjectItem(c, "name")->valuestring;
                is_st *st = th_open_expected(GROUP, cJSON_GetObjectItem(c, "expected")->valuestring);
                if (!st) continue;
                compare_case(c, st, te1, te2, name);
                is_st_close(st);
            }
        }
        g_bf16 = 0;
        cJSON_Delete(root);

        /* Bad inputs to forward give argument errors, never crashes. */
        int32_t ids[78] = {49406, 49408};
        float pooled[64];
        th_fails(is_clip_text_forward(te1, ids, 2, NULL, NULL, pooled, NULL), "outside the vocabulary", "id >= vocab");
        ids[1] = -1;
        th_fails(is_clip_text_forward(te1, ids, 2, NULL, NULL, pooled, NULL), "outside the vocabulary", "negative id");
        ids[1] = 49407;
        th_fails(is_clip_text_forward(te1, ids, 78, NULL, NULL, pooled, NULL), "max_position_embeddings", "78 tokens");
        th_fails(is_clip_text_forward(te1, ids, 0, NULL, NULL, pooled, NULL), "max_position_embeddings", "0 tokens");
        th_fails(is_clip_text_forward(te1, ids, 2, NULL, NULL, NULL, pooled), "no text_projection",
                 "text_embeds of a model without projection");
    }
    is_clip_text_free(te1);
    is_clip_text_free(te2);
    free(d1);
    free(d2);
}

/* Sensitivity: bugs of the kinds a bf16 path can have, simulated in one f32 encoder, must fail the bf16
 * tolerances on the cases simple and neg_text (docs/PRECISION.md). text_encoder_2 stores BF16. */
static void test_bf16_sensitivity(void) {
    static const struct {
        int must_fail, encoder;
        const char *what;
        th_bug_edit e[2];
    } bugs[] = {
        {1, 1, "wrong layout: text_encoder layer 1 q_proj transposed",
         {{"text_model.encoder.layers.1.self_attn.q_proj.weight", TH_BUG_TRANSPOSE}}},
        {1, 2, "wrong layout: text_encoder_2 layer 0 out_proj transposed",
         {{"text_model.encoder.layers.0.self_attn.out_proj.weight", TH_BUG_TRANSPOSE}}},
        {1, 2, "wrong layout: text_encoder_2 last layer k_proj transposed (only the pooled embedding sees it)",
         {{"text_model.encoder.layers.2.self_attn.k_proj.weight", TH_BUG_TRANSPOSE}}},
        {1, 1, "f16 misread as bf16: text_encoder layer 0 fc1", {{"text_model.encoder.layers.0.mlp.fc1.weight", TH_BUG_F16_AS_BF16}}},
        {1, 1, "f16 misread as bf16: text_encoder layer 1 v_proj",
         {{"text_model.encoder.layers.1.self_attn.v_proj.weight", TH_BUG_F16_AS_BF16}}},
        {1, 1, "missing bias: every linear layer of text_encoder", {{"text_model.encoder.layers.*_proj.bias", TH_BUG_ZERO}, {"text_model.encoder.layers.*.fc?.bias", TH_BUG_ZERO}}},
        {1, 2, "missing bias: every linear layer of text_encoder_2", {{"text_model.encoder.layers.*_proj.bias", TH_BUG_ZERO}, {"text_model.encoder.layers.*.fc?.bias", TH_BUG_ZERO}}},
        {0, 1, "missing bias: text_encoder layer 1 fc2", {{"text_model.encoder.layers.1.mlp.fc2.bias", TH_BUG_ZERO}}},
    };
    char *d1 = th_golden_path("models/tiny-sdxl/text_encoder"), *d2 = th_golden_path("models/tiny-sdxl/text_encoder_2");
    cJSON *root = th_load_cases(GROUP), *c;
    for (size_t i = 0; i < sizeof bugs / sizeof bugs[0]; i++) {
        char name[32];
        snprintf(name, sizeof name, "text-encoder-bug-%zu", i);
        char *dir = th_bugged_model(bugs[i].encoder == 1 ? d1 : d2, "model.safetensors", name, bugs[i].e, bugs[i].e[1].tensor ? 2 : 1);
        is_clip_text *te1 = NULL, *te2 = NULL;
        if (dir && th_ok(is_clip_text_load(bugs[i].encoder == 1 ? dir : d1, &te1), "text_encoder") &&
            th_ok(is_clip_text_load(bugs[i].encoder == 2 ? dir : d2, &te2), "text_encoder_2")) {
            g_measure = 1;
            g_worst = 0;
            g_worst_name[0] = 0;
            cJSON_ArrayForEach(c, cJSON_GetObjectItem(root, "cases")) {
                const char *cn = cJSON_GetObjectItem(c, "name")->valuestring;
                if (strcmp(cn, "simple") && strcmp(cn, "neg_text")) continue;
                is_st *st = th_open_expected(GROUP, cJSON_GetObjectItem(c, "expected")->valuestring);
                if (!st) continue;
                compare_case(c, st, te1, te2, cn);
                is_st_close(st);
            }
            g_measure = 0;
            th_bug_verdict(bugs[i].must_fail, bugs[i].what, g_worst_name, g_worst);
        }
        is_clip_text_free(te1);
        is_clip_text_free(te2);
        free(dir);
    }
    cJSON_Delete(root);
    free(d1);
    free(d2);
}

/* ---------------------------------------------------------------- crafted tiny model */

enum { T_H = 8, T_I = 16, T_HEADS = 2, T_V = 10, T_P = 6 };

typedef struct {
    int layers;
    const char *skip_tensor;    /* leave this tensor out */
    const char *bad_tensor;     /* give this tensor a wrong shape [3] */
    const char *drop_field;     /* leave this config field out */
    int eos_token_id;
    int with_projection;
} tiny_spec;

static float tiny_value(const char *name, int64_t i) {
    unsigned h = 2166136261u;
    for (const char *p = name; *p; p++) h = (h ^ (unsigned char)*p) * 16777619u;
    return 0.2f * sinf((float)(h % 1000) + 0.37f * (float)i);
}

static void tiny_add(is_st_writer *w, const tiny_spec *s, const char *name, int64_t d0, int64_t d1) {
    if (s->skip_tensor && strcmp(name, s->skip_tensor) == 0) return;
    int64_t shape[2] = {d0, d1};
    int ndim = d1 < 0 ? 1 : 2;
    if (s->bad_tensor && strcmp(name, s->bad_tensor) == 0) shape[0] = 3, ndim = 1;
    int64_t n = ndim == 1 ? shape[0] : shape[0] * shape[1];
    float *data = malloc((size_t)n * sizeof(float));
    for (int64_t i = 0; i < n; i++) data[i] = tiny_value(name, i);
    th_ok(is_st_writer_add_f32(w, name, ndim, shape, data), name);
    free(data);
}

/* Write a tiny CLIP text model folder under the test tmpdir; returns its path. */
static char *tiny_model(const char *dirname, const tiny_spec *s) {
    char *dir = is_path_join(th_tmpdir(), dirname);
    char cmd[4200];
    snprintf(cmd, sizeof cmd, "mkdir -p '%s'", dir);
    th_check(system(cmd) == 0, "mkdir %s", dir);
    const char *fields[][2] = {
        {"hidden_size", "8"}, {"intermediate_size", "16"}, {"num_attention_heads", "2"}, {"num_hidden_layers", NULL},
        {"max_position_embeddings", "6"}, {"vocab_size", "10"}, {"hidden_act", "\"quick_gelu\""},
        {"layer_norm_eps", "1e-05"}, {"eos_token_id", NULL}, {"projection_dim", "4"},
    };
    char json[2048] = "{\"architectures\": [\"", num[2][16];
    strcat(json, s->with_projection ? "CLIPTextModelWithProjection\"]" : "CLIPTextModel\"]");
    snprintf(num[0], sizeof num[0], "%d", s->layers);
    snprintf(num[1], sizeof num[1], "%d", s->eos_token_id);
    for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++) {
        if (s->drop_field && strcmp(fields[i][0], s->drop_field) == 0) continue;
        const char *v = fields[i][1] ? fields[i][1] : (i == 3 ? num[0] : num[1]);
        snprintf(json + strlen(json), sizeof json - strlen(json), ", \"%s\": %s", fields[i][0], v);
    }
    strcat(json, "}\n");
    char *cfg = is_path_join(dir, "config.json");
    th_ok(is_write_file_atomic(cfg, json, strlen(json)), cfg);
    free(cfg);

    is_st_writer *w = is_st_writer_new();
    char name[256];
    tiny_add(w, s, "text_model.embeddings.token_embedding.weight", T_V, T_H);
    tiny_add(w, s, "text_model.embeddings.position_embedding.weight", T_P, T_H);
    tiny_add(w, s, "text_model.final_layer_norm.weight", T_H, -1);
    tiny_add(w, s, "text_model.final_layer_norm.bias", T_H, -1);
    if (s->with_projection) tiny_add(w, s, "text_projection.weight", 4, T_H);
    static const char *sq[] = {"self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.out_proj"};
    for (int l = 0; l < s->layers; l++) {
        for (int j = 0; j < 4; j++) {
            snprintf(name, sizeof name, "text_model.encoder.layers.%d.%s.weight", l, sq[j]);
            tiny_add(w, s, name, T_H, T_H);
            snprintf(name, sizeof name, "text_model.encoder.layers.%d.%s.bias", l, sq[j]);
            tiny_add(w, s, name, T_H, -1);
        }
        for (int j = 1; j <= 2; j++) {
            snprintf(name, sizeof name, "text_model.encoder.layers.%d.layer_norm%d.weight", l, j);
            tiny_add(w, s, name, T_H, -1);
            snprintf(name, sizeof name, "text_model.encoder.layers.%d.layer_norm%d.bias", l, j);
            tiny_add(w, s, name, T_H, -1);
        }
        snprintf(name, sizeof name, "text_model.encoder.layers.%d.mlp.fc1.weight", l);
        tiny_add(w, s, name, T_I, T_H);
        snprintf(name, sizeof name, "text_model.encoder.layers.%d.mlp.fc1.bias", l);
        tiny_add(w, s, name, T_I, -1);
        snprintf(name, sizeof name, "text_model.encoder.layers.%d.mlp.fc2.weight", l);
        tiny_add(w, s, name, T_H, T_I);
        snprintf(name, sizeof name, "text_model.encoder.layers.%d.mlp.fc2.bias", l);
        tiny_add(w, s, name, T_H, -1);
    }
    char *st_path = is_path_join(dir, "model.safetensors");
    th_ok(is_st_writer_save(w, st_path), st_path);
    is_st_writer_free(w);
    free(st_path);
    return dir;
}

static void expect_load_error(const char *dirname, const tiny_spec *s, const char *needle, const char *what) {
    char *dir = tiny_model(dirname, s);
    is_clip_text *m = (is_clip_text *)1;
    th_fails(is_clip_text_load(dir, &m), needle, what);
    th_check(m == NULL, "%s: no model on failure", what);
    free(dir);
}

static void test_load_errors(void) {
    tiny_spec s = {.layers = 2, .eos_token_id = 2};
    s.skip_tensor = "text_model.encoder.layers.1.mlp.fc1.bias";
    expect_load_error("clip_missing_tensor", &s, "missing tensor 'text_model.encoder.layers.1.mlp.fc1.bias'",
                      "missing weight");
    s.skip_tensor = NULL;
    s.bad_tensor = "text_model.encoder.layers.0.self_attn.k_proj.weight";
    expect_load_error("clip_bad_shape", &s, "text_model.encoder.layers.0.self_attn.k_proj.weight", "wrong-shaped weight");
    expect_load_error("clip_bad_shape", &s, "expected [8, 8]", "wrong shape names the expected shape");
    s.bad_tensor = NULL;
    s.drop_field = "num_hidden_layers";
    expect_load_error("clip_missing_field", &s, "missing field 'num_hidden_layers'", "missing config field");
    s.drop_field = "projection_dim";
    s.with_projection = 1;
    expect_load_error("clip_missing_proj_dim", &s, "missing field 'projection_dim'", "missing projection_dim");
    s.drop_field = NULL;
    s.skip_tensor = "text_projection.weight";
    expect_load_error("clip_missing_proj", &s, "missing tensor 'text_projection.weight'",
                      "WithProjection without text_projection");

    char *nodir = is_path_join(th_tmpdir(), "clip_no_such_dir");
    is_clip_text *m = NULL;
    th_fails(is_clip_text_load(nodir, &m), "config.json", "missing folder names config.json");
    free(nodir);
}

/* One layer: hidden_states[-2] is the embedding output itself. Pooling rules on both configs. */
static void test_tiny_behaviour(void) {
    tiny_spec s = {.layers = 1, .eos_token_id = 2, .with_projection = 1};
    char *dir = tiny_model("clip_tiny_1layer", &s);
    is_clip_text *m = NULL;
    if (th_ok(is_clip_text_load(dir, &m), "tiny 1-layer model")) {
        int32_t ids[5] = {1, 9, 4, 9, 0};
        float pen[5 * T_H], last[5 * T_H], pooled[T_H], emb[4], emb_only[4];
        th_ok(is_clip_text_forward(m, ids, 5, pen, last, pooled, emb), "tiny forward");
        double worst = 0;
        for (int t = 0; t < 5; t++)
            for (int i = 0; i < T_H; i++) {
                float want = tiny_value("text_model.embeddings.token_embedding.weight", ids[t] * T_H + i) +
                             tiny_value("text_model.embeddings.position_embedding.weight", t * T_H + i);
                worst = fmax(worst, fabs(pen[t * T_H + i] - want));
            }
        th_check(worst < 1e-6, "1 layer: penultimate = embeddings (worst %.3g)", worst);
        th_check(is_clip_text_pooled_position(m, ids, 5) == 1, "eos_token_id 2: argmax, first maximum");
        th_check(memcmp(pooled, last + 1 * T_H, sizeof pooled) == 0, "pooled = last_hidden[argmax]");
        th_ok(is_clip_text_forward(m, ids, 5, NULL, NULL, NULL, emb_only), "text_embeds only");
        th_check(memcmp(emb, emb_only, sizeof emb) == 0, "text_embeds independent of other outputs");
    }
    is_clip_text_free(m);
    free(dir);

    s.eos_token_id = 4;
    dir = tiny_model("clip_tiny_eos4", &s);
    m = NULL;
    if (th_ok(is_clip_text_load(dir, &m), "tiny eos=4 model")) {
        int32_t ids[5] = {1, 9, 4, 9, 4}, none[3] = {1, 9, 3};
        th_check(is_clip_text_pooled_position(m, ids, 5) == 2, "eos_token_id 4: first eos position");
        th_check(is_clip_text_pooled_position(m, none, 3) == 0, "no eos: position 0");
    }
    is_clip_text_free(m);
    free(dir);
}

/* ---------------------------------------------------------------- prompt level (through the tokenizers) */

static const char *json_str(const cJSON *c, const char *key) {
    const cJSON *v = cJSON_GetObjectItem(c, key);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

static void compare_ids(const cJSON *c, const is_st *st, const char *name, const int32_t *ids, int n, const char *case_name) {
    float *f = malloc((size_t)n * sizeof(float));
    for (int i = 0; i < n; i++) f[i] = (float)ids[i]; /* ids < 2^24: exact in float */
    compare(c, st, name, f, (size_t)n, case_name);
    free(f);
}

/* Tokenize + encode one (prompt, prompt_2) through the prompt layer and compare ids and embeddings. */
static void prompt_case(const cJSON *c, const is_st *st, is_sdxl_text *t, const char *prompt, const char *prompt_2,
                        const char *prefix, const char *case_name) {
    int n = is_sdxl_text_seq_len(t), dim = is_sdxl_text_embed_dim(t), pd = is_sdxl_text_pooled_dim(t);
    int32_t *ids_1 = malloc((size_t)n * sizeof(int32_t)), *ids_2 = malloc((size_t)n * sizeof(int32_t));
    float *embeds = malloc((size_t)n * (size_t)dim * sizeof(float)), *pooled = malloc((size_t)pd * sizeof(float));
    char name[128];
    int zeros = -1;
    is_prompt_info info = {-1, -1};
    th_ok(is_sdxl_tokenize(t, prompt, prompt_2, ids_1, ids_2, &zeros, &info), "tokenize");
    snprintf(name, sizeof name, "%sinput_ids_1", prefix);
    if (is_st_find(st, name)) {
        th_check(zeros == 0, "%s: %s prompt is encoded, not zeros", case_name, prefix);
        compare_ids(c, st, name, ids_1, n, case_name);
        snprintf(name, sizeof name, "%sinput_ids_2", prefix);
        compare_ids(c, st, name, ids_2, n, case_name);
        int long_case = strcmp(case_name, "long_truncated") == 0 && !*prefix;
        th_check(long_case ? info.truncated_1 > 0 && info.truncated_2 > 0 : info.truncated_1 == 0 && info.truncated_2 == 0,
                 "%s: %struncation count %d/%d", case_name, prefix, info.truncated_1, info.truncated_2);
    } else {
        th_check(zeros == 1, "%s: no %sids in the golden -> zeros", case_name, prefix);
    }
    th_ok(is_sdxl_encode_prompt(t, prompt, prompt_2, embeds, pooled, NULL), "encode_prompt");
    snprintf(name, sizeof name, "%sprompt_embeds", prefix);
    compare(c, st, name, embeds, (size_t)n * (size_t)dim, case_name);
    snprintf(name, sizeof name, "%spooled_prompt_embeds", prefix);
    compare(c, st, name, pooled, (size_t)pd, case_name);
    free(ids_1), free(ids_2), free(embeds), free(pooled);
}

static void test_prompts_through_tokenizers(is_sdxl_text *t) {
    th_check(is_sdxl_text_seq_len(t) == 77, "seq_len 77");
    th_check(is_sdxl_text_embed_dim(t) == 96, "embed_dim 32+64");
    th_check(is_sdxl_text_pooled_dim(t) == 48, "pooled_dim 48");
    th_check(is_sdxl_text_force_zeros(t) == 1, "force_zeros_for_empty_prompt from model_index.json");
    cJSON *root = th_load_cases(GROUP), *c;
    cJSON_ArrayForEach(c, cJSON_GetObjectItem(root, "cases")) {
        const char *name = json_str(c, "name");
        is_st *st = th_open_expected(GROUP, json_str(c, "expected"));
        if (!st) continue;
        prompt_case(c, st, t, json_str(c, "prompt"), json_str(c, "prompt_2"), "", name);
        if (cJSON_IsTrue(cJSON_GetObjectItem(c, "do_classifier_free_guidance")))
            prompt_case(c, st, t, json_str(c, "negative_prompt"), json_str(c, "negative_prompt_2"), "negative_", name);
        is_st_close(st);
    }
    cJSON_Delete(root);
}

/* InstantStyle's content prompt: its pooled embedding is content_text_embeds in content_subtraction. */
static void test_content_text_embeds(is_sdxl_text *t) {
    cJSON *root = th_load_cases("content_subtraction"), *c;
    float *pooled = malloc((size_t)is_sdxl_text_pooled_dim(t) * sizeof(float));
    cJSON_ArrayForEach(c, cJSON_GetObjectItem(root, "cases")) {
        is_st *st = th_open_expected("content_subtraction", json_str(c, "expected"));
        if (!st) continue;
        th_ok(is_sdxl_encode_prompt(t, json_str(c, "content_prompt"), NULL, NULL, pooled, NULL), "content prompt");
        double atol, rtol;
        th_tolerance(c, "content_text_embeds", &atol, &rtol);
        const is_tensor *exp = th_tensor(st, "content_text_embeds");
        char what[256];
        snprintf(what, sizeof what, "content_subtraction %s: content_text_embeds", json_str(c, "name"));
        if (exp) th_close(what, pooled, (size_t)is_sdxl_text_pooled_dim(t), exp, atol, rtol);
        is_st_close(st);
    }
    free(pooled);
    cJSON_Delete(root);
}

/* A pipeline folder in the tmpdir: symlinks to the golden components and our own model_index.json. */
static char *pipeline_dir(const char *dirname, const char *model_index, const char *skip_component) {
    char *dir = is_path_join(th_tmpdir(), dirname), cmd[8192];
    snprintf(cmd, sizeof cmd, "rm -rf '%s' && mkdir -p '%s'", dir, dir);
    th_check(system(cmd) == 0, "mkdir %s", dir);
    static const char *parts[] = {"tokenizer", "tokenizer_2", "text_encoder", "text_encoder_2"};
    for (int i = 0; i < 4; i++) {
        if (skip_component && strcmp(parts[i], skip_component) == 0) continue;
        snprintf(cmd, sizeof cmd, "ln -s '%s/models/tiny-sdxl/%s' '%s/%s'", th_golden(), parts[i], dir, parts[i]);
        th_check(system(cmd) == 0, "link %s", parts[i]);
    }
    char *mi = is_path_join(dir, "model_index.json");
    th_ok(is_write_file_atomic(mi, model_index, strlen(model_index)), mi);
    free(mi);
    return dir;
}

/* force_zeros_for_empty_prompt false: a missing prompt is encoded as "" (neg_empty_string's negatives);
 * its prompt_2 is still used for tokenizer_2 (negative_prompt_2 = negative_prompt_2 or ""). */
static void test_no_force_zeros(is_sdxl_text *ref) {
    char *dir = pipeline_dir("sdxl_no_force_zeros", "{\"force_zeros_for_empty_prompt\": false}", NULL);
    is_sdxl_text *t = NULL;
    is_st *st = th_open_expected(GROUP, "neg_empty_string.safetensors");
    cJSON *root = th_load_cases(GROUP), *c, *neg = NULL;
    cJSON_ArrayForEach(c, cJSON_GetObjectItem(root, "cases")) if (strcmp(json_str(c, "name"), "neg_empty_string") == 0) neg = c;
    if (st && neg && th_ok(is_sdxl_text_load(dir, &t), dir)) {
        th_check(is_sdxl_text_force_zeros(t) == 0, "force_zeros false read");
        prompt_case(neg, st, t, NULL, NULL, "negative_", "no_force_zeros NULL prompt");
        int n = is_sdxl_text_seq_len(t);
        int32_t a1[77], a2[77], b1[77], b2[77];
        int zeros = -1;
        if (n == 77) {
            th_ok(is_sdxl_tokenize(t, NULL, "people, text", a1, a2, &zeros, NULL), "tokenize NULL + prompt_2");
            th_ok(is_sdxl_tokenize(ref, "", "people, text", b1, b2, NULL, NULL), "tokenize \"\" + prompt_2");
            th_check(zeros == 0 && memcmp(a1, b1, sizeof a1) == 0 && memcmp(a2, b2, sizeof a2) == 0,
                     "NULL prompt without force_zeros = (\"\", prompt_2)");
        }
    }
    is_sdxl_text_free(t);
    is_st_close(st);
    cJSON_Delete(root);
    free(dir);
}

static void test_prompt_load_errors(void) {
    is_sdxl_text *t = (is_sdxl_text *)1;
    char *dir = pipeline_dir("sdxl_missing_te2", "{}", "text_encoder_2");
    th_fails(is_sdxl_text_load(dir, &t), "text_encoder_2/config.json", "missing text_encoder_2 folder");
    th_check(t == NULL, "no handle on failure");
    free(dir);
    dir = pipeline_dir("sdxl_refiner", "{\"text_encoder\": [null, null]}", NULL);
    th_fails(is_sdxl_text_load(dir, &t), "'text_encoder' is null", "refiner-style pipeline refused");
    free(dir);
    dir = pipeline_dir("sdxl_bad_force_zeros", "{\"force_zeros_for_empty_prompt\": \"yes\"}", NULL);
    th_fails(is_sdxl_text_load(dir, &t), "force_zeros_for_empty_prompt", "non-bool force_zeros names the field");
    free(dir);
    char *nodir = is_path_join(th_tmpdir(), "sdxl_no_such_dir");
    th_fails(is_sdxl_text_load(nodir, &t), "model_index.json", "missing folder names model_index.json");
    free(nodir);
}

static void test_prompt_level(void) {
    char *model = th_golden_path("models/tiny-sdxl");
    is_sdxl_text *t = NULL;
    if (th_ok(is_sdxl_text_load(model, &t), model)) {
        test_prompts_through_tokenizers(t);
        test_content_text_embeds(t);
        test_no_force_zeros(t);
        /* both encoders through the prompt layer's set_precision */
        if (is_precision_resolve(IS_PRECISION_BF16, NULL, 0) == IS_PRECISION_BF16 &&
            th_ok(is_sdxl_text_set_precision(t, IS_PRECISION_BF16), "sdxl_text set_precision(BF16)")) {
            g_bf16 = 1;
            test_prompts_through_tokenizers(t);
            g_bf16 = 0;
        }
    }
    is_sdxl_text_free(t);
    free(model);
    test_prompt_load_errors();
}

int main(void) {
    is_set_threads(2);
    test_encoders_from_golden_ids();
    if (is_precision_resolve(IS_PRECISION_BF16, NULL, 0) == IS_PRECISION_BF16) test_bf16_sensitivity();
    test_load_errors();
    test_tiny_behaviour();
    test_prompt_level();
    return th_done();
}
