/* The tiny model's ControlNetModel (diffusers, SDXL): the UNet's trunk (conv_in, embeddings, down
 * blocks, mid block) under the same names, ControlNetConditioningEmbedding for the control image,
 * and one 1x1 convolution per residual. A trained ControlNet starts with those convolutions (and the
 * embedding's conv_out) at zero; here they are random like everything else, so the residuals are
 * non-zero and exercise the code that adds them. */
#include <stdio.h>

#include "tiny/tiny_model.h"

/* conv_in to the first level, per level a 3x3 and a stride-2 3x3 into the next, conv_out to the
 * UNet's first block width (what is added to conv_in's output). */
static void cond_embedding(tm_weights *g, const tm_unet_spec *u, const tm_controlnet_spec *c) {
    const int n = c->n_cond_levels;
    const int *ch = c->cond_out_channels;
    char leaf[32];
    tm_conv(g, "controlnet_cond_embedding", "conv_in", ch[0], c->conditioning_channels, 3);
    for (int i = 0; i < n - 1; i++) {
        snprintf(leaf, sizeof leaf, "blocks.%d", 2 * i);
        tm_conv(g, "controlnet_cond_embedding", leaf, ch[i], ch[i], 3);
        snprintf(leaf, sizeof leaf, "blocks.%d", 2 * i + 1);
        tm_conv(g, "controlnet_cond_embedding", leaf, ch[i + 1], ch[i], 3);
    }
    tm_conv(g, "controlnet_cond_embedding", "conv_out", u->block_out_channels[0], ch[n - 1], 3);
}

/* One 1x1 convolution per UNet skip connection, in the order the down path produces them: conv_in's
 * output, each resnet (+ attention) of each block, each downsampler; then the mid block's. */
static void zero_convs(tm_weights *g, const tm_unet_spec *u) {
    const int n = u->n_blocks;
    const int *ch = u->block_out_channels;
    char leaf[32];
    int k = 0;
    snprintf(leaf, sizeof leaf, "%d", k++);
    tm_conv(g, "controlnet_down_blocks", leaf, ch[0], ch[0], 1);
    for (int i = 0; i < n; i++)
        for (int j = 0; j < u->layers_per_block + (i < n - 1); j++) {
            snprintf(leaf, sizeof leaf, "%d", k++);
            tm_conv(g, "controlnet_down_blocks", leaf, ch[i], ch[i], 1);
        }
    tm_conv(g, "", "controlnet_mid_block", ch[n - 1], ch[n - 1], 1);
}

static is_error *config(const char *dir, const tm_unet_spec *s, const tm_controlnet_spec *c) {
    const int n = s->n_blocks;
    const char *down[TM_MAX_BLOCKS];
    for (int i = 0; i < n; i++) down[i] = s->cross_attn[i] ? "CrossAttnDownBlock2D" : "DownBlock2D";
    tm_json j = tm_json_new();
    tm_json_str(&j, "_class_name", "ControlNetModel");
    tm_json_str(&j, "_diffusers_version", "0.30.3");
    tm_json_str(&j, "act_fn", "silu");
    tm_json_str(&j, "addition_embed_type", "text_time");
    tm_json_num(&j, "addition_embed_type_num_heads", 64);
    tm_json_num(&j, "addition_time_embed_dim", s->addition_time_embed_dim);
    tm_json_ints(&j, "attention_head_dim", s->attention_head_dim, n);
    tm_json_ints(&j, "block_out_channels", s->block_out_channels, n);
    tm_json_null(&j, "class_embed_type");
    tm_json_num(&j, "conditioning_channels", c->conditioning_channels);
    tm_json_ints(&j, "conditioning_embedding_out_channels", c->cond_out_channels, c->n_cond_levels);
    tm_json_str(&j, "controlnet_conditioning_channel_order", "rgb");
    tm_json_num(&j, "cross_attention_dim", s->cross_attention_dim);
    tm_json_strs(&j, "down_block_types", down, n);
    tm_json_num(&j, "downsample_padding", 1);
    tm_json_null(&j, "encoder_hid_dim");
    tm_json_null(&j, "encoder_hid_dim_type");
    tm_json_bool(&j, "flip_sin_to_cos", 1);
    tm_json_num(&j, "freq_shift", 0);
    tm_json_bool(&j, "global_pool_conditions", 0);
    tm_json_num(&j, "in_channels", s->in_channels);
    tm_json_num(&j, "layers_per_block", s->layers_per_block);
    tm_json_num(&j, "mid_block_scale_factor", 1);
    tm_json_str(&j, "mid_block_type", "UNetMidBlock2DCrossAttn");
    tm_json_num(&j, "norm_eps", 1e-05);
    tm_json_num(&j, "norm_num_groups", s->norm_num_groups);
    tm_json_null(&j, "num_attention_heads");
    tm_json_null(&j, "num_class_embeds");
    tm_json_bool(&j, "only_cross_attention", 0);
    tm_json_num(&j, "projection_class_embeddings_input_dim", s->projection_class_embeddings_input_dim);
    tm_json_str(&j, "resnet_time_scale_shift", "default");
    tm_json_ints(&j, "transformer_layers_per_block", s->transformer_layers, n);
    tm_json_bool(&j, "upcast_attention", 0);
    tm_json_bool(&j, "use_linear_projection", 1);
    return tm_json_write(&j, dir, "config.json");
}

is_error *tm_write_controlnet(const char *dir, const tm_unet_spec *u, const tm_controlnet_spec *c, uint64_t seed) {
    if (c->n_cond_levels < 1 || c->n_cond_levels > TM_MAX_BLOCKS)
        return is_errorf(IS_E_INTERNAL, "tiny model: %d conditioning embedding levels", c->n_cond_levels);
    IS_TRY(config(dir, u, c));
    tm_weights g;
    tm_weights_init(&g, u->dtype, seed, "controlnet");
    tm_unet_trunk(&g, u);
    cond_embedding(&g, u, c);
    zero_convs(&g, u);
    return tm_weights_finish(&g, dir, "diffusion_pytorch_model.safetensors");
}
