/* PNG encoding with text chunks into memory (libpng write callbacks): is_save_png writes these same
 * bytes atomically, so the file and the in-memory output can never differ. */
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

/* Where libpng's output goes: a growing buffer, and the first error message. */
typedef struct {
    uint8_t *data;
    size_t len, cap;
    char message[256];
} png_sink;

static void on_png_error(png_structp png, png_const_charp msg) {
    png_sink *s = png_get_error_ptr(png);
    snprintf(s->message, sizeof s->message, "%s", msg);
    png_longjmp(png, 1);
}

static void on_png_warning(png_structp png, png_const_charp msg) {
    (void)png;
    (void)msg;
}

static void on_png_write(png_structp png, png_bytep bytes, png_size_t n) {
    png_sink *s = png_get_io_ptr(png);
    if (s->len + n > s->cap) {
        size_t cap = s->cap ? s->cap : 1 << 16;
        while (cap < s->len + n) cap *= 2;
        uint8_t *grown = realloc(s->data, cap);
        if (!grown) png_error(png, "out of memory");
        s->data = grown;
        s->cap = cap;
    }
    memcpy(s->data + s->len, bytes, n);
    s->len += n;
}

static void on_png_flush(png_structp png) { (void)png; }

/* Everything that touches libpng lives here, so no locals are live across setjmp. */
static int encode(png_sink *sink, const uint8_t *rgb, int width, int height, const is_png_text *texts, int n_texts) {
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, sink, on_png_error, on_png_warning);
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
    png_set_write_fn(png, sink, on_png_write, on_png_flush);
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

is_error *is_png_encode_rgb8(const uint8_t *rgb, int width, int height, const is_png_text *texts, int n_texts,
                             uint8_t **data, size_t *size) {
    *data = NULL;
    *size = 0;
    if (!rgb || width <= 0 || height <= 0)
        return is_errorf(IS_E_ARGUMENT, "cannot encode a %dx%d image as PNG", width, height);
    png_sink sink;
    memset(&sink, 0, sizeof sink);
    if (encode(&sink, rgb, width, height, texts, n_texts) != 0) {
        free(sink.data);
        return is_errorf(IS_E_INTERNAL, "PNG encoding failed: %s", sink.message[0] ? sink.message : "libpng error");
    }
    *data = sink.data;
    *size = sink.len;
    return NULL;
}

