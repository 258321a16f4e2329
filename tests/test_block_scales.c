/* IP-Adapter block targeting: every golden case's ip_scale_table reproduced from its diffusers spec;
 * presets, ComfyUI layer weights and the short form equal to the dictionary forms; errors for unknown
 * block names and wrong list lengths name the valid choices. Issue 11: dictionaries in Python literal
 * syntax, values outside [0, 10] refused in every form, errors that point at an offset and quote at most
 * 40 bytes of the spec. */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "instantstyle.h"

#define MAX_LAYERS 64

static is_unet *u;
static int n_layers;

/* Scales after applying spec (NAN row on error). */
static int scales_of(const char *spec, float scale, float *out) {
    is_error *err = is_unet_set_ip_scale(u, spec, scale);
    if (err) {
        fprintf(stderr, "  spec %s: %s\n", spec, is_error_message(err));
        is_error_free(err);
        return 0;
    }
    for (int i = 0; i < n_layers; i++) out[i] = is_unet_cross_attn_scale(u, i);
    return 1;
}

static int index_of(const char *name) {
    for (int i = 0; i < n_layers; i++)
        if (!strcmp(is_unet_cross_attn_name(u, i), name)) return i;
    return -1;
}

/* A golden ip_scale_table as a per-layer array. */
static int table_of(const cJSON *table, float *out) {
    int n = 0;
    const cJSON *e;
    for (int i = 0; i < n_layers; i++) out[i] = NAN;
    cJSON_ArrayForEach(e, table) {
        int i = index_of(e->string);
        if (i < 0) return 0;
        out[i] = (float)e->valuedouble;
        n++;
    }
    return n == n_layers;
}

static void expect_same(const char *spec, float scale, const float *want, const char *what) {
    float got[MAX_LAYERS];
    int ok = scales_of(spec, scale, got);
    for (int i = 0; ok && i < n_layers; i++)
        if (!(fabsf(got[i] - want[i]) <= 1e-7f)) {
            fprintf(stderr, "  %s: layer %s scale %g, expected %g\n", what, is_unet_cross_attn_name(u, i), got[i],
                    want[i]);
            ok = 0;
        }
    th_check(ok, "%s: '%s' x %g", what, spec, scale);
}

static const cJSON *find_case(const cJSON *cases, const char *name) {
    const cJSON *c;
    cJSON_ArrayForEach(c, cases) {
        const cJSON *n = cJSON_GetObjectItemCaseSensitive(c, "name");
        if (cJSON_IsString(n) && !strcmp(n->valuestring, name)) return c;
    }
    return NULL;
}

static void case_table(const cJSON *cases, const char *name, float *out) {
    const cJSON *c = find_case(cases, name);
    th_check(c && table_of(cJSON_GetObjectItemCaseSensitive(c, "ip_scale_table"), out), "table of case %s", name);
}

/* Every case with a spec: compact JSON, pretty JSON (whitespace), and the spec scaled by 0.5. */
static void test_golden_tables(const cJSON *cases) {
    const cJSON *c;
    int n = 0;
    cJSON_ArrayForEach(c, cases) {
        const cJSON *spec = cJSON_GetObjectItemCaseSensitive(c, "ip_scale_spec");
        if (!spec) continue;
        const char *name = cJSON_GetObjectItemCaseSensitive(c, "name")->valuestring;
        float want[MAX_LAYERS], half[MAX_LAYERS];
        if (!table_of(cJSON_GetObjectItemCaseSensitive(c, "ip_scale_table"), want)) {
            th_check(0, "%s: ip_scale_table names every cross-attention layer", name);
            continue;
        }
        char *compact = cJSON_PrintUnformatted(spec), *pretty = cJSON_Print(spec);
        char what[96];
        snprintf(what, sizeof what, "case %s", name);
        expect_same(compact, 1.0f, want, what);
        snprintf(what, sizeof what, "case %s (pretty JSON)", name);
        expect_same(pretty, 1.0f, want, what);
        for (int i = 0; i < n_layers; i++) half[i] = want[i] * 0.5f;
        snprintf(what, sizeof what, "case %s x 0.5", name);
        expect_same(compact, 0.5f, half, what);
        free(compact);
        free(pretty);
        n++;
    }
    th_check(n == 9, "9 golden cases carry a scale spec (got %d)", n);
}

