/* CLIP tokenizer: every golden case for both SDXL tokenizers (ids, ids_77, num_truncated, exact), invalid
 * UTF-8, and load errors on crafted folders. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "core/fileio.h"
#include "harness.h"
#include "instantstyle.h"
#include "text/tokenizer.h"

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* The case's prompt as bytes: prompt_utf8_hex when present (it may hold NUL), else the JSON string. */
static char *case_prompt(const cJSON *c, size_t *len) {
    const cJSON *hex = cJSON_GetObjectItemCaseSensitive(c, "prompt_utf8_hex");
    if (cJSON_IsString(hex)) {
        size_t n = strlen(hex->valuestring) / 2;
        char *s = malloc(n + 1);
        for (size_t i = 0; i < n; i++) {
            unsigned v = 0;
            sscanf(hex->valuestring + 2 * i, "%2x", &v);
            s[i] = (char)v;
        }
        s[n] = 0;
        *len = n;
        return s;
    }
    const cJSON *p = cJSON_GetObjectItemCaseSensitive(c, "prompt");
    *len = strlen(p->valuestring);
    return strdup(p->valuestring);
}

static int ids_equal(const int32_t *got, size_t n, const cJSON *expected, const char *what, const char *name) {
    size_t m = (size_t)cJSON_GetArraySize(expected), i = 0;
    int ok = n == m;
    for (const cJSON *e = expected->child; ok && e; e = e->next, i++) ok = got[i] == (int32_t)e->valuedouble;
    if (!ok) {
        fprintf(stderr, "FAIL: %s %s: got %zu ids [", name, what, n);
        for (size_t k = 0; k < n; k++) fprintf(stderr, k ? " %d" : "%d", (int)got[k]);
        fprintf(stderr, "], expected %zu [", m);
        i = 0;
        for (const cJSON *e = expected->child; e; e = e->next, i++) fprintf(stderr, i ? " %d" : "%d", e->valueint);
        fprintf(stderr, "]\n");
    }
    return ok;
}

static int check_case(const is_tokenizer *tok, const char *tok_name, const cJSON *c) {
    const char *name = cJSON_GetObjectItemCaseSensitive(c, "name")->valuestring;
    const cJSON *exp = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(c, "expected"), tok_name);
    size_t len = 0;
    char *prompt = case_prompt(c, &len);
    char label[256];
    snprintf(label, sizeof label, "%s/%s", tok_name, name);

    int32_t *ids = NULL, ids77[IS_CLIP_MAX_LENGTH];
    size_t n = 0;
    int cut = -1, ok = 0;
    /* The public (NUL-terminated) entry points whenever the prompt has no NUL byte. */
    int has_nul = strlen(prompt) != len;
    is_error *err = has_nul ? is_tokenizer_encode_len(tok, prompt, len, &ids, &n) : is_tokenizer_encode(tok, prompt, &ids, &n);
    if (!err)
        err = has_nul ? is_tokenizer_fit(tok, ids, n, IS_CLIP_MAX_LENGTH, ids77, &cut)
                      : is_tokenizer_encode_padded(tok, prompt, IS_CLIP_MAX_LENGTH, ids77, &cut);
    if (err) {
        th_check(0, "%s: %s", label, is_error_message(err));
        is_error_free(err);
    } else {
        int a = ids_equal(ids, n, cJSON_GetObjectItemCaseSensitive(exp, "ids"), "ids", label);
        int b = ids_equal(ids77, IS_CLIP_MAX_LENGTH, cJSON_GetObjectItemCaseSensitive(exp, "ids_77"), "ids_77", label);
        int want_cut = cJSON_GetObjectItemCaseSensitive(exp, "num_truncated")->valueint;
        int d = cut == want_cut;
        if (!d) fprintf(stderr, "FAIL: %s num_truncated: got %d, expected %d\n", label, cut, want_cut);
        ok = a && b && d;
        th_check(ok, "%s", label);
    }
    free(ids);
    free(prompt);
    return ok;
}

