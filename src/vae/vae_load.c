/* Loading an AutoencoderKL folder: config.json (architecture) and the weights as views into
 * the safetensors mmap, every tensor checked against the shape the architecture implies. */
#include <cjson/cJSON.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/config.h"
#include "core/fileio.h"
#include "kernels/kernels.h"
#include "vae/vae_internal.h"

/* ------------------------------------------------------------------ weights */

#define NAME_CAP 256

/* printf into a tensor-name buffer of NAME_CAP bytes. */
static void tname(char *dst, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void tname(char *dst, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(dst, NAME_CAP, fmt, ap);
    va_end(ap);
}

static is_error *get(const is_vae *v, const is_tensor **out, int ndim, const int64_t *shape, const char *name) {
    IS_TRY(is_st_get(v->st, name, ndim, shape, out));
    is_dtype dt = (*out)->dtype;
    if (dt != IS_DT_F32 && dt != IS_DT_F16 && dt != IS_DT_BF16)
        return is_errorf(IS_E_SHAPE, "%s: tensor '%s' has dtype %s, expected F32, F16 or BF16", is_st_path(v->st),
                         name, is_dtype_name(dt));
    return NULL;
}

/* "<prefix>.weight" with the given shape and "<prefix>.bias" [shape[0]] (both required). */
static is_error *get_wb(const is_vae *v, vae_param *p, int ndim, const int64_t *shape, const char *prefix) {
    char name[NAME_CAP];
    tname(name, "%s.weight", prefix);
    IS_TRY(get(v, &p->w, ndim, shape, name));
    tname(name, "%s.bias", prefix);
    return get(v, &p->b, 1, shape, name);
}

static is_error *load_conv(const is_vae *v, vae_param *p, int64_t cout, int64_t cin, int64_t k, const char *fmt, ...)
    __attribute__((format(printf, 6, 7)));
static is_error *load_conv(const is_vae *v, vae_param *p, int64_t cout, int64_t cin, int64_t k, const char *fmt, ...) {
    char prefix[NAME_CAP];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(prefix, NAME_CAP, fmt, ap);
    va_end(ap);
    int64_t shape[4] = {cout, cin, k, k};
    return get_wb(v, p, 4, shape, prefix);
}

static is_error *load_norm(const is_vae *v, vae_param *p, int64_t c, const char *prefix) {
    return get_wb(v, p, 1, &c, prefix);
}

static is_error *load_resnet(const is_vae *v, vae_resnet *r, int64_t cin, int64_t cout, const char *prefix) {
    char name[NAME_CAP];
    r->cin = cin;
    r->cout = cout;
    r->groups = v->groups;
    tname(name, "%s.norm1", prefix);
    IS_TRY(load_norm(v, &r->norm1, cin, name));
    IS_TRY(load_conv(v, &r->conv1, cout, cin, 3, "%s.conv1", prefix));
    tname(name, "%s.norm2", prefix);
    IS_TRY(load_norm(v, &r->norm2, cout, name));
    IS_TRY(load_conv(v, &r->conv2, cout, cout, 3, "%s.conv2", prefix));
    r->shortcut = (vae_param){0};
    if (cin != cout) IS_TRY(load_conv(v, &r->shortcut, cout, cin, 1, "%s.conv_shortcut", prefix));
    return NULL;
}

/* Current names (to_q, to_k, to_v, to_out.0) or the pre-0.14 ones (query, key, value, proj_attn). */
static is_error *load_attention(const is_vae *v, vae_attention *a, int64_t c, const char *prefix) {
    static const char *now[4] = {"to_q", "to_k", "to_v", "to_out.0"};
    static const char *old[4] = {"query", "key", "value", "proj_attn"};
    vae_param *dst[4] = {&a->q, &a->k, &a->v, &a->out};
    char name[NAME_CAP];
    tname(name, "%s.to_q.weight", prefix);
    const char **names = is_st_find(v->st, name) ? now : old;
    int64_t shape[2] = {c, c};
    a->groups = v->groups;
    tname(name, "%s.group_norm", prefix);
    IS_TRY(load_norm(v, &a->norm, c, name));
    for (int i = 0; i < 4; i++) {
        tname(name, "%s.%s", prefix, names[i]);
        IS_TRY(get_wb(v, dst[i], 2, shape, name));
    }
    return NULL;
}

static is_error *load_mid(const is_vae *v, vae_mid *m, int64_t c, const char *prefix) {
    char name[NAME_CAP];
    tname(name, "%s.resnets.0", prefix);
    IS_TRY(load_resnet(v, &m->res0, c, c, name));
    tname(name, "%s.resnets.1", prefix);
    IS_TRY(load_resnet(v, &m->res1, c, c, name));
    m->has_attn = v->mid_attention;
    if (m->has_attn) {
        tname(name, "%s.attentions.0", prefix);
        IS_TRY(load_attention(v, &m->attn, c, name));
    }
    return NULL;
}

/* diffusers Encoder: conv_in, DownEncoderBlock2D x n (downsample all but the last), mid, out. */
static is_error *load_encoder(is_vae *v) {
    vae_coder *e = &v->enc;
    int n = v->nblocks;
    char name[NAME_CAP];
    IS_TRY(load_conv(v, &e->conv_in, v->block_out[0], v->in_channels, 3, "encoder.conv_in"));
    e->nblocks = n;
    int64_t cin = v->block_out[0];
    for (int i = 0; i < n; i++) {
        vae_block *b = &e->blocks[i];
        int64_t cout = v->block_out[i];
        b->nres = (int)v->layers_per_block;
        for (int j = 0; j < b->nres; j++) {
            tname(name, "encoder.down_blocks.%d.resnets.%d", i, j);
            IS_TRY(load_resnet(v, &b->res[j], j == 0 ? cin : cout, cout, name));
        }
        b->resample = (vae_param){0};
        if (i < n - 1) IS_TRY(load_conv(v, &b->resample, cout, cout, 3, "encoder.down_blocks.%d.downsamplers.0.conv", i));
        cin = cout;
    }
    IS_TRY(load_mid(v, &e->mid, cin, "encoder.mid_block"));
    IS_TRY(load_norm(v, &e->norm_out, cin, "encoder.conv_norm_out"));
    return load_conv(v, &e->conv_out, 2 * v->latent_channels, cin, 3, "encoder.conv_out");
}

/* diffusers Decoder: conv_in, mid, UpDecoderBlock2D x n (layers+1 resnets, upsample all but the
 * last) over the reversed channel list, out. */
static is_error *load_decoder(is_vae *v) {
    vae_coder *d = &v->dec;
    int n = v->nblocks;
    char name[NAME_CAP];
    int64_t cin = v->block_out[n - 1];
    IS_TRY(load_conv(v, &d->conv_in, cin, v->latent_channels, 3, "decoder.conv_in"));
    IS_TRY(load_mid(v, &d->mid, cin, "decoder.mid_block"));
    d->nblocks = n;
    for (int i = 0; i < n; i++) {
        vae_block *b = &d->blocks[i];
        int64_t cout = v->block_out[n - 1 - i];
        b->nres = (int)v->layers_per_block + 1;
        for (int j = 0; j < b->nres; j++) {
            tname(name, "decoder.up_blocks.%d.resnets.%d", i, j);
            IS_TRY(load_resnet(v, &b->res[j], j == 0 ? cin : cout, cout, name));
        }
        b->resample = (vae_param){0};
        if (i < n - 1) IS_TRY(load_conv(v, &b->resample, cout, cout, 3, "decoder.up_blocks.%d.upsamplers.0.conv", i));
        cin = cout;
    }
    IS_TRY(load_norm(v, &d->norm_out, cin, "decoder.conv_norm_out"));
    return load_conv(v, &d->conv_out, v->out_channels, cin, 3, "decoder.conv_out");
}

/* ------------------------------------------------------------------ config */

static is_error *block_types(const is_config *cfg, const char *key, const char *want, int n) {
    if (!is_config_has(cfg, key)) return NULL;
    const char *types[VAE_MAX_BLOCKS + 1];
    int got = 0;
    IS_TRY(is_config_string_list(cfg, key, types, VAE_MAX_BLOCKS + 1, &got));
    if (got != n)
        return is_errorf(IS_E_CONFIG, "%s: field '%s' has %d entries, expected %d (one per block_out_channels)",
                         cfg->path, key, got, n);
    for (int i = 0; i < n; i++)
        if (strcmp(types[i], want) != 0)
            return is_errorf(IS_E_UNSUPPORTED, "%s: field '%s'[%d] is '%s'; only %s is supported", cfg->path, key, i,
                             types[i], want);
    return NULL;
}

/* latents_mean / latents_std: a list of latent_channels numbers, or absent/null. */
static is_error *float_list(const is_config *cfg, const char *key, int64_t n, float **out) {
    *out = NULL;
    if (!is_config_has(cfg, key)) return NULL;
    cJSON *arr = cJSON_GetObjectItemCaseSensitive(cfg->root, key);
    if (!cJSON_IsArray(arr) || cJSON_GetArraySize(arr) != n)
        return is_errorf(IS_E_CONFIG, "%s: field '%s' must be a list of %lld numbers (latent_channels)", cfg->path, key,
                         (long long)n);
    float *vals = malloc((size_t)n * sizeof(float));
    if (!vals) return is_error_oom("vae latents statistics");
    int i = 0;
    for (cJSON *it = arr->child; it; it = it->next, i++) {
        if (!cJSON_IsNumber(it)) {
            free(vals);
            return is_errorf(IS_E_CONFIG, "%s: field '%s'[%d] must be a number", cfg->path, key, i);
        }
        vals[i] = (float)it->valuedouble; /* torch.tensor(list) is float32 */
    }
    *out = vals;
    return NULL;
}

static is_error *parse_config(is_vae *v, const is_config *cfg) {
    int64_t n = 0, sample[2] = {0};
    int nb = 0, ns = 0;
    double sf = 0;
    const char *act = NULL;
    IS_TRY(is_config_int_list(cfg, "block_out_channels", v->block_out, VAE_MAX_BLOCKS, -1, 0, &nb));
    if (nb < 1) return is_errorf(IS_E_CONFIG, "%s: field 'block_out_channels' is empty", cfg->path);
    v->nblocks = nb;
    IS_TRY(is_config_int(cfg, "latent_channels", &v->latent_channels));
    IS_TRY(is_config_int(cfg, "layers_per_block", &v->layers_per_block));
    IS_TRY(is_config_float(cfg, "scaling_factor", &sf));
    IS_TRY(is_config_int_list(cfg, "sample_size", sample, 2, -1, 1, &ns));
    IS_TRY(is_config_int_or(cfg, "in_channels", 3, &v->in_channels));
    IS_TRY(is_config_int_or(cfg, "out_channels", 3, &v->out_channels));
    IS_TRY(is_config_int_or(cfg, "norm_num_groups", 32, &v->groups));
    IS_TRY(is_config_string_or(cfg, "act_fn", "silu", &act));
    IS_TRY(is_config_bool_or(cfg, "mid_block_add_attention", 1, &v->mid_attention));
    IS_TRY(block_types(cfg, "down_block_types", "DownEncoderBlock2D", nb));
    IS_TRY(block_types(cfg, "up_block_types", "UpDecoderBlock2D", nb));
    if (strcmp(act, "silu") != 0 && strcmp(act, "swish") != 0)
        return is_errorf(IS_E_UNSUPPORTED, "%s: field 'act_fn' is '%s'; only silu is supported", cfg->path, act);
    if (!(sf > 0)) return is_errorf(IS_E_CONFIG, "%s: field 'scaling_factor' must be > 0", cfg->path);
    v->scaling_factor = (float)sf;
    v->sample_size = sample[0]; /* diffusers uses sample_size[0] when it is a list */
    if (v->latent_channels < 1 || v->in_channels < 1 || v->out_channels < 1 || v->groups < 1 || ns < 1 ||
        v->sample_size < 1)
        return is_errorf(IS_E_CONFIG, "%s: latent_channels, in/out_channels, norm_num_groups and sample_size must be >= 1",
                         cfg->path);
    /* Images in and out are RGB everywhere (the pipeline's buffers, the API's [3, H, W]): another count would
     * read or write past them, as a ControlNet's conditioning_channels did. diffusers fails as well, in its
     * first convolution or when it makes the PIL image. */
    if (v->in_channels != 3 || v->out_channels != 3)
        return is_errorf(IS_E_UNSUPPORTED, "%s: in_channels %lld / out_channels %lld: only RGB images (3 / 3) are "
                         "supported", cfg->path, (long long)v->in_channels, (long long)v->out_channels);
    if (v->layers_per_block < 1 || v->layers_per_block > VAE_MAX_LAYERS - 1)
        return is_errorf(IS_E_CONFIG, "%s: field 'layers_per_block' is %lld, expected 1..%d", cfg->path,
                         (long long)v->layers_per_block, VAE_MAX_LAYERS - 1);
    for (int i = 0; i < nb; i++)
        if (v->block_out[i] < 1 || v->block_out[i] % v->groups != 0)
            return is_errorf(IS_E_CONFIG, "%s: block_out_channels[%d] = %lld is not a positive multiple of norm_num_groups %lld",
                             cfg->path, i, (long long)v->block_out[i], (long long)v->groups);
    IS_TRY(is_config_bool_or(cfg, "use_quant_conv", 1, &v->use_quant_conv));
    IS_TRY(is_config_bool_or(cfg, "use_post_quant_conv", 1, &v->use_post_quant_conv));
    n = v->latent_channels;
    IS_TRY(float_list(cfg, "latents_mean", n, &v->latents_mean));
    IS_TRY(float_list(cfg, "latents_std", n, &v->latents_std));
    v->has_latents_stats = v->latents_mean && v->latents_std; /* the SDXL pipeline needs both */
    return NULL;
}

static is_error *load_weights(is_vae *v) {
    int64_t L = v->latent_channels;
    if (v->use_quant_conv) IS_TRY(load_conv(v, &v->quant_conv, 2 * L, 2 * L, 1, "quant_conv"));
    if (v->use_post_quant_conv) IS_TRY(load_conv(v, &v->post_quant_conv, L, L, 1, "post_quant_conv"));
    IS_TRY(load_encoder(v));
    return load_decoder(v);
}

is_error *is_vae_load(const char *vae_dir, is_vae **out) {
    *out = NULL;
    if (!vae_dir) return is_errorf(IS_E_ARGUMENT, "is_vae_load: vae_dir is NULL");
    is_vae *v = calloc(1, sizeof *v);
    if (!v) return is_error_oom("vae");
    is_config cfg = {0};
    is_error *e = is_config_load_in(vae_dir, "config.json", &cfg);
    if (!e) e = parse_config(v, &cfg);
    is_config_free(&cfg);
    if (!e) e = is_st_open_in_dir(vae_dir, "diffusion_pytorch_model", &v->st);
    if (!e) e = is_kernels_reserve(is_st_max_numel(v->st)); /* out of memory: an error now, not an abort later */
    if (!e) e = load_weights(v);
    if (!e && !(v->dir = strdup(vae_dir))) e = is_error_oom("vae");
    if (e) {
        is_vae_free(v);
        return is_error_wrap(e, "loading VAE %s", vae_dir);
    }
    *out = v;
    return NULL;
}

void is_vae_free(is_vae *v) {
    if (!v) return;
    is_dnn_free(v->ws.dnn);
    vae_ws_free(&v->ws);
    is_st_close(v->st);
    free(v->latents_mean);
    free(v->latents_std);
    free(v->dir);
    free(v);
}

is_error *is_vae_set_precision(is_vae *v, is_precision p) {
    if (!v) return is_errorf(IS_E_ARGUMENT, "is_vae_set_precision: NULL VAE");
    const is_st *sts[1] = {v->st};
    return is_dnn_apply_precision(&v->ws.dnn, p, sts, 1, NULL, "VAE", 0);
}

is_precision is_vae_precision(const is_vae *v) { return v && v->ws.dnn ? IS_PRECISION_BF16 : IS_PRECISION_F32; }

void is_vae_release_workspace(is_vae *v) {
    if (v) vae_ws_free(&v->ws);
}

float is_vae_scaling_factor(const is_vae *v) { return v->scaling_factor; }
int is_vae_latent_channels(const is_vae *v) { return (int)v->latent_channels; }
int is_vae_scale(const is_vae *v) { return 1 << (v->nblocks - 1); }
