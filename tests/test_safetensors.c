/* safetensors reader: golden files open; each malformed-file class gives a clear error. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/fileio.h"
#include "core/config.h"
#include "core/safetensors.h"
#include "harness.h"

/* Write an 8-byte length + header + data bytes to a file in the test folder. */
static char *craft(const char *name, const char *header, long long declared_len, const void *data, size_t n) {
    char *path = is_path_join(th_tmpdir(), name);
    FILE *fp = fopen(path, "wb");
    unsigned long long len = declared_len >= 0 ? (unsigned long long)declared_len : strlen(header);
    unsigned char len8[8];
    for (int i = 0; i < 8; i++) len8[i] = (unsigned char)(len >> (8 * i));
    fwrite(len8, 1, 8, fp);
    fwrite(header, 1, strlen(header), fp);
    if (n) fwrite(data, 1, n, fp);
    fclose(fp);
    return path;
}

static void expect_bad(const char *name, const char *header, long long declared_len, size_t data_bytes,
                       const char *needle) {
    unsigned char zeros[64] = {0};
    char *path = craft(name, header, declared_len, zeros, data_bytes);
    is_st *st = NULL;
    is_error *e = is_st_open(path, &st);
    th_fails(e, needle, name);
    th_check(st == NULL, "%s: no handle on failure", name);
    free(path);
}

static void test_golden_unet(void) {
    char *path = th_golden_path("models/tiny-sdxl/unet/diffusion_pytorch_model.safetensors");
    is_st *st = NULL;
    if (!th_ok(is_st_open(path, &st), path)) {
        free(path);
        return;
    }
    const is_tensor *t = NULL;
    th_ok(is_st_getv(st, &t, "conv_in.weight", 4, (int64_t)32, (int64_t)4, (int64_t)3, (int64_t)3), "conv_in.weight");
    th_check(t && t->dtype == IS_DT_F16, "unet weights are F16");
    th_fails(is_st_getv(st, &t, "conv_in.weight", 4, (int64_t)64, (int64_t)4, (int64_t)3, (int64_t)3),
             "expected [64, 4, 3, 3]", "shape mismatch names the expected shape");
    th_fails(is_st_get(st, "no.such.tensor", 0, NULL, &t), "missing tensor 'no.such.tensor'", "missing tensor");
    free(path);
    is_st_close(st);
}

static void test_dtypes(void) {
    /* Hand-checked conversions: f16 0x3c00 = 1, 0xc000 = -2, 0x0001 = 2^-24; bf16 0x3f80 = 1. */
    th_check(is_f16_to_f32(0x3c00) == 1.0f, "f16 1.0");
    th_check(is_f16_to_f32(0xc000) == -2.0f, "f16 -2.0");
    th_check(is_f16_to_f32(0x0001) == 5.9604644775390625e-08f, "f16 smallest subnormal");
    th_check(is_f16_to_f32(0x7bff) == 65504.0f, "f16 max");
    th_check(is_bf16_to_f32(0x3f80) == 1.0f, "bf16 1.0");
    th_check(is_f32_to_f16(1.0f) == 0x3c00 && is_f32_to_f16(-2.0f) == 0xc000, "f32 -> f16");
    uint16_t h[10] = {0x3c00, 0x4000, 0x4200, 0x4400, 0x4500, 0x4600, 0x4700, 0x4800, 0x4880, 0xbc00};
    float f[10], want[10] = {1, 2, 3, 4, 5, 6, 7, 8, 9, -1};
    is_convert_to_f32(IS_DT_F16, h, 0, 10, f); /* vector path (8) + scalar tail */
    th_check(memcmp(f, want, sizeof f) == 0, "f16 run conversion");
}

