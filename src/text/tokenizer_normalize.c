/* transformers' BasicTokenizer(strip_accents=False, do_split_on_punc=False) on one text piece, which is what
 * CLIPTokenizer runs when ftfy is not installed: cleanup, CJK spacing, NFC, str.split(), str.lower().
 *
 * Unicode data comes from utf8proc (Unicode 15.0). The reference is Python 3.11's unicodedata (Unicode 14.0):
 * the two agree on every category and simple lowercase mapping of the code points assigned in 14.0, so the
 * only difference, the 4489 code points new in 15.0 (unassigned, category Cn, hence deleted in Python), is
 * handled by the table below. Python's Cased / Case_Ignorable derived properties (for the final-sigma rule)
 * are rebuilt from categories plus the short lists of extra code points from PropList / WordBreakProperty. */
#include <stdlib.h>
#include <string.h>
#include <utf8proc.h>

#include "text/tokenizer.h"

typedef struct {
    int32_t lo, hi;
} cp_range;

static int in_ranges(int32_t c, const cp_range *r, size_t n) {
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (c < r[mid].lo)
            hi = mid;
        else if (c > r[mid].hi)
            lo = mid + 1;
        else
            return 1;
    }
    return 0;
}

/* Code points assigned in Unicode 15.0 but unassigned (Cn) in Unicode 14.0. */
static const cp_range new_in_unicode15[] = {
    {0xCF3, 0xCF3},     {0xECE, 0xECE},     {0x10EFD, 0x10EFF}, {0x1123F, 0x11241}, {0x11B00, 0x11B09},
    {0x11F00, 0x11F10}, {0x11F12, 0x11F3A}, {0x11F3E, 0x11F59}, {0x1342F, 0x1342F}, {0x13439, 0x13455},
    {0x1B132, 0x1B132}, {0x1B155, 0x1B155}, {0x1D2C0, 0x1D2D3}, {0x1DF25, 0x1DF2A}, {0x1E030, 0x1E06D},
    {0x1E08F, 0x1E08F}, {0x1E4D0, 0x1E4F9}, {0x1F6DC, 0x1F6DC}, {0x1F774, 0x1F776}, {0x1F77B, 0x1F77F},
    {0x1F7D9, 0x1F7D9}, {0x1FA75, 0x1FA77}, {0x1FA87, 0x1FA88}, {0x1FAAD, 0x1FAAF}, {0x1FABB, 0x1FABD},
    {0x1FABF, 0x1FABF}, {0x1FACE, 0x1FACF}, {0x1FADA, 0x1FADB}, {0x1FAE8, 0x1FAE8}, {0x1FAF7, 0x1FAF8},
    {0x2B739, 0x2B739}, {0x31350, 0x323AF},
};

/* Cased code points (Unicode 14.0) outside Lu/Ll/Lt: Other_Lowercase and Other_Uppercase. */
static const cp_range other_cased[] = {
    {0xAA, 0xAA},       {0xBA, 0xBA},       {0x2B0, 0x2B8},     {0x2C0, 0x2C1},     {0x2E0, 0x2E4},
    {0x345, 0x345},     {0x37A, 0x37A},     {0x1D2C, 0x1D6A},   {0x1D78, 0x1D78},   {0x1D9B, 0x1DBF},
    {0x2071, 0x2071},   {0x207F, 0x207F},   {0x2090, 0x209C},   {0x2160, 0x217F},   {0x24B6, 0x24E9},
    {0x2C7C, 0x2C7D},   {0xA69C, 0xA69D},   {0xA770, 0xA770},   {0xA7F8, 0xA7F9},   {0xAB5C, 0xAB5F},
    {0x10780, 0x10780}, {0x10783, 0x10785}, {0x10787, 0x107B0}, {0x107B2, 0x107BA}, {0x1F130, 0x1F149},
    {0x1F150, 0x1F169}, {0x1F170, 0x1F189},
};

/* Word_Break = MidLetter, MidNumLet or Single_Quote: the non-category part of Case_Ignorable. */
static const cp_range word_break_mid[] = {
    {0x27, 0x27},     {0x2E, 0x2E},     {0x3A, 0x3A},     {0xB7, 0xB7},     {0x387, 0x387},   {0x55F, 0x55F},
    {0x5F4, 0x5F4},   {0x2018, 0x2019}, {0x2024, 0x2024}, {0x2027, 0x2027}, {0xFE13, 0xFE13}, {0xFE52, 0xFE52},
    {0xFE55, 0xFE55}, {0xFF07, 0xFF07}, {0xFF0E, 0xFF0E}, {0xFF1A, 0xFF1A},
};

#define N_OF(a) (sizeof(a) / sizeof((a)[0]))

/* Python's unicodedata.category(c) (Unicode 14.0). */
static utf8proc_category_t category14(int32_t c) {
    if (in_ranges(c, new_in_unicode15, N_OF(new_in_unicode15))) return UTF8PROC_CATEGORY_CN;
    return utf8proc_category(c);
}

