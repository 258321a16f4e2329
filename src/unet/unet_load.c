/* UNet weights: every tensor is looked up by its diffusers name with the shape the config implies,
 * and kept as a view into the mmap (stored dtype). Also builds the list of attention modules and
 * cross-attention (attn2) layers in diffusers' attn_processors order: down_blocks, up_blocks, mid_block.
 * A down-path-only model (ControlNetModel) has no up blocks, conv_norm_out or conv_out. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "unet/unet_internal.h"

/* snprintf through a va_list: names are short, and a truncated one simply fails the lookup. */
static void fmt_name(char *buf, size_t cap, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void fmt_name(char *buf, size_t cap, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, cap, fmt, ap);
    va_end(ap);
}

/* Tensor `name` with the given shape, in a float dtype. */
static is_error *get(const is_st *st, const is_tensor **t, int ndim, const int64_t *shape, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
static is_error *get(const is_st *st, const is_tensor **t, int ndim, const int64_t *shape, const char *fmt, ...) {
    char name[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(name, sizeof name, fmt, ap);
    va_end(ap);
    IS_TRY(is_st_get(st, name, ndim, shape, t));
    if ((*t)->dtype != IS_DT_F32 && (*t)->dtype != IS_DT_F16 && (*t)->dtype != IS_DT_BF16)
        return is_errorf(IS_E_SHAPE, "%s: tensor '%s' has dtype %s, expected F32, F16 or BF16", is_st_path(st), name,
                         is_dtype_name((*t)->dtype));
    return NULL;
}

static is_error *get_vec(const is_st *st, const is_tensor **t, int64_t n, const char *prefix, const char *what) {
    int64_t shape[1] = {n};
    return get(st, t, 1, shape, "%s.%s", prefix, what);
}

/* prefix.weight [out, in] (+ prefix.bias [out] when bias: 1 required, 2 optional). */
static is_error *load_linear(const is_st *st, unet_linear *l, const char *prefix, int64_t out, int64_t in, int bias) {
    int64_t shape[2] = {out, in};
    IS_TRY(get(st, &l->w, 2, shape, "%s.weight", prefix));
    l->b = NULL;
    char name[256];
    fmt_name(name, sizeof name, "%s.bias", prefix);
    if (bias == 1 || (bias == 2 && is_st_find(st, name))) IS_TRY(get_vec(st, &l->b, out, prefix, "bias"));
    return NULL;
}

is_error *unet_load_conv(const is_st *st, unet_linear *l, const char *prefix, int64_t cout, int64_t cin, int64_t k) {
    int64_t shape[4] = {cout, cin, k, k};
    IS_TRY(get(st, &l->w, 4, shape, "%s.weight", prefix));
    return get_vec(st, &l->b, cout, prefix, "bias");
}

static is_error *load_norm(const is_st *st, unet_norm *n, const char *prefix, int64_t c) {
    IS_TRY(get_vec(st, &n->w, c, prefix, "weight"));
    return get_vec(st, &n->b, c, prefix, "bias");
}

static is_error *load_resnet(const is_unet *u, unet_resnet *r, const char *prefix, int cin, int cout, float out_scale) {
    char p[256];
    r->cin = cin;
    r->cout = cout;
    r->out_scale = out_scale;
    fmt_name(p, sizeof p, "%s.norm1", prefix);
    IS_TRY(load_norm(u->st, &r->norm1, p, cin));
    fmt_name(p, sizeof p, "%s.conv1", prefix);
    IS_TRY(unet_load_conv(u->st, &r->conv1, p, cout, cin, 3));
    fmt_name(p, sizeof p, "%s.time_emb_proj", prefix);
    IS_TRY(load_linear(u->st, &r->temb_proj, p, cout, u->cfg.time_embed_dim, 1));
    fmt_name(p, sizeof p, "%s.norm2", prefix);
    IS_TRY(load_norm(u->st, &r->norm2, p, cout));
    fmt_name(p, sizeof p, "%s.conv2", prefix);
    IS_TRY(unet_load_conv(u->st, &r->conv2, p, cout, cout, 3));
    memset(&r->shortcut, 0, sizeof r->shortcut);
    if (cin != cout) {
        fmt_name(p, sizeof p, "%s.conv_shortcut", prefix);
        IS_TRY(unet_load_conv(u->st, &r->shortcut, p, cout, cin, 1));
    }
    return NULL;
}

static is_error *load_attention(const is_unet *u, unet_attention *a, const char *prefix, int inner, int kv_dim,
                                int heads) {
    char p[256];
    a->heads = heads;
    a->dim_head = inner / heads;
    fmt_name(p, sizeof p, "%s.to_q", prefix);
    IS_TRY(load_linear(u->st, &a->q, p, inner, inner, 2));
    fmt_name(p, sizeof p, "%s.to_k", prefix);
    IS_TRY(load_linear(u->st, &a->k, p, inner, kv_dim, 2));
    fmt_name(p, sizeof p, "%s.to_v", prefix);
    IS_TRY(load_linear(u->st, &a->v, p, inner, kv_dim, 2));
    fmt_name(p, sizeof p, "%s.to_out.0", prefix);
    IS_TRY(load_linear(u->st, &a->out, p, inner, inner, 1));
    fmt_name(p, sizeof p, "%s.processor", prefix);
    a->name = strdup(p);
    if (!a->name) return is_error_oom("attention name");
    return NULL;
}

static is_error *load_transformer(const is_unet *u, unet_transformer *t, const char *prefix, int channels, int heads,
                                  int depth) {
    const unet_config *c = &u->cfg;
    char p[256];
    t->channels = channels;
    t->heads = heads;
    t->dim_head = channels / heads;
    t->inner = heads * t->dim_head;
    t->depth = depth;
    fmt_name(p, sizeof p, "%s.norm", prefix);
    IS_TRY(load_norm(u->st, &t->norm, p, channels));
    if (c->use_linear_projection) {
        fmt_name(p, sizeof p, "%s.proj_in", prefix);
        IS_TRY(load_linear(u->st, &t->proj_in, p, t->inner, channels, 1));
        fmt_name(p, sizeof p, "%s.proj_out", prefix);
        IS_TRY(load_linear(u->st, &t->proj_out, p, channels, t->inner, 1));
    } else { /* 1x1 convolutions: the same product applied to tokens */
        fmt_name(p, sizeof p, "%s.proj_in", prefix);
        IS_TRY(unet_load_conv(u->st, &t->proj_in, p, t->inner, channels, 1));
        fmt_name(p, sizeof p, "%s.proj_out", prefix);
        IS_TRY(unet_load_conv(u->st, &t->proj_out, p, channels, t->inner, 1));
    }
    t->blocks = calloc((size_t)depth, sizeof *t->blocks);
    if (!t->blocks) return is_error_oom("transformer blocks");
    for (int k = 0; k < depth; k++) {
        unet_tblock *b = &t->blocks[k];
        char bp[256];
        fmt_name(bp, sizeof bp, "%s.transformer_blocks.%d", prefix, k);
        fmt_name(p, sizeof p, "%s.norm1", bp);
        IS_TRY(load_norm(u->st, &b->norm1, p, t->inner));
        fmt_name(p, sizeof p, "%s.norm2", bp);
        IS_TRY(load_norm(u->st, &b->norm2, p, t->inner));
        fmt_name(p, sizeof p, "%s.norm3", bp);
        IS_TRY(load_norm(u->st, &b->norm3, p, t->inner));
        fmt_name(p, sizeof p, "%s.attn1", bp);
        IS_TRY(load_attention(u, &b->attn1, p, t->inner, t->inner, heads));
        fmt_name(p, sizeof p, "%s.attn2", bp);
        IS_TRY(load_attention(u, &b->attn2, p, t->inner, c->cross_attention_dim, heads));
        b->ff_inner = 4 * t->inner; /* FeedForward(mult=4) with GEGLU */
        fmt_name(p, sizeof p, "%s.ff.net.0.proj", bp);
        IS_TRY(load_linear(u->st, &b->ff_in, p, 2 * (int64_t)b->ff_inner, t->inner, 1));
        fmt_name(p, sizeof p, "%s.ff.net.2", bp);
        IS_TRY(load_linear(u->st, &b->ff_out, p, t->inner, b->ff_inner, 1));
    }
    return NULL;
}

static is_error *alloc_block(unet_block *b, int n_resnets, int n_attn) {
    b->n_resnets = n_resnets;
    b->n_attn = n_attn;
    b->resnets = calloc((size_t)n_resnets, sizeof *b->resnets);
    b->attn = n_attn ? calloc((size_t)n_attn, sizeof *b->attn) : NULL;
    if (!b->resnets || (n_attn && !b->attn)) return is_error_oom("UNet blocks");
    return NULL;
}

/* Register the attention modules of one block (and their attn2 layers), in diffusers order. */
static is_error *add_modules(is_unet *u, unet_block *b, char kind, int block, const char *prefix) {
    for (int j = 0; j < b->n_attn; j++) {
        is_attn_module *m = &u->modules[u->n_modules];
        char name[128];
        fmt_name(name, sizeof name, "%s.attentions.%d", prefix, j);
        m->name = strdup(name);
        if (!m->name) return is_error_oom("module name");
        m->kind = kind;
        m->block = block;
        m->index = j;
        m->n_in_block = b->n_attn;
        for (int k = 0; k < b->attn[j].depth; k++) {
            b->attn[j].blocks[k].attn2.module = u->n_modules;
            u->xattn[u->n_xattn++] = &b->attn[j].blocks[k].attn2;
        }
        u->n_modules++;
    }
    return NULL;
}

is_error *unet_load_weights(is_unet *u) {
    const unet_config *c = &u->cfg;
    const int n = c->n_blocks, C0 = c->block_out[0], TE = c->time_embed_dim;
    char p[256];

    IS_TRY(unet_load_conv(u->st, &u->conv_in, "conv_in", C0, c->in_channels, c->conv_in_kernel));
    IS_TRY(load_linear(u->st, &u->time_lin1, "time_embedding.linear_1", TE, C0, 1));
    IS_TRY(load_linear(u->st, &u->time_lin2, "time_embedding.linear_2", TE, TE, 1));
    if (c->has_text_time) {
        IS_TRY(load_linear(u->st, &u->add_lin1, "add_embedding.linear_1", TE, c->add_in_dim, 1));
        IS_TRY(load_linear(u->st, &u->add_lin2, "add_embedding.linear_2", TE, TE, 1));
    }
    if (!c->down_only) {
        IS_TRY(load_norm(u->st, &u->norm_out, "conv_norm_out", C0));
        IS_TRY(unet_load_conv(u->st, &u->conv_out, "conv_out", c->out_channels, C0, c->conv_out_kernel));
    }

    /* Skip-connection channels as the down path produces them, to check the up path against. */
    int skip_ch[256], n_skip = 0;
    skip_ch[n_skip++] = C0;

    for (int i = 0; i < n; i++) {
        unet_block *b = &u->down[i];
        int cin = i == 0 ? C0 : c->block_out[i - 1], cout = c->block_out[i];
        IS_TRY(alloc_block(b, c->layers_per_block[i], c->down_cross[i] ? c->layers_per_block[i] : 0));
        b->cout = cout;
        for (int j = 0; j < b->n_resnets; j++) {
            fmt_name(p, sizeof p, "down_blocks.%d.resnets.%d", i, j);
            IS_TRY(load_resnet(u, &b->resnets[j], p, j == 0 ? cin : cout, cout, 1.0f));
            if (n_skip < 256) skip_ch[n_skip++] = cout;
        }
        for (int j = 0; j < b->n_attn; j++) {
            fmt_name(p, sizeof p, "down_blocks.%d.attentions.%d", i, j);
            IS_TRY(load_transformer(u, &b->attn[j], p, cout, c->heads[i], c->transformer_layers[i]));
        }
        b->has_sampler = i < n - 1;
        if (b->has_sampler) {
            fmt_name(p, sizeof p, "down_blocks.%d.downsamplers.0.conv", i);
            IS_TRY(unet_load_conv(u->st, &b->sampler, p, cout, cout, 3));
            if (n_skip < 256) skip_ch[n_skip++] = cout;
        }
    }

    if (c->has_mid) {
        int C = c->block_out[n - 1];
        IS_TRY(alloc_block(&u->mid, 2, 1));
        u->mid.cout = C;
        for (int j = 0; j < 2; j++) {
            fmt_name(p, sizeof p, "mid_block.resnets.%d", j);
            IS_TRY(load_resnet(u, &u->mid.resnets[j], p, C, C, c->mid_block_scale));
        }
        IS_TRY(load_transformer(u, &u->mid.attn[0], "mid_block.attentions.0", C, c->heads[n - 1],
                                c->transformer_layers[n - 1]));
    }

    for (int i = 0; i < n && !c->down_only; i++) {
        unet_block *b = &u->up[i];
        int rev = n - 1 - i;
        int prev_out = c->block_out[i == 0 ? n - 1 : n - i], cout = c->block_out[rev];
        int input_ch = c->block_out[n - 2 - i >= 0 ? n - 2 - i : 0];
        int nr = c->layers_per_block[rev] + 1;
        IS_TRY(alloc_block(b, nr, c->up_cross[i] ? nr : 0));
        b->cout = cout;
        for (int j = 0; j < nr; j++) {
            int skip = j == nr - 1 ? input_ch : cout, rin = j == 0 ? prev_out : cout;
            if (n_skip <= 0 || skip_ch[n_skip - 1] != skip)
                return is_errorf(IS_E_UNSUPPORTED, "%s: up_blocks.%d.resnets.%d expects a %d-channel skip connection "
                                 "but the down path provides %d (unsupported layers_per_block layout)", u->dir, i, j,
                                 skip, n_skip > 0 ? skip_ch[n_skip - 1] : 0);
            n_skip--;
            fmt_name(p, sizeof p, "up_blocks.%d.resnets.%d", i, j);
            IS_TRY(load_resnet(u, &b->resnets[j], p, rin + skip, cout, 1.0f));
        }
        for (int j = 0; j < b->n_attn; j++) {
            fmt_name(p, sizeof p, "up_blocks.%d.attentions.%d", i, j);
            IS_TRY(load_transformer(u, &b->attn[j], p, cout, c->heads[rev], c->transformer_layers[rev]));
        }
        b->has_sampler = i < n - 1;
        if (b->has_sampler) {
            fmt_name(p, sizeof p, "up_blocks.%d.upsamplers.0.conv", i);
            IS_TRY(unet_load_conv(u->st, &b->sampler, p, cout, cout, 3));
        }
    }
    if (n_skip != 0 && !c->down_only)
        return is_errorf(IS_E_UNSUPPORTED, "%s: %d skip connections left unused by the up blocks (unsupported "
                         "layers_per_block layout)", u->dir, n_skip);

    /* Attention modules and attn2 layers in diffusers order: down, up, mid. */
    int n_mod = 0, n_x = 0;
    unet_block *all[3 * UNET_MAX_BLOCKS + 1];
    int na = 0;
    for (int i = 0; i < n; i++) all[na++] = &u->down[i];
    for (int i = 0; i < n; i++) all[na++] = &u->up[i];
    if (c->has_mid) all[na++] = &u->mid;
    for (int i = 0; i < na; i++)
        for (int j = 0; j < all[i]->n_attn; j++) {
            n_mod++;
            n_x += all[i]->attn[j].depth;
        }
    u->modules = calloc((size_t)(n_mod ? n_mod : 1), sizeof *u->modules);
    u->xattn = calloc((size_t)(n_x ? n_x : 1), sizeof *u->xattn);
    if (!u->modules || !u->xattn) return is_error_oom("attention lists");
    for (int i = 0; i < n; i++) {
        fmt_name(p, sizeof p, "down_blocks.%d", i);
        IS_TRY(add_modules(u, &u->down[i], 'd', i, p));
    }
    int n_down_mod = u->n_modules;
    for (int i = 0; i < n; i++) {
        fmt_name(p, sizeof p, "up_blocks.%d", i);
        IS_TRY(add_modules(u, &u->up[i], 'u', i, p));
    }
    int n_up_mod = u->n_modules - n_down_mod;
    if (c->has_mid) IS_TRY(add_modules(u, &u->mid, 'm', 0, "mid_block"));
    int n_mid_mod = u->n_modules - n_down_mod - n_up_mod;
    /* ComfyUI numbers the modules in forward order: down, mid, up. */
    for (int i = 0; i < u->n_modules; i++)
        u->modules[i].comfy_index = i < n_down_mod ? i : i < n_down_mod + n_up_mod ? i + n_mid_mod : i - n_up_mod;
    for (int i = 0; i < u->n_xattn; i++) u->xattn[i]->ip_scale = 1.0f; /* diffusers' default after loading */
    return NULL;
}

static void free_transformer(unet_transformer *t) {
    if (!t->blocks) return;
    for (int k = 0; k < t->depth; k++) {
        free(t->blocks[k].attn1.name);
        free(t->blocks[k].attn2.name);
    }
    free(t->blocks);
}

static void free_block(unet_block *b) {
    if (b->attn)
        for (int j = 0; j < b->n_attn; j++) free_transformer(&b->attn[j]);
    free(b->attn);
    free(b->resnets);
    memset(b, 0, sizeof *b);
}

void unet_free_weights(is_unet *u) {
    for (int i = 0; i < UNET_MAX_BLOCKS; i++) {
        free_block(&u->down[i]);
        free_block(&u->up[i]);
    }
    free_block(&u->mid);
    if (u->modules)
        for (int i = 0; i < u->n_modules; i++) free(u->modules[i].name);
    free(u->modules);
    free(u->xattn);
    u->modules = NULL;
    u->xattn = NULL;
    u->n_modules = u->n_xattn = 0;
}
