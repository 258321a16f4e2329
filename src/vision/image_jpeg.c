/* JPEG decoding with libjpeg-turbo, set up as Pillow 9.4's decoder: islow IDCT, fancy upsampling,
 * libjpeg's own colour-space detection, no EXIF orientation. 1 component -> "L" (grey replicated),
 * 3 -> "RGB", 4 -> "CMYK" (Pillow assumes Adobe-inverted CMYK, then its cmyk2rgb). Truncated data
 * is an error (Pillow raises "image file is truncated"); other libjpeg warnings are ignored as
 * Pillow ignores them. Hostile files (docs/LIMITS.md): the size in the frame header is checked
 * before anything is allocated, a multi-scan file's coefficient buffers are bounded, and so are
 * its scans. */
#include <setjmp.h>
#include <stdio.h> /* before jpeglib.h, which needs FILE and size_t */
#include <stdlib.h>
#include <string.h>

#include <jerror.h>
#include <jpeglib.h>

#include "vision/image.h"

#define MAX_SCANS 1000 /* a valid progressive file has a dozen; thousands is a decoding bomb */
/* libjpeg's own buffers beside the coefficients (rows for upsampling and colour conversion). */
#define LIBJPEG_SLACK_BYTES ((unsigned long long)32 << 20)

typedef struct {
    struct jpeg_error_mgr pub;
    jmp_buf jump;
    int truncated;
    int over_memory; /* libjpeg refused to go past max_memory_to_use */
    char message[JMSG_LENGTH_MAX];
} jpeg_failure;

typedef struct {
    struct jpeg_progress_mgr pub;
    jpeg_failure *failure;
} scan_limit;

static void on_jpeg_error(j_common_ptr cinfo) {
    jpeg_failure *f = (jpeg_failure *)cinfo->err;
    f->over_memory = cinfo->err->msg_code == JERR_NO_BACKING_STORE; /* its answer past max_memory_to_use */
    if (f->over_memory)
        snprintf(f->message, sizeof f->message, "libjpeg's buffers would need more than %ld MiB",
                 cinfo->mem->max_memory_to_use >> 20);
    else
        (*cinfo->err->format_message)(cinfo, f->message);
    longjmp(f->jump, 1);
}

static void on_jpeg_message(j_common_ptr cinfo, int level) {
    jpeg_failure *f = (jpeg_failure *)cinfo->err;
    if (level < 0 && cinfo->err->msg_code == JWRN_JPEG_EOF) {
        f->truncated = 1;
        (*cinfo->err->format_message)(cinfo, f->message);
        longjmp(f->jump, 1);
    }
}

static void on_progress(j_common_ptr cinfo) {
    scan_limit *s = (scan_limit *)cinfo->progress;
    if (cinfo->is_decompressor && ((j_decompress_ptr)cinfo)->input_scan_number > MAX_SCANS) {
        snprintf(s->failure->message, sizeof s->failure->message, "more than %d scans", MAX_SCANS);
        longjmp(s->failure->jump, 1);
    }
}

/* Pillow: rawmode "CMYK;I" inverts every channel, then cmyk2rgb: nk - nk*c/255 (MULDIV255). */
static uint8_t cmyk_channel(int c, int nk) {
    int t = c * nk + 128;
    int v = nk - (((t >> 8) + t) >> 8);
    return (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v);
}

static void row_to_rgb(uint8_t *dst, const uint8_t *row, int width, int components) {
    for (int x = 0; x < width; x++, dst += 3) {
        if (components == 1) {
            dst[0] = dst[1] = dst[2] = row[x];
        } else if (components == 3) {
            memcpy(dst, row + 3 * x, 3);
        } else {
            const uint8_t *p = row + 4 * x; /* as stored: Adobe-inverted C, M, Y, K */
            int nk = p[3];                  /* 255 - K after inversion */
            for (int c = 0; c < 3; c++) dst[c] = cmyk_channel(255 - p[c], nk);
        }
    }
}

/* Bytes of the whole-image coefficient arrays libjpeg allocates for a multi-scan file (as
 * jdcoefct.c sizes them: one 128-byte block per 8x8 block, rounded up to whole MCUs); 0 for a
 * single-scan file, decoded a few rows at a time. */
static unsigned long long coefficient_bytes(j_decompress_ptr cinfo) {
    if (!jpeg_has_multiple_scans(cinfo)) return 0;
    unsigned long long total = 0;
    for (int c = 0; c < cinfo->num_components; c++) {
        const jpeg_component_info *comp = &cinfo->comp_info[c];
        unsigned long long w = comp->width_in_blocks, h = comp->height_in_blocks;
        unsigned long long hs = (unsigned long long)comp->h_samp_factor, vs = (unsigned long long)comp->v_samp_factor;
        total += (w + hs - 1) / hs * hs * ((h + vs - 1) / vs * vs) * sizeof(JBLOCK);
    }
    return total;
}

