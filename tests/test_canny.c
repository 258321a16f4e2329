/* is_canny against cv2.Canny(cv2.imread(image), low, high) (OpenCV 4.6) for every case of
 * cases/canny, exactly: the decoded pixels, the chosen channel's dx, dy and magnitude where the golden
 * stores them, and the edge map. Also small images worked out by hand from the algorithm of
 * cases/canny/README.md, the thresholds' swap and floor, argument errors, and `instantstyle canny`
 * (the real program) on one golden image. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/fileio.h"
#include "core/safetensors.h"
#include "harness.h"
#include "instantstyle.h"
#include "vision/canny.h"

#define GROUP "canny"

/* ------------------------------------------------------------------ exact integer comparison */

/* Element i of an integer array of dtype dt (memcpy: the golden's tensors need not be aligned). */
static long long int_at(is_dtype dt, const void *p, size_t i) {
    const uint8_t *b = p;
    switch (dt) {
    case IS_DT_U8: return b[i];
    case IS_DT_I16: {
        int16_t v;
        memcpy(&v, b + 2 * i, 2);
        return v;
    }
    case IS_DT_I32: {
        int32_t v;
        memcpy(&v, b + 4 * i, 4);
        return v;
    }
    default: abort();
    }
}

/* got (dtype dt, h x w x ch values) must equal the golden tensor t element for element, with t's dtype
 * dt and shape [h, w] (ch 1) or [h, w, ch]. Reports how many differ and the first. */
static void exact(const char *what, const is_tensor *t, is_dtype dt, const void *got, int w, int h, int ch) {
    int shape_ok = t->dtype == dt && t->ndim == (ch == 1 ? 2 : 3) && t->shape[0] == h && t->shape[1] == w &&
                   (ch == 1 || t->shape[2] == ch);
    th_check(shape_ok, "%s: golden is %s [%lld,%lld,...], expected %s [%d,%d%s]", what, is_dtype_name(t->dtype),
             (long long)t->shape[0], (long long)(t->ndim > 1 ? t->shape[1] : 0), is_dtype_name(dt), h, w,
             ch == 1 ? "" : ",3");
    if (!shape_ok) return;
    size_t n = (size_t)w * h * ch, bad = 0, first = 0;
    for (size_t i = 0; i < n; i++)
        if (int_at(dt, got, i) != int_at(dt, t->data, i) && bad++ == 0) first = i;
    size_t px = first / (size_t)ch;
    th_check(bad == 0, "%s: %zu of %zu values differ; first at y %zu x %zu%s: got %lld, cv2 %lld", what, bad, n,
             px / (size_t)w, px % (size_t)w, ch == 1 ? "" : " (channel given)", int_at(dt, got, first),
             int_at(dt, t->data, first));
    if (bad == 0) printf("  ok %s: %zu values equal\n", what, n);
}

static long count_edges(const uint8_t *edges, size_t n) {
    long k = 0;
    for (size_t i = 0; i < n; i++) k += edges[i] != 0;
    return k;
}

/* ------------------------------------------------------------------ golden cases */

static int json_int(const cJSON *c, const char *key, int i) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(c, key);
    if (i >= 0) v = cJSON_GetArrayItem(v, i);
    if (!cJSON_IsNumber(v)) {
        th_check(0, "cases.json: %s%s is not a number", key, i >= 0 ? "[i]" : "");
        return -1;
    }
    return v->valueint;
}

