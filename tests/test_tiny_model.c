/* make-tiny-model: every file exists and parses; tensor names, shapes and dtypes match what the
 * loaders expect (checked against the golden tiny model, which the real diffusers / transformers
 * / h94 code saved); configs agree; every loader accepts the files and one forward of each network
 * (and a short end-to-end generate, also with the ControlNet) gives finite numbers; weights are
 * deterministic in the seed; error paths. */
#define _XOPEN_SOURCE 700
#include <ftw.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/config.h"
#include "core/fileio.h"
#include "core/safetensors.h"
#include "harness.h"
#include "instantstyle.h"

static char g_dir[4096];

/* Config keys that name versions or storage, not structure. */
static const char *const NON_STRUCTURAL[] = {"_diffusers_version", "transformers_version", "torch_dtype", "vocab_size"};

typedef struct {
    const char *golden;   /* relative to golden models/ */
    const char *mine;     /* relative to the generated folder */
    const char *config;   /* config.json next to both, relative the same way (NULL: none) */
    const char *config_mine;
    is_dtype dtype;       /* dtype of every generated tensor */
} component;

static const component COMPONENTS[] = {
    {"tiny-sdxl/unet/diffusion_pytorch_model.safetensors", "sdxl/unet/diffusion_pytorch_model.safetensors",
     "tiny-sdxl/unet/config.json", "sdxl/unet/config.json", IS_DT_F16},
    {"tiny-sdxl/vae/diffusion_pytorch_model.safetensors", "sdxl/vae/diffusion_pytorch_model.safetensors",
     "tiny-sdxl/vae/config.json", "sdxl/vae/config.json", IS_DT_F32},
    {"tiny-sdxl/text_encoder/model.safetensors", "sdxl/text_encoder/model.safetensors",
     "tiny-sdxl/text_encoder/config.json", "sdxl/text_encoder/config.json", IS_DT_F16},
    {"tiny-sdxl/text_encoder_2/model.safetensors", "sdxl/text_encoder_2/model.safetensors",
     "tiny-sdxl/text_encoder_2/config.json", "sdxl/text_encoder_2/config.json", IS_DT_F16},
    {"tiny-ip-adapter/image_encoder/model.safetensors", "ip-adapter/image_encoder/model.safetensors",
     "tiny-ip-adapter/image_encoder/config.json", "ip-adapter/image_encoder/config.json", IS_DT_F16},
    /* The adapter has no config: its sizes follow the UNet's and the image encoder's. */
    {"tiny-ip-adapter/ip-adapter_sdxl.safetensors", "ip-adapter/ip-adapter_sdxl.safetensors",
     "tiny-sdxl/unet/config.json", "sdxl/unet/config.json", IS_DT_F16},
    {"tiny-controlnet/diffusion_pytorch_model.safetensors", "controlnet/diffusion_pytorch_model.safetensors",
     "tiny-controlnet/config.json", "controlnet/config.json", IS_DT_F16},
};

static const char *const JSON_FILES[] = {
    "sdxl/model_index.json", "sdxl/scheduler/scheduler_config.json",
    "sdxl/tokenizer/vocab.json", "sdxl/tokenizer/special_tokens_map.json", "sdxl/tokenizer/tokenizer_config.json",
    "sdxl/tokenizer_2/vocab.json", "sdxl/tokenizer_2/special_tokens_map.json",
    "sdxl/tokenizer_2/tokenizer_config.json", "sdxl/text_encoder/config.json", "sdxl/text_encoder_2/config.json",
    "sdxl/unet/config.json", "sdxl/vae/config.json", "ip-adapter/image_encoder/config.json",
    "ip-adapter/image_encoder/preprocessor_config.json", "controlnet/config.json",
};

static char *mine(const char *rel) { return is_path_join(g_dir, rel); }

static char *golden_model(const char *rel) {
    char buf[4096];
    snprintf(buf, sizeof buf, "models/%s", rel);
    return th_golden_path(buf);
}

static cJSON *load_json(const char *path) {
    is_config cfg;
    if (!th_ok(is_config_load(path, &cfg), path)) return NULL;
    cJSON *root = cfg.root;
    cfg.root = NULL;
    is_config_free(&cfg);
    return root;
}

/* Compare two configs ignoring NON_STRUCTURAL keys; 1 when they describe the same structure. */
static int same_structure(const char *golden_path, const char *mine_path) {
    cJSON *a = load_json(golden_path), *b = load_json(mine_path);
    int same = 0;
    if (a && b) {
        for (size_t i = 0; i < sizeof NON_STRUCTURAL / sizeof *NON_STRUCTURAL; i++) {
            cJSON_DeleteItemFromObjectCaseSensitive(a, NON_STRUCTURAL[i]);
            cJSON_DeleteItemFromObjectCaseSensitive(b, NON_STRUCTURAL[i]);
        }
        same = cJSON_Compare(a, b, 1);
    }
    cJSON_Delete(a);
    cJSON_Delete(b);
    return same;
}

