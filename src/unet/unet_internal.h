/* UNet2DConditionModel internals shared by the unet/ files: parsed config, weight views
 * (is_tensor pointers into the mmap), the IP-Adapter, per-layer IP scales and the activation workspace.
 * The ControlNet (src/controlnet/) is an is_unet loaded down-path-only and uses the same functions. */
#ifndef IS_UNET_INTERNAL_H
#define IS_UNET_INTERNAL_H

#include "core/config.h"
#include "core/safetensors.h"
#include "instantstyle.h"
#include "kernels/dnn.h"
#include "unet/block_scales.h"

#define UNET_MAX_BLOCKS 8
#define UNET_MAX_SKIPS 160 /* 1 + UNET_MAX_BLOCKS * (16 layers + downsampler) = 137 */

/* ---- config.json, resolved into per-block numbers (diffusers' constructor logic). */
typedef struct {
    int down_only;                               /* ControlNetModel: conv_in, embeddings, down blocks, mid block */
    int in_channels, out_channels;               /* out_channels 0 when down_only */
    int n_blocks;                                /* len(block_out_channels) */
    int block_out[UNET_MAX_BLOCKS];
    int down_cross[UNET_MAX_BLOCKS];             /* down block i is CrossAttnDownBlock2D */
    int up_cross[UNET_MAX_BLOCKS];               /* up block i is CrossAttnUpBlock2D */
    int layers_per_block[UNET_MAX_BLOCKS];       /* per down block; up block i has reversed[i] + 1 */
    int transformer_layers[UNET_MAX_BLOCKS];     /* per down block; up blocks use the reversed list */
    int heads[UNET_MAX_BLOCKS];                  /* num_attention_heads or (quirk) attention_head_dim */
    int cross_attention_dim;
    int use_linear_projection;
    int norm_groups;
    float norm_eps;
    int flip_sin_to_cos;
    float freq_shift;
    int time_embed_dim;                          /* time_embedding_dim or 4 * block_out[0] */
    int has_text_time;                           /* addition_embed_type == "text_time" */
    int add_time_dim;                            /* addition_time_embed_dim */
    int add_in_dim;                              /* projection_class_embeddings_input_dim */
    int conv_in_kernel, conv_out_kernel;
    int downsample_padding;
    float mid_block_scale;                       /* the mid block's resnets divide by it */
    int center_input_sample;
    int has_mid;                                 /* mid_block_type == UNetMidBlock2DCrossAttn */
} unet_config;

is_error *unet_config_parse(const is_config *cfg, unet_config *c);
/* down_only: a ControlNetModel config (its keys, no up blocks, no conv_out). */
is_error *unet_config_parse_as(const is_config *cfg, int down_only, unet_config *c);

/* ---- weights (views into the mmap; b may be NULL). Conv weights are [Cout, Cin, kh, kw]. */
typedef struct { const is_tensor *w, *b; } unet_linear;
typedef struct { const is_tensor *w, *b; } unet_norm;

typedef struct {
    int cin, cout;
    float out_scale;             /* output_scale_factor: 1, mid_block_scale_factor in the mid block */
    unet_norm norm1, norm2;
    unet_linear conv1, conv2, temb_proj;
    unet_linear shortcut;        /* 1x1 conv, w NULL when cin == cout */
} unet_resnet;

typedef struct {
    char *name;                  /* "down_blocks.1.attentions.0.transformer_blocks.0.attn2.processor" */
    int heads, dim_head;
    unet_linear q, k, v, out;    /* to_q/to_k/to_v (no bias), to_out.0 */
    const is_tensor *k_ip, *v_ip; /* IP-Adapter to_k_ip / to_v_ip (attn2 with an adapter), else NULL */
    float ip_scale;
    int module;                  /* index into is_unet.modules (attn2 only) */
    is_tensor qkv;               /* bf16 self-attention: to_q/to_k/to_v stacked as one packed weight (no data) */
} unet_attention;