/* One case: decode, compare every output cases.json lists, count edges. */
static void golden_case(const cJSON *c) {
    const char *name = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(c, "name"));
    const char *image = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(c, "image"));
    const char *file = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(c, "expected"));
    const cJSON *jl = cJSON_GetObjectItemCaseSensitive(c, "low"), *jh = cJSON_GetObjectItemCaseSensitive(c, "high");
    const cJSON *outputs = cJSON_GetObjectItemCaseSensitive(c, "outputs");
    if (!name || !image || !file || !cJSON_IsNumber(jl) || !cJSON_IsNumber(jh) || !cJSON_IsObject(outputs)) {
        th_check(0, "cases.json: a case without name, image, expected, low, high or outputs");
        return;
    }
    printf("%s: %s, low %g, high %g\n", name, image, jl->valuedouble, jh->valuedouble);
    char *path = th_golden_path(image);
    is_image img = {0, 0, NULL};
    int loaded = th_ok(is_image_load(path, &img), path);
    free(path);
    is_st *st = th_open_expected(GROUP, file);
    if (!loaded || !st) {
        is_image_free(&img);
        is_st_close(st);
        return;
    }
    const int w = img.width, h = img.height;
    const size_t n = (size_t)w * h;
    th_check(h == json_int(c, "decoded_hw", 0) && w == json_int(c, "decoded_hw", 1),
             "%s: decoded %dx%d (HxW), cases.json says %dx%d", name, h, w, json_int(c, "decoded_hw", 0),
             json_int(c, "decoded_hw", 1));

    /* bgr_channel_sums: a check of every case's decode, also where bgr is not stored. */
    long long sums[3] = {0, 0, 0};
    for (size_t i = 0; i < n; i++)
        for (int k = 0; k < 3; k++) sums[k] += img.rgb[3 * i + 2 - k];
    for (int k = 0; k < 3; k++)
        th_check(sums[k] == json_int(c, "bgr_channel_sums", k), "%s: sum of channel %c is %lld, cv2.imread's %d",
                 name, "BGR"[k], sums[k], json_int(c, "bgr_channel_sums", k));

    uint8_t *edges = malloc(n), *edges_pub = malloc(n), *bgr = malloc(n * 3);
    int16_t *dx = malloc(n * sizeof *dx), *dy = malloc(n * sizeof *dy);
    int32_t *mag = malloc(n * sizeof *mag);
    if (!edges || !edges_pub || !bgr || !dx || !dy || !mag) abort();
    for (size_t i = 0; i < n * 3; i += 3) bgr[i] = img.rgb[i + 2], bgr[i + 1] = img.rgb[i + 1], bgr[i + 2] = img.rgb[i];
    if (th_ok(is_canny_ex(&img, jl->valuedouble, jh->valuedouble, edges, dx, dy, mag), name) &&
        th_ok(is_canny(&img, jl->valuedouble, jh->valuedouble, edges_pub), name)) {
        th_check(!memcmp(edges, edges_pub, n), "%s: is_canny and is_canny_ex give the same edges", name);
        /* Every output the case lists is compared; an unknown one fails. */
        for (const cJSON *o = outputs->child; o; o = o->next) {
            char what[128];
            snprintf(what, sizeof what, "%s %s", name, o->string);
            const is_tensor *t = th_tensor(st, o->string);
            if (!t) continue;
            if (!strcmp(o->string, "edges")) exact(what, t, IS_DT_U8, edges, w, h, 1);
            else if (!strcmp(o->string, "bgr")) exact(what, t, IS_DT_U8, bgr, w, h, 3);
            else if (!strcmp(o->string, "dx")) exact(what, t, IS_DT_I16, dx, w, h, 1);
            else if (!strcmp(o->string, "dy")) exact(what, t, IS_DT_I16, dy, w, h, 1);
            else if (!strcmp(o->string, "mag")) exact(what, t, IS_DT_I32, mag, w, h, 1);
            else th_check(0, "%s: output the test does not know", what);
        }
        th_check(cJSON_GetObjectItemCaseSensitive(outputs, "edges") != NULL, "%s: edges is listed", name);
        long got = count_edges(edges, n);
        int want = json_int(c, "edge_pixels", -1);
        th_check(got == want, "%s: %ld edge pixels, cv2.Canny %d", name, got, want);
        printf("  %s: %ld edge pixels of %zu (cv2.Canny: %d)\n", name, got, n, want);

        /* low > high: OpenCV swaps them. */
        th_ok(is_canny(&img, jh->valuedouble, jl->valuedouble, edges_pub), name);
        th_check(!memcmp(edges, edges_pub, n), "%s: low and high given the other way round give the same edges",
                 name);
    }
    free(edges);
    free(edges_pub);
    free(bgr);
    free(dx);
    free(dy);
    free(mag);
    is_image_free(&img);
    is_st_close(st);
}

/* ------------------------------------------------------------------ hand-checked images */

/* A hand-made image of at most 16x16 pixels. */
typedef struct {
    int w, h;
    uint8_t rgb[16 * 16 * 3];
} small_image;

/* w x h pixels, pixel (x, y) the RGB triple pick(x, y). */
static void fill(small_image *s, int w, int h, const uint8_t *(*pick)(int x, int y)) {
    s->w = w, s->h = h;
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) memcpy(s->rgb + 3 * (y * w + x), pick(x, y), 3);
}

typedef struct {
    uint8_t edges[256];
    int16_t dx[256], dy[256];
    int32_t mag[256];
} canny_out;

