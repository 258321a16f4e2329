#include "args.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

is_error *is_arg_int(const char *opt, const char *s, long min, long max, int *out) {
    char *end = NULL;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (!*s || *end || errno)
        return is_errorf(IS_E_ARGUMENT, "%s: '%s' is not an integer", opt, s);
    if (v < min || v > max)
        return is_errorf(IS_E_ARGUMENT, "%s: %ld is out of range (%ld..%ld)", opt, v, min, max);
    *out = (int)v;
    return NULL;
}

is_error *is_arg_u64(const char *opt, const char *s, uint64_t *out) {
    char *end = NULL;
    errno = 0;
    if (*s == '-') return is_errorf(IS_E_ARGUMENT, "%s: '%s' must be a non-negative integer", opt, s);
    unsigned long long v = strtoull(s, &end, 10);
    if (!*s || *end || errno) return is_errorf(IS_E_ARGUMENT, "%s: '%s' is not a non-negative integer", opt, s);
    *out = (uint64_t)v;
    return NULL;
}

is_error *is_arg_float(const char *opt, const char *s, float *out) {
    char *end = NULL;
    errno = 0;
    double v = strtod(s, &end);
    if (!*s || *end || errno || !isfinite(v)) return is_errorf(IS_E_ARGUMENT, "%s: '%s' is not a number", opt, s);
    *out = (float)v;
    return NULL;
}

is_error *is_arg_size(const char *opt, const char *s, int *w, int *h) {
    const char *x = strchr(s, 'x');
    if (!x) return is_errorf(IS_E_ARGUMENT, "%s: '%s' must be WIDTHxHEIGHT, e.g. 1024x1024", opt, s);
    char left[32];
    size_t n = (size_t)(x - s);
    if (n == 0 || n >= sizeof left) return is_errorf(IS_E_ARGUMENT, "%s: '%s' must be WIDTHxHEIGHT", opt, s);
    memcpy(left, s, n);
    left[n] = 0;
    IS_TRY(is_arg_int(opt, left, 1, 1 << 20, w));
    return is_arg_int(opt, x + 1, 1, 1 << 20, h);
}

is_error *is_arg_value(int argc, char **argv, int *i, const char **out) {
    if (*i + 1 >= argc) return is_errorf(IS_E_ARGUMENT, "%s needs a value", argv[*i]);
    *out = argv[++*i];
    return NULL;
}
