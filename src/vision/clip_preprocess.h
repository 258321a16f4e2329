/* transformers' CLIPImageProcessor (4.41-4.44) on an already RGB image: resize (shortest edge, or
 * exact height/width) with Pillow's filter on uint8, centre crop (zero padding when the image is
 * smaller), rescale float32(u8 * factor) computed in double, normalise (x - mean) / std in float32,
 * CHW layout. */
#ifndef IS_VISION_CLIP_PREPROCESS_H
#define IS_VISION_CLIP_PREPROCESS_H

#include <stdint.h>

#include "core/error.h"

typedef struct {
    int do_resize, do_center_crop, do_rescale, do_normalize;
    int shortest_edge;   /* > 0: the short side becomes this, the long side int(s * long / short) */
    int size_h, size_w;  /* used when shortest_edge == 0: resize to exactly this */
    int crop_h, crop_w;
    int resample;        /* PIL.Image.Resampling number (3 = BICUBIC) */
    double rescale_factor;
    float mean[3], std[3];
} is_clip_preproc;

/* CLIPImageProcessor() defaults: shortest edge 224, crop 224, bicubic, 1/255, OpenAI CLIP mean/std. */
void is_clip_preproc_defaults(is_clip_preproc *pp);
/* Read a preprocessor_config.json on top of the defaults; errors name the file and field. */
is_error *is_clip_preproc_load(const char *path, is_clip_preproc *pp);

/* Where the image goes: size after resize and the crop's top-left corner in the resized image
 * (negative when the crop pads: crop row r is resized row r + crop_top, zero outside). */
typedef struct {
    int resize_w, resize_h;
    int crop_top, crop_left;
    int out_w, out_h; /* size of the result: the crop, or the resized image without crop */
} is_clip_geometry;

is_error *is_clip_geometry_of(const is_clip_preproc *pp, int width, int height, is_clip_geometry *g);

/* Resized and cropped uint8 image, out_h x out_w RGB (allocate g->out_w * g->out_h * 3 bytes: call
 * is_clip_geometry_of first). */
is_error *is_clip_resize_crop_u8(const is_clip_preproc *pp, const is_image *img, const is_clip_geometry *g,
                                 uint8_t *out);

/* uint8 HWC -> rescaled, normalised float CHW [3, h, w]. */
void is_clip_normalize(const is_clip_preproc *pp, const uint8_t *rgb, int width, int height, float *pixel_values);

/* The whole processor: pixel_values [3, size, size]; the result must be size x size. */
is_error *is_clip_preprocess(const is_clip_preproc *pp, const is_image *img, int size, float *pixel_values);

#endif