/* Name with every digit run replaced by '#', for comparing layouts of different sizes. */
static void pattern(const char *name, char *out, size_t cap) {
    size_t k = 0;
    for (const char *p = name; *p && k + 1 < cap; p++) {
        if (*p >= '0' && *p <= '9') {
            if (k == 0 || out[k - 1] != '#') out[k++] = '#';
        } else {
            out[k++] = *p;
        }
    }
    out[k] = '\0';
}

static int has_pattern(const is_st *st, const char *pat) {
    char buf[512];
    for (size_t i = 0; i < is_st_count(st); i++) {
        pattern(is_st_at(st, i)->name, buf, sizeof buf);
        if (!strcmp(buf, pat)) return 1;
    }
    return 0;
}

/* Token embeddings have one row per vocabulary entry: each side's own vocab_size. */
static int64_t vocab_rows(const char *config_path) {
    is_config cfg;
    int64_t v = -1;
    if (is_config_load(config_path, &cfg)) return -1;
    is_error *e = is_config_int(&cfg, "vocab_size", &v);
    is_error_free(e);
    is_config_free(&cfg);
    return v;
}

static void check_component(const component *c) {
    char *gp = golden_model(c->golden), *mp = mine(c->mine);
    char *gc = golden_model(c->config), *mc = mine(c->config_mine);
    is_st *g = NULL, *m = NULL;
    th_ok(is_st_open(gp, &g), gp);
    th_ok(is_st_open(mp, &m), mp);
    if (g && m) {
        const int same = same_structure(gc, mc);
        const int64_t g_vocab = vocab_rows(gc), m_vocab = vocab_rows(mc);
        int bad_names = 0, bad_shapes = 0, bad_dtypes = 0, nonfinite = 0;
        char pat[512];
        for (size_t i = 0; i < is_st_count(m); i++) { /* every generated tensor is one the loaders know */
            const is_tensor *t = is_st_at(m, i), *ref = is_st_find(g, t->name);
            if (t->dtype != c->dtype && bad_dtypes++ < 3) printf("  %s: %s is %s\n", c->mine, t->name, is_dtype_name(t->dtype));
            for (int64_t k = 0; k < t->numel; k++) nonfinite += !isfinite(is_tensor_get_f32(t, (size_t)k));
            pattern(t->name, pat, sizeof pat);
            if (same ? !ref : !has_pattern(g, pat)) {
                if (bad_names++ < 5) printf("  %s: unexpected tensor %s\n", c->mine, t->name);
                continue;
            }
            if (!same || !ref) continue;
            int shape_ok = ref->ndim == t->ndim;
            for (int d = 0; shape_ok && d < t->ndim; d++) {
                int64_t want = ref->shape[d];
                if (d == 0 && strstr(t->name, "token_embedding") && want == g_vocab) want = m_vocab;
                shape_ok = t->shape[d] == want;
            }
            if (!shape_ok && bad_shapes++ < 5) {
                char a[64], b[64];
                printf("  %s: %s is %s, golden %s\n", c->mine, t->name, is_shape_str(t->shape, t->ndim, a, sizeof a),
                       is_shape_str(ref->shape, ref->ndim, b, sizeof b));
            }
        }
        for (size_t i = 0; i < is_st_count(g); i++) { /* and nothing the loaders need is missing */
            const char *name = is_st_at(g, i)->name;
            pattern(name, pat, sizeof pat);
            if ((same ? !is_st_find(m, name) : !has_pattern(m, pat)) && bad_names++ < 5)
                printf("  %s: missing tensor %s\n", c->mine, name);
        }
        th_check(same, "%s: config has the golden structure (name->shape compared exactly)", c->config_mine);
        th_check(bad_names == 0, "%s: tensor names match the golden layout (%zu tensors, %d differ)", c->mine,
                 is_st_count(m), bad_names);
        th_check(bad_shapes == 0, "%s: tensor shapes match (%d differ)", c->mine, bad_shapes);
        th_check(bad_dtypes == 0, "%s: stored as %s", c->mine, is_dtype_name(c->dtype));
        th_check(nonfinite == 0, "%s: all weights finite", c->mine);
        const char *fmt = is_st_metadata(m, "format");
        th_check(fmt && !strcmp(fmt, "pt"), "%s: metadata format=pt", c->mine);
    }
    is_st_close(g);
    is_st_close(m);
    free(gp);
    free(mp);
    free(gc);
    free(mc);
}

