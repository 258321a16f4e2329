/* Timestep and SDXL "text_time" embeddings.
 * Sinusoids (diffusers get_timestep_embedding): freq_i = exp(-ln(10000) * i / (half - freq_shift)),
 * emb = [sin(t * freq), cos(t * freq)], swapped to [cos, sin] when flip_sin_to_cos. The argument is
 * formed in double: t * freq reaches ~1000 rad, where float rounding of the argument alone would cost
 * ~1e-5 (diffusers hard-codes float32 here; the goldens' tolerance is measured against float64). */
#include <math.h>
#include <string.h>

#include "kernels/kernels.h"
#include "unet/unet_internal.h"

void unet_timestep_embedding(float *out, const float *t, int n, int dim, int flip_sin_to_cos, float freq_shift) {
    int half = dim / 2;
    for (int r = 0; r < n; r++) {
        float *o = out + (size_t)r * dim;
        for (int i = 0; i < half; i++) {
            double freq = exp(-log(10000.0) * i / ((double)half - freq_shift));
            double arg = (double)t[r] * freq;
            float s = (float)sin(arg), c = (float)cos(arg);
            o[i] = flip_sin_to_cos ? c : s;
            o[half + i] = flip_sin_to_cos ? s : c;
        }
        if (dim % 2) o[dim - 1] = 0.0f;
    }
}

static void hook_rows(const is_unet_input *in, const char *name, const float *data, int rows_per_item, int64_t cols) {
    if (!in->hook) return;
    for (int b = 0; b < in->batch; b++) {
        if (rows_per_item == 1) {
            int64_t shape[1] = {cols};
            in->hook(in->hook_user, name, b, data + (size_t)b * cols, 1, shape);
        } else {
            int64_t shape[2] = {rows_per_item, cols};
            in->hook(in->hook_user, name, b, data + (size_t)b * rows_per_item * cols, 2, shape);
        }
    }
}

/* TimestepEmbedding: linear_1 -> SiLU -> linear_2. */
static void mlp(const is_unet *u, float *y, const float *x, int batch, const unet_linear *l1, const unet_linear *l2, float *tmp) {
    is_dnn_linear(u->dnn, tmp, x, batch, l1->w, l1->b);
    is_k_silu(tmp, (int64_t)batch * l1->w->shape[0]);
    is_dnn_linear(u->dnn, y, tmp, batch, l2->w, l2->b);
}

void unet_time_embed(is_unet *u, const is_unet_input *in, float *temb) {
    const unet_config *c = &u->cfg;
    const int B = in->batch, C0 = c->block_out[0], TE = c->time_embed_dim;
    float *t_emb = u->ws.emb_tmp;             /* [B, C0] */
    float *hidden = t_emb + (size_t)B * C0;   /* [B, TE] */
    float *add_in = hidden + (size_t)B * TE;  /* [B, add_in_dim] */
    float *ids_emb = add_in + (size_t)B * c->add_in_dim; /* [B*6, add_time_dim] */
    float *aug = u->ws.temb_act;              /* borrowed until the caller fills it */

    for (int b = 0; b < B; b++) unet_timestep_embedding(t_emb + (size_t)b * C0, &in->timestep, 1, C0, c->flip_sin_to_cos, c->freq_shift);
    hook_rows(in, "t_emb", t_emb, 1, C0);
    mlp(u, temb, t_emb, B, &u->time_lin1, &u->time_lin2, hidden);
    hook_rows(in, "time_emb", temb, 1, TE);

    if (c->has_text_time) {
        const int D = c->add_time_dim, pooled = c->add_in_dim - 6 * D;
        unet_timestep_embedding(ids_emb, in->time_ids, 6 * B, D, c->flip_sin_to_cos, c->freq_shift);
        hook_rows(in, "time_ids_emb", ids_emb, 6, D);
        for (int b = 0; b < B; b++) {
            float *row = add_in + (size_t)b * c->add_in_dim;
            memcpy(row, in->text_embeds + (size_t)b * pooled, (size_t)pooled * sizeof(float));
            memcpy(row + pooled, ids_emb + (size_t)b * 6 * D, (size_t)6 * D * sizeof(float));
        }
        mlp(u, aug, add_in, B, &u->add_lin1, &u->add_lin2, hidden);
        hook_rows(in, "aug_emb", aug, 1, TE);
        is_k_add(temb, aug, (int64_t)B * TE);
    }
}