static void test_roundtrip_and_shards(void) {
    is_st_writer *w = is_st_writer_new();
    float a[6] = {1, 2, 3, 4, 5, 6};
    uint16_t b[2] = {0x3c00, 0x4000};
    int64_t sa[2] = {2, 3}, sb[1] = {2};
    th_ok(is_st_writer_add_f32(w, "a", 2, sa, a), "add a");
    th_ok(is_st_writer_add(w, "b", IS_DT_F16, 1, sb, b), "add b");
    th_fails(is_st_writer_add_f32(w, "a", 2, sa, a), "duplicate", "writer refuses duplicate");
    th_ok(is_st_writer_set_metadata(w, "format", "pt"), "metadata");
    char *p1 = is_path_join(th_tmpdir(), "shard-1.safetensors");
    th_ok(is_st_writer_save(w, p1), "save shard 1");
    is_st_writer_free(w);
    w = is_st_writer_new();
    float c[1] = {7};
    int64_t sc[1] = {1};
    th_ok(is_st_writer_add_f32(w, "c", 1, sc, c), "add c");
    char *p2 = is_path_join(th_tmpdir(), "shard-2.safetensors");
    th_ok(is_st_writer_save(w, p2), "save shard 2");
    is_st_writer_free(w);

    is_st *st = NULL;
    if (th_ok(is_st_open(p1, &st), "reopen")) {
        const is_tensor *t = is_st_find(st, "a");
        th_check(t && t->ndim == 2 && t->shape[1] == 3 && ((const float *)t->data)[5] == 6.0f, "roundtrip a");
        t = is_st_find(st, "b");
        th_check(t && is_tensor_get_f32(t, 1) == 2.0f, "roundtrip b (F16)");
        const char *fmt = is_st_metadata(st, "format");
        th_check(fmt && !strcmp(fmt, "pt"), "metadata roundtrip");
        is_st_close(st);
    }
    char *idx = is_path_join(th_tmpdir(), "model.safetensors.index.json");
    const char *json = "{\"metadata\":{},\"weight_map\":{\"a\":\"shard-1.safetensors\",\"b\":\"shard-1.safetensors\","
                       "\"c\":\"shard-2.safetensors\"}}";
    FILE *fp = fopen(idx, "w");
    fputs(json, fp);
    fclose(fp);
    if (th_ok(is_st_open(idx, &st), "open sharded index")) {
        th_check(is_st_count(st) == 3, "sharded set has 3 tensors");
        const is_tensor *t = is_st_find(st, "c");
        th_check(t && ((const float *)t->data)[0] == 7.0f, "tensor from second shard");
        is_st_close(st);
    }
    /* The same tensor in two shards is a duplicate. */
    char *p3 = is_path_join(th_tmpdir(), "shard-3.safetensors");
    w = is_st_writer_new();
    th_ok(is_st_writer_add_f32(w, "a", 2, sa, a), "add a again");
    th_ok(is_st_writer_save(w, p3), "save shard 3");
    is_st_writer_free(w);
    fp = fopen(idx, "w");
    fputs("{\"weight_map\":{\"a\":\"shard-1.safetensors\",\"x\":\"shard-3.safetensors\"}}", fp);
    fclose(fp);
    th_fails(is_st_open(idx, &st), "duplicate tensor name 'a'", "duplicate across shards");
    fp = fopen(idx, "w");
    fputs("{\"weight_map\":{\"a\":\"missing-shard.safetensors\"}}", fp);
    fclose(fp);
    th_fails(is_st_open(idx, &st), "missing-shard.safetensors", "missing shard named");
    /* An index naming no tensor is an error, not an empty model (and no qsort of a NULL array). */
    fp = fopen(idx, "w");
    fputs("{\"metadata\":{},\"weight_map\":{}}", fp);
    fclose(fp);
    th_fails(is_st_open(idx, &st), "'weight_map' is empty", "empty weight_map");
    free(p1);
    free(p2);
    free(p3);
    free(idx);
}

/* Model folders: the plain name first, then the sharded index, then the .fp16 variants. */
static void test_open_in_dir(void) {
    char *dir = is_path_join(th_tmpdir(), "weights-dir");
    mkdir(dir, 0755);
    char *fp16 = is_path_join(dir, "model.fp16.safetensors");
    unlink(fp16);
    is_st *st = NULL;
    th_fails(is_st_open_in_dir(dir, "model", &st), "no weights found", "empty model folder");
    is_st_writer *w = is_st_writer_new();
    float one = 1.0f;
    int64_t shape[1] = {1};
    th_ok(is_st_writer_add_f32(w, "x", 1, shape, &one), "add x");
    th_ok(is_st_writer_save(w, fp16), "save fp16 variant");
    is_st_writer_free(w);
    if (th_ok(is_st_open_in_dir(dir, "model", &st), "open the .fp16 variant")) {
        th_check(!strcmp(is_st_path(st), fp16), "picked %s", is_st_path(st));
        is_st_close(st);
    }
    free(fp16);
    free(dir);
}

/* Numbers beyond int64 in config lists are refused before any conversion (UB otherwise). */
static void test_config_ranges(void) {
    char *path = is_path_join(th_tmpdir(), "range-config.json");
    const char *bodies[] = {"{\"block_out_channels\": [320, 1e99]}", "{\"block_out_channels\": [-1e300]}",
                            "{\"block_out_channels\": 1e99}"};
    for (size_t i = 0; i < sizeof bodies / sizeof bodies[0]; i++) {
        FILE *fp = fopen(path, "w");
        fputs(bodies[i], fp);
        fclose(fp);
        is_config cfg;
        int64_t out[4];
        int n = 0;
        if (th_ok(is_config_load(path, &cfg), path)) {
            th_fails(is_config_int_list(&cfg, "block_out_channels", out, 4, -1, 1, &n), "block_out_channels",
                     bodies[i]);
            is_config_free(&cfg);
        }
    }
    free(path);
}