static void test_golden(void) {
    cJSON *root = th_load_cases("tokenizer");
    const cJSON *cases = cJSON_GetObjectItemCaseSensitive(root, "cases");
    th_check(cJSON_GetObjectItemCaseSensitive(root, "max_length")->valueint == IS_CLIP_MAX_LENGTH, "max_length 77");
    const char *names[2] = {"tokenizer", "tokenizer_2"};
    const int32_t pads[2] = {49407, 0};
    for (int t = 0; t < 2; t++) {
        char rel[128];
        snprintf(rel, sizeof rel, "models/tiny-sdxl/%s", names[t]);
        char *dir = th_golden_path(rel);
        is_tokenizer *tok = NULL;
        double t0 = now_s();
        is_error *err = is_tokenizer_load(dir, &tok);
        double load_s = now_s() - t0;
        free(dir);
        if (!th_ok(err, names[t])) continue;
        printf("  %s loaded in %.3f s\n", names[t], load_s);
        th_check(load_s < 1.0, "%s: load took %.3f s (limit 1 s)", names[t], load_s);
        th_check(is_tokenizer_bos_id(tok) == 49406 && is_tokenizer_eos_id(tok) == 49407 &&
                     is_tokenizer_pad_id(tok) == pads[t],
                 "%s: bos/eos/pad ids %d/%d/%d", names[t], is_tokenizer_bos_id(tok), is_tokenizer_eos_id(tok),
                 is_tokenizer_pad_id(tok));
        int total = 0, passed = 0;
        t0 = now_s();
        for (const cJSON *c = cases->child; c; c = c->next, total++) passed += check_case(tok, names[t], c);
        printf("  %s: %d of %d golden cases match exactly (%.3f s)\n", names[t], passed, total, now_s() - t0);

        /* Invalid UTF-8 is an error, not a crash; so is a max_length without room for BOS and EOS. */
        const char *bad[] = {"\xff", "abc\x80", "\xc0\xaf", "\xed\xa0\x80", "caf\xc3", "\xf4\x90\x80\x80", "\xe2\x82"};
        for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
            int32_t *ids = NULL, ids77[IS_CLIP_MAX_LENGTH];
            size_t n = 0;
            th_fails(is_tokenizer_encode(tok, bad[i], &ids, &n), "UTF-8", "invalid UTF-8");
            th_check(ids == NULL, "no ids on failure");
            th_fails(is_tokenizer_encode_padded(tok, bad[i], IS_CLIP_MAX_LENGTH, ids77, NULL), "UTF-8",
                     "invalid UTF-8 (padded)");
        }
        int32_t two[2];
        th_fails(is_tokenizer_encode_padded(tok, "cat", 1, two, NULL), "max_length", "max_length 1");
        th_ok(is_tokenizer_encode_padded(tok, "cat", 2, two, NULL), "max_length 2");
        th_check(two[0] == 49406 && two[1] == 49407, "max_length 2 keeps BOS and EOS");
        is_tokenizer_free(tok);
    }
    cJSON_Delete(root);
}

/* ------------------------------------------------------------------ crafted folders */

/* An empty folder in the test scratch space (files of an earlier run removed). */
static char *craft_dir(const char *name) {
    char *dir = is_path_join(th_tmpdir(), name);
    mkdir(dir, 0755);
    const char *files[] = {"vocab.json", "merges.txt", "special_tokens_map.json", "tokenizer_config.json"};
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        char *path = is_path_join(dir, files[i]);
        remove(path);
        free(path);
    }
    return dir;
}

static void write_text(const char *dir, const char *file, const char *text) {
    char *path = is_path_join(dir, file);
    FILE *fp = fopen(path, "wb");
    fputs(text, fp);
    fclose(fp);
    free(path);
}

/* A tiny byte-level vocab: 256 byte symbols (ids 0..255), the same + "</w>" (256..511), the specials
 * (512, 513) and the merge results "ab" (514), "abc</w>" (515), plus `extra` if given (516). */
static void write_tiny_vocab(const char *dir, const char *extra) {
    cJSON *v = cJSON_CreateObject();
    for (unsigned b = 0; b < 256; b++) {
        char s[16];
        size_t len = is_utf8_put(is_bpe_byte_char(b), (unsigned char *)s);
        s[len] = 0;
        cJSON_AddNumberToObject(v, s, b);
        memcpy(s + len, "</w>", 5);
        cJSON_AddNumberToObject(v, s, 256 + b);
    }
    cJSON_AddNumberToObject(v, "<|startoftext|>", 512);
    cJSON_AddNumberToObject(v, "<|endoftext|>", 513);
    cJSON_AddNumberToObject(v, "ab", 514);
    cJSON_AddNumberToObject(v, "abc</w>", 515);
    if (extra) cJSON_AddNumberToObject(v, extra, 516);
    char *text = cJSON_PrintUnformatted(v);
    write_text(dir, "vocab.json", text);
    free(text);
    cJSON_Delete(v);
}

static const char *tiny_merges = "#version: 0.2\na b\nab c</w>\n";
static const char *tiny_special = "{\"bos_token\": \"<|startoftext|>\", \"eos_token\": {\"content\": \"<|endoftext|>\"}, "
                                  "\"pad_token\": \"!\", \"unk_token\": \"<|endoftext|>\"}";