static void test_equivalent_forms(const cJSON *cases) {
    float style[MAX_LAYERS], layout[MAX_LAYERS], all[MAX_LAYERS], mixed[MAX_LAYERS], s06[MAX_LAYERS];
    float zero[MAX_LAYERS], only_layout[MAX_LAYERS], up0[MAX_LAYERS];
    case_table(cases, "ip_style", style);
    case_table(cases, "ip_style_layout", layout);
    case_table(cases, "ip_all_1.0", all);
    case_table(cases, "ip_mixed", mixed);
    case_table(cases, "ip_scale_0.6", s06);
    for (int i = 0; i < n_layers; i++) {
        zero[i] = 0.0f;
        only_layout[i] = layout[i] - style[i];
        const char *name = is_unet_cross_attn_name(u, i);
        up0[i] = !strncmp(name, "up_blocks.0.", 12) ? 1.0f : 0.0f;
    }

    /* presets */
    expect_same("style", 1.0f, style, "preset");
    expect_same("style+layout", 1.0f, layout, "preset");
    expect_same("layout+style", 1.0f, layout, "preset");
    expect_same("layout", 1.0f, only_layout, "preset");
    expect_same("all", 1.0f, all, "preset");
    expect_same(NULL, 1.0f, all, "NULL spec = all");
    expect_same("none", 1.0f, zero, "preset");
    expect_same("  style  ", 1.0f, style, "preset with spaces");

    /* bare numbers and other dictionaries */
    expect_same("0.6", 1.0f, s06, "number");
    expect_same("1", 0.6f, s06, "number x scale");
    expect_same("{\"down\": 1, \"mid\": 1, \"up\": 1}", 1.0f, all, "dict, one number per part");
    expect_same("{\"down\": [1.0], \"mid\": [1], \"up\": [1]}", 1.0f, all, "dict, one-element lists broadcast");
    expect_same("{\"up\": {\"block_0\": 1}}", 1.0f, up0, "dict, number for a whole block");
    expect_same("{\"up\": {\"block_0\": [0, 1, 0]}, \"down\": {\"block_2\": [0, 1]}}", 1.0f, layout, "dict, ints");

    /* ComfyUI layer_weights: modules in forward order down (0-3), mid (4), up (5-10) */
    expect_same("6:1", 1.0f, style, "ComfyUI");
    expect_same("3:1, 6:1", 1.0f, layout, "ComfyUI");
    expect_same("6:0.5,3:0.5", 2.0f, layout, "ComfyUI x scale");
    expect_same("0:0.3,1:0,2:1,3:0.5,4:0.7,5:0,6:1,7:0.2,8:0.4,9:0,10:0.9", 1.0f, mixed, "ComfyUI");
    expect_same("0:0.6,1:0.6,2:0.6,3:0.6,4:0.6,5:0.6,6:0.6,7:0.6,8:0.6,9:0.6,10:0.6", 1.0f, s06, "ComfyUI");

    /* short form */
    expect_same("up.block_0=0,1,0", 1.0f, style, "short form");
    expect_same("down.block_2=0,1;up.block_0=0,1,0", 1.0f, layout, "short form");
    expect_same(" down.block_2 = 0, 1 ; up.block_0 = 0, 1, 0 ; ", 1.0f, layout, "short form with spaces");
    expect_same("down.block_1=0.3,0;down.block_2=1,0.5;mid=0.7;up.block_0=0,1,0.2;up.block_1=0.4,0,0.9", 1.0f, mixed,
                "short form");
    expect_same("down=0.6;mid=0.6;up=0.6", 1.0f, s06, "short form");
    expect_same("up.block_0=1", 1.0f, up0, "short form, one value per block");
    expect_same("up_blocks.0.attentions.1=1;down_blocks.2.attentions.1=1", 1.0f, layout, "short form, module names");
}

static void expect_error(const char *spec, const char *needle1, const char *needle2, const char *what) {
    float before[MAX_LAYERS], after[MAX_LAYERS];
    scales_of("style", 1.0f, before);
    is_error *err = is_unet_set_ip_scale(u, spec, 1.0f);
    if (err && needle2 && !strstr(is_error_message(err), needle2)) {
        th_check(0, "%s: error '%s' does not mention '%s'", what, is_error_message(err), needle2);
        is_error_free(err);
        return;
    }
    th_fails(err, needle1, what);
    for (int i = 0; i < n_layers; i++) after[i] = is_unet_cross_attn_scale(u, i);
    th_check(!memcmp(before, after, sizeof(float) * (size_t)n_layers), "%s: scales unchanged after the error", what);
}

