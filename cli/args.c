#include "args.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

const char *is_arg_quote(const char *value, is_arg_quoted *q) {
    size_t n = strlen(value), keep = n;
    if (n > IS_ARG_QUOTE_MAX) {
        keep = IS_ARG_QUOTE_MAX;
        while (keep > 0 && ((unsigned char)value[keep] & 0xC0) == 0x80) keep--; /* not inside a character */
    }
    char *o = q->text;
    *o++ = '\'';
    for (size_t i = 0; i < keep; i++) *o++ = (unsigned char)value[i] < 32 || value[i] == 127 ? '?' : value[i];
    if (keep < n) {
        memcpy(o, "...", 3);
        o += 3;
    }
    *o++ = '\'';
    *o = 0;
    return q->text;
}

is_error *is_arg_int(const char *opt, const char *s, long min, long max, int *out) {
    char *end = NULL;
    errno = 0;
    long v = strtol(s, &end, 10);
    is_arg_quoted q;
    if (!*s || *end || errno) return is_errorf(IS_E_ARGUMENT, "%s: %s is not an integer", opt, is_arg_quote(s, &q));
    if (v < min || v > max)
        return is_errorf(IS_E_ARGUMENT, "%s: %ld is out of range (%ld..%ld)", opt, v, min, max);
    *out = (int)v;
    return NULL;
}

is_error *is_arg_u64(const char *opt, const char *s, uint64_t *out) {
    char *end = NULL;
    errno = 0;
    is_arg_quoted q;
    if (*s == '-')
        return is_errorf(IS_E_ARGUMENT, "%s: %s must be a non-negative integer", opt, is_arg_quote(s, &q));
    unsigned long long v = strtoull(s, &end, 10);
    if (!*s || *end || errno)
        return is_errorf(IS_E_ARGUMENT, "%s: %s is not a non-negative integer", opt, is_arg_quote(s, &q));
    *out = (uint64_t)v;
    return NULL;
}

is_error *is_arg_float(const char *opt, const char *s, float *out) {
    char *end = NULL;
    errno = 0;
    double v = strtod(s, &end);
    is_arg_quoted q;
    if (!*s || *end || errno || !isfinite(v) || !isfinite((float)v))
        return is_errorf(IS_E_ARGUMENT, "%s: %s is not a number", opt, is_arg_quote(s, &q));
    *out = (float)v;
    return NULL;
}

is_error *is_arg_double(const char *opt, const char *s, double *out) {
    char *end = NULL;
    errno = 0;
    double v = strtod(s, &end);
    is_arg_quoted q;
    if (!*s || *end || errno || !isfinite(v))
        return is_errorf(IS_E_ARGUMENT, "%s: %s is not a number", opt, is_arg_quote(s, &q));
    *out = v;
    return NULL;
}

is_error *is_arg_size(const char *opt, const char *s, int *w, int *h) {
    const char *x = strchr(s, 'x');
    char left[32];
    size_t n = x ? (size_t)(x - s) : 0;
    is_arg_quoted q;
    if (!x || n == 0 || n >= sizeof left)
        return is_errorf(IS_E_ARGUMENT, "%s: %s must be WIDTHxHEIGHT, e.g. 1024x1024", opt, is_arg_quote(s, &q));
    memcpy(left, s, n);
    left[n] = 0;
    IS_TRY(is_arg_int(opt, left, 1, 1 << 20, w));
    return is_arg_int(opt, x + 1, 1, 1 << 20, h);
}

is_error *is_arg_value(int argc, char **argv, int *i, const char **out) {
    is_arg_quoted q;
    if (*i + 1 >= argc) return is_errorf(IS_E_ARGUMENT, "%s needs a value", is_arg_quote(argv[*i], &q));
    *out = argv[++*i];
    return NULL;
}

is_error *is_arg_once(is_arg_seen *seen, const char *name, const char *why) {
    for (int k = 0; k < seen->n; k++)
        if (!strcmp(seen->names[k], name))
            return is_errorf(IS_E_ARGUMENT, "%s given twice; %s", name, why ? why : "give each option once");
    if (seen->n < IS_ARG_SEEN_MAX) seen->names[seen->n++] = name;
    return NULL;
}
