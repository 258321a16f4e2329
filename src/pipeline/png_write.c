#include "pipeline/png_write.h"

#include <png.h>
#include <setjmp.h>
#include <stdlib.h>
#include <string.h>

#include "core/fileio.h"

static int is_ascii(const char *s) {
    for (; *s; s++)
        if ((unsigned char)*s > 126 || ((unsigned char)*s < 32 && *s != '\n')) return 0;
    return 1;
}

typedef struct {
    char message[256];
} png_err_ctx;

static void on_png_error(png_structp png, png_const_charp msg) {
    png_err_ctx *ctx = png_get_error_ptr(png);
    snprintf(ctx->message, sizeof ctx->message, "%s", msg);
    png_longjmp(png, 1);
}

static void on_png_warning(png_structp png, png_const_charp msg) {
    (void)png;
    (void)msg;
}

/* Everything that touches libpng lives here, so no locals are live across setjmp. */
static int write_png(FILE *fp, const uint8_t *rgb, int width, int height, const is_png_text *texts,
                     int n_texts, png_err_ctx *ctx) {
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, ctx, on_png_error, on_png_warning);
    if (!png) return -1;
    png_infop info = png_create_info_struct(png);
    png_textp chunks = calloc((size_t)(n_texts > 0 ? n_texts : 1), sizeof *chunks);
    if (!info || !chunks) {
        free(chunks);
        png_destroy_write_struct(&png, info ? &info : NULL);
        return -1;
    }
    if (setjmp(png_jmpbuf(png))) {
        free(chunks);
        png_destroy_write_struct(&png, &info);
        return -1;
    }
    png_init_io(png, fp);
    png_set_IHDR(png, info, (png_uint_32)width, (png_uint_32)height, 8, PNG_COLOR_TYPE_RGB, PNG_INTERLACE_NONE,
                 PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    for (int i = 0; i < n_texts; i++) {
        chunks[i].key = (png_charp)texts[i].key;
        chunks[i].text = (png_charp)texts[i].value;
        chunks[i].compression = is_ascii(texts[i].value) ? PNG_TEXT_COMPRESSION_NONE : PNG_ITXT_COMPRESSION_NONE;
    }
    if (n_texts) png_set_text(png, info, chunks, n_texts);
    png_write_info(png, info);
    for (int y = 0; y < height; y++) png_write_row(png, (png_const_bytep)(rgb + (size_t)y * (size_t)width * 3));
    png_write_end(png, info);
    png_destroy_write_struct(&png, &info);
    free(chunks);
    return 0;
}

is_error *is_png_write_rgb8(const char *path, const uint8_t *rgb, int width, int height,
                            const is_png_text *texts, int n_texts) {
    if (width <= 0 || height <= 0)
        return is_errorf(IS_E_ARGUMENT, "%s: cannot write a %dx%d image", path, width, height);
    is_atomic_file af;
    IS_TRY(is_atomic_open(&af, path));
    png_err_ctx ctx = {{0}};
    if (write_png(af.fp, rgb, width, height, texts, n_texts, &ctx) != 0) {
        is_atomic_abort(&af);
        return is_errorf(IS_E_IO, "%s: PNG encoding failed: %s", path, ctx.message[0] ? ctx.message : "libpng error");
    }
    return is_atomic_commit(&af);
}
