/* SDXL prompt encoding, as diffusers 0.30.3 StableDiffusionXLPipeline.encode_prompt for one prompt:
 *   ids_k = tokenizer_k(prompt_k, padding="max_length", max_length=model_max_length, truncation=True)
 *   prompt_embeds = concat(text_encoder(ids_1).hidden_states[-2], text_encoder_2(ids_2).hidden_states[-2], dim=-1)
 *   pooled = text_encoder_2(ids_2).text_embeds
 * prompt_2 = prompt_2 or prompt. A missing prompt (None) is zeros when force_zeros_for_empty_prompt,
 * otherwise it is encoded as "" (the negative-prompt rule). No attention mask: padding is attended. */
#include <stdlib.h>
#include <string.h>

#include "core/config.h"
#include "core/fileio.h"
#include "text/clip_text.h"
#include "text/sdxl_prompt.h"

struct is_sdxl_text {
    char *dir;
    is_tokenizer *tok_1, *tok_2;
    is_clip_text *te_1, *te_2;
    int seq_len, hidden_1, hidden_2, pooled_dim, force_zeros;
    float *pen_1, *pen_2; /* [seq_len, hidden_k] penultimate states */
    int32_t *ids_1, *ids_2;
};

/* A component folder "model_dir/name" as a new string. */
static is_error *component(const char *model_dir, const char *name, char **out) {
    *out = is_path_join(model_dir, name);
    return *out ? NULL : is_error_oom("component path");
}

/* model_index.json: force_zeros_for_empty_prompt (diffusers' default True); refuse pipelines without text_encoder. */
static is_error *read_model_index(is_sdxl_text *t) {
    is_config cfg = {0};
    IS_TRY(is_config_load_in(t->dir, "model_index.json", &cfg));
    is_error *err = is_config_bool_or(&cfg, "force_zeros_for_empty_prompt", 1, &t->force_zeros);
    const cJSON *te = cJSON_GetObjectItemCaseSensitive(cfg.root, "text_encoder");
    if (!err && cJSON_IsArray(te) && cJSON_IsNull(cJSON_GetArrayItem(te, 0)))
        err = is_errorf(IS_E_UNSUPPORTED, "%s: 'text_encoder' is null (a refiner-style pipeline); only pipelines with "
                        "both text encoders are supported", cfg.path);
    is_config_free(&cfg);
    return err;
}

/* tokenizer_config.json model_max_length (CLIP: 77); diffusers pads and truncates to it. */
static is_error *read_max_length(const char *tok_dir, int64_t *out) {
    *out = IS_CLIP_MAX_LENGTH;
    char *path = is_path_join(tok_dir, "tokenizer_config.json");
    if (!path) return is_error_oom("tokenizer config path");
    is_error *err = NULL;
    if (is_file_exists(path)) {
        is_config cfg = {0};
        err = is_config_load(path, &cfg);
        if (!err) err = is_config_int_or(&cfg, "model_max_length", IS_CLIP_MAX_LENGTH, out);
        is_config_free(&cfg);
    }
    free(path);
    return err;
}

static is_error *load_tokenizers(is_sdxl_text *t) {
    char *d1 = NULL, *d2 = NULL;
    int64_t len_1 = 0, len_2 = 0;
    is_error *err = component(t->dir, "tokenizer", &d1);
    if (!err) err = component(t->dir, "tokenizer_2", &d2);
    if (!err) err = is_tokenizer_load(d1, &t->tok_1);
    if (!err) err = is_tokenizer_load(d2, &t->tok_2);
    if (!err) err = read_max_length(d1, &len_1);
    if (!err) err = read_max_length(d2, &len_2);
    if (!err && len_1 != len_2)
        err = is_errorf(IS_E_CONFIG, "%s/tokenizer_config.json: model_max_length %lld differs from tokenizer_2's %lld "
                        "(the two embeddings are concatenated per token)", d1, (long long)len_1, (long long)len_2);
    if (!err && (len_1 < 2 || len_1 > 1 << 16))
        err = is_errorf(IS_E_CONFIG, "%s/tokenizer_config.json: model_max_length %lld out of range", d1, (long long)len_1);
    t->seq_len = (int)len_1;
    free(d1);
    free(d2);
    return err;
}

