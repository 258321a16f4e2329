#include "core/error.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct is_error {
    is_status code;
    char *message; /* heap-allocated, or static_message for OOM */
    int is_static;
};

static struct is_error oom_error = {IS_E_NOMEM, "out of memory", 1};

/* Cut s (n bytes) to at most IS_ERROR_MAX_BYTES - 1 bytes ending in "...", on a UTF-8 character
 * boundary: a message quoting hostile input (a tensor name, a path, a JSON key) stays bounded. */
static void bound(char *s, size_t n) {
    if (n < IS_ERROR_MAX_BYTES) return;
    size_t keep = IS_ERROR_MAX_BYTES - 4;
    while (keep > 0 && ((unsigned char)s[keep] & 0xC0) == 0x80) keep--; /* not inside a character */
    memcpy(s + keep, "...", 4);
}

static char *vformat(const char *fmt, va_list ap) {
    va_list ap2;
    va_copy(ap2, ap);
    int n = vsnprintf(NULL, 0, fmt, ap2);
    va_end(ap2);
    if (n < 0) return NULL;
    char *s = malloc((size_t)n + 1);
    if (s) {
        vsnprintf(s, (size_t)n + 1, fmt, ap);
        bound(s, (size_t)n);
    }
    return s;
}

is_error *is_errorf(is_status code, const char *fmt, ...) {
    is_error *e = malloc(sizeof *e);
    if (!e) return &oom_error;
    va_list ap;
    va_start(ap, fmt);
    e->message = vformat(fmt, ap);
    va_end(ap);
    if (!e->message) {
        free(e);
        return &oom_error;
    }
    e->code = code;
    e->is_static = 0;
    return e;
}

is_error *is_error_wrap(is_error *err, const char *fmt, ...) {
    if (!err || err->is_static) return err;
    va_list ap;
    va_start(ap, fmt);
    char *prefix = vformat(fmt, ap);
    va_end(ap);
    if (!prefix) return err;
    size_t a = strlen(prefix), b = strlen(err->message);
    char *joined = malloc(a + 2 + b + 1);
    if (joined) {
        memcpy(joined, prefix, a);
        memcpy(joined + a, ": ", 2);
        memcpy(joined + a + 2, err->message, b + 1);
        bound(joined, a + 2 + b);
        free(err->message);
        err->message = joined;
    }
    free(prefix);
    return err;
}

is_error *is_error_oom(const char *what) {
    is_error *e = is_errorf(IS_E_NOMEM, "out of memory (%s)", what ? what : "allocation");
    return e;
}

const char *is_error_message(const is_error *err) {
    return err ? err->message : "success";
}

is_status is_error_code(const is_error *err) { return err ? err->code : IS_OK; }

void is_error_free(is_error *err) {
    if (!err || err->is_static) return;
    free(err->message);
    free(err);
}

const char *is_status_name(is_status code) {
    switch (code) {
    case IS_OK: return "ok";
    case IS_E_IO: return "io";
    case IS_E_FORMAT: return "format";
    case IS_E_SHAPE: return "shape";
    case IS_E_CONFIG: return "config";
    case IS_E_ARGUMENT: return "argument";
    case IS_E_NOMEM: return "out of memory";
    case IS_E_UNSUPPORTED: return "unsupported";
    case IS_E_INTERNAL: return "internal";
    case IS_E_CANCELLED: return "cancelled";
    }
    return "unknown";
}
