/* IP-Adapter scale specs -> per-attention-module scales. The JSON form is diffusers'
 * set_ip_adapter_scale dictionary (expanded as _maybe_expand_lora_scales_for_one_adapter does, with
 * default 0); the short and ComfyUI forms are other spellings of the same assignment. Unlike
 * diffusers, names that match nothing are errors (diffusers silently ignores unknown blocks). */
#include "unet/block_scales.h"

#include <cjson/cJSON.h>
#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_VALUES 64

static const char *kind_word(char kind) { return kind == 'd' ? "down" : kind == 'u' ? "up" : "mid"; }

/* "block_1 (2 attentions), block_2 (2 attentions)" for the blocks of one kind. */
static void list_blocks(const is_attn_module *m, int n, char kind, char *buf, size_t cap) {
    size_t len = 0;
    buf[0] = 0;
    for (int i = 0; i < n; i++) {
        if (m[i].kind != kind || m[i].index != 0) continue;
        len += (size_t)snprintf(buf + len, len < cap ? cap - len : 0, "%sblock_%d (%d attention%s)", len ? ", " : "",
                                m[i].block, m[i].n_in_block, m[i].n_in_block == 1 ? "" : "s");
        if (len >= cap) break;
    }
    if (!buf[0]) snprintf(buf, cap, "(none)");
}

/* Every key the short form accepts, for error messages. */
static void list_short_keys(const is_attn_module *m, int n, char *buf, size_t cap) {
    size_t len = (size_t)snprintf(buf, cap, "down, up, mid");
    for (int i = 0; i < n && len < cap; i++)
        if (m[i].kind != 'm' && m[i].index == 0)
            len += (size_t)snprintf(buf + len, cap - len, ", %s.block_%d", kind_word(m[i].kind), m[i].block);
    for (int i = 0; i < n && len < cap; i++) len += (size_t)snprintf(buf + len, cap - len, ", %s", m[i].name);
}

static int has_kind(const is_attn_module *m, int n, char kind) {
    for (int i = 0; i < n; i++)
        if (m[i].kind == kind) return 1;
    return 0;
}

/* Values for one block: 1 value = every attention of the block, else exactly one per attention. */
static is_error *assign_block(const is_attn_module *m, int n, char kind, int block, const double *v, int nv,
                              float *out) {
    int count = 0;
    for (int i = 0; i < n; i++)
        if (m[i].kind == kind && m[i].block == block) count++;
    if (count == 0) {
        char names[1024];
        list_blocks(m, n, kind, names, sizeof names);
        return is_errorf(IS_E_ARGUMENT, "IP scale spec: unknown block \"block_%d\" in \"%s\": this UNet's %s blocks with "
                         "attentions are %s", block, kind_word(kind), kind_word(kind), names);
    }
    if (nv != 1 && nv != count)
        return is_errorf(IS_E_ARGUMENT, "IP scale spec: %s.block_%d has %d values but %s_blocks.%d has %d attention "
                         "modules (give 1 value or %d, one per attentions.K)", kind_word(kind), block, nv,
                         kind_word(kind), block, count, count);
    for (int i = 0; i < n; i++)
        if (m[i].kind == kind && m[i].block == block) out[i] = (float)v[nv == 1 ? 0 : m[i].index];
    return NULL;
}

/* "down"/"up" with a number or a list: applied to every block of that kind that has attentions. */
static is_error *assign_kind(const is_attn_module *m, int n, char kind, const double *v, int nv, float *out) {
    if (kind == 'm') {
        if (nv != 1) return is_errorf(IS_E_ARGUMENT, "IP scale spec: \"mid\" takes 1 value, got %d", nv);
        for (int i = 0; i < n; i++)
            if (m[i].kind == 'm' && m[i].index == 0) { /* diffusers: "mid" = mid_block.attentions.0 */
                out[i] = (float)v[0];
                return NULL;
            }
        return is_errorf(IS_E_ARGUMENT, "IP scale spec: \"mid\" given but this UNet's mid block has no attentions");
    }
    if (!has_kind(m, n, kind))
        return is_errorf(IS_E_ARGUMENT, "IP scale spec: \"%s\" given but no %s block of this UNet has attentions",
                         kind_word(kind), kind_word(kind));
    for (int i = 0; i < n; i++)
        if (m[i].kind == kind && m[i].index == 0) IS_TRY(assign_block(m, n, kind, m[i].block, v, nv, out));
    return NULL;
}

