/* unet/config.json -> unet_config, resolving lists the way UNet2DConditionModel.__init__ does.
 * Head counts: diffusers' SDXL configs store the number of HEADS in "attention_head_dim" (a naming
 * quirk kept for backwards compatibility: num_attention_heads = num_attention_heads or attention_head_dim);
 * the head size is then out_channels / heads. Anything this engine does not implement is refused
 * by name instead of being silently computed differently. */
#include <math.h>
#include <string.h>

#include "unet/unet_internal.h"

/* A string field that must be absent/null or one of the allowed values (NULL-terminated list). */
static is_error *expect_string(const is_config *cfg, const char *key, const char *const *allowed, int null_ok,
                               const char **out) {
    *out = NULL;
    if (!is_config_has(cfg, key)) {
        if (null_ok) return NULL;
        return is_errorf(IS_E_CONFIG, "%s: field '%s' is missing", cfg->path, key);
    }
    const char *v = NULL;
    IS_TRY(is_config_string(cfg, key, &v));
    for (int i = 0; allowed[i]; i++)
        if (!strcmp(v, allowed[i])) {
            *out = v;
            return NULL;
        }
    return is_errorf(IS_E_UNSUPPORTED, "%s: field '%s' = \"%s\" is not supported (supported: %s%s%s)", cfg->path, key, v,
                     null_ok ? "null" : "", null_ok ? ", " : "", allowed[0]);
}

/* A field that must be absent or null (a feature this engine does not implement). */
static is_error *expect_null(const is_config *cfg, const char *key) {
    if (is_config_has(cfg, key))
        return is_errorf(IS_E_UNSUPPORTED, "%s: field '%s' must be null: this engine does not implement it", cfg->path,
                         key);
    return NULL;
}

/* A bool (or list of bools) that must be false everywhere. */
static is_error *expect_false(const is_config *cfg, const char *key) {
    cJSON *v = cJSON_GetObjectItemCaseSensitive(cfg->root, key);
    if (!v || cJSON_IsNull(v) || cJSON_IsFalse(v)) return NULL;
    if (cJSON_IsArray(v)) {
        cJSON *it;
        cJSON_ArrayForEach(it, v) if (!cJSON_IsFalse(it)) goto bad;
        return NULL;
    }
bad:
    return is_errorf(IS_E_UNSUPPORTED, "%s: field '%s' must be false: this engine does not implement it", cfg->path, key);
}

static is_error *int_field(const is_config *cfg, const char *key, int64_t def, int has_def, int *out) {
    int64_t v = 0;
    if (has_def)
        IS_TRY(is_config_int_or(cfg, key, def, &v));
    else
        IS_TRY(is_config_int(cfg, key, &v));
    if (v < 0 || v > 1000000) return is_errorf(IS_E_CONFIG, "%s: field '%s' = %lld is out of range", cfg->path, key, (long long)v);
    *out = (int)v;
    return NULL;
}

static is_error *positive_list(const is_config *cfg, const char *key, int n, int *out) {
    int64_t v[UNET_MAX_BLOCKS];
    int got = 0;
    IS_TRY(is_config_int_list(cfg, key, v, UNET_MAX_BLOCKS, n, 1, &got));
    for (int i = 0; i < n; i++) {
        if (v[i] <= 0 || v[i] > 100000)
            return is_errorf(IS_E_CONFIG, "%s: field '%s'[%d] = %lld must be positive", cfg->path, key, i, (long long)v[i]);
        out[i] = (int)v[i];
    }
    return NULL;
}

is_error *unet_config_parse(const is_config *cfg, unet_config *c) { return unet_config_parse_as(cfg, 0, c); }

/* ControlNetModel.__init__ takes the down half of UNet2DConditionModel's arguments; the others (up blocks,
 * conv_out, conv kernels, time_embedding_dim, ...) are not its parameters, so diffusers ignores them there. */