static void check_files(void) {
    for (size_t i = 0; i < sizeof JSON_FILES / sizeof *JSON_FILES; i++) {
        char *p = mine(JSON_FILES[i]);
        cJSON_Delete(load_json(p));
        free(p);
    }
    const char *merges[] = {"sdxl/tokenizer/merges.txt", "sdxl/tokenizer_2/merges.txt"};
    for (int i = 0; i < 2; i++) {
        char *p = mine(merges[i]), *data = NULL;
        size_t n = 0;
        if (th_ok(is_read_file(p, 1 << 20, &data, &n), p))
            th_check(!strcmp(data, "#version: 0.2\n"), "%s: just the version header", merges[i]);
        free(data);
        free(p);
    }
}

/* Exact config values that are part of the task: pipeline class, scheduler, adapter dtype. */
static void check_configs(void) {
    static const char *const same_as_golden[][2] = {
        {"tiny-sdxl/model_index.json", "sdxl/model_index.json"},
        {"tiny-sdxl/scheduler/scheduler_config.json", "sdxl/scheduler/scheduler_config.json"},
        {"tiny-sdxl/tokenizer/special_tokens_map.json", "sdxl/tokenizer/special_tokens_map.json"},
        {"tiny-sdxl/tokenizer/tokenizer_config.json", "sdxl/tokenizer/tokenizer_config.json"},
        {"tiny-sdxl/tokenizer_2/special_tokens_map.json", "sdxl/tokenizer_2/special_tokens_map.json"},
        {"tiny-sdxl/tokenizer_2/tokenizer_config.json", "sdxl/tokenizer_2/tokenizer_config.json"},
        {"tiny-ip-adapter/image_encoder/preprocessor_config.json", "ip-adapter/image_encoder/preprocessor_config.json"},
    };
    for (size_t i = 0; i < sizeof same_as_golden / sizeof *same_as_golden; i++) {
        char *g = golden_model(same_as_golden[i][0]), *m = mine(same_as_golden[i][1]);
        th_check(same_structure(g, m), "%s equals the golden's", same_as_golden[i][1]);
        free(g);
        free(m);
    }
    is_config cfg;
    char *p = mine("sdxl/scheduler/scheduler_config.json");
    if (th_ok(is_config_load(p, &cfg), p)) {
        const char *cls = NULL, *sched = NULL, *spacing = NULL, *pred = NULL;
        double start = 0, end = 0;
        int64_t steps = 0, offset = 0;
        th_ok(is_config_string(&cfg, "_class_name", &cls), "scheduler _class_name");
        th_ok(is_config_string(&cfg, "beta_schedule", &sched), "beta_schedule");
        th_ok(is_config_string(&cfg, "timestep_spacing", &spacing), "timestep_spacing");
        th_ok(is_config_string(&cfg, "prediction_type", &pred), "prediction_type");
        th_ok(is_config_float(&cfg, "beta_start", &start), "beta_start");
        th_ok(is_config_float(&cfg, "beta_end", &end), "beta_end");
        th_ok(is_config_int(&cfg, "num_train_timesteps", &steps), "num_train_timesteps");
        th_ok(is_config_int(&cfg, "steps_offset", &offset), "steps_offset");
        th_check(cls && !strcmp(cls, "EulerDiscreteScheduler") && sched && !strcmp(sched, "scaled_linear") &&
                     spacing && !strcmp(spacing, "leading") && pred && !strcmp(pred, "epsilon") &&
                     start == 0.00085 && end == 0.012 && steps == 1000 && offset == 1,
                 "scheduler has SDXL base 1.0's values");
        is_config_free(&cfg);
    }
    free(p);
}

/* Byte-level vocabulary: the golden (real CLIP) vocabulary's first 512 entries, then the specials;
 * vocab_size in both text configs matches it. */
static void check_vocab(void) {
    char *gp = golden_model("tiny-sdxl/tokenizer/vocab.json");
    cJSON *g = load_json(gp);
    free(gp);
    for (int k = 0; k < 2; k++) {
        char *p = mine(k ? "sdxl/tokenizer_2/vocab.json" : "sdxl/tokenizer/vocab.json");
        cJSON *v = load_json(p);
        int n = 0, mismatches = 0;
        for (const cJSON *e = v ? v->child : NULL; e; e = e->next, n++) {
            const cJSON *ref = g ? cJSON_GetObjectItemCaseSensitive(g, e->string) : NULL;
            const int id = (int)e->valuedouble;
            if (id < 512 ? !ref || (int)ref->valuedouble != id : 0) mismatches++;
        }
        const cJSON *bos = v ? cJSON_GetObjectItemCaseSensitive(v, "<|startoftext|>") : NULL;
        const cJSON *eos = v ? cJSON_GetObjectItemCaseSensitive(v, "<|endoftext|>") : NULL;
        th_check(n == 514 && mismatches == 0, "%s: 512 byte symbols with CLIP's ids (%d entries, %d differ)", p, n,
                 mismatches);
        th_check(bos && eos && bos->valuedouble == 512 && eos->valuedouble == 513, "%s: specials last, EOS largest", p);
        char *cp = mine(k ? "sdxl/text_encoder_2/config.json" : "sdxl/text_encoder/config.json");
        th_check(vocab_rows(cp) == n, "%s: vocab_size %lld = vocabulary entries %d", cp, (long long)vocab_rows(cp), n);
        free(cp);
        cJSON_Delete(v);
        free(p);
    }
    cJSON_Delete(g);
}

