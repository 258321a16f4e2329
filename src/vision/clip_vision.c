/* CLIPVisionModelWithProjection forward, as transformers' modeling_clip.py:
 *   patch conv (no bias) -> [class_embedding; patches] + position_embedding -> pre_layrnorm
 *   -> layers (x += attn(LN1(x)); x += fc2(act(fc1(LN2(x))))) -> post_layernorm(x[0])
 *   -> visual_projection (no bias).
 * hidden_states[-2] (IP-Adapter-plus's input) is the input of the last layer. */
#include "vision/clip_vision.h"

#include <stdlib.h>
#include <string.h>

#include "core/config.h"
#include "core/fileio.h"
#include "core/safetensors.h"
#include "kernels/kernels.h"

enum { ACT_GELU, ACT_GELU_TANH, ACT_QUICK_GELU };

typedef struct {
    const is_tensor *ln1_w, *ln1_b, *q_w, *q_b, *k_w, *k_b, *v_w, *v_b, *o_w, *o_b;
    const is_tensor *ln2_w, *ln2_b, *fc1_w, *fc1_b, *fc2_w, *fc2_b;
} clip_layer;

struct is_image_encoder {
    is_st *weights;
    is_clip_preproc preproc;
    int hidden, inter, heads, n_layers, channels, image_size, patch, proj_dim, n_tokens, act;
    float eps;
    const is_tensor *patch_w, *class_emb, *pos_emb, *pre_ln_w, *pre_ln_b, *post_ln_w, *post_ln_b, *proj_w;
    clip_layer *layers;
};

/* Sizes from config.json (transformers CLIPVisionConfig defaults for absent fields). A full
 * CLIPConfig is accepted too: its vision_config is read. */
static is_error *read_config(const char *dir, is_image_encoder *enc) {
    is_config cfg;
    IS_TRY(is_config_load_in(dir, "config.json", &cfg));
    is_config vc = cfg; /* a view: vision_config when nested */
    cJSON *sub = cJSON_GetObjectItemCaseSensitive(cfg.root, "vision_config");
    if (cJSON_IsObject(sub)) vc.root = sub;
    int64_t hidden, inter, heads, layers, channels, image, patch, proj;
    double eps;
    const char *act = NULL;
    is_error *e = is_config_int_or(&vc, "hidden_size", 768, &hidden);
    if (!e) e = is_config_int_or(&vc, "intermediate_size", 3072, &inter);
    if (!e) e = is_config_int_or(&vc, "num_attention_heads", 12, &heads);
    if (!e) e = is_config_int_or(&vc, "num_hidden_layers", 12, &layers);
    if (!e) e = is_config_int_or(&vc, "num_channels", 3, &channels);
    if (!e) e = is_config_int_or(&vc, "image_size", 224, &image);
    if (!e) e = is_config_int_or(&vc, "patch_size", 32, &patch);
    if (!e) e = is_config_int_or(is_config_has(&vc, "projection_dim") ? &vc : &cfg, "projection_dim", 512, &proj);
    if (!e) e = is_config_float_or(&vc, "layer_norm_eps", 1e-5, &eps);
    if (!e) e = is_config_string_or(&vc, "hidden_act", "quick_gelu", &act);
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
        if (!strcmp(act, "gelu")) enc->act = ACT_GELU;
        else if (!strcmp(act, "quick_gelu")) enc->act = ACT_QUICK_GELU;
        else if (!strcmp(act, "gelu_new") || !strcmp(act, "gelu_pytorch_tanh")) enc->act = ACT_GELU_TANH;
        else e = is_errorf(IS_E_UNSUPPORTED, "%s: hidden_act '%s' is not supported (gelu, quick_gelu, gelu_new, "
                                             "gelu_pytorch_tanh)", cfg.path, act);
    }
    if (!e) {
        enc->hidden = (int)hidden;
        enc->inter = (int)inter;
        enc->heads = (int)heads;
        enc->n_layers = (int)layers;
        enc->channels = (int)channels;
        enc->image_size = (int)image;
        enc->patch = (int)patch;
        enc->proj_dim = (int)proj;
        enc->eps = (float)eps;
        int side = (int)(image / patch);
        enc->n_tokens = side * side + 1;
    }
    is_config_free(&cfg);
    return e;
}

