/* CLIP tokenizer: every golden case for both SDXL tokenizers (ids, ids_77, num_truncated, exact), invalid
 * UTF-8, load errors on crafted folders; the O(n log n) BPE and the linear NFC against the old code on many
 * pseudo-random inputs, long words and worst-case prompts (their times printed; is_bench --only tokenizer
 * measures them), the prompt length limit. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <utf8proc.h>

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

/* ------------------------------------------------------------------ BPE: the heap against the old loop */

/* Times are printed, not asserted: speed is the benchmark's job (is_bench --only tokenizer), a test
 * checks the ids. */

/* The BPE loop as it was before the heap (up to commit d933a80), verbatim: one scan for the lowest-ranked
 * pair per round, then every non-overlapping occurrence of it merged left to right. */
static is_error *reference_bpe_word(const struct is_tokenizer *tok, const unsigned char *bytes, size_t len,
                                    is_i32vec *out) {
    if (len == 0) return NULL;
    int32_t *sym = malloc(len * sizeof *sym);
    if (!sym) return is_error_oom("tokenizer BPE");
    size_t n = len;
    for (size_t i = 0; i < len; i++) sym[i] = tok->byte_id[bytes[i]];
    sym[len - 1] = tok->byte_end_id[bytes[len - 1]];
    while (n >= 2) {
        /* The adjacent pair with the lowest merge rank... */
        int32_t best_rank = INT32_MAX, best_left = -1, best_right = -1, best_merged = -1;
        for (size_t i = 0; i + 1 < n; i++) {
            int32_t rank, merged;
            if (is_merge_find(&tok->merges, sym[i], sym[i + 1], &rank, &merged) == 0 && rank < best_rank) {
                best_rank = rank, best_left = sym[i], best_right = sym[i + 1], best_merged = merged;
            }
        }
        if (best_merged < 0) break;
        /* ...is merged at each of its non-overlapping occurrences, left to right. */
        size_t j = 0;
        for (size_t i = 0; i < n;) {
            if (i + 1 < n && sym[i] == best_left && sym[i + 1] == best_right) {
                sym[j++] = best_merged;
                i += 2;
            } else {
                sym[j++] = sym[i++];
            }
        }
        n = j;
    }
    is_error *err = NULL;
    for (size_t i = 0; i < n && !err; i++) err = is_i32vec_push(out, sym[i]);
    free(sym);
    return err;
}

/* x = 69069 x + 1 (mod 2^32), high half: the generator of every pseudo-random input below. */
static uint32_t lcg(uint32_t *x) {
    *x = 69069u * *x + 1u;
    return *x >> 16;
}

/* n letters 'a' + (x >> 16) % 26 from x = 1: the sequence of the awk one-liner that wrote
 * tests/regressions/tokenizer/long_word_65536.txt (see test_regression_file). */
static unsigned char *lcg_letters(size_t n) {
    unsigned char *w = malloc(n + 1);
    uint32_t x = 1;
    for (size_t i = 0; i < n; i++) w[i] = (unsigned char)('a' + lcg(&x) % 26);
    w[n] = 0;
    return w;
}

static uint64_t fnv_ids(const int32_t *v, size_t n) {
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < n; i++) h = (h ^ (uint32_t)v[i]) * 1099511628211ull;
    return h;
}

/* One pre-token through the heap and through the reference; 1 when the ids are equal. */
static int same_bpe(const is_tokenizer *tok, const unsigned char *w, size_t n, const char *what) {
    is_i32vec got = {0}, want = {0};
    is_error *e1 = is_bpe_encode_word(tok, w, n, &got), *e2 = reference_bpe_word(tok, w, n, &want);
    int ok = !e1 && !e2 && got.n == want.n && (!got.n || !memcmp(got.v, want.v, got.n * sizeof *got.v));
    if (!ok) {
        fprintf(stderr, "FAIL: %s: BPE of \"%.*s\"%s: %zu ids, the reference %zu\n", what, n > 60 ? 60 : (int)n,
                (const char *)w, n > 60 ? "..." : "", got.n, want.n);
    }
    is_error_free(e1);
    is_error_free(e2);
    is_i32vec_free(&got);
    is_i32vec_free(&want);
    return ok;
}