static int run_small(small_image *s, double low, double high, canny_out *o, const char *what) {
    is_image img = {s->w, s->h, s->rgb};
    memset(o, 0xAB, sizeof *o); /* what is_canny leaves unwritten shows */
    return th_ok(is_canny_ex(&img, low, high, o->edges, o->dx, o->dy, o->mag), what);
}

/* The edges must be exactly the pixels for which want(x, y) is true. */
static void expect_edges(const char *what, const canny_out *o, int w, int h, int (*want)(int x, int y)) {
    int bad = 0, fx = -1, fy = -1;
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
            int e = o->edges[y * w + x];
            if ((e != 0 && e != 255) || (e == 255) != (want(x, y) != 0)) {
                if (bad++ == 0) fx = x, fy = y;
            }
        }
    th_check(bad == 0, "%s: %d pixels wrong, first (x %d, y %d) is %d", what, bad, fx, fy,
             bad ? o->edges[fy * w + fx] : 0);
    if (!bad) printf("  ok %s\n", what);
}

static const uint8_t black[3] = {0, 0, 0}, grey100[3] = {100, 100, 100}, grey40[3] = {40, 40, 40},
                     grey90[3] = {90, 90, 90}, flat[3] = {10, 200, 77};

static const uint8_t *pick_flat(int x, int y) { return flat; }
static const uint8_t *pick_vstep(int x, int y) { return x < 4 ? black : grey100; }
static const uint8_t *pick_hstep(int x, int y) { return y < 4 ? black : grey100; }
static const uint8_t *pick_weak_vstep(int x, int y) { return x < 4 ? black : grey40; }
static const uint8_t *pick_column(int x, int y) { return y < 3 ? black : grey100; }
/* Right half 100 in rows 0..3, 90 in rows 4..7. */
static const uint8_t *pick_two_steps(int x, int y) { return x < 4 ? black : y < 4 ? grey100 : grey90; }

static int none(int x, int y) { return 0; }
static int col3(int x, int y) { return x == 3; }
static int row3(int x, int y) { return y == 3; }
static int row2(int x, int y) { return y == 2; }
static int two_steps_hyst(int x, int y) { return y <= 2 || y >= 5 ? x == 3 : x == 4; }
static int two_steps_upper(int x, int y) { return y <= 2 ? x == 3 : y <= 4 ? x == 4 : 0; }

