/* The tiny model's UNet2DConditionModel: config.json and weights named exactly as diffusers names
 * them, every shape derived from the spec the way diffusers builds its blocks. */
#include <stdio.h>

#include "tiny/tiny_model.h"

/* ResnetBlock2D; temb = 0 for none. conv_shortcut only when the channel count changes. */
static void resnet(tm_weights *g, const char *p, int64_t in, int64_t out, int64_t temb) {
    tm_norm(g, p, "norm1", in);
    tm_conv(g, p, "conv1", out, in, 3);
    if (temb) tm_linear(g, p, "time_emb_proj", out, temb, 1);
    tm_norm(g, p, "norm2", out);
    tm_conv(g, p, "conv2", out, out, 3);
    if (in != out) tm_conv(g, p, "conv_shortcut", out, in, 1);
}

/* Attention inside a BasicTransformerBlock: q/k/v without bias, to_out.0 with bias. */
static void attention(tm_weights *g, const char *p, int64_t dim, int64_t kv_dim) {
    tm_linear(g, p, "to_q", dim, dim, 0);
    tm_linear(g, p, "to_k", dim, kv_dim, 0);
    tm_linear(g, p, "to_v", dim, kv_dim, 0);
    tm_linear(g, p, "to_out.0", dim, dim, 1);
}

/* Transformer2DModel with use_linear_projection: norm, proj_in, blocks, proj_out.
 * Each BasicTransformerBlock: self-attention, cross-attention, GEGLU feed-forward (inner 4*dim). */
static void transformer(tm_weights *g, const char *p, int64_t dim, int layers, int64_t cross_dim) {
    char b[512], m[600];
    tm_norm(g, p, "norm", dim);
    tm_linear(g, p, "proj_in", dim, dim, 1);
    for (int k = 0; k < layers; k++) {
        snprintf(b, sizeof b, "%s.transformer_blocks.%d", p, k);
        tm_norm(g, b, "norm1", dim);
        snprintf(m, sizeof m, "%s.attn1", b);
        attention(g, m, dim, dim);
        tm_norm(g, b, "norm2", dim);
        snprintf(m, sizeof m, "%s.attn2", b);
        attention(g, m, dim, cross_dim);
        tm_norm(g, b, "norm3", dim);
        tm_linear(g, b, "ff.net.0.proj", 2 * 4 * dim, dim, 1);
        tm_linear(g, b, "ff.net.2", dim, 4 * dim, 1);
    }
    tm_linear(g, p, "proj_out", dim, dim, 1);
}

/* Shared with the ControlNet, which has these modules under the same names. They are drawn first, in
 * the UNet's original order, so the UNet's file is the same as before the split. */
void tm_unet_trunk(tm_weights *g, const tm_unet_spec *s) {
    const int n = s->n_blocks, lpb = s->layers_per_block;
    const int *ch = s->block_out_channels;
    const int64_t temb = 4 * (int64_t)ch[0], cross = s->cross_attention_dim;
    char p[512];

    tm_conv(g, "", "conv_in", ch[0], s->in_channels, 3);
    tm_linear(g, "time_embedding", "linear_1", temb, ch[0], 1);
    tm_linear(g, "time_embedding", "linear_2", temb, temb, 1);
    tm_linear(g, "add_embedding", "linear_1", temb, s->projection_class_embeddings_input_dim, 1);
    tm_linear(g, "add_embedding", "linear_2", temb, temb, 1);

    for (int i = 0; i < n; i++) { /* down: resnets (+ attentions), downsampler except at the bottom */
        for (int j = 0; j < lpb; j++) {
            snprintf(p, sizeof p, "down_blocks.%d.resnets.%d", i, j);
            resnet(g, p, j == 0 ? ch[i > 0 ? i - 1 : 0] : ch[i], ch[i], temb);
            if (!s->cross_attn[i]) continue;
            snprintf(p, sizeof p, "down_blocks.%d.attentions.%d", i, j);
            transformer(g, p, ch[i], s->transformer_layers[i], cross);
        }
        snprintf(p, sizeof p, "down_blocks.%d.downsamplers.0", i);
        if (i < n - 1) tm_conv(g, p, "conv", ch[i], ch[i], 3);
    }

    resnet(g, "mid_block.resnets.0", ch[n - 1], ch[n - 1], temb);
    transformer(g, "mid_block.attentions.0", ch[n - 1], s->transformer_layers[n - 1], cross);
    resnet(g, "mid_block.resnets.1", ch[n - 1], ch[n - 1], temb);
}

