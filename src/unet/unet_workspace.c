/* The UNet's activation workspace: planned once per (batch, latent size, text length, IP tokens) by walking
 * the same architecture the forward walks, so that in steady state a forward allocates nothing. The down
 * path writes straight into skip-connection slots (never copied); the up path ping-pongs between two maps. */
#include <stdlib.h>
#include <string.h>

#include "unet/unet_internal.h"

static size_t zmax(size_t a, size_t b) { return a > b ? a : b; }

static void plan_transformer(const unet_transformer *t, size_t HW, unet_plan *p) {
    p->tok = zmax(p->tok, HW * (size_t)(t->channels > t->inner ? t->channels : t->inner));
    p->qkv = zmax(p->qkv, HW * (size_t)t->inner);
    p->inner = zmax(p->inner, (size_t)t->inner);
    for (int k = 0; k < t->depth; k++) p->ff = zmax(p->ff, HW * (size_t)t->blocks[k].ff_inner);
}

static void plan_block(const unet_block *b, size_t HW, unet_plan *p) {
    for (int j = 0; j < b->n_resnets; j++) {
        p->map = zmax(p->map, zmax((size_t)b->resnets[j].cin, (size_t)b->resnets[j].cout) * HW);
        p->cout = zmax(p->cout, (size_t)b->resnets[j].cout);
    }
    for (int j = 0; j < b->n_attn; j++) plan_transformer(&b->attn[j], HW, p);
}

static void push_skip(unet_plan *p, int64_t c, int64_t h, int64_t w) {
    unet_skip_slot *s = &p->slot[p->n_skips++];
    s->c = c, s->h = h, s->w = w;
    s->off = p->skips;
    p->skips += (size_t)(c * h * w);
}

/* Walk the architecture for an H x W latent; the skip slots come out in the order the forward fills them.
 * A down-path-only model has no up blocks (they walk as empty). */
void unet_make_plan(const is_unet *u, int64_t H, int64_t W, unet_plan *p) {
    const unet_config *c = &u->cfg;
    memset(p, 0, sizeof *p);
    p->map = (size_t)((c->in_channels > c->block_out[0] ? c->in_channels : c->block_out[0]) * H * W);
    p->map = zmax(p->map, (size_t)(c->out_channels * H * W));
    push_skip(p, c->block_out[0], H, W);
    for (int i = 0; i < c->n_blocks; i++) {
        const unet_block *b = &u->down[i];
        plan_block(b, (size_t)(H * W), p);
        for (int j = 0; j < b->n_resnets; j++) push_skip(p, b->cout, H, W);
        if (b->has_sampler) {
            p->map = zmax(p->map, (size_t)(b->cout * (H + 1) * (W + 1)));
            H = unet_down_size(u, H);
            W = unet_down_size(u, W);
            push_skip(p, b->cout, H, W);
        }
    }
    if (c->has_mid) plan_block(&u->mid, (size_t)(H * W), p);
    int top = p->n_skips;
    for (int i = 0; i < c->n_blocks; i++) {
        const unet_block *b = &u->up[i];
        /* resnet inputs are hidden + skip concatenated: covered by resnets[j].cin */
        plan_block(b, (size_t)(H * W), p);
        top -= b->n_resnets;
        if (b->has_sampler && top > 0) {
            H = p->slot[top - 1].h;
            W = p->slot[top - 1].w;
            p->map = zmax(p->map, (size_t)b->cout * (size_t)(H * W));
        }
    }
}

void unet_workspace_free(unet_workspace *ws) {
    float **bufs[] = {&ws->a, &ws->b, &ws->skips, &ws->tmp, &ws->tmp2, &ws->t_x, &ws->t_n, &ws->q, &ws->k, &ws->v,
                      &ws->o, &ws->f, &ws->g, &ws->ck, &ws->cv, &ws->ik, &ws->iv, &ws->temb, &ws->temb_act,
                      &ws->temb_proj, &ws->emb_tmp};
    for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++) {
        free(*bufs[i]);
        *bufs[i] = NULL;
    }
    ws->valid = 0;
}

is_error *unet_workspace_ensure(is_unet *u, const is_unet_input *in) {
    unet_workspace *ws = &u->ws;
    unet_plan *p = &ws->plan;
    int ntok = is_unet_ip_num_tokens(u); /* sized for the adapter whether or not this call passes tokens */
    unet_make_plan(u, in->height, in->width, p);
    if (ws->valid && ws->batch == in->batch && ws->height == in->height && ws->width == in->width &&
        ws->seq_len == in->seq_len && ws->ip_tokens == ntok)
        return NULL;
    unet_workspace_free(ws);
    const unet_config *c = &u->cfg;
    const size_t B = (size_t)in->batch, TE = (size_t)c->time_embed_dim;
    const size_t emb = (size_t)c->block_out[0] + TE + (size_t)c->add_in_dim + 6 * (size_t)c->add_time_dim;
    struct {
        float **buf;
        size_t n;
    } want[] = {
        {&ws->a, B * p->map},           {&ws->b, B * p->map},          {&ws->skips, B * p->skips},
        {&ws->tmp, p->map},             {&ws->tmp2, p->map},           {&ws->t_x, B * p->tok},
        {&ws->t_n, B * p->tok},         {&ws->q, B * p->qkv},          {&ws->k, B * p->qkv},
        {&ws->v, B * p->qkv},           {&ws->o, B * p->qkv},          {&ws->f, 2 * B * p->ff},
        {&ws->g, B * p->ff},            {&ws->ck, B * (size_t)in->seq_len * p->inner},
        {&ws->cv, B * (size_t)in->seq_len * p->inner},                 {&ws->ik, B * (size_t)ntok * p->inner},
        {&ws->iv, B * (size_t)ntok * p->inner},                        {&ws->temb, B * TE},
        {&ws->temb_act, B * TE},        {&ws->temb_proj, B * p->cout}, {&ws->emb_tmp, B * emb},
    };
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        *want[i].buf = malloc((want[i].n ? want[i].n : 1) * sizeof(float));
        if (!*want[i].buf) {
            unet_workspace_free(ws);
            return is_errorf(IS_E_NOMEM, "%s activations for batch %d, latent %dx%d: out of memory (%.1f MiB buffer)",
                             c->down_only ? "ControlNet" : "UNet", in->batch, in->height, in->width,
                             (double)want[i].n * sizeof(float) / 1048576.0);
        }
    }
    ws->batch = in->batch;
    ws->height = in->height;
    ws->width = in->width;
    ws->seq_len = in->seq_len;
    ws->ip_tokens = ntok;
    ws->ff = p->ff; /* per item: ws->f holds 2 * batch * ff floats */
    ws->valid = 1;
    return NULL;
}
