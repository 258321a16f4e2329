/* ControlNetModel from a diffusers folder: its config (the UNet parser in down-path-only mode plus the
 * ControlNet's own keys), the UNet's loaders for the shared part and the conditioning embedding and zero
 * convolutions from the same safetensors mmap. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "controlnet/controlnet_internal.h"
#include "kernels/kernels.h"

/* The keys ControlNetModel adds to the UNet's; what this engine does not implement is refused by name. */
static is_error *parse_own_keys(is_controlnet *c, const is_config *cfg) {
    int64_t v = 0;
    IS_TRY(is_config_int_or(cfg, "conditioning_channels", 3, &v));
    if (v < 1 || v > 64)
        return is_errorf(IS_E_CONFIG, "%s: field 'conditioning_channels' = %lld is out of range (1..64)", cfg->path,
                         (long long)v);
    c->cond_channels = (int)v;

    int pool = 0;
    IS_TRY(is_config_bool_or(cfg, "global_pool_conditions", 0, &pool));
    if (pool)
        return is_errorf(IS_E_UNSUPPORTED, "%s: field 'global_pool_conditions' = true is not supported (residuals "
                         "averaged over the image, e.g. shuffle ControlNets)", cfg->path);
    const char *order = NULL;
    IS_TRY(is_config_string_or(cfg, "controlnet_conditioning_channel_order", "rgb", &order));
    if (strcmp(order, "rgb"))
        return is_errorf(IS_E_UNSUPPORTED, "%s: field 'controlnet_conditioning_channel_order' = \"%s\" is not "
                         "supported (supported: rgb)", cfg->path, order);

    int64_t e[UNET_MAX_BLOCKS];
    int n = CN_EMBED_LEVELS;
    static const int64_t def[CN_EMBED_LEVELS] = {16, 32, 96, 256}; /* diffusers' default */
    if (is_config_has(cfg, "conditioning_embedding_out_channels"))
        IS_TRY(is_config_int_list(cfg, "conditioning_embedding_out_channels", e, UNET_MAX_BLOCKS, -1, 0, &n));
    else
        memcpy(e, def, sizeof def);
    if (n != CN_EMBED_LEVELS)
        return is_errorf(IS_E_UNSUPPORTED, "%s: field 'conditioning_embedding_out_channels' has %d entries: supported "
                         "are %d (3 stride-2 convolutions from the image to the 1/8 latent size)", cfg->path, n,
                         CN_EMBED_LEVELS);
    for (int i = 0; i < n; i++) {
        if (e[i] < 1 || e[i] > 100000)
            return is_errorf(IS_E_CONFIG, "%s: field 'conditioning_embedding_out_channels'[%d] = %lld must be positive",
                             cfg->path, i, (long long)e[i]);
        c->embed[i] = (int)e[i];
    }
    return NULL;
}

static is_error *load_weights(is_controlnet *c) {
    const is_unet *u = c->net;
    const is_st *st = u->st;
    char p[96];
    IS_TRY(unet_load_conv(st, &c->cond_in, "controlnet_cond_embedding.conv_in", c->embed[0], c->cond_channels, 3));
    for (int i = 0; i + 1 < CN_EMBED_LEVELS; i++) {
        snprintf(p, sizeof p, "controlnet_cond_embedding.blocks.%d", 2 * i);
        IS_TRY(unet_load_conv(st, &c->cond_blocks[2 * i], p, c->embed[i], c->embed[i], 3));
        snprintf(p, sizeof p, "controlnet_cond_embedding.blocks.%d", 2 * i + 1);
        IS_TRY(unet_load_conv(st, &c->cond_blocks[2 * i + 1], p, c->embed[i + 1], c->embed[i], 3));
    }
    IS_TRY(unet_load_conv(st, &c->cond_out, "controlnet_cond_embedding.conv_out", u->cfg.block_out[0],
                          c->embed[CN_EMBED_LEVELS - 1], 3));

    /* One zero convolution per skip connection, channels as the down path produces them. */
    unet_plan plan;
    unet_make_plan(u, 8, 8, &plan);
    c->n_down = plan.n_skips;
    for (int k = 0; k < c->n_down; k++) {
        snprintf(p, sizeof p, "controlnet_down_blocks.%d", k);
        IS_TRY(unet_load_conv(st, &c->zero_down[k], p, plan.slot[k].c, plan.slot[k].c, 1));
    }
    const int64_t C = u->mid.cout;
    return unet_load_conv(st, &c->zero_mid, "controlnet_mid_block", C, C, 1);
}

static is_error *load(is_controlnet *c, const char *dir) {
    is_config cfg = {0};
    IS_TRY(is_config_load_in(dir, "config.json", &cfg));
    is_error *err = parse_own_keys(c, &cfg);
    is_config_free(&cfg);
    IS_TRY(err);
    IS_TRY(unet_load_dir(dir, 1, &c->net));
    return load_weights(c);
}

is_error *is_controlnet_load(const char *dir, is_controlnet **out) {
    if (!out) return is_errorf(IS_E_ARGUMENT, "is_controlnet_load: NULL output");
    *out = NULL;
    if (!dir) return is_errorf(IS_E_ARGUMENT, "is_controlnet_load: NULL directory");
    is_controlnet *c = calloc(1, sizeof *c);
    if (!c) return is_error_oom("is_controlnet");
    is_error *err = load(c, dir);
    if (err) {
        is_controlnet_free(c);
        return is_error_wrap(err, "loading ControlNet from %s", dir);
    }
    *out = c;
    return NULL;
}

void is_controlnet_release_workspace(is_controlnet *c) {
    if (!c) return;
    is_unet_release_workspace(c->net);
    free(c->cond_a);
    free(c->cond_b);
    c->cond_a = c->cond_b = NULL;
    c->cond_h = c->cond_w = 0;
}

void is_controlnet_free(is_controlnet *c) {
    if (!c) return;
    is_controlnet_release_workspace(c);
    is_unet_free(c->net);
    free(c);
}