static is_error *load_encoders(is_sdxl_text *t) {
    char *d1 = NULL, *d2 = NULL;
    is_error *err = component(t->dir, "text_encoder", &d1);
    if (!err) err = component(t->dir, "text_encoder_2", &d2);
    if (!err) err = is_clip_text_load(d1, &t->te_1);
    if (!err) err = is_clip_text_load(d2, &t->te_2);
    if (!err && is_clip_text_projection_dim(t->te_2) == 0)
        err = is_errorf(IS_E_CONFIG, "%s: text_encoder_2 has no text_projection (expected CLIPTextModelWithProjection)",
                        d2);
    for (int k = 0; !err && k < 2; k++) {
        is_clip_text *te = k ? t->te_2 : t->te_1;
        if (t->seq_len > is_clip_text_max_positions(te))
            err = is_errorf(IS_E_CONFIG, "%s: max_position_embeddings %d is below the tokenizer's model_max_length %d",
                            k ? d2 : d1, is_clip_text_max_positions(te), t->seq_len);
    }
    free(d1);
    free(d2);
    if (err) return err;
    t->hidden_1 = is_clip_text_hidden_size(t->te_1);
    t->hidden_2 = is_clip_text_hidden_size(t->te_2);
    t->pooled_dim = is_clip_text_projection_dim(t->te_2);
    return NULL;
}

static is_error *alloc_scratch(is_sdxl_text *t) {
    size_t n = (size_t)t->seq_len;
    t->pen_1 = malloc(n * (size_t)t->hidden_1 * sizeof(float));
    t->pen_2 = malloc(n * (size_t)t->hidden_2 * sizeof(float));
    t->ids_1 = malloc(n * sizeof(int32_t));
    t->ids_2 = malloc(n * sizeof(int32_t));
    return t->pen_1 && t->pen_2 && t->ids_1 && t->ids_2 ? NULL : is_error_oom("SDXL text scratch");
}

is_error *is_sdxl_text_load(const char *model_dir, is_sdxl_text **out) {
    *out = NULL;
    is_sdxl_text *t = calloc(1, sizeof *t);
    if (!t) return is_error_oom("SDXL text");
    t->dir = strdup(model_dir);
    is_error *err = t->dir ? read_model_index(t) : is_error_oom("SDXL text dir");
    if (!err) err = load_tokenizers(t);
    if (!err) err = load_encoders(t);
    if (!err) err = alloc_scratch(t);
    if (err) {
        is_sdxl_text_free(t);
        return is_error_wrap(err, "loading SDXL text encoders from %s", model_dir);
    }
    *out = t;
    return NULL;
}

void is_sdxl_text_free(is_sdxl_text *t) {
    if (!t) return;
    is_tokenizer_free(t->tok_1);
    is_tokenizer_free(t->tok_2);
    is_clip_text_free(t->te_1);
    is_clip_text_free(t->te_2);
    free(t->pen_1), free(t->pen_2), free(t->ids_1), free(t->ids_2);
    free(t->dir);
    free(t);
}

is_error *is_sdxl_text_set_precision(is_sdxl_text *t, is_precision p) {
    if (!t) return is_errorf(IS_E_ARGUMENT, "is_sdxl_text_set_precision: NULL text encoders");
    IS_TRY(is_clip_text_set_precision(t->te_1, p));
    return is_clip_text_set_precision(t->te_2, p);
}