/* ---- numbers */

/* First occurrence of ch in [s, end), or NULL. */
static const char *find_char(const char *s, const char *end, char ch) {
    for (; s < end; s++)
        if (*s == ch) return s;
    return NULL;
}

static int parse_number(const char *s, const char *end, double *out) {
    char buf[64];
    while (s < end && isspace((unsigned char)*s)) s++;
    while (end > s && isspace((unsigned char)end[-1])) end--;
    size_t len = (size_t)(end - s);
    if (len == 0 || len >= sizeof buf) return 0;
    memcpy(buf, s, len);
    buf[len] = 0;
    char *stop = NULL;
    double v = strtod(buf, &stop);
    if (*stop || !isfinite(v)) return 0;
    *out = v;
    return 1;
}

/* "0,1,0" -> values. */
static is_error *parse_list(const char *s, const char *end, const char *key, double *v, int *nv) {
    *nv = 0;
    while (s <= end) {
        const char *comma = find_char(s, end, ',');
        const char *stop = comma ? comma : end;
        if (*nv == MAX_VALUES || !parse_number(s, stop, &v[*nv]))
            return is_errorf(IS_E_ARGUMENT, "IP scale spec: value of \"%s\" must be a number or comma-separated "
                             "numbers, got \"%.*s\"", key, (int)(end - s), s);
        (*nv)++;
        if (!comma) break;
        s = comma + 1;
    }
    return NULL;
}

/* ---- diffusers JSON dictionary */

static is_error *json_values(const cJSON *j, const char *where, double *v, int *nv) {
    *nv = 0;
    if (cJSON_IsNumber(j)) {
        v[(*nv)++] = j->valuedouble;
        return NULL;
    }
    if (cJSON_IsArray(j)) {
        const cJSON *e;
        cJSON_ArrayForEach(e, j) {
            if (!cJSON_IsNumber(e) || *nv == MAX_VALUES)
                return is_errorf(IS_E_ARGUMENT, "IP scale spec: %s must hold numbers only", where);
            v[(*nv)++] = e->valuedouble;
        }
        if (*nv == 0) return is_errorf(IS_E_ARGUMENT, "IP scale spec: %s is an empty list", where);
        return NULL;
    }
    return is_errorf(IS_E_ARGUMENT, "IP scale spec: %s must be a number or a list of numbers", where);
}

static int block_number(const char *key, int *block) {
    if (strncmp(key, "block_", 6) != 0 || !isdigit((unsigned char)key[6])) return 0;
    char *end = NULL;
    long b = strtol(key + 6, &end, 10);
    if (*end || b > 1000) return 0;
    *block = (int)b;
    return 1;
}

static is_error *parse_json(const char *spec, const is_attn_module *m, int n, float *out) {
    cJSON *root = cJSON_Parse(spec);
    if (!root || !cJSON_IsObject(root)) {
        cJSON_Delete(root);
        return is_errorf(IS_E_ARGUMENT, "IP scale spec: invalid JSON dictionary: %s", spec);
    }
    is_error *err = NULL;
    double v[MAX_VALUES];
    int nv = 0;
    const cJSON *item;
    cJSON_ArrayForEach(item, root) {
        const char *key = item->string;
        char kind = !strcmp(key, "down") ? 'd' : !strcmp(key, "up") ? 'u' : !strcmp(key, "mid") ? 'm' : 0;
        if (!kind) {
            err = is_errorf(IS_E_ARGUMENT, "IP scale spec: unknown key \"%s\"; valid keys are \"down\", \"mid\", \"up\"",
                            key);
            break;
        }
        if (kind == 'm' || !cJSON_IsObject(item)) {
            char where[64];
            snprintf(where, sizeof where, "\"%s\"", key);
            if ((err = json_values(item, where, v, &nv))) break;
            if ((err = assign_kind(m, n, kind, v, nv, out))) break;
            continue;
        }
        const cJSON *blk;
        cJSON_ArrayForEach(blk, item) {
            int block;
            if (!block_number(blk->string, &block)) {
                char names[1024];
                list_blocks(m, n, kind, names, sizeof names);
                err = is_errorf(IS_E_ARGUMENT, "IP scale spec: unknown block \"%s\" in \"%s\": this UNet's %s blocks "
                                "with attentions are %s", blk->string, key, key, names);
                break;
            }
            char where[96];
            snprintf(where, sizeof where, "\"%s\".\"%s\"", key, blk->string);
            if ((err = json_values(blk, where, v, &nv))) break;
            if ((err = assign_block(m, n, kind, block, v, nv, out))) break;
        }
        if (err) break;
    }
    cJSON_Delete(root);
    return err;
}

