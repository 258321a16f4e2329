/* The VAE's activation workspace: three equal buffers that the blocks rotate through
 * (input kept for the residual, two scratch), plus the mid-block attention scratch
 * (normalised tokens, q, k, v). Sized by walking the architecture for a given image size. */
#include <stdlib.h>

#include "vae/vae_internal.h"

is_error *vae_ws_reserve(vae_workspace *ws, int64_t act_floats, int64_t attn_floats) {
    if (act_floats > ws->cap) {
        for (int i = 0; i < 3; i++) {
            free(ws->buf[i]);
            ws->buf[i] = NULL;
        }
        ws->cap = 0;
        for (int i = 0; i < 3; i++) {
            ws->buf[i] = malloc((size_t)act_floats * sizeof(float));
            if (!ws->buf[i]) {
                vae_ws_free(ws);
                return is_errorf(IS_E_NOMEM, "vae: cannot allocate 3 activation buffers of %lld MiB",
                                 (long long)(act_floats * 4 >> 20));
            }
        }
        ws->cap = act_floats;
    }
    if (attn_floats > ws->attn_cap) {
        free(ws->attn);
        ws->attn_cap = 0;
        ws->attn = malloc((size_t)attn_floats * sizeof(float));
        if (!ws->attn)
            return is_errorf(IS_E_NOMEM, "vae: cannot allocate %lld MiB of attention scratch",
                             (long long)(attn_floats * 4 >> 20));
        ws->attn_cap = attn_floats;
    }
    return NULL;
}

void vae_ws_free(vae_workspace *ws) {
    for (int i = 0; i < 3; i++) free(ws->buf[i]);
    free(ws->attn);
    *ws = (vae_workspace){0};
}

float *vae_ws_other(vae_workspace *ws, const float *a, const float *b) {
    for (int i = 0; i < 3; i++)
        if (ws->buf[i] != a && ws->buf[i] != b) return ws->buf[i];
    return NULL; /* unreachable: three buffers, at most two excluded */
}

static int64_t max64(int64_t a, int64_t b) { return a > b ? a : b; }

/* Attention scratch: 4 [tokens, C] matrices. */
static int64_t attn_floats(const is_vae *v, int64_t tokens) {
    return v->mid_attention ? 4 * v->block_out[v->nblocks - 1] * tokens : 0;
}

void vae_decode_needs(const is_vae *v, int64_t h, int64_t w, int64_t *act, int64_t *attn) {
    int64_t c = v->block_out[v->nblocks - 1];
    int64_t need = max64(v->latent_channels * h * w, c * h * w); /* z, post_quant_conv, conv_in, mid */
    int64_t hh = h, ww = w;
    for (int i = 0; i < v->nblocks; i++) {
        int64_t cout = v->block_out[v->nblocks - 1 - i];
        need = max64(need, max64(c, cout) * hh * ww);
        if (i < v->nblocks - 1) { /* nearest 2x then conv */
            hh *= 2;
            ww *= 2;
            need = max64(need, cout * hh * ww);
        }
        c = cout;
    }
    *act = need; /* conv_out writes to the caller's image */
    *attn = attn_floats(v, h * w);
}

void vae_encode_needs(const is_vae *v, int64_t H, int64_t W, int64_t *act, int64_t *attn) {
    int64_t c = v->block_out[0], need = c * H * W; /* conv_in reads the caller's image */
    int64_t hh = H, ww = W;
    for (int i = 0; i < v->nblocks; i++) {
        int64_t cout = v->block_out[i];
        need = max64(need, max64(c, cout) * hh * ww);
        if (i < v->nblocks - 1) { /* pad (0,1,0,1) copy, then stride-2 conv */
            need = max64(need, cout * (hh + 1) * (ww + 1));
            hh /= 2;
            ww /= 2;
        }
        c = cout;
    }
    need = max64(need, 2 * v->latent_channels * hh * ww); /* conv_out, quant_conv */
    *act = need;
    *attn = attn_floats(v, hh * ww);
}
