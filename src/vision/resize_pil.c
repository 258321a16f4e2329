/* Pillow 9.4's ImagingResample (src/libImaging/Resample.c) for 8-bit RGB, bit-exact:
 * per output position, weights filter((x + xmin - center + 0.5) / filterscale) over
 * [xmin, xmin + xmax), normalised to sum 1 in double, then 22-bit fixed point rounded half away
 * from zero; each pass accumulates from 2^21 and clips (acc >> 22) to 0..255. The horizontal pass
 * runs first (on the rows the vertical pass needs), its uint8 result feeds the vertical pass; a
 * pass whose size is unchanged is skipped (Pillow's need_horizontal / need_vertical). Output
 * positions are independent, so computing only a window of the result is exact. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "vision/image.h"

#define PRECISION_BITS (32 - 8 - 2)

typedef struct {
    double (*fn)(double x);
    double support;
} pil_filter;

static double box_filter(double x) { return (x > -0.5 && x <= 0.5) ? 1.0 : 0.0; }

static double bilinear_filter(double x) {
    if (x < 0.0) x = -x;
    return x < 1.0 ? 1.0 - x : 0.0;
}

static double hamming_filter(double x) {
    if (x < 0.0) x = -x;
    if (x == 0.0) return 1.0;
    if (x >= 1.0) return 0.0;
    x = x * M_PI;
    return sin(x) / x * (0.54f + 0.46f * cos(x)); /* float constants, as in Pillow */
}

static double bicubic_filter(double x) {
    const double a = -0.5;
    if (x < 0.0) x = -x;
    if (x < 1.0) return ((a + 2.0) * x - (a + 3.0)) * x * x + 1;
    if (x < 2.0) return (((x - 5) * x + 8) * x - 4) * a;
    return 0.0;
}

static double sinc_filter(double x) {
    if (x == 0.0) return 1.0;
    x = x * M_PI;
    return sin(x) / x;
}

static double lanczos_filter(double x) {
    if (-3.0 <= x && x < 3.0) return sinc_filter(x) * sinc_filter(x / 3);
    return 0.0;
}

static const pil_filter *filter_of(int filter) {
    static const pil_filter box = {box_filter, 0.5}, bilinear = {bilinear_filter, 1.0},
                            hamming = {hamming_filter, 1.0}, bicubic = {bicubic_filter, 2.0},
                            lanczos = {lanczos_filter, 3.0};
    switch (filter) {
    case IS_PIL_BOX: return &box;
    case IS_PIL_BILINEAR: return &bilinear;
    case IS_PIL_HAMMING: return &hamming;
    case IS_PIL_BICUBIC: return &bicubic;
    case IS_PIL_LANCZOS: return &lanczos;
    default: return NULL;
    }
}

/* Fixed-point weights of output positions [first, first + count) along one axis. */
typedef struct {
    int ksize;
    int *bounds;  /* [count][2]: first input index, number of taps */
    int32_t *k;   /* [count][ksize] */
} axis_coeffs;

static void axis_coeffs_free(axis_coeffs *c) {
    free(c->bounds);
    free(c->k);
    memset(c, 0, sizeof *c);
}

static is_error *axis_coeffs_make(int in_size, int out_size, const pil_filter *f, int first, int count,
                                  axis_coeffs *c) {
    memset(c, 0, sizeof *c);
    /* Pillow: box edges are floats, in1 - in0 = (float)in_size; scale = (double)(in1 - in0) / out */
    double scale = (double)((float)in_size - 0.0f) / out_size, filterscale = scale;
    if (filterscale < 1.0) filterscale = 1.0;
    double support = f->support * filterscale;
    int ksize = (int)ceil(support) * 2 + 1;
    c->ksize = ksize;
    c->bounds = malloc(sizeof(int) * 2 * (size_t)count);
    c->k = calloc((size_t)count * (size_t)ksize, sizeof(int32_t));
    double *w = malloc(sizeof(double) * (size_t)ksize);
    if (!c->bounds || !c->k || !w) {
        free(w);
        axis_coeffs_free(c);
        return is_error_oom("resize coefficients");
    }
    for (int i = 0; i < count; i++) {
        int xx = first + i;
        double center = 0.0f + (xx + 0.5) * scale, ww = 0.0, ss = 1.0 / filterscale;
        int xmin = (int)(center - support + 0.5);
        if (xmin < 0) xmin = 0;
        int xmax = (int)(center + support + 0.5);
        if (xmax > in_size) xmax = in_size;
        xmax -= xmin;
        if (xmax > ksize) xmax = ksize; /* cannot happen; keeps the buffer safe */
        for (int x = 0; x < xmax; x++) {
            w[x] = f->fn((x + xmin - center + 0.5) * ss);
            ww += w[x];
        }
        int32_t *k = c->k + (size_t)i * ksize;
        for (int x = 0; x < xmax; x++) {
            double v = ww != 0.0 ? w[x] / ww : w[x];
            k[x] = v < 0 ? (int32_t)(-0.5 + v * (1 << PRECISION_BITS)) : (int32_t)(0.5 + v * (1 << PRECISION_BITS));
        }
        c->bounds[2 * i] = xmin;
        c->bounds[2 * i + 1] = xmax;
    }
    free(w);
    return NULL;
}

