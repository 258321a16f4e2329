/* IP-Adapter scale specs -> per-attention-module scales. The dictionary form is diffusers'
 * set_ip_adapter_scale dictionary (expanded as _maybe_expand_lora_scales_for_one_adapter does, with
 * default 0), written as JSON or as a Python literal pasted from diffusers' docs; the short and ComfyUI
 * forms are other spellings of the same assignment. Unlike diffusers, names that match nothing are errors
 * (diffusers silently ignores unknown blocks), and every value is range-checked here, before a run.
 * Errors name the byte offset in the spec and quote at most QUOTE_MAX bytes of it. */
#include "unet/block_scales.h"

#include <ctype.h>
#include <math.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_VALUES 64
#define MAX_BLOCK_VALUE 10.0 /* larger is a typo, not a style: diffusers' examples stay <= 1 */
#define QUOTE_MAX 40         /* bytes of the user's spec that one error quotes at most */
#define FOUND_MAX 24         /* bytes shown after an error's offset ("found '...'") */
#define QUOTE_CAP (QUOTE_MAX + 8)
#define FOUND_CAP (QUOTE_CAP + 24)
#define RANGE_TEXT "a block value must be a finite number with 0 <= v <= 10" /* MAX_BLOCK_VALUE */
#define DICT_SYNTAX "invalid JSON/Python dictionary: "

typedef struct {
    const char *spec, *end; /* the whole spec, NUL at end; offsets count from spec */
    const is_attn_module *m;
    int n;
    float *out;
} spec_ctx;

/* ---- error text: offsets and bounded quotes of the spec */

static int is_cont_byte(char ch) { return ((unsigned char)ch & 0xC0) == 0x80; }

static size_t quoted_width(char ch) {
    unsigned char c = (unsigned char)ch;
    return c == '\n' || c == '\t' ? 2 : c < 0x20 || c == 0x7f ? 4 : 1;
}

/* At most max characters of [p, end), control bytes escaped, "..." when cut, never half a UTF-8
 * character: the spec can be any length, its errors stay one short line. buf: QUOTE_CAP bytes. */
static const char *quote(const char *p, const char *end, size_t max, char *buf) {
    const char *stop = p;
    size_t width = 0;
    while (stop < end && width + quoted_width(*stop) <= max) width += quoted_width(*stop++);
    while (stop < end && stop > p && is_cont_byte(*stop)) stop--;
    size_t len = 0;
    for (const char *q = p; q < stop; q++) {
        unsigned char c = (unsigned char)*q;
        if (c == '\n' || c == '\t') {
            buf[len++] = '\\';
            buf[len++] = c == '\n' ? 'n' : 't';
        } else if (c < 0x20 || c == 0x7f) {
            len += (size_t)snprintf(buf + len, 5, "\\x%02x", c);
        } else {
            buf[len++] = (char)c;
        }
    }
    strcpy(buf + len, stop < end ? "..." : "");
    return buf;
}

/* What an error found at p: "'<next bytes>'", or the end of the spec / of the entry. buf: FOUND_CAP. */
static const char *found(const spec_ctx *c, const char *p, const char *seg_end, char *buf) {
    if (p >= c->end) return "the end of the spec";
    if (p >= seg_end) return "nothing";
    char q[QUOTE_CAP];
    snprintf(buf, FOUND_CAP, "'%s'", quote(p, seg_end, FOUND_MAX, q));
    return buf;
}

