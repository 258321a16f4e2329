/* Strict option-value parsing for the CLI: whole string must parse, errors name the option. */
#ifndef IS_CLI_ARGS_H
#define IS_CLI_ARGS_H

#include <stddef.h>
#include <stdint.h>

#include "core/error.h"

/* Longest piece of user input a message quotes: longer input is cut (on a UTF-8 boundary) and ends
 * in "...", so a message never echoes a whole (possibly huge) argument. */
#define IS_ARG_QUOTE_MAX 40
typedef struct {
    char text[IS_ARG_QUOTE_MAX + 8];
} is_arg_quoted;
/* 'value' capped as above, control characters shown as '?'; the result lives in *q. */
const char *is_arg_quote(const char *value, is_arg_quoted *q);

is_error *is_arg_int(const char *opt, const char *s, long min, long max, int *out);
is_error *is_arg_u64(const char *opt, const char *s, uint64_t *out);
is_error *is_arg_float(const char *opt, const char *s, float *out);
is_error *is_arg_double(const char *opt, const char *s, double *out); /* a Python float: no float32 rounding */
/* "WxH" */
is_error *is_arg_size(const char *opt, const char *s, int *w, int *h);
/* Value of an option that needs one: argv[*i+1]; advances *i. */
is_error *is_arg_value(int argc, char **argv, int *i, const char **out);

/* Options already given, so a repeated one is refused instead of silently replacing the first. */
#define IS_ARG_SEEN_MAX 64
typedef struct {
    const char *names[IS_ARG_SEEN_MAX];
    int n;
} is_arg_seen;
/* Error "NAME given twice" (with why, when not NULL) if name was seen; else records it. */
is_error *is_arg_once(is_arg_seen *seen, const char *name, const char *why);

#endif
