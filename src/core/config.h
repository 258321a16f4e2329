/* Typed access to a config.json (cJSON underneath). Errors name the file and field. */
#ifndef IS_CORE_CONFIG_H
#define IS_CORE_CONFIG_H

#include <cjson/cJSON.h>
#include <stdint.h>

#include "core/error.h"

typedef struct {
    cJSON *root;
    char *path;
} is_config;

/* Load and parse; the root must be a JSON object. */
is_error *is_config_load(const char *path, is_config *cfg);
/* Load "dir/name". */
is_error *is_config_load_in(const char *dir, const char *name, is_config *cfg);
void is_config_free(is_config *cfg);

/* A field that is absent or JSON null counts as missing. */
int is_config_has(const is_config *cfg, const char *key);
is_error *is_config_int(const is_config *cfg, const char *key, int64_t *out);
is_error *is_config_float(const is_config *cfg, const char *key, double *out);
is_error *is_config_bool(const is_config *cfg, const char *key, int *out);
is_error *is_config_string(const is_config *cfg, const char *key, const char **out);
/* Optional fields: default when missing; a present field of the wrong type is still an error. */
is_error *is_config_int_or(const is_config *cfg, const char *key, int64_t def, int64_t *out);
is_error *is_config_float_or(const is_config *cfg, const char *key, double def, double *out);
is_error *is_config_bool_or(const is_config *cfg, const char *key, int def, int *out);
is_error *is_config_string_or(const is_config *cfg, const char *key, const char *def, const char **out);
/* An int array (or, when allow_scalar, a single int repeated `expect` times). expect < 0: any
 * length up to max. The error says what length was expected. */
is_error *is_config_int_list(const is_config *cfg, const char *key, int64_t *out, int max, int expect,
                             int allow_scalar, int *n);
/* A string array. Strings point into the config. */
is_error *is_config_string_list(const is_config *cfg, const char *key, const char **out, int max,
                                int *n);

#endif
