/* is_unet lifetime, size queries and IP scale assignment. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/fileio.h"
#include "kernels/kernels.h"
#include "lora/lora.h"
#include "unet/unet_internal.h"

/* weights: a single .safetensors file replacing the folder's weights (NULL: the folder's own). */
static is_error *load(is_unet *u, const char *dir, const char *weights, int down_only) {
    u->dir = strdup(dir);
    if (!u->dir) return is_error_oom("unet dir");
    is_config cfg = {0};
    IS_TRY(is_config_load_in(dir, "config.json", &cfg));
    is_error *err = unet_config_parse_as(&cfg, down_only, &u->cfg);
    is_config_free(&cfg);
    IS_TRY(err);

    if (weights)
        IS_TRY(is_st_open(weights, &u->st));
    else
        IS_TRY(is_st_open_in_dir(dir, "diffusion_pytorch_model", &u->st));
    IS_TRY(is_kernels_reserve(is_st_max_numel(u->st))); /* out of memory: an error now, not an abort later */
    return unet_load_weights(u);
}

is_error *unet_load_dir(const char *dir, int down_only, is_unet **out) {
    *out = NULL;
    is_unet *u = calloc(1, sizeof *u);
    if (!u) return is_error_oom("is_unet");
    is_error *err = load(u, dir, NULL, down_only);
    if (err) {
        is_unet_free(u);
        return err;
    }
    *out = u;
    return NULL;
}

is_error *is_unet_load(const char *unet_dir, is_unet **out) {
    if (!out) return is_errorf(IS_E_ARGUMENT, "is_unet_load: NULL output");
    *out = NULL;
    if (!unet_dir) return is_errorf(IS_E_ARGUMENT, "is_unet_load: NULL directory");
    is_error *err = unet_load_dir(unet_dir, 0, out);
    return err ? is_error_wrap(err, "loading UNet from %s", unet_dir) : NULL;
}

is_error *is_unet_load_file(const char *config_dir, const char *weights_file, is_unet **out) {
    if (!out) return is_errorf(IS_E_ARGUMENT, "is_unet_load_file: NULL output");
    *out = NULL;
    if (!config_dir || !weights_file) return is_errorf(IS_E_ARGUMENT, "is_unet_load_file: NULL folder or file");
    is_unet *u = calloc(1, sizeof *u);
    if (!u) return is_error_oom("is_unet");
    is_error *err = load(u, config_dir, weights_file, 0);
    if (err) {
        is_unet_free(u);
        return is_error_wrap(err, "loading UNet %s (config from %s)", weights_file, config_dir);
    }
    *out = u;
    return NULL;
}

void is_unet_release_workspace(is_unet *u) {
    if (u) unet_workspace_free(&u->ws);
}

void is_unet_free(is_unet *u) {
    if (!u) return;
    lora_state_free(u->lora);
    unet_ip_adapter_free(u);
    is_dnn_free(u->dnn);
    unet_workspace_free(&u->ws);
    unet_free_weights(u);
    is_st_close(u->st);
    free(u->dir);
    free(u);
}

int is_unet_in_channels(const is_unet *u) { return u ? u->cfg.in_channels : 0; }
int is_unet_out_channels(const is_unet *u) { return u ? u->cfg.out_channels : 0; }
int is_unet_cross_attention_dim(const is_unet *u) { return u ? u->cfg.cross_attention_dim : 0; }
int is_unet_pooled_dim(const is_unet *u) {
    return u && u->cfg.has_text_time ? u->cfg.add_in_dim - 6 * u->cfg.add_time_dim : 0;
}
int is_unet_time_ids_count(const is_unet *u) { return u && u->cfg.has_text_time ? 6 : 0; }

int is_unet_num_skips(const is_unet *u) {
    if (!u) return 0;
    int n = 1; /* conv_in */
    for (int i = 0; i < u->cfg.n_blocks; i++) n += u->down[i].n_resnets + (u->down[i].has_sampler ? 1 : 0);
    return n;
}

int is_unet_num_cross_attn(const is_unet *u) { return u ? u->n_xattn : 0; }
const char *is_unet_cross_attn_name(const is_unet *u, int i) {
    return u && i >= 0 && i < u->n_xattn ? u->xattn[i]->name : NULL;
}
float is_unet_cross_attn_scale(const is_unet *u, int i) {
    return u && i >= 0 && i < u->n_xattn ? u->xattn[i]->ip_scale : 0.0f;
}
const char *is_unet_cross_attn_module(const is_unet *u, int i) {
    return u && i >= 0 && i < u->n_xattn ? u->modules[u->xattn[i]->module].name : NULL;
}
int is_unet_cross_attn_comfy_index(const is_unet *u, int i) {
    return u && i >= 0 && i < u->n_xattn ? u->modules[u->xattn[i]->module].comfy_index : -1;
}

is_error *is_unet_set_ip_scale(is_unet *u, const char *spec, float scale) {
    if (!u) return is_errorf(IS_E_ARGUMENT, "is_unet_set_ip_scale: NULL UNet");
    if (!isfinite(scale)) return is_errorf(IS_E_ARGUMENT, "IP-Adapter scale must be a finite number");
    float *ms = malloc((size_t)(u->n_modules ? u->n_modules : 1) * sizeof(float));
    if (!ms) return is_error_oom("IP scales");
    is_error *err = is_block_scales_parse(spec, u->modules, u->n_modules, ms);
    if (!err)
        for (int i = 0; i < u->n_xattn; i++) u->xattn[i]->ip_scale = ms[u->xattn[i]->module] * scale;
    free(ms);
    return err ? err : unet_ip_pack_layers(u);
}

is_error *is_unet_set_precision(is_unet *u, is_precision p) {
    if (!u) return is_errorf(IS_E_ARGUMENT, "is_unet_set_precision: NULL UNet");
    is_precision before = is_unet_precision(u);
    const is_st *sts[1] = {u->st};
    IS_TRY(is_dnn_apply_precision(&u->dnn, p, sts, 1, unet_pack_individually, "UNet", 0));
    IS_TRY(unet_pack_fused_qkv(u));
    if (u->dnn && u->has_ip) IS_TRY(is_dnn_pack_st(u->dnn, u->ip.st, unet_ip_is_projection));
    IS_TRY(unet_ip_pack_layers(u));
    return before == is_unet_precision(u) ? NULL : lora_state_precision_changed(&u->lora, u->st, u->dnn);
}

is_precision is_unet_precision(const is_unet *u) { return u && u->dnn ? IS_PRECISION_BF16 : IS_PRECISION_F32; }
