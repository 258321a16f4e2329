/* IP-Adapter scale specs (InstantStyle block targeting) -> one scale per attention module
 * (Transformer2DModel, e.g. "up_blocks.0.attentions.1"); every transformer block inside a module
 * gets its module's value, as diffusers' set_ip_adapter_scale applies it. Syntax: docs/STYLE_BLOCKS.md. */
#ifndef IS_UNET_BLOCK_SCALES_H
#define IS_UNET_BLOCK_SCALES_H

#include "core/error.h"

typedef struct {
    char *name;        /* "down_blocks.2.attentions.1", "mid_block.attentions.0" */
    char kind;         /* 'd' down, 'm' mid, 'u' up */
    int block, index;  /* block number among down_blocks/up_blocks (0 for mid); attention number in the block */
    int n_in_block;    /* attention modules in that block */
    int comfy_index;   /* position in forward order (down, mid, up): ComfyUI IPAdapter layer_weights index */
} is_attn_module;

/* Parse spec for the n modules m[] (diffusers attn_processors order: down, up, mid) into out[n].
 * spec: NULL or "all" | "none" | "style" | "layout" | "style+layout" | a number | a diffusers dict as JSON
 * or a Python literal ({'up': {'block_0': (0, 1, 0,)}}) | ComfyUI "6:1,3:0.5" | short form
 * "down.block_2=0,1;up.block_0=0,1,0". Modules not named get 0. Every value must be finite and within
 * [0, 10]. Errors (IS_E_ARGUMENT, out all 0) give the byte offset in spec and quote at most 40 bytes of it. */
is_error *is_block_scales_parse(const char *spec, const is_attn_module *m, int n, float *out);

#endif