/* The adapter covers each cross-attention (attn2) in diffusers' processor order: odd numbers only. */
static void check_adapter_numbering(void) {
    char *p = mine("ip-adapter/ip-adapter_sdxl.safetensors");
    is_st *st = NULL;
    if (th_ok(is_st_open(p, &st), p)) {
        int n = 0;
        char name[64];
        for (;; n++) {
            snprintf(name, sizeof name, "ip_adapter.%d.to_k_ip.weight", 2 * n + 1);
            if (!is_st_find(st, name)) break;
        }
        th_check(n == 17, "ip_adapter.1 ... ip_adapter.%d: 17 cross-attentions (got %d)", 2 * n - 1, n);
        th_check(is_st_count(st) == (size_t)(2 * n + 4), "only to_k_ip/to_v_ip pairs and image_proj (%zu tensors)",
                 is_st_count(st));
        th_check(!is_st_find(st, "ip_adapter.0.to_k_ip.weight") && !is_st_find(st, "ip_adapter.2.to_k_ip.weight"),
                 "no weights for self-attention (even numbers)");
    }
    is_st_close(st);
    free(p);
}

/* Random weights std ~0.02, norms 1 / 0, biases 0. */
static void check_init(void) {
    char *p = mine("sdxl/unet/diffusion_pytorch_model.safetensors");
    is_st *st = NULL;
    if (th_ok(is_st_open(p, &st), p)) {
        const is_tensor *w = is_st_find(st, "down_blocks.2.resnets.0.conv1.weight");
        const is_tensor *nw = is_st_find(st, "down_blocks.2.resnets.0.norm1.weight");
        const is_tensor *nb = is_st_find(st, "down_blocks.2.resnets.0.norm1.bias");
        if (w && nw && nb) {
            double s = 0, s2 = 0;
            for (int64_t i = 0; i < w->numel; i++) {
                double x = is_tensor_get_f32(w, (size_t)i);
                s += x;
                s2 += x * x;
            }
            double mean = s / (double)w->numel, sd = sqrt(s2 / (double)w->numel - mean * mean);
            th_check(fabs(mean) < 0.002 && fabs(sd - 0.02) < 0.002, "conv weights ~N(0, 0.02): mean %g std %g", mean, sd);
            th_check(is_tensor_get_f32(nw, 0) == 1.0f && is_tensor_get_f32(nb, 0) == 0.0f, "norm weight 1, bias 0");
        } else {
            th_check(0, "init check tensors present");
        }
    }
    is_st_close(st);
    free(p);
}

/* A trained ControlNet's zero convolutions (and its conditioning embedding's conv_out) start at zero;
 * the generated ones are random, so the residuals the tests add are not all zero. */
static void check_controlnet_init(void) {
    char *p = mine("controlnet/diffusion_pytorch_model.safetensors");
    is_st *st = NULL;
    if (th_ok(is_st_open(p, &st), p)) {
        static const char *const names[] = {"controlnet_down_blocks.0.weight", "controlnet_down_blocks.8.weight",
                                            "controlnet_mid_block.weight", "controlnet_cond_embedding.conv_out.weight"};
        for (size_t i = 0; i < sizeof names / sizeof *names; i++) {
            const is_tensor *w = is_st_find(st, names[i]);
            double s2 = 0;
            for (int64_t k = 0; w && k < w->numel; k++) {
                const double x = is_tensor_get_f32(w, (size_t)k);
                s2 += x * x;
            }
            const double sd = w ? sqrt(s2 / (double)w->numel) : 0;
            th_check(w && fabs(sd - 0.02) < 0.004, "%s: random, not zero (rms %g)", names[i], sd);
        }
    }
    is_st_close(st);
    free(p);
}

static int remove_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw) {
    (void)sb, (void)flag, (void)ftw;
    return remove(path);
}

static void remove_tree(const char *dir) { nftw(dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS); }

static int same_file(const char *a, const char *b) {
    char *x = NULL, *y = NULL;
    size_t nx = 0, ny = 0;
    int same = !is_read_file(a, 64 << 20, &x, &nx) && !is_read_file(b, 64 << 20, &y, &ny) && nx == ny &&
               !memcmp(x, y, nx);
    free(x);
    free(y);
    return same;
}

