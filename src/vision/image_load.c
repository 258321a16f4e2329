/* is_image_load: read the file, pick the decoder by its magic bytes (never by the extension). */
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "core/fileio.h"
#include "vision/image.h"

static const uint8_t png_magic[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};

/* Read by every load, possibly from several threads at once. */
static _Atomic uint64_t max_pixels = IS_MAX_IMAGE_PIXELS_DEFAULT;

void is_set_max_image_pixels(uint64_t n) {
    if (n == 0 || n > (uint64_t)IS_IMAGE_MAX_PIXELS) n = (uint64_t)IS_IMAGE_MAX_PIXELS;
    atomic_store(&max_pixels, n);
}

uint64_t is_get_max_image_pixels(void) { return atomic_load(&max_pixels); }

is_error *is_image_check_size(const char *path, long long width, long long height) {
    if (width <= 0 || height <= 0)
        return is_errorf(IS_E_FORMAT, "%s: image has no pixels (%lldx%lld)", path, width, height);
    if (width > IS_IMAGE_MAX_SIDE || height > IS_IMAGE_MAX_SIDE)
        return is_errorf(IS_E_UNSUPPORTED, "%s: image too large: %lldx%lld has a side over %d pixels, the most any "
                         "image may have", path, width, height, IS_IMAGE_MAX_SIDE);
    unsigned long long limit = is_get_max_image_pixels(), pixels = (unsigned long long)width * height;
    if (pixels <= limit) return NULL;
    if (limit == (unsigned long long)IS_IMAGE_MAX_PIXELS)
        return is_errorf(IS_E_UNSUPPORTED, "%s: image too large: %lldx%lld is %llu pixels, more than %llu, the most "
                         "any image may have", path, width, height, pixels, limit);
    return is_errorf(IS_E_UNSUPPORTED,
                     "%s: image too large: %lldx%lld is %llu pixels, more than the limit of %llu (a decompression-bomb "
                     "guard, as Pillow's); raise it with is_set_max_image_pixels() if the file is trusted",
                     path, width, height, pixels, limit);
}

is_error *is_image_alloc(const char *path, long long width, long long height, is_image *out) {
    IS_TRY(is_image_check_size(path, width, height));
    out->rgb = malloc((size_t)width * (size_t)height * 3);
    if (!out->rgb) return is_error_oom(path);
    out->width = (int)width;
    out->height = (int)height;
    return NULL;
}

static is_error *image_decode(const char *what, const uint8_t *bytes, size_t n, is_image *out, is_image_info *info);

is_error *is_image_load_info(const char *path, is_image *out, is_image_info *info) {
    is_image_info local;
    if (!info) info = &local;
    memset(info, 0, sizeof *info);
    if (!out) return is_errorf(IS_E_ARGUMENT, "is_image_load: no output image given");
    memset(out, 0, sizeof *out);
    if (!path) return is_errorf(IS_E_ARGUMENT, "is_image_load: no path given");
    char *data = NULL;
    size_t n = 0;
    IS_TRY(is_read_file(path, IS_IMAGE_MAX_FILE_BYTES, &data, &n));
    is_error *e = image_decode(path, (const uint8_t *)data, n, out, info);
    free(data);
    return e;
}

/* PNG or JPEG by content; `what` names the bytes in messages. */
static is_error *image_decode(const char *what, const uint8_t *bytes, size_t n, is_image *out, is_image_info *info) {
    is_error *e;
    if (n == 0) {
        e = is_errorf(IS_E_FORMAT, "%s: file is empty (0 bytes), not an image", what);
    } else if (n >= 8 && memcmp(bytes, png_magic, 8) == 0) {
        e = is_png_decode(what, bytes, n, out, info);
    } else if (n >= 3 && bytes[0] == 0xFF && bytes[1] == 0xD8 && bytes[2] == 0xFF) {
        e = is_jpeg_decode(what, bytes, n, out, info);
    } else {
        e = is_errorf(IS_E_UNSUPPORTED, "%s: unsupported image format (neither PNG nor JPEG by content)", what);
    }
    if (e) is_image_free(out);
    return e;
}

is_error *is_image_decode(const uint8_t *data, size_t size, const char *what, is_image *out) {
    if (!out) return is_errorf(IS_E_ARGUMENT, "is_image_decode: no output image given");
    memset(out, 0, sizeof *out);
    if (!data && size) return is_errorf(IS_E_ARGUMENT, "is_image_decode: no data given");
    is_image_info info;
    memset(&info, 0, sizeof info);
    return image_decode(what ? what : "image", data, size, out, &info);
}

is_error *is_image_load(const char *path, is_image *out) { return is_image_load_info(path, out, NULL); }

void is_image_free(is_image *img) {
    if (!img) return;
    free(img->rgb);
    memset(img, 0, sizeof *img);
}