/* ---- short form: "down.block_2=0,1;up.block_0=0,1,0;mid=0.5" (also "up=1", full module names) */

static is_error *parse_short(const char *spec, const is_attn_module *m, int n, float *out) {
    const char *s = spec;
    double v[MAX_VALUES];
    int nv;
    while (*s) {
        const char *semi = strchr(s, ';');
        const char *end = semi ? semi : s + strlen(s);
        const char *e0 = s, *e1 = end;
        while (e0 < e1 && isspace((unsigned char)*e0)) e0++;
        while (e1 > e0 && isspace((unsigned char)e1[-1])) e1--;
        if (e0 == e1) { /* empty entry, e.g. a trailing ';' */
            s = semi ? semi + 1 : end;
            continue;
        }
        const char *eq = find_char(e0, e1, '=');
        const char *k1 = eq ? eq : e1;
        while (k1 > e0 && isspace((unsigned char)k1[-1])) k1--;
        char key[128];
        size_t klen = (size_t)(k1 - e0);
        if (!eq || klen == 0 || klen >= sizeof key)
            return is_errorf(IS_E_ARGUMENT, "IP scale spec: entry \"%.*s\" is not KEY=VALUES (e.g. up.block_0=0,1,0)",
                             (int)(e1 - e0), e0);
        memcpy(key, e0, klen);
        key[klen] = 0;
        IS_TRY(parse_list(eq + 1, e1, key, v, &nv));

        int block, found = 0;
        char kind = !strcmp(key, "down") ? 'd' : !strcmp(key, "up") ? 'u' : !strcmp(key, "mid") ? 'm' : 0;
        if (kind) {
            IS_TRY(assign_kind(m, n, kind, v, nv, out));
            found = 1;
        } else if (!strncmp(key, "down.", 5) || !strncmp(key, "up.", 3)) {
            kind = key[0];
            const char *b = key + (kind == 'd' ? 5 : 3);
            if (block_number(b, &block)) {
                IS_TRY(assign_block(m, n, kind, block, v, nv, out));
                found = 1;
            }
        } else {
            for (int i = 0; i < n; i++)
                if (!strcmp(key, m[i].name)) {
                    if (nv != 1)
                        return is_errorf(IS_E_ARGUMENT, "IP scale spec: module %s takes 1 value, got %d", key, nv);
                    out[i] = (float)v[0];
                    found = 1;
                }
        }
        if (!found) {
            char names[4096];
            list_short_keys(m, n, names, sizeof names);
            return is_errorf(IS_E_ARGUMENT, "IP scale spec: unknown key \"%s\"; valid keys are %s", key, names);
        }
        s = semi ? semi + 1 : end;
    }
    return NULL;
}

/* ---- ComfyUI IPAdapter layer_weights: "IDX:WEIGHT,..." over attention modules in forward order */

static is_error *comfy_range_error(const is_attn_module *m, int n, const char *what) {
    char names[4096];
    size_t len = 0;
    names[0] = 0;
    for (int c = 0; c < n && len < sizeof names; c++)
        for (int i = 0; i < n; i++)
            if (m[i].comfy_index == c)
                len += (size_t)snprintf(names + len, sizeof names - len, "%s%d=%s", c ? ", " : "", c, m[i].name);
    return is_errorf(IS_E_ARGUMENT, "IP scale spec: %s; valid ComfyUI layer indices are %s", what, names);
}