static void hand_cases(void) {
    small_image s;
    canny_out o;

    /* Constant image: every Sobel sum cancels, m = 0 everywhere, and 0 > 0 fails the maximum test
     * whatever the thresholds (negative ones make every pixel pass "m > low"). */
    fill(&s, 9, 7, pick_flat);
    for (int t = 0; t < 2; t++) {
        double low = t ? -5 : 50, high = t ? -1 : 200;
        if (!run_small(&s, low, high, &o, "constant image")) continue;
        int zero = 1;
        for (int i = 0; i < 63; i++) zero &= o.dx[i] == 0 && o.dy[i] == 0 && o.mag[i] == 0;
        th_check(zero, "constant image: dx, dy, mag all 0");
        expect_edges(t ? "constant image, thresholds -5/-1: no edges" : "constant image: no edges", &o, 9, 7, none);
    }

    /* Vertical step, 8x6: columns 0..3 are 0, columns 4..7 are 100 (all channels). Every row is the
     * same, so (rows replicated at the top and bottom) dx = 4 (p[x+1] - p[x-1]) and dy = 0:
     * dx = 400 at columns 3 and 4 (100 - 0), 0 elsewhere, so m = 400 there and 0 elsewhere.
     * dy = 0 puts every pixel in the horizontal branch (|dy| << 15 = 0 < 400 * TG22): column 3 has
     * 400 > m[left] = 0 and 400 >= m[right] = 400, a maximum; column 4 fails 400 > m[left] = 400.
     * 400 > high 200: the edges are exactly column 3, every row. */
    fill(&s, 8, 6, pick_vstep);
    if (run_small(&s, 50, 200, &o, "vertical step")) {
        int ok = 1;
        for (int y = 0; y < 6; y++)
            for (int x = 0; x < 8; x++) {
                int i = y * 8 + x, on = x == 3 || x == 4;
                ok &= o.dx[i] == (on ? 400 : 0) && o.dy[i] == 0 && o.mag[i] == (on ? 400 : 0);
            }
        th_check(ok, "vertical step: dx 400 at columns 3 and 4, 0 elsewhere; dy 0; mag = dx");
        expect_edges("vertical step: edges exactly on column 3", &o, 8, 6, col3);
    }

    /* The same step turned: rows 0..3 are 0, rows 4..7 are 100, 6 wide. dx = 0, dy = 400 on rows 3
     * and 4. |dx| = 0 makes tg22x = tg67x = 0 < |dy| << 15: the vertical branch; row 3 has
     * 400 > m[above] = 0 and 400 >= m[below] = 400; row 4 fails 400 > 400. Edges: row 3. */
    fill(&s, 6, 8, pick_hstep);
    if (run_small(&s, 50, 200, &o, "horizontal step")) {
        th_check(o.dy[3 * 6 + 2] == 400 && o.dy[4 * 6 + 2] == 400 && o.dy[5 * 6 + 2] == 0 && o.dx[3 * 6 + 2] == 0,
                 "horizontal step: dy 400 on rows 3 and 4, dx 0");
        expect_edges("horizontal step: edges exactly on row 3", &o, 6, 8, row3);
    }

    /* A 1-pixel-wide column 0,0,0,100,100: the replicated border gives dx = 0 and
     * dy = 4 (p[y+1] - p[y-1]) = 400 on rows 2 and 3 (row 4 replicates itself: 100 - 100). Row 2 is the
     * maximum (400 > 0, 400 >= 400); row 3 is not (400 > 400 fails). */
    fill(&s, 1, 5, pick_column);
    if (run_small(&s, 50, 200, &o, "one-pixel column")) {
        th_check(o.dy[2] == 400 && o.dy[3] == 400 && o.dy[4] == 0 && o.dx[2] == 0,
                 "one-pixel column: dy 400 on rows 2, 3");
        expect_edges("one-pixel column: edge on row 2", &o, 1, 5, row2);
    }

    /* Channel choice, on the vertical step's geometry. R rises 0 -> 100 (dx +400), B falls 100 -> 0
     * (dx -400), G is flat: a tie in m, which OpenCV gives to the first channel of B, G, R: B, dx -400.
     * (Taking R, the first channel of our RGB pixels, would give +400.) Then G rising 0 -> 120 (dx +480)
     * is the strict maximum; then R 0 -> 130 (dx +520). The edge stays on column 3: NMS uses |dx|. */
    static const struct {
        uint8_t left[3], right[3];
        int dx;
        const char *what;
    } channel[] = {
        {{0, 50, 100}, {100, 50, 0}, -400, "tie between R and B goes to B"},
        {{0, 0, 100}, {100, 120, 0}, 480, "G's larger step wins"},
        {{0, 0, 100}, {130, 120, 0}, 520, "R's larger step wins"},
        {{0, 0, 0}, {100, 100, 100}, 400, "three equal channels"},
    };
    for (size_t k = 0; k < sizeof channel / sizeof channel[0]; k++) {
        s.w = 8, s.h = 6;
        for (int i = 0; i < 48; i++) memcpy(s.rgb + 3 * i, i % 8 < 4 ? channel[k].left : channel[k].right, 3);
        if (!run_small(&s, 50, 200, &o, channel[k].what)) continue;
        int ok = 1;
        for (int y = 0; y < 6; y++)
            ok &= o.dx[y * 8 + 3] == channel[k].dx && o.dx[y * 8 + 4] == channel[k].dx &&
                  o.mag[y * 8 + 3] == abs(channel[k].dx);
        th_check(ok, "channel choice, %s: dx %d at columns 3 and 4 (got %d)", channel[k].what, channel[k].dx, o.dx[3]);
        expect_edges(channel[k].what, &o, 8, 6, col3);
    }

    /* Thresholds on a weak step (0 -> 40: m = 160 on columns 3 and 4, column 3 the maximum):
     * edges need m > floor(high) and candidates m > floor(low). */
    fill(&s, 8, 6, pick_weak_vstep);
    static const struct {
        double low, high;
        int edges;
        const char *what;
    } th[] = {
        {50, 200, 0, "weak step, 50/200: a candidate, not an edge"},
        {50, 159.99, 1, "weak step, high 159.99 floors to 159 < 160: edges"},
        {50, 160.5, 0, "weak step, high 160.5 floors to 160, not < 160: none"},
        {159.99, 50, 1, "weak step, 159.99/50 swapped: edges"},
        {160.7, 159.2, 0, "weak step, 160.7/159.2 swapped and floored to 159/160: none"},
        {159.2, 159.7, 1, "weak step, 159.2/159.7 (both 159): edges"},
        {-1e300, 1e300, 0, "weak step, thresholds far out of range: none"},
        {-1e300, -1e300, 1, "weak step, both thresholds hugely negative: edges"},
    };
    for (size_t k = 0; k < sizeof th / sizeof th[0]; k++)
        if (run_small(&s, th[k].low, th[k].high, &o, th[k].what))
            expect_edges(th[k].what, &o, 8, 6, th[k].edges ? col3 : none);

    /* Hysteresis, 8x8: columns 0..3 are 0; columns 4..7 are 100 on rows 0..3 and 90 on rows 4..7.
     * Rows 0..2 (rows around all 100): m = 400 at columns 3, 4, dy = 0; column 3 is the maximum.
     * Rows 5..7 (all 90): m = 360 at columns 3, 4; column 3 is the maximum.
     * Row 3 (rows 2, 3, 4 = 100, 100, 90):
     *   column 3: dx = 100 + 200 + 90 = 390, dy = 90 - 100 = -10, m = 400;
     *   column 4: dx = 390, dy = (0 + 180 + 90) - (0 + 200 + 100) = -30, m = 420;
     *   columns 5..7: dx = 0, dy = 360 - 400 = -40, m = 40 (under low 50).
     *   Both |dy| << 15 < |dx| * TG22: horizontal. Column 3 fails 400 >= 420; column 4 is a maximum.
     * Row 4 (rows 3, 4, 5 = 100, 90, 90): column 3: dx = 370, dy = -10, m = 380; column 4: dx = 370,
     *   dy = -30, m = 400; columns 5..7 m = 40. Column 3 fails 380 >= 400; column 4 is a maximum.
     * With low 50, high 380: rows 0..2 (400), row 3 (420), row 4 (400) are edges at once; rows 5..7
     * (360) are candidates only, joined to the edge at (4, 4) through (3, 5) diagonally, then (3, 6),
     * (3, 7): hysteresis makes them edges. With low 370 they are not candidates and stay off. */
    fill(&s, 8, 8, pick_two_steps);
    if (run_small(&s, 50, 380, &o, "hysteresis")) {
        th_check(o.mag[3 * 8 + 3] == 400 && o.mag[3 * 8 + 4] == 420 && o.mag[4 * 8 + 3] == 380 &&
                     o.mag[4 * 8 + 4] == 400 && o.mag[5 * 8 + 3] == 360 && o.mag[3 * 8 + 5] == 40 &&
                     o.dy[3 * 8 + 4] == -30 && o.dx[4 * 8 + 4] == 370,
                 "hysteresis: magnitudes of the worked example");
        expect_edges("hysteresis, 50/380: weak rows 5..7 joined through the diagonal", &o, 8, 8, two_steps_hyst);
    }
    if (run_small(&s, 370, 380, &o, "hysteresis, low 370"))
        expect_edges("hysteresis, 370/380: rows 5..7 not candidates", &o, 8, 8, two_steps_upper);

    /* 1x1: no neighbours differ; nothing. */
    fill(&s, 1, 1, pick_vstep);
    if (run_small(&s, -1, 0, &o, "1x1 image")) expect_edges("1x1 image: no edges", &o, 1, 1, none);
}

