/* JPEG decoding with libjpeg-turbo, set up as Pillow 9.4's decoder: islow IDCT, fancy upsampling,
 * libjpeg's own colour-space detection, no EXIF orientation. 1 component -> "L" (grey replicated),
 * 3 -> "RGB", 4 -> "CMYK" (Pillow assumes Adobe-inverted CMYK, then its cmyk2rgb). Truncated data
 * is an error (Pillow raises "image file is truncated"); other libjpeg warnings are ignored as
 * Pillow ignores them. */
#include <setjmp.h>
#include <stdio.h> /* before jpeglib.h, which needs FILE and size_t */
#include <stdlib.h>
#include <string.h>

#include <jerror.h>
#include <jpeglib.h>

#include "vision/image.h"

#define MAX_SCANS 1000 /* a valid progressive file has a dozen; thousands is a decoding bomb */

typedef struct {
    struct jpeg_error_mgr pub;
    jmp_buf jump;
    int truncated;
    char message[JMSG_LENGTH_MAX];
} jpeg_failure;

typedef struct {
    struct jpeg_progress_mgr pub;
    jpeg_failure *failure;
} scan_limit;

static void on_jpeg_error(j_common_ptr cinfo) {
    jpeg_failure *f = (jpeg_failure *)cinfo->err;
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

is_error *is_jpeg_decode(const char *path, const uint8_t *data, size_t n, is_image *out, is_image_info *info) {
    struct jpeg_decompress_struct cinfo;
    jpeg_failure failure;
    scan_limit progress;
    memset(&failure, 0, sizeof failure);
    cinfo.err = jpeg_std_error(&failure.pub);
    failure.pub.error_exit = on_jpeg_error;
    failure.pub.emit_message = on_jpeg_message;
    uint8_t *volatile row = NULL; /* changed after setjmp and used after a longjmp */
    is_error *volatile err = NULL;

    if (setjmp(failure.jump)) {
        free(row);
        jpeg_destroy_decompress(&cinfo);
        is_image_free(out);
        return is_errorf(IS_E_FORMAT, "%s: %s JPEG: %s", path, failure.truncated ? "truncated" : "corrupt",
                         failure.message);
    }
    jpeg_create_decompress(&cinfo);
    progress.pub.progress_monitor = on_progress;
    progress.failure = &failure;
    cinfo.progress = &progress.pub;
    jpeg_mem_src(&cinfo, data, (unsigned long)n);
    jpeg_read_header(&cinfo, TRUE);

    int components = cinfo.num_components;
    const char *mode = components == 1 ? "L" : components == 3 ? "RGB" : components == 4 ? "CMYK" : NULL;
    if (!mode) {
        err = is_errorf(IS_E_UNSUPPORTED, "%s: JPEG with %d components is not supported (1, 3 or 4)", path, components);
    } else if (cinfo.data_precision != 8) {
        err = is_errorf(IS_E_UNSUPPORTED, "%s: %d-bit JPEG is not supported (8-bit only)", path, cinfo.data_precision);
    } else {
        err = is_image_alloc(path, (long long)cinfo.image_width, (long long)cinfo.image_height, out);
    }
    if (!err) {
        cinfo.out_color_space = components == 1 ? JCS_GRAYSCALE : components == 3 ? JCS_RGB : JCS_CMYK;
        cinfo.dct_method = JDCT_ISLOW;
        cinfo.do_fancy_upsampling = TRUE;
        jpeg_start_decompress(&cinfo);
        if ((int)cinfo.output_components != components || (int)cinfo.output_width != out->width ||
            (int)cinfo.output_height != out->height) {
            err = is_errorf(IS_E_FORMAT, "%s: JPEG decoder output does not match the header", path);
        } else {
            row = malloc((size_t)out->width * (size_t)components);
            if (!row) err = is_error_oom(path);
        }
    }
    if (!err) {
        while (cinfo.output_scanline < cinfo.output_height) {
            JSAMPROW rows[1] = {row};
            int y = (int)cinfo.output_scanline;
            if (jpeg_read_scanlines(&cinfo, rows, 1) != 1) {
                err = is_errorf(IS_E_FORMAT, "%s: truncated JPEG: no data for row %d", path, y);
                break;
            }
            row_to_rgb(out->rgb + (size_t)y * out->width * 3, row, out->width, components);
        }
        if (!err) jpeg_finish_decompress(&cinfo);
        if (info) snprintf(info->mode, sizeof info->mode, "%s", mode);
    }
    free(row);
    jpeg_destroy_decompress(&cinfo);
    if (err) is_image_free(out);
    return err;
}