static void test_errors(void) {
    const char *down_blocks = "block_1 (2 attentions), block_2 (2 attentions)";
    const char *up_blocks = "block_0 (3 attentions), block_1 (3 attentions)";
    expect_error("{\"down\": {\"block_0\": 1}}", down_blocks, "\"block_0\"", "dict: down block without attentions");
    expect_error("{\"up\": {\"block_2\": [1, 1, 1]}}", up_blocks, "\"block_2\"", "dict: up block without attentions");
    expect_error("{\"up\": {\"block_9\": 1}}", up_blocks, NULL, "dict: no such up block");
    expect_error("{\"up\": {\"attn_0\": 1}}", up_blocks, "\"attn_0\"", "dict: malformed block name");
    expect_error("{\"up\": {\"block_0\": [0, 1]}}", "has 2 values", "3 attention modules", "dict: list too short");
    expect_error("{\"down\": {\"block_2\": [0, 1, 0]}}", "has 3 values", "2 attention modules", "dict: list too long");
    expect_error("{\"down\": [0, 1, 0]}", "has 3 values", NULL, "dict: list for every down block, wrong length");
    expect_error("{\"mid\": [1, 2]}", "\"mid\" takes 1 value", NULL, "dict: two values for mid");
    expect_error("{\"middle\": 1}", "valid keys are \"down\", \"mid\", \"up\"", NULL, "dict: unknown key");
    expect_error("{\"up\": {\"block_0\": \"1\"}}", "must be a number", NULL, "dict: string value");
    expect_error("{\"up\": ", "invalid JSON", NULL, "dict: broken JSON");
    expect_error("[1.0, 0.5]", "one IP-Adapter", NULL, "list of adapters");
    expect_error("up.block_0=0,1", "has 2 values", "3 attention modules", "short: list too short");
    expect_error("up.block_2=1", up_blocks, NULL, "short: up block without attentions");
    expect_error("down.block_0=1", down_blocks, NULL, "short: down block without attentions");
    expect_error("upper.block_0=1", "valid keys are down, up, mid, down.block_1, down.block_2, up.block_0, up.block_1",
                 "up_blocks.0.attentions.1", "short: unknown key lists every valid key");
    expect_error("up.block_0=0,x,0", "must be a number", NULL, "short: bad number");
    expect_error("up.block_0", "not KEY=VALUES", NULL, "short: missing value");
    expect_error("11:1", "out of range", "0=down_blocks.1.attentions.0", "ComfyUI: index 11 of 0..10");
    expect_error("6:1,-1:1", "out of range", "10=up_blocks.1.attentions.2", "ComfyUI: negative index");
    expect_error("6:x", "not INDEX:WEIGHT", "6=up_blocks.0.attentions.1", "ComfyUI: bad weight");
    expect_error("stylish", "not understood", "style+layout", "unknown preset");
    expect_error("", "empty", NULL, "empty spec");
    float tmp[MAX_LAYERS];
    scales_of("style", 1.0f, tmp);
    th_fails(is_unet_set_ip_scale(u, "style", NAN), "finite", "NaN scale");
}

/* ---- issue 11 */

/* Per-layer scales from (module, value) pairs, every other module 0; fails if a module is missing. */
static void layers_of(const char *const *modules, const float *values, int k, float *out) {
    int hits = 0;
    for (int i = 0; i < n_layers; i++) {
        out[i] = 0.0f;
        for (int j = 0; j < k; j++)
            if (!strcmp(is_unet_cross_attn_module(u, i), modules[j])) {
                out[i] = values[j];
                hits |= 1 << j;
            }
    }
    th_check(hits == (1 << k) - 1, "every hand-written module exists in the tiny UNet");
}

/* Length of the longest byte run that a and b share: how much of a spec its error quotes. */
static size_t longest_shared(const char *a, const char *b) {
    size_t best = 0;
    for (const char *p = a; *p; p++)
        for (const char *q = b; *q; q++) {
            size_t k = 0;
            while (p[k] && p[k] == q[k]) k++;
            if (k > best) best = k;
        }
    return best;
}

/* spec is refused with IS_E_ARGUMENT and a message holding every needle (the list ends with NULL),
 * quoting at most 40 bytes of the spec in a row (42 counts a quote mark either side that happens to match
 * the spec's); the scales stay as they were. */
