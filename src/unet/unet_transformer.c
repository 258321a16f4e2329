/* Transformer2DModel (continuous input) + BasicTransformerBlock, with IP-Adapter decoupled
 * cross-attention. Tokens are [batch*HW, features] with heads packed in the feature axis, so every
 * projection is one matrix product over all batch items; attention runs per batch item.
 *
 *   attn2(x) = to_out( attn(q, k_text, v_text) + scale * attn(q, k_ip, v_ip) )     (per head)
 *   q = to_q(x), k_text/v_text = to_k/to_v(encoder_hidden_states), k_ip/v_ip = to_k_ip/to_v_ip(ip_tokens)
 * The IP term is skipped entirely (no projections, no attention) where scale == 0, as diffusers'
 * IPAdapterAttnProcessor2_0 does. */
#include <string.h>

#include "kernels/kernels.h"
#include "unet/unet_internal.h"

#define UNET_FF_CHUNK_ROWS 256

/* x[B*HW, inner] += attention layer a applied to xn[B*HW, inner] (the residual; xn is overwritten).
 * ctx NULL: self-attention. */
static void attention(is_unet *u, const unet_attention *a, float *x, float *xn, int B, int64_t HW,
                      const float *ctx, int64_t n_ctx, const float *ip, int64_t n_ip) {
    unet_workspace *ws = &u->ws;
    const int64_t inner = (int64_t)a->heads * a->dim_head, M = B * HW;
    if (!ctx && is_dnn_is_packed(u->dnn, &a->qkv) &&
        !is_dnn_self_attention(u->dnn, ws->o, xn, B, HW, &a->qkv, a->heads, a->dim_head)) {
        /* bf16: q | k | v side by side in one [M, 3*inner] product, in bf16 */
        is_dnn_linear_residual(u->dnn, x, ws->o, M, a->out.w, a->out.b, NULL, xn);
        return;
    }
    float *k = ws->k, *v = ws->v;
    int64_t nk = HW;
    is_dnn_linear(u->dnn, ws->q, xn, M, a->q.w, a->q.b);
    if (ctx) {
        k = ws->ck;
        v = ws->cv;
        nk = n_ctx;
        is_dnn_linear(u->dnn, k, ctx, B * n_ctx, a->k.w, a->k.b);
        is_dnn_linear(u->dnn, v, ctx, B * n_ctx, a->v.w, a->v.b);
    } else {
        is_dnn_linear(u->dnn, k, xn, M, a->k.w, a->k.b);
        is_dnn_linear(u->dnn, v, xn, M, a->v.w, a->v.b);
    }
    for (int b = 0; b < B; b++) {
        size_t qo = (size_t)(b * HW * inner), ko = (size_t)(b * nk * inner);
        is_dnn_attention(u->dnn, ws->o + qo, inner, ws->q + qo, inner, k + ko, inner, v + ko, inner, HW, nk, a->heads,
                       a->dim_head, 0, 1.0f, 0);
    }
    if (ip && a->k_ip && a->ip_scale != 0.0f) {
        is_dnn_linear(u->dnn, ws->ik, ip, B * n_ip, a->k_ip, NULL);
        is_dnn_linear(u->dnn, ws->iv, ip, B * n_ip, a->v_ip, NULL);
        for (int b = 0; b < B; b++) {
            size_t qo = (size_t)(b * HW * inner), ko = (size_t)(b * n_ip * inner);
            is_dnn_attention(u->dnn, ws->o + qo, inner, ws->q + qo, inner, ws->ik + ko, inner, ws->iv + ko, inner, HW, n_ip,
                           a->heads, a->dim_head, 0, a->ip_scale, 1);
        }
    }
    is_dnn_linear_residual(u->dnn, x, ws->o, M, a->out.w, a->out.b, NULL, xn);
}

