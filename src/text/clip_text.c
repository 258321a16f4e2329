/* CLIP text transformer, as transformers' CLIPTextModel(WithProjection):
 *   x = token_embedding[ids] + position_embedding[0..n)
 *   per layer: x += out_proj(causal_attn(ln1(x)));  x += fc2(act(fc1(ln2(x))))
 *   last = final_layer_norm(x); pooled = last[pool_pos]; text_embeds = text_projection(pooled)
 * Weights stay in the mmap in their stored dtype; activations live in scratch buffers
 * allocated once at load for max_position_embeddings tokens. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/config.h"
#include "core/fileio.h"
#include "core/safetensors.h"
#include "kernels/kernels.h"
#include "text/clip_text.h"

typedef enum { ACT_QUICK_GELU, ACT_GELU, ACT_GELU_TANH } clip_act;

typedef struct {
    const is_tensor *ln1_w, *ln1_b, *ln2_w, *ln2_b;
    const is_tensor *q_w, *q_b, *k_w, *k_b, *v_w, *v_b, *o_w, *o_b;
    const is_tensor *fc1_w, *fc1_b, *fc2_w, *fc2_b;
} clip_layer;

struct is_clip_text {
    char *dir;
    is_st *st;
    int hidden, inter, heads, layers, max_pos, vocab, proj_dim;
    float eps;
    int64_t eos_token_id;
    clip_act act;
    const is_tensor *tok_emb, *pos_emb, *final_w, *final_b, *proj;
    clip_layer *layer;
    /* scratch: x residual stream, h normed input, q/k/v, a attention output [max_pos, hidden]; f [max_pos, inter] */
    float *x, *h, *q, *k, *v, *a, *f;
};

/* ---------------------------------------------------------------- loading */

