/* One UNet2DConditionModel evaluation (diffusers forward): embeddings, conv_in, down blocks
 * (every output kept as a skip connection), mid block, up blocks (concat skip, resnet, attention,
 * upsampler), conv_norm_out -> SiLU -> conv_out.
 *
 * Memory: activations live in a workspace kept in the is_unet, planned once per (batch, latent size,
 * text length, IP tokens) by walking the same architecture the forward walks; in steady state the
 * forward allocates nothing itself. The down path writes straight into skip-connection slots, so
 * skips are never copied; the up path ping-pongs between two maps. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/kernels.h"
#include "unet/unet_internal.h"

#define MAX_SKIPS 160

typedef struct {
    int64_t c, h, w;
    size_t off; /* per-item offset: the slot starts at ws->skips + batch*off, item b at + b*c*h*w */
} skip_slot;

typedef struct {
    size_t map, skips, tok, qkv, ff, inner, cout;
    int n_skips;
    skip_slot slot[MAX_SKIPS];
} plan;

static size_t zmax(size_t a, size_t b) { return a > b ? a : b; }

static void plan_transformer(const unet_transformer *t, size_t HW, plan *p) {
    p->tok = zmax(p->tok, HW * (size_t)(t->channels > t->inner ? t->channels : t->inner));
    p->qkv = zmax(p->qkv, HW * (size_t)t->inner);
    p->inner = zmax(p->inner, (size_t)t->inner);
    for (int k = 0; k < t->depth; k++) p->ff = zmax(p->ff, HW * (size_t)t->blocks[k].ff_inner);
}

static void plan_block(const unet_block *b, size_t HW, plan *p) {
    for (int j = 0; j < b->n_resnets; j++) {
        p->map = zmax(p->map, zmax((size_t)b->resnets[j].cin, (size_t)b->resnets[j].cout) * HW);
        p->cout = zmax(p->cout, (size_t)b->resnets[j].cout);
    }
    for (int j = 0; j < b->n_attn; j++) plan_transformer(&b->attn[j], HW, p);
}

static void push_skip(plan *p, int64_t c, int64_t h, int64_t w) {
    skip_slot *s = &p->slot[p->n_skips++];
    s->c = c, s->h = h, s->w = w;
    s->off = p->skips;
    p->skips += (size_t)(c * h * w);
}