static void expect_refused(const char *what, const char *spec, ...) {
    float before[MAX_LAYERS], after[MAX_LAYERS];
    scales_of("style", 1.0f, before);
    is_error *err = is_unet_set_ip_scale(u, spec, 1.0f);
    const char *msg = err ? is_error_message(err) : "";
    int ok = err && is_error_code(err) == IS_E_ARGUMENT;
    va_list ap;
    va_start(ap, spec);
    for (const char *needle; (needle = va_arg(ap, const char *));)
        if (!strstr(msg, needle)) {
            fprintf(stderr, "  %s: the message does not hold \"%s\"\n", what, needle);
            ok = 0;
        }
    va_end(ap);
    size_t shared = longest_shared(spec, msg);
    if (shared > 42) {
        fprintf(stderr, "  %s: the message quotes %zu bytes of the spec in a row\n", what, shared);
        ok = 0;
    }
    for (int i = 0; i < n_layers; i++) after[i] = is_unet_cross_attn_scale(u, i);
    if (memcmp(before, after, sizeof(float) * (size_t)n_layers)) ok = 0;
    if (ok) printf("  ok (expected error) %s: %s\n", what, msg);
    th_check(ok, "%s: refused: %s", what, err ? msg : "(accepted)");
    is_error_free(err);
}

/* A run of n copies of ch between prefix and suffix (free it). */
static char *long_spec(const char *prefix, char ch, size_t n, const char *suffix) {
    size_t a = strlen(prefix), b = strlen(suffix);
    char *s = malloc(a + n + b + 1);
    memcpy(s, prefix, a);
    memset(s + a, ch, n);
    memcpy(s + a + n, suffix, b + 1);
    return s;
}

/* Dictionaries pasted from diffusers' docs: single quotes, trailing commas, tuples, ints, 1. and .5. */
static void test_python_dicts(const cJSON *cases) {
    float style[MAX_LAYERS], layout[MAX_LAYERS], mixed[MAX_LAYERS], hand[MAX_LAYERS];
    case_table(cases, "ip_style", style);
    case_table(cases, "ip_style_layout", layout);
    case_table(cases, "ip_mixed", mixed);
    expect_same("{'up': {'block_0': [0.0, 1.0, 0.0,]},}", 1.0f, style, "Python: quotes, trailing commas");
    expect_same("{'down': {'block_2': (0.0, 1.0)}, 'up': {'block_0': (0, 1, 0)}}", 1.0f, layout,
                "Python: tuples and ints");
    expect_same("{\n    'down': {'block_2': [0.0, 1.0]},\n    'up': {'block_0': [0.0, 1.0, 0.0]},\n}\n", 1.0f, layout,
                "Python: pretty-printed");
    expect_same("{'down': {'block_1': (.3, 0), 'block_2': [1., 5e-1]}, 'mid': 7E-1, \"up\": {'block_0': [0, 1, 0.2], "
                "\"block_1\": [4e-1, 0., .9,],},}", 1.0f, mixed, "Python: 1. .5 exponents, mixed quotes");

    /* hand-computed: a tuple per attention, (x) is x, +1.5e-1 for both modules of down_blocks.1 */
    static const char *const mods[] = {"up_blocks.1.attentions.0", "up_blocks.1.attentions.1",
                                       "up_blocks.1.attentions.2", "mid_block.attentions.0",
                                       "down_blocks.1.attentions.0", "down_blocks.1.attentions.1"};
    static const float vals[] = {0.25f, 2.5f, 10.0f, 0.125f, 0.15f, 0.15f};
    layers_of(mods, vals, 6, hand);
    expect_same("{'up': {'block_1': (0.25, 2.5e0, 10)}, 'mid': (0.125), 'down': {'block_1': +1.5e-1}}", 1.0f, hand,
                "Python: hand-computed values");
    expect_same("{ 'up' : { 'block_1' : [ 0.25 , 25E-1 , 1e1 , ] , } , 'mid' : [ 125e-3 ] ,\n"
                "\t'down' : { 'block_1' : 0.15 } }",
                1.0f, hand, "Python: spaces everywhere");
}

