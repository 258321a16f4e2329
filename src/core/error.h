/* Errors are values: a failing function returns an is_error* (NULL = success)
 * whose message names the file, tensor or field and what was expected. */
#ifndef IS_CORE_ERROR_H
#define IS_CORE_ERROR_H

#include "instantstyle.h"

/* Make a new error with a printf-style message. Never returns NULL. */
is_error *is_errorf(is_status code, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Prefix context to an error ("loading unet: " + old message); returns err.
 * NULL in, NULL out, so `return is_error_wrap(f(), "...")` is safe. */
is_error *is_error_wrap(is_error *err, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Out-of-memory error without allocating a message. */
is_error *is_error_oom(const char *what);

/* Evaluate an is_error* expression; return it from the caller on failure. */
#define IS_TRY(expr)                     \
    do {                                 \
        is_error *is_try_err_ = (expr);  \
        if (is_try_err_) return is_try_err_; \
    } while (0)

#endif
