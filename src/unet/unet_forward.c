/* One UNet2DConditionModel evaluation (diffusers forward): embeddings, conv_in, down blocks
 * (every output kept as a skip connection), mid block, ControlNet residuals, up blocks (concat skip, resnet,
 * attention, upsampler), conv_norm_out -> SiLU -> conv_out. The stages up to the mid block are shared with
 * the ControlNet (unet_path.c); the workspace is planned in unet_workspace.c. */
#include <stdio.h>
#include <string.h>

#include "kernels/kernels.h"
#include "unet/unet_internal.h"

static is_error *check_input(const is_unet *u, const is_unet_input *in, const float *noise_pred) {
    if (!u || !in || !noise_pred) return is_errorf(IS_E_ARGUMENT, "is_unet_forward: NULL argument");
    IS_TRY(unet_check_input(u, in, "is_unet_forward"));
    if (!in->down_residuals != !in->mid_residual)
        return is_errorf(IS_E_ARGUMENT, "is_unet_forward: down_residuals and mid_residual go together (a ControlNet "
                         "gives both)");
    if (in->down_residuals && !u->cfg.has_mid)
        return is_errorf(IS_E_ARGUMENT, "is_unet_forward: ControlNet residuals given but this UNet has no mid block");
    return NULL;
}

void is_unet_input_init(is_unet_input *in) { memset(in, 0, sizeof *in); }

is_error *is_unet_forward(is_unet *u, const is_unet_input *in, float *noise_pred) {
    IS_TRY(check_input(u, in, noise_pred));
    IS_TRY(unet_workspace_ensure(u, in));
    unet_workspace *ws = &u->ws;
    const unet_plan *p = &ws->plan;
    const unet_config *c = &u->cfg;
    const int B = in->batch;
    int64_t H, W;

    unet_embed(u, in);
    unet_conv_in(u, in);
    float *cur = unet_down_path(u, in, &H, &W);
    int64_t C = c->block_out[c->n_blocks - 1];
    if (c->has_mid) cur = unet_mid_block(u, in, cur, H, W);

    /* ControlNet: diffusers adds the residuals to new tensors, so the mid block above saw the plain last
     * down output; the skip slots lie one after the other exactly as the residuals do. */
    if (in->down_residuals) {
        is_k_add(ws->skips, in->down_residuals, (int64_t)((size_t)B * p->skips));
        is_k_add(cur, in->mid_residual, B * C * H * W);
    }

    /* Up path: concat(hidden, skip) -> resnet -> attention; ping-pong between ws->a and ws->b. */
    int n_skip = p->n_skips;
    char name[32];
    for (int i = 0; i < c->n_blocks; i++) {
        const unet_block *blk = &u->up[i];
        for (int j = 0; j < blk->n_resnets; j++) {
            const unet_resnet *r = &blk->resnets[j];
            const unet_skip_slot *s = &p->slot[--n_skip];
            const float *skip = unet_skip(u, n_skip);
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
            const unet_skip_slot *s = &p->slot[n_skip - 1]; /* upsample to the size of the next skip */
            float *next = cur == ws->a ? ws->b : ws->a;
            for (int b = 0; b < B; b++)
                unet_upsample(u, &blk->sampler, C, cur + (size_t)(b * C * H * W), next + (size_t)(b * C * s->h * s->w), H,
                              W, s->h, s->w, ws->tmp);
            H = s->h;
            W = s->w;
            cur = next;
        }
        snprintf(name, sizeof name, "up_blocks.%d", i);
        unet_hook_map(in, name, cur, C, H, W);
    }

    /* conv_norm_out -> SiLU -> conv_out */
    for (int b = 0; b < B; b++) {
        is_k_group_norm(ws->tmp, cur + (size_t)(b * C * H * W), C, H * W, c->norm_groups, c->norm_eps, u->norm_out.w,
                        u->norm_out.b, 1);
        is_dnn_conv2d(u->dnn, noise_pred + (size_t)(b * c->out_channels * H * W), ws->tmp, C, H, W, u->conv_out.w,
                      u->conv_out.b, 1, (c->conv_out_kernel - 1) / 2);
    }
    unet_hook_map(in, "noise_pred", noise_pred, c->out_channels, H, W);
    return NULL;
}