/* ------------------------------------------------------------------ argument errors */

static void arg_error(is_error *e, const char *needle, const char *what) {
    th_check(is_error_code(e) == IS_E_ARGUMENT, "%s: IS_E_ARGUMENT (got %s)", what, is_status_name(is_error_code(e)));
    th_fails(e, needle, what);
}

static void argument_errors(void) {
    uint8_t px[12] = {0}, edges[4];
    is_image ok = {2, 2, px};
    arg_error(is_canny(NULL, 50, 200, edges), "no image", "NULL image");
    arg_error(is_canny(&ok, 50, 200, NULL), "no edges buffer", "NULL edges");
    is_image no_pixels = {2, 2, NULL};
    arg_error(is_canny(&no_pixels, 50, 200, edges), "no pixel buffer", "NULL pixel buffer");
    is_image zero_w = {0, 2, px}, neg_h = {2, -1, px}, wide = {40000, 1, px}, huge = {20000, 20000, px};
    arg_error(is_canny(&zero_w, 50, 200, edges), "no pixels (0x2)", "width 0");
    arg_error(is_canny(&neg_h, 50, 200, edges), "no pixels (2x-1)", "height -1");
    arg_error(is_canny(&wide, 50, 200, edges), "too large: 40000x1", "width 40000");
    arg_error(is_canny(&huge, 50, 200, edges), "too large: 20000x20000", "20000x20000 (over 2^28 pixels)");
    arg_error(is_canny(&ok, NAN, 200, edges), "low threshold", "low NaN");
    arg_error(is_canny(&ok, 50, INFINITY, edges), "high threshold", "high infinite");
    arg_error(is_canny(&ok, -INFINITY, 200, edges), "low threshold", "low -infinite");
    arg_error(is_canny_ex(NULL, 50, 200, edges, NULL, NULL, NULL), "no image", "is_canny_ex NULL image");
}