typedef struct {
    unet_norm norm1, norm2, norm3;
    unet_attention attn1, attn2;
    unet_linear ff_in, ff_out;   /* ff.net.0.proj (GEGLU, 2*ff_inner outputs), ff.net.2 */
    int ff_inner;
} unet_tblock;

typedef struct {
    int channels, inner, heads, dim_head, depth;
    unet_norm norm;              /* GroupNorm(norm_groups, eps 1e-6) */
    unet_linear proj_in, proj_out; /* Linear, or 1x1 conv (same math on tokens) */
    unet_tblock *blocks;
} unet_transformer;

typedef struct {
    int n_resnets, n_attn;       /* n_attn = 0 (DownBlock2D/UpBlock2D) or n_resnets (mid: n_resnets-1) */
    unet_resnet *resnets;
    unet_transformer *attn;
    int has_sampler;             /* downsamplers.0 / upsamplers.0 */
    unet_linear sampler;
    int cout;
} unet_block;

typedef struct {
    is_st *st;
    const is_tensor *proj_w, *proj_b, *norm_w, *norm_b;
    int embed_dim, num_tokens;
} unet_ip_adapter;

/* ---- activation plan: buffer sizes and skip-connection slots for one latent size, found by walking the
 * architecture the forward walks (unet_workspace.c). Skip slot k of item b lives at
 * ws->skips + batch * slot[k].off + b * c*h*w, so the slots are one after the other, each [batch, c, h, w]:
 * the layout of is_unet_input.down_residuals. */
typedef struct {
    int64_t c, h, w;
    size_t off;                  /* per-item offset */
} unet_skip_slot;

typedef struct {
    size_t map, skips, tok, qkv, ff, inner, cout;
    int n_skips;
    unet_skip_slot slot[UNET_MAX_SKIPS];
} unet_plan;

void unet_make_plan(const is_unet *u, int64_t H, int64_t W, unet_plan *p);

/* ---- activation workspace, sized for one (batch, height, width, seq_len, ip tokens). */
typedef struct {
    int batch, height, width, seq_len, ip_tokens;
    int valid;
    size_t map;                  /* largest per-item activation map C*H*W (incl. concat, padding) */
    size_t tok, qkv, ff, ctx, ipkv;
    float *a, *b;                /* ping-pong hidden maps [batch, map] */
    float *skips;                /* all skip connections (down path outputs) */
    float *tmp, *tmp2;           /* per-item scratch maps [map] */
    float *t_x, *t_n;            /* tokens [batch*HW, max(C, inner)] */
    float *q, *k, *v, *o;        /* [batch*HW, inner] */
    float *f, *g;                /* GEGLU [batch*HW, 2*ff], [batch*HW, ff] */
    float *ck, *cv;              /* text keys/values [batch*seq, inner] */
    float *ik, *iv;              /* image keys/values [batch*ip_tokens, inner] */
    float *temb, *temb_act, *temb_proj, *emb_tmp; /* small embedding vectors */
    unet_plan plan;              /* of the current call (set by unet_workspace_ensure) */
} unet_workspace;

struct is_unet {
    char *dir;
    is_st *st;
    unet_config cfg;
    unet_linear conv_in, conv_out, time_lin1, time_lin2, add_lin1, add_lin2;
    unet_norm norm_out;
    unet_block down[UNET_MAX_BLOCKS], up[UNET_MAX_BLOCKS], mid;
    int n_xattn;
    unet_attention **xattn;      /* attn2 layers in diffusers attn_processors order (down, up, mid) */
    int n_modules;
    is_attn_module *modules;     /* attention modules (Transformer2DModel), same order */
    unet_ip_adapter ip;
    int has_ip;
    unet_workspace ws;
    is_dnn *dnn;                 /* bf16 path with packed weights, or NULL: f32 */
    struct lora_state *lora;     /* the LoRAs merged into st or the packs, or NULL (src/lora) */
};

/* unet_model.c: config.json + weights of dir, without wrapping errors (the caller names the model). */
is_error *unet_load_dir(const char *dir, int down_only, is_unet **out);