static is_error *parse_comfy(const char *spec, const is_attn_module *m, int n, float *out) {
    const char *s = spec;
    while (*s) {
        const char *comma = strchr(s, ',');
        const char *end = comma ? comma : s + strlen(s);
        const char *colon = find_char(s, end, ':');
        double idx, w;
        char what[160];
        if (!colon || !parse_number(s, colon, &idx) || !parse_number(colon + 1, end, &w)) {
            snprintf(what, sizeof what, "entry \"%.*s\" is not INDEX:WEIGHT", (int)(end - s), s);
            return comfy_range_error(m, n, what);
        }
        if (idx != floor(idx) || idx < 0 || idx >= n) {
            snprintf(what, sizeof what, "layer index %g is out of range", idx);
            return comfy_range_error(m, n, what);
        }
        for (int i = 0; i < n; i++)
            if (m[i].comfy_index == (int)idx) out[i] = (float)w;
        s = comma ? comma + 1 : end;
    }
    return NULL;
}

/* ---- presets */

static is_error *set_module(const is_attn_module *m, int n, const char *name, const char *preset, float *out) {
    for (int i = 0; i < n; i++)
        if (!strcmp(m[i].name, name)) {
            out[i] = 1.0f;
            return NULL;
        }
    char names[4096];
    size_t len = 0;
    names[0] = 0;
    for (int i = 0; i < n && len < sizeof names; i++)
        len += (size_t)snprintf(names + len, sizeof names - len, "%s%s", i ? ", " : "", m[i].name);
    return is_errorf(IS_E_ARGUMENT, "IP scale preset \"%s\" needs %s, which this UNet does not have (its attention "
                     "modules are %s)", preset, name, names);
}

#define STYLE_MODULE "up_blocks.0.attentions.1"
#define LAYOUT_MODULE "down_blocks.2.attentions.1"

is_error *is_block_scales_parse(const char *spec, const is_attn_module *m, int n, float *out) {
    for (int i = 0; i < n; i++) out[i] = 0.0f;
    if (!spec) spec = "all";
    while (isspace((unsigned char)*spec)) spec++;
    size_t len = strlen(spec);
    while (len && isspace((unsigned char)spec[len - 1])) len--;
    char *s = malloc(len + 1);
    if (!s) return is_error_oom("IP scale spec");
    memcpy(s, spec, len);
    s[len] = 0;

    is_error *err = NULL;
    double v;
    if (!*s) {
        err = is_errorf(IS_E_ARGUMENT, "IP scale spec is empty (try \"style\", \"style+layout\", \"all\" or 1.0)");
    } else if (!strcmp(s, "all")) {
        for (int i = 0; i < n; i++) out[i] = 1.0f;
    } else if (!strcmp(s, "none")) {
        /* all zero */
    } else if (!strcmp(s, "style")) {
        err = set_module(m, n, STYLE_MODULE, s, out);
    } else if (!strcmp(s, "layout")) {
        err = set_module(m, n, LAYOUT_MODULE, s, out);
    } else if (!strcmp(s, "style+layout") || !strcmp(s, "layout+style")) {
        err = set_module(m, n, STYLE_MODULE, s, out);
        if (!err) err = set_module(m, n, LAYOUT_MODULE, s, out);
    } else if (s[0] == '{') {
        err = parse_json(s, m, n, out);
    } else if (s[0] == '[') {
        err = is_errorf(IS_E_ARGUMENT, "IP scale spec: a list (one entry per IP-Adapter) is not supported; this engine "
                        "loads one IP-Adapter, give its number or dictionary");
    } else if (parse_number(s, s + len, &v)) {
        for (int i = 0; i < n; i++) out[i] = (float)v;
    } else if (strchr(s, '=') || !strncmp(s, "down", 4) || !strncmp(s, "up", 2) || !strncmp(s, "mid", 3)) {
        err = parse_short(s, m, n, out);
    } else if (strchr(s, ':')) {
        err = parse_comfy(s, m, n, out);
    } else {
        err = is_errorf(IS_E_ARGUMENT, "IP scale spec \"%s\" not understood: expected a preset (style, layout, "
                        "style+layout, all, none), a number, a diffusers dictionary ({\"up\": {\"block_0\": [0.0, 1.0, "
                        "0.0]}}), ComfyUI layer weights (6:1) or the short form (up.block_0=0,1,0)", s);
    }
    free(s);
    if (err) {
        for (int i = 0; i < n; i++) out[i] = 0.0f;
    }
    return err;
}
