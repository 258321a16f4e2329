/* PNG decoding with libpng into what Pillow 9.4 gives for Image.open(f).convert("RGB"):
 * grey is replicated, alpha is dropped (never composited), palettes are looked up ignoring tRNS
 * (indices past the PLTE entries read Pillow's default ramp (i, i, i)), 16-bit RGB(A) and grey+alpha
 * keep the HIGH byte of each sample, and 16-bit grey (Pillow mode "I") is CLIPPED to 0..255.
 * Hostile files (docs/LIMITS.md): the IHDR size is checked before libpng starts; every ancillary
 * chunk is skipped unread (no text, no profile: nothing sized by the file is allocated); CRCs are
 * checked up to the first IDAT, as Pillow does; reading stops at the last row, as Pillow does. */
#include <png.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vision/image.h"

/* Bounds on what libpng may allocate for one chunk or keep across chunks. We skip every chunk that
 * would use them, so they only back that up; 1 MiB is Pillow's MAX_TEXT_CHUNK. */
#define PNG_CHUNK_MALLOC_MAX ((png_alloc_size_t)1 << 20)
#define PNG_CHUNK_CACHE_MAX 64

typedef struct {
    const uint8_t *data;
    size_t size, pos;
    int truncated;
    char message[200];
} png_source;

/* One decode: the IHDR fields, the row buffer and how far reading went (read after a longjmp). */
typedef struct {
    png_source src;
    png_uint_32 width, height;
    int bit_depth, color_type, interlaced, passes;
    png_colorp palette;
    int num_palette;
    uint8_t *buf;     /* interlaced: the whole image (libpng fills it pass by pass); else one row */
    png_bytep *rows;  /* interlaced only: row pointers into buf */
    volatile int reading_rows;
    volatile png_uint_32 converted; /* rows of the output written so far */
} png_job;

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

static void convert_row(png_job *job, is_image *out, png_uint_32 y, const uint8_t *row) {
    row_to_rgb(out->rgb + (size_t)y * job->width * 3, row, (int)job->width, job->color_type, job->bit_depth,
               job->palette, job->num_palette);
    job->converted = y + 1;
}

/* The size IHDR declares, refused before libpng allocates anything (IHDR must be the first chunk;
 * a file too short or without it is left to libpng's own error). */
static is_error *check_declared_size(const char *path, const uint8_t *data, size_t n) {
    if (n < 24 || memcmp(data + 12, "IHDR", 4) != 0) return NULL;
    long long w = ((long long)data[16] << 24) | (data[17] << 16) | (data[18] << 8) | data[19];
    long long h = ((long long)data[20] << 24) | (data[21] << 16) | (data[22] << 8) | data[23];
    return is_image_check_size(path, w, h);
}

/* libpng settings that bound what a hostile file can make it do. */
static void limit_libpng(png_structp png) {
    png_set_user_limits(png, IS_IMAGE_MAX_SIDE, IS_IMAGE_MAX_SIDE);
    png_set_chunk_malloc_max(png, PNG_CHUNK_MALLOC_MAX);
    png_set_chunk_cache_max(png, PNG_CHUNK_CACHE_MAX);
    /* We use IHDR, PLTE and IDAT only (tRNS, also kept, is fixed-size). libpng would read a text
     * chunk whole into one buffer, even past its "chunk data is too large" check, which is only a
     * warning: skip all other chunks, known or not, unread (their CRC is still checked). */
    png_set_keep_unknown_chunks(png, PNG_HANDLE_CHUNK_NEVER, NULL, -1);
    /* Pillow verifies the CRC of every chunk before the image data: a bad ancillary one is fatal too. */
    png_set_crc_action(png, PNG_CRC_DEFAULT, PNG_CRC_ERROR_QUIT);
}

