/* CLIPVisionModelWithProjection forward, as transformers' modeling_clip.py:
 *   patch conv (no bias) -> [class_embedding; patches] + position_embedding -> pre_layrnorm
 *   -> encoder layers (clip/clip_encoder, not causal) -> post_layernorm(x[0])
 *   -> visual_projection (no bias).
 * hidden_states[-2] (IP-Adapter-plus's input) is the input of the last layer. Weights stay in the
 * mmap; activations live in scratch buffers allocated once at load for the fixed token count. */
#include "vision/clip_vision.h"

#include <stdlib.h>
#include <string.h>

#include "clip/clip_encoder.h"
#include "core/config.h"
#include "core/fileio.h"
#include "core/safetensors.h"
#include "kernels/kernels.h"

struct is_image_encoder {
    is_st *weights;
    is_clip_preproc preproc;
    int channels, image_size, patch, proj_dim, n_tokens;
    is_clip_encoder enc; /* hidden/inter/heads/n_layers, eps, act, layers */
    const is_tensor *patch_w, *class_emb, *pos_emb, *pre_ln_w, *pre_ln_b, *post_ln_w, *post_ln_b, *proj_w;
    is_clip_scratch s; /* [n_tokens, ...] */
    int streamed;      /* the last forward ran with streamed bf16 weights: the next one packs them first */
};

/* Sizes from config.json (transformers CLIPVisionConfig defaults for absent fields). A full
 * CLIPConfig is accepted too: its vision_config is read. */
static is_error *read_config(const char *dir, is_image_encoder *m) {
    is_config cfg;
    IS_TRY(is_config_load_in(dir, "config.json", &cfg));
    is_config vc = cfg; /* a view: vision_config when nested */
    cJSON *sub = cJSON_GetObjectItemCaseSensitive(cfg.root, "vision_config");
    if (cJSON_IsObject(sub)) vc.root = sub;
    int64_t hidden, inter, heads, layers, channels, image, patch, proj;
    double eps;
    is_error *e = is_config_int_or(&vc, "hidden_size", 768, &hidden);
    if (!e) e = is_config_int_or(&vc, "intermediate_size", 3072, &inter);
    if (!e) e = is_config_int_or(&vc, "num_attention_heads", 12, &heads);
    if (!e) e = is_config_int_or(&vc, "num_hidden_layers", 12, &layers);
    if (!e) e = is_config_int_or(&vc, "num_channels", 3, &channels);
    if (!e) e = is_config_int_or(&vc, "image_size", 224, &image);
    if (!e) e = is_config_int_or(&vc, "patch_size", 32, &patch);
    if (!e) e = is_config_int_or(is_config_has(&vc, "projection_dim") ? &vc : &cfg, "projection_dim", 512, &proj);
    if (!e) e = is_config_float_or(&vc, "layer_norm_eps", 1e-5, &eps);
    if (!e) e = is_clip_act_read(&vc, &m->enc.act);
    if (!e && (hidden < 1 || inter < 1 || heads < 1 || layers < 1 || patch < 1 || proj < 1 || image < patch ||
               hidden > 65536 || inter > 262144 || layers > 1000 || image > 8192 || proj > 65536 || hidden % heads))
        e = is_errorf(IS_E_CONFIG, "%s: inconsistent sizes (hidden_size %lld, num_attention_heads %lld, "
                                   "num_hidden_layers %lld, image_size %lld, patch_size %lld, projection_dim %lld)",
                      cfg.path, (long long)hidden, (long long)heads, (long long)layers, (long long)image,
                      (long long)patch, (long long)proj);
    if (!e && channels != 3)
        e = is_errorf(IS_E_UNSUPPORTED, "%s: num_channels is %lld; only RGB (3) images are supported", cfg.path,
                      (long long)channels);
    if (!e) {
        m->enc.hidden = (int)hidden;
        m->enc.inter = (int)inter;
        m->enc.heads = (int)heads;
        m->enc.n_layers = (int)layers;
        m->enc.eps = (float)eps;
        m->channels = (int)channels;
        m->image_size = (int)image;
        m->patch = (int)patch;
        m->proj_dim = (int)proj;
        int side = (int)(image / patch);
        m->n_tokens = side * side + 1;
    }
    is_config_free(&cfg);
    return e;
}

