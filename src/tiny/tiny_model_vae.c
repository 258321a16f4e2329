/* The tiny model's AutoencoderKL: config.json and F32 weights named as diffusers names them. */
#include <stdio.h>

#include "tiny/tiny_model.h"

/* ResnetBlock2D without time embedding. */
static void resnet(tm_weights *g, const char *p, int64_t in, int64_t out) {
    tm_norm(g, p, "norm1", in);
    tm_conv(g, p, "conv1", out, in, 3);
    tm_norm(g, p, "norm2", out);
    tm_conv(g, p, "conv2", out, out, 3);
    if (in != out) tm_conv(g, p, "conv_shortcut", out, in, 1);
}

/* UNetMidBlock2D: resnet, single-head self-attention with biases, resnet. */
static void mid_block(tm_weights *g, const char *coder, int64_t ch) {
    char p[256];
    snprintf(p, sizeof p, "%s.mid_block.resnets.0", coder);
    resnet(g, p, ch, ch);
    snprintf(p, sizeof p, "%s.mid_block.attentions.0", coder);
    tm_norm(g, p, "group_norm", ch);
    tm_linear(g, p, "to_q", ch, ch, 1);
    tm_linear(g, p, "to_k", ch, ch, 1);
    tm_linear(g, p, "to_v", ch, ch, 1);
    tm_linear(g, p, "to_out.0", ch, ch, 1);
    snprintf(p, sizeof p, "%s.mid_block.resnets.1", coder);
    resnet(g, p, ch, ch);
}

static void weights(tm_weights *g, const tm_vae_spec *s) {
    const int n = s->n_blocks, lpb = s->layers_per_block;
    const int *ch = s->block_out_channels;
    const int64_t latent = s->latent_channels, top = ch[n - 1];
    char p[256];

    tm_conv(g, "encoder", "conv_in", ch[0], s->in_channels, 3);
    for (int i = 0; i < n; i++) { /* DownEncoderBlock2D: resnets, downsampler except at the bottom */
        for (int j = 0; j < lpb; j++) {
            snprintf(p, sizeof p, "encoder.down_blocks.%d.resnets.%d", i, j);
            resnet(g, p, j == 0 ? ch[i > 0 ? i - 1 : 0] : ch[i], ch[i]);
        }
        snprintf(p, sizeof p, "encoder.down_blocks.%d.downsamplers.0", i);
        if (i < n - 1) tm_conv(g, p, "conv", ch[i], ch[i], 3);
    }
    mid_block(g, "encoder", top);
    tm_norm(g, "encoder", "conv_norm_out", top);
    tm_conv(g, "encoder", "conv_out", 2 * latent, top, 3); /* mean and log-variance */
    tm_conv(g, "", "quant_conv", 2 * latent, 2 * latent, 1);

    tm_conv(g, "", "post_quant_conv", latent, latent, 1);
    tm_conv(g, "decoder", "conv_in", top, latent, 3);
    mid_block(g, "decoder", top);
    for (int i = 0; i < n; i++) { /* UpDecoderBlock2D: one more resnet, upsampler except at the top */
        const int r = n - 1 - i;
        const int64_t out = ch[r], prev = ch[i > 0 ? r + 1 : r];
        for (int j = 0; j <= lpb; j++) {
            snprintf(p, sizeof p, "decoder.up_blocks.%d.resnets.%d", i, j);
            resnet(g, p, j == 0 ? prev : out, out);
        }
        snprintf(p, sizeof p, "decoder.up_blocks.%d.upsamplers.0", i);
        if (i < n - 1) tm_conv(g, p, "conv", out, out, 3);
    }
    tm_norm(g, "decoder", "conv_norm_out", ch[0]);
    tm_conv(g, "decoder", "conv_out", s->out_channels, ch[0], 3);
}

static is_error *config(const char *dir, const tm_vae_spec *s) {
    const char *down[TM_MAX_BLOCKS], *up[TM_MAX_BLOCKS];
    for (int i = 0; i < s->n_blocks; i++) {
        down[i] = "DownEncoderBlock2D";
        up[i] = "UpDecoderBlock2D";
    }
    tm_json j = tm_json_new();
    tm_json_str(&j, "_class_name", "AutoencoderKL");
    tm_json_str(&j, "_diffusers_version", "0.30.3");
    tm_json_str(&j, "act_fn", "silu");
    tm_json_ints(&j, "block_out_channels", s->block_out_channels, s->n_blocks);
    tm_json_strs(&j, "down_block_types", down, s->n_blocks);
    tm_json_bool(&j, "force_upcast", 1);
    tm_json_num(&j, "in_channels", s->in_channels);
    tm_json_num(&j, "latent_channels", s->latent_channels);
    tm_json_null(&j, "latents_mean");
    tm_json_null(&j, "latents_std");
    tm_json_num(&j, "layers_per_block", s->layers_per_block);
    tm_json_bool(&j, "mid_block_add_attention", 1);
    tm_json_num(&j, "norm_num_groups", s->norm_num_groups);
    tm_json_num(&j, "out_channels", s->out_channels);
    tm_json_num(&j, "sample_size", s->sample_size);
    tm_json_num(&j, "scaling_factor", s->scaling_factor);
    tm_json_null(&j, "shift_factor");
    tm_json_strs(&j, "up_block_types", up, s->n_blocks);
    tm_json_bool(&j, "use_post_quant_conv", 1);
    tm_json_bool(&j, "use_quant_conv", 1);
    return tm_json_write(&j, dir, "config.json");
}

is_error *tm_write_vae(const char *dir, const tm_vae_spec *s, uint64_t seed) {
    IS_TRY(config(dir, s));
    tm_weights g;
    tm_weights_init(&g, s->dtype, seed, "vae");
    weights(&g, s);
    return tm_weights_finish(&g, dir, "diffusion_pytorch_model.safetensors");
}
