/* Byte-level BPE of one pre-token, and the hash tables it looks things up in.
 *
 * Every symbol is kept as its vocab id: in a CLIP vocab every byte character, every byte character + "</w>"
 * and every merge result is a token (the loader checks this), and token strings map one-to-one to ids, so
 * comparing ids is comparing the strings transformers compares. */
#include <stdlib.h>
#include <string.h>

#include "text/tokenizer.h"

static uint64_t hash_bytes(const char *s, size_t len) {
    uint64_t h = 1469598103934665603ull; /* FNV-1a */
    for (size_t i = 0; i < len; i++) h = (h ^ (unsigned char)s[i]) * 1099511628211ull;
    return h;
}

static uint64_t hash_u64(uint64_t x) { /* splitmix64 finaliser */
    x ^= x >> 30;
    x *= 0xbf58476d1ce4e5b9ull;
    x ^= x >> 27;
    x *= 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

int32_t is_vocab_find(const is_vocab_table *vt, const char *s, size_t len) {
    if (!vt->slots) return -1;
    for (size_t h = hash_bytes(s, len) & vt->mask;; h = (h + 1) & vt->mask) {
        int32_t e = vt->slots[h];
        if (e < 0) return -1;
        const is_vocab_entry *en = &vt->entries[e];
        if (en->len == len && memcmp(en->str, s, len) == 0) return en->id;
    }
}

int is_merge_find(const is_merge_table *mt, int32_t left, int32_t right, int32_t *rank, int32_t *merged) {
    if (!mt->slots) return -1;
    uint64_t key = ((uint64_t)(uint32_t)left << 32) | (uint32_t)right;
    for (size_t h = hash_u64(key) & mt->mask;; h = (h + 1) & mt->mask) {
        const is_merge_slot *s = &mt->slots[h];
        if (s->key == UINT64_MAX) return -1;
        if (s->key == key) {
            *rank = s->rank;
            *merged = s->merged;
            return 0;
        }
    }
}

int32_t is_bpe_byte_char(unsigned b) {
    /* Printable Latin-1 bytes stand for themselves; the other 68 get U+0100.. in increasing byte order. */
    if ((b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF)) return (int32_t)b;
    int32_t k = 0;
    for (unsigned x = 0; x < b; x++)
        if (!((x >= 0x21 && x <= 0x7E) || (x >= 0xA1 && x <= 0xAC) || (x >= 0xAE && x <= 0xFF))) k++;
    return 0x100 + k;
}

is_error *is_bpe_encode_word(const struct is_tokenizer *tok, const unsigned char *bytes, size_t len,
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

/* ------------------------------------------------------------------ building the tables */

static size_t table_size_for(size_t count) {
    size_t size = 16;
    while (size < count * 2) size *= 2; /* load factor <= 0.5 */
    return size;
}

static int compare_i32(const void *a, const void *b) {
    int32_t x = *(const int32_t *)a, y = *(const int32_t *)b;
    return (x > y) - (x < y);
}

is_error *is_vocab_build_index(is_vocab_table *vt, const char *file) {
    size_t size = table_size_for(vt->n_entries);
    vt->slots = malloc(size * sizeof *vt->slots);
    int32_t *ids = malloc((vt->n_entries + 1) * sizeof *ids);
    if (!vt->slots || !ids) {
        free(ids);
        return is_error_oom(file);
    }
    memset(vt->slots, 0xFF, size * sizeof *vt->slots); /* all -1 */
    vt->mask = size - 1;
    for (size_t e = 0; e < vt->n_entries; e++) {
        const is_vocab_entry *en = &vt->entries[e];
        size_t h = hash_bytes(en->str, en->len) & vt->mask;
        for (; vt->slots[h] >= 0; h = (h + 1) & vt->mask) {
            const is_vocab_entry *other = &vt->entries[vt->slots[h]];
            if (other->len == en->len && memcmp(other->str, en->str, en->len) == 0) {
                free(ids);
                return is_errorf(IS_E_FORMAT, "%s: token \"%s\" appears twice", file, en->str);
            }
        }
        vt->slots[h] = (int32_t)e;
        ids[e] = en->id;
    }
    /* BPE compares symbols by id, so ids must be unique. */
    qsort(ids, vt->n_entries, sizeof *ids, compare_i32);
    for (size_t e = 1; e < vt->n_entries; e++) {
        if (ids[e] == ids[e - 1]) {
            int32_t dup = ids[e];
            free(ids);
            return is_errorf(IS_E_FORMAT, "%s: id %d is given to more than one token", file, (int)dup);
        }
    }
    free(ids);
    return NULL;
}

void is_vocab_table_free(is_vocab_table *vt) {
    for (size_t e = 0; e < vt->n_entries; e++) free(vt->entries[e].str);
    free(vt->entries);
    free(vt->slots);
    memset(vt, 0, sizeof *vt);
}

is_error *is_merge_table_init(is_merge_table *mt, size_t expected_count) {
    size_t size = table_size_for(expected_count);
    mt->slots = malloc(size * sizeof *mt->slots);
    if (!mt->slots) return is_error_oom("merge table");
    for (size_t i = 0; i < size; i++) mt->slots[i].key = UINT64_MAX;
    mt->mask = size - 1;
    mt->n = 0;
    return NULL;
}

void is_merge_table_put(is_merge_table *mt, int32_t left, int32_t right, int32_t rank, int32_t merged) {
    uint64_t key = ((uint64_t)(uint32_t)left << 32) | (uint32_t)right;
    size_t h = hash_u64(key) & mt->mask;
    while (mt->slots[h].key != UINT64_MAX && mt->slots[h].key != key) h = (h + 1) & mt->mask;
    if (mt->slots[h].key == UINT64_MAX) mt->n++;
    mt->slots[h] = (is_merge_slot){key, rank, merged};
}

void is_merge_table_free(is_merge_table *mt) {
    free(mt->slots);
    memset(mt, 0, sizeof *mt);
}
