/* CLIP text transformer, as transformers' CLIPTextModel(WithProjection):
 *   x = token_embedding[ids] + position_embedding[0..n)
 *   per layer: x += out_proj(causal_attn(ln1(x)));  x += fc2(act(fc1(ln2(x))))
 *   last = final_layer_norm(x); pooled = last[pool_pos]; text_embeds = text_projection(pooled)
 * The encoder layers are clip/clip_encoder (causal here). Weights stay in the mmap in their stored
 * dtype; activations live in scratch buffers allocated once at load for max_position_embeddings tokens. */
#include <stdlib.h>
#include <string.h>

#include "clip/clip_encoder.h"
#include "core/config.h"
#include "core/safetensors.h"
#include "kernels/kernels.h"
#include "lora/lora.h"
#include "text/clip_text.h"

struct is_clip_text {
    char *dir;
    is_st *st;
    int max_pos, vocab, proj_dim;
    int64_t eos_token_id;
    is_clip_encoder enc; /* hidden/inter/heads/n_layers, eps, act, layers */
    const is_tensor *tok_emb, *pos_emb, *final_w, *final_b, *proj;
    is_clip_scratch s; /* [max_pos, ...] */
    lora_state *lora;  /* the LoRAs merged into st or the packs, or NULL */
};

/* ---------------------------------------------------------------- loading */

static is_error *read_positive(const is_config *cfg, const char *key, int *out) {
    int64_t v;
    IS_TRY(is_config_int(cfg, key, &v));
    if (v <= 0 || v > (1 << 20))
        return is_errorf(IS_E_CONFIG, "%s: field '%s' = %lld, expected a positive size", cfg->path, key, (long long)v);
    *out = (int)v;
    return NULL;
}

static is_error *read_config(is_clip_text *m, const is_config *cfg) {
    is_clip_encoder *enc = &m->enc;
    IS_TRY(read_positive(cfg, "hidden_size", &enc->hidden));
    IS_TRY(read_positive(cfg, "intermediate_size", &enc->inter));
    IS_TRY(read_positive(cfg, "num_attention_heads", &enc->heads));
    IS_TRY(read_positive(cfg, "num_hidden_layers", &enc->n_layers));
    IS_TRY(read_positive(cfg, "max_position_embeddings", &m->max_pos));
    IS_TRY(read_positive(cfg, "vocab_size", &m->vocab));
    if (enc->hidden % enc->heads)
        return is_errorf(IS_E_CONFIG, "%s: hidden_size %d is not divisible by num_attention_heads %d", cfg->path,
                         enc->hidden, enc->heads);
    /* Optional fields take CLIPTextConfig's defaults. */
    double eps;
    IS_TRY(is_config_float_or(cfg, "layer_norm_eps", 1e-5, &eps));
    enc->eps = (float)eps;
    IS_TRY(is_config_int_or(cfg, "eos_token_id", 49407, &m->eos_token_id));
    return is_clip_act_read(cfg, &enc->act);
}

/* CLIPTextModelWithProjection must have text_projection; otherwise it is used when present. */
static is_error *read_projection(is_clip_text *m, const is_config *cfg) {
    int with_proj = 0;
    const char *arch[8];
    int n_arch = 0;
    if (is_config_has(cfg, "architectures")) IS_TRY(is_config_string_list(cfg, "architectures", arch, 8, &n_arch));
    for (int i = 0; i < n_arch; i++)
        if (strcmp(arch[i], "CLIPTextModelWithProjection") == 0) with_proj = 1;
    if (!with_proj && !is_st_find(m->st, "text_projection.weight")) return NULL;
    int64_t pd;
    IS_TRY(is_config_int(cfg, "projection_dim", &pd));
    if (pd <= 0) return is_errorf(IS_E_CONFIG, "%s: field 'projection_dim' = %lld, expected > 0", cfg->path, (long long)pd);
    m->proj_dim = (int)pd;
    return is_clip_weight(m->st, &m->proj, 2, (int64_t[]){pd, m->enc.hidden}, "text_projection.weight");
}

static is_error *read_weights(is_clip_text *m) {
    const int64_t H = m->enc.hidden;
    IS_TRY(is_clip_weight(m->st, &m->tok_emb, 2, (int64_t[]){m->vocab, H},
                          "text_model.embeddings.token_embedding.weight"));
    IS_TRY(is_clip_weight(m->st, &m->pos_emb, 2, (int64_t[]){m->max_pos, H},
                          "text_model.embeddings.position_embedding.weight"));
    IS_TRY(is_clip_weight(m->st, &m->final_w, 1, &H, "text_model.final_layer_norm.weight"));
    IS_TRY(is_clip_weight(m->st, &m->final_b, 1, &H, "text_model.final_layer_norm.bias"));
    return is_clip_encoder_bind(&m->enc, m->st, "text_model.encoder");
}

static is_error *load_into(is_clip_text *m, const char *dir) {
    is_config cfg = {0};
    IS_TRY(is_config_load_in(dir, "config.json", &cfg));
    is_error *err = read_config(m, &cfg);
    if (!err) err = is_st_open_in_dir(dir, "model", &m->st);
    if (!err) err = is_kernels_reserve(is_st_max_numel(m->st)); /* out of memory: an error now, not an abort later */
    if (!err) err = read_weights(m);
    if (!err) err = read_projection(m, &cfg);
    if (!err) err = is_clip_scratch_alloc(&m->s, &m->enc, m->max_pos, "CLIP text activations");
    is_config_free(&cfg);
    return err;
}

