/* The stages the UNet forward and the ControlNet forward share (ControlNetModel is the UNet's down half
 * with its own weights): input checks, embeddings, conv_in, the down path into the skip slots, the mid
 * block. All batch items at once, activations in u->ws as planned by unet_workspace_ensure. */
#include <stdio.h>
#include <string.h>

#include "kernels/kernels.h"
#include "unet/unet_internal.h"

is_error *unet_check_input(const is_unet *u, const is_unet_input *in, const char *fn) {
    if (in->batch < 1 || in->batch > 4096 || in->height < 1 || in->width < 1 || in->height > 16384 ||
        in->width > 16384 || (int64_t)in->height * in->width > (int64_t)1 << 24)
        return is_errorf(IS_E_ARGUMENT, "%s: invalid batch %d / latent size %dx%d", fn, in->batch, in->height,
                         in->width);
    if (in->seq_len < 1 || in->seq_len > 1 << 20) return is_errorf(IS_E_ARGUMENT, "%s: invalid seq_len %d", fn, in->seq_len);
    if (!in->sample || !in->encoder_hidden_states)
        return is_errorf(IS_E_ARGUMENT, "%s: sample and encoder_hidden_states are required", fn);
    if (u->cfg.has_text_time && (!in->text_embeds || !in->time_ids))
        return is_errorf(IS_E_ARGUMENT, "%s: this model (addition_embed_type text_time) needs text_embeds "
                         "[batch, %d] and time_ids [batch, 6]", fn, is_unet_pooled_dim(u));
    if (in->ip_tokens && !u->has_ip)
        return is_errorf(IS_E_ARGUMENT, "%s: ip_tokens given but no IP-Adapter is loaded", fn);
    return NULL;
}

void unet_hook_map(const is_unet_input *in, const char *name, const float *x, int64_t C, int64_t H, int64_t W) {
    if (!in->hook) return;
    int64_t shape[3] = {C, H, W};
    for (int b = 0; b < in->batch; b++) in->hook(in->hook_user, name, b, x + (size_t)(b * C * H * W), 3, shape);
}

float *unet_skip(const is_unet *u, int k) { return u->ws.skips + (size_t)u->ws.batch * u->ws.plan.slot[k].off; }

void unet_embed(is_unet *u, const is_unet_input *in) {
    unet_workspace *ws = &u->ws;
    const int64_t n = (int64_t)in->batch * u->cfg.time_embed_dim;
    unet_time_embed(u, in, ws->temb);
    memcpy(ws->temb_act, ws->temb, (size_t)n * sizeof(float));
    is_k_silu(ws->temb_act, n);
}

void unet_conv_in(is_unet *u, const is_unet_input *in) {
    unet_workspace *ws = &u->ws;
    const unet_config *c = &u->cfg;
    const int64_t C0 = c->block_out[0], H = in->height, W = in->width;
    float *out = unet_skip(u, 0);
    for (int b = 0; b < in->batch; b++) {
        const float *x = in->sample + (size_t)(b * c->in_channels * H * W);
        if (c->center_input_sample) {
            for (int64_t i = 0; i < c->in_channels * H * W; i++) ws->tmp2[i] = 2.0f * x[i] - 1.0f;
            x = ws->tmp2;
        }
        is_dnn_conv2d(u->dnn, out + (size_t)(b * C0 * H * W), x, c->in_channels, H, W, u->conv_in.w, u->conv_in.b, 1,
                      (c->conv_in_kernel - 1) / 2);
    }
    unet_hook_map(in, "conv_in", out, C0, H, W);
}

/* Resnet over all batch items: x [B, cin, HW] -> y [B, cout, HW]. */
static void resnet_all(is_unet *u, const unet_resnet *r, const float *x, float *y, int B, int64_t H, int64_t W) {
    unet_workspace *ws = &u->ws;
    is_dnn_linear(u->dnn, ws->temb_proj, ws->temb_act, B, r->temb_proj.w, r->temb_proj.b);
    for (int b = 0; b < B; b++)
        unet_resnet_forward(u, r, x + (size_t)(b * r->cin * H * W), y + (size_t)(b * r->cout * H * W), H, W,
                            ws->temb_proj + (size_t)b * r->cout, ws->tmp);
}

float *unet_down_path(is_unet *u, const is_unet_input *in, int64_t *Hp, int64_t *Wp) {
    unet_workspace *ws = &u->ws;
    const int B = in->batch;
    int64_t H = in->height, W = in->width;
    int n_skip = 1;
    float *cur = unet_skip(u, 0);
    char name[32];
    for (int i = 0; i < u->cfg.n_blocks; i++) {
        const unet_block *blk = &u->down[i];
        for (int j = 0; j < blk->n_resnets; j++) {
            float *next = unet_skip(u, n_skip++);
            resnet_all(u, &blk->resnets[j], cur, next, B, H, W);
            if (blk->n_attn) unet_transformer_forward(u, &blk->attn[j], next, B, H * W, in);
            cur = next;
        }
        if (blk->has_sampler) {
            const unet_skip_slot *s = &ws->plan.slot[n_skip];
            float *next = unet_skip(u, n_skip++);
            for (int b = 0; b < B; b++)
                unet_downsample(u, &blk->sampler, blk->cout, cur + (size_t)(b * blk->cout * H * W),
                                next + (size_t)(b * s->c * s->h * s->w), H, W, ws->tmp);
            H = s->h;
            W = s->w;
            cur = next;
        }
        snprintf(name, sizeof name, "down_blocks.%d", i);
        unet_hook_map(in, name, cur, blk->cout, H, W);
    }
    *Hp = H;
    *Wp = W;
    return cur;
}

float *unet_mid_block(is_unet *u, const is_unet_input *in, const float *x, int64_t H, int64_t W) {
    unet_workspace *ws = &u->ws;
    const int B = in->batch;
    resnet_all(u, &u->mid.resnets[0], x, ws->a, B, H, W);
    unet_transformer_forward(u, &u->mid.attn[0], ws->a, B, H * W, in);
    resnet_all(u, &u->mid.resnets[1], ws->a, ws->b, B, H, W);
    unet_hook_map(in, "mid_block", ws->b, u->mid.cout, H, W);
    return ws->b;
}
