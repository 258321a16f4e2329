/* Encoding a prompt: the added-token split of the raw text, then per piece normalisation, CLIP regex and
 * BPE; then BOS/EOS, truncation and padding as diffusers' encode_prompt asks transformers for them. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "instantstyle.h"
#include "text/tokenizer.h"

/* Longest added token starting at text[0..len) (leftmost-longest, as transformers' Trie split), or NULL. */
static const is_added_token *added_token_at(const is_tokenizer *tok, const char *text, size_t len) {
    const is_added_token *best = NULL;
    for (size_t i = 0; i < tok->n_added; i++) {
        const is_added_token *a = &tok->added[i];
        if (a->len <= len && memcmp(a->text, text, a->len) == 0 && (!best || a->len > best->len)) best = a;
    }
    return best;
}

static is_error *encode_piece(const is_tokenizer *tok, const char *piece, size_t len, is_i32vec *out) {
    if (len == 0) return NULL;
    is_i32vec text = {0};
    is_error *err = is_tok_normalize(piece, len, &text);
    if (!err) err = is_tok_pretokenize_encode(tok, text.v, text.n, out);
    is_i32vec_free(&text);
    return err;
}

/* The first bytes of an over-long prompt for its error: at most IS_TOKENIZER_QUOTE_BYTES of it, cut before a
 * UTF-8 continuation byte, "..." after; control bytes, quotes and (when that part is not valid UTF-8, which
 * is checked later) bytes >= 0x80 escaped, so the message stays one short, printable line. buf: QUOTE_CAP. */
#define QUOTE_CAP (4 * IS_TOKENIZER_QUOTE_BYTES + 4)

static const char *quote_start(const char *text, size_t len, char *buf) {
    size_t stop = len < IS_TOKENIZER_QUOTE_BYTES ? len : IS_TOKENIZER_QUOTE_BYTES, k = 0;
    while (stop > 0 && stop < len && ((unsigned char)text[stop] & 0xC0) == 0x80) stop--;
    is_i32vec cps = {0};
    is_error *bad = is_utf8_decode(text, stop, &cps);
    int utf8_ok = !bad;
    is_error_free(bad);
    is_i32vec_free(&cps);
    for (size_t i = 0; i < stop; i++) {
        unsigned char c = (unsigned char)text[i];
        if (c < 0x20 || c == 0x7F || c == '"' || c == '\\' || (c >= 0x80 && !utf8_ok))
            k += (size_t)snprintf(buf + k, QUOTE_CAP - k, "\\x%02x", c);
        else
            buf[k++] = (char)c;
    }
    snprintf(buf + k, QUOTE_CAP - k, "%s", stop < len ? "..." : "");
    return buf;
}

/* The prompt length limit, checked before any work (IS_TOKENIZER_MAX_TEXT_BYTES). */
static is_error *check_length(const char *text, size_t len) {
    if (len <= IS_TOKENIZER_MAX_TEXT_BYTES) return NULL;
    char q[QUOTE_CAP];
    return is_errorf(IS_E_ARGUMENT,
                     "tokenizer: the prompt is %zu bytes long, over the limit of %zu bytes (%zu KiB; CLIP reads only "
                     "its first 77 tokens): \"%s\"",
                     len, IS_TOKENIZER_MAX_TEXT_BYTES, IS_TOKENIZER_MAX_TEXT_BYTES / 1024, quote_start(text, len, q));
}

is_error *is_tokenizer_encode_len(const is_tokenizer *tok, const char *utf8_text, size_t len, int32_t **ids,
                                  size_t *n) {
    if (!tok || !ids || !n || (!utf8_text && len))
        return is_errorf(IS_E_ARGUMENT, "is_tokenizer_encode: NULL argument");
    *ids = NULL;
    *n = 0;
    IS_TRY(check_length(utf8_text, len));
    /* Reject invalid UTF-8 up front (the pieces are then valid: added tokens are whole characters). */
    is_i32vec check = {0};
    is_error *err = is_utf8_decode(utf8_text, len, &check);
    is_i32vec_free(&check);
    if (err) return is_error_wrap(err, "tokenizer");

    is_i32vec out = {0};
    err = is_i32vec_push(&out, tok->bos_id);
    size_t piece_start = 0, i = 0;
    while (!err && i < len) {
        const is_added_token *a = added_token_at(tok, utf8_text + i, len - i);
        if (!a) {
            i++;
            continue;
        }
        err = encode_piece(tok, utf8_text + piece_start, i - piece_start, &out);
        if (!err) err = is_i32vec_push(&out, a->id);
        i += a->len;
        piece_start = i;
    }
    if (!err) err = encode_piece(tok, utf8_text + piece_start, len - piece_start, &out);
    if (!err) err = is_i32vec_push(&out, tok->eos_id);
    if (err) {
        is_i32vec_free(&out);
        return err;
    }
    *ids = out.v;
    *n = out.n;
    return NULL;
}

is_error *is_tokenizer_encode(const is_tokenizer *tok, const char *utf8_text, int32_t **ids, size_t *n) {
    if (!utf8_text) return is_errorf(IS_E_ARGUMENT, "is_tokenizer_encode: text is NULL");
    return is_tokenizer_encode_len(tok, utf8_text, strlen(utf8_text), ids, n);
}

is_error *is_tokenizer_fit(const is_tokenizer *tok, const int32_t *ids, size_t n, int max_length, int32_t *out,
                           int *n_truncated) {
    if (!tok || !ids || !out) return is_errorf(IS_E_ARGUMENT, "is_tokenizer_fit: NULL argument");
    if (max_length < 2) return is_errorf(IS_E_ARGUMENT, "tokenizer: max_length %d leaves no room for BOS and EOS",
                                         max_length);
    if (n < 2) return is_errorf(IS_E_ARGUMENT, "tokenizer: a sequence needs at least BOS and EOS");
    size_t room = (size_t)max_length - 2, content = n - 2;
    size_t kept = content < room ? content : room;
    /* Truncation drops content tokens from the right; EOS is appended after it. */
    memcpy(out, ids, (kept + 1) * sizeof *out);
    out[kept + 1] = ids[n - 1];
    for (size_t i = kept + 2; i < (size_t)max_length; i++) out[i] = tok->pad_id;
    if (n_truncated) *n_truncated = (int)(content - kept);
    return NULL;
}

is_error *is_tokenizer_encode_padded(const is_tokenizer *tok, const char *utf8_text, int max_length, int32_t *ids,
                                     int *n_truncated) {
    if (!ids) return is_errorf(IS_E_ARGUMENT, "is_tokenizer_encode_padded: ids is NULL");
    if (max_length < 2) return is_errorf(IS_E_ARGUMENT, "tokenizer: max_length %d leaves no room for BOS and EOS",
                                         max_length);
    int32_t *full = NULL;
    size_t n = 0;
    IS_TRY(is_tokenizer_encode(tok, utf8_text, &full, &n));
    is_error *err = is_tokenizer_fit(tok, full, n, max_length, ids, n_truncated);
    free(full);
    return err;
}
