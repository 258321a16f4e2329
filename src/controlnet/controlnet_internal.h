/* ControlNetModel internals: an is_unet loaded down-path-only (conv_in, embeddings, down blocks, mid block:
 * the UNet's own loaders and forward stages, the ControlNet's weights from the same mmap) plus the
 * conditioning embedding of the control image and the 1x1 "zero" convolutions of the residuals. */
#ifndef IS_CONTROLNET_INTERNAL_H
#define IS_CONTROLNET_INTERNAL_H

#include "unet/unet_internal.h"

/* conditioning_embedding_out_channels: 4 entries = 3 stride-2 convolutions, the control image at 8x the latent. */
#define CN_EMBED_LEVELS 4

struct is_controlnet {
    is_unet *net;                /* unet_config.down_only; its st also holds the tensors below */
    int cond_channels;           /* conditioning_channels */
    int embed[CN_EMBED_LEVELS];  /* conditioning_embedding_out_channels */
    unet_linear cond_in, cond_out;                 /* controlnet_cond_embedding.conv_in / conv_out */
    unet_linear cond_blocks[2 * (CN_EMBED_LEVELS - 1)]; /* .blocks.<k>: 3x3, every odd one stride 2 */
    int n_down;                  /* down residuals = the UNet's skip connections */
    unet_linear zero_down[UNET_MAX_SKIPS];         /* controlnet_down_blocks.<k> */
    unet_linear zero_mid;                          /* controlnet_mid_block */
    /* conditioning-embedding maps of one batch item, sized for cond_h x cond_w latents */
    float *cond_a, *cond_b;
    int cond_h, cond_w;
};

#endif