static void expect_load_error(const char *dir, const char *needle, const char *what) {
    is_tokenizer *tok = NULL;
    th_fails(is_tokenizer_load(dir, &tok), needle, what);
    th_check(tok == NULL, "%s: no tokenizer on failure", what);
    is_tokenizer_free(tok);
}

static void test_crafted(void) {
    char *missing = is_path_join(th_tmpdir(), "tok_no_such_dir");
    expect_load_error(missing, "vocab.json", "missing folder");
    free(missing);

    char *dir = craft_dir("tok_crafted");
    write_text(dir, "vocab.json", "{\"a\": 1, \"b\": ");
    expect_load_error(dir, "vocab.json: invalid JSON", "truncated vocab.json");
    write_text(dir, "vocab.json", "[1, 2]");
    expect_load_error(dir, "vocab.json: expected a non-empty JSON object", "vocab.json not an object");
    write_text(dir, "vocab.json", "{\"a\": \"x\"}");
    expect_load_error(dir, "vocab.json: token \"a\" has no valid id", "string id");
    write_text(dir, "vocab.json", "{\"a\": 1.5}");
    expect_load_error(dir, "vocab.json: token \"a\" has no valid id", "fractional id");
    write_text(dir, "vocab.json", "{\"a\": 1, \"b\": 1}");
    expect_load_error(dir, "id 1 is given to more than one token", "duplicate id");
    write_text(dir, "vocab.json", "{\"a\": 1, \"b\": 2}");
    expect_load_error(dir, "vocab.json: the symbol of byte 0x00", "vocab without byte symbols");

    write_tiny_vocab(dir, NULL);
    expect_load_error(dir, "merges.txt: cannot open", "missing merges.txt");
    write_text(dir, "merges.txt", "a b\nab c</w>\n");
    expect_load_error(dir, "merges.txt: missing the \"#version", "merges.txt without header");
    write_text(dir, "merges.txt", "#version: 0.2\na b\nzz q\n");
    expect_load_error(dir, "merges.txt: line 3: token \"zz\" is not in vocab.json", "merge token not in vocab");
    write_text(dir, "merges.txt", "#version: 0.2\nb c\n");
    expect_load_error(dir, "merges.txt: line 2: token \"bc\" is not in vocab.json", "merge result not in vocab");
    write_text(dir, "merges.txt", "#version: 0.2\na b c\n");
    expect_load_error(dir, "merges.txt: line 2: expected two tokens", "merge line with three tokens");

    write_text(dir, "merges.txt", tiny_merges);
    expect_load_error(dir, "neither special_tokens_map.json nor tokenizer_config.json", "no special-token files");
    write_text(dir, "special_tokens_map.json", "{\"pad_token\": ");
    expect_load_error(dir, "special_tokens_map.json: invalid JSON", "corrupt special_tokens_map.json");
    write_text(dir, "special_tokens_map.json", "{\"pad_token\": \"<pad>\"}");
    expect_load_error(dir, "pad_token \"<pad>\" is not in vocab.json", "pad token not in vocab");
    write_text(dir, "special_tokens_map.json", "{\"eos_token\": {\"content\": \"<|endoftext|>\", \"rstrip\": true}}");
    expect_load_error(dir, "\"rstrip\": true is not supported", "rstrip special token");

    /* A working tiny tokenizer: merges by rank, "!" as pad token split out of the text. */
    write_text(dir, "special_tokens_map.json", tiny_special);
    is_tokenizer *tok = NULL;
    if (th_ok(is_tokenizer_load(dir, &tok), "tiny crafted tokenizer")) {
        int32_t *ids = NULL;
        size_t n = 0;
        /* "abc" -> ab + c</w> -> abc</w>; "Abd!" -> ab, d</w>, then the pad token "!" (id 33). */
        if (th_ok(is_tokenizer_encode(tok, "abc Abd!", &ids, &n), "tiny encode")) {
            int32_t want[] = {512, 515, 514, 256 + 'd', 33, 513};
            th_check(n == 6 && !memcmp(ids, want, sizeof want), "tiny encode ids (got %zu ids)", n);
        }
        free(ids);
        int32_t out[5];
        int cut = -1;
        th_ok(is_tokenizer_encode_padded(tok, "ab", 5, out, &cut), "tiny padded");
        int32_t want5[] = {512, 'a', 256 + 'b', 513, 33}; /* "ab" alone: a b</w> (no "a b</w>" merge) */
        th_check(!memcmp(out, want5, sizeof want5) && cut == 0, "tiny padded ids");
        is_tokenizer_free(tok);
    }
    free(dir);
}

int main(void) {
    test_golden();
    test_crafted();
    return th_done();
}