/* Same seed, same bytes (into a fresh nested folder: parents are created); another seed differs. */
static void check_determinism_and_errors(void) {
    char *fresh = is_path_join(th_tmpdir(), "tiny-model-fresh"), *other = is_path_join(th_tmpdir(), "tiny-model-seed1");
    char *nested = is_path_join(fresh, "a/b"), *file = is_path_join(fresh, "a-file");
    remove_tree(fresh);
    remove_tree(other);
    th_ok(is_make_tiny_model(nested, 0, 0), "generate into a new nested folder without --force");
    th_ok(is_make_tiny_model(other, 1, 0), "generate with seed 1");
    const char *files[] = {"sdxl/unet/diffusion_pytorch_model.safetensors", "sdxl/vae/diffusion_pytorch_model.safetensors",
                           "sdxl/text_encoder_2/model.safetensors", "ip-adapter/ip-adapter_sdxl.safetensors",
                           "controlnet/diffusion_pytorch_model.safetensors"};
    for (int i = 0; i < (int)(sizeof files / sizeof *files); i++) {
        char *a = is_path_join(g_dir, files[i]), *b = is_path_join(nested, files[i]), *c = is_path_join(other, files[i]);
        th_check(same_file(a, b), "%s: same seed, same bytes", files[i]);
        th_check(!same_file(a, c), "%s: another seed, other weights", files[i]);
        free(a);
        free(b);
        free(c);
    }
    /* Refusals: a non-empty folder without force; a path that is a file; no path. */
    th_fails(is_make_tiny_model(g_dir, 0, 0), "not empty (use --force", "non-empty folder refused without force");
    FILE *fp = fopen(file, "w");
    if (fp) fclose(fp);
    th_fails(is_make_tiny_model(file, 0, 1), "is not a directory", "a file as DIR is refused");
    th_fails(is_make_tiny_model("", 0, 0), "no output directory", "empty DIR refused");
    remove_tree(fresh);
    remove_tree(other);
    free(fresh);
    free(other);
    free(nested);
    free(file);
}

static int all_finite(const float *x, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (!isfinite(x[i])) return 0;
    return 1;
}

/* The loaders accept the generated files and one forward gives finite numbers. */
static void check_text_encoders(void) {
    const char *dirs[] = {"sdxl/text_encoder", "sdxl/text_encoder_2"};
    const int32_t ids[8] = {512, 40, 69, 76, 76, 79, 513, 513}; /* <|startoftext|> "hello" <|endoftext|> pad */
    for (int k = 0; k < 2; k++) {
        char *dir = mine(dirs[k]);
        is_clip_text *m = NULL;
        if (th_ok(is_clip_text_load(dir, &m), dir)) {
            const int h = is_clip_text_hidden_size(m), pd = is_clip_text_projection_dim(m);
            float *pen = malloc(sizeof(float) * 8 * (size_t)h), *pooled = malloc(sizeof(float) * (size_t)h);
            float *emb = malloc(sizeof(float) * (size_t)(pd > 0 ? pd : 1));
            th_check(is_clip_text_max_positions(m) == 77 && (k ? pd == 48 : pd == 0), "%s: sizes", dirs[k]);
            th_check(is_clip_text_pooled_position(m, ids, 8) == 6, "%s: pooled at the first EOS (argmax)", dirs[k]);
            if (th_ok(is_clip_text_forward(m, ids, 8, pen, NULL, pooled, pd > 0 ? emb : NULL), dirs[k]))
                th_check(all_finite(pen, 8 * (size_t)h) && all_finite(pooled, (size_t)h) &&
                             (pd <= 0 || all_finite(emb, (size_t)pd)),
                         "%s: forward is finite", dirs[k]);
            free(pen);
            free(pooled);
            free(emb);
        }
        is_clip_text_free(m);
        free(dir);
    }
}

