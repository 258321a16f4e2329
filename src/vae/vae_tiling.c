/* diffusers' tiling (AutoencoderKL v0.30.3): the tile plan, the two blends and tiled_decode,
 * reproduced exactly (tiled_encode, with the same plan and blends, is vae_tiled_encode.c).
 * tiled_decode: z is cut into tiles of tile_latent x tile_latent latents starting every
 * overlap_latent latents; each tile is decoded on its own; tiles are visited in raster order and
 * blended IN PLACE with the (already blended, uncropped) tile above (rows) and then the one to the
 * left (columns) over blend_px pixels; finally each tile's first row_limit_px x row_limit_px pixels
 * are kept. Only the tiles of the previous row are kept alive: tile (i-1,j) is last used by (i,j). */
#include <stdlib.h>
#include <string.h>

#include "vae/vae_internal.h"

#define OVERLAP_FACTOR 0.25 /* AutoencoderKL.tile_overlap_factor */

vae_tiling_plan vae_tiling_params(const is_vae *v) {
    vae_tiling_plan p;
    /* Python: int(sample_size / 2**(len(block_out_channels)-1)), int(tile * (1 - 0.25)), ... */
    p.tile_sample = v->sample_size;
    p.tile_latent = (int64_t)((double)v->sample_size / (double)((int64_t)1 << (v->nblocks - 1)));
    p.overlap_latent = (int64_t)((double)p.tile_latent * (1.0 - OVERLAP_FACTOR));
    p.blend_px = (int64_t)((double)p.tile_sample * OVERLAP_FACTOR);
    p.row_limit_px = p.tile_sample - p.blend_px;
    p.overlap_px = (int64_t)((double)p.tile_sample * (1.0 - OVERLAP_FACTOR));
    p.blend_latent = (int64_t)((double)p.tile_latent * OVERLAP_FACTOR);
    p.row_limit_latent = p.tile_latent - p.blend_latent;
    return p;
}

int vae_tiling_applies(const is_vae *v, int64_t h, int64_t w) {
    vae_tiling_plan p = vae_tiling_params(v);
    return h > p.tile_latent || w > p.tile_latent;
}

int vae_encode_tiling_applies(const is_vae *v, int64_t H, int64_t W) {
    return H > v->sample_size || W > v->sample_size; /* encode's test is on pixels */
}

static int64_t min64(int64_t a, int64_t b) { return a < b ? a : b; }

/* b's first e rows <- a's last e rows * (1 - y/e) + b * (y/e); weights are Python floats
 * cast to float32 as PyTorch does for a tensor * scalar. */
void vae_blend_v(const vae_tile *a, vae_tile *b, int64_t C, int64_t extent) {
    int64_t e = min64(min64(a->H, b->H), extent), W = b->W;
    for (int64_t y = 0; y < e; y++) {
        float wb = (float)((double)y / (double)e), wa = (float)(1.0 - (double)y / (double)e);
        for (int64_t c = 0; c < C; c++) {
            const float *ra = a->data + (c * a->H + a->H - e + y) * a->W;
            float *rb = b->data + (c * b->H + y) * W;
            for (int64_t x = 0; x < W; x++) {
                float pa = ra[x] * wa, pb = rb[x] * wb;
                rb[x] = pa + pb;
            }
        }
    }
}

void vae_blend_h(const vae_tile *a, vae_tile *b, int64_t C, int64_t extent) {
    int64_t e = min64(min64(a->W, b->W), extent);
    for (int64_t x = 0; x < e; x++) {
        float wb = (float)((double)x / (double)e), wa = (float)(1.0 - (double)x / (double)e);
        for (int64_t c = 0; c < C; c++)
            for (int64_t y = 0; y < b->H; y++) {
                float pa = a->data[(c * a->H + y) * a->W + a->W - e + x] * wa;
                float *pb = &b->data[(c * b->H + y) * b->W + x];
                *pb = pa + *pb * wb;
            }
    }
}

/* Pixel size of the concatenated crops along one axis (n latents). */
static int64_t tiled_extent(const vae_tiling_plan *p, int64_t n, int64_t scale) {
    int64_t total = 0;
    for (int64_t i = 0; i < n; i += p->overlap_latent) total += min64(p->row_limit_px, min64(p->tile_latent, n - i) * scale);
    return total;
}

is_error *vae_tiled_decode(is_vae *v, const float *z, int64_t h, int64_t w, float *image) {
    vae_tiling_plan p = vae_tiling_params(v);
    int64_t s = is_vae_scale(v), C = v->latent_channels, Co = v->out_channels;
    if (p.tile_latent < 1 || p.overlap_latent < 1)
        return is_errorf(IS_E_UNSUPPORTED, "vae tiled decode: sample_size %lld gives latent tiles of %lld (overlap %lld)",
                         (long long)v->sample_size, (long long)p.tile_latent, (long long)p.overlap_latent);
    if (tiled_extent(&p, h, s) != s * h || tiled_extent(&p, w, s) != s * w)
        return is_errorf(IS_E_UNSUPPORTED,
                         "vae tiled decode: with sample_size %lld diffusers' tiles would not cover %lldx%lld pixels",
                         (long long)v->sample_size, (long long)(s * h), (long long)(s * w));
    int64_t th0 = min64(p.tile_latent, h), tw0 = min64(p.tile_latent, w); /* the first tile is the largest */
    IS_TRY(vae_ws_reserve(&v->ws, vae_decode_needs(v, th0, tw0), vae_norm_needs(v)));
    int64_t ncols = (w + p.overlap_latent - 1) / p.overlap_latent;
    vae_tile *col = calloc((size_t)ncols, sizeof *col); /* latest decoded tile of each column */
    if (!col) return is_error_oom("vae tiles");
    is_error *err = NULL;
    int64_t W = s * w, oy = 0;
    for (int64_t i = 0; i < h && !err; i += p.overlap_latent) {
        int64_t th = min64(p.tile_latent, h - i), ox = 0, crop_h = min64(p.row_limit_px, th * s);
        for (int64_t jj = 0, j = 0; j < w; j += p.overlap_latent, jj++) {
            int64_t tw = min64(p.tile_latent, w - j);
            vae_tile t = {malloc((size_t)(Co * th * s * tw * s) * sizeof(float)), th * s, tw * s};
            if (!t.data) {
                err = is_error_oom("vae tile");
                break;
            }
            float *zt = v->ws.base;
            for (int64_t c = 0; c < C; c++)
                for (int64_t y = 0; y < th; y++)
                    memcpy(zt + (c * th + y) * tw, z + (c * h + i + y) * w + j, (size_t)tw * sizeof(float));
            vae_decode_z(v, (vae_act){zt, C, th, tw}, t.data, NULL, NULL);
            if (i > 0) vae_blend_v(&col[jj], &t, Co, p.blend_px);
            free(col[jj].data); /* the tile above is no longer needed */
            col[jj] = t;
            if (jj > 0) vae_blend_h(&col[jj - 1], &col[jj], Co, p.blend_px);
            int64_t crop_w = min64(p.row_limit_px, t.W);
            for (int64_t c = 0; c < Co; c++)
                for (int64_t y = 0; y < crop_h; y++)
                    memcpy(image + (c * s * h + oy + y) * W + ox, t.data + (c * t.H + y) * t.W,
                           (size_t)crop_w * sizeof(float));
            ox += crop_w;
        }
        oy += crop_h;
    }
    for (int64_t j = 0; j < ncols; j++) free(col[j].data);
    free(col);
    return err;
}
