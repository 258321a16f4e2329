/* CLIPImageProcessor's rescale + normalise: RGB bytes (HWC) to float pixel values (CHW), each value
 * (u * rescale_factor - mean) / std in the processor's arithmetic (rescale in double, the rest in float). */
#include "vision/clip_preprocess.h"

void is_clip_normalize(const is_clip_preproc *pp, const uint8_t *rgb, int width, int height, float *pixel_values) {
    size_t hw = (size_t)width * height;
    for (int c = 0; c < 3; c++) {
        /* 256 possible bytes: each one's value computed once, with the same arithmetic */
        float value[256];
        for (int u = 0; u < 256; u++) {
            float x = pp->do_rescale ? (float)((double)u * pp->rescale_factor) : (float)u;
            value[u] = pp->do_normalize ? (x - pp->mean[c]) / pp->std[c] : x;
        }
        float *dst = pixel_values + c * hw;
        for (size_t i = 0; i < hw; i++) dst[i] = value[rgb[3 * i + c]];
    }
}