/* "IP scale spec: at offset N: <message>"; at NULL: no offset. */
static is_error *spec_err(const spec_ctx *c, const char *at, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static is_error *spec_err(const spec_ctx *c, const char *at, const char *fmt, ...) {
    char msg[8192];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (!at) return is_errorf(IS_E_ARGUMENT, "IP scale spec: %s", msg);
    return is_errorf(IS_E_ARGUMENT, "IP scale spec: at offset %td: %s", at - c->spec, msg);
}

/* ---- the UNet's blocks */

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

/* Values for one block: 1 value = every attention of the block, else exactly one per attention.
 * at: where the block is named in the spec. */
static is_error *assign_block(const spec_ctx *c, const char *at, char kind, int block, const double *v, int nv) {
    int count = 0;
    for (int i = 0; i < c->n; i++)
        if (c->m[i].kind == kind && c->m[i].block == block) count++;
    if (count == 0) {
        char names[1024];
        list_blocks(c->m, c->n, kind, names, sizeof names);
        return spec_err(c, at, "unknown block \"block_%d\" in \"%s\": this UNet's %s blocks with attentions are %s",
                        block, kind_word(kind), kind_word(kind), names);
    }
    if (nv != 1 && nv != count)
        return spec_err(c, at, "%s.block_%d has %d values but %s_blocks.%d has %d attention modules (give 1 value or "
                        "%d, one per attentions.K)", kind_word(kind), block, nv, kind_word(kind), block, count, count);
    for (int i = 0; i < c->n; i++)
        if (c->m[i].kind == kind && c->m[i].block == block) c->out[i] = (float)v[nv == 1 ? 0 : c->m[i].index];
    return NULL;
}

/* "down"/"up" with a number or a list: applied to every block of that kind that has attentions. */
static is_error *assign_kind(const spec_ctx *c, const char *at, char kind, const double *v, int nv) {
    if (kind == 'm') {
        if (nv != 1) return spec_err(c, at, "\"mid\" takes 1 value, got %d", nv);
        for (int i = 0; i < c->n; i++)
            if (c->m[i].kind == 'm' && c->m[i].index == 0) { /* diffusers: "mid" = mid_block.attentions.0 */
                c->out[i] = (float)v[0];
                return NULL;
            }
        return spec_err(c, at, "\"mid\" given but this UNet's mid block has no attentions");
    }
    if (!has_kind(c->m, c->n, kind))
        return spec_err(c, at, "\"%s\" given but no %s block of this UNet has attentions", kind_word(kind),
                        kind_word(kind));
    for (int i = 0; i < c->n; i++)
        if (c->m[i].kind == kind && c->m[i].index == 0) IS_TRY(assign_block(c, at, kind, c->m[i].block, v, nv));
    return NULL;
}

/* ---- words and numbers (shared by every form) */

static const char *skip_space(const char *p, const char *end) {
    while (p < end && isspace((unsigned char)*p)) p++;
    return p;
}

static const char *trim_end(const char *p, const char *end) {
    while (end > p && isspace((unsigned char)end[-1])) end--;
    return end;
}

/* First occurrence of ch in [s, end), or NULL. */
static const char *find_char(const char *s, const char *end, char ch) {
    for (; s < end; s++)
        if (*s == ch) return s;
    return NULL;
}

/* [a, b) equals the NUL-terminated word w; nocase: ASCII letters match either case. */
static int span_is(const char *a, const char *b, const char *w, int nocase) {
    size_t len = strlen(w);
    if ((size_t)(b - a) != len) return 0;
    for (size_t i = 0; i < len; i++)
        if (nocase ? tolower((unsigned char)a[i]) != w[i] : a[i] != w[i]) return 0;
    return 1;
}

static char kind_of(const char *a, const char *b) {
    return span_is(a, b, "down", 0) ? 'd' : span_is(a, b, "up", 0) ? 'u' : span_is(a, b, "mid", 0) ? 'm' : 0;
}

/* "block_N" (N decimal, at most 1000) -> N. */
static int span_block(const char *a, const char *b, int *block) {
    if (b - a < 7 || strncmp(a, "block_", 6) != 0) return 0;
    int v = 0;
    for (const char *p = a + 6; p < b; p++) {
        if (!isdigit((unsigned char)*p)) return 0;
        v = v * 10 + (*p - '0');
        if (v > 1000) return 0;
    }
    *block = v;
    return 1;
}

static const char *word_end(const char *p, const char *end) {
    if (p >= end || !(isalpha((unsigned char)*p) || *p == '_')) return p;
    while (p < end && (isalnum((unsigned char)*p) || *p == '_')) p++;
    return p;
}

static const char *digits_end(const char *p, const char *end) {
    while (p < end && isdigit((unsigned char)*p)) p++;
    return p;
}

/* A number at p: a JSON or Python literal ([+-] then 1, 1., 1.5 or .5, then [e[+-]N]), or nan/inf/infinity
 * in any case, read as such so that the range check names them rather than "not a number". Returns the byte
 * after it, NULL if none. p lies in a NUL-terminated string (strtod reads it). */
static const char *scan_number(const char *p, const char *end, double *v) {
    const char *q = p < end && (*p == '+' || *p == '-') ? p + 1 : p;
    const char *w = word_end(q, end);
    if (span_is(q, w, "nan", 1) || span_is(q, w, "inf", 1) || span_is(q, w, "infinity", 1)) {
        *v = tolower((unsigned char)*q) == 'n' ? NAN : *p == '-' ? -INFINITY : INFINITY;
        return w;
    }
    const char *int_end = digits_end(q, end), *stop = int_end;
    if (stop < end && *stop == '.') stop = digits_end(stop + 1, end);
    if (int_end == q && stop - int_end < 2) return NULL; /* no digit at all */
    if (stop < end && (*stop == 'e' || *stop == 'E')) {
        const char *e = stop + 1 < end && (stop[1] == '+' || stop[1] == '-') ? stop + 2 : stop + 1;
        const char *e_end = digits_end(e, end);
        if (e_end > e) stop = e_end;
    }
    char *read_to = NULL;
    double d = strtod(p, &read_to);
    if (read_to != stop) return NULL; /* strtod reads more (hex "0x1"): not a literal of ours */
    *v = d + 0.0;                     /* -0 -> 0 */
    return stop;
}

/* Values must be finite and in [0, 10]: checked here so that 1e308, NaN or a negative never reaches
 * the UNet, where they would only show up mid-run as non-finite activations. [a, b): the value's text. */
static is_error *check_value(const spec_ctx *c, const char *a, const char *b, double v) {
    if (isfinite(v) && v >= 0.0 && v <= MAX_BLOCK_VALUE) return NULL;
    char q[QUOTE_CAP];
    return spec_err(c, a, "value %s is out of range: " RANGE_TEXT, quote(a, b, QUOTE_MAX, q));
}

/* ---- the diffusers dictionary: JSON or a Python literal (subset: dict, list, tuple, ' or " strings,
 * int and float numbers). The parser knows the dictionary's shape, so it reads and assigns in one pass. */

typedef struct {
    const spec_ctx *c;
    const char *pos;
} dict_parser;

static void dp_skip(dict_parser *p) { p->pos = skip_space(p->pos, p->c->end); }

/* A syntax error at the parser's position: "expected X, found Y". */
static is_error *dp_expected(dict_parser *p, const char *expected) {
    char f[FOUND_CAP];
    return spec_err(p->c, p->pos, DICT_SYNTAX "expected %s, found %s", expected, found(p->c, p->pos, p->c->end, f));
}

/* A key: a string in ' or " (down/up/mid/block_N need no escapes; an escaped key matches nothing). */
static is_error *dp_key(dict_parser *p, const char **a, const char **b) {
    char q = *p->pos;
    if (q != '\'' && q != '"') return dp_expected(p, "a quoted key such as 'up' or \"up\"");
    const char *s = p->pos + 1;
    while (s < p->c->end && *s != q && *s != '\n') s += *s == '\\' && s + 1 < p->c->end ? 2 : 1;
    if (s >= p->c->end || *s != q) return spec_err(p->c, p->pos, DICT_SYNTAX "the string is never closed");
    *a = p->pos + 1;
    *b = s;
    p->pos = s + 1;
    return NULL;
}

/* The next member of a dictionary whose '{' is read: *more = 1 with its key and ':' read, 0 once its '}'
 * is read. Members are separated by commas; one trailing comma is fine (Python). */
static is_error *dp_member(dict_parser *p, int *first, const char **ka, const char **kb, int *more) {
    dp_skip(p);
    if (!*first && *p->pos != '}') {
        if (*p->pos != ',') return dp_expected(p, "',' or '}'");
        p->pos++;
        dp_skip(p);
    }
    *first = 0;
    *more = *p->pos != '}';
    if (!*more) {
        p->pos++;
        return NULL;
    }
    IS_TRY(dp_key(p, ka, kb));
    dp_skip(p);
    if (*p->pos != ':') return dp_expected(p, "':' after the key");
    p->pos++;
    return NULL;
}

/* One number; must: what the error says is expected ("up.block_0 must be a number ..."). */
static is_error *dp_number(dict_parser *p, const char *what, const char *must, double *v) {
    dp_skip(p);
    const char *at = p->pos, *stop = scan_number(at, p->c->end, v);
    if (!stop && at >= p->c->end) return dp_expected(p, must); /* cut short: a syntax error */
    if (!stop) {
        char f[FOUND_CAP];
        return spec_err(p->c, at, "%s must be %s, found %s", what, must, found(p->c, at, p->c->end, f));
    }
    p->pos = stop;
    return check_value(p->c, at, stop, *v);
}

/* A value: a number, or a list [..] / tuple (..) of numbers. "(0.5)" is 0.5 in Python, and a one-element
 * list counts as a number anyway, so a tuple needs no comma rule. */
static is_error *dp_values(dict_parser *p, const char *what, double *v, int *nv) {
    dp_skip(p);
    *nv = 0;
    const char *at = p->pos;
    if (*at != '[' && *at != '(') {
        *nv = 1;
        return dp_number(p, what, "a number or a list of numbers", v);
    }
    char close = *at == '[' ? ']' : ')';
    const char *expected = close == ']' ? "',' or ']'" : "',' or ')'";
    p->pos++;
    for (;;) {
        dp_skip(p);
        if (*p->pos == close) break;
        if (*nv == MAX_VALUES) return spec_err(p->c, at, "%s has more than %d values", what, MAX_VALUES);
        IS_TRY(dp_number(p, what, "a list of numbers", &v[(*nv)++]));
        dp_skip(p);
        if (*p->pos == ',') p->pos++;
        else if (*p->pos != close) return dp_expected(p, expected);
    }
    p->pos++;
    return *nv ? NULL : spec_err(p->c, at, "%s is an empty list", what);
}

/* {"block_N": value, ...} under "down" or "up"; its '{' is at p->pos. */
static is_error *dp_blocks(dict_parser *p, char kind) {
    int first = 1, more, seen[MAX_VALUES], n_seen = 0;
    const char *ka, *kb;
    p->pos++;
    for (;;) {
        IS_TRY(dp_member(p, &first, &ka, &kb, &more));
        if (!more) return NULL;
        int block;
        if (!span_block(ka, kb, &block)) {
            char names[1024], q[QUOTE_CAP];
            list_blocks(p->c->m, p->c->n, kind, names, sizeof names);
            return spec_err(p->c, ka - 1, "unknown block \"%s\" in \"%s\": this UNet's %s blocks with attentions "
                            "are %s", quote(ka, kb, QUOTE_MAX, q), kind_word(kind), kind_word(kind), names);
        }
        for (int i = 0; i < n_seen; i++)
            if (seen[i] == block)
                return spec_err(p->c, ka - 1, "\"block_%d\" is given twice in \"%s\"", block, kind_word(kind));
        if (n_seen < MAX_VALUES) seen[n_seen++] = block;
        char what[48];
        snprintf(what, sizeof what, "%s.block_%d", kind_word(kind), block);
        double v[MAX_VALUES];
        int nv;
        IS_TRY(dp_values(p, what, v, &nv));
        IS_TRY(assign_block(p->c, ka - 1, kind, block, v, nv));
    }
}

/* The value of "down", "up" or "mid": a number, a list, or (not for mid) a dictionary of blocks. */
static is_error *dp_kind_value(dict_parser *p, char kind, const char *key_at) {
    dp_skip(p);
    if (kind != 'm' && *p->pos == '{') return dp_blocks(p, kind);
    double v[MAX_VALUES];
    int nv;
    char what[8];
    snprintf(what, sizeof what, "\"%s\"", kind_word(kind));
    IS_TRY(dp_values(p, what, v, &nv));
    return assign_kind(p->c, key_at, kind, v, nv);
}

static is_error *parse_dict(const spec_ctx *c, const char *start) {
    dict_parser p = {c, start + 1};
    int first = 1, more, seen[3] = {0, 0, 0};
    const char *ka, *kb;
    for (;;) {
        IS_TRY(dp_member(&p, &first, &ka, &kb, &more));
        if (!more) break;
        char kind = kind_of(ka, kb);
        if (!kind) {
            char q[QUOTE_CAP];
            return spec_err(c, ka - 1, "unknown key \"%s\"; valid keys are \"down\", \"mid\", \"up\"",
                            quote(ka, kb, QUOTE_MAX, q));
        }
        int *once = &seen[kind == 'd' ? 0 : kind == 'm' ? 1 : 2];
        if ((*once)++) return spec_err(c, ka - 1, "\"%s\" is given twice", kind_word(kind));
        IS_TRY(dp_kind_value(&p, kind, ka - 1));
    }
    dp_skip(&p);
    return p.pos < c->end ? dp_expected(&p, "the end of the spec after the dictionary") : NULL;
}

/* ---- short form: "down.block_2=0,1;up.block_0=0,1,0;mid=0.5" (also "up=1", full module names) */

/* "0,1,0" in [s, end) -> values; what: the entry's key, for errors. */
static is_error *short_values(const spec_ctx *c, const char *s, const char *end, const char *what, double *v,
                              int *nv) {
    *nv = 0;
    for (;;) {
        const char *comma = find_char(s, end, ',');
        const char *stop = comma ? comma : end, *at = skip_space(s, stop);
        const char *num_end = scan_number(at, stop, &v[*nv]);
        if (!num_end || skip_space(num_end, stop) != stop) {
            char f[FOUND_CAP];
            return spec_err(c, at, "value of \"%s\" must be a number or comma-separated numbers, found %s", what,
                            found(c, at, end, f));
        }
        IS_TRY(check_value(c, at, num_end, v[*nv]));
        if (++*nv == MAX_VALUES && comma) return spec_err(c, at, "\"%s\" has more than %d values", what, MAX_VALUES);
        if (!comma) return NULL;
        s = comma + 1;
    }
}

/* Applies values to the key [a, b): down/up/mid, down.block_N/up.block_N, or a module name. */
static is_error *short_assign(const spec_ctx *c, const char *a, const char *b, const double *v, int nv) {
    char kind = kind_of(a, b);
    int block;
    if (kind) return assign_kind(c, a, kind, v, nv);
    if (b - a > 5 && !strncmp(a, "down.", 5) && span_block(a + 5, b, &block))
        return assign_block(c, a, 'd', block, v, nv);
    if (b - a > 3 && !strncmp(a, "up.", 3) && span_block(a + 3, b, &block))
        return assign_block(c, a, 'u', block, v, nv);
    for (int i = 0; i < c->n; i++)
        if (span_is(a, b, c->m[i].name, 0)) {
            if (nv != 1) return spec_err(c, a, "module %s takes 1 value, got %d", c->m[i].name, nv);
            c->out[i] = (float)v[0];
            return NULL;
        }
    char names[4096], q[QUOTE_CAP];
    list_short_keys(c->m, c->n, names, sizeof names);
    return spec_err(c, a, "unknown key \"%s\"; valid keys are %s", quote(a, b, QUOTE_MAX, q), names);
}

static is_error *parse_short(const spec_ctx *c, const char *s) {
    while (s < c->end) {
        const char *semi = find_char(s, c->end, ';');
        const char *end = semi ? semi : c->end;
        const char *e0 = skip_space(s, end), *e1 = trim_end(e0, end);
        s = semi ? semi + 1 : end;
        if (e0 == e1) continue; /* empty entry, e.g. a trailing ';' */
        const char *eq = find_char(e0, e1, '=');
        const char *k1 = trim_end(e0, eq ? eq : e1);
        char q[QUOTE_CAP];
        if (!eq || k1 == e0)
            return spec_err(c, e0, "entry \"%s\" is not KEY=VALUES (e.g. up.block_0=0,1,0)",
                            quote(e0, e1, QUOTE_MAX, q));
        double v[MAX_VALUES];
        int nv;
        IS_TRY(short_values(c, eq + 1, e1, quote(e0, k1, QUOTE_MAX, q), v, &nv));
        IS_TRY(short_assign(c, e0, k1, v, nv));
    }
    return NULL;
}

/* ---- ComfyUI IPAdapter layer_weights: "IDX:WEIGHT,..." over attention modules in forward order */

static is_error *comfy_range_error(const spec_ctx *c, const char *at, const char *what) {
    char names[4096];
    size_t len = 0;
    names[0] = 0;
    for (int k = 0; k < c->n && len < sizeof names; k++)
        for (int i = 0; i < c->n; i++)
            if (c->m[i].comfy_index == k)
                len += (size_t)snprintf(names + len, sizeof names - len, "%s%d=%s", k ? ", " : "", k, c->m[i].name);
    return spec_err(c, at, "%s; valid ComfyUI layer indices are %s", what, names);
}

/* One "IDX:WEIGHT" entry in [a, b). */
static is_error *comfy_entry(const spec_ctx *c, const char *a, const char *b) {
    const char *colon = find_char(a, b, ':');
    const char *i0 = skip_space(a, b), *w0 = colon ? skip_space(colon + 1, b) : b;
    double idx, w;
    const char *i1 = colon ? scan_number(i0, colon, &idx) : NULL, *w1 = scan_number(w0, b, &w);
    char what[QUOTE_CAP + 64], q[QUOTE_CAP];
    int index_ok = i1 && skip_space(i1, colon) == colon, weight_ok = w1 && skip_space(w1, b) == b;
    if (!index_ok || !weight_ok) {
        snprintf(what, sizeof what, "entry \"%s\" is not INDEX:WEIGHT", quote(i0, trim_end(i0, b), QUOTE_MAX, q));
        return comfy_range_error(c, index_ok ? w0 : i0, what);
    }
    if (idx != floor(idx) || idx < 0 || idx >= c->n) {
        snprintf(what, sizeof what, "layer index %s is out of range", quote(i0, i1, QUOTE_MAX, q));
        return comfy_range_error(c, i0, what);
    }
    IS_TRY(check_value(c, w0, w1, w));
    for (int i = 0; i < c->n; i++)
        if (c->m[i].comfy_index == (int)idx) c->out[i] = (float)w;
    return NULL;
}

static is_error *parse_comfy(const spec_ctx *c, const char *s) {
    while (s < c->end) {
        const char *comma = find_char(s, c->end, ',');
        const char *end = comma ? comma : c->end;
        IS_TRY(comfy_entry(c, s, end));
        s = comma ? comma + 1 : end;
    }
    return NULL;
}

/* ---- presets */

static is_error *set_module(const spec_ctx *c, const char *name, const char *preset) {
    for (int i = 0; i < c->n; i++)
        if (!strcmp(c->m[i].name, name)) {
            c->out[i] = 1.0f;
            return NULL;
        }
    char names[4096];
    size_t len = 0;
    names[0] = 0;
    for (int i = 0; i < c->n && len < sizeof names; i++)
        len += (size_t)snprintf(names + len, sizeof names - len, "%s%s", i ? ", " : "", c->m[i].name);
    return is_errorf(IS_E_ARGUMENT, "IP scale preset \"%s\" needs %s, which this UNet does not have (its attention "
                     "modules are %s)", preset, name, names);
}

#define STYLE_MODULE "up_blocks.0.attentions.1"
#define LAYOUT_MODULE "down_blocks.2.attentions.1"

/* s: the spec without its surrounding spaces (NUL-terminated at c->end). */
static is_error *parse_trimmed(const spec_ctx *c, const char *s) {
    double v;
    const char *num_end = scan_number(s, c->end, &v);
    if (!*s)
        return is_errorf(IS_E_ARGUMENT, "IP scale spec is empty (try \"style\", \"style+layout\", \"all\" or 1.0)");
    if (!strcmp(s, "all")) {
        for (int i = 0; i < c->n; i++) c->out[i] = 1.0f;
        return NULL;
    }
    if (!strcmp(s, "none")) return NULL;
    if (!strcmp(s, "style")) return set_module(c, STYLE_MODULE, s);
    if (!strcmp(s, "layout")) return set_module(c, LAYOUT_MODULE, s);
    if (!strcmp(s, "style+layout") || !strcmp(s, "layout+style")) {
        IS_TRY(set_module(c, STYLE_MODULE, s));
        return set_module(c, LAYOUT_MODULE, s);
    }
    if (s[0] == '{') return parse_dict(c, s);
    if (s[0] == '[')
        return is_errorf(IS_E_ARGUMENT, "IP scale spec: a list (one entry per IP-Adapter) is not supported; this "
                         "engine loads one IP-Adapter, give its number or dictionary");
    if (num_end == c->end) {
        IS_TRY(check_value(c, s, num_end, v));
        for (int i = 0; i < c->n; i++) c->out[i] = (float)v;
        return NULL;
    }
    if (strchr(s, '=') || !strncmp(s, "down", 4) || !strncmp(s, "up", 2) || !strncmp(s, "mid", 3))
        return parse_short(c, s);
    if (strchr(s, ':')) return parse_comfy(c, s);
    char q[QUOTE_CAP];
    return is_errorf(IS_E_ARGUMENT, "IP scale spec \"%s\" not understood: expected a preset (style, layout, "
                     "style+layout, all, none), a number, a diffusers dictionary ({\"up\": {\"block_0\": [0.0, 1.0, "
                     "0.0]}}), ComfyUI layer weights (6:1) or the short form (up.block_0=0,1,0)",
                     quote(s, c->end, QUOTE_MAX, q));
}

is_error *is_block_scales_parse(const char *spec, const is_attn_module *m, int n, float *out) {
    for (int i = 0; i < n; i++) out[i] = 0.0f;
    if (!spec) spec = "all";
    size_t len = strlen(spec);
    char *s = malloc(len + 1); /* a copy with the trailing spaces cut, so offsets stay the user's */
    if (!s) return is_error_oom("IP scale spec");
    memcpy(s, spec, len + 1);
    char *end = (char *)trim_end(s, s + len);
    *end = 0;
    spec_ctx c = {s, end, m, n, out};
    is_error *err = parse_trimmed(&c, skip_space(s, end));
    free(s);
    if (err) {
        for (int i = 0; i < n; i++) out[i] = 0.0f;
    }
    return err;
}
