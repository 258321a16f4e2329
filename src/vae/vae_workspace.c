/* The VAE's activation workspace: one arena used from both ends (see vae_internal.h), sized by
 * walking the architecture for a given image size and summing what each step keeps alive, plus
 * the GroupNorm scale/shift vectors. */
#include <stdlib.h>

#include "vae/vae_internal.h"

is_error *vae_ws_reserve(vae_workspace *ws, int64_t act_floats, int64_t norm_floats) {
    if (act_floats > ws->cap) {
        free(ws->base);
        ws->cap = 0;
        ws->base = malloc((size_t)act_floats * sizeof(float));
        if (!ws->base)
            return is_errorf(IS_E_NOMEM, "vae: cannot allocate %lld MiB of activations", (long long)(act_floats * 4 >> 20));
        ws->cap = act_floats;
    }
    if (norm_floats > ws->norm_cap) {
        free(ws->norm);
        ws->norm_cap = 0;
        ws->norm = malloc((size_t)norm_floats * sizeof(float));
        if (!ws->norm) return is_error_oom("vae group norm scale/shift");
        ws->norm_cap = norm_floats;
    }
    return NULL;
}

void vae_ws_free(vae_workspace *ws) {
    free(ws->base);
    free(ws->norm);
    *ws = (vae_workspace){.dnn = ws->dnn};
}

float *vae_ws_opposite(const vae_workspace *ws, const float *x, int64_t n) {
    return x == ws->base ? ws->base + ws->cap - n : ws->base;
}

static int64_t max64(int64_t a, int64_t b) { return a > b ? a : b; }

/* A resnet keeps its input and the hidden activation; the output then replaces the input (the
 * shortcut is computed in place, aligned to the input's end of the arena, so a wider output
 * reaches past it). */
static int64_t resnet_needs(int64_t cin, int64_t cout, int64_t hw) { return max64(cin, cout) * hw + cout * hw; }

/* Mid block at c channels, n positions: resnets, and the attention's input + 4 [n, c] matrices. */
static int64_t mid_needs(const is_vae *v, int64_t c, int64_t n) {
    return max64(resnet_needs(c, c, n), v->mid_attention ? 5 * c * n : 0);
}

int64_t vae_decode_needs(const is_vae *v, int64_t h, int64_t w) {
    int64_t c = v->block_out[v->nblocks - 1], hw = h * w, L = v->latent_channels;
    int64_t need = max64(2 * L * hw, (L + c) * hw); /* post_quant_conv, conv_in */
    need = max64(need, mid_needs(v, c, hw));
    for (int i = 0; i < v->nblocks; i++) {
        int64_t cout = v->block_out[v->nblocks - 1 - i];
        need = max64(need, resnet_needs(c, cout, hw));
        if (i < v->nblocks - 1) { /* the upsampler's conv reads the low-resolution input through a 2x view */
            need = max64(need, cout * hw + cout * 4 * hw);
            hw *= 4;
        }
        c = cout;
    }
    return need; /* norm_out + conv_out write to the caller's image */
}

int64_t vae_encode_needs(const is_vae *v, int64_t H, int64_t W) {
    int64_t c = v->block_out[0], need = c * H * W; /* conv_in reads the caller's image */
    int64_t hh = H, ww = W;
    for (int i = 0; i < v->nblocks; i++) {
        int64_t cout = v->block_out[i];
        need = max64(need, resnet_needs(c, cout, hh * ww));
        if (i < v->nblocks - 1) { /* pad (0,1,0,1) copy, then stride-2 conv */
            int64_t padded = cout * (hh + 1) * (ww + 1);
            hh /= 2;
            ww /= 2;
            need = max64(need, max64(cout * 4 * hh * ww + padded, padded + cout * hh * ww));
        }
        c = cout;
    }
    need = max64(need, mid_needs(v, c, hh * ww));
    int64_t L2 = 2 * v->latent_channels * hh * ww;
    need = max64(need, max64(c * hh * ww + L2, 2 * L2)); /* conv_out, quant_conv */
    return need;
}

int64_t vae_norm_needs(const is_vae *v) {
    int64_t c = 0;
    for (int i = 0; i < v->nblocks; i++) c = max64(c, v->block_out[i]);
    return 2 * c;
}
