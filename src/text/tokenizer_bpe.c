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

/* ------------------------------------------------------------------ BPE of one pre-token
 *
 * transformers' CLIPTokenizer.bpe works in rounds: find the adjacent pair with the lowest rank, replace every
 * non-overlapping occurrence of it left to right, repeat. Rescanning the word each round is O(n^2) for one
 * long word, so the same rounds run here on a doubly linked list of symbols with a min-heap of candidate
 * pairs keyed (rank, position) and lazy invalidation: O(n log n).
 *
 * Why the result is the same: a rank names one pair (a later duplicate merges.txt line replaces the earlier
 * rank), so the heap entries of the lowest rank r are exactly the occurrences of that round's pair, popped
 * left to right; one that overlaps an occurrence merged just before it no longer holds the pair and is
 * skipped, which is the greedy left-to-right scan of Python. A merged symbol is longer than either part,
 * so a round never creates its own pair again, and a symbol only grows, so a stale entry never becomes
 * valid again. The pairs a round creates enter the heap only after the round: a merges file may rank
 * (x, ab) below (a, b), and Python merges such a pair only in a later round. */

typedef struct {
    int32_t rank;
    uint32_t pos; /* node of the pair's left symbol; nodes keep their word order */
} bpe_cand;

typedef struct {
    const is_merge_table *merges;
    int32_t *sym;   /* symbol id per node, -1 once merged into its left neighbour */
    uint32_t *next; /* following live node, NONE at the end */
    uint32_t *prev; /* preceding live node, NONE at the start */
    bpe_cand *heap;
    size_t n_heap;
    uint32_t *pending; /* left nodes of the pairs this round created */
    size_t n_pending;
} bpe_state;

#define BPE_NONE UINT32_MAX

static int cand_less(bpe_cand a, bpe_cand b) { return a.rank < b.rank || (a.rank == b.rank && a.pos < b.pos); }

static void heap_push(bpe_state *s, bpe_cand c) {
    size_t i = s->n_heap++;
    while (i > 0 && cand_less(c, s->heap[(i - 1) / 2])) {
        s->heap[i] = s->heap[(i - 1) / 2];
        i = (i - 1) / 2;
    }
    s->heap[i] = c;
}

static bpe_cand heap_pop(bpe_state *s) {
    bpe_cand top = s->heap[0], last = s->heap[--s->n_heap];
    size_t i = 0, n = s->n_heap;
    for (;;) {
        size_t child = 2 * i + 1;
        if (child >= n) break;
        if (child + 1 < n && cand_less(s->heap[child + 1], s->heap[child])) child++;
        if (!cand_less(s->heap[child], last)) break;
        s->heap[i] = s->heap[child];
        i = child;
    }
    if (n) s->heap[i] = last;
    return top;
}

/* Rank and result of the pair starting at node pos; -1 when pos is dead, last, or the pair has no rank. */
static int pair_at(const bpe_state *s, uint32_t pos, int32_t *rank, int32_t *merged) {
    if (pos == BPE_NONE || s->sym[pos] < 0 || s->next[pos] == BPE_NONE) return -1;
    return is_merge_find(s->merges, s->sym[pos], s->sym[s->next[pos]], rank, merged);
}

static void push_pair(bpe_state *s, uint32_t pos) {
    int32_t rank, merged;
    if (pair_at(s, pos, &rank, &merged) == 0) heap_push(s, (bpe_cand){rank, pos});
}

/* Replace the pair at pos by its merged symbol and note the two pairs that now contain it. */
static void merge_at(bpe_state *s, uint32_t pos, int32_t merged) {
    uint32_t right = s->next[pos];
    s->sym[pos] = merged;
    s->sym[right] = -1;
    s->next[pos] = s->next[right];
    if (s->next[right] != BPE_NONE) s->prev[s->next[right]] = pos;
    uint32_t before = s->prev[pos];
    /* Merges of a round run left to right, so a repeated node can only be the last one noted. */
    if (before != BPE_NONE && (s->n_pending == 0 || s->pending[s->n_pending - 1] != before))
        s->pending[s->n_pending++] = before;
    s->pending[s->n_pending++] = pos;
}

/* One round: every heap entry of the lowest valid rank, in word order. Returns 0 when no pair is left. */
static int bpe_round(bpe_state *s) {
    int32_t round_rank = -1;
    while (s->n_heap) {
        bpe_cand c = s->heap[0];
        if (round_rank >= 0 && c.rank != round_rank) break;
        heap_pop(s);
        int32_t rank, merged;
        if (pair_at(s, c.pos, &rank, &merged) != 0 || rank != c.rank) continue; /* stale */
        round_rank = c.rank;
        merge_at(s, c.pos, merged);
    }
    for (size_t i = 0; i < s->n_pending; i++) push_pair(s, s->pending[i]);
    s->n_pending = 0;
    return round_rank >= 0;
}

/* The four arrays of a word of len symbols and the heap/pending space, in one allocation. Every merge
 * notes at most two pairs, so the heap holds at most (len - 1) initial + 2 (len - 1) later entries. */
static is_error *bpe_alloc(bpe_state *s, size_t len, void **block) {
    if (len > SIZE_MAX / 64) return is_error_oom("tokenizer BPE"); /* 44 bytes per symbol below */
    size_t heap_cap = 3 * len, pending_cap = 2 * len;
    size_t bytes = heap_cap * sizeof(bpe_cand) + len * (sizeof(int32_t) + 2 * sizeof(uint32_t)) +
                   pending_cap * sizeof(uint32_t);
    *block = malloc(bytes);
    if (!*block) return is_error_oom("tokenizer BPE");
    s->heap = *block; /* the 8-byte entries first keeps every array aligned */
    s->sym = (int32_t *)(s->heap + heap_cap);
    s->next = (uint32_t *)(s->sym + len);
    s->prev = s->next + len;
    s->pending = s->prev + len;
    s->n_heap = s->n_pending = 0;
    return NULL;
}

is_error *is_bpe_encode_word(const struct is_tokenizer *tok, const unsigned char *bytes, size_t len,
                             is_i32vec *out) {
    if (len == 0) return NULL;
    if (len > IS_BPE_MAX_WORD_BYTES)
        return is_errorf(IS_E_ARGUMENT, "tokenizer: a pre-token of %zu bytes is longer than the BPE limit", len);
    bpe_state s = {.merges = &tok->merges};
    void *block = NULL;
    IS_TRY(bpe_alloc(&s, len, &block));
    for (size_t i = 0; i < len; i++) {
        s.sym[i] = tok->byte_id[bytes[i]];
        s.prev[i] = i ? (uint32_t)(i - 1) : BPE_NONE;
        s.next[i] = i + 1 < len ? (uint32_t)(i + 1) : BPE_NONE;
    }
    s.sym[len - 1] = tok->byte_end_id[bytes[len - 1]]; /* the word-final symbol carries "</w>" */
    for (size_t i = 0; i + 1 < len; i++) push_pair(&s, (uint32_t)i);
    while (bpe_round(&s)) {
        /* until no adjacent pair has a rank */
    }
    is_error *err = NULL;
    for (uint32_t p = 0; p != BPE_NONE && !err; p = s.next[p]) err = is_i32vec_push(out, s.sym[p]);
    free(block);
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
    memset(mt->slots, 0xFF, size * sizeof *mt->slots); /* every key UINT64_MAX: empty */
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