/* Walk the architecture for an H x W latent; the skip slots come out in the order the forward fills them. */
static void make_plan(const is_unet *u, int64_t H, int64_t W, plan *p) {
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

static is_error *ensure_workspace(is_unet *u, const is_unet_input *in, plan *p) {
    unet_workspace *ws = &u->ws;
    int ntok = is_unet_ip_num_tokens(u); /* sized for the adapter whether or not this call passes tokens */
    make_plan(u, in->height, in->width, p);
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
            return is_errorf(IS_E_NOMEM, "UNet activations for batch %d, latent %dx%d: out of memory (%.1f MiB buffer)",
                             in->batch, in->height, in->width, (double)want[i].n * sizeof(float) / 1048576.0);
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

static void hook_map(const is_unet_input *in, const char *name, const float *x, int64_t C, int64_t H, int64_t W) {
    if (!in->hook) return;
    int64_t shape[3] = {C, H, W};
    for (int b = 0; b < in->batch; b++) in->hook(in->hook_user, name, b, x + (size_t)(b * C * H * W), 3, shape);
}

/* Resnet over all batch items: x [B, cin, HW] -> y [B, cout, HW]. */
static void resnet_all(is_unet *u, const unet_resnet *r, const float *x, float *y, int B, int64_t H, int64_t W) {
    unet_workspace *ws = &u->ws;
    is_dnn_linear(u->dnn, ws->temb_proj, ws->temb_act, B, r->temb_proj.w, r->temb_proj.b);
    for (int b = 0; b < B; b++)
        unet_resnet_forward(u, r, x + (size_t)(b * r->cin * H * W), y + (size_t)(b * r->cout * H * W), H, W,
                            ws->temb_proj + (size_t)b * r->cout, ws->tmp);
}

static is_error *check_input(const is_unet *u, const is_unet_input *in, const float *noise_pred) {
    if (!u || !in || !noise_pred) return is_errorf(IS_E_ARGUMENT, "is_unet_forward: NULL argument");
    if (in->batch < 1 || in->batch > 4096 || in->height < 1 || in->width < 1 || in->height > 16384 ||
        in->width > 16384 || (int64_t)in->height * in->width > (int64_t)1 << 24)
        return is_errorf(IS_E_ARGUMENT, "is_unet_forward: invalid batch %d / latent size %dx%d", in->batch, in->height,
                         in->width);
    if (in->seq_len < 1 || in->seq_len > 1 << 20)
        return is_errorf(IS_E_ARGUMENT, "is_unet_forward: invalid seq_len %d", in->seq_len);
    if (!in->sample || !in->encoder_hidden_states)
        return is_errorf(IS_E_ARGUMENT, "is_unet_forward: sample and encoder_hidden_states are required");
    if (u->cfg.has_text_time && (!in->text_embeds || !in->time_ids))
        return is_errorf(IS_E_ARGUMENT, "is_unet_forward: this UNet (addition_embed_type text_time) needs text_embeds "
                         "[batch, %d] and time_ids [batch, 6]", is_unet_pooled_dim(u));
    if (in->ip_tokens && !u->has_ip)
        return is_errorf(IS_E_ARGUMENT, "is_unet_forward: ip_tokens given but no IP-Adapter is loaded");
    return NULL;
}

void is_unet_input_init(is_unet_input *in) { memset(in, 0, sizeof *in); }

is_error *is_unet_forward(is_unet *u, const is_unet_input *in, float *noise_pred) {
    IS_TRY(check_input(u, in, noise_pred));
    plan p;
    IS_TRY(ensure_workspace(u, in, &p));
    unet_workspace *ws = &u->ws;
    const unet_config *c = &u->cfg;
    const int B = in->batch, C0 = c->block_out[0];
    int64_t H = in->height, W = in->width;

    /* Embeddings; the resnets all take silu(temb). */
    unet_time_embed(u, in, ws->temb);
    memcpy(ws->temb_act, ws->temb, (size_t)B * c->time_embed_dim * sizeof(float));
    is_k_silu(ws->temb_act, (int64_t)B * c->time_embed_dim);

    /* conv_in -> skip slot 0 */
    int n_skip = 0;
    float *cur = ws->skips + (size_t)B * p.slot[n_skip++].off;
    for (int b = 0; b < B; b++) {
        const float *x = in->sample + (size_t)(b * c->in_channels * H * W);
        if (c->center_input_sample) {
            for (int64_t i = 0; i < c->in_channels * H * W; i++) ws->tmp2[i] = 2.0f * x[i] - 1.0f;
            x = ws->tmp2;
        }
        is_dnn_conv2d(u->dnn, cur + (size_t)(b * C0 * H * W), x, c->in_channels, H, W, u->conv_in.w, u->conv_in.b, 1,
                    (c->conv_in_kernel - 1) / 2);
    }
    hook_map(in, "conv_in", cur, C0, H, W);

    /* Down path: every resnet/attention output and every downsampler output is a skip slot. */
    char name[32];
    for (int i = 0; i < c->n_blocks; i++) {
        const unet_block *blk = &u->down[i];
        for (int j = 0; j < blk->n_resnets; j++) {
            float *next = ws->skips + (size_t)B * p.slot[n_skip++].off;
            resnet_all(u, &blk->resnets[j], cur, next, B, H, W);
            if (blk->n_attn) unet_transformer_forward(u, &blk->attn[j], next, B, H * W, in);
            cur = next;
        }
        if (blk->has_sampler) {
            const skip_slot *s = &p.slot[n_skip++];
            float *next = ws->skips + (size_t)B * s->off;
            for (int b = 0; b < B; b++)
                unet_downsample(u, &blk->sampler, blk->cout, cur + (size_t)(b * blk->cout * H * W),
                                next + (size_t)(b * s->c * s->h * s->w), H, W, ws->tmp);
            H = s->h;
            W = s->w;
            cur = next;
        }
        snprintf(name, sizeof name, "down_blocks.%d", i);
        hook_map(in, name, cur, blk->cout, H, W);
    }
    int64_t C = c->block_out[c->n_blocks - 1];

    if (c->has_mid) {
        resnet_all(u, &u->mid.resnets[0], cur, ws->a, B, H, W);
        unet_transformer_forward(u, &u->mid.attn[0], ws->a, B, H * W, in);
        resnet_all(u, &u->mid.resnets[1], ws->a, ws->b, B, H, W);
        cur = ws->b;
        hook_map(in, "mid_block", cur, C, H, W);
    }

    /* Up path: concat(hidden, skip) -> resnet -> attention; ping-pong between ws->a and ws->b. */
    for (int i = 0; i < c->n_blocks; i++) {
        const unet_block *blk = &u->up[i];
        for (int j = 0; j < blk->n_resnets; j++) {
            const unet_resnet *r = &blk->resnets[j];
            const skip_slot *s = &p.slot[--n_skip];
            const float *skip = ws->skips + (size_t)B * s->off;
            float *next = cur == ws->a ? ws->b : ws->a;
            const int64_t HW = H * W;
            is_dnn_linear(u->dnn, ws->temb_proj, ws->temb_act, B, r->temb_proj.w, r->temb_proj.b);
            for (int b = 0; b < B; b++) {
                memcpy(ws->tmp2, cur + (size_t)(b * C * HW), (size_t)(C * HW) * sizeof(float));
                memcpy(ws->tmp2 + C * HW, skip + (size_t)(b * s->c * HW), (size_t)(s->c * HW) * sizeof(float));
                unet_resnet_forward(u, r, ws->tmp2, next + (size_t)(b * r->cout * HW), H, W,
                                    ws->temb_proj + (size_t)b * r->cout, ws->tmp);
            }
            if (blk->n_attn) unet_transformer_forward(u, &blk->attn[j], next, B, HW, in);
            cur = next;
            C = r->cout;
        }
        if (blk->has_sampler && n_skip > 0) {
            const skip_slot *s = &p.slot[n_skip - 1]; /* upsample to the size of the next skip */
            float *next = cur == ws->a ? ws->b : ws->a;
            for (int b = 0; b < B; b++)
                unet_upsample(u, &blk->sampler, C, cur + (size_t)(b * C * H * W), next + (size_t)(b * C * s->h * s->w), H,
                              W, s->h, s->w, ws->tmp);
            H = s->h;
            W = s->w;
            cur = next;
        }
        snprintf(name, sizeof name, "up_blocks.%d", i);
        hook_map(in, name, cur, C, H, W);
    }

    /* conv_norm_out -> SiLU -> conv_out */
    for (int b = 0; b < B; b++) {
        is_k_group_norm(ws->tmp, cur + (size_t)(b * C * H * W), C, H * W, c->norm_groups, c->norm_eps, u->norm_out.w,
                        u->norm_out.b, 1);
        is_dnn_conv2d(u->dnn, noise_pred + (size_t)(b * c->out_channels * H * W), ws->tmp, C, H, W, u->conv_out.w, u->conv_out.b,
                    1, (c->conv_out_kernel - 1) / 2);
    }
    hook_map(in, "noise_pred", noise_pred, c->out_channels, H, W);
    return NULL;
}