int is_sdxl_text_seq_len(const is_sdxl_text *t) { return t->seq_len; }
int is_sdxl_text_embed_dim(const is_sdxl_text *t) { return t->hidden_1 + t->hidden_2; }
int is_sdxl_text_pooled_dim(const is_sdxl_text *t) { return t->pooled_dim; }
int is_sdxl_text_force_zeros(const is_sdxl_text *t) { return t->force_zeros; }
is_clip_text *is_sdxl_text_encoder(const is_sdxl_text *t, int which) { return which == 2 ? t->te_2 : t->te_1; }

is_error *is_sdxl_tokenize(is_sdxl_text *t, const char *prompt, const char *prompt_2, int32_t *ids_1, int32_t *ids_2,
                           int *zeros, is_prompt_info *info) {
    if (!t || !ids_1 || !ids_2) return is_errorf(IS_E_ARGUMENT, "SDXL tokenize: NULL argument");
    is_prompt_info none = {0, 0};
    if (info) *info = none;
    if (zeros) *zeros = 0;
    if (!prompt) {
        if (t->force_zeros) {
            if (zeros) *zeros = 1;
            return NULL;
        }
        prompt = ""; /* diffusers: negative_prompt = negative_prompt or "" */
    }
    if (!prompt_2 || !*prompt_2) prompt_2 = prompt; /* prompt_2 = prompt_2 or prompt */
    int dropped_1 = 0, dropped_2 = 0;
    IS_TRY(is_error_wrap(is_tokenizer_encode_padded(t->tok_1, prompt, t->seq_len, ids_1, &dropped_1), "tokenizer"));
    IS_TRY(is_error_wrap(is_tokenizer_encode_padded(t->tok_2, prompt_2, t->seq_len, ids_2, &dropped_2), "tokenizer_2"));
    if (info) info->truncated_1 = dropped_1, info->truncated_2 = dropped_2;
    return NULL;
}

is_error *is_sdxl_encode_ids(is_sdxl_text *t, const int32_t *ids_1, const int32_t *ids_2, float *prompt_embeds,
                             float *pooled) {
    if (!t || !ids_1 || !ids_2) return is_errorf(IS_E_ARGUMENT, "SDXL encode: NULL argument");
    const int n = t->seq_len, h1 = t->hidden_1, h2 = t->hidden_2;
    if (prompt_embeds) IS_TRY(is_error_wrap(is_clip_text_forward(t->te_1, ids_1, n, t->pen_1, NULL, NULL, NULL), "text_encoder"));
    if (prompt_embeds || pooled)
        IS_TRY(is_error_wrap(is_clip_text_forward(t->te_2, ids_2, n, prompt_embeds ? t->pen_2 : NULL, NULL, NULL, pooled),
                             "text_encoder_2"));
    if (!prompt_embeds) return NULL;
    for (int i = 0; i < n; i++) {
        float *row = prompt_embeds + (size_t)i * (size_t)(h1 + h2);
        memcpy(row, t->pen_1 + (size_t)i * (size_t)h1, (size_t)h1 * sizeof(float));
        memcpy(row + h1, t->pen_2 + (size_t)i * (size_t)h2, (size_t)h2 * sizeof(float));
    }
    return NULL;
}

is_error *is_sdxl_encode_prompt(is_sdxl_text *t, const char *prompt, const char *prompt_2, float *prompt_embeds,
                                float *pooled, is_prompt_info *info) {
    if (!t) return is_errorf(IS_E_ARGUMENT, "SDXL encode_prompt: NULL model");
    int zeros = 0;
    IS_TRY(is_sdxl_tokenize(t, prompt, prompt_2, t->ids_1, t->ids_2, &zeros, info));
    if (zeros) { /* negative_prompt None with force_zeros_for_empty_prompt: torch.zeros_like */
        if (prompt_embeds)
            memset(prompt_embeds, 0, (size_t)t->seq_len * (size_t)(t->hidden_1 + t->hidden_2) * sizeof(float));
        if (pooled) memset(pooled, 0, (size_t)t->pooled_dim * sizeof(float));
        return NULL;
    }
    return is_sdxl_encode_ids(t, t->ids_1, t->ids_2, prompt_embeds, pooled);
}