/* Messages are bounded: a 100 KB tensor name (or any other hostile string) is cut with "..." on a UTF-8
 * character boundary, also through is_error_wrap. */
static void test_bounded_messages(void) {
    size_t n = 100000;
    char *big = malloc(n + 1);
    for (size_t i = 0; i < n; i += 2) memcpy(big + i, "\xc3\xa9", 2); /* U+00E9, 2 bytes each */
    big[n] = 0;
    is_error *e = is_error_wrap(is_errorf(IS_E_FORMAT, "x%s", big), "context");
    const char *m = is_error_message(e);
    size_t len = strlen(m);
    th_check(len < IS_ERROR_MAX_BYTES && len > IS_ERROR_MAX_BYTES - 8 && !strcmp(m + len - 3, "..."),
             "a 100 KB message is cut below %d bytes with '...' (%zu bytes)", IS_ERROR_MAX_BYTES, len);
    th_check(!strncmp(m, "context: x\xc3\xa9", 12) && ((unsigned char)m[len - 4] == 0xa9),
             "the cut falls on a UTF-8 character boundary");
    is_error_free(e);
    /* A tensor name as long as the header allows, with an unknown dtype: the error names it, bounded. */
    char *header = malloc(n + 100);
    char *name = malloc(n / 2 + 1);
    memset(name, 'w', n / 2);
    name[n / 2] = 0;
    snprintf(header, n + 100, "{\"%s\":{\"dtype\":\"F9\",\"shape\":[1],\"data_offsets\":[0,1]}}", name);
    unsigned char zero = 0;
    char *path = craft("long-name.safetensors", header, -1, &zero, 1);
    is_st *st = NULL;
    e = is_st_open(path, &st);
    th_check(e && strlen(is_error_message(e)) < IS_ERROR_MAX_BYTES, "a 50 KB tensor name gives a bounded error (%zu bytes)",
             e ? strlen(is_error_message(e)) : 0);
    is_error_free(e);
    is_st_close(st);
    free(path);
    free(name);
    free(header);
    free(big);
}

int main(void) {
    test_dtypes();
    test_open_in_dir();
    test_config_ranges();
    test_bounded_messages();
    test_golden_unet();
    test_roundtrip_and_shards();

    /* Malformed files, one per class. */
    is_st *st = NULL;
    char *missing = is_path_join(th_tmpdir(), "does-not-exist.safetensors");
    th_fails(is_st_open(missing, &st), "does-not-exist.safetensors", "missing file");
    free(missing);
    char *shortp = craft("short.safetensors", "", 0, NULL, 0);
    FILE *fp = fopen(shortp, "wb");
    fwrite("abc", 1, 3, fp);
    fclose(fp);
    th_fails(is_st_open(shortp, &st), "too short", "file shorter than 8 bytes");
    free(shortp);
    expect_bad("len-past-end.safetensors", "{}", 1000, 0, "runs past the end");
    expect_bad("len-absurd.safetensors", "{}", 1LL << 40, 0, "absurd");
    expect_bad("bad-json.safetensors", "{\"a\": [1, 2", -1, 0, "not valid JSON");
    expect_bad("not-object.safetensors", "[1,2,3]", -1, 0, "not a JSON object");
    expect_bad("unknown-dtype.safetensors", "{\"w\":{\"dtype\":\"F8\",\"shape\":[2],\"data_offsets\":[0,2]}}", -1, 2,
               "unknown dtype 'F8'");
    expect_bad("no-dtype.safetensors", "{\"w\":{\"shape\":[2],\"data_offsets\":[0,8]}}", -1, 8, "'dtype'");
    expect_bad("bad-shape.safetensors", "{\"w\":{\"dtype\":\"F32\",\"shape\":[-2],\"data_offsets\":[0,8]}}", -1, 8,
               "shape[0]");
    expect_bad("offsets-out-of-range.safetensors", "{\"w\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]}}",
               -1, 8, "out of range");
    expect_bad("offsets-reversed.safetensors", "{\"w\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[8,4]}}", -1,
               8, "out of range");
    expect_bad("size-mismatch.safetensors", "{\"w\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,8]}}", -1, 8,
               "needs 12");
    expect_bad("overlap.safetensors",
               "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
               "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}",
               -1, 12, "overlaps");
    expect_bad("gap.safetensors",
               "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
               "\"b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[8,12]}}",
               -1, 12, "unused bytes");
    expect_bad("trailing.safetensors", "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", -1, 12,
               "trailing");
    expect_bad("duplicate.safetensors",
               "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
               "\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}",
               -1, 8, "duplicate tensor name 'a'");
    expect_bad("overflow.safetensors",
               "{\"a\":{\"dtype\":\"F32\",\"shape\":[4294967296,4294967296,4294967296],\"data_offsets\":[0,4]}}", -1, 4,
               "overflow");
    return th_done();
}