static is_error *bind_weights(is_image_encoder *m) {
    const is_st *st = m->weights;
    int64_t D = m->enc.hidden, P = m->patch;
    int64_t patch_shape[4] = {D, m->channels, P, P}, vec[1] = {D}, pos[2] = {m->n_tokens, D}, proj[2] = {m->proj_dim, D};
    IS_TRY(is_clip_weight(st, &m->patch_w, 4, patch_shape, "vision_model.embeddings.patch_embedding.weight"));
    IS_TRY(is_clip_weight(st, &m->class_emb, 1, vec, "vision_model.embeddings.class_embedding"));
    IS_TRY(is_clip_weight(st, &m->pos_emb, 2, pos, "vision_model.embeddings.position_embedding.weight"));
    IS_TRY(is_clip_weight(st, &m->pre_ln_w, 1, vec, "vision_model.pre_layrnorm.weight"));
    IS_TRY(is_clip_weight(st, &m->pre_ln_b, 1, vec, "vision_model.pre_layrnorm.bias"));
    IS_TRY(is_clip_weight(st, &m->post_ln_w, 1, vec, "vision_model.post_layernorm.weight"));
    IS_TRY(is_clip_weight(st, &m->post_ln_b, 1, vec, "vision_model.post_layernorm.bias"));
    IS_TRY(is_clip_weight(st, &m->proj_w, 2, proj, "visual_projection.weight"));
    return is_clip_encoder_bind(&m->enc, st, "vision_model.encoder");
}

static is_error *load_preproc(const char *dir, is_image_encoder *m) {
    char *path = is_path_join(dir, "preprocessor_config.json");
    if (!path) return is_error_oom("preprocessor_config.json");
    is_error *e = NULL;
    if (is_file_exists(path))
        e = is_clip_preproc_load(path, &m->preproc);
    else
        is_clip_preproc_defaults(&m->preproc);
    const is_clip_preproc *pp = &m->preproc;
    if (!e && pp->do_center_crop && (pp->crop_h != m->image_size || pp->crop_w != m->image_size))
        e = is_errorf(IS_E_CONFIG, "%s: crop_size %dx%d does not match the encoder's image_size %d (config.json)",
                      is_file_exists(path) ? path : "CLIPImageProcessor defaults", pp->crop_w, pp->crop_h,
                      m->image_size);
    free(path);
    return e;
}

is_error *is_image_encoder_load(const char *dir, is_image_encoder **out) {
    if (!out) return is_errorf(IS_E_ARGUMENT, "is_image_encoder_load: no output handle");
    *out = NULL;
    if (!dir) return is_errorf(IS_E_ARGUMENT, "is_image_encoder_load: no folder given");
    is_image_encoder *m = calloc(1, sizeof *m);
    if (!m) return is_error_oom("image encoder");
    is_error *e = read_config(dir, m);
    if (!e) e = load_preproc(dir, m);
    if (!e) e = is_st_open_in_dir(dir, "model", &m->weights);
    if (!e) e = is_kernels_reserve(is_st_max_numel(m->weights)); /* out of memory: an error now, not an abort later */
    if (!e) e = bind_weights(m);
    if (!e) e = is_clip_scratch_alloc(&m->s, &m->enc, m->n_tokens, "image encoder activations");
    if (e) {
        is_image_encoder_free(m);
        return is_error_wrap(e, "loading image encoder from %s", dir);
    }
    *out = m;
    return NULL;
}

void is_image_encoder_free(is_image_encoder *m) {
    if (!m) return;
    is_st_close(m->weights);
    is_clip_encoder_free(&m->enc);
    is_clip_scratch_free(&m->s);
    free(m);
}

/* Once per generation: its bf16 products stream their weights on first use (no packed copy: cheaper for one
 * forward), and the weights are packed when the encoder runs again (a second forward, or set_precision again). */
is_error *is_image_encoder_set_precision(is_image_encoder *m, is_precision p) {
    if (!m) return is_errorf(IS_E_ARGUMENT, "is_image_encoder_set_precision: NULL encoder");
    m->streamed = 0;
    return is_clip_encoder_set_precision(&m->enc, m->weights, p, "image encoder", 1);
}