static is_error *bind_weights(is_image_encoder *enc) {
    const is_st *st = enc->weights;
    int64_t D = enc->hidden, I = enc->inter, P = enc->patch;
    int64_t patch_shape[4] = {D, enc->channels, P, P}, vec[1] = {D}, pos[2] = {enc->n_tokens, D},
            proj[2] = {enc->proj_dim, D};
    IS_TRY(is_st_get(st, "vision_model.embeddings.patch_embedding.weight", 4, patch_shape, &enc->patch_w));
    IS_TRY(is_st_get(st, "vision_model.embeddings.class_embedding", 1, vec, &enc->class_emb));
    IS_TRY(is_st_get(st, "vision_model.embeddings.position_embedding.weight", 2, pos, &enc->pos_emb));
    IS_TRY(is_st_get(st, "vision_model.pre_layrnorm.weight", 1, vec, &enc->pre_ln_w));
    IS_TRY(is_st_get(st, "vision_model.pre_layrnorm.bias", 1, vec, &enc->pre_ln_b));
    IS_TRY(is_st_get(st, "vision_model.post_layernorm.weight", 1, vec, &enc->post_ln_w));
    IS_TRY(is_st_get(st, "vision_model.post_layernorm.bias", 1, vec, &enc->post_ln_b));
    IS_TRY(is_st_get(st, "visual_projection.weight", 2, proj, &enc->proj_w));
    int64_t dd[2] = {D, D}, id[2] = {I, D}, di[2] = {D, I}, iv[1] = {I};
    for (int l = 0; l < enc->n_layers; l++) {
        clip_layer *L = &enc->layers[l];
        const char *pre = "vision_model.encoder.layers";
        IS_TRY(is_st_getf(st, &L->ln1_w, 1, vec, "%s.%d.layer_norm1.weight", pre, l));
        IS_TRY(is_st_getf(st, &L->ln1_b, 1, vec, "%s.%d.layer_norm1.bias", pre, l));
        IS_TRY(is_st_getf(st, &L->q_w, 2, dd, "%s.%d.self_attn.q_proj.weight", pre, l));
        IS_TRY(is_st_getf(st, &L->q_b, 1, vec, "%s.%d.self_attn.q_proj.bias", pre, l));
        IS_TRY(is_st_getf(st, &L->k_w, 2, dd, "%s.%d.self_attn.k_proj.weight", pre, l));
        IS_TRY(is_st_getf(st, &L->k_b, 1, vec, "%s.%d.self_attn.k_proj.bias", pre, l));
        IS_TRY(is_st_getf(st, &L->v_w, 2, dd, "%s.%d.self_attn.v_proj.weight", pre, l));
        IS_TRY(is_st_getf(st, &L->v_b, 1, vec, "%s.%d.self_attn.v_proj.bias", pre, l));
        IS_TRY(is_st_getf(st, &L->o_w, 2, dd, "%s.%d.self_attn.out_proj.weight", pre, l));
        IS_TRY(is_st_getf(st, &L->o_b, 1, vec, "%s.%d.self_attn.out_proj.bias", pre, l));
        IS_TRY(is_st_getf(st, &L->ln2_w, 1, vec, "%s.%d.layer_norm2.weight", pre, l));
        IS_TRY(is_st_getf(st, &L->ln2_b, 1, vec, "%s.%d.layer_norm2.bias", pre, l));
        IS_TRY(is_st_getf(st, &L->fc1_w, 2, id, "%s.%d.mlp.fc1.weight", pre, l));
        IS_TRY(is_st_getf(st, &L->fc1_b, 1, iv, "%s.%d.mlp.fc1.bias", pre, l));
        IS_TRY(is_st_getf(st, &L->fc2_w, 2, di, "%s.%d.mlp.fc2.weight", pre, l));
        IS_TRY(is_st_getf(st, &L->fc2_b, 1, vec, "%s.%d.mlp.fc2.bias", pre, l));
    }
    return NULL;
}

