/* ControlNet sizes, precision, and whether its residuals fit a UNet. */
#include <stdarg.h>
#include <stdio.h>

#include "controlnet/controlnet_internal.h"

is_error *is_controlnet_set_precision(is_controlnet *c, is_precision p) {
    if (!c) return is_errorf(IS_E_ARGUMENT, "is_controlnet_set_precision: NULL ControlNet");
    /* The UNet's packing takes every matrix and convolution of the file: the conditioning embedding and the
     * zero convolutions too. */
    return is_unet_set_precision(c->net, p);
}

is_precision is_controlnet_precision(const is_controlnet *c) { return c ? is_unet_precision(c->net) : IS_PRECISION_F32; }

int is_controlnet_num_down_residuals(const is_controlnet *c) { return c ? c->n_down : 0; }

int is_controlnet_conditioning_channels(const is_controlnet *c) { return c ? c->cond_channels : 0; }

int is_controlnet_image_scale(const is_controlnet *c) { return c ? 1 << (CN_EMBED_LEVELS - 1) : 0; }

static int latent_ok(int h, int w) { return h >= 1 && w >= 1 && h <= 16384 && w <= 16384; }

int is_controlnet_residual_shape(const is_controlnet *c, int k, int h, int w, int64_t shape[3]) {
    if (!c || !shape || k < 0 || k > c->n_down || !latent_ok(h, w)) return -1;
    unet_plan p;
    unet_make_plan(c->net, h, w, &p);
    const unet_skip_slot *s = &p.slot[k < c->n_down ? k : c->n_down - 1]; /* mid: the last skip's size */
    shape[0] = k < c->n_down ? s->c : c->net->mid.cout;
    shape[1] = s->h;
    shape[2] = s->w;
    return 0;
}

int64_t is_controlnet_down_floats(const is_controlnet *c, int h, int w) {
    if (!c || !latent_ok(h, w)) return 0;
    unet_plan p;
    unet_make_plan(c->net, h, w, &p);
    return (int64_t)p.skips;
}

static is_error *mismatch(const is_controlnet *c, const is_unet *u, const char *field, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static is_error *mismatch(const is_controlnet *c, const is_unet *u, const char *field, const char *fmt, ...) {
    char detail[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(detail, sizeof detail, fmt, ap);
    va_end(ap);
    return is_errorf(IS_E_SHAPE, "the ControlNet %s does not fit the UNet %s: %s: %s", c->net->dir, u->dir, field,
                     detail);
}

/* Skip shapes at an odd latent size, where downsample_padding and the downsamplers' places show. */
static is_error *compare_skips(const is_controlnet *c, const is_unet *u, unet_plan *a, unet_plan *b) {
    const int h = 125, w = 127;
    unet_make_plan(c->net, h, w, a);
    unet_make_plan(u, h, w, b);
    if (a->n_skips != b->n_skips)
        return mismatch(c, u, "block_out_channels / layers_per_block", "the ControlNet gives %d down residuals, the "
                        "UNet has %d skip connections", a->n_skips, b->n_skips);
    for (int k = 0; k < a->n_skips; k++)
        if (a->slot[k].c != b->slot[k].c)
            return mismatch(c, u, "block_out_channels", "down residual %d has %lld channels, the UNet's skip "
                            "connection %d has %lld", k, (long long)a->slot[k].c, k, (long long)b->slot[k].c);
    if (c->net->cfg.downsample_padding != u->cfg.downsample_padding)
        return mismatch(c, u, "downsample_padding", "%d in the ControlNet, %d in the UNet",
                        c->net->cfg.downsample_padding, u->cfg.downsample_padding);
    for (int k = 0; k < a->n_skips; k++)
        if (a->slot[k].h != b->slot[k].h || a->slot[k].w != b->slot[k].w)
            return mismatch(c, u, "down_block_types / layers_per_block", "down residual %d is %lldx%lld for a %dx%d "
                            "latent, the UNet's skip connection %d is %lldx%lld", k, (long long)a->slot[k].h,
                            (long long)a->slot[k].w, h, w, k, (long long)b->slot[k].h, (long long)b->slot[k].w);
    return NULL;
}

is_error *is_controlnet_check_unet(const is_controlnet *c, const is_unet *u) {
    if (!c || !u) return is_errorf(IS_E_ARGUMENT, "is_controlnet_check_unet: NULL argument");
    const unet_config *a = &c->net->cfg, *b = &u->cfg;
    /* The ControlNet sees the latents themselves: an inpainting UNet takes 9 channels in but 4 are latents. */
    if (a->in_channels != b->out_channels)
        return mismatch(c, u, "in_channels", "the ControlNet takes %d latent channels, the UNet's latents have %d "
                        "(its out_channels)", a->in_channels, b->out_channels);
    unet_plan pa, pb;
    IS_TRY(compare_skips(c, u, &pa, &pb));
    if (!b->has_mid) return mismatch(c, u, "mid_block_type", "the UNet has no mid block to add the mid residual to");
    if (c->net->mid.cout != u->mid.cout)
        return mismatch(c, u, "block_out_channels", "the mid residual has %d channels, the UNet's mid block %d",
                        c->net->mid.cout, u->mid.cout);
    if (a->cross_attention_dim != b->cross_attention_dim)
        return mismatch(c, u, "cross_attention_dim", "%d in the ControlNet, %d in the UNet (the same text embeddings "
                        "go to both)", a->cross_attention_dim, b->cross_attention_dim);
    if (a->has_text_time != b->has_text_time)
        return mismatch(c, u, "addition_embed_type", "text_time in %s only", a->has_text_time ? "the ControlNet" : "the UNet");
    if (is_unet_pooled_dim(c->net) != is_unet_pooled_dim(u) || is_unet_time_ids_count(c->net) != is_unet_time_ids_count(u))
        return mismatch(c, u, "projection_class_embeddings_input_dim", "the ControlNet takes a %d-dim pooled text "
                        "embedding and %d time ids, the UNet %d and %d", is_unet_pooled_dim(c->net),
                        is_unet_time_ids_count(c->net), is_unet_pooled_dim(u), is_unet_time_ids_count(u));
    return NULL;
}
