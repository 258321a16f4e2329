/* is_canny: OpenCV 4.6's cv2.Canny(img, low, high) on an 8-bit 3-channel image (aperture 3, L1
 * gradient), bit for bit; the steps are those of cases/canny/README.md. OpenCV sees the image as BGR
 * (cv2.imread), we hold RGB: only the tie-break between channels depends on the order. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "vision/canny.h"
#include "vision/image.h"

/* Largest |dx| + |dy| of a 3x3 Sobel on 8-bit pixels: 4 * 255 each. */
#define MAG_MAX (2 * 4 * 255)
/* OpenCV's fixed-point tan(22.5 deg) (CANNY_SHIFT 15): 0.4142135623730950488016887242097 * 2^15. */
#define CANNY_SHIFT 15
#define TG22 13573

/* States in the edges buffer until the last pass: not a candidate, a candidate (a local maximum
 * over low), an edge. */
enum { NOT_CANDIDATE = 0, CANDIDATE = 1, EDGE = 255 };

/* floor(t) as OpenCV's cvFloor, clamped to [-1, MAG_MAX + 1]: magnitudes lie in 0..MAG_MAX and are
 * only compared with "m > t", so every threshold outside that range acts as the clamped one. (Beyond
 * the int range cvFloor gives INT_MIN on x86, making every maximum an edge; we keep the plain
 * meaning: a threshold over 2040 passes nothing.) */
static int threshold_of(double t) {
    if (t < -1.0) return -1;
    if (t > MAG_MAX + 1) return MAG_MAX + 1;
    return (int)floor(t);
}

static is_error *check_args(const is_image *rgb, double low, double high, const uint8_t *edges) {
    if (!rgb) return is_errorf(IS_E_ARGUMENT, "is_canny: no image given");
    if (!edges) return is_errorf(IS_E_ARGUMENT, "is_canny: no edges buffer given");
    if (rgb->width < 1 || rgb->height < 1)
        return is_errorf(IS_E_ARGUMENT, "is_canny: image has no pixels (%dx%d)", rgb->width, rgb->height);
    if (rgb->width > IS_IMAGE_MAX_SIDE || rgb->height > IS_IMAGE_MAX_SIDE ||
        (long long)rgb->width * rgb->height > IS_IMAGE_MAX_PIXELS)
        return is_errorf(IS_E_ARGUMENT, "is_canny: image too large: %dx%d (at most %d pixels a side and %lld in all)",
                         rgb->width, rgb->height, IS_IMAGE_MAX_SIDE, (long long)IS_IMAGE_MAX_PIXELS);
    if (!rgb->rgb) return is_errorf(IS_E_ARGUMENT, "is_canny: the %dx%d image has no pixel buffer", rgb->width,
                                    rgb->height);
    if (!isfinite(low)) return is_errorf(IS_E_ARGUMENT, "is_canny: low threshold %g is not a finite number", low);
    if (!isfinite(high)) return is_errorf(IS_E_ARGUMENT, "is_canny: high threshold %g is not a finite number", high);
    return NULL;
}

/* Step 2-3: per pixel the 3x3 Sobel of each channel with the border pixel repeated; the channel with
 * the largest |dx| + |dy| wins, ties to the first in OpenCV's B, G, R order. mag is (h+2) x (w+2)
 * with a zero frame: the neighbours outside the image that non-maximum suppression reads. */
static void gradient(const is_image *img, int32_t *mag, int16_t *dx, int16_t *dy) {
    static const int bgr_offset[3] = {2, 1, 0}; /* B, G, R inside an RGB pixel */
    const int w = img->width, h = img->height;
    const size_t stride = (size_t)w * 3, mstride = (size_t)w + 2;
    memset(mag, 0, mstride * sizeof *mag);
    memset(mag + (size_t)(h + 1) * mstride, 0, mstride * sizeof *mag);
    for (int y = 0; y < h; y++) {
        const uint8_t *up = img->rgb + (size_t)(y > 0 ? y - 1 : 0) * stride;
        const uint8_t *row = img->rgb + (size_t)y * stride;
        const uint8_t *down = img->rgb + (size_t)(y < h - 1 ? y + 1 : h - 1) * stride;
        int32_t *mrow = mag + (size_t)(y + 1) * mstride;
        mrow[0] = mrow[w + 1] = 0;
        for (int x = 0; x < w; x++) {
            const size_t l = (size_t)(x > 0 ? x - 1 : 0) * 3, c = (size_t)x * 3;
            const size_t r = (size_t)(x < w - 1 ? x + 1 : x) * 3;
            int best_m = -1, best_dx = 0, best_dy = 0;
            for (int k = 0; k < 3; k++) {
                const int o = bgr_offset[k];
                int gx = (up[r + o] + 2 * row[r + o] + down[r + o]) - (up[l + o] + 2 * row[l + o] + down[l + o]);
                int gy = (down[l + o] + 2 * down[c + o] + down[r + o]) - (up[l + o] + 2 * up[c + o] + up[r + o]);
                int m = abs(gx) + abs(gy);
                if (m > best_m) best_m = m, best_dx = gx, best_dy = gy;
            }
            const size_t i = (size_t)y * w + x;
            mrow[x + 1] = best_m;
            dx[i] = (int16_t)best_dx;
            dy[i] = (int16_t)best_dy;
        }
    }
}

