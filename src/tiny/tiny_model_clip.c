/* The tiny model's CLIP encoders (transformers layout): CLIPTextModel, CLIPTextModelWithProjection
 * and CLIPVisionModelWithProjection share the encoder; only embeddings and heads differ. */
#include <stdio.h>

#include "tiny/tiny_model.h"

static void encoder_layers(tm_weights *g, const char *model, const tm_clip_spec *s) {
    const int64_t h = s->hidden_size;
    char p[256];
    for (int i = 0; i < s->num_hidden_layers; i++) {
        snprintf(p, sizeof p, "%s.encoder.layers.%d", model, i);
        tm_linear(g, p, "self_attn.q_proj", h, h, 1);
        tm_linear(g, p, "self_attn.k_proj", h, h, 1);
        tm_linear(g, p, "self_attn.v_proj", h, h, 1);
        tm_linear(g, p, "self_attn.out_proj", h, h, 1);
        tm_norm(g, p, "layer_norm1", h);
        tm_linear(g, p, "mlp.fc1", s->intermediate_size, h, 1);
        tm_linear(g, p, "mlp.fc2", h, s->intermediate_size, 1);
        tm_norm(g, p, "layer_norm2", h);
    }
}

static void text_weights(tm_weights *g, const tm_clip_spec *s) {
    const int64_t h = s->hidden_size;
    int64_t tok[2] = {s->vocab_size, h}, pos[2] = {s->max_position_embeddings, h};
    tm_random(g, "text_model.embeddings", "token_embedding.weight", 2, tok);
    tm_random(g, "text_model.embeddings", "position_embedding.weight", 2, pos);
    encoder_layers(g, "text_model", s);
    tm_norm(g, "text_model", "final_layer_norm", h);
    if (s->with_projection) tm_linear(g, "", "text_projection", s->projection_dim, h, 0);
}

static void vision_weights(tm_weights *g, const tm_clip_spec *s) {
    const int64_t h = s->hidden_size, grid = s->image_size / s->patch_size;
    int64_t cls = h, patch[4] = {h, s->num_channels, s->patch_size, s->patch_size}, pos[2] = {grid * grid + 1, h};
    tm_random(g, "vision_model.embeddings", "class_embedding", 1, &cls);
    tm_random(g, "vision_model.embeddings", "patch_embedding.weight", 4, patch); /* conv without bias */
    tm_random(g, "vision_model.embeddings", "position_embedding.weight", 2, pos);
    tm_norm(g, "vision_model", "pre_layrnorm", h); /* sic: transformers' spelling */
    encoder_layers(g, "vision_model", s);
    tm_norm(g, "vision_model", "post_layernorm", h);
    if (s->with_projection) tm_linear(g, "", "visual_projection", s->projection_dim, h, 0);
}

static is_error *config(const char *dir, const tm_clip_spec *s, is_dtype dtype) {
    tm_json j = tm_json_new();
    tm_json_strs(&j, "architectures", &s->architecture, 1);
    tm_json_num(&j, "attention_dropout", 0.0);
    if (!s->vision) { /* transformers' legacy CLIP defaults: eos_token_id 2 selects the argmax pooling */
        tm_json_num(&j, "bos_token_id", 0);
        tm_json_num(&j, "dropout", 0.0);
        tm_json_num(&j, "eos_token_id", 2);
    } else {
        tm_json_num(&j, "dropout", 0.0);
    }
    tm_json_str(&j, "hidden_act", s->hidden_act);
    tm_json_num(&j, "hidden_size", s->hidden_size);
    if (s->vision) tm_json_num(&j, "image_size", s->image_size);
    tm_json_num(&j, "initializer_factor", 1.0);
    tm_json_num(&j, "initializer_range", 0.02);
    tm_json_num(&j, "intermediate_size", s->intermediate_size);
    tm_json_num(&j, "layer_norm_eps", 1e-05);
    if (!s->vision) tm_json_num(&j, "max_position_embeddings", s->max_position_embeddings);
    tm_json_str(&j, "model_type", s->vision ? "clip_vision_model" : "clip_text_model");
    tm_json_num(&j, "num_attention_heads", s->num_attention_heads);
    if (s->vision) tm_json_num(&j, "num_channels", s->num_channels);
    tm_json_num(&j, "num_hidden_layers", s->num_hidden_layers);
    if (s->vision) {
        tm_json_num(&j, "patch_size", s->patch_size);
    } else {
        tm_json_num(&j, "pad_token_id", 1);
    }
    tm_json_num(&j, "projection_dim", s->projection_dim);
    tm_json_str(&j, "torch_dtype", dtype == IS_DT_F32 ? "float32" : "float16");
    tm_json_str(&j, "transformers_version", "4.41.2");
    if (!s->vision) tm_json_num(&j, "vocab_size", s->vocab_size);
    return tm_json_write(&j, dir, "config.json");
}

is_error *tm_write_clip(const char *dir, const tm_clip_spec *s, uint64_t seed, const char *stream) {
    IS_TRY(config(dir, s, s->dtype));
    tm_weights g;
    tm_weights_init(&g, s->dtype, seed, stream);
    if (s->vision)
        vision_weights(&g, s);
    else
        text_weights(&g, s);
    return tm_weights_finish(&g, dir, "model.safetensors");
}

is_error *tm_write_preprocessor_config(const char *dir, const tm_clip_spec *s) {
    /* CLIPImageProcessor as shipped with h94's image encoder: bicubic resize of the short side,
     * centre crop to the model's input size, OpenAI CLIP mean/std. */
    static const double mean[3] = {0.48145466, 0.4578275, 0.40821073};
    static const double std[3] = {0.26862954, 0.26130258, 0.27577711};
    tm_json crop = tm_json_new(), size = tm_json_new(), j = tm_json_new();
    tm_json_num(&crop, "height", s->image_size);
    tm_json_num(&crop, "width", s->image_size);
    tm_json_num(&size, "shortest_edge", s->image_size);
    tm_json_add(&j, "crop_size", crop);
    tm_json_bool(&j, "do_center_crop", 1);
    tm_json_bool(&j, "do_convert_rgb", 1);
    tm_json_bool(&j, "do_normalize", 1);
    tm_json_bool(&j, "do_rescale", 1);
    tm_json_bool(&j, "do_resize", 1);
    tm_json_add(&j, "image_mean", (tm_json){cJSON_CreateDoubleArray(mean, 3), 0});
    tm_json_str(&j, "image_processor_type", "CLIPImageProcessor");
    tm_json_add(&j, "image_std", (tm_json){cJSON_CreateDoubleArray(std, 3), 0});
    tm_json_num(&j, "resample", 3);
    tm_json_num(&j, "rescale_factor", 1.0 / 255.0);
    tm_json_add(&j, "size", size);
    return tm_json_write(&j, dir, "preprocessor_config.json");
}