is_error *unet_config_parse_as(const is_config *cfg, int down_only, unet_config *c) {
    memset(c, 0, sizeof *c);
    c->down_only = down_only;
    static const char *const unet_class[] = {"UNet2DConditionModel", NULL};
    static const char *const controlnet_class[] = {"ControlNetModel", NULL};
    const char *s = NULL;
    IS_TRY(expect_string(cfg, "_class_name", down_only ? controlnet_class : unet_class, 1, &s));

    IS_TRY(int_field(cfg, "in_channels", 4, 1, &c->in_channels));
    if (!down_only) IS_TRY(int_field(cfg, "out_channels", 4, 1, &c->out_channels));

    int64_t bo[UNET_MAX_BLOCKS];
    IS_TRY(is_config_int_list(cfg, "block_out_channels", bo, UNET_MAX_BLOCKS, -1, 0, &c->n_blocks));
    if (c->n_blocks < 1) return is_errorf(IS_E_CONFIG, "%s: field 'block_out_channels' is empty", cfg->path);
    IS_TRY(positive_list(cfg, "block_out_channels", c->n_blocks, c->block_out));

    const char *down[UNET_MAX_BLOCKS], *up[UNET_MAX_BLOCKS];
    int nd = 0, nu = 0;
    IS_TRY(is_config_string_list(cfg, "down_block_types", down, UNET_MAX_BLOCKS, &nd));
    if (down_only && nd != c->n_blocks)
        return is_errorf(IS_E_CONFIG, "%s: down_block_types (%d) must have one entry per block_out_channels (%d)",
                         cfg->path, nd, c->n_blocks);
    if (!down_only) IS_TRY(is_config_string_list(cfg, "up_block_types", up, UNET_MAX_BLOCKS, &nu));
    if (!down_only && (nd != c->n_blocks || nu != c->n_blocks))
        return is_errorf(IS_E_CONFIG, "%s: down_block_types (%d) and up_block_types (%d) must have one entry per "
                         "block_out_channels (%d)", cfg->path, nd, nu, c->n_blocks);
    for (int i = 0; i < c->n_blocks; i++) {
        if (!strcmp(down[i], "CrossAttnDownBlock2D")) c->down_cross[i] = 1;
        else if (strcmp(down[i], "DownBlock2D"))
            return is_errorf(IS_E_UNSUPPORTED, "%s: down_block_types[%d] = \"%s\" is not supported (CrossAttnDownBlock2D, "
                             "DownBlock2D)", cfg->path, i, down[i]);
        if (down_only) continue;
        if (!strcmp(up[i], "CrossAttnUpBlock2D")) c->up_cross[i] = 1;
        else if (strcmp(up[i], "UpBlock2D"))
            return is_errorf(IS_E_UNSUPPORTED, "%s: up_block_types[%d] = \"%s\" is not supported (CrossAttnUpBlock2D, "
                             "UpBlock2D)", cfg->path, i, up[i]);
    }

    IS_TRY(positive_list(cfg, "layers_per_block", c->n_blocks, c->layers_per_block));
    for (int i = 0; i < c->n_blocks; i++)
        if (c->layers_per_block[i] > 16)
            return is_errorf(IS_E_UNSUPPORTED, "%s: layers_per_block[%d] = %d: at most 16 supported", cfg->path, i,
                             c->layers_per_block[i]);
    if (is_config_has(cfg, "transformer_layers_per_block")) {
        IS_TRY(positive_list(cfg, "transformer_layers_per_block", c->n_blocks, c->transformer_layers));
    } else {
        for (int i = 0; i < c->n_blocks; i++) c->transformer_layers[i] = 1;
    }
    if (!down_only) IS_TRY(expect_null(cfg, "reverse_transformer_layers_per_block"));

    /* The quirk: "attention_head_dim" holds head counts unless num_attention_heads is given. */
    const char *heads_key = is_config_has(cfg, "num_attention_heads") ? "num_attention_heads" : "attention_head_dim";
    IS_TRY(positive_list(cfg, heads_key, c->n_blocks, c->heads));
    for (int i = 0; i < c->n_blocks; i++)
        if ((c->down_cross[i] || c->up_cross[c->n_blocks - 1 - i] || i == c->n_blocks - 1) &&
            c->block_out[i] % c->heads[i])
            return is_errorf(IS_E_CONFIG, "%s: block_out_channels[%d] = %d is not divisible by %s[%d] = %d heads",
                             cfg->path, i, c->block_out[i], heads_key, i, c->heads[i]);

    if (cJSON_IsArray(cJSON_GetObjectItemCaseSensitive(cfg->root, "cross_attention_dim")))
        return is_errorf(IS_E_UNSUPPORTED, "%s: a per-block list in 'cross_attention_dim' is not supported", cfg->path);
    IS_TRY(int_field(cfg, "cross_attention_dim", 1280, 1, &c->cross_attention_dim));
    if (c->cross_attention_dim <= 0) return is_errorf(IS_E_CONFIG, "%s: cross_attention_dim must be positive", cfg->path);
    IS_TRY(is_config_bool_or(cfg, "use_linear_projection", 0, &c->use_linear_projection));

    IS_TRY(int_field(cfg, "norm_num_groups", 32, 1, &c->norm_groups));
    if (c->norm_groups <= 0) return is_errorf(IS_E_UNSUPPORTED, "%s: norm_num_groups must be positive", cfg->path);
    for (int i = 0; i < c->n_blocks; i++)
        if (c->block_out[i] % c->norm_groups)
            return is_errorf(IS_E_CONFIG, "%s: block_out_channels[%d] = %d is not divisible by norm_num_groups = %d",
                             cfg->path, i, c->block_out[i], c->norm_groups);
    double d = 0;
    IS_TRY(is_config_float_or(cfg, "norm_eps", 1e-5, &d));
    c->norm_eps = (float)d;
    IS_TRY(is_config_bool_or(cfg, "flip_sin_to_cos", 1, &c->flip_sin_to_cos));
    IS_TRY(is_config_float_or(cfg, "freq_shift", 0, &d));
    c->freq_shift = (float)d;
    /* resnet_out_scale_factor reaches only block types this engine refuses (ResnetDownsampleBlock2D, ...):
     * DownBlock2D, CrossAttnDownBlock2D and their up versions build their resnets with scale 1. */
    IS_TRY(is_config_float_or(cfg, "mid_block_scale_factor", 1, &d));
    c->mid_block_scale = (float)d;
    if (!(c->mid_block_scale != 0 && isfinite(c->mid_block_scale)))
        return is_errorf(IS_E_CONFIG, "%s: mid_block_scale_factor must be a non-zero number", cfg->path);
    c->conv_in_kernel = c->conv_out_kernel = 3; /* ControlNetModel: always 3 */
    if (!down_only) {
        IS_TRY(is_config_bool_or(cfg, "center_input_sample", 0, &c->center_input_sample));
        IS_TRY(int_field(cfg, "conv_in_kernel", 3, 1, &c->conv_in_kernel));
        IS_TRY(int_field(cfg, "conv_out_kernel", 3, 1, &c->conv_out_kernel));
        if (c->conv_in_kernel % 2 == 0 || c->conv_out_kernel % 2 == 0)
            return is_errorf(IS_E_UNSUPPORTED, "%s: conv_in_kernel/conv_out_kernel must be odd", cfg->path);
    }
    IS_TRY(int_field(cfg, "downsample_padding", 1, 1, &c->downsample_padding));
    if (c->downsample_padding > 1)
        return is_errorf(IS_E_UNSUPPORTED, "%s: downsample_padding = %d is not supported (0 or 1)", cfg->path,
                         c->downsample_padding);

    int ted = 0;
    if (!down_only) IS_TRY(int_field(cfg, "time_embedding_dim", 0, 1, &ted));
    c->time_embed_dim = ted ? ted : 4 * c->block_out[0];

    static const char *const text_time[] = {"text_time", NULL};
    IS_TRY(expect_string(cfg, "addition_embed_type", text_time, 1, &s));
    c->has_text_time = s != NULL;
    if (c->has_text_time) {
        IS_TRY(int_field(cfg, "addition_time_embed_dim", 0, 0, &c->add_time_dim));
        IS_TRY(int_field(cfg, "projection_class_embeddings_input_dim", 0, 0, &c->add_in_dim));
        if (c->add_time_dim <= 0 || c->add_in_dim <= 6 * c->add_time_dim)
            return is_errorf(IS_E_CONFIG, "%s: projection_class_embeddings_input_dim (%d) must exceed 6 * "
                             "addition_time_embed_dim (%d): it is pooled text size + 6 time ids", cfg->path,
                             c->add_in_dim, c->add_time_dim);
    }

    static const char *const mid_type[] = {"UNetMidBlock2DCrossAttn", NULL};
    IS_TRY(expect_string(cfg, "mid_block_type", mid_type, 1, &s));
    cJSON *mid = cJSON_GetObjectItemCaseSensitive(cfg->root, "mid_block_type");
    c->has_mid = !(mid && cJSON_IsNull(mid)); /* absent = diffusers' default cross-attention mid block; null = none */
    if (down_only && !c->has_mid) /* diffusers: "unknown mid_block_type : None" */
        return is_errorf(IS_E_UNSUPPORTED, "%s: field 'mid_block_type' = null: a ControlNetModel needs a mid block "
                         "(supported: UNetMidBlock2DCrossAttn)", cfg->path);

    static const char *const silu[] = {"silu", "swish", NULL};
    IS_TRY(expect_string(cfg, "act_fn", silu, 1, &s));
    static const char *const def[] = {"default", NULL};
    IS_TRY(expect_string(cfg, "resnet_time_scale_shift", def, 1, &s));
    IS_TRY(expect_null(cfg, "class_embed_type"));
    IS_TRY(expect_null(cfg, "num_class_embeds"));
    IS_TRY(expect_false(cfg, "only_cross_attention"));
    if (down_only) { /* a ControlNet's text projection (encoder_hid_dim) is not implemented */
        IS_TRY(expect_null(cfg, "encoder_hid_dim_type"));
        IS_TRY(expect_null(cfg, "encoder_hid_dim"));
        return NULL;
    }
    static const char *const positional[] = {"positional", NULL};
    IS_TRY(expect_string(cfg, "time_embedding_type", positional, 1, &s));
    IS_TRY(expect_string(cfg, "attention_type", def, 1, &s));
    static const char *const ip_proj[] = {"ip_image_proj", NULL};
    IS_TRY(expect_string(cfg, "encoder_hid_dim_type", ip_proj, 1, &s));
    IS_TRY(expect_null(cfg, "time_cond_proj_dim"));
    IS_TRY(expect_null(cfg, "timestep_post_act"));
    IS_TRY(expect_null(cfg, "time_embedding_act_fn"));
    IS_TRY(expect_null(cfg, "cross_attention_norm"));
    IS_TRY(expect_false(cfg, "dual_cross_attention"));
    IS_TRY(expect_false(cfg, "resnet_skip_time_act"));
    IS_TRY(expect_false(cfg, "class_embeddings_concat"));
    /* upcast_attention only changes fp16 softmax precision; this engine computes attention in f32. */
    return NULL;
}
