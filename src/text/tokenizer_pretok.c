/* CLIP pre-tokenization: regex.findall with IGNORECASE of
 *   <\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+
 * written out as a left-to-right scan: at each position the first alternative that matches wins, positions
 * where none matches are skipped. Each pre-token is then BPE-encoded (the two literal special tokens map to
 * their ids directly, as the BPE cache of CLIPTokenizer does). */
#include <stdlib.h>
#include <utf8proc.h>

#include "text/tokenizer.h"

static const char sot_text[] = "<|startoftext|>";
static const char eot_text[] = "<|endoftext|>";

/* Python's regex \s (Unicode White_Space; after normalisation only ' ' can occur). */
static int is_regex_space(int32_t c) {
    return (c >= 0x09 && c <= 0x0D) || c == 0x20 || c == 0x85 || c == 0xA0 || c == 0x1680 ||
           (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 || c == 0x202F || c == 0x205F ||
           c == 0x3000;
}

static int is_letter(int32_t c) {
    switch (utf8proc_category(c)) {
    case UTF8PROC_CATEGORY_LU:
    case UTF8PROC_CATEGORY_LL:
    case UTF8PROC_CATEGORY_LT:
    case UTF8PROC_CATEGORY_LM:
    case UTF8PROC_CATEGORY_LO:
        return 1;
    default:
        return 0;
    }
}

static int is_number(int32_t c) {
    utf8proc_category_t cat = utf8proc_category(c);
    return cat == UTF8PROC_CATEGORY_ND || cat == UTF8PROC_CATEGORY_NL || cat == UTF8PROC_CATEGORY_NO;
}

/* [^\s\p{L}\p{N}] under IGNORECASE. U+0345 (a mark whose case variants are Greek iota) is excluded: the
 * regex module matches it with no alternative, so it is silently dropped. */
static int is_other(int32_t c) { return !is_regex_space(c) && !is_letter(c) && !is_number(c) && c != 0x345; }

/* One pattern character against one text character under IGNORECASE (simple case folding). The only
 * non-ASCII character that folds onto a letter of these patterns is U+017F LONG S (-> 's'). */
static int char_matches(char p, int32_t c) {
    if (c == p) return 1;
    if (p >= 'a' && p <= 'z' && c == p - 'a' + 'A') return 1;
    return p == 's' && c == 0x17F;
}

/* Length of the match of literal pattern pat at cps[0..n), or 0. */
static size_t match_literal(const char *pat, const int32_t *cps, size_t n) {
    size_t k = 0;
    for (; pat[k]; k++)
        if (k >= n || !char_matches(pat[k], cps[k])) return 0;
    return k;
}

static size_t match_special_or_contraction(const int32_t *cps, size_t n) {
    static const char *const alternatives[] = {sot_text, eot_text, "'s", "'t", "'re", "'ve", "'m", "'ll", "'d"};
    for (size_t a = 0; a < sizeof alternatives / sizeof alternatives[0]; a++) {
        size_t k = match_literal(alternatives[a], cps, n);
        if (k) return k;
    }
    return 0;
}

/* Exact (case-sensitive) equality of code points and an ASCII string. */
static int equals_ascii(const int32_t *cps, size_t n, const char *s) {
    size_t k = 0;
    for (; s[k]; k++)
        if (k >= n || cps[k] != (unsigned char)s[k]) return 0;
    return k == n;
}

static is_error *encode_pretoken(const struct is_tokenizer *tok, const int32_t *cps, size_t n, is_i32vec *out) {
    if (equals_ascii(cps, n, sot_text)) return is_i32vec_push(out, tok->sot_id);
    if (equals_ascii(cps, n, eot_text)) return is_i32vec_push(out, tok->eot_id);
    unsigned char small[256];
    unsigned char *bytes = n <= sizeof small / 4 ? small : malloc(n * 4);
    if (!bytes) return is_error_oom("tokenizer pre-token");
    size_t len = 0;
    for (size_t i = 0; i < n; i++) len += is_utf8_put(cps[i], bytes + len);
    is_error *err = is_bpe_encode_word(tok, bytes, len, out);
    if (bytes != small) free(bytes);
    return err;
}

is_error *is_tok_pretokenize_encode(const struct is_tokenizer *tok, const int32_t *cps, size_t n,
                                    is_i32vec *out) {
    size_t i = 0;
    while (i < n) {
        int32_t c = cps[i];
        size_t k = match_special_or_contraction(cps + i, n - i);
        if (!k) {
            if (is_letter(c)) {
                while (i + k < n && is_letter(cps[i + k])) k++;
            } else if (is_number(c)) {
                k = 1;
            } else if (is_other(c)) {
                while (i + k < n && is_other(cps[i + k])) k++;
            } else {
                i++; /* whitespace, or a character no alternative matches */
                continue;
            }
        }
        IS_TRY(encode_pretoken(tok, cps + i, k, out));
        i += k;
    }
    return NULL;
}