is_error *is_clip_text_load(const char *dir, is_clip_text **out) {
    *out = NULL;
    is_clip_text *m = calloc(1, sizeof *m);
    if (!m) return is_error_oom("CLIP text model");
    m->dir = strdup(dir);
    is_error *err = m->dir ? load_into(m, dir) : is_error_oom("CLIP text dir");
    if (err) {
        is_clip_text_free(m);
        return is_error_wrap(err, "loading CLIP text model %s", dir);
    }
    *out = m;
    return NULL;
}

void is_clip_text_free(is_clip_text *m) {
    if (!m) return;
    lora_state_free(m->lora);
    is_st_close(m->st);
    is_clip_encoder_free(&m->enc);
    is_clip_scratch_free(&m->s);
    free(m->dir);
    free(m);
}

is_error *is_clip_text_set_precision(is_clip_text *m, is_precision p) {
    if (!m) return is_errorf(IS_E_ARGUMENT, "is_clip_text_set_precision: NULL model");
    is_precision before = is_clip_text_precision(m);
    IS_TRY(is_clip_encoder_set_precision(&m->enc, m->st, p, "CLIP text encoder", 0));
    return before == is_clip_text_precision(m) ? NULL : lora_state_precision_changed(&m->lora, m->st, m->enc.dnn);
}

is_dnn *clip_text_dnn(is_clip_text *m) { return m->enc.dnn; }
lora_state **clip_text_lora_slot(is_clip_text *m) { return &m->lora; }

int is_clip_text_hidden_size(const is_clip_text *m) { return m->enc.hidden; }
int is_clip_text_projection_dim(const is_clip_text *m) { return m->proj_dim; }
int is_clip_text_max_positions(const is_clip_text *m) { return m->max_pos; }
int is_clip_text_num_layers(const is_clip_text *m) { return m->enc.n_layers; }
int is_clip_text_vocab_size(const is_clip_text *m) { return m->vocab; }
const char *is_clip_text_dir(const is_clip_text *m) { return m->dir; }
is_st *is_clip_text_weights(is_clip_text *m) { return m->st; }
is_precision is_clip_text_precision(const is_clip_text *m) { return m->enc.dnn ? IS_PRECISION_BF16 : IS_PRECISION_F32; }

/* ---------------------------------------------------------------- forward */

int is_clip_text_pooled_position(const is_clip_text *m, const int32_t *ids, int n) {
    int pos = 0;
    if (m->eos_token_id == 2) { /* legacy configs: the EOS id is the largest id; argmax takes the first maximum */
        for (int i = 1; i < n; i++)
            if (ids[i] > ids[pos]) pos = i;
        return pos;
    }
    for (int i = 0; i < n; i++)
        if (ids[i] == m->eos_token_id) return i;
    return 0;
}

is_error *is_clip_text_forward(is_clip_text *m, const int32_t *ids, int n, float *penultimate, float *last_hidden,
                               float *pooled, float *text_embeds) {
    if (!m || !ids) return is_errorf(IS_E_ARGUMENT, "CLIP text forward: NULL model or ids");
    if (n < 1 || n > m->max_pos)
        return is_errorf(IS_E_ARGUMENT, "%s: %d tokens, expected 1..%d (max_position_embeddings)", m->dir, n, m->max_pos);
    for (int i = 0; i < n; i++)
        if (ids[i] < 0 || ids[i] >= m->vocab)
            return is_errorf(IS_E_ARGUMENT, "%s: token id %d at position %d is outside the vocabulary [0, %d)", m->dir,
                             (int)ids[i], i, m->vocab);
    if (text_embeds && !m->proj)
        return is_errorf(IS_E_ARGUMENT, "%s: text_embeds requested but the model has no text_projection", m->dir);

    const int64_t H = m->enc.hidden;
    const is_clip_scratch *s = &m->s;
    /* embeddings */
    for (int t = 0; t < n; t++) {
        float *xt = s->x + t * H, *pt = s->h;
        is_convert_to_f32(m->tok_emb->dtype, m->tok_emb->data, (size_t)ids[t] * (size_t)H, (size_t)H, xt);
        is_convert_to_f32(m->pos_emb->dtype, m->pos_emb->data, (size_t)t * (size_t)H, (size_t)H, pt);
        is_k_add(xt, pt, H);
    }
    /* causal self-attention; the final layer only matters for the outputs after it */
    int need_final = last_hidden || pooled || text_embeds;
    is_clip_encoder_forward(&m->enc, s, n, 1, penultimate, !need_final);
    if (!need_final) return NULL;

    is_k_layer_norm(s->h, s->x, n, H, m->final_w, m->final_b, m->enc.eps);
    if (last_hidden) memcpy(last_hidden, s->h, (size_t)n * (size_t)H * sizeof(float));
    const float *pooled_row = s->h + (int64_t)is_clip_text_pooled_position(m, ids, n) * H;
    if (pooled) memcpy(pooled, pooled_row, (size_t)H * sizeof(float));
    if (text_embeds) is_dnn_linear(m->enc.dnn, text_embeds, pooled_row, 1, m->proj, NULL);
    return NULL;
}
