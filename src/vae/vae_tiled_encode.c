/* diffusers' AutoencoderKL.tiled_encode (v0.30.3), reproduced exactly: the image is cut into tiles of
 * tile_sample x tile_sample pixels starting every overlap_px pixels; each tile goes through the
 * encoder and quant_conv on its own (moments, before the logvar clamp); tiles are visited in raster
 * order and blended IN PLACE with the (already blended, uncropped) tile above and then the one to
 * the left over blend_latent latents; each tile's first row_limit_latent x row_limit_latent latents
 * are kept. Memory: one tile's activations (the workspace), its pixels, and the moments of the
 * previous row's tiles (tile (i-1,j) is last used by (i,j)). */
#include <stdlib.h>
#include <string.h>

#include "vae/vae_internal.h"

static int64_t min64(int64_t a, int64_t b) { return a < b ? a : b; }

/* Latents along one axis of n pixels once the tiles' crops are concatenated; -1 when a tile's
 * pixels are not a multiple of the scale (its latents would not line up with the image's). */
static int64_t tiled_latents(const vae_tiling_plan *p, int64_t n, int64_t scale) {
    int64_t total = 0;
    for (int64_t i = 0; i < n; i += p->overlap_px) {
        int64_t t = min64(p->tile_sample, n - i);
        if (t % scale) return -1;
        total += min64(p->row_limit_latent, t / scale);
    }
    return total;
}

/* The tile's pixels [Ci, th, tw] at (i, j) copied out of image [Ci, H, W]. */
static void crop(const float *image, int64_t Ci, int64_t H, int64_t W, int64_t i, int64_t j, int64_t th, int64_t tw,
                 float *out) {
    for (int64_t c = 0; c < Ci; c++)
        for (int64_t y = 0; y < th; y++)
            memcpy(out + (c * th + y) * tw, image + (c * H + i + y) * W + j, (size_t)tw * sizeof(float));
}

is_error *vae_tiled_encode(is_vae *v, const float *image, int64_t H, int64_t W, float *moments) {
    vae_tiling_plan p = vae_tiling_params(v);
    int64_t s = is_vae_scale(v), Ci = v->in_channels, C = 2 * v->latent_channels, h = H / s, w = W / s;
    if (p.overlap_px < 1 || p.tile_latent < 1 || tiled_latents(&p, H, s) != h || tiled_latents(&p, W, s) != w)
        return is_errorf(IS_E_UNSUPPORTED,
                         "vae tiled encode: with sample_size %lld diffusers' tiles (every %lld pixels) would not give "
                         "the %lldx%lld latents of a %lldx%lld image",
                         (long long)v->sample_size, (long long)p.overlap_px, (long long)h, (long long)w, (long long)H,
                         (long long)W);
    int64_t th0 = min64(p.tile_sample, H), tw0 = min64(p.tile_sample, W); /* the first tile is the largest */
    IS_TRY(vae_ws_reserve(&v->ws, vae_encode_needs(v, th0, tw0), vae_norm_needs(v)));
    int64_t ncols = (W + p.overlap_px - 1) / p.overlap_px;
    vae_tile *col = calloc((size_t)ncols, sizeof *col); /* latest encoded tile of each column */
    float *pixels = malloc((size_t)(Ci * th0 * tw0) * sizeof(float));
    is_error *err = !col || !pixels ? is_error_oom("vae tiles") : NULL;
    for (int64_t i = 0, oy = 0; i < H && !err; i += p.overlap_px) {
        int64_t th = min64(p.tile_sample, H - i), ox = 0, crop_h = min64(p.row_limit_latent, th / s);
        for (int64_t jj = 0, j = 0; j < W; j += p.overlap_px, jj++) {
            int64_t tw = min64(p.tile_sample, W - j);
            vae_tile t = {malloc((size_t)(C * (th / s) * (tw / s)) * sizeof(float)), th / s, tw / s};
            if (!t.data) {
                err = is_error_oom("vae tile");
                break;
            }
            crop(image, Ci, H, W, i, j, th, tw, pixels);
            vae_act m = vae_encode_moments(v, pixels, th, tw, NULL, NULL);
            memcpy(t.data, m.data, (size_t)(C * t.H * t.W) * sizeof(float));
            if (i > 0) vae_blend_v(&col[jj], &t, C, p.blend_latent);
            free(col[jj].data); /* the tile above is no longer needed */
            col[jj] = t;
            if (jj > 0) vae_blend_h(&col[jj - 1], &col[jj], C, p.blend_latent);
            int64_t crop_w = min64(p.row_limit_latent, t.W);
            for (int64_t c = 0; c < C; c++)
                for (int64_t y = 0; y < crop_h; y++)
                    memcpy(moments + (c * h + oy + y) * w + ox, t.data + (c * t.H + y) * t.W,
                           (size_t)crop_w * sizeof(float));
            ox += crop_w;
        }
        oy += crop_h;
    }
    for (int64_t j = 0; col && j < ncols; j++) free(col[j].data);
    free(col);
    free(pixels);
    return err;
}