/* Fetch a float weight with the given 1-D or 2-D shape (d1 < 0: 1-D); errors name file and tensor. */
static is_error *weight(const is_clip_text *m, const is_tensor **out, int64_t d0, int64_t d1, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
static is_error *weight(const is_clip_text *m, const is_tensor **out, int64_t d0, int64_t d1, const char *fmt, ...) {
    char name[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(name, sizeof name, fmt, ap);
    va_end(ap);
    int64_t shape[2] = {d0, d1};
    IS_TRY(is_st_get(m->st, name, d1 < 0 ? 1 : 2, shape, out));
    is_dtype dt = (*out)->dtype;
    if (dt != IS_DT_F32 && dt != IS_DT_F16 && dt != IS_DT_BF16 && dt != IS_DT_F64)
        return is_errorf(IS_E_SHAPE, "%s: tensor '%s' has dtype %s, expected a float type (F32, F16, BF16)",
                         (*out)->file, name, is_dtype_name(dt));
    return NULL;
}

static is_error *read_positive(const is_config *cfg, const char *key, int *out) {
    int64_t v;
    IS_TRY(is_config_int(cfg, key, &v));
    if (v <= 0 || v > (1 << 20))
        return is_errorf(IS_E_CONFIG, "%s: field '%s' = %lld, expected a positive size", cfg->path, key, (long long)v);
    *out = (int)v;
    return NULL;
}

static is_error *read_config(is_clip_text *m, const is_config *cfg) {
    IS_TRY(read_positive(cfg, "hidden_size", &m->hidden));
    IS_TRY(read_positive(cfg, "intermediate_size", &m->inter));
    IS_TRY(read_positive(cfg, "num_attention_heads", &m->heads));
    IS_TRY(read_positive(cfg, "num_hidden_layers", &m->layers));
    IS_TRY(read_positive(cfg, "max_position_embeddings", &m->max_pos));
    IS_TRY(read_positive(cfg, "vocab_size", &m->vocab));
    if (m->hidden % m->heads)
        return is_errorf(IS_E_CONFIG, "%s: hidden_size %d is not divisible by num_attention_heads %d", cfg->path,
                         m->hidden, m->heads);
    /* Optional fields take CLIPTextConfig's defaults. */
    double eps;
    IS_TRY(is_config_float_or(cfg, "layer_norm_eps", 1e-5, &eps));
    m->eps = (float)eps;
    IS_TRY(is_config_int_or(cfg, "eos_token_id", 49407, &m->eos_token_id));
    const char *act;
    IS_TRY(is_config_string_or(cfg, "hidden_act", "quick_gelu", &act));
    if (strcmp(act, "quick_gelu") == 0)
        m->act = ACT_QUICK_GELU;
    else if (strcmp(act, "gelu") == 0)
        m->act = ACT_GELU;
    else if (strcmp(act, "gelu_new") == 0 || strcmp(act, "gelu_pytorch_tanh") == 0)
        m->act = ACT_GELU_TANH;
    else
        return is_errorf(IS_E_UNSUPPORTED, "%s: field 'hidden_act' = '%s' is not supported (quick_gelu, gelu, gelu_new, "
                         "gelu_pytorch_tanh)", cfg->path, act);
    return NULL;
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
    return weight(m, &m->proj, pd, m->hidden, "text_projection.weight");
}

static is_error *read_weights(is_clip_text *m) {
    const int64_t H = m->hidden, I = m->inter;
    IS_TRY(weight(m, &m->tok_emb, m->vocab, H, "text_model.embeddings.token_embedding.weight"));
    IS_TRY(weight(m, &m->pos_emb, m->max_pos, H, "text_model.embeddings.position_embedding.weight"));
    IS_TRY(weight(m, &m->final_w, H, -1, "text_model.final_layer_norm.weight"));
    IS_TRY(weight(m, &m->final_b, H, -1, "text_model.final_layer_norm.bias"));
    for (int l = 0; l < m->layers; l++) {
        clip_layer *L = &m->layer[l];
#define P "text_model.encoder.layers.%d."
        IS_TRY(weight(m, &L->ln1_w, H, -1, P "layer_norm1.weight", l));
        IS_TRY(weight(m, &L->ln1_b, H, -1, P "layer_norm1.bias", l));
        IS_TRY(weight(m, &L->q_w, H, H, P "self_attn.q_proj.weight", l));
        IS_TRY(weight(m, &L->q_b, H, -1, P "self_attn.q_proj.bias", l));
        IS_TRY(weight(m, &L->k_w, H, H, P "self_attn.k_proj.weight", l));
        IS_TRY(weight(m, &L->k_b, H, -1, P "self_attn.k_proj.bias", l));
        IS_TRY(weight(m, &L->v_w, H, H, P "self_attn.v_proj.weight", l));
        IS_TRY(weight(m, &L->v_b, H, -1, P "self_attn.v_proj.bias", l));
        IS_TRY(weight(m, &L->o_w, H, H, P "self_attn.out_proj.weight", l));
        IS_TRY(weight(m, &L->o_b, H, -1, P "self_attn.out_proj.bias", l));
        IS_TRY(weight(m, &L->ln2_w, H, -1, P "layer_norm2.weight", l));
        IS_TRY(weight(m, &L->ln2_b, H, -1, P "layer_norm2.bias", l));
        IS_TRY(weight(m, &L->fc1_w, I, H, P "mlp.fc1.weight", l));
        IS_TRY(weight(m, &L->fc1_b, I, -1, P "mlp.fc1.bias", l));
        IS_TRY(weight(m, &L->fc2_w, H, I, P "mlp.fc2.weight", l));
        IS_TRY(weight(m, &L->fc2_b, H, -1, P "mlp.fc2.bias", l));
#undef P
    }
    return NULL;
}

/* model.safetensors, else the sharded model.safetensors.index.json. */
static is_error *open_weights(const char *dir, is_st **st) {
    char *single = is_path_join(dir, "model.safetensors");
    char *index = is_path_join(dir, "model.safetensors.index.json");
    is_error *err = NULL;
    if (!single || !index)
        err = is_error_oom("weights path");
    else if (is_file_exists(single))
        err = is_st_open(single, st);
    else if (is_file_exists(index))
        err = is_st_open(index, st);
    else
        err = is_errorf(IS_E_IO, "%s: no model.safetensors or model.safetensors.index.json", dir);
    free(single);
    free(index);
    return err;
}

static is_error *alloc_scratch(is_clip_text *m) {
    size_t nh = (size_t)m->max_pos * (size_t)m->hidden, nf = (size_t)m->max_pos * (size_t)m->inter;
    float **bufs[6] = {&m->x, &m->h, &m->q, &m->k, &m->v, &m->a};
    for (int i = 0; i < 6; i++)
        if (!(*bufs[i] = malloc(nh * sizeof(float)))) return is_error_oom("CLIP text activations");
    if (!(m->f = malloc(nf * sizeof(float)))) return is_error_oom("CLIP text MLP activations");
    return NULL;
}

static is_error *load_into(is_clip_text *m, const char *dir) {
    is_config cfg = {0};
    IS_TRY(is_config_load_in(dir, "config.json", &cfg));
    is_error *err = read_config(m, &cfg);
    if (!err) err = open_weights(dir, &m->st);
    if (!err && !(m->layer = calloc((size_t)m->layers, sizeof *m->layer))) err = is_error_oom("CLIP text layers");
    if (!err) err = read_weights(m);
    if (!err) err = read_projection(m, &cfg);
    if (!err) err = alloc_scratch(m);
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
    is_st_close(m->st);
    free(m->layer);
    free(m->x), free(m->h), free(m->q), free(m->k), free(m->v), free(m->a), free(m->f);
    free(m->dir);
    free(m);
}

int is_clip_text_hidden_size(const is_clip_text *m) { return m->hidden; }
int is_clip_text_projection_dim(const is_clip_text *m) { return m->proj_dim; }
int is_clip_text_max_positions(const is_clip_text *m) { return m->max_pos; }
int is_clip_text_num_layers(const is_clip_text *m) { return m->layers; }
int is_clip_text_vocab_size(const is_clip_text *m) { return m->vocab; }
const char *is_clip_text_dir(const is_clip_text *m) { return m->dir; }

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

static void activation(const is_clip_text *m, float *x, int64_t count) {
    switch (m->act) {
    case ACT_QUICK_GELU: is_k_quick_gelu(x, count); break;
    case ACT_GELU: is_k_gelu(x, count); break;
    case ACT_GELU_TANH: is_k_gelu_tanh(x, count); break;
    }
}

/* One pre-LayerNorm encoder layer on the residual stream m->x [n, hidden]. */
static void encoder_layer(is_clip_text *m, const clip_layer *L, int n) {
    const int64_t H = m->hidden, dh = H / m->heads;
    /* self-attention block: causal mask, no padding mask (SDXL attends to padding tokens) */
    is_k_layer_norm(m->h, m->x, n, H, L->ln1_w, L->ln1_b, m->eps);
    is_k_linear(m->q, m->h, n, L->q_w, L->q_b);
    is_k_linear(m->k, m->h, n, L->k_w, L->k_b);
    is_k_linear(m->v, m->h, n, L->v_w, L->v_b);
    is_k_attention(m->a, H, m->q, H, m->k, H, m->v, H, n, n, m->heads, dh, 1, 1.0f, 0);
    is_k_linear(m->h, m->a, n, L->o_w, L->o_b);
    is_k_add(m->x, m->h, n * H);
    /* MLP block */
    is_k_layer_norm(m->h, m->x, n, H, L->ln2_w, L->ln2_b, m->eps);
    is_k_linear(m->f, m->h, n, L->fc1_w, L->fc1_b);
    activation(m, m->f, n * m->inter);
    is_k_linear(m->h, m->f, n, L->fc2_w, L->fc2_b);
    is_k_add(m->x, m->h, n * H);
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

    const int64_t H = m->hidden;
    const size_t row = (size_t)H * sizeof(float);
    /* embeddings */
    for (int t = 0; t < n; t++) {
        float *xt = m->x + t * H, *pt = m->h;
        is_convert_to_f32(m->tok_emb->dtype, m->tok_emb->data, (size_t)ids[t] * (size_t)H, (size_t)H, xt);
        is_convert_to_f32(m->pos_emb->dtype, m->pos_emb->data, (size_t)t * (size_t)H, (size_t)H, pt);
        is_k_add(xt, pt, H);
    }
    /* hidden_states = [embeddings, layer 0 out, ..., layer L-1 out]; hidden_states[-2] is entry L-1 */
    int need_final = last_hidden || pooled || text_embeds;
    int run_layers = need_final ? m->layers : m->layers - 1;
    if (penultimate && m->layers == 1) memcpy(penultimate, m->x, (size_t)n * row);
    for (int l = 0; l < run_layers; l++) {
        encoder_layer(m, &m->layer[l], n);
        if (penultimate && l + 1 == m->layers - 1) memcpy(penultimate, m->x, (size_t)n * row);
    }
    if (!need_final) return NULL;

    is_k_layer_norm(m->h, m->x, n, H, m->final_w, m->final_b, m->eps);
    if (last_hidden) memcpy(last_hidden, m->h, (size_t)n * row);
    const float *pooled_row = m->h + (int64_t)is_clip_text_pooled_position(m, ids, n) * H;
    if (pooled) memcpy(pooled, pooled_row, row);
    if (text_embeds) is_k_linear(text_embeds, pooled_row, 1, m->proj, NULL);
    return NULL;
}