/* BasicTransformerBlock: pre-LayerNorm self-attention, cross-attention, GEGLU feed-forward, each residual. */
static void basic_block(is_unet *u, const unet_tblock *blk, int64_t inner, int B, int64_t HW, const is_unet_input *in) {
    unet_workspace *ws = &u->ws;
    const int64_t M = B * HW;
    float *x = ws->t_x, *xn = ws->t_n;

    is_k_layer_norm(xn, x, M, inner, blk->norm1.w, blk->norm1.b, 1e-5f);
    attention(u, &blk->attn1, x, xn, B, HW, NULL, 0, NULL, 0);

    is_k_layer_norm(xn, x, M, inner, blk->norm2.w, blk->norm2.b, 1e-5f);
    attention(u, &blk->attn2, x, xn, B, HW, in->encoder_hidden_states, in->seq_len, in->ip_tokens,
              is_unet_ip_num_tokens(u));

    is_k_layer_norm(xn, x, M, inner, blk->norm3.w, blk->norm3.b, 1e-5f);
    /* x += GEGLU(xn ff_in^T + b) ff_out^T + b; in bf16 in row chunks, so that the [rows, 2*ff] f32
     * intermediate stays in cache (0-8% faster feed-forward on Zen 5: is_bench --only micro --filter
     * feed-forward). Each chunk's product goes through its own rows of xn; ws->g holds GEGLU only in f32. */
    const int64_t chunk = is_dnn_is_packed(u->dnn, blk->ff_in.w) ? UNET_FF_CHUNK_ROWS : M;
    for (int64_t r = 0; r < M; r += chunk) {
        const int64_t m = M - r < chunk ? M - r : chunk;
        is_dnn_linear(u->dnn, ws->f, xn + r * inner, m, blk->ff_in.w, blk->ff_in.b);
        is_dnn_linear_residual(u->dnn, x + r * inner, ws->f, m, blk->ff_out.w, blk->ff_out.b, ws->g,
                               xn + r * inner);
    }
}

void unet_transformer_forward(is_unet *u, const unet_transformer *t, float *x, int batch, int64_t HW,
                              const is_unet_input *in) {
    unet_workspace *ws = &u->ws;
    const int64_t C = t->channels, M = batch * HW;
    /* GroupNorm (eps 1e-6) on the map, then [C, HW] -> tokens [HW, C] per item. */
    for (int b = 0; b < batch; b++) {
        is_k_group_norm(ws->tmp, x + (size_t)(b * C * HW), C, HW, u->cfg.norm_groups, 1e-6f, t->norm.w, t->norm.b, 0);
        is_k_transpose(ws->t_n + (size_t)(b * HW * C), ws->tmp, C, HW);
    }
    is_dnn_linear(u->dnn, ws->t_x, ws->t_n, M, t->proj_in.w, t->proj_in.b);
    for (int k = 0; k < t->depth; k++) basic_block(u, &t->blocks[k], t->inner, batch, HW, in);
    is_dnn_linear(u->dnn, ws->t_n, ws->t_x, M, t->proj_out.w, t->proj_out.b);
    /* tokens -> map, plus the residual. */
    for (int b = 0; b < batch; b++) {
        is_k_transpose(ws->tmp, ws->t_n + (size_t)(b * HW * C), HW, C);
        is_k_add(x + (size_t)(b * C * HW), ws->tmp, C * HW);
    }
}

int unet_pack_individually(const char *name) {
    return !strstr(name, ".attn1.to_q.weight") && !strstr(name, ".attn1.to_k.weight") &&
           !strstr(name, ".attn1.to_v.weight");
}

is_error *unet_pack_fused_qkv(is_unet *u) {
    if (!u->dnn) return NULL;
    unet_block *blocks[2 * UNET_MAX_BLOCKS + 1];
    int nb = 0;
    for (int i = 0; i < u->cfg.n_blocks; i++) blocks[nb++] = &u->down[i], blocks[nb++] = &u->up[i];
    if (u->cfg.has_mid) blocks[nb++] = &u->mid;
    for (int i = 0; i < nb; i++)
        for (int j = 0; j < blocks[i]->n_attn; j++)
            for (int k = 0; k < blocks[i]->attn[j].depth; k++) {
                unet_attention *a = &blocks[i]->attn[j].blocks[k].attn1;
                const is_tensor *parts[3] = {a->q.w, a->k.w, a->v.w};
                if (!a->q.b && !a->k.b && !a->v.b) {
                    IS_TRY(is_dnn_pack_rows(u->dnn, u->st, &a->qkv, parts, 3, a->name));
                } else { /* with biases: three products */
                    for (int p = 0; p < 3; p++) IS_TRY(is_dnn_pack(u->dnn, u->st, parts[p]));
                }
            }
    return NULL;
}
