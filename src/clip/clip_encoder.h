/* The transformer encoder shared by transformers' CLIPTextModel (causal) and CLIPVisionModel:
 *   per layer: x += out_proj(attn(layer_norm1(x)));  x += fc2(act(fc1(layer_norm2(x))))
 * Internal to the library (not in instantstyle.h). Weights are views into the safetensors mmap;
 * activations live in a scratch set allocated once by the owning model. */
#ifndef IS_CLIP_CLIP_ENCODER_H
#define IS_CLIP_CLIP_ENCODER_H

#include "core/config.h"
#include "core/safetensors.h"
#include "kernels/dnn.h"

/* config.json `hidden_act`. gelu_new and gelu_pytorch_tanh are the same tanh approximation. */
typedef enum { IS_CLIP_ACT_QUICK_GELU, IS_CLIP_ACT_GELU, IS_CLIP_ACT_GELU_TANH } is_clip_act;

/* Reads `hidden_act` (CLIP's default quick_gelu when absent). cfg may be a view of a nested
 * vision_config; errors name cfg->path, the field and the accepted values. */
is_error *is_clip_act_read(const is_config *cfg, is_clip_act *out);

typedef struct {
    const is_tensor *ln1_w, *ln1_b, *q_w, *q_b, *k_w, *k_b, *v_w, *v_b, *o_w, *o_b;
    const is_tensor *ln2_w, *ln2_b, *fc1_w, *fc1_b, *fc2_w, *fc2_b;
} is_clip_layer;

/* Sizes and activation come from the caller's config reading; layers from is_clip_encoder_bind. */
typedef struct {
    int hidden, inter, heads, n_layers;
    float eps;
    is_clip_act act;
    is_clip_layer *layers;
    is_dnn *dnn; /* the owning model's bf16 path, or NULL: f32 (freed by is_clip_encoder_free) */
} is_clip_encoder;

/* Activations for up to max_tokens tokens: x is the residual stream [max_tokens, hidden] (the
 * caller writes the embeddings into it and reads the result from it); h, q, k, v, a are
 * [max_tokens, hidden] and f is [max_tokens, inter]. Callers may use h..f as temporaries
 * before the forward (e.g. while embedding). */
typedef struct {
    float *x, *h, *q, *k, *v, *a, *f;
} is_clip_scratch;

/* A float weight (F32/F16/BF16/F64) of exactly this shape, looked up through is_st_getf;
 * errors name the file, the tensor and the expected shape or dtype. */
is_error *is_clip_weight(const is_st *st, const is_tensor **out, int ndim, const int64_t *shape, const char *fmt,
                         ...) __attribute__((format(printf, 5, 6)));

/* Binds "<prefix>.layers.%d.{layer_norm1,self_attn.{q,k,v,out}_proj,layer_norm2,mlp.fc1,mlp.fc2}.
 * {weight,bias}" for enc->n_layers layers (prefix e.g. "text_model.encoder"). Allocates enc->layers. */
is_error *is_clip_encoder_bind(is_clip_encoder *enc, const is_st *st, const char *prefix);
void is_clip_encoder_free(is_clip_encoder *enc); /* frees the layer table and bf16 context, not the weights */
/* Precision of a CLIP model whose weights are st: packs every matrix and convolution weight except
 * the embedding tables (looked up, not multiplied); stream_first as is_dnn_apply_precision. */
is_error *is_clip_encoder_set_precision(is_clip_encoder *enc, const is_st *st, is_precision p, const char *what,
                                        int stream_first);

/* `what` names the model in an out-of-memory error. */
is_error *is_clip_scratch_alloc(is_clip_scratch *s, const is_clip_encoder *enc, int max_tokens, const char *what);
void is_clip_scratch_free(is_clip_scratch *s);

/* Runs the layers over s->x [n, hidden] in place; causal: token i attends to tokens <= i.
 * hidden_states[-2] (the input of the last layer) is copied to penultimate when it is non-NULL.
 * stop_at_penultimate skips the last layer, leaving hidden_states[-2] in s->x. */
void is_clip_encoder_forward(const is_clip_encoder *enc, const is_clip_scratch *s, int n, int causal,
                             float *penultimate, int stop_at_penultimate);


#endif