/* BasicTokenizer._is_control: categories C* except \t \n \r. */
static int is_control(int32_t c) {
    if (c == '\t' || c == '\n' || c == '\r') return 0;
    switch (category14(c)) {
    case UTF8PROC_CATEGORY_CC:
    case UTF8PROC_CATEGORY_CF:
    case UTF8PROC_CATEGORY_CS:
    case UTF8PROC_CATEGORY_CO:
    case UTF8PROC_CATEGORY_CN:
        return 1;
    default:
        return 0;
    }
}

/* BasicTokenizer._is_whitespace: space, \t \n \r and category Zs. */
static int is_whitespace(int32_t c) {
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || category14(c) == UTF8PROC_CATEGORY_ZS;
}

/* BasicTokenizer._is_chinese_char: the CJK Unified Ideographs blocks and compatibility ideographs. */
static int is_cjk(int32_t c) {
    return (c >= 0x4E00 && c <= 0x9FFF) || (c >= 0x3400 && c <= 0x4DBF) || (c >= 0x20000 && c <= 0x2A6DF) ||
           (c >= 0x2A700 && c <= 0x2B73F) || (c >= 0x2B740 && c <= 0x2B81F) || (c >= 0x2B820 && c <= 0x2CEAF) ||
           (c >= 0xF900 && c <= 0xFAFF) || (c >= 0x2F800 && c <= 0x2FA1F);
}

/* Python str.split() separators left after the cleanup (which already turned the others into spaces). */
static int is_split_space(int32_t c) { return c == ' ' || c == 0x2028 || c == 0x2029; }

static int is_cased(int32_t c) {
    utf8proc_category_t cat = category14(c);
    return cat == UTF8PROC_CATEGORY_LU || cat == UTF8PROC_CATEGORY_LL || cat == UTF8PROC_CATEGORY_LT ||
           in_ranges(c, other_cased, N_OF(other_cased));
}

static int is_case_ignorable(int32_t c) {
    switch (category14(c)) {
    case UTF8PROC_CATEGORY_MN:
    case UTF8PROC_CATEGORY_ME:
    case UTF8PROC_CATEGORY_CF:
    case UTF8PROC_CATEGORY_LM:
    case UTF8PROC_CATEGORY_SK:
        return 1;
    default:
        return in_ranges(c, word_break_mid, N_OF(word_break_mid));
    }
}

/* CPython's handle_capital_sigma: final form when preceded by a cased letter and not followed by one
 * (case-ignorable characters skipped on both sides). */
static int32_t lower_capital_sigma(const int32_t *w, size_t n, size_t i) {
    size_t j = i;
    int32_t c = 0;
    int found = 0;
    while (j > 0) {
        c = w[--j];
        if (!is_case_ignorable(c)) {
            found = 1;
            break;
        }
    }
    int final_sigma = found && is_cased(c);
    if (final_sigma) {
        for (j = i + 1; j < n; j++)
            if (!is_case_ignorable(w[j])) break;
        final_sigma = j == n || !is_cased(w[j]);
    }
    return final_sigma ? 0x3C2 : 0x3C3;
}

/* Python str.lower() of one word: simple lowercase mapping, plus SpecialCasing's unconditional
 * U+0130 -> "i\u0307" and the Final_Sigma condition. */
static is_error *lower_word(const int32_t *w, size_t n, is_i32vec *out) {
    for (size_t i = 0; i < n; i++) {
        int32_t c = w[i];
        if (c == 0x130) {
            IS_TRY(is_i32vec_push(out, 'i'));
            IS_TRY(is_i32vec_push(out, 0x307));
        } else if (c == 0x3A3) {
            IS_TRY(is_i32vec_push(out, lower_capital_sigma(w, n, i)));
        } else {
            IS_TRY(is_i32vec_push(out, utf8proc_tolower(c)));
        }
    }
    return NULL;
}

/* Steps 1-3: delete controls, whitespace -> space, spaces around CJK ideographs. */
static is_error *clean_text(const int32_t *cps, size_t n, is_i32vec *out) {
    for (size_t i = 0; i < n; i++) {
        int32_t c = cps[i];
        if (c == 0 || c == 0xFFFD || is_control(c)) continue;
        if (is_whitespace(c)) {
            IS_TRY(is_i32vec_push(out, ' '));
        } else if (is_cjk(c)) {
            IS_TRY(is_i32vec_push(out, ' '));
            IS_TRY(is_i32vec_push(out, c));
            IS_TRY(is_i32vec_push(out, ' '));
        } else {
            IS_TRY(is_i32vec_push(out, c));
        }
    }
    return NULL;
}