static is_error *load_preproc(const char *dir, is_image_encoder *enc) {
    char *path = is_path_join(dir, "preprocessor_config.json");
    if (!path) return is_error_oom("preprocessor_config.json");
    is_error *e = NULL;
    if (is_file_exists(path))
        e = is_clip_preproc_load(path, &enc->preproc);
    else
        is_clip_preproc_defaults(&enc->preproc);
    const is_clip_preproc *pp = &enc->preproc;
    if (!e && pp->do_center_crop && (pp->crop_h != enc->image_size || pp->crop_w != enc->image_size))
        e = is_errorf(IS_E_CONFIG, "%s: crop_size %dx%d does not match the encoder's image_size %d (config.json)",
                      is_file_exists(path) ? path : "CLIPImageProcessor defaults", pp->crop_w, pp->crop_h,
                      enc->image_size);
    free(path);
    return e;
}

is_error *is_image_encoder_load(const char *dir, is_image_encoder **out) {
    if (!out) return is_errorf(IS_E_ARGUMENT, "is_image_encoder_load: no output handle");
    *out = NULL;
    if (!dir) return is_errorf(IS_E_ARGUMENT, "is_image_encoder_load: no folder given");
    is_image_encoder *enc = calloc(1, sizeof *enc);
    if (!enc) return is_error_oom("image encoder");
    is_error *e = read_config(dir, enc);
    if (!e) e = load_preproc(dir, enc);
    if (!e) {
        enc->layers = calloc((size_t)enc->n_layers, sizeof *enc->layers);
        if (!enc->layers) e = is_error_oom("image encoder layers");
    }
    if (!e) {
        char *path = is_path_join(dir, "model.safetensors");
        e = path ? is_st_open(path, &enc->weights) : is_error_oom("model.safetensors");
        free(path);
    }
    if (!e) e = bind_weights(enc);
    if (e) {
        is_image_encoder_free(enc);
        return is_error_wrap(e, "loading image encoder from %s", dir);
    }
    *out = enc;
    return NULL;
}

void is_image_encoder_free(is_image_encoder *enc) {
    if (!enc) return;
    is_st_close(enc->weights);
    free(enc->layers);
    free(enc);
}

int is_image_encoder_image_size(const is_image_encoder *enc) { return enc ? enc->image_size : 0; }
int is_image_encoder_projection_dim(const is_image_encoder *enc) { return enc ? enc->proj_dim : 0; }
int is_image_encoder_hidden_size(const is_image_encoder *enc) { return enc ? enc->hidden : 0; }
int is_image_encoder_num_tokens(const is_image_encoder *enc) { return enc ? enc->n_tokens : 0; }
const is_clip_preproc *is_image_encoder_preproc(const is_image_encoder *enc) { return enc ? &enc->preproc : NULL; }

is_error *is_image_preprocess(const is_image_encoder *enc, const is_image *img, float *pixel_values) {
    if (!enc) return is_errorf(IS_E_ARGUMENT, "is_image_preprocess: no encoder");
    return is_clip_preprocess(&enc->preproc, img, enc->image_size, pixel_values);
}

static void activation(const is_image_encoder *enc, float *x, int64_t n) {
    if (enc->act == ACT_GELU) is_k_gelu(x, n);
    else if (enc->act == ACT_QUICK_GELU) is_k_quick_gelu(x, n);
    else is_k_gelu_tanh(x, n);
}