/* Step 4: marks each pixel NOT_CANDIDATE, CANDIDATE or (a candidate over high) EDGE, and pushes the
 * EDGE ones on stack. Returns how many it pushed. */
static size_t suppress(int w, int h, const int32_t *mag, const int16_t *dx, const int16_t *dy, int low, int high,
                       uint8_t *map, uint32_t *stack) {
    const size_t mstride = (size_t)w + 2;
    size_t top = 0;
    for (int y = 0; y < h; y++) {
        const int32_t *above = mag + (size_t)y * mstride + 1, *here = above + mstride, *below = here + mstride;
        for (int x = 0; x < w; x++) {
            const size_t i = (size_t)y * w + x;
            const int m = here[x];
            map[i] = NOT_CANDIDATE;
            if (m <= low) continue;
            const int xs = dx[i], ys = dy[i];
            const int ax = abs(xs), ay = abs(ys) << CANNY_SHIFT;
            const int tg22x = ax * TG22, tg67x = tg22x + (ax << (CANNY_SHIFT + 1));
            int peak;
            if (ay < tg22x) { /* gradient about horizontal: compare along the row */
                peak = m > here[x - 1] && m >= here[x + 1];
            } else if (ay > tg67x) { /* about vertical: along the column */
                peak = m > above[x] && m >= below[x];
            } else { /* diagonal: s = -1 when dx and dy have opposite signs */
                const int s = (xs ^ ys) < 0 ? -1 : 1;
                peak = m > above[x - s] && m > below[x + s];
            }
            if (!peak) continue;
            if (m > high) {
                map[i] = EDGE;
                stack[top++] = (uint32_t)i;
            } else {
                map[i] = CANDIDATE;
            }
        }
    }
    return top;
}

/* Step 5: every candidate 8-connected to an edge through candidates becomes an edge. Each pixel is
 * pushed at most once (it is marked EDGE when pushed), so the stack holds at most w*h entries. */
static void hysteresis(int w, int h, uint8_t *map, uint32_t *stack, size_t top) {
    while (top > 0) {
        const uint32_t i = stack[--top];
        const int y = (int)(i / (uint32_t)w), x = (int)(i % (uint32_t)w);
        for (int ny = y - 1; ny <= y + 1; ny++) {
            if (ny < 0 || ny >= h) continue;
            for (int nx = x - 1; nx <= x + 1; nx++) {
                if (nx < 0 || nx >= w) continue;
                const size_t j = (size_t)ny * w + nx;
                if (map[j] != CANDIDATE) continue;
                map[j] = EDGE;
                stack[top++] = (uint32_t)j;
            }
        }
    }
}

is_error *is_canny_ex(const is_image *rgb, double low, double high, uint8_t *edges, int16_t *dx, int16_t *dy,
                      int32_t *mag) {
    IS_TRY(check_args(rgb, low, high, edges));
    if (low > high) {
        double t = low;
        low = high;
        high = t;
    }
    const int w = rgb->width, h = rgb->height;
    const size_t n = (size_t)w * h, n_mag = ((size_t)w + 2) * ((size_t)h + 2);
    /* One block: padded magnitudes and the stack (4-byte), then dx and dy (2-byte). */
    uint8_t *block = malloc(n_mag * sizeof(int32_t) + n * sizeof(uint32_t) + 2 * n * sizeof(int16_t));
    if (!block) return is_errorf(IS_E_NOMEM, "is_canny: out of memory for a %dx%d image", w, h);
    int32_t *m = (int32_t *)block;
    uint32_t *stack = (uint32_t *)(m + n_mag);
    int16_t *gx = (int16_t *)(stack + n), *gy = gx + n;

    gradient(rgb, m, gx, gy);
    size_t top = suppress(w, h, m, gx, gy, threshold_of(low), threshold_of(high), edges, stack);
    hysteresis(w, h, edges, stack, top);
    for (size_t i = 0; i < n; i++)
        if (edges[i] != EDGE) edges[i] = 0;

    if (dx) memcpy(dx, gx, n * sizeof *dx);
    if (dy) memcpy(dy, gy, n * sizeof *dy);
    if (mag)
        for (int y = 0; y < h; y++)
            memcpy(mag + (size_t)y * w, m + (size_t)(y + 1) * (w + 2) + 1, (size_t)w * sizeof *mag);
    free(block);
    return NULL;
}

is_error *is_canny(const is_image *rgb, double low, double high, uint8_t *edges) {
    return is_canny_ex(rgb, low, high, edges, NULL, NULL, NULL);
}
