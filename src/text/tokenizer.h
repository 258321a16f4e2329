/* CLIP BPE tokenizer (transformers' slow CLIPTokenizer without ftfy), internal interface.
 *
 * Pipeline for one prompt (see cases/tokenizer/README.md):
 *   tokenizer.c           added-token split of the raw text, sequence assembly, truncation, padding
 *   tokenizer_normalize.c cleanup, CJK spacing, NFC, word split, Python str.lower()  (BasicTokenizer)
 *   tokenizer_pretok.c    the CLIP pre-tokenization regex
 *   tokenizer_bpe.c       byte-level BPE of one pre-token, vocab / merge hash tables
 *   tokenizer_load.c      vocab.json, merges.txt, special tokens
 */
#ifndef IS_TEXT_TOKENIZER_H
#define IS_TEXT_TOKENIZER_H

#include <stddef.h>
#include <stdint.h>

#include "core/error.h"

/* ------------------------------------------------------------------ growable arrays */

typedef struct {
    int32_t *v;
    size_t n, cap;
} is_i32vec;

is_error *is_i32vec_push(is_i32vec *vec, int32_t x);
void is_i32vec_free(is_i32vec *vec);

/* ------------------------------------------------------------------ vocab and merges */

typedef struct {
    char *str;
    size_t len;
    int32_t id;
} is_vocab_entry;

/* Open-addressing hash table token string -> id. */
typedef struct {
    is_vocab_entry *entries;
    size_t n_entries;
    int32_t *slots; /* index into entries, -1 = empty */
    size_t mask;
} is_vocab_table;

typedef struct {
    uint64_t key; /* (left id << 32) | right id; UINT64_MAX = empty */
    int32_t rank;
    int32_t merged; /* id of the concatenated token */
} is_merge_slot;

/* Open-addressing hash table (left id, right id) -> (rank, merged id). */
typedef struct {
    is_merge_slot *slots;
    size_t mask;
    size_t n;
} is_merge_table;

/* Index vt->entries (already filled); errors name `file` on a duplicate token or id. */
is_error *is_vocab_build_index(is_vocab_table *vt, const char *file);
void is_vocab_table_free(is_vocab_table *vt);
is_error *is_merge_table_init(is_merge_table *mt, size_t expected_count);
/* Insert or overwrite (a later duplicate merge line takes the later rank, as Python's dict does). */
void is_merge_table_put(is_merge_table *mt, int32_t left, int32_t right, int32_t rank, int32_t merged);
void is_merge_table_free(is_merge_table *mt);

/* Returns -1 when absent. */
int32_t is_vocab_find(const is_vocab_table *vt, const char *s, size_t len);
/* Returns 0 and fills rank/merged when present, -1 when absent. */
int is_merge_find(const is_merge_table *mt, int32_t left, int32_t right, int32_t *rank, int32_t *merged);

/* ------------------------------------------------------------------ the tokenizer */

typedef struct {
    char *text; /* UTF-8 content, cut out of the raw prompt by exact match */
    size_t len;
    int32_t id;
} is_added_token;

struct is_tokenizer {
    is_vocab_table vocab;
    is_merge_table merges;
    int32_t byte_id[256];     /* id of the one-byte symbol */
    int32_t byte_end_id[256]; /* id of the one-byte symbol + "</w>" */
    is_added_token *added;    /* special tokens split out before any normalisation */
    size_t n_added;
    int32_t bos_id, eos_id, pad_id, unk_id;
    int32_t sot_id, eot_id; /* "<|startoftext|>" / "<|endoftext|>", which the CLIP regex matches */
};

/* The GPT-2/CLIP bytes_to_unicode table: code point of the character that stands for byte b. */
int32_t is_bpe_byte_char(unsigned b);

/* Longest pre-token is_bpe_encode_word takes (its nodes are 32-bit indices). */
#define IS_BPE_MAX_WORD_BYTES ((size_t)1 << 30)

/* Byte-level BPE of one pre-token (UTF-8 bytes, at most IS_BPE_MAX_WORD_BYTES); appends the ids to out.
 * O(n log n) in the pre-token's length, the same ids as transformers' round-by-round loop. No word cache:
 * the tokenizer stays read-only (shareable between threads) and its memory does not grow with use. */
is_error *is_bpe_encode_word(const struct is_tokenizer *tok, const unsigned char *bytes, size_t len,
                             is_i32vec *out);

/* ------------------------------------------------------------------ text processing */

/* Strict UTF-8 decoding (rejects overlong forms, surrogates, > U+10FFFF, truncation).
 * Returns NULL and appends the code points, or an error naming the byte offset. */
is_error *is_utf8_decode(const char *s, size_t len, is_i32vec *out);
/* Append the UTF-8 bytes of code point cp (valid scalar value) to buf; returns bytes written (<= 4). */
size_t is_utf8_put(int32_t cp, unsigned char *buf);

/* BasicTokenizer of one added-token-free piece (valid UTF-8): cleanup, CJK spacing, NFC, split,
 * str.lower() per word; the words joined by single spaces are appended to out as code points. */
is_error *is_tok_normalize(const char *piece, size_t len, is_i32vec *out);

/* Unicode NFC of valid scalar values (utf8proc's data and composition), appended to out; linear time. */
is_error *is_tok_nfc(const int32_t *cps, size_t n, is_i32vec *out);

/* The CLIP regex over the normalised text; for each pre-token appends its ids to out. */
is_error *is_tok_pretokenize_encode(const struct is_tokenizer *tok, const int32_t *cps, size_t n,
                                    is_i32vec *out);

/* ------------------------------------------------------------------ helpers beyond the public API */

/* Longest prompt (UTF-8 bytes) is_tokenizer_encode* accept. CLIP reads 77 tokens, a few hundred bytes of
 * ordinary text; 64 KiB is over a hundred times that, and bounds a call's time and memory (docs/LIMITS.md).
 * A longer prompt is an IS_E_ARGUMENT error that quotes at most IS_TOKENIZER_QUOTE_BYTES of it. */
#define IS_TOKENIZER_MAX_TEXT_BYTES ((size_t)64 * 1024)
#define IS_TOKENIZER_QUOTE_BYTES 40

/* is_tokenizer_encode on text of explicit length (may contain NUL bytes). */
is_error *is_tokenizer_encode_len(const struct is_tokenizer *tok, const char *utf8_text, size_t len,
                                  int32_t **ids, size_t *n);
/* Truncate/pad an untruncated [BOS, content..., EOS] sequence to exactly max_length ids. */
is_error *is_tokenizer_fit(const struct is_tokenizer *tok, const int32_t *ids, size_t n, int max_length,
                           int32_t *out, int *n_truncated);

#endif