const struct is_dnn *is_clip_vision_dnn(const is_image_encoder *m) { return m ? m->enc.dnn : NULL; }

int is_image_encoder_image_size(const is_image_encoder *m) { return m ? m->image_size : 0; }
int is_image_encoder_projection_dim(const is_image_encoder *m) { return m ? m->proj_dim : 0; }
int is_image_encoder_hidden_size(const is_image_encoder *m) { return m ? m->enc.hidden : 0; }
int is_image_encoder_num_tokens(const is_image_encoder *m) { return m ? m->n_tokens : 0; }
const is_clip_preproc *is_image_encoder_preproc(const is_image_encoder *m) { return m ? &m->preproc : NULL; }

is_error *is_image_preprocess(const is_image_encoder *m, const is_image *img, float *pixel_values) {
    if (!m) return is_errorf(IS_E_ARGUMENT, "is_image_preprocess: no encoder");
    return is_clip_preprocess(&m->preproc, img, m->image_size, pixel_values);
}

/* s->x [N, D] = [class; patches] + positions. The patch grid [D, N-1] goes through s->q and each
 * position row through s->h, both free until the layers run. */
static void embed(const is_image_encoder *m, const float *pixel_values) {
    int64_t D = m->enc.hidden, S = m->image_size, P = m->n_tokens - 1;
    float *x = m->s.x, *patches = m->s.q, *row = m->s.h;
    is_dnn_conv2d(m->enc.dnn, patches, pixel_values, m->channels, S, S, m->patch_w, NULL, m->patch, 0); /* [D, P] */
    for (int64_t t = 0; t <= P; t++) {
        is_convert_to_f32(m->pos_emb->dtype, m->pos_emb->data, (size_t)(t * D), (size_t)D, row);
        float *xt = x + t * D;
        if (t == 0) {
            is_convert_to_f32(m->class_emb->dtype, m->class_emb->data, 0, (size_t)D, xt);
            for (int64_t d = 0; d < D; d++) xt[d] += row[d];
        } else {
            for (int64_t d = 0; d < D; d++) xt[d] = patches[d * P + (t - 1)] + row[d];
        }
    }
}

is_error *is_clip_vision_forward(is_image_encoder *m, const float *pixel_values, float *image_embeds,
                                 float *penultimate, float *last_hidden) {
    if (!m || !pixel_values) return is_errorf(IS_E_ARGUMENT, "image encoder forward: missing encoder or pixel values");
    if (m->streamed && is_dnn_is_streaming(m->enc.dnn)) /* run before: pack now */
        IS_TRY(is_clip_encoder_set_precision(&m->enc, m->weights, IS_PRECISION_BF16, "image encoder", 1));
    m->streamed = is_dnn_is_streaming(m->enc.dnn);
    const is_clip_scratch *s = &m->s;
    const int64_t N = m->n_tokens, D = m->enc.hidden;
    embed(m, pixel_values);
    is_k_layer_norm(s->x, s->x, N, D, m->pre_ln_w, m->pre_ln_b, m->enc.eps);
    /* full attention; the final layer only matters for the outputs after it */
    int need_final = image_embeds || last_hidden;
    is_clip_encoder_forward(&m->enc, s, m->n_tokens, 0, penultimate, !need_final);
    if (last_hidden) memcpy(last_hidden, s->x, (size_t)(N * D) * sizeof(float));
    if (image_embeds) {
        is_k_layer_norm(s->h, s->x, 1, D, m->post_ln_w, m->post_ln_b, m->enc.eps); /* CLS token only */
        is_dnn_linear(m->enc.dnn, image_embeds, s->h, 1, m->proj_w, NULL);
    }
    return NULL;
}

is_error *is_image_encoder_forward(is_image_encoder *m, const float *pixel_values, float *image_embeds,
                                   float *penultimate) {
    if (!image_embeds) return is_errorf(IS_E_ARGUMENT, "is_image_encoder_forward: no image_embeds output");
    return is_clip_vision_forward(m, pixel_values, image_embeds, penultimate, NULL);
}