/* Dictionary syntax errors: offset, what was expected, a short excerpt of what was found. */
static void test_dict_errors(void) {
    expect_refused("dict: word for a value", "{'up': {'block_0': abc}}", "at offset 19:",
                   "up.block_0 must be a number or a list of numbers, found 'abc}}'", NULL);
    expect_refused("dict: True is no block value", "{'up': {'block_0': True}}", "at offset 19:", "found 'True}}'",
                   NULL);
    expect_refused("dict: JSON true", "{\"mid\": true}", "at offset 8:", "must be a number", NULL);
    expect_refused("dict: missing comma", "{'up': {'block_0': [0.0, 1.0 0.0]}}", "at offset 29:", "expected ',' or ']'",
                   "found '0.0]}}'", NULL);
    expect_refused("dict: missing comma in a tuple", "{'down': (0.5 1)}", "at offset 14:", "expected ',' or ')'", NULL);
    expect_refused("dict: missing colon", "{'up' 1}", "at offset 6:", "expected ':' after the key", "found '1}'", NULL);
    expect_refused("dict: cut short", "{'up': 1", "at offset 8:", "expected ',' or '}', found the end of the spec",
                   NULL);
    expect_refused("dict: bare key", "{up: 1}", "at offset 1:", "expected a quoted key", NULL);
    expect_refused("dict: text after it", "{'up': 1} extra", "at offset 10:",
                   "expected the end of the spec after the dictionary, found 'extra'", NULL);
    expect_refused("dict: string never closed", "{'up: 1}", "at offset 1:", "never closed", NULL);
    expect_refused("dict: key twice", "{'up': 1, 'up': 0}", "at offset 10:", "\"up\" is given twice", NULL);
    expect_refused("dict: block twice", "{'up': {'block_0': 1, 'block_0': 0}}", "at offset 22:",
                   "\"block_0\" is given twice", NULL);
    expect_refused("dict: nested list", "{'up': [[1]]}", "at offset 8:", "must be a list of numbers, found '[1]]}'",
                   NULL);
    expect_refused("dict: empty tuple", "{'up': ()}", "at offset 7:", "\"up\" is an empty list", NULL);
    expect_refused("dict: unknown block", "{'up': {'block_7': 1}}", "at offset 8:", "unknown block \"block_7\"",
                   "block_0 (3 attentions)", NULL);
    expect_refused("dict: unknown key", "{'up': 1, 'middle': 1}", "at offset 10:", "unknown key \"middle\"", NULL);
}

/* Values outside [0, 10], NaN and infinities are refused in every form, naming the value and offset. */
static void test_value_range(void) {
    const char *range = "out of range: a block value must be a finite number with 0 <= v <= 10";
    expect_refused("number: 1e308", "1e308", "at offset 0:", "value 1e308 is", range, NULL);
    expect_refused("number: negative", "  -0.5", "at offset 2:", "value -0.5 is", range, NULL);
    expect_refused("number: NaN", "nan", "at offset 0:", "value nan is", range, NULL);
    expect_refused("number: inf", "inf", "value inf is", range, NULL);
    expect_refused("number: -Infinity", "-Infinity", "value -Infinity is", range, NULL);
    expect_refused("number: just over 10", "10.000001", "value 10.000001 is", range, NULL);
    expect_refused("number: overflows double", "1e999", "value 1e999 is", range, NULL);
    expect_refused("dict: 1e308", "{\"up\": {\"block_0\": [0.0, 1e308, 0.0]}}", "at offset 25:", "value 1e308 is",
                   range, NULL);
    expect_refused("dict: NaN", "{'mid': NaN}", "at offset 8:", "value NaN is", range, NULL);
    expect_refused("dict: negative", "{'down': -0.5}", "at offset 9:", "value -0.5 is", range, NULL);
    expect_refused("ComfyUI: negative", "6:-0.5", "at offset 2:", "value -0.5 is", range, NULL);
    expect_refused("ComfyUI: inf", "3:1,6:inf", "at offset 6:", "value inf is", range, NULL);
    expect_refused("ComfyUI: 11", "6:11", "at offset 2:", "value 11 is", range, NULL);
    expect_refused("short: negative", "up.block_0=0,-1,0", "at offset 13:", "value -1 is", range, NULL);
    expect_refused("short: 1e308", "mid=1e308", "at offset 4:", "value 1e308 is", range, NULL);
    expect_refused("short: module NaN", "up_blocks.0.attentions.1=nan", "at offset 25:", "value nan is", range, NULL);

    /* the bounds themselves are values */
    float ten[MAX_LAYERS], zero[MAX_LAYERS], style10[MAX_LAYERS], got[MAX_LAYERS];
    static const char *const style_mod[] = {"up_blocks.0.attentions.1"}, *const mid_mod[] = {"mid_block.attentions.0"};
    static const float v10[] = {10.0f};
    for (int i = 0; i < n_layers; i++) ten[i] = 10.0f, zero[i] = 0.0f;
    layers_of(style_mod, v10, 1, style10);
    expect_same("10", 1.0f, ten, "range: 10 is allowed");
    expect_same("1e1", 1.0f, ten, "range: 1e1 is allowed");
    expect_same("6:10", 1.0f, style10, "range: ComfyUI 10");
    expect_same("up.block_0=0,10,0", 1.0f, style10, "range: short form 10");
    expect_same("{'up': {'block_0': [0, 10., 0]}}", 1.0f, style10, "range: dict 10");
    expect_same("0", 1.0f, zero, "range: 0 is allowed");
    layers_of(mid_mod, v10, 1, got);
    expect_same("{'mid': 10}", 1.0f, got, "range: mid 10");
    int positive = scales_of("-0", 1.0f, got);
    for (int i = 0; positive && i < n_layers; i++) positive = got[i] == 0.0f && !signbit(got[i]);
    th_check(positive, "range: -0 is 0, not negative zero");
}