/* The trunk, then the up path and the output. */
static void weights(tm_weights *g, const tm_unet_spec *s) {
    const int n = s->n_blocks, lpb = s->layers_per_block;
    const int *ch = s->block_out_channels;
    const int64_t temb = 4 * (int64_t)ch[0], cross = s->cross_attention_dim;
    char p[512];

    tm_unet_trunk(g, s);

    for (int i = 0; i < n; i++) { /* up: mirror of down, one more resnet each, fed by the skips */
        const int r = n - 1 - i; /* the down block this one mirrors */
        const int64_t out = ch[r], prev = ch[i > 0 ? r + 1 : r], skip_in = ch[r > 0 ? r - 1 : 0];
        for (int j = 0; j <= lpb; j++) {
            const int64_t res_in = j == 0 ? prev : out, skip = j == lpb ? skip_in : out;
            snprintf(p, sizeof p, "up_blocks.%d.resnets.%d", i, j);
            resnet(g, p, res_in + skip, out, temb);
            if (!s->cross_attn[r]) continue;
            snprintf(p, sizeof p, "up_blocks.%d.attentions.%d", i, j);
            transformer(g, p, out, s->transformer_layers[r], cross);
        }
        snprintf(p, sizeof p, "up_blocks.%d.upsamplers.0", i);
        if (i < n - 1) tm_conv(g, p, "conv", out, out, 3);
    }

    tm_norm(g, "", "conv_norm_out", ch[0]);
    tm_conv(g, "", "conv_out", s->out_channels, ch[0], 3);
}

static is_error *config(const char *dir, const tm_unet_spec *s) {
    const int n = s->n_blocks;
    const char *down[TM_MAX_BLOCKS], *up[TM_MAX_BLOCKS];
    for (int i = 0; i < n; i++) {
        down[i] = s->cross_attn[i] ? "CrossAttnDownBlock2D" : "DownBlock2D";
        up[i] = s->cross_attn[n - 1 - i] ? "CrossAttnUpBlock2D" : "UpBlock2D";
    }
    tm_json j = tm_json_new();
    tm_json_str(&j, "_class_name", "UNet2DConditionModel");
    tm_json_str(&j, "_diffusers_version", "0.30.3");
    tm_json_str(&j, "act_fn", "silu");
    tm_json_str(&j, "addition_embed_type", "text_time");
    tm_json_num(&j, "addition_embed_type_num_heads", 64);
    tm_json_num(&j, "addition_time_embed_dim", s->addition_time_embed_dim);
    tm_json_ints(&j, "attention_head_dim", s->attention_head_dim, n);
    tm_json_str(&j, "attention_type", "default");
    tm_json_ints(&j, "block_out_channels", s->block_out_channels, n);
    tm_json_bool(&j, "center_input_sample", 0);
    tm_json_null(&j, "class_embed_type");
    tm_json_bool(&j, "class_embeddings_concat", 0);
    tm_json_num(&j, "conv_in_kernel", 3);
    tm_json_num(&j, "conv_out_kernel", 3);
    tm_json_num(&j, "cross_attention_dim", s->cross_attention_dim);
    tm_json_null(&j, "cross_attention_norm");
    tm_json_strs(&j, "down_block_types", down, n);
    tm_json_num(&j, "downsample_padding", 1);
    tm_json_num(&j, "dropout", 0.0);
    tm_json_bool(&j, "dual_cross_attention", 0);
    tm_json_null(&j, "encoder_hid_dim");
    tm_json_null(&j, "encoder_hid_dim_type");
    tm_json_bool(&j, "flip_sin_to_cos", 1);
    tm_json_num(&j, "freq_shift", 0);
    tm_json_num(&j, "in_channels", s->in_channels);
    tm_json_num(&j, "layers_per_block", s->layers_per_block);
    tm_json_null(&j, "mid_block_only_cross_attention");
    tm_json_num(&j, "mid_block_scale_factor", 1);
    tm_json_str(&j, "mid_block_type", "UNetMidBlock2DCrossAttn");
    tm_json_num(&j, "norm_eps", 1e-05);
    tm_json_num(&j, "norm_num_groups", s->norm_num_groups);
    tm_json_null(&j, "num_attention_heads");
    tm_json_null(&j, "num_class_embeds");
    tm_json_bool(&j, "only_cross_attention", 0);
    tm_json_num(&j, "out_channels", s->out_channels);
    tm_json_num(&j, "projection_class_embeddings_input_dim", s->projection_class_embeddings_input_dim);
    tm_json_num(&j, "resnet_out_scale_factor", 1.0);
    tm_json_bool(&j, "resnet_skip_time_act", 0);
    tm_json_str(&j, "resnet_time_scale_shift", "default");
    tm_json_null(&j, "reverse_transformer_layers_per_block");
    tm_json_num(&j, "sample_size", s->sample_size);
    tm_json_null(&j, "time_cond_proj_dim");
    tm_json_null(&j, "time_embedding_act_fn");
    tm_json_null(&j, "time_embedding_dim");
    tm_json_str(&j, "time_embedding_type", "positional");
    tm_json_null(&j, "timestep_post_act");
    tm_json_ints(&j, "transformer_layers_per_block", s->transformer_layers, n);
    tm_json_strs(&j, "up_block_types", up, n);
    tm_json_bool(&j, "upcast_attention", 0);
    tm_json_bool(&j, "use_linear_projection", 1);
    return tm_json_write(&j, dir, "config.json");
}

is_error *tm_write_unet(const char *dir, const tm_unet_spec *s, uint64_t seed) {
    IS_TRY(config(dir, s));
    tm_weights g;
    tm_weights_init(&g, s->dtype, seed, "unet");
    weights(&g, s);
    return tm_weights_finish(&g, dir, "diffusion_pytorch_model.safetensors");
}