/* Step 4: NFC = canonical decomposition, canonical ordering, canonical composition, as utf8proc_map(STABLE |
 * COMPOSE) does it, except the ordering: utf8proc's is an exchange sort, quadratic in the length of a run of
 * combining marks (a prompt of 64 KiB of alternating marks took seconds). Its result is the unique stable
 * sort by combining class of each maximal run of non-starters (it never moves a mark across a starter and
 * swaps only strictly inverted neighbours), which a counting sort gives in linear time. */
#define NFC_MAX_DECOMPOSITION 32  /* utf8proc's canonical decompositions have at most 4 code points */
#define NFC_INSERTION_SORT_RUN 16 /* shorter runs (almost all of them) sort in place */

static int combining_class(int32_t c) { return utf8proc_get_property(c)->combining_class; }

/* Stable insertion sort of a short run by combining class. */
static void sort_short_run(int32_t *v, size_t k) {
    for (size_t i = 1; i < k; i++) {
        int32_t c = v[i];
        int cc = combining_class(c);
        size_t j = i;
        for (; j > 0 && combining_class(v[j - 1]) > cc; j--) v[j] = v[j - 1];
        v[j] = c;
    }
}

/* Stable counting sort of a run by combining class (0..254); tmp holds k code points. */
static void sort_long_run(int32_t *v, size_t k, int32_t *tmp) {
    size_t start[257] = {0};
    for (size_t i = 0; i < k; i++) start[combining_class(v[i]) + 1]++;
    for (int c = 1; c < 257; c++) start[c] += start[c - 1];
    for (size_t i = 0; i < k; i++) tmp[start[combining_class(v[i])]++] = v[i];
    memcpy(v, tmp, k * sizeof *v);
}

static is_error *canonical_order(int32_t *v, size_t n) {
    int32_t *tmp = NULL;
    for (size_t i = 0; i < n;) {
        if (combining_class(v[i]) == 0) {
            i++;
            continue;
        }
        size_t start = i;
        while (i < n && combining_class(v[i]) != 0) i++;
        size_t k = i - start;
        if (k <= NFC_INSERTION_SORT_RUN) {
            sort_short_run(v + start, k);
            continue;
        }
        if (!tmp && !(tmp = malloc(n * sizeof *tmp))) return is_error_oom("tokenizer NFC");
        sort_long_run(v + start, k, tmp);
    }
    free(tmp);
    return NULL;
}

static is_error *canonical_decompose(const int32_t *cps, size_t n, is_i32vec *out) {
    for (size_t i = 0; i < n; i++) {
        utf8proc_int32_t d[NFC_MAX_DECOMPOSITION];
        int boundclass = UTF8PROC_BOUNDCLASS_START; /* only read with UTF8PROC_CHARBOUND */
        utf8proc_ssize_t m = utf8proc_decompose_char(cps[i], d, NFC_MAX_DECOMPOSITION,
                                                     UTF8PROC_STABLE | UTF8PROC_COMPOSE, &boundclass);
        if (m < 0 || m > NFC_MAX_DECOMPOSITION)
            return is_errorf(IS_E_INTERNAL, "tokenizer: NFC decomposition of U+%04X failed", (unsigned)cps[i]);
        for (utf8proc_ssize_t k = 0; k < m; k++) IS_TRY(is_i32vec_push(out, d[k]));
    }
    return NULL;
}

is_error *is_tok_nfc(const int32_t *cps, size_t n, is_i32vec *out) {
    is_i32vec d = {0};
    is_error *err = canonical_decompose(cps, n, &d);
    if (!err) err = canonical_order(d.v, d.n);
    /* Composition only shortens the text, in place, in one pass. */
    utf8proc_ssize_t m = 0;
    if (!err && d.n) m = utf8proc_normalize_utf32(d.v, (utf8proc_ssize_t)d.n, UTF8PROC_STABLE | UTF8PROC_COMPOSE);
    for (utf8proc_ssize_t k = 0; !err && k < m; k++) err = is_i32vec_push(out, d.v[k]);
    is_i32vec_free(&d);
    return err;
}

is_error *is_tok_normalize(const char *piece, size_t len, is_i32vec *out) {
    is_i32vec raw = {0}, clean = {0}, composed = {0};
    is_error *err = is_utf8_decode(piece, len, &raw);
    if (!err) err = clean_text(raw.v, raw.n, &clean);
    if (!err) err = is_tok_nfc(clean.v, clean.n, &composed);
    /* Steps 5-7: split into words, lower-case each word (its own sigma context), join with one space. */
    size_t i = 0, n = composed.n;
    int first = 1;
    while (!err && i < n) {
        if (is_split_space(composed.v[i])) {
            i++;
            continue;
        }
        size_t start = i;
        while (i < n && !is_split_space(composed.v[i])) i++;
        if (!first) err = is_i32vec_push(out, ' ');
        if (!err) err = lower_word(composed.v + start, i - start, out);
        first = 0;
    }
    is_i32vec_free(&raw);
    is_i32vec_free(&clean);
    is_i32vec_free(&composed);
    return err;
}
