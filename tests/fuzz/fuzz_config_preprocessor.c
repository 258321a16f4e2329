/* preprocessor_config.json (CLIPImageProcessor): the input is the file, read by is_clip_preproc_load on
 * top of the defaults. A config it accepts must give a geometry for a few image shapes (square, wide,
 * tall, a 1-pixel strip) and resize, crop and normalise one of them (picked by the input's length)
 * into a buffer of exactly the result's size when that is at most 256x256 pixels. */
#include <stdlib.h>
#include <string.h>

#include "fuzz_common.h"
#include "vision/clip_preprocess.h"
#include "vision/image.h"

#define MAX_OUT_PIXELS (256 * 256)

static const char *path;
static is_image img[4];

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc;
    (void)argv;
    path = fz_path("preprocessor_config.json");
    static const int sizes[4][2] = {{31, 31}, {57, 13}, {9, 40}, {1, 17}};
    for (int k = 0; k < 4; k++) {
        img[k].width = sizes[k][0];
        img[k].height = sizes[k][1];
        size_t n = (size_t)img[k].width * (size_t)img[k].height * 3;
        img[k].rgb = malloc(n);
        if (!img[k].rgb) fz_fail("out of memory");
        for (size_t i = 0; i < n; i++) img[k].rgb[i] = (uint8_t)(i * 37u + k);
    }
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    fz_write(path, data, size);
    is_clip_preproc pp;
    if (fz_error(is_clip_preproc_load(path, &pp))) return 0;
    for (int k = 0; k < 4; k++) {
        is_clip_geometry g;
        if (fz_error(is_clip_geometry_of(&pp, img[k].width, img[k].height, &g))) continue;
        if (g.out_w < 1 || g.out_h < 1 || g.resize_w < 1 || g.resize_h < 1)
            fz_fail("geometry of %dx%d: resize %dx%d, out %dx%d", img[k].width, img[k].height, g.resize_w, g.resize_h,
                    g.out_w, g.out_h);
        if (k != (int)(size % 4) || (long long)g.out_w * g.out_h > MAX_OUT_PIXELS) continue;
        size_t n = (size_t)g.out_w * (size_t)g.out_h;
        uint8_t *u8 = malloc(n * 3);
        float *px = malloc(n * 3 * sizeof(float));
        if (!u8 || !px) fz_fail("out of memory");
        if (!fz_error(is_clip_resize_crop_u8(&pp, &img[k], &g, u8)))
            is_clip_normalize(&pp, u8, g.out_w, g.out_h, px);
        free(u8);
        free(px);
    }
    return 0;
}