static inline uint8_t clip8(int64_t acc) {
    if (acc < 0) return 0;
    acc >>= PRECISION_BITS;
    return (uint8_t)(acc > 255 ? 255 : acc);
}

/* dst[r][i] = sum_x src[r][xmin + x] * k[x] over n_rows rows of RGB pixels. */
static void horizontal_pass(uint8_t *dst, int dst_w, const uint8_t *src, int src_w, int n_rows,
                            const axis_coeffs *c) {
    for (int r = 0; r < n_rows; r++) {
        const uint8_t *s = src + (size_t)r * src_w * 3;
        uint8_t *d = dst + (size_t)r * dst_w * 3;
        for (int i = 0; i < dst_w; i++) {
            int xmin = c->bounds[2 * i], xmax = c->bounds[2 * i + 1];
            const int32_t *k = c->k + (size_t)i * c->ksize;
            int64_t s0 = 1 << (PRECISION_BITS - 1), s1 = s0, s2 = s0;
            for (int x = 0; x < xmax; x++) {
                const uint8_t *p = s + (size_t)(xmin + x) * 3;
                s0 += p[0] * (int64_t)k[x];
                s1 += p[1] * (int64_t)k[x];
                s2 += p[2] * (int64_t)k[x];
            }
            d[3 * i] = clip8(s0);
            d[3 * i + 1] = clip8(s1);
            d[3 * i + 2] = clip8(s2);
        }
    }
}

/* dst[j][col] = sum_y src[ymin - row0 + y][col] * k[y]; src holds rows from row0 on. */
static void vertical_pass(uint8_t *dst, int n_out, const uint8_t *src, int row0, int width, const axis_coeffs *c) {
    size_t stride = (size_t)width * 3;
    for (int j = 0; j < n_out; j++) {
        int ymin = c->bounds[2 * j] - row0, ymax = c->bounds[2 * j + 1];
        const int32_t *k = c->k + (size_t)j * c->ksize;
        uint8_t *d = dst + (size_t)j * stride;
        for (size_t col = 0; col < stride; col++) {
            int64_t acc = 1 << (PRECISION_BITS - 1);
            for (int y = 0; y < ymax; y++) acc += src[(size_t)(ymin + y) * stride + col] * (int64_t)k[y];
            d[col] = clip8(acc);
        }
    }
}

is_error *is_pil_resize_window(const is_image *in, int out_w, int out_h, int filter, int x0, int y0, int win_w,
                               int win_h, uint8_t *out) {
    const pil_filter *f = filter_of(filter);
    if (!f) return is_errorf(IS_E_UNSUPPORTED, "resize: Pillow resampling filter %d is not supported "
                                               "(1 LANCZOS, 2 BILINEAR, 3 BICUBIC, 4 BOX, 5 HAMMING)", filter);
    if (!in || !in->rgb || in->width <= 0 || in->height <= 0 || out_w <= 0 || out_h <= 0 || win_w <= 0 ||
        win_h <= 0 || x0 < 0 || y0 < 0 || x0 > out_w - win_w || y0 > out_h - win_h)
        return is_errorf(IS_E_ARGUMENT, "resize: window %dx%d at (%d, %d) is not inside the %dx%d result of a %dx%d image",
                         win_w, win_h, x0, y0, out_w, out_h, in ? in->width : 0, in ? in->height : 0);
    int need_h = out_w != in->width, need_v = out_h != in->height;
    axis_coeffs hc = {0}, vc = {0};
    is_error *e = NULL;
    if (need_v) e = axis_coeffs_make(in->height, out_h, f, y0, win_h, &vc);
    if (!e && need_h) e = axis_coeffs_make(in->width, out_w, f, x0, win_w, &hc);
    if (e) {
        axis_coeffs_free(&vc);
        return e;
    }
    /* Input rows the vertical pass reads (bounds are monotonic in the output index). */
    int row0 = y0, row1 = y0 + win_h;
    if (need_v) {
        row0 = vc.bounds[0];
        row1 = vc.bounds[2 * (win_h - 1)] + vc.bounds[2 * (win_h - 1) + 1];
    }
    int n_rows = row1 - row0;
    uint8_t *tmp = malloc((size_t)n_rows * win_w * 3);
    if (!tmp) {
        axis_coeffs_free(&hc);
        axis_coeffs_free(&vc);
        return is_error_oom("resize buffer");
    }
    const uint8_t *src_rows = in->rgb + (size_t)row0 * in->width * 3;
    if (need_h) {
        horizontal_pass(tmp, win_w, src_rows, in->width, n_rows, &hc);
    } else {
        for (int r = 0; r < n_rows; r++)
            memcpy(tmp + (size_t)r * win_w * 3, src_rows + ((size_t)r * in->width + x0) * 3, (size_t)win_w * 3);
    }
    if (need_v)
        vertical_pass(out, win_h, tmp, row0, win_w, &vc);
    else
        memcpy(out, tmp, (size_t)win_h * win_w * 3);
    free(tmp);
    axis_coeffs_free(&hc);
    axis_coeffs_free(&vc);
    return NULL;
}
