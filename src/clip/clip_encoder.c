/* CLIP encoder layers (transformers modeling_clip.py CLIPEncoderLayer), shared by the text and
 * vision models. */
#include "clip/clip_encoder.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/fileio.h"
#include "kernels/kernels.h"

/* ---------------------------------------------------------------- config and weights */

is_error *is_clip_act_read(const is_config *cfg, is_clip_act *out) {
    const char *act;
    IS_TRY(is_config_string_or(cfg, "hidden_act", "quick_gelu", &act));
    if (strcmp(act, "quick_gelu") == 0)
        *out = IS_CLIP_ACT_QUICK_GELU;
    else if (strcmp(act, "gelu") == 0)
        *out = IS_CLIP_ACT_GELU;
    else if (strcmp(act, "gelu_new") == 0 || strcmp(act, "gelu_pytorch_tanh") == 0)
        *out = IS_CLIP_ACT_GELU_TANH;
    else
        return is_errorf(IS_E_UNSUPPORTED, "%s: field 'hidden_act' = '%s' is not supported (quick_gelu, gelu, gelu_new, "
                         "gelu_pytorch_tanh)", cfg->path, act);
    return NULL;
}

is_error *is_clip_weight(const is_st *st, const is_tensor **out, int ndim, const int64_t *shape, const char *fmt,
                         ...) {
    char name[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(name, sizeof name, fmt, ap);
    va_end(ap);
    IS_TRY(is_st_getf(st, out, ndim, shape, "%s", name));
    is_dtype dt = (*out)->dtype;
    if (dt != IS_DT_F32 && dt != IS_DT_F16 && dt != IS_DT_BF16 && dt != IS_DT_F64) {
        is_error *e = is_errorf(IS_E_SHAPE, "%s: tensor '%s' has dtype %s, expected a float type (F32, F16, BF16)",
                                (*out)->file, name, is_dtype_name(dt));
        *out = NULL;
        return e;
    }
    return NULL;
}

is_error *is_clip_encoder_bind(is_clip_encoder *enc, const is_st *st, const char *prefix) {
    free(enc->layers);
    enc->layers = calloc((size_t)enc->n_layers, sizeof *enc->layers);
    if (!enc->layers) return is_error_oom("CLIP encoder layers");
    const int64_t vec[1] = {enc->hidden}, inter[1] = {enc->inter};
    const int64_t dd[2] = {enc->hidden, enc->hidden}, id[2] = {enc->inter, enc->hidden},
                  di[2] = {enc->hidden, enc->inter};
    for (int l = 0; l < enc->n_layers; l++) {
        is_clip_layer *L = &enc->layers[l];
#define P "%s.layers.%d."
        IS_TRY(is_clip_weight(st, &L->ln1_w, 1, vec, P "layer_norm1.weight", prefix, l));
        IS_TRY(is_clip_weight(st, &L->ln1_b, 1, vec, P "layer_norm1.bias", prefix, l));
        IS_TRY(is_clip_weight(st, &L->q_w, 2, dd, P "self_attn.q_proj.weight", prefix, l));
        IS_TRY(is_clip_weight(st, &L->q_b, 1, vec, P "self_attn.q_proj.bias", prefix, l));
        IS_TRY(is_clip_weight(st, &L->k_w, 2, dd, P "self_attn.k_proj.weight", prefix, l));
        IS_TRY(is_clip_weight(st, &L->k_b, 1, vec, P "self_attn.k_proj.bias", prefix, l));
        IS_TRY(is_clip_weight(st, &L->v_w, 2, dd, P "self_attn.v_proj.weight", prefix, l));
        IS_TRY(is_clip_weight(st, &L->v_b, 1, vec, P "self_attn.v_proj.bias", prefix, l));
        IS_TRY(is_clip_weight(st, &L->o_w, 2, dd, P "self_attn.out_proj.weight", prefix, l));
        IS_TRY(is_clip_weight(st, &L->o_b, 1, vec, P "self_attn.out_proj.bias", prefix, l));
        IS_TRY(is_clip_weight(st, &L->ln2_w, 1, vec, P "layer_norm2.weight", prefix, l));
        IS_TRY(is_clip_weight(st, &L->ln2_b, 1, vec, P "layer_norm2.bias", prefix, l));
        IS_TRY(is_clip_weight(st, &L->fc1_w, 2, id, P "mlp.fc1.weight", prefix, l));
        IS_TRY(is_clip_weight(st, &L->fc1_b, 1, inter, P "mlp.fc1.bias", prefix, l));
        IS_TRY(is_clip_weight(st, &L->fc2_w, 2, di, P "mlp.fc2.weight", prefix, l));
        IS_TRY(is_clip_weight(st, &L->fc2_b, 1, vec, P "mlp.fc2.bias", prefix, l));
#undef P
    }
    return NULL;
}

void is_clip_encoder_free(is_clip_encoder *enc) {
    free(enc->layers);
    enc->layers = NULL;
    is_dnn_free(enc->dnn);
    enc->dnn = NULL;
}

/* Token and position embeddings are tables read by index, not weights of a product. */
static int is_product_weight(const char *name) {
    return !strstr(name, "token_embedding") && !strstr(name, "position_embedding");
}

is_error *is_clip_encoder_set_precision(is_clip_encoder *enc, const is_st *st, is_precision p, const char *what,
                                        int stream_first) {
    const is_st *sts[1] = {st};
    return is_dnn_apply_precision(&enc->dnn, p, sts, 1, is_product_weight, what, stream_first);
}

/* ---------------------------------------------------------------- activations */

is_error *is_clip_scratch_alloc(is_clip_scratch *s, const is_clip_encoder *enc, int max_tokens, const char *what) {
    size_t nh = (size_t)max_tokens * (size_t)enc->hidden, nf = (size_t)max_tokens * (size_t)enc->inter;
    float **rows[6] = {&s->x, &s->h, &s->q, &s->k, &s->v, &s->a};
    for (int i = 0; i < 6; i++)
        if (!(*rows[i] = malloc(nh * sizeof(float)))) return is_error_oom(what);
    if (!(s->f = malloc(nf * sizeof(float)))) return is_error_oom(what);
    return NULL;
}

void is_clip_scratch_free(is_clip_scratch *s) {
    free(s->x), free(s->h), free(s->q), free(s->k), free(s->v), free(s->a), free(s->f);
    memset(s, 0, sizeof *s);
}

/* ---------------------------------------------------------------- forward */

static void activation(is_clip_act act, float *x, int64_t count) {
    switch (act) {
    case IS_CLIP_ACT_QUICK_GELU: is_k_quick_gelu(x, count); break;
    case IS_CLIP_ACT_GELU: is_k_gelu(x, count); break;
    case IS_CLIP_ACT_GELU_TANH: is_k_gelu_tanh(x, count); break;
    }
}

/* One pre-LayerNorm layer on the residual stream s->x [n, hidden]. No padding mask: CLIP text
 * (as SDXL uses it) attends to padding tokens, and vision has none. */
static void encoder_layer(const is_clip_encoder *enc, const is_clip_layer *L, const is_clip_scratch *s, int64_t n,
                          int causal) {
    const int64_t H = enc->hidden, dh = H / enc->heads;
    /* self-attention block */
    is_k_layer_norm(s->h, s->x, n, H, L->ln1_w, L->ln1_b, enc->eps);
    is_dnn_linear(enc->dnn, s->q, s->h, n, L->q_w, L->q_b);
    is_dnn_linear(enc->dnn, s->k, s->h, n, L->k_w, L->k_b);
    is_dnn_linear(enc->dnn, s->v, s->h, n, L->v_w, L->v_b);
    is_dnn_attention(enc->dnn, s->a, H, s->q, H, s->k, H, s->v, H, n, n, enc->heads, dh, causal, 1.0f, 0);
    is_dnn_linear(enc->dnn, s->h, s->a, n, L->o_w, L->o_b);
    is_k_add(s->x, s->h, n * H);
    /* MLP block */
    is_k_layer_norm(s->h, s->x, n, H, L->ln2_w, L->ln2_b, enc->eps);
    is_dnn_linear(enc->dnn, s->f, s->h, n, L->fc1_w, L->fc1_b);
    activation(enc->act, s->f, n * enc->inter);
    is_dnn_linear(enc->dnn, s->h, s->f, n, L->fc2_w, L->fc2_b);
    is_k_add(s->x, s->h, n * H);
}

void is_clip_encoder_forward(const is_clip_encoder *enc, const is_clip_scratch *s, int n, int causal,
                             float *penultimate, int stop_at_penultimate) {
    /* hidden_states = [embeddings, layer 0 out, ..., layer L-1 out]: hidden_states[-2] is the
     * input of layer L-1 (the embeddings themselves when there is one layer). */
    for (int l = 0; l < enc->n_layers; l++) {
        if (l == enc->n_layers - 1) {
            if (penultimate) memcpy(penultimate, s->x, (size_t)n * (size_t)enc->hidden * sizeof(float));
            if (stop_at_penultimate) return;
        }
        encoder_layer(enc, &enc->layers[l], s, n, causal);
    }
}
