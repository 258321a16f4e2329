/* PNG decoding with libpng into what Pillow 9.4 gives for Image.open(f).convert("RGB"):
 * grey is replicated, alpha is dropped (never composited), palettes are looked up ignoring tRNS
 * (indices past the PLTE entries read Pillow's default ramp (i, i, i)), 16-bit RGB(A) and grey+alpha
 * keep the HIGH byte of each sample, and 16-bit grey (Pillow mode "I") is CLIPPED to 0..255. */
#include <png.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vision/image.h"

typedef struct {
    const uint8_t *data;
    size_t size, pos;
    int truncated;
    char message[200];
} png_source;

static void on_png_error(png_structp png, png_const_charp msg) {
    png_source *src = png_get_error_ptr(png);
    snprintf(src->message, sizeof src->message, "%s", msg);
    png_longjmp(png, 1);
}

static void on_png_warning(png_structp png, png_const_charp msg) {
    (void)png; /* Pillow ignores what libpng only warns about (bad ancillary chunks, ...) */
    (void)msg;
}

static void read_from_memory(png_structp png, png_bytep out, png_size_t n) {
    png_source *src = png_get_io_ptr(png);
    if (n > src->size - src->pos) {
        src->truncated = 1;
        png_error(png, "unexpected end of file");
    }
    memcpy(out, src->data + src->pos, n);
    src->pos += n;
}

static const char *pillow_mode(int color_type, int bit_depth) {
    switch (color_type) {
    case PNG_COLOR_TYPE_GRAY: return bit_depth == 1 ? "1" : bit_depth == 16 ? "I" : "L";
    case PNG_COLOR_TYPE_GRAY_ALPHA: return bit_depth == 16 ? "RGBA" : "LA";
    case PNG_COLOR_TYPE_PALETTE: return "P";
    case PNG_COLOR_TYPE_RGB: return "RGB";
    default: return "RGBA";
    }
}

/* One decoded row (after libpng's transforms) to RGB. */
static void row_to_rgb(uint8_t *dst, const uint8_t *row, int width, int color_type, int bit_depth,
                       const png_color *palette, int num_palette) {
    for (int x = 0; x < width; x++, dst += 3) {
        switch (color_type) {
        case PNG_COLOR_TYPE_GRAY:
            if (bit_depth == 16) { /* mode "I" -> RGB clips; it does not scale */
                unsigned v = ((unsigned)row[2 * x] << 8) | row[2 * x + 1];
                dst[0] = dst[1] = dst[2] = (uint8_t)(v > 255 ? 255 : v);
            } else {
                dst[0] = dst[1] = dst[2] = row[x];
            }
            break;
        case PNG_COLOR_TYPE_GRAY_ALPHA: dst[0] = dst[1] = dst[2] = row[2 * x]; break;
        case PNG_COLOR_TYPE_PALETTE: {
            int i = row[x];
            if (i < num_palette) {
                dst[0] = palette[i].red;
                dst[1] = palette[i].green;
                dst[2] = palette[i].blue;
            } else {
                dst[0] = dst[1] = dst[2] = (uint8_t)i;
            }
            break;
        }
        case PNG_COLOR_TYPE_RGB: memcpy(dst, row + 3 * x, 3); break;
        default: memcpy(dst, row + 4 * x, 3); break; /* RGBA: alpha dropped */
        }
    }
}

is_error *is_png_decode(const char *path, const uint8_t *data, size_t n, is_image *out, is_image_info *info) {
    png_source src = {data, n, 0, 0, {0}};
    png_structp png = png_create_read_struct(PNG_LIBPNG_VER_STRING, &src, on_png_error, on_png_warning);
    if (!png) return is_error_oom(path);
    png_infop pinfo = png_create_info_struct(png);
    if (!pinfo) {
        png_destroy_read_struct(&png, NULL, NULL);
        return is_error_oom(path);
    }
    /* Changed after setjmp and used after a longjmp: must be volatile. */
    uint8_t *volatile pixels = NULL;
    png_bytep *volatile rows = NULL;
    is_error *volatile err = NULL;

    if (setjmp(png_jmpbuf(png))) {
        free(pixels);
        free(rows);
        png_destroy_read_struct(&png, &pinfo, NULL);
        is_image_free(out);
        return is_errorf(IS_E_FORMAT, "%s: %s PNG: %s", path, src.truncated ? "truncated" : "corrupt",
                         src.message);
    }
    png_set_read_fn(png, &src, read_from_memory);
    /* Pillow verifies the CRC of every chunk before the image data: a bad ancillary one is fatal too. */
    png_set_crc_action(png, PNG_CRC_DEFAULT, PNG_CRC_ERROR_QUIT);
    png_read_info(png, pinfo);
    png_uint_32 w = 0, h = 0;
    int bit_depth = 0, color_type = 0;
    png_get_IHDR(png, pinfo, &w, &h, &bit_depth, &color_type, NULL, NULL, NULL);
    err = is_image_alloc(path, (long long)w, (long long)h, out);
    if (!err) {
        if (bit_depth < 8 && color_type == PNG_COLOR_TYPE_GRAY) png_set_expand_gray_1_2_4_to_8(png);
        if (bit_depth < 8 && color_type == PNG_COLOR_TYPE_PALETTE) png_set_packing(png);
        if (bit_depth == 16 && color_type != PNG_COLOR_TYPE_GRAY) png_set_strip_16(png); /* high byte */
        png_set_interlace_handling(png);
        png_read_update_info(png, pinfo);
        size_t rowbytes = png_get_rowbytes(png, pinfo);
        pixels = malloc(rowbytes * h);
        rows = malloc(sizeof(png_bytep) * h);
        if (!pixels || !rows) err = is_error_oom(path);
    }
    if (!err) {
        size_t rowbytes = png_get_rowbytes(png, pinfo);
        for (png_uint_32 y = 0; y < h; y++) rows[y] = pixels + y * rowbytes;
        png_read_image(png, rows);
        png_colorp palette = NULL;
        int num_palette = 0;
        if (color_type == PNG_COLOR_TYPE_PALETTE) png_get_PLTE(png, pinfo, &palette, &num_palette);
        for (png_uint_32 y = 0; y < h; y++)
            row_to_rgb(out->rgb + (size_t)y * w * 3, rows[y], (int)w, color_type, bit_depth, palette, num_palette);
        if (info) snprintf(info->mode, sizeof info->mode, "%s", pillow_mode(color_type, bit_depth));
    }
    free(pixels);
    free(rows);
    png_destroy_read_struct(&png, &pinfo, NULL);
    if (err) is_image_free(out);
    return err;
}
