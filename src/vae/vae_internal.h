/* AutoencoderKL (diffusers) internals shared by the vae/ files: weights as is_tensor views
 * into the mmap, the architecture read from config.json, and a reusable activation workspace. */
#ifndef IS_VAE_INTERNAL_H
#define IS_VAE_INTERNAL_H

#include <stdint.h>

#include "core/safetensors.h"
#include "instantstyle.h"
#include "kernels/dnn.h"

#define VAE_MAX_BLOCKS 8
#define VAE_MAX_LAYERS 8
#define VAE_GN_EPS 1e-6f /* every GroupNorm in diffusers' Encoder/Decoder uses eps 1e-6 */

typedef struct {
    const is_tensor *w, *b;
} vae_param; /* a conv/linear (weight, bias) or a norm (gamma, beta) */

/* ResnetBlock2D without time embedding: GN-SiLU-conv, GN-SiLU-conv, (1x1 shortcut) + residual. */
typedef struct {
    int64_t cin, cout, groups;
    vae_param norm1, conv1, norm2, conv2;
    vae_param shortcut; /* .w == NULL when cin == cout */
} vae_resnet;

/* Single-head spatial self-attention of the mid block (group norm, q/k/v, out, residual). */
typedef struct {
    int64_t groups;
    vae_param norm, q, k, v, out;
} vae_attention;

typedef struct {
    vae_resnet res0, res1;
    int has_attn;
    vae_attention attn;
} vae_mid;

typedef struct {
    int nres;
    vae_resnet res[VAE_MAX_LAYERS];
    vae_param resample; /* downsampler/upsampler conv; .w == NULL for the last block */
} vae_block;

typedef struct {
    vae_param conv_in, norm_out, conv_out;
    int nblocks;
    vae_block blocks[VAE_MAX_BLOCKS];
    vae_mid mid;
} vae_coder;

/* One activation arena used from both ends: the current activation sits at one end and a block
 * writes its result (or its scratch) at the other end, so the arena only needs the largest sum of
 * tensors alive at once (input + output of a conv, input + hidden of a resnet, input + the
 * attention's q/k/v). Plus per-channel GroupNorm scale/shift. Kept between calls, grown to the
 * largest size seen. */
typedef struct {
    float *base;
    int64_t cap;      /* floats */
    float *norm;      /* scale[norm_cap/2], shift[norm_cap/2] */
    int64_t norm_cap; /* floats */
    is_dnn *dnn;      /* the VAE's bf16 path, or NULL: f32 (owned by the is_vae, kept by vae_ws_free) */
} vae_workspace;

struct is_vae {
    is_st *st;
    char *dir;
    /* config */
    int64_t in_channels, out_channels, latent_channels, groups, layers_per_block;
    int nblocks;
    int64_t block_out[VAE_MAX_BLOCKS];
    int64_t sample_size;
    float scaling_factor;
    int has_latents_stats;
    float *latents_mean, *latents_std; /* [latent_channels] when has_latents_stats */
    int mid_attention;
    int use_quant_conv, use_post_quant_conv;
    /* weights */
    vae_param quant_conv, post_quant_conv; /* .w NULL when the config disables them */
    vae_coder enc, dec;
    vae_workspace ws;
};

/* A [C,H,W] activation living in one of the workspace buffers (or caller memory). */
typedef struct {
    float *data;
    int64_t C, H, W;
} vae_act;

/* ---- vae_workspace.c */
is_error *vae_ws_reserve(vae_workspace *ws, int64_t act_floats, int64_t norm_floats);
void vae_ws_free(vae_workspace *ws);
/* Where a tensor of n floats goes so that it does not overlap x: the arena end x is not at. */
float *vae_ws_opposite(const vae_workspace *ws, const float *x, int64_t n);
/* Arena floats of a decode of latents h x w / an encode of H x W, and GroupNorm scratch floats. */
int64_t vae_decode_needs(const is_vae *v, int64_t h, int64_t w);
int64_t vae_encode_needs(const is_vae *v, int64_t H, int64_t W);
int64_t vae_norm_needs(const is_vae *v);

/* ---- vae_blocks.c (all operate on x in place: x->data moves within the workspace arena) */
void vae_conv(vae_act *x, vae_workspace *ws, const vae_param *conv, int stride, int pad);
/* GroupNorm + SiLU of x (norm) folded into the following convolution, written to out. */
void vae_norm_silu_conv(const vae_act *x, vae_workspace *ws, const vae_param *norm, int64_t groups,
                        const vae_param *conv, float *out);
void vae_resnet_forward(const vae_resnet *r, vae_workspace *ws, vae_act *x);
void vae_mid_forward(const vae_mid *m, vae_workspace *ws, vae_act *x);
void vae_upsample_forward(const vae_param *conv, vae_workspace *ws, vae_act *x);
void vae_downsample_forward(const vae_param *conv, vae_workspace *ws, vae_act *x);
/* Report x to a hook as [C,H,W], batch item 0 (no-op when hook is NULL). */
void vae_emit(is_tensor_hook hook, void *user, const char *name, const vae_act *x);

/* ---- vae_decode.c */
/* post_quant_conv + decoder on z [C,h,w] (z is consumed: it must be at the workspace's base).
 * Writes [out_channels, 8h, 8w] to image. The workspace must hold vae_decode_needs(h, w). */
void vae_decode_z(is_vae *v, vae_act z, float *image, is_tensor_hook hook, void *user);

/* ---- vae_encode.c */
/* Encoder + quant_conv of image [in_channels,H,W] (caller memory): the moments [2*latent_channels,
 * H/scale, W/scale], before the logvar clamp, in the workspace, which must hold vae_encode_needs(H, W). */
vae_act vae_encode_moments(is_vae *v, const float *image, int64_t H, int64_t W, is_tensor_hook hook, void *user);

/* ---- vae_tiling.c */
typedef struct {
    int64_t tile_latent, tile_sample;
    int64_t overlap_latent, blend_px, row_limit_px;     /* decode: tiles of latents */
    int64_t overlap_px, blend_latent, row_limit_latent; /* encode: tiles of pixels */
} vae_tiling_plan;
vae_tiling_plan vae_tiling_params(const is_vae *v);
/* diffusers' tiled decode would apply at this latent size (z larger than one tile). */
int vae_tiling_applies(const is_vae *v, int64_t h, int64_t w);
/* diffusers' tiled encode would apply at this image size (larger than one tile of pixels). */
int vae_encode_tiling_applies(const is_vae *v, int64_t H, int64_t W);
/* A [C,H,W] tile and diffusers' blend_v / blend_h: b's first rows / columns blended IN PLACE with
 * a's last ones over min(extent, both sizes). */
typedef struct {
    float *data;
    int64_t H, W;
} vae_tile;
void vae_blend_v(const vae_tile *a, vae_tile *b, int64_t C, int64_t extent);
void vae_blend_h(const vae_tile *a, vae_tile *b, int64_t C, int64_t extent);
/* diffusers' AutoencoderKL.tiled_decode of z [C,h,w] (already scaled) into image [3,8h,8w]. */
is_error *vae_tiled_decode(is_vae *v, const float *z, int64_t h, int64_t w, float *image);

/* ---- vae_tiled_encode.c */
/* diffusers' AutoencoderKL.tiled_encode of image [in_channels,H,W]: the blended moments
 * [2*latent_channels, H/scale, W/scale] (before the logvar clamp) into moments. */
is_error *vae_tiled_encode(is_vae *v, const float *image, int64_t H, int64_t W, float *moments);

#endif
