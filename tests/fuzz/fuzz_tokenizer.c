/* Prompt text: the golden tiny-sdxl tokenizer/ and tokenizer_2/ (the real 49408-token CLIP vocabulary and
 * merges; tokenizer_2 pads with "!") are loaded once; each input is encoded as UTF-8 bytes of explicit
 * length (NULs included) with is_tokenizer_encode_len, and cut at its first NUL with
 * is_tokenizer_encode and is_tokenizer_encode_padded (77 ids). The entry points must agree on whether a
 * text is valid (strict UTF-8) and, without NULs, on its ids; ids are [BOS, content..., EOS] inside the
 * vocabulary, and the padded form is the documented truncation (keeping EOS) and padding of them. The
 * input repeated past 64 KiB must be refused with IS_E_ARGUMENT and a short message. */
#include <stdlib.h>
#include <string.h>

#include "fuzz_common.h"
#include "instantstyle.h"
#include "text/tokenizer.h"

#define VOCAB 49408

static is_tokenizer *tok[2];

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc;
    (void)argv;
    const char *dirs[2] = {fz_golden("models/tiny-sdxl/tokenizer"), fz_golden("models/tiny-sdxl/tokenizer_2")};
    for (int k = 0; k < 2; k++) {
        is_error *e = is_tokenizer_load(dirs[k], &tok[k]);
        if (e) fz_fail("loading %s: %s", dirs[k], is_error_message(e));
    }
    return 0;
}

static void check_ids(const is_tokenizer *t, const int32_t *ids, size_t n) {
    if (n < 2 || ids[0] != is_tokenizer_bos_id(t) || ids[n - 1] != is_tokenizer_eos_id(t))
        fz_fail("%zu ids, not [BOS, ..., EOS]", n);
    for (size_t i = 0; i < n; i++)
        if (ids[i] < 0 || ids[i] >= VOCAB) fz_fail("id %d at %zu outside the vocabulary", (int)ids[i], i);
}

static void check_padded(const is_tokenizer *t, const int32_t *full, size_t n, const int32_t *pad, int cut) {
    size_t content = n - 2, kept = content < IS_CLIP_MAX_LENGTH - 2 ? content : IS_CLIP_MAX_LENGTH - 2;
    if ((size_t)cut != content - kept) fz_fail("%d tokens truncated, expected %zu", cut, content - kept);
    if (memcmp(pad, full, (kept + 1) * sizeof *pad) || pad[kept + 1] != full[n - 1])
        fz_fail("padded ids are not the truncated full ids");
    for (size_t i = kept + 2; i < IS_CLIP_MAX_LENGTH; i++)
        if (pad[i] != is_tokenizer_pad_id(t)) fz_fail("id %d at %zu is not the pad token", (int)pad[i], i);
}

/* The input repeated past the length limit (64 KiB): refused before any work with IS_E_ARGUMENT, whatever
 * its bytes, and a message that quotes only the text's start (it never grows with the text). */
static void check_too_long(const uint8_t *data, size_t size) {
    static char *big;
    if (!big && !(big = malloc(IS_TOKENIZER_MAX_TEXT_BYTES + 2))) fz_fail("out of memory");
    size_t n = IS_TOKENIZER_MAX_TEXT_BYTES + 1;
    size_t have = size ? (size < n ? size : n) : 1;
    if (size) memcpy(big, data, have);
    else big[0] = 'a';
    for (; have < n; have *= 2) memcpy(big + have, big, have < n - have ? have : n - have); /* repeat */
    int32_t *ids = NULL;
    size_t n_ids = 0;
    is_error *err = is_tokenizer_encode_len(tok[0], big, n, &ids, &n_ids);
    if (!err) fz_fail("a %zu-byte text was accepted", n);
    if (is_error_code(err) != IS_E_ARGUMENT || strlen(is_error_message(err)) > 1024)
        fz_fail("a %zu-byte text: status %s, %zu-byte message", n, is_status_name(is_error_code(err)),
                strlen(is_error_message(err)));
    fz_error(err);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char *text = fz_cstr(data, size);
    int has_nul = memchr(data, 0, size) != NULL;
    for (int k = 0; k < 2; k++) {
        int32_t *ids = NULL, *ids_c = NULL, pad[IS_CLIP_MAX_LENGTH];
        size_t n = 0, n_c = 0;
        int cut = -1;
        int bad = fz_error(is_tokenizer_encode_len(tok[k], (const char *)data, size, &ids, &n));
        if (!bad) check_ids(tok[k], ids, n);
        int bad_c = fz_error(is_tokenizer_encode(tok[k], text, &ids_c, &n_c));
        int bad_p = fz_error(is_tokenizer_encode_padded(tok[k], text, IS_CLIP_MAX_LENGTH, pad, &cut));
        if (bad_c != bad_p) fz_fail("encode and encode_padded disagree on validity");
        if (!bad_c) {
            check_ids(tok[k], ids_c, n_c);
            check_padded(tok[k], ids_c, n_c, pad, cut);
        }
        if (!has_nul && (bad != bad_c || (!bad && (n != n_c || memcmp(ids, ids_c, n * sizeof *ids)))))
            fz_fail("tokenizer %d: encode_len and encode differ on a text without NUL", k + 1);
        free(ids);
        free(ids_c);
    }
    check_too_long(data, size);
    free(text);
    return 0;
}
