/* instantstyle canny: the Canny edge map of an image, as InstantStyle's ControlNet scripts make their
 * control images (cv2.Canny(cv2.imread(IN), low, high), the map in all three channels of an RGB PNG). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "command_args.h"
#include "commands.h"
#include "core/error.h"
#include "core/fileio.h"
#include "instantstyle.h"
#include "pipeline/png_write.h"

static void usage(FILE *out) {
    fprintf(out,
            "usage: instantstyle canny [--low L] [--high H] [--] IN OUT\n\n"
            "Writes the Canny edge map of the image IN (PNG or JPEG) to the PNG OUT: 255 on an edge, 0\n"
            "elsewhere, in all three RGB channels, exactly as OpenCV 4.6's\n"
            "cv2.Canny(cv2.imread(IN), L, H) computes it (aperture 3, L1 gradient). InstantStyle's\n"
            "ControlNet control images use 50 and 200.\n\n"
            "options:\n"
            "  --low L      lower hysteresis threshold (default 50)\n"
            "  --high H     upper hysteresis threshold (default 200); L > H are swapped, both floored\n"
            "  --           end of options (for a file name that starts with '-')\n"
            "  -h, --help   show this help\n\n"
            "example:\n"
            "  instantstyle canny photo.jpg control.png --low 50 --high 200\n");
}

/* Load, detect, encode, write atomically (OUT is untouched on any failure). */
static is_error *run(const char *in, const char *out, double low, double high, long *n_edges, is_image *img) {
    IS_TRY(is_error_wrap(is_output_check(out), "OUT"));
    IS_TRY(is_image_load(in, img));
    size_t n = (size_t)img->width * img->height;
    uint8_t *buf = malloc(n * 4); /* the map, then its RGB copy */
    if (!buf) return is_error_oom("canny edge map");
    uint8_t *edges = buf, *rgb = buf + n;
    is_error *e = is_error_wrap(is_canny(img, low, high, edges), "%s", in);
    uint8_t *png = NULL;
    size_t png_size = 0;
    if (!e) {
        *n_edges = 0;
        for (size_t i = 0; i < n; i++) {
            *n_edges += edges[i] != 0;
            rgb[3 * i] = rgb[3 * i + 1] = rgb[3 * i + 2] = edges[i];
        }
        e = is_png_encode_rgb8(rgb, img->width, img->height, NULL, 0, &png, &png_size);
    }
    if (!e) e = is_write_file_atomic(out, png, png_size);
    free(png);
    free(buf);
    return e;
}

int is_cmd_canny(int argc, char **argv) {
    is_canny_options o;
    is_error *e = is_canny_parse(argc, argv, &o);
    if (o.help) {
        usage(stdout);
        return 0;
    }
    if (e) return is_cli_refuse(e, o.usage, "canny", usage);
    const char *files[2] = {o.in, o.out};
    double low = o.low, high = o.high;

    is_image img = {0, 0, NULL};
    long n_edges = 0;
    e = run(files[0], files[1], low, high, &n_edges, &img);
    if (!e)
        printf("wrote %s: %dx%d, %ld edge pixels (low %g, high %g)\n", files[1], img.width, img.height, n_edges, low,
               high);
    is_image_free(&img);
    return e ? is_cli_fail(e) : 0;
}
