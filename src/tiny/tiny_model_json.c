/* JSON output for the tiny model's configs: cJSON underneath, allocation failures remembered. */
#include <stdlib.h>
#include <string.h>

#include "core/fileio.h"
#include "tiny/tiny_model.h"

tm_json tm_json_new(void) {
    tm_json j = {cJSON_CreateObject(), 0};
    j.oom = j.obj == NULL;
    return j;
}

/* Attach item under key; a NULL item (failed allocation) or a failed attach marks the builder. */
static void put(tm_json *j, const char *key, cJSON *item) {
    if (!item || !j->obj || !cJSON_AddItemToObject(j->obj, key, item)) {
        cJSON_Delete(item);
        j->oom = 1;
    }
}

void tm_json_num(tm_json *j, const char *key, double value) { put(j, key, cJSON_CreateNumber(value)); }
void tm_json_str(tm_json *j, const char *key, const char *value) { put(j, key, cJSON_CreateString(value)); }
void tm_json_bool(tm_json *j, const char *key, int value) { put(j, key, cJSON_CreateBool(value)); }
void tm_json_null(tm_json *j, const char *key) { put(j, key, cJSON_CreateNull()); }
void tm_json_ints(tm_json *j, const char *key, const int *v, int n) { put(j, key, cJSON_CreateIntArray(v, n)); }
void tm_json_strs(tm_json *j, const char *key, const char *const *v, int n) {
    put(j, key, cJSON_CreateStringArray(v, n));
}

void tm_json_add(tm_json *j, const char *key, tm_json sub) {
    if (sub.oom) {
        cJSON_Delete(sub.obj);
        j->oom = 1;
        return;
    }
    put(j, key, sub.obj);
}

void tm_json_free(tm_json *j) {
    cJSON_Delete(j->obj);
    j->obj = NULL;
}

is_error *tm_json_write(tm_json *j, const char *dir, const char *name) {
    char *path = is_path_join(dir, name);
    char *text = !j->oom && j->obj ? cJSON_Print(j->obj) : NULL;
    tm_json_free(j);
    is_error *err = NULL;
    size_t n = text ? strlen(text) : 0;
    char *grown = text ? realloc(text, n + 2) : NULL;
    if (!path || !grown) {
        err = is_errorf(IS_E_NOMEM, "out of memory writing %s/%s", dir, name);
        free(text);
    } else {
        text = grown;
        text[n] = '\n';
        err = is_write_file_atomic(path, text, n + 1);
        free(text);
    }
    free(path);
    return err;
}