/* x [N, D] += self_attn(LN1(x)); x += mlp(LN2(x)). Scratch: h, q, k, v, a [N, D], f [N, I]. */
static void encoder_layer(const is_image_encoder *enc, const clip_layer *L, float *x, float *h, float *q, float *k,
                          float *v, float *a, float *f) {
    int64_t N = enc->n_tokens, D = enc->hidden;
    is_k_layer_norm(h, x, N, D, L->ln1_w, L->ln1_b, enc->eps);
    is_k_linear(q, h, N, L->q_w, L->q_b);
    is_k_linear(k, h, N, L->k_w, L->k_b);
    is_k_linear(v, h, N, L->v_w, L->v_b);
    is_k_attention(a, D, q, D, k, D, v, D, N, N, enc->heads, D / enc->heads, 0, 1.0f, 0);
    is_k_linear(h, a, N, L->o_w, L->o_b);
    is_k_add(x, h, N * D);
    is_k_layer_norm(h, x, N, D, L->ln2_w, L->ln2_b, enc->eps);
    is_k_linear(f, h, N, L->fc1_w, L->fc1_b);
    activation(enc, f, N * enc->inter);
    is_k_linear(h, f, N, L->fc2_w, L->fc2_b);
    is_k_add(x, h, N * D);
}

/* x [N, D] = [class; patches] + positions. */
static void embed(const is_image_encoder *enc, const float *pixel_values, float *x, float *patches, float *row) {
    int64_t D = enc->hidden, S = enc->image_size, P = enc->n_tokens - 1;
    is_k_conv2d(patches, pixel_values, enc->channels, S, S, enc->patch_w, NULL, enc->patch, 0); /* [D, P] */
    for (int64_t t = 0; t <= P; t++) {
        is_convert_to_f32(enc->pos_emb->dtype, enc->pos_emb->data, (size_t)(t * D), (size_t)D, row);
        float *xt = x + t * D;
        if (t == 0) {
            is_convert_to_f32(enc->class_emb->dtype, enc->class_emb->data, 0, (size_t)D, xt);
            for (int64_t d = 0; d < D; d++) xt[d] += row[d];
        } else {
            for (int64_t d = 0; d < D; d++) xt[d] = patches[d * P + (t - 1)] + row[d];
        }
    }
}

is_error *is_clip_vision_forward(is_image_encoder *enc, const float *pixel_values, float *image_embeds,
                                 float *penultimate, float *last_hidden) {
    if (!enc || !pixel_values) return is_errorf(IS_E_ARGUMENT, "image encoder forward: missing encoder or pixel values");
    size_t N = (size_t)enc->n_tokens, D = (size_t)enc->hidden, I = (size_t)enc->inter;
    /* x, h, q, k, v, a: N*D each; f: N*I (also holds the patch grid D*(N-1)); row: D */
    size_t nd = N * D, total = 6 * nd + (N * I > nd ? N * I : nd) + D;
    float *buf = malloc(total * sizeof(float));
    if (!buf) return is_error_oom("image encoder activations");
    float *x = buf, *h = x + nd, *q = h + nd, *k = q + nd, *v = k + nd, *a = v + nd, *f = a + nd;
    float *row = f + (N * I > nd ? N * I : nd);

    embed(enc, pixel_values, x, f, row);
    is_k_layer_norm(x, x, (int64_t)N, (int64_t)D, enc->pre_ln_w, enc->pre_ln_b, enc->eps);
    for (int l = 0; l < enc->n_layers; l++) {
        if (l == enc->n_layers - 1 && penultimate) memcpy(penultimate, x, nd * sizeof(float));
        encoder_layer(enc, &enc->layers[l], x, h, q, k, v, a, f);
    }
    if (last_hidden) memcpy(last_hidden, x, nd * sizeof(float));
    if (image_embeds) {
        is_k_layer_norm(h, x, 1, (int64_t)D, enc->post_ln_w, enc->post_ln_b, enc->eps); /* CLS token only */
        is_k_linear(image_embeds, h, 1, enc->proj_w, NULL);
    }
    free(buf);
    return NULL;
}

is_error *is_image_encoder_forward(is_image_encoder *enc, const float *pixel_values, float *image_embeds,
                                   float *penultimate) {
    if (!image_embeds) return is_errorf(IS_E_ARGUMENT, "is_image_encoder_forward: no image_embeds output");
    return is_clip_vision_forward(enc, pixel_values, image_embeds, penultimate, NULL);
}
