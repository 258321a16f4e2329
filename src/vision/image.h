/* Style-image decoding (PNG via libpng, JPEG via libjpeg-turbo) into 8-bit RGB exactly as
 * Pillow 9.4 `Image.open(path).convert("RGB")` gives it, and Pillow's resampling filters. */
#ifndef IS_VISION_IMAGE_H
#define IS_VISION_IMAGE_H

#include <stddef.h>
#include <stdint.h>

#include "core/error.h"

/* Hard ceilings against absurd headers (decompression bombs), whatever is_set_max_image_pixels says:
 * the settable pixel limit (default IS_MAX_IMAGE_PIXELS_DEFAULT, Pillow's) is clamped to
 * IS_IMAGE_MAX_PIXELS, a bound every caller (and the fuzz harnesses) may rely on. docs/LIMITS.md. */
#define IS_IMAGE_MAX_SIDE 32768
#define IS_IMAGE_MAX_PIXELS (1LL << 28)
#define IS_IMAGE_MAX_FILE_BYTES ((size_t)1 << 30)

/* Multi-scan (progressive) JPEGs: libjpeg holds every DCT coefficient of the image (128 bytes per
 * 8x8 block and component). They may take this many bytes per pixel of the pixel limit: 512 MiB
 * at the default, a 4:2:0 colour JPEG at the limit or a 4:4:4 one at half of it. */
#define IS_JPEG_COEF_BYTES_PER_PIXEL 3

/* What the file held, named as Pillow names the mode it opens it in ("RGB", "RGBA", "L", "LA",
 * "P", "I", "1", "CMYK"); the pixels are always converted to RGB. */
typedef struct {
    char mode[8];
} is_image_info;

/* Like is_image_load, also reporting the Pillow mode of the file (info may be NULL). */
is_error *is_image_load_info(const char *path, is_image *out, is_image_info *info);

/* Decoders over the whole file in memory; `path` is only used in messages. */
is_error *is_png_decode(const char *path, const uint8_t *data, size_t n, is_image *out, is_image_info *info);
is_error *is_jpeg_decode(const char *path, const uint8_t *data, size_t n, is_image *out, is_image_info *info);

/* Refuses a declared size over the limits (each side, then is_get_max_image_pixels()) with an error
 * naming the file, the size, the limit and how to raise it. Allocates nothing. */
is_error *is_image_check_size(const char *path, long long width, long long height);

/* is_image_check_size, then allocates out->rgb (w*h*3 bytes). */
is_error *is_image_alloc(const char *path, long long width, long long height, is_image *out);

/* Pillow resampling filters, numbered as PIL.Image.Resampling. */
enum {
    IS_PIL_NEAREST = 0,
    IS_PIL_LANCZOS = 1,
    IS_PIL_BILINEAR = 2,
    IS_PIL_BICUBIC = 3,
    IS_PIL_BOX = 4,
    IS_PIL_HAMMING = 5
};

/* Pillow 9.4 `img.resize((out_w, out_h), filter)` on an 8-bit RGB image (ImagingResample: separable,
 * horizontal pass first, 22-bit fixed-point coefficients, uint8 rounding and clipping after each
 * pass), bit-exact. Only the window [x0, x0+win_w) x [y0, y0+win_h) of the result is computed
 * (it must lie inside out_w x out_h) and written to out as win_h rows of win_w RGB pixels. */
is_error *is_pil_resize_window(const is_image *in, int out_w, int out_h, int filter, int x0, int y0, int win_w,
                               int win_h, uint8_t *out);

#endif
