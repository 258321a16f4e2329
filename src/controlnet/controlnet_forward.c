/* ControlNetModel.forward (diffusers 0.30.3): time and text_time embeddings, conv_in(sample) +
 * controlnet_cond_embedding(cond), the UNet's down blocks and mid block (shared code, the ControlNet's
 * weights, text tokens only), one 1x1 convolution per skip state and on the mid output, then the scaling. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "controlnet/controlnet_internal.h"
#include "kernels/kernels.h"

void is_controlnet_input_init(is_controlnet_input *in) {
    memset(in, 0, sizeof *in);
    in->conditioning_scale = 1.0f;
}

/* The UNet stages also report "t_emb" and "time_ids_emb", which are not among the ControlNet's hook names. */
typedef struct {
    is_tensor_hook hook;
    void *user;
} hook_relay;

static void relay(void *user, const char *name, int b, const float *data, int ndim, const int64_t *shape) {
    const hook_relay *r = user;
    if (strcmp(name, "t_emb") && strcmp(name, "time_ids_emb")) r->hook(r->user, name, b, data, ndim, shape);
}

/* Per-item maps for the conditioning embedding at an h x w latent: the largest stage output. */
static is_error *ensure_cond_maps(is_controlnet *c, int h, int w) {
    if (c->cond_a && c->cond_h == h && c->cond_w == w) return NULL;
    int64_t H = 8 * (int64_t)h, W = 8 * (int64_t)w;
    int64_t need = c->embed[0] * H * W;
    for (int i = 0; i + 1 < CN_EMBED_LEVELS; i++) {
        need = need > c->embed[i] * H * W ? need : c->embed[i] * H * W;
        H = is_conv_out_size(H, 3, 2, 1);
        W = is_conv_out_size(W, 3, 2, 1);
        need = need > c->embed[i + 1] * H * W ? need : c->embed[i + 1] * H * W;
    }
    int64_t out = (int64_t)c->net->cfg.block_out[0] * h * w;
    need = need > out ? need : out;
    free(c->cond_a);
    free(c->cond_b);
    c->cond_a = malloc((size_t)need * sizeof(float));
    c->cond_b = malloc((size_t)need * sizeof(float));
    c->cond_h = h, c->cond_w = w;
    if (!c->cond_a || !c->cond_b) {
        is_controlnet_release_workspace(c);
        return is_errorf(IS_E_NOMEM, "ControlNet conditioning embedding for a %dx%d latent: out of memory (2 x %.1f MiB)",
                         h, w, (double)need * sizeof(float) / 1048576.0);
    }
    return NULL;
}

/* ControlNetConditioningEmbedding on one item: conv3x3 -> SiLU -> [conv3x3 -> SiLU -> conv3x3 stride 2 ->
 * SiLU] per level -> conv_out; x [cond_channels, 8h, 8w] -> [C0, h, w], returned (cond_a or cond_b). */
static float *cond_embedding(is_controlnet *c, const float *x, int h, int w) {
    is_dnn *dnn = c->net->dnn;
    float *a = c->cond_a, *b = c->cond_b;
    int64_t H = 8 * (int64_t)h, W = 8 * (int64_t)w;
    is_dnn_conv2d(dnn, a, x, c->cond_channels, H, W, c->cond_in.w, c->cond_in.b, 1, 1);
    is_k_silu(a, c->embed[0] * H * W);
    for (int i = 0; i + 1 < CN_EMBED_LEVELS; i++) {
        is_dnn_conv2d(dnn, b, a, c->embed[i], H, W, c->cond_blocks[2 * i].w, c->cond_blocks[2 * i].b, 1, 1);
        is_k_silu(b, c->embed[i] * H * W);
        is_dnn_conv2d(dnn, a, b, c->embed[i], H, W, c->cond_blocks[2 * i + 1].w, c->cond_blocks[2 * i + 1].b, 2, 1);
        H = is_conv_out_size(H, 3, 2, 1);
        W = is_conv_out_size(W, 3, 2, 1);
        is_k_silu(a, c->embed[i + 1] * H * W);
    }
    is_dnn_conv2d(dnn, b, a, c->embed[CN_EMBED_LEVELS - 1], H, W, c->cond_out.w, c->cond_out.b, 1, 1);
    return b;
}

