/* Strict option-value parsing for the CLI: whole string must parse, errors name the option. */
#ifndef IS_CLI_ARGS_H
#define IS_CLI_ARGS_H

#include <stdint.h>

#include "core/error.h"

is_error *is_arg_int(const char *opt, const char *s, long min, long max, int *out);
is_error *is_arg_u64(const char *opt, const char *s, uint64_t *out);
is_error *is_arg_float(const char *opt, const char *s, float *out);
/* "WxH" */
is_error *is_arg_size(const char *opt, const char *s, int *w, int *h);
/* Value of an option that needs one: argv[*i+1]; advances *i. */
is_error *is_arg_value(int argc, char **argv, int *i, const char **out);

#endif
