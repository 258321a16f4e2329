/* VaeImageProcessor.preprocess (diffusers 0.30.3) for PIL inputs: resize (in the image's own mode) ->
 * convert -> numpy float32 / 255 -> normalise or binarise. Our decoded images are already RGB; for the
 * L-mode masks and RGB images diffusers gets, resizing the RGB pixels and converting afterwards is the
 * same arithmetic (each channel is resampled alone, and Pillow's L conversion of equal channels is the
 * identity). */
#include <stdlib.h>

#include "instantstyle.h"
#include "vision/image.h"
#include "vision/image_processor.h"

void is_image_default_size(const is_image *img, int multiple, int *width, int *height) {
    *width = img->width - img->width % multiple;
    *height = img->height - img->height % multiple;
}

/* The image at width x height: the pixels themselves, or a LANCZOS-resized copy in *owned. */
static is_error *sized(const is_image *img, int width, int height, const uint8_t **px, uint8_t **owned) {
    *owned = NULL;
    if (!img || !img->rgb || img->width < 1 || img->height < 1)
        return is_errorf(IS_E_ARGUMENT, "image preprocessing: no pixels");
    if (width < 1 || height < 1) return is_errorf(IS_E_ARGUMENT, "image preprocessing: target size %dx%d", width, height);
    if (img->width == width && img->height == height) {
        *px = img->rgb;
        return NULL;
    }
    *owned = malloc((size_t)width * height * 3);
    if (!*owned) return is_error_oom("resized image");
    is_error *e = is_pil_resize_window(img, width, height, IS_PIL_LANCZOS, 0, 0, width, height, *owned);
    if (e) {
        free(*owned);
        *owned = NULL;
        return e;
    }
    *px = *owned;
    return NULL;
}

/* HWC u8 -> CHW float32 u8 / 255 (numpy: astype(float32) / 255.0), optionally 2x - 1 (torch float32). */
static void to_chw(const uint8_t *px, int width, int height, int normalize, float *out) {
    size_t plane = (size_t)width * height;
    for (size_t i = 0; i < plane; i++)
        for (int c = 0; c < 3; c++) {
            float x = (float)px[3 * i + c] / 255.0f;
            if (normalize) {
                float twice = 2.0f * x;
                x = twice - 1.0f;
            }
            out[(size_t)c * plane + i] = x;
        }
}

static is_error *preprocess_rgb(const is_image *img, int width, int height, int normalize, float *out) {
    const uint8_t *px = NULL;
    uint8_t *owned;
    IS_TRY(sized(img, width, height, &px, &owned));
    to_chw(px, width, height, normalize, out);
    free(owned);
    return NULL;
}

is_error *is_preprocess_init_image(const is_image *img, int width, int height, float *out) {
    return preprocess_rgb(img, width, height, 1, out);
}

is_error *is_preprocess_control_image(const is_image *img, int width, int height, float *out) {
    return preprocess_rgb(img, width, height, 0, out);
}

is_error *is_preprocess_mask(const is_image *img, int width, int height, float *out) {
    const uint8_t *px = NULL;
    uint8_t *owned;
    IS_TRY(sized(img, width, height, &px, &owned));
    size_t plane = (size_t)width * height;
    for (size_t i = 0; i < plane; i++) {
        const uint8_t *p = px + 3 * i;
        /* Pillow's rgb2l: ITU-R 601-2 luma in 16-bit fixed point, rounded */
        uint32_t l = ((uint32_t)p[0] * 19595u + (uint32_t)p[1] * 38470u + (uint32_t)p[2] * 7471u + 0x8000u) >> 16;
        float v = (float)l / 255.0f;
        out[i] = v < 0.5f ? 0.0f : 1.0f;
    }
    free(owned);
    return NULL;
}
