/* The tiny IP-Adapter in h94's ip-adapter_sdxl.safetensors key layout:
 *   image_proj.proj [tokens * cross_dim, image_embed_dim] (+bias), image_proj.norm [cross_dim]
 *   ip_adapter.N.to_k_ip / to_v_ip [channels, cross_dim]
 * N numbers the UNet's attention processors in diffusers' order (down blocks, up blocks, mid
 * block; within a transformer block attn1 then attn2). Self-attention (attn1, even N) has no
 * adapter weights, so the files hold the odd numbers 1, 3, 5, ... */
#include <stdio.h>

#include "tiny/tiny_model.h"

typedef struct {
    tm_weights *g;
    int64_t cross_dim;
    int next_processor; /* index of the next attention processor */
} adapter_writer;

/* One Transformer2DModel of `layers` blocks with `channels` channels. */
static void transformer(adapter_writer *a, int64_t channels, int layers) {
    char p[64];
    for (int k = 0; k < layers; k++) {
        a->next_processor++; /* attn1: self-attention, left alone */
        snprintf(p, sizeof p, "ip_adapter.%d", a->next_processor++);
        tm_linear(a->g, p, "to_k_ip", channels, a->cross_dim, 0);
        tm_linear(a->g, p, "to_v_ip", channels, a->cross_dim, 0);
    }
}

static void weights(tm_weights *g, const tm_spec *spec) {
    const tm_unet_spec *u = &spec->unet;
    const int n = u->n_blocks, lpb = u->layers_per_block;
    const int64_t cross = u->cross_attention_dim;
    tm_linear(g, "image_proj", "proj", spec->ip_tokens * cross, spec->image_encoder.projection_dim, 1);
    tm_norm(g, "image_proj", "norm", cross);

    adapter_writer a = {g, cross, 0};
    for (int i = 0; i < n; i++)
        for (int j = 0; u->cross_attn[i] && j < lpb; j++)
            transformer(&a, u->block_out_channels[i], u->transformer_layers[i]);
    for (int i = 0; i < n; i++) {
        const int r = n - 1 - i;
        for (int j = 0; u->cross_attn[r] && j <= lpb; j++)
            transformer(&a, u->block_out_channels[r], u->transformer_layers[r]);
    }
    transformer(&a, u->block_out_channels[n - 1], u->transformer_layers[n - 1]);
}

is_error *tm_write_ip_adapter(const char *dir, const tm_spec *spec, uint64_t seed) {
    tm_weights g;
    tm_weights_init(&g, spec->ip_dtype, seed, "ip-adapter");
    weights(&g, spec);
    return tm_weights_finish(&g, dir, "ip-adapter_sdxl.safetensors");
}