/* Scale of residual k of n (k == n: the mid residual). guess_mode: torch.logspace(-1, 0, n + 1)[k] in float32
 * as PyTorch's CPU kernel forms it (step in double, the upper half counted down from the end), then
 * times the scale in float32, like scales * conditioning_scale. */
static float residual_scale(int k, int n, float scale, int guess_mode) {
    if (!guess_mode) return scale;
    const int64_t steps = n + 1, half = steps / 2;
    const double step = (double)(0.0f - -1.0f) / (double)(steps - 1);
    double e = k < half ? (double)-1.0f + step * (double)k : (double)0.0f - step * (double)(steps - k - 1);
    return (float)pow(10.0, e) * scale;
}

is_error *is_controlnet_forward(is_controlnet *c, const is_controlnet_input *in, float *down, float *mid) {
    if (!c || !in || !down || !mid) return is_errorf(IS_E_ARGUMENT, "is_controlnet_forward: NULL argument");
    if (!in->cond) return is_errorf(IS_E_ARGUMENT, "is_controlnet_forward: the control image (cond) is required");
    if (!isfinite(in->conditioning_scale))
        return is_errorf(IS_E_ARGUMENT, "is_controlnet_forward: conditioning_scale must be a finite number");
    is_unet *net = c->net;
    is_unet_input ui = in->unet; /* the text tokens only: no IP branch, no residuals */
    ui.ip_tokens = NULL;
    ui.down_residuals = ui.mid_residual = NULL;
    hook_relay hr = {in->unet.hook, in->unet.hook_user};
    ui.hook = hr.hook ? relay : NULL;
    ui.hook_user = &hr;
    IS_TRY(unet_check_input(net, &ui, "is_controlnet_forward"));
    IS_TRY(unet_workspace_ensure(net, &ui));
    IS_TRY(ensure_cond_maps(c, ui.height, ui.width));
    const int B = ui.batch;
    const int64_t C0 = net->cfg.block_out[0], h = ui.height, w = ui.width, HW = h * w;

    unet_embed(net, &ui);
    unet_conv_in(net, &ui);
    float *x0 = unet_skip(net, 0);
    const int64_t cond_item = (int64_t)c->cond_channels * 64 * HW;
    for (int b = 0; b < B; b++) {
        const float *e = cond_embedding(c, in->cond + (size_t)(b * cond_item), ui.height, ui.width);
        if (ui.hook) {
            int64_t shape[3] = {C0, h, w};
            ui.hook(ui.hook_user, "cond_embedding", b, e, 3, shape);
        }
        is_k_add(x0 + (size_t)(b * C0 * HW), e, C0 * HW);
    }
    int64_t H, W;
    float *x = unet_down_path(net, &ui, &H, &W);
    const float *m = unet_mid_block(net, &ui, x, H, W);

    /* Zero convolutions, then the scale, residual by residual in the skip slots' layout. */
    const unet_plan *p = &net->ws.plan;
    for (int k = 0; k <= c->n_down; k++) {
        const int is_mid = k == c->n_down;
        const unet_skip_slot *s = &p->slot[is_mid ? k - 1 : k];
        const int64_t C = is_mid ? net->mid.cout : s->c, n = C * s->h * s->w;
        const unet_linear *zc = is_mid ? &c->zero_mid : &c->zero_down[k];
        const float *src = is_mid ? m : unet_skip(net, k);
        float *dst = is_mid ? mid : down + (size_t)B * s->off;
        for (int b = 0; b < B; b++)
            is_dnn_conv2d(net->dnn, dst + (size_t)(b * n), src + (size_t)(b * n), C, s->h, s->w, zc->w, zc->b, 1, 0);
        is_k_scale(dst, residual_scale(k, c->n_down, in->conditioning_scale, in->guess_mode), B * n);
    }
    return NULL;
}