/* A word of n random pieces of alphabet (UTF-8 strings, NULL-terminated list) into buf (>= 4 n bytes). */
static size_t random_word(const char *const *alphabet, size_t n, uint32_t *x, unsigned char *buf) {
    size_t n_alpha = 0, len = 0;
    while (alphabet[n_alpha]) n_alpha++;
    for (size_t i = 0; i < n; i++) {
        const char *piece = alphabet[lcg(x) % n_alpha];
        size_t k = strlen(piece);
        memcpy(buf + len, piece, k);
        len += k;
    }
    return len;
}

/* Many pseudo-random words over small alphabets (few symbols, so many merges and long merge chains) with the
 * real CLIP merges (48894 of them): short words, and a few long ones per alphabet. */
static void test_bpe_equivalence_clip(const is_tokenizer *tok) {
    static const char *const alphabets[][8] = {
        {"a", "b", NULL},
        {"a", "b", "c", NULL},
        {"e", "r", "s", "t", NULL},
        {"th", "e", "in", "er", "an", "o", NULL},
        {"a", "n", "na", "ba", NULL},
        {"\xc3\xa9", "\xc3\xbc", "\xe6\x97\xa5", "\xe6\x9c\xac", "a", NULL}, /* é ü 日 本 a */
        {"!", ".", ",", "-", "_", "~", NULL},
        {"\xf0\x9f\x99\x82", "\xe2\x9d\xa4", "a", NULL}, /* emoji, heart, a */
    };
    static const char *const letters[] = {"a", "b", "c", "d", "e", "f", "g", "h", "i", "j", "k", "l", "m", "n",
                                          "o", "p", "q", "r", "s", "t", "u", "v", "w", "x", "y", "z", NULL};
    unsigned char *buf = malloc(4 * 4096);
    uint32_t x = 12345;
    int words = 0, same = 0;
    double t0 = now_s();
    for (size_t a = 0; a <= sizeof alphabets / sizeof alphabets[0]; a++) {
        const char *const *alpha = a < sizeof alphabets / sizeof alphabets[0] ? alphabets[a] : letters;
        for (int i = 0; i < 300; i++, words++) {
            size_t len = random_word(alpha, 1 + lcg(&x) % 300, &x, buf);
            same += same_bpe(tok, buf, len, "CLIP merges");
        }
        for (int i = 0; i < 2; i++, words++) same += same_bpe(tok, buf, random_word(alpha, 4096, &x, buf), "CLIP");
    }
    unsigned char *w = lcg_letters(8192);
    same += same_bpe(tok, w, 8192, "8192 letters"), words++;
    free(w);
    printf("  BPE heap = reference on %d of %d pseudo-random words (%.2f s)\n", same, words, now_s() - t0);
    th_check(same == words, "BPE heap = reference on %d of %d words (CLIP merges)", same, words);
    free(buf);
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

/* ------------------------------------------------------------------ BPE with crafted merges */

/* Every string of 2..5 letters over {a, b, c} as a token, with and without "</w>" (ids from 514 on), on top
 * of the byte symbols and the specials of write_tiny_vocab. */
static void write_abc_vocab(const char *dir) {
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
    int id = 514;
    for (int len = 2; len <= 5; len++) {
        int count = 1;
        for (int i = 0; i < len; i++) count *= 3;
        for (int k = 0; k < count; k++) {
            char s[16];
            for (int i = 0, r = k; i < len; i++, r /= 3) s[i] = (char)('a' + r % 3);
            s[len] = 0;
            cJSON_AddNumberToObject(v, s, id++);
            memcpy(s + len, "</w>", 5);
            cJSON_AddNumberToObject(v, s, id++);
        }
    }
    char *text = cJSON_PrintUnformatted(v);
    write_text(dir, "vocab.json", text);
    free(text);
    cJSON_Delete(v);
}

static void random_abc(uint32_t *x, size_t len, char *s) {
    for (size_t i = 0; i < len; i++) s[i] = (char)('a' + lcg(x) % 3);
    s[len] = 0;
}

/* n_lines random merges "u v" / "u v</w>" with |u| + |v| <= 5, in random order: a pair can rank below the
 * pairs that make its parts (BPE training never writes that, a merges file may), and about one line in ten
 * repeats an earlier one (the later rank wins). */
static char *random_merges(uint32_t *x, int n_lines) {
    char *text = malloc(16 + (size_t)n_lines * 16), *p = text;
    p += sprintf(p, "#version: 0.2\n");
    char *lines = p;
    for (int i = 0; i < n_lines; i++) {
        if (i > 0 && lcg(x) % 10 == 0) { /* repeat an earlier line */
            const char *q = lines;
            for (int k = (int)(lcg(x) % (uint32_t)i); k > 0; k--) q = strchr(q, '\n') + 1;
            size_t len = (size_t)(strchr(q, '\n') - q) + 1;
            memmove(p, q, len);
            p += len;
            continue;
        }
        char u[8], v[8];
        size_t lu = 1 + lcg(x) % 4, lv = 1 + lcg(x) % (5 - lu);
        random_abc(x, lu, u);
        random_abc(x, lv, v);
        p += sprintf(p, "%s %s%s\n", u, v, lcg(x) % 2 ? "</w>" : "");
    }
    *p = 0;
    return text;
}

static is_tokenizer *load_crafted(const char *dir, const char *merges) {
    write_text(dir, "merges.txt", merges);
    is_tokenizer *tok = NULL;
    return th_ok(is_tokenizer_load(dir, &tok), "crafted abc tokenizer") ? tok : NULL;
}

/* "aaaaa" with merges "aa a" (rank 0) and "a a" (rank 1): Python's round merges both "a a" first
 * (aa aa a</w>), and no rank-0 pair is left; merging the new pair (aa, a) at once would give aaa aa a</w>. */
static void test_bpe_round_order(const char *dir) {
    is_tokenizer *tok = load_crafted(dir, "#version: 0.2\naa a\na a\n");
    if (!tok) return;
    is_i32vec got = {0};
    th_ok(is_bpe_encode_word(tok, (const unsigned char *)"aaaaa", 5, &got), "BPE aaaaa");
    int32_t aa = is_vocab_find(&tok->vocab, "aa", 2), a_end = tok->byte_end_id['a'];
    th_check(got.n == 3 && got.v[0] == aa && got.v[1] == aa && got.v[2] == a_end,
             "BPE rounds: aaaaa -> aa aa a</w> (got %zu ids)", got.n);
    is_i32vec_free(&got);
    is_tokenizer_free(tok);
}

/* Random merges files, each against many random words over {a, b, c}. */
static void test_bpe_equivalence_crafted(void) {
    char *dir = craft_dir("tok_abc");
    write_abc_vocab(dir);
    write_text(dir, "special_tokens_map.json", tiny_special);
    test_bpe_round_order(dir);
    uint32_t x = 777;
    int words = 0, same = 0;
    char w[2048];
    for (int file = 0; file < 16; file++) {
        char *merges = random_merges(&x, 40 + (int)(lcg(&x) % 200));
        is_tokenizer *tok = load_crafted(dir, merges);
        free(merges);
        if (!tok) break;
        for (int i = 0; i < 250; i++, words++) {
            size_t len = 1 + lcg(&x) % (i < 240 ? 64 : sizeof w - 1);
            random_abc(&x, len, w);
            same += same_bpe(tok, (const unsigned char *)w, len, "crafted merges");
        }
        is_tokenizer_free(tok);
    }
    printf("  BPE heap = reference on %d of %d words with 16 random merges files\n", same, words);
    th_check(same == words && words == 16 * 250, "BPE heap = reference on %d of %d words (crafted merges)", same,
             words);
    free(dir);
}

/* ------------------------------------------------------------------ long words and long prompts */

/* Ids of lcg_letters(n) as one pre-token, computed once with reference_bpe_word (the old loop took 0.37 s,
 * 2.9 s, 16 s and 114 s for these on the development machine): count and FNV-1a of the id sequence. */
static const struct {
    size_t letters, n_ids;
    uint64_t fnv;
} long_word_ids[] = {
    {16384, 9116, 0xfc4159422ac3c2ceull},
    {65536, 36298, 0xfae03b1b80cacd30ull},
    {262144, 145209, 0x51c24316e9e3cde5ull},
    {1048576, 580564, 0xa72385eac787da29ull},
};

static void test_long_words(const is_tokenizer *tok) {
    for (size_t k = 0; k < sizeof long_word_ids / sizeof long_word_ids[0]; k++) {
        size_t n = long_word_ids[k].letters;
        unsigned char *w = lcg_letters(n);
        is_i32vec ids = {0};
        double t0 = now_s();
        is_error *err = is_bpe_encode_word(tok, w, n, &ids);
        double t = now_s() - t0;
        printf("  BPE of one %zu-letter word: %.3f s, %zu ids\n", n, t, ids.n);
        if (th_ok(err, "long word"))
            th_check(ids.n == long_word_ids[k].n_ids && fnv_ids(ids.v, ids.n) == long_word_ids[k].fnv,
                     "%zu letters: the old loop's ids (got %zu ids)", n, ids.n);
        is_i32vec_free(&ids);
        free(w);
    }
}

/* The committed regression input equals lcg_letters(65536); the whole public path takes it (exactly at the
 * prompt limit) fast and gives BOS, the old loop's ids, EOS. */
static void test_regression_file(const is_tokenizer *tok) {
    /* The source tree from this file's path (CMake compiles with absolute paths). */
    char path[4096];
    snprintf(path, sizeof path, "%s", __FILE__);
    char *slash = strrchr(path, '/');
    snprintf(slash ? slash + 1 : path, sizeof path - (size_t)(slash ? slash + 1 - path : 0), "%s",
             "regressions/tokenizer/long_word_65536.txt");
    char *text = NULL;
    size_t len = 0;
    if (!th_ok(is_read_file(path, 1 << 20, &text, &len), "regression file")) return;
    unsigned char *want = lcg_letters(65536);
    th_check(len == 65536 && !memcmp(text, want, len), "%s: 65,536 letters of the LCG sequence", path);
    int32_t *ids = NULL;
    size_t n = 0;
    double t0 = now_s();
    is_error *err = is_tokenizer_encode(tok, text, &ids, &n);
    double t = now_s() - t0;
    printf("  is_tokenizer_encode of long_word_65536.txt: %.3f s, %zu ids\n", t, n);
    if (th_ok(err, "encode long_word_65536.txt"))
        th_check(n == 36298 + 2 && ids[0] == 49406 && ids[n - 1] == 49407 &&
                     fnv_ids(ids + 1, n - 2) == long_word_ids[1].fnv,
                 "long_word_65536.txt: BOS, the old loop's ids, EOS");
    free(ids);
    free(want);
    free(text);
}

/* prefix, then as many whole copies of unit as fit in `bytes` in all, NUL-terminated. */
static char *repeat_prompt(const char *prefix, const char *unit, size_t bytes) {
    size_t p = strlen(prefix), k = strlen(unit), n = p + (bytes - p) / k * k;
    char *s = malloc(n + 1);
    memcpy(s, prefix, p);
    for (size_t i = p; i < n; i += k) memcpy(s + i, unit, k);
    s[n] = 0;
    return s;
}

/* Prompts at the limit built to hit each stage's worst case: letters (BPE), alternating combining marks
 * (canonical ordering: utf8proc's own sort took 3 s here), punctuation and emoji runs (BPE of other
 * pre-tokens), CJK (spaces inserted), digits, sigma context, added tokens, special-token text. */
static void test_worst_case_prompts(const is_tokenizer *tok, const is_tokenizer *tok2) {
    static const struct {
        const char *what, *prefix, *unit;
        int tokenizer_2;
    } cases[] = {
        {"alternating marks", "a", "\xcc\x81\xcc\xa3", 0}, /* U+0301 (class 230), U+0323 (class 220) */
        {"punctuation", "", ".,;:-~", 0},
        {"emoji", "", "\xf0\x9f\x99\x82", 0},
        {"CJK", "", "\xe6\x97\xa5", 0},
        {"digits", "", "0123456789", 0},
        {"sigma", "", "\xce\xa3'\xce\xa3\xce\xb1", 0},
        {"bangs", "", "!", 1},
        {"special tokens", "", "<|endoftext|>", 0},
        {"spaced words", "", "cat ", 0},
        {"mixed", "", "A\xcc\x8a\xe1\x84\x80\xe1\x85\xa1\xe1\x86\xa8!x ", 1}, /* A + ring, L V T jamo, ! */
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        char *prompt = repeat_prompt(cases[c].prefix, cases[c].unit, IS_TOKENIZER_MAX_TEXT_BYTES);
        int32_t *ids = NULL;
        size_t n = 0;
        double t0 = now_s();
        is_error *err = is_tokenizer_encode(cases[c].tokenizer_2 ? tok2 : tok, prompt, &ids, &n);
        double t = now_s() - t0;
        printf("  64 KiB of %s: %.3f s, %zu ids\n", cases[c].what, t, n);
        th_ok(err, cases[c].what);
        free(ids);
        free(prompt);
    }
}

/* ------------------------------------------------------------------ the prompt limit */

/* 64 KiB + 1 is refused by every entry point, with a short message that quotes at most 40 bytes. */
static void expect_too_long(const is_tokenizer *tok, const char *prompt, const char *quoted, const char *what) {
    int32_t *ids = NULL, ids77[IS_CLIP_MAX_LENGTH];
    size_t n = 0;
    is_error *err = is_tokenizer_encode(tok, prompt, &ids, &n);
    const char *msg = is_error_message(err);
    int printable = 1;
    for (const char *p = msg; *p; p++) printable &= (unsigned char)*p >= 0x20 && *p != 0x7F;
    th_check(err && is_error_code(err) == IS_E_ARGUMENT && ids == NULL && strstr(msg, "over the limit of 65536") &&
                 strstr(msg, quoted) && strlen(msg) < 300 && printable,
             "%s: refused with a short quote (%s)", what, msg);
    is_error_free(err);
    th_fails(is_tokenizer_encode_padded(tok, prompt, IS_CLIP_MAX_LENGTH, ids77, NULL), "over the limit",
             "padded, too long");
    th_fails(is_tokenizer_encode_len(tok, prompt, strlen(prompt), &ids, &n), "over the limit", "encode_len, too long");
}

static void test_prompt_limit(const is_tokenizer *tok) {
    size_t max = IS_TOKENIZER_MAX_TEXT_BYTES;
    char *s = malloc(max + 2);
    memset(s, 'a', max + 1);
    s[max + 1] = 0;
    /* 40 letters then "...": not 41 */
    expect_too_long(tok, s, "\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa...\"", "65537 letters");
    /* Controls and quotes escaped; "é" at bytes 39-40 is left out whole, not cut in half. */
    memcpy(s, "\x1b[31m\"\n", 7);
    memcpy(s + 39, "\xc3\xa9", 2);
    char want[128];
    snprintf(want, sizeof want, "\"\\x1b[31m\\x22\\x0a%.*s...\"", 32, s + 7); /* bytes 7..38: 32 letters */
    expect_too_long(tok, s, want, "escapes");
    /* Invalid UTF-8 in the quoted part is escaped too (the full check comes after the length check). */
    s[1] = (char)0xFF;
    expect_too_long(tok, s, "\"\\x1b\\xff31m", "invalid UTF-8");
    /* Exactly at the limit: accepted, and all its ids come back. */
    memset(s, 'a', max);
    s[max] = 0;
    int32_t *ids = NULL;
    size_t n = 0;
    th_ok(is_tokenizer_encode(tok, s, &ids, &n), "exactly 64 KiB");
    th_check(n > 2 + 1000, "64 KiB of 'a': %zu ids", n);
    free(ids);
    free(s);
}

/* ------------------------------------------------------------------ NFC */

/* The NFC step as it was up to commit d933a80 (utf8proc_map, whose canonical ordering is an exchange sort). */
static is_error *reference_nfc(const int32_t *cps, size_t n, is_i32vec *out) {
    unsigned char *utf8 = malloc(n * 4 + 1);
    size_t len = 0;
    for (size_t i = 0; i < n; i++) len += is_utf8_put(cps[i], utf8 + len);
    utf8proc_uint8_t *composed = NULL;
    utf8proc_ssize_t m = utf8proc_map(utf8, (utf8proc_ssize_t)len, &composed, UTF8PROC_STABLE | UTF8PROC_COMPOSE);
    free(utf8);
    if (m < 0) return is_errorf(IS_E_INTERNAL, "utf8proc_map: %s", utf8proc_errmsg(m));
    is_error *err = is_utf8_decode((const char *)composed, (size_t)m, out);
    free(composed);
    return err;
}

static int same_nfc(const int32_t *cps, size_t n) {
    is_i32vec got = {0}, want = {0};
    is_error *e1 = is_tok_nfc(cps, n, &got), *e2 = reference_nfc(cps, n, &want);
    int ok = !e1 && !e2 && got.n == want.n && (!got.n || !memcmp(got.v, want.v, got.n * sizeof *got.v));
    is_error_free(e1);
    is_error_free(e2);
    is_i32vec_free(&got);
    is_i32vec_free(&want);
    return ok;
}

/* Random sequences of starters, marks of many combining classes, precomposed and singleton characters,
 * composition exclusions, Hangul syllables and jamo, and any scalar value, against utf8proc_map. */
static void test_nfc_equivalence(void) {
    static const int32_t pool[] = {
        'a', 'e', 'o', 'A', 'u', 0x3B1, 0x391, 0x3C9, 0x1100, 0x1161, 0x11A8, 0xAC00, 0xAC01, 0x300, 0x301,
        0x308, 0x323, 0x327, 0x328, 0x345, 0x344, 0x340, 0x343, 0xF73, 0xF71, 0xF72, 0x5B0, 0x591, 0x5C2,
        0x1DCE, 0x20D2, 0x20E3, 0x93C, 0x94D, 0x958, 0x915, 0x212B, 0x2126, 0x1F85, 0xE9, 0x1D6, 0xFB2C,
        0x1E9B, 0xCCB, 0xCC6, 0xCD5, 0xDDD, 0x309A, 0x304B, 0x3099, 0x1B05, 0x1B35, 0x115B9, 0x115AF, 0x1D15E,
        0x1D165, 0x1D16E, 0x2ADC, 0x338, 0x3D2, 0x301, 0x1E0A, 0x307, 0x1E63};
    uint32_t x = 4242;
    int32_t seq[256];
    int runs = 0, same = 0;
    for (int i = 0; i < 4000; i++, runs++) {
        size_t n = lcg(&x) % 64;
        for (size_t k = 0; k < n; k++) {
            if (lcg(&x) % 8) {
                seq[k] = pool[lcg(&x) % (sizeof pool / sizeof pool[0])];
            } else { /* any scalar value, mostly from the BMP */
                int32_t c = (int32_t)(lcg(&x) % (lcg(&x) % 4 ? 0x10000 : 0x110000));
                seq[k] = c >= 0xD800 && c <= 0xDFFF ? 'z' : c;
            }
        }
        same += same_nfc(seq, n);
    }
    /* Long runs of marks: the sorts' long-run path. */
    int32_t *marks = malloc(6000 * sizeof *marks);
    for (size_t len = 17; len <= 6000; len = len * 3 + 1, runs++) {
        marks[0] = 'a';
        for (size_t k = 1; k < len; k++) marks[k] = pool[13 + lcg(&x) % 24];
        same += same_nfc(marks, len);
    }
    free(marks);
    printf("  NFC = utf8proc_map on %d of %d sequences\n", same, runs);
    th_check(same == runs, "NFC = utf8proc_map on %d of %d sequences", same, runs);
}

/* The checks that need both real SDXL tokenizers. */
static void test_long_inputs(void) {
    char *dir = th_golden_path("models/tiny-sdxl/tokenizer"), *dir2 = th_golden_path("models/tiny-sdxl/tokenizer_2");
    is_tokenizer *tok = NULL, *tok2 = NULL;
    if (th_ok(is_tokenizer_load(dir, &tok), "tokenizer") && th_ok(is_tokenizer_load(dir2, &tok2), "tokenizer_2")) {
        test_bpe_equivalence_clip(tok);
        test_long_words(tok);
        test_regression_file(tok);
        test_worst_case_prompts(tok, tok2);
        test_prompt_limit(tok);
    }
    is_tokenizer_free(tok);
    is_tokenizer_free(tok2);
    free(dir);
    free(dir2);
}

int main(void) {
    test_golden();
    test_crafted();
    test_bpe_equivalence_crafted();
    test_nfc_equivalence();
    test_long_inputs();
    return th_done();
}
