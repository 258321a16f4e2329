#include "harness.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/fileio.h"

static int n_pass, n_fail;

const char *th_golden(void) {
    const char *env = getenv("IS_GOLDEN_DIR");
    return (env && *env) ? env : IS_GOLDEN_DEFAULT;
}

char *th_golden_path(const char *rel) { return is_path_join(th_golden(), rel); }

const char *th_tmpdir(void) {
    static char dir[4096];
    if (!dir[0]) {
        snprintf(dir, sizeof dir, "%s/test-tmp", IS_BINARY_DIR);
        mkdir(dir, 0755);
    }
    return dir;
}

char *th_case_path(const char *group, const char *rel) {
    char buf[4096];
    snprintf(buf, sizeof buf, "%s/cases/%s/%s", th_golden(), group, rel);
    return strdup(buf);
}

cJSON *th_load_cases(const char *group) {
    char *path = th_case_path(group, "cases.json");
    char *text = NULL;
    size_t n = 0;
    is_error *e = is_read_file(path, 64u << 20, &text, &n);
    if (e) {
        fprintf(stderr, "FATAL: %s (set IS_GOLDEN_DIR to the golden folder)\n", is_error_message(e));
        is_error_free(e);
        free(path);
        n_fail++;
        exit(th_done());
    }
    cJSON *root = cJSON_ParseWithLength(text, n);
    free(text);
    if (!root) {
        fprintf(stderr, "FATAL: %s: invalid JSON\n", path);
        free(path);
        n_fail++;
        exit(th_done());
    }
    free(path);
    return root;
}

is_st *th_open_expected(const char *group, const char *file) {
    char *path = th_case_path(group, file);
    is_st *st = NULL;
    is_error *e = is_st_open(path, &st);
    free(path);
    if (!th_ok(e, file)) return NULL;
    return st;
}

void th_check(int ok, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    if (ok) {
        n_pass++;
    } else {
        n_fail++;
        fprintf(stderr, "FAIL: ");
        vfprintf(stderr, fmt, ap);
        fprintf(stderr, "\n");
    }
    va_end(ap);
}

int th_ok(is_error *err, const char *what) {
    if (!err) {
        n_pass++;
        return 1;
    }
    n_fail++;
    fprintf(stderr, "FAIL: %s: unexpected error: %s\n", what, is_error_message(err));
    is_error_free(err);
    return 0;
}

int th_fails(is_error *err, const char *needle, const char *what) {
    if (!err) {
        n_fail++;
        fprintf(stderr, "FAIL: %s: expected an error, got success\n", what);
        return 0;
    }
    const char *msg = is_error_message(err);
    int ok = !needle || strstr(msg, needle) != NULL;
    if (ok) {
        n_pass++;
        printf("  ok (expected error) %s: %s\n", what, msg);
    } else {
        n_fail++;
        fprintf(stderr, "FAIL: %s: error message '%s' does not mention '%s'\n", what, msg, needle);
    }
    is_error_free(err);
    return ok;
}

int th_close_f32(const char *what, const float *got, const float *expected, size_t n, double atol,
                 double rtol) {
    size_t worst = 0, bad = 0;
    double worst_excess = -INFINITY, max_abs = 0;
    for (size_t i = 0; i < n; i++) {
        double g = got[i], x = expected[i], d = fabs(g - x);
        double limit = atol + rtol * fabs(x);
        if (!(d <= limit)) bad++; /* NaN counts as bad */
        double excess = isnan(d) ? INFINITY : d - limit;
        if (excess > worst_excess) worst_excess = excess, worst = i;
        if (d > max_abs || isnan(d)) max_abs = isnan(d) ? INFINITY : d;
    }
    if (bad) {
        n_fail++;
        fprintf(stderr, "FAIL: %s: %zu of %zu elements out of tolerance (atol %g, rtol %g); worst at [%zu]: got %.9g "
                "expected %.9g (diff %.3g); max abs diff %.3g\n", what, bad, n, atol, rtol, worst, got[worst],
                expected[worst], fabs((double)got[worst] - expected[worst]), max_abs);
        return 0;
    }
    n_pass++;
    printf("  ok %s: %zu elements, max abs diff %.3g (atol %g)\n", what, n, max_abs, atol);
    return 1;
}

int th_close(const char *what, const float *got, size_t n, const is_tensor *expected, double atol, double rtol) {
    if (!expected) {
        th_check(0, "%s: expected tensor missing", what);
        return 0;
    }
    if ((size_t)expected->numel != n) {
        char sh[128];
        th_check(0, "%s: got %zu elements, expected %lld (shape %s)", what, n, (long long)expected->numel,
                 is_shape_str(expected->shape, expected->ndim, sh, sizeof sh));
        return 0;
    }
    float *exp = is_tensor_dup_f32(expected);
    int ok = th_close_f32(what, got, exp, n, atol, rtol);
    free(exp);
    return ok;
}

void th_tolerance(const cJSON *c, const char *name, double *atol, double *rtol) {
    *atol = 0;
    *rtol = 0;
    const cJSON *tol = cJSON_GetObjectItemCaseSensitive(c, "tolerance");
    const cJSON *t = tol ? cJSON_GetObjectItemCaseSensitive(tol, name) : NULL;
    const cJSON *a = t ? cJSON_GetObjectItemCaseSensitive(t, "atol") : NULL;
    const cJSON *r = t ? cJSON_GetObjectItemCaseSensitive(t, "rtol") : NULL;
    if (!cJSON_IsNumber(a)) {
        th_check(0, "no tolerance for tensor '%s' in the case", name);
        return;
    }
    *atol = a->valuedouble;
    *rtol = cJSON_IsNumber(r) ? r->valuedouble : 0.0;
}

const is_tensor *th_tensor(const is_st *st, const char *name) {
    const is_tensor *t = st ? is_st_find(st, name) : NULL;
    if (!t) th_check(0, "expected tensor '%s' not in golden file", name);
    return t;
}

int th_done(void) {
    printf("%d passed, %d failed\n", n_pass, n_fail);
    return n_fail ? 1 : 0;
}
