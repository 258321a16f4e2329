#include "core/config.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/fileio.h"

is_error *is_config_load(const char *path, is_config *cfg) {
    memset(cfg, 0, sizeof *cfg);
    char *text = NULL;
    size_t n = 0;
    IS_TRY(is_read_file(path, 16u << 20, &text, &n));
    cJSON *root = cJSON_ParseWithLength(text, n);
    free(text);
    if (!root) return is_errorf(IS_E_FORMAT, "%s: not valid JSON", path);
    if (!cJSON_IsObject(root)) {
        cJSON_Delete(root);
        return is_errorf(IS_E_FORMAT, "%s: expected a JSON object at the top level", path);
    }
    cfg->root = root;
    cfg->path = strdup(path);
    if (!cfg->path) {
        cJSON_Delete(root);
        cfg->root = NULL;
        return is_error_oom(path);
    }
    return NULL;
}

is_error *is_config_load_in(const char *dir, const char *name, is_config *cfg) {
    char *p = is_path_join(dir, name);
    if (!p) return is_error_oom(name);
    is_error *e = is_config_load(p, cfg);
    free(p);
    return e;
}

void is_config_free(is_config *cfg) {
    if (!cfg) return;
    cJSON_Delete(cfg->root);
    free(cfg->path);
    memset(cfg, 0, sizeof *cfg);
}

static cJSON *field(const is_config *cfg, const char *key) {
    cJSON *v = cJSON_GetObjectItemCaseSensitive(cfg->root, key);
    return (v && !cJSON_IsNull(v)) ? v : NULL;
}

int is_config_has(const is_config *cfg, const char *key) { return field(cfg, key) != NULL; }

static is_error *missing(const is_config *cfg, const char *key, const char *what) {
    return is_errorf(IS_E_CONFIG, "%s: missing field '%s' (expected %s)", cfg->path, key, what);
}

static is_error *wrong(const is_config *cfg, const char *key, const char *what) {
    return is_errorf(IS_E_CONFIG, "%s: field '%s' must be %s", cfg->path, key, what);
}

static is_error *as_int(const is_config *cfg, const char *key, const cJSON *v, int64_t *out) {
    if (!cJSON_IsNumber(v) || v->valuedouble != floor(v->valuedouble) || fabs(v->valuedouble) > 9e15)
        return wrong(cfg, key, "an integer");
    *out = (int64_t)v->valuedouble;
    return NULL;
}

is_error *is_config_int(const is_config *cfg, const char *key, int64_t *out) {
    cJSON *v = field(cfg, key);
    if (!v) return missing(cfg, key, "an integer");
    return as_int(cfg, key, v, out);
}

is_error *is_config_float(const is_config *cfg, const char *key, double *out) {
    cJSON *v = field(cfg, key);
    if (!v) return missing(cfg, key, "a number");
    if (!cJSON_IsNumber(v)) return wrong(cfg, key, "a number");
    *out = v->valuedouble;
    return NULL;
}

is_error *is_config_bool(const is_config *cfg, const char *key, int *out) {
    cJSON *v = field(cfg, key);
    if (!v) return missing(cfg, key, "true or false");
    if (!cJSON_IsBool(v)) return wrong(cfg, key, "true or false");
    *out = cJSON_IsTrue(v);
    return NULL;
}

is_error *is_config_string(const is_config *cfg, const char *key, const char **out) {
    cJSON *v = field(cfg, key);
    if (!v) return missing(cfg, key, "a string");
    if (!cJSON_IsString(v)) return wrong(cfg, key, "a string");
    *out = v->valuestring;
    return NULL;
}

is_error *is_config_int_or(const is_config *cfg, const char *key, int64_t def, int64_t *out) {
    cJSON *v = field(cfg, key);
    if (!v) {
        *out = def;
        return NULL;
    }
    return as_int(cfg, key, v, out);
}

is_error *is_config_float_or(const is_config *cfg, const char *key, double def, double *out) {
    *out = def;
    return field(cfg, key) ? is_config_float(cfg, key, out) : NULL;
}

is_error *is_config_bool_or(const is_config *cfg, const char *key, int def, int *out) {
    *out = def;
    return field(cfg, key) ? is_config_bool(cfg, key, out) : NULL;
}

is_error *is_config_string_or(const is_config *cfg, const char *key, const char *def, const char **out) {
    *out = def;
    return field(cfg, key) ? is_config_string(cfg, key, out) : NULL;
}

is_error *is_config_int_list(const is_config *cfg, const char *key, int64_t *out, int max, int expect,
                             int allow_scalar, int *n) {
    cJSON *v = field(cfg, key);
    if (!v) return missing(cfg, key, "a list of integers");
    if (allow_scalar && cJSON_IsNumber(v)) {
        int64_t x = 0;
        IS_TRY(as_int(cfg, key, v, &x));
        int count = expect >= 0 ? expect : 1;
        if (count > max) return wrong(cfg, key, "a shorter list");
        for (int i = 0; i < count; i++) out[i] = x;
        *n = count;
        return NULL;
    }
    if (!cJSON_IsArray(v)) return wrong(cfg, key, allow_scalar ? "an integer or a list of integers" : "a list of integers");
    int len = cJSON_GetArraySize(v);
    if (expect >= 0 && len != expect)
        return is_errorf(IS_E_CONFIG, "%s: field '%s' has %d entries, expected %d", cfg->path, key, len, expect);
    if (len > max) return is_errorf(IS_E_CONFIG, "%s: field '%s' has %d entries, at most %d supported", cfg->path, key, len, max);
    int i = 0;
    for (cJSON *it = v->child; it; it = it->next, i++) {
        /* range first: converting a double beyond int64 is undefined behaviour */
        if (!cJSON_IsNumber(it) || it->valuedouble != floor(it->valuedouble) || fabs(it->valuedouble) > 9e15)
            return is_errorf(IS_E_CONFIG, "%s: field '%s'[%d] must be an integer of at most 9e15 in magnitude",
                             cfg->path, key, i);
        out[i] = (int64_t)it->valuedouble;
    }
    *n = len;
    return NULL;
}

is_error *is_config_string_list(const is_config *cfg, const char *key, const char **out, int max, int *n) {
    cJSON *v = field(cfg, key);
    if (!v) return missing(cfg, key, "a list of strings");
    if (!cJSON_IsArray(v)) return wrong(cfg, key, "a list of strings");
    int len = cJSON_GetArraySize(v);
    if (len > max) return is_errorf(IS_E_CONFIG, "%s: field '%s' has %d entries, at most %d supported", cfg->path, key, len, max);
    int i = 0;
    for (cJSON *it = v->child; it; it = it->next, i++) {
        if (!cJSON_IsString(it)) return is_errorf(IS_E_CONFIG, "%s: field '%s'[%d] must be a string", cfg->path, key, i);
        out[i] = it->valuestring;
    }
    *n = len;
    return NULL;
}