/* After png_read_info: transforms, then the output image and libpng's buffer. */
static is_error *prepare_rows(png_structp png, png_infop pinfo, png_job *job, const char *path, is_image *out) {
    png_get_IHDR(png, pinfo, &job->width, &job->height, &job->bit_depth, &job->color_type, &job->interlaced,
                 NULL, NULL);
    IS_TRY(is_image_alloc(path, (long long)job->width, (long long)job->height, out));
    if (job->bit_depth < 8 && job->color_type == PNG_COLOR_TYPE_GRAY) png_set_expand_gray_1_2_4_to_8(png);
    if (job->bit_depth < 8 && job->color_type == PNG_COLOR_TYPE_PALETTE) png_set_packing(png);
    if (job->bit_depth == 16 && job->color_type != PNG_COLOR_TYPE_GRAY) png_set_strip_16(png); /* high byte */
    job->passes = png_set_interlace_handling(png);
    png_read_update_info(png, pinfo);
    if (job->color_type == PNG_COLOR_TYPE_PALETTE) png_get_PLTE(png, pinfo, &job->palette, &job->num_palette);
    size_t rowbytes = png_get_rowbytes(png, pinfo);
    job->interlaced = job->interlaced != PNG_INTERLACE_NONE;
    job->buf = malloc(job->interlaced ? rowbytes * job->height : rowbytes);
    if (!job->buf) return is_error_oom(path);
    if (job->interlaced) {
        job->rows = malloc(sizeof(png_bytep) * job->height);
        if (!job->rows) return is_error_oom(path);
        for (png_uint_32 y = 0; y < job->height; y++) job->rows[y] = job->buf + y * rowbytes;
    }
    return NULL;
}

/* Interlaced: every pass into the whole-image buffer, then convert. Else row by row. */
static void read_rows(png_structp png, png_job *job, is_image *out) {
    job->reading_rows = 1;
    if (job->interlaced) {
        for (int pass = 0; pass < job->passes; pass++)
            for (png_uint_32 y = 0; y < job->height; y++) png_read_row(png, job->rows[y], NULL);
        for (png_uint_32 y = 0; y < job->height; y++) convert_row(job, out, y, job->rows[y]);
    } else {
        for (png_uint_32 y = 0; y < job->height; y++) {
            png_read_row(png, job->buf, NULL);
            convert_row(job, out, y, job->buf);
        }
    }
    job->reading_rows = 0;
}

/* Every libpng call that may longjmp, in one setjmp frame. Returns 1 after a libpng error (the
 * message is in job->src), 0 otherwise (*err: an error of ours, or NULL). */
static int run_libpng(png_structp png, png_infop pinfo, png_job *job, const char *path, is_image *out, is_error **err) {
    if (setjmp(png_jmpbuf(png))) return 1;
    png_set_read_fn(png, &job->src, read_from_memory);
    limit_libpng(png);
    png_read_info(png, pinfo);
    *err = prepare_rows(png, pinfo, job, path, out);
    if (*err) return 0;
    /* From the first IDAT on Pillow checks no CRC (PngImagePlugin.load_read skips them). */
    png_set_crc_action(png, PNG_CRC_QUIET_USE, PNG_CRC_QUIET_USE);
    read_rows(png, job, out);
    return 0;
}

/* Whether libpng failed only after delivering the last row: while looking for the end of the zlib
 * stream or at the chunk after the image data. Pillow stops reading at the last row and never sees
 * either, so the image counts (docs/LIMITS.md). A stream that ends early is still an error. */
static int rows_all_delivered(png_structp png, const png_job *job) {
    if (!job->reading_rows) return 0;
    if (job->interlaced) return png_get_current_pass_number(png) >= 7;
    return png_get_current_row_number(png) >= job->height;
}

/* After a late libpng error: the rows it delivered but we had not converted yet. */
static void finish_rows(png_job *job, is_image *out) {
    if (job->interlaced) {
        for (png_uint_32 y = 0; y < job->height; y++) convert_row(job, out, y, job->rows[y]);
    } else if (job->converted + 1 == job->height) {
        convert_row(job, out, job->height - 1, job->buf);
    }
}

is_error *is_png_decode(const char *path, const uint8_t *data, size_t n, is_image *out, is_image_info *info) {
    IS_TRY(check_declared_size(path, data, n));
    png_job job;
    memset(&job, 0, sizeof job);
    job.src.data = data;
    job.src.size = n;
    png_structp png = png_create_read_struct(PNG_LIBPNG_VER_STRING, &job.src, on_png_error, on_png_warning);
    if (!png) return is_error_oom(path);
    png_infop pinfo = png_create_info_struct(png);
    if (!pinfo) {
        png_destroy_read_struct(&png, NULL, NULL);
        return is_error_oom(path);
    }
    is_error *err = NULL;
    if (run_libpng(png, pinfo, &job, path, out, &err)) {
        if (rows_all_delivered(png, &job))
            finish_rows(&job, out);
        else
            err = is_errorf(IS_E_FORMAT, "%s: %s PNG: %s", path, job.src.truncated ? "truncated" : "corrupt",
                            job.src.message);
    }
    if (!err && info) snprintf(info->mode, sizeof info->mode, "%s", pillow_mode(job.color_type, job.bit_depth));
    free(job.buf);
    free(job.rows);
    png_destroy_read_struct(&png, &pinfo, NULL);
    if (err) is_image_free(out);
    return err;
}
