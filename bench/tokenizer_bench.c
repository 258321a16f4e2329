/* --only tokenizer: the CLIP tokenizer on long inputs, through the public is_tokenizer_encode. One word of
 * pseudo-random letters is BPE's worst case (its time grew with the square of the word's length before
 * the heap); 64 KiB (the prompt limit) of alternating combining marks is canonical ordering's. Needs a
 * real CLIP tokenizer folder (vocab.json + merges.txt): the random SDXL model's tokenizers are byte-level. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"

/* Letters a..z from a fixed LCG (the sequence of tests/regressions/tokenizer/long_word_65536.txt). */
static char *letters(size_t n) {
    char *w = malloc(n + 1);
    uint32_t x = 1;
    for (size_t i = 0; i < n && w; i++) {
        x = 69069u * x + 1u;
        w[i] = (char)('a' + (x >> 16) % 26);
    }
    if (w) w[n] = 0;
    return w;
}

static char *repeated(const char *prefix, const char *unit, size_t bytes) {
    size_t p = strlen(prefix), k = strlen(unit), n = p + (bytes - p) / k * k;
    char *s = malloc(n + 1);
    if (!s) return NULL;
    memcpy(s, prefix, p);
    for (size_t i = p; i < n; i += k) memcpy(s + i, unit, k);
    s[n] = 0;
    return s;
}

/* Best of 3 encodes of text; ids counted. */
static double best_encode(const is_tokenizer *tok, const char *text, size_t *n_ids, is_error **err) {
    double best = 1e30;
    for (int r = 0; r < 3 && !*err; r++) {
        int32_t *ids = NULL;
        double t0 = bench_now();
        *err = is_tokenizer_encode(tok, text, &ids, n_ids);
        double t = bench_now() - t0;
        free(ids);
        best = t < best ? t : best;
    }
    return best;
}

int bench_tokenizer(const char *dir) {
    is_tokenizer *tok = NULL;
    is_error *e = is_tokenizer_load(dir, &tok);
    if (e) {
        fprintf(stderr, "is_bench: tokenizer: %s (give a CLIP tokenizer folder with --tokenizer DIR)\n",
                is_error_message(e));
        is_error_free(e);
        return 1;
    }
    printf("tokenizer %s, is_tokenizer_encode, best of 3:\n\n| input | bytes | ids | seconds |\n|---|---:|---:|---:|\n",
           dir);
    struct {
        const char *label;
        char *text;
    } rows[] = {
        {"a 77-token prompt", repeated("", "a photo of a cat on a chair, ", 300)},
        {"one word of 16,384 letters", letters(16384)},
        {"one word of 65,536 letters (target: under 0.2 s)", letters(65536)},
        {"64 KiB of alternating combining marks", repeated("a", "\xcc\x81\xcc\xa3", 65536)},
        {"64 KiB of punctuation", repeated("", ".,;:-~", 65536)},
    };
    int rc = 0;
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        size_t n = 0;
        double t = rows[i].text ? best_encode(tok, rows[i].text, &n, &e) : 0;
        if (!rows[i].text || e) {
            printf("| %s | failed: %s |\n", rows[i].label, e ? is_error_message(e) : "out of memory");
            is_error_free(e);
            e = NULL;
            rc = 1;
        } else {
            printf("| %s | %zu | %zu | %.4f |\n", rows[i].label, strlen(rows[i].text), n, t);
        }
        free(rows[i].text);
    }
    is_tokenizer_free(tok);
    return rc;
}