static void check_tokenizers(void) {
    const char *dirs[] = {"sdxl/tokenizer", "sdxl/tokenizer_2"};
    for (int k = 0; k < 2; k++) {
        char *dir = mine(dirs[k]);
        is_tokenizer *tok = NULL;
        if (th_ok(is_tokenizer_load(dir, &tok), dir)) {
            int32_t *ids = NULL;
            size_t n = 0;
            /* No merges: each word is its bytes, the last one with </w> (id + 256); "Hi, é!" lowercased is
             * "hi" "," "é" (bytes C3 A9: ids 127, 102) "!" -- except that tokenizer_2's pad token is "!",
             * which (as in transformers) is split out as the special token itself, id 0. */
            if (th_ok(is_tokenizer_encode(tok, "Hi, \xc3\xa9!", &ids, &n), "encode")) {
                const int32_t want[] = {512, 71, 72 + 256, 11 + 256, 127, 102 + 256, k ? 0 : 256, 513};
                int same = n == sizeof want / sizeof *want;
                for (size_t i = 0; same && i < n; i++) same = ids[i] == want[i];
                th_check(same, "%s: byte-level ids (n=%zu)", dirs[k], n);
            }
            free(ids);
            th_check(is_tokenizer_bos_id(tok) == 512 && is_tokenizer_eos_id(tok) == 513 &&
                         is_tokenizer_pad_id(tok) == (k ? 0 : 513),
                     "%s: bos/eos/pad ids", dirs[k]);
        }
        is_tokenizer_free(tok);
        free(dir);
    }
}

static void check_prompt(void) {
    char *dir = mine("sdxl");
    is_sdxl_text *t = NULL;
    if (th_ok(is_sdxl_text_load(dir, &t), dir)) {
        const int s = is_sdxl_text_seq_len(t), e = is_sdxl_text_embed_dim(t), p = is_sdxl_text_pooled_dim(t);
        th_check(s == 77 && e == 96 && p == 48, "sdxl text sizes %d %d %d", s, e, p);
        float *emb = malloc(sizeof(float) * (size_t)(s * e)), *pooled = malloc(sizeof(float) * (size_t)p);
        if (th_ok(is_sdxl_encode_prompt(t, "a cat, watercolor", NULL, emb, pooled, NULL), "encode prompt"))
            th_check(all_finite(emb, (size_t)(s * e)) && all_finite(pooled, (size_t)p), "prompt embeddings finite");
        free(emb);
        free(pooled);
    }
    is_sdxl_text_free(t);
    free(dir);
}

static void check_vae(void) {
    char *dir = mine("sdxl/vae");
    is_vae *v = NULL;
    if (th_ok(is_vae_load(dir, &v), dir)) {
        const int c = is_vae_latent_channels(v), f = is_vae_scale(v), h = 4, w = 6;
        th_check(c == 4 && f == 8, "vae sizes");
        float *lat = malloc(sizeof(float) * (size_t)(c * h * w)), *img = malloc(sizeof(float) * (size_t)(3 * h * f * w * f));
        float *mean = malloc(sizeof(float) * (size_t)(c * h * w)), *logvar = malloc(sizeof(float) * (size_t)(c * h * w));
        for (int i = 0; i < c * h * w; i++) lat[i] = (float)((i * 37 % 17) - 8) / 4.0f;
        if (th_ok(is_vae_decode(v, lat, h, w, NULL, img), "vae decode"))
            th_check(all_finite(img, (size_t)(3 * h * f * w * f)), "vae decode finite");
        if (th_ok(is_vae_encode(v, img, h * f, w * f, mean, logvar), "vae encode"))
            th_check(all_finite(mean, (size_t)(c * h * w)) && all_finite(logvar, (size_t)(c * h * w)), "vae encode finite");
        free(lat);
        free(img);
        free(mean);
        free(logvar);
    }
    is_vae_free(v);
    free(dir);
}

static void check_image_encoder(void) {
    char *dir = mine("ip-adapter/image_encoder");
    is_image_encoder *enc = NULL;
    if (th_ok(is_image_encoder_load(dir, &enc), dir)) {
        const int s = is_image_encoder_image_size(enc), pd = is_image_encoder_projection_dim(enc);
        const int nt = is_image_encoder_num_tokens(enc), hd = is_image_encoder_hidden_size(enc);
        th_check(s == 224 && pd == 48 && nt == 50 && hd == 32, "image encoder sizes");
        is_image img = {40, 30, malloc(40 * 30 * 3)};
        for (int i = 0; i < 40 * 30 * 3; i++) img.rgb[i] = (uint8_t)(i * 7);
        float *px = malloc(sizeof(float) * 3 * (size_t)(s * s)), *emb = malloc(sizeof(float) * (size_t)pd);
        float *pen = malloc(sizeof(float) * (size_t)(nt * hd));
        if (th_ok(is_image_preprocess(enc, &img, px), "preprocess") &&
            th_ok(is_image_encoder_forward(enc, px, emb, pen), "image encoder forward"))
            th_check(all_finite(emb, (size_t)pd) && all_finite(pen, (size_t)(nt * hd)), "image encoder finite");
        free(img.rgb);
        free(px);
        free(emb);
        free(pen);
    }
    is_image_encoder_free(enc);
    free(dir);
}