/* ------------------------------------------------------------------ the program */

/* Runs `instantstyle canny ARGS...` with stdout and stderr to files; returns its exit status or -1. */
static int run_cli(char **args, const char *log) {
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
        if (!freopen(log, "w", stdout) || !freopen(log, "a", stderr)) _exit(127);
        execv(args[0], args);
        _exit(127);
    }
    int status = 0;
    if (pid < 0 || waitpid(pid, &status, 0) < 0) return -1;
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

static int exists(const char *path) {
    struct stat sb;
    return stat(path, &sb) == 0;
}

static void cli(void) {
    char *in = th_golden_path("images/i2i/content_64x64.png");
    char *out = is_path_join(th_tmpdir(), "canny_content_64x64.png");
    char *log = is_path_join(th_tmpdir(), "canny_cli.log");
    char *bad_out = is_path_join(th_tmpdir(), "canny_never_written.png");
    char bin[] = IS_BINARY_DIR "/instantstyle", cmd[] = "canny", lo[] = "--low", hi[] = "--high", l50[] = "50",
         h200[] = "200", junk[] = "abc", missing[] = "/nonexistent/canny-input.png";
    unlink(out);
    unlink(bad_out);

    char *args[] = {bin, cmd, in, out, lo, l50, hi, h200, NULL};
    int rc = run_cli(args, log);
    th_check(rc == 0, "instantstyle canny %s: exit %d (log %s)", in, rc, log);
    is_st *st = th_open_expected(GROUP, "content_64x64_50_200.safetensors");
    const is_tensor *t = st ? th_tensor(st, "edges") : NULL;
    is_image img = {0, 0, NULL};
    if (rc == 0 && t && th_ok(is_image_load(out, &img), out)) {
        th_check(img.width == 64 && img.height == 64, "instantstyle canny: output %dx%d, want 64x64", img.width,
                 img.height);
        if (img.width == 64 && img.height == 64) {
            uint8_t grey[64 * 64];
            int channels_equal = 1;
            for (int i = 0; i < 64 * 64; i++) {
                grey[i] = img.rgb[3 * i];
                channels_equal &= img.rgb[3 * i + 1] == grey[i] && img.rgb[3 * i + 2] == grey[i];
            }
            th_check(channels_equal, "instantstyle canny: the map is in all three channels");
            exact("instantstyle canny content_64x64 50/200 PNG", t, IS_DT_U8, grey, 64, 64, 1);
        }
    }
    is_image_free(&img);
    is_st_close(st);

    /* Refusals: exit status 1 (bad value, unreadable input) or 2 (usage), and no output file. */
    char *bad_value[] = {bin, cmd, in, bad_out, lo, junk, NULL};
    char *no_input[] = {bin, cmd, missing, bad_out, NULL};
    char *no_out[] = {bin, cmd, in, NULL};
    char *twice[] = {bin, cmd, in, bad_out, hi, h200, hi, l50, NULL};
    th_check(run_cli(bad_value, log) == 1, "instantstyle canny --low abc: exit 1");
    th_check(run_cli(no_input, log) == 1, "instantstyle canny on a missing input: exit 1");
    th_check(run_cli(no_out, log) == 2, "instantstyle canny without OUT: exit 2");
    th_check(run_cli(twice, log) == 1, "instantstyle canny --high twice: exit 1");
    th_check(!exists(bad_out), "no output left behind by the refused runs");
    free(in);
    free(out);
    free(log);
    free(bad_out);
}

int main(void) {
    cJSON *root = th_load_cases(GROUP);
    const cJSON *cases = cJSON_GetObjectItemCaseSensitive(root, "cases");
    th_check(cJSON_GetArraySize(cases) == 5, "cases/canny has 5 cases (got %d)", cJSON_GetArraySize(cases));
    for (const cJSON *c = cases ? cases->child : NULL; c; c = c->next) golden_case(c);
    cJSON_Delete(root);
    hand_cases();
    argument_errors();
    cli();
    return th_done();
}