/* Longest run of ch in s. */
static size_t longest_run(const char *s, char ch) {
    size_t best = 0, run = 0;
    for (; *s; s++) {
        run = *s == ch ? run + 1 : 0;
        if (run > best) best = run;
    }
    return best;
}

/* Errors quote at most 40 bytes of a long spec (with "..."), whichever path refuses it. */
static void test_bounded_errors(void) {
    struct {
        const char *what, *prefix, *suffix, *needle;
        char fill;
    } t[] = {
        {"not understood", "zz", "", "not understood", 'x'},
        {"short: no '='", "up.block_0", "", "not KEY=VALUES", 'x'},
        {"short: bad value", "up.block_0=", "", "must be a number or comma-separated numbers", 'x'},
        {"short: unknown key", "up.", "=1", "unknown key", 'x'},
        {"ComfyUI: bad entry", "6:1,", ":1", "not INDEX:WEIGHT", 'x'},
        {"ComfyUI: long weight", "6:", "", "out of range", '1'},
        {"number: long", "1", "", "out of range", '0'},
        {"JSON: unknown key", "{\"", "\": 1}", "unknown key", 'x'},
        {"dict: unknown key", "{'", "': 1}", "unknown key", 'x'},
        {"dict: unknown block", "{'up': {'", "': 1}}", "unknown block", 'x'},
        {"dict: bad key", "{'up': 1, ", "", "expected a quoted key", 'x'},
        {"dict: string never closed", "{'up': {'block_0': 1}, '", "", "never closed", 'x'},
        {"dict: long value", "{'mid':", "}", "out of range", '9'},
    };
    for (size_t k = 0; k < sizeof t / sizeof t[0]; k++) {
        char *spec = long_spec(t[k].prefix, t[k].fill, 300, t[k].suffix);
        char what[96];
        snprintf(what, sizeof what, "long spec, %s", t[k].what);
        expect_refused(what, spec, t[k].needle, NULL);
        is_error *err = is_unet_set_ip_scale(u, spec, 1.0f);
        const char *msg = err ? is_error_message(err) : "";
        size_t run = longest_run(msg, t[k].fill);
        th_check(err && run <= 40 && (run == 0 || strstr(msg, "...")), "%s: %zu bytes of the filler, cut with ...",
                 what, run);
        is_error_free(err);
        free(spec);
    }
    expect_refused("control bytes escaped", "stylish\nfoo", "\"stylish\\nfoo\" not understood", NULL);
    char *cut = long_spec("zz", 'x', 300, "");
    expect_refused("a cut quote ends in ...", cut, "\"zzxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx...\"", NULL);
    free(cut);
}

int main(void) {
    cJSON *root = th_load_cases("unet");
    const cJSON *cases = cJSON_GetObjectItemCaseSensitive(root, "cases");
    char *dir = th_golden_path("models/tiny-sdxl/unet");
    if (!th_ok(is_unet_load(dir, &u), "load tiny SDXL UNet")) return th_done();
    n_layers = is_unet_num_cross_attn(u);
    th_check(n_layers == 17 && n_layers <= MAX_LAYERS, "17 cross-attention layers");
    test_golden_tables(cases);
    test_equivalent_forms(cases);
    test_errors();
    test_python_dicts(cases);
    test_dict_errors();
    test_value_range();
    test_bounded_errors();
    is_unet_free(u);
    free(dir);
    cJSON_Delete(root);
    return th_done();
}