static void check_unet(void) {
    char *dir = mine("sdxl/unet"), *ip = mine("ip-adapter/ip-adapter_sdxl.safetensors");
    is_unet *u = NULL;
    if (th_ok(is_unet_load(dir, &u), dir)) {
        const int cin = is_unet_in_channels(u), cout = is_unet_out_channels(u), cross = is_unet_cross_attention_dim(u);
        const int pooled = is_unet_pooled_dim(u), h = 8, w = 8, seq = 77;
        th_check(cin == 4 && cout == 4 && cross == 96 && pooled == 48 && is_unet_time_ids_count(u) == 6, "unet sizes");
        if (th_ok(is_unet_load_ip_adapter(u, ip, 48), ip)) {
            th_check(is_unet_has_ip_adapter(u) && is_unet_ip_embed_dim(u) == 48 && is_unet_ip_num_tokens(u) == 4 &&
                         is_unet_num_cross_attn(u) == 17,
                     "adapter sizes: 48-d image embeds, 4 tokens, 17 cross-attentions");
            th_ok(is_unet_set_ip_scale(u, "style", 1.0f), "style blocks");
        }
        const int nt = is_unet_has_ip_adapter(u) ? is_unet_ip_num_tokens(u) : 0;
        float *x = malloc(sizeof(float) * (size_t)(cin * h * w)), *out = malloc(sizeof(float) * (size_t)(cout * h * w));
        float *ctx = malloc(sizeof(float) * (size_t)(seq * cross)), *te = malloc(sizeof(float) * (size_t)pooled);
        float *img = malloc(sizeof(float) * 48), *tok = malloc(sizeof(float) * (size_t)((nt ? nt : 1) * cross));
        const float time_ids[6] = {64, 64, 0, 0, 64, 64};
        for (int i = 0; i < cin * h * w; i++) x[i] = (float)((i * 37 % 17) - 8) / 8.0f;
        for (int i = 0; i < seq * cross; i++) ctx[i] = (float)((i * 13 % 11) - 5) / 5.0f;
        for (int i = 0; i < pooled; i++) te[i] = (float)((i % 7) - 3) / 3.0f;
        for (int i = 0; i < 48; i++) img[i] = (float)((i % 5) - 2) / 2.0f;
        if (nt) th_ok(is_unet_ip_tokens(u, img, 1, tok), "image_proj");
        is_unet_input in = {.batch = 1, .height = h, .width = w, .sample = x, .timestep = 999.0f,
                            .encoder_hidden_states = ctx, .seq_len = seq, .text_embeds = te, .time_ids = time_ids,
                            .ip_tokens = nt ? tok : NULL};
        if (th_ok(is_unet_forward(u, &in, out), "unet forward"))
            th_check(all_finite(out, (size_t)(cout * h * w)), "unet forward finite (with the IP-Adapter)");
        free(x);
        free(out);
        free(ctx);
        free(te);
        free(img);
        free(tok);
    }
    is_unet_free(u);
    free(dir);
    free(ip);
}

/* The ControlNet loads, fits the tiny UNet, and its residuals (random "zero" convolutions: non-zero)
 * change a UNet step, which stays finite. */