/* unet_load.c */
is_error *unet_load_weights(is_unet *u);
void unet_free_weights(is_unet *u);
/* prefix.weight [cout, cin, k, k] and prefix.bias [cout] of st, float dtypes. */
is_error *unet_load_conv(const is_st *st, unet_linear *l, const char *prefix, int64_t cout, int64_t cin, int64_t k);

/* unet_embed.c: sinusoidal embedding of n values (diffusers get_timestep_embedding, float32 argument). */
void unet_timestep_embedding(float *out, const float *t, int n, int dim, int flip_sin_to_cos, float freq_shift);
/* temb [batch, time_embed_dim] = time_embedding(t_emb) + add_embedding(concat(text_embeds, time_ids_emb)). */
void unet_time_embed(is_unet *u, const is_unet_input *in, float *temb);

/* unet_blocks.c (one batch item; y must not alias x). temb_proj = time_emb_proj(silu(temb)) of this item. */
void unet_resnet_forward(const is_unet *u, const unet_resnet *r, const float *x, float *y, int64_t H, int64_t W,
                         const float *temb_proj, float *tmp);
void unet_downsample(const is_unet *u, const unet_linear *conv, int64_t C, const float *x, float *y, int64_t H,
                     int64_t W, float *tmp);
int64_t unet_down_size(const is_unet *u, int64_t n);
void unet_upsample(const is_unet *u, const unet_linear *conv, int64_t C, const float *x, float *y, int64_t H, int64_t W, int64_t Ho,
                   int64_t Wo, float *tmp);

/* unet_transformer.c: x [batch, C, H*W] updated in place (all batch items together). */
void unet_transformer_forward(is_unet *u, const unet_transformer *t, float *x, int batch, int64_t HW,
                              const is_unet_input *in);

/* bf16: pack each self-attention's to_q/to_k/to_v, stacked into one weight when they have no biases (one
 * product and one rounding of the input instead of three). The rest of the UNet is packed by name:
 * unet_pack_individually says which tensors. */
is_error *unet_pack_fused_qkv(is_unet *u);
int unet_pack_individually(const char *name);

/* unet_workspace.c: plan the call and (re)allocate the workspace when its sizes changed. */
is_error *unet_workspace_ensure(is_unet *u, const is_unet_input *in);
void unet_workspace_free(unet_workspace *ws);

/* unet_path.c: the stages the UNet and the ControlNet share, on all batch items, in u->ws. */
is_error *unet_check_input(const is_unet *u, const is_unet_input *in, const char *fn);
void unet_hook_map(const is_unet_input *in, const char *name, const float *x, int64_t C, int64_t H, int64_t W);
/* Skip slot k of the current call: [batch, c, h, w]. */
float *unet_skip(const is_unet *u, int k);
/* ws->temb = time + add embeddings, ws->temb_act = silu(temb) (what every resnet takes). */
void unet_embed(is_unet *u, const is_unet_input *in);
/* conv_in(sample) -> skip slot 0 (hook "conv_in"). */
void unet_conv_in(is_unet *u, const is_unet_input *in);
/* Down blocks from skip slot 0 on: every resnet/attention and downsampler output is the next skip slot
 * (hooks "down_blocks.<i>"). Returns the last one, *H x *W updated to its size. */
float *unet_down_path(is_unet *u, const is_unet_input *in, int64_t *H, int64_t *W);
/* Mid block on x [batch, C_last, H, W] (not modified) -> ws->b (hook "mid_block"). */
float *unet_mid_block(is_unet *u, const is_unet_input *in, const float *x, int64_t H, int64_t W);

/* ip_adapter.c */
void unet_ip_adapter_free(is_unet *u);
/* bf16: the adapter's image projection is packed with the adapter; each layer's to_k_ip/to_v_ip only
 * while its IP scale is non-zero (InstantStyle's "style" reads 2 of 70 layers). Called whenever the
 * adapter, the precision or the scales change. */
int unet_ip_is_projection(const char *name);
is_error *unet_ip_pack_layers(is_unet *u);

#endif