/* The checks on the header, before anything is allocated; then bounds libjpeg's memory. */
static is_error *check_header(j_decompress_ptr cinfo, const char *path) {
    int components = cinfo->num_components;
    if (components != 1 && components != 3 && components != 4)
        return is_errorf(IS_E_UNSUPPORTED, "%s: JPEG with %d components is not supported (1, 3 or 4)", path,
                         components);
    if (cinfo->data_precision != 8)
        return is_errorf(IS_E_UNSUPPORTED, "%s: %d-bit JPEG is not supported (8-bit only)", path,
                         cinfo->data_precision);
    IS_TRY(is_image_check_size(path, (long long)cinfo->image_width, (long long)cinfo->image_height));
    unsigned long long limit = is_get_max_image_pixels(), budget = limit * IS_JPEG_COEF_BYTES_PER_PIXEL;
    unsigned long long need = coefficient_bytes(cinfo);
    if (need > budget)
        return is_errorf(IS_E_UNSUPPORTED,
                         "%s: image too large: progressive JPEG of %ux%u needs %llu bytes (%.3g MiB) for its DCT "
                         "coefficients, more than the %llu (%.3g MiB) allowed: %d bytes per pixel of the limit of %llu "
                         "pixels; raise it with is_set_max_image_pixels() if the file is trusted",
                         path, cinfo->image_width, cinfo->image_height, need, (double)need / (1 << 20), budget,
                         (double)budget / (1 << 20), IS_JPEG_COEF_BYTES_PER_PIXEL, limit);
    /* The same bound inside libjpeg, should its arrays ever outgrow our count of them. */
    cinfo->mem->max_memory_to_use = (long)(budget + LIBJPEG_SLACK_BYTES);
    return NULL;
}

/* Decode every row into out (already allocated). */
static is_error *read_rows(j_decompress_ptr cinfo, const char *path, is_image *out, uint8_t *row) {
    int components = cinfo->num_components;
    while (cinfo->output_scanline < cinfo->output_height) {
        JSAMPROW rows[1] = {row};
        int y = (int)cinfo->output_scanline;
        if (jpeg_read_scanlines(cinfo, rows, 1) != 1)
            return is_errorf(IS_E_FORMAT, "%s: truncated JPEG: no data for row %d", path, y);
        row_to_rgb(out->rgb + (size_t)y * out->width * 3, row, out->width, components);
    }
    jpeg_finish_decompress(cinfo);
    return NULL;
}

/* Every libjpeg call that may longjmp, in one setjmp frame. Returns 1 after a libjpeg error (the
 * message is in failure), 0 otherwise (*err: an error of ours, or NULL). *row: the row buffer. */
static int run_libjpeg(j_decompress_ptr cinfo, scan_limit *progress, const uint8_t *data, size_t n, const char *path,
                       is_image *out, uint8_t **row, is_error **err) {
    if (setjmp(progress->failure->jump)) return 1;
    jpeg_create_decompress(cinfo);
    cinfo->progress = &progress->pub; /* after create, which clears the struct */
    jpeg_mem_src(cinfo, data, (unsigned long)n);
    jpeg_read_header(cinfo, TRUE);
    *err = check_header(cinfo, path);
    if (!*err) *err = is_image_alloc(path, (long long)cinfo->image_width, (long long)cinfo->image_height, out);
    if (*err) return 0;
    int components = cinfo->num_components;
    cinfo->out_color_space = components == 1 ? JCS_GRAYSCALE : components == 3 ? JCS_RGB : JCS_CMYK;
    cinfo->dct_method = JDCT_ISLOW;
    cinfo->do_fancy_upsampling = TRUE;
    jpeg_start_decompress(cinfo);
    if ((int)cinfo->output_components != components || (int)cinfo->output_width != out->width ||
        (int)cinfo->output_height != out->height) {
        *err = is_errorf(IS_E_FORMAT, "%s: JPEG decoder output does not match the header", path);
        return 0;
    }
    *row = malloc((size_t)out->width * (size_t)components);
    *err = *row ? read_rows(cinfo, path, out, *row) : is_error_oom(path);
    return 0;
}

/* The error for a libjpeg failure (after its longjmp). */
static is_error *libjpeg_error(const char *path, const jpeg_failure *failure) {
    if (failure->over_memory)
        return is_errorf(IS_E_UNSUPPORTED, "%s: image too large: %s; raise the limit with is_set_max_image_pixels() if "
                         "the file is trusted", path, failure->message);
    return is_errorf(IS_E_FORMAT, "%s: %s JPEG: %s", path, failure->truncated ? "truncated" : "corrupt",
                     failure->message);
}

is_error *is_jpeg_decode(const char *path, const uint8_t *data, size_t n, is_image *out, is_image_info *info) {
    struct jpeg_decompress_struct cinfo;
    jpeg_failure failure;
    scan_limit progress;
    memset(&cinfo, 0, sizeof cinfo); /* jpeg_destroy_decompress is safe even if create failed */
    memset(&failure, 0, sizeof failure);
    memset(&progress, 0, sizeof progress);
    cinfo.err = jpeg_std_error(&failure.pub);
    failure.pub.error_exit = on_jpeg_error;
    failure.pub.emit_message = on_jpeg_message;
    progress.pub.progress_monitor = on_progress;
    progress.failure = &failure;

    uint8_t *row = NULL;
    is_error *err = NULL;
    if (run_libjpeg(&cinfo, &progress, data, n, path, out, &row, &err)) err = libjpeg_error(path, &failure);
    if (!err && info) {
        int c = cinfo.num_components;
        snprintf(info->mode, sizeof info->mode, "%s", c == 1 ? "L" : c == 3 ? "RGB" : "CMYK");
    }
    free(row);
    jpeg_destroy_decompress(&cinfo);
    if (err) is_image_free(out);
    return err;
}