static void check_controlnet(void) {
    char *dir = mine("controlnet"), *udir = mine("sdxl/unet");
    is_controlnet *cn = NULL;
    is_unet *u = NULL;
    if (th_ok(is_controlnet_load(dir, &cn), dir) && th_ok(is_unet_load(udir, &u), udir)) {
        th_ok(is_controlnet_check_unet(cn, u), "controlnet fits the tiny UNet");
        const int n = is_controlnet_num_down_residuals(cn), h = 8, w = 8, seq = 77;
        th_check(n == 9 && is_unet_num_skips(u) == 9, "9 down residuals for 9 UNet skips (got %d)", n);
        int64_t ms[3] = {0, 0, 0};
        th_check(is_controlnet_residual_shape(cn, n, h, w, ms) == 0 && ms[0] == 64 && ms[1] == 2 && ms[2] == 2,
                 "mid residual [64, 2, 2] for an 8x8 latent");
        const int64_t nd = is_controlnet_down_floats(cn, h, w), nm = ms[0] * ms[1] * ms[2];
        float *x = malloc(sizeof(float) * 4 * h * w), *ctx = malloc(sizeof(float) * seq * 96), *te = malloc(sizeof(float) * 48);
        float *cond = malloc(sizeof(float) * 3 * 64 * 64), *down = malloc(sizeof(float) * (size_t)(nd > 0 ? nd : 1));
        float *mid = malloc(sizeof(float) * (size_t)(nm > 0 ? nm : 1));
        float *plain = malloc(sizeof(float) * 4 * h * w), *ctrl = malloc(sizeof(float) * 4 * h * w);
        const float time_ids[6] = {64, 64, 0, 0, 64, 64};
        for (int i = 0; i < 4 * h * w; i++) x[i] = (float)((i * 37 % 17) - 8) / 8.0f;
        for (int i = 0; i < seq * 96; i++) ctx[i] = (float)((i * 13 % 11) - 5) / 5.0f;
        for (int i = 0; i < 48; i++) te[i] = (float)((i % 7) - 3) / 3.0f;
        for (int i = 0; i < 3 * 64 * 64; i++) cond[i] = (float)(i * 7 % 13) / 12.0f;
        is_controlnet_input in;
        is_controlnet_input_init(&in);
        in.unet = (is_unet_input){.batch = 1, .height = h, .width = w, .sample = x, .timestep = 999.0f,
                                  .encoder_hidden_states = ctx, .seq_len = seq, .text_embeds = te, .time_ids = time_ids};
        in.cond = cond;
        in.conditioning_scale = 0.6f;
        if (th_ok(is_controlnet_forward(cn, &in, down, mid), "controlnet forward")) {
            double sum = 0;
            for (int64_t i = 0; i < nd; i++) sum += fabs(down[i]);
            th_check(all_finite(down, (size_t)nd) && all_finite(mid, (size_t)nm) && sum > 0,
                     "controlnet residuals finite and not all zero (sum |down| %g)", sum);
            is_unet_input ui = in.unet;
            if (th_ok(is_unet_forward(u, &ui, plain), "unet forward without residuals")) {
                ui.down_residuals = down;
                ui.mid_residual = mid;
                if (th_ok(is_unet_forward(u, &ui, ctrl), "unet forward with the residuals"))
                    th_check(all_finite(ctrl, 4 * (size_t)(h * w)) && memcmp(plain, ctrl, sizeof(float) * 4 * h * w),
                             "unet step with the ControlNet's residuals finite and different");
            }
        }
        free(x), free(ctx), free(te), free(cond), free(down), free(mid), free(plain), free(ctrl);
    }
    is_controlnet_free(cn);
    is_unet_free(u);
    free(dir);
    free(udir);
}

/* The README's first command in library form: the whole pipeline on the tiny model, small and short. */
static void check_generate(int controlnet) {
    char *sdxl = mine("sdxl"), *ip = mine("ip-adapter/ip-adapter_sdxl.safetensors"), *cn = mine("controlnet");
    char *style = th_golden_path("images/odd_rgb_301x217.png");
    const char *what = controlnet ? "generate on the tiny model with the ControlNet (Canny of the style image, 0.6)"
                                  : "generate on the tiny model";
    is_pipeline_params paths;
    is_pipeline_params_init(&paths);
    paths.model_dir = sdxl;
    paths.ip_adapter = ip;
    if (controlnet) paths.controlnet = cn;
    is_pipeline *p = NULL;
    if (th_ok(is_pipeline_load(&paths, &p), "pipeline load")) {
        is_generate_params g;
        is_generate_params_init(&g);
        g.prompt = "a cat sitting on a chair";
        g.content_prompt = "a landscape";
        g.style_image = style;
        g.width = 64;
        g.height = 48;
        g.steps = 3;
        g.seed = 42;
        if (controlnet) { /* InstantStyle's: Canny edges of the style image at 0.6 */
            g.control_image = style;
            g.control_canny = 1;
            g.control_scale = 0.6f;
        }
        is_image_result r = {0};
        if (th_ok(is_generate(p, &g, &r), what)) {
            const size_t n = 3 * (size_t)r.width * (size_t)r.height;
            int in_range = r.width == 64 && r.height == 48 && r.image && r.rgb;
            for (size_t i = 0; in_range && i < n; i++) in_range = r.image[i] >= 0.0f && r.image[i] <= 1.0f;
            th_check(in_range, "%s: a 64x48 image with values in 0..1", what);
            char *png = mine(controlnet ? "tiny-controlnet.png" : "tiny.png");
            th_ok(is_save_png(png, &r, p, &g), png);
            free(png);
        }
        is_image_result_free(&r);
    }
    is_pipeline_free(p);
    free(sdxl);
    free(ip);
    free(cn);
    free(style);
}

int main(void) {
    snprintf(g_dir, sizeof g_dir, "%s/tiny-model", th_tmpdir());
    if (!th_ok(is_make_tiny_model(g_dir, 0, 1), "make tiny model")) return th_done();
    check_files();
    for (size_t i = 0; i < sizeof COMPONENTS / sizeof *COMPONENTS; i++) check_component(&COMPONENTS[i]);
    check_configs();
    check_vocab();
    check_adapter_numbering();
    check_init();
    check_controlnet_init();
    check_text_encoders();
    check_tokenizers();
    check_prompt();
    check_image_encoder();
    check_unet();
    check_vae();
    check_controlnet();
    check_generate(0);
    check_generate(1);
    check_determinism_and_errors();
    return th_done();
}
