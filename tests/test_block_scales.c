/* IP-Adapter block targeting: every golden case's ip_scale_table reproduced from its diffusers spec;
 * presets, ComfyUI layer weights and the short form equal to the dictionary forms; errors for unknown
 * block names and wrong list lengths name the valid choices. */
#include <math.h>
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
    is_unet_free(u);
    free(dir);
    cJSON_Delete(root);
    return th_done();
}
