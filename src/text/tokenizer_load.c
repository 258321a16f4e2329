/* Loading a CLIP tokenizer folder: vocab.json, merges.txt, tokenizer_config.json, special_tokens_map.json,
 * as transformers' CLIPTokenizer.from_pretrained reads them. */
#include <cjson/cJSON.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/fileio.h"
#include "text/tokenizer.h"

/* CLIPTokenizer keeps merges.txt lines [1, 49152 - 256 - 2] only: the original CLIP vocabulary size
 * minus the 256 byte symbols and the 2 special tokens (transformers hard-codes this too). */
#define CLIP_MAX_MERGES (49152 - 256 - 2)
#define MAX_TOKENIZER_FILE_BYTES (64u << 20)

static is_error *read_json(const char *path, cJSON **root) {
    char *text = NULL;
    size_t n = 0;
    IS_TRY(is_read_file(path, MAX_TOKENIZER_FILE_BYTES, &text, &n));
    *root = cJSON_ParseWithLength(text, n);
    free(text);
    if (!*root) return is_errorf(IS_E_FORMAT, "%s: invalid JSON", path);
    return NULL;
}

/* ------------------------------------------------------------------ vocab.json */

static is_error *load_vocab(is_tokenizer *tok, const char *path) {
    cJSON *root = NULL;
    IS_TRY(read_json(path, &root));
    is_error *err = NULL;
    int count = cJSON_IsObject(root) ? cJSON_GetArraySize(root) : 0;
    if (count <= 0) {
        err = is_errorf(IS_E_FORMAT, "%s: expected a non-empty JSON object token -> id", path);
        goto done;
    }
    is_vocab_table *vt = &tok->vocab;
    vt->entries = calloc((size_t)count, sizeof *vt->entries);
    if (!vt->entries) {
        err = is_error_oom(path);
        goto done;
    }
    for (const cJSON *item = root->child; item; item = item->next) {
        double v = item->valuedouble;
        if (!cJSON_IsNumber(item) || !(v >= 0 && v <= INT32_MAX) || v != floor(v)) {
            err = is_errorf(IS_E_FORMAT, "%s: token \"%s\" has no valid id (expected an integer >= 0)", path,
                            item->string ? item->string : "");
            goto done;
        }
        size_t len = strlen(item->string);
        char *copy = malloc(len + 1);
        if (!copy) {
            err = is_error_oom(path);
            goto done;
        }
        memcpy(copy, item->string, len + 1);
        vt->entries[vt->n_entries++] = (is_vocab_entry){copy, len, (int32_t)v};
    }
    err = is_vocab_build_index(vt, path);
done:
    cJSON_Delete(root);
    return err;
}

/* Ids of the 256 byte symbols and of the 256 word-final ones ("<byte char></w>"). */
static is_error *find_byte_symbols(is_tokenizer *tok, const char *vocab_path) {
    for (unsigned b = 0; b < 256; b++) {
        char s[16];
        size_t len = is_utf8_put(is_bpe_byte_char(b), (unsigned char *)s);
        memcpy(s + len, "</w>", 5);
        tok->byte_id[b] = is_vocab_find(&tok->vocab, s, len);
        tok->byte_end_id[b] = is_vocab_find(&tok->vocab, s, len + 4);
        if (tok->byte_id[b] < 0 || tok->byte_end_id[b] < 0)
            return is_errorf(IS_E_FORMAT, "%s: the symbol of byte 0x%02X (\"%.*s\" and \"%s\") is missing",
                             vocab_path, b, (int)len, s, s);
    }
    tok->sot_id = is_vocab_find(&tok->vocab, "<|startoftext|>", 15);
    tok->eot_id = is_vocab_find(&tok->vocab, "<|endoftext|>", 13);
    if (tok->sot_id < 0 || tok->eot_id < 0)
        return is_errorf(IS_E_FORMAT, "%s: the CLIP tokens <|startoftext|> and <|endoftext|> must be in the vocab",
                         vocab_path);
    return NULL;
}

/* ------------------------------------------------------------------ merges.txt */

static int is_field_space(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\v' || c == '\f'; }

/* One merge line "left right" (Python's merge.split()). */
static is_error *add_merge(is_tokenizer *tok, const char *path, size_t line_no, char *line, int32_t rank) {
    char *field[3] = {0};
    size_t len[3] = {0}, n_fields = 0;
    for (char *p = line; *p;) {
        while (is_field_space(*p)) p++;
        if (!*p) break;
        char *start = p;
        while (*p && !is_field_space(*p)) p++;
        if (n_fields == 3) break;
        field[n_fields] = start;
        len[n_fields++] = (size_t)(p - start);
    }
    if (n_fields != 2)
        return is_errorf(IS_E_FORMAT, "%s: line %zu: expected two tokens \"left right\", found %zu", path, line_no,
                         n_fields);
    int32_t left = is_vocab_find(&tok->vocab, field[0], len[0]);
    int32_t right = is_vocab_find(&tok->vocab, field[1], len[1]);
    char *joined = malloc(len[0] + len[1] + 1);
    if (!joined) return is_error_oom(path);
    memcpy(joined, field[0], len[0]);
    memcpy(joined + len[0], field[1], len[1]);
    joined[len[0] + len[1]] = 0;
    int32_t merged = is_vocab_find(&tok->vocab, joined, len[0] + len[1]);
    is_error *err = NULL;
    if (left < 0 || right < 0 || merged < 0) {
        const char *missing = left < 0 ? field[0] : right < 0 ? field[1] : joined;
        size_t mlen = left < 0 ? len[0] : right < 0 ? len[1] : len[0] + len[1];
        err = is_errorf(IS_E_FORMAT, "%s: line %zu: token \"%.*s\" is not in vocab.json", path, line_no, (int)mlen,
                        missing);
    } else {
        is_merge_table_put(&tok->merges, left, right, rank, merged);
    }
    free(joined);
    return err;
}

static is_error *load_merges(is_tokenizer *tok, const char *path) {
    char *text = NULL;
    size_t n = 0;
    IS_TRY(is_read_file(path, MAX_TOKENIZER_FILE_BYTES, &text, &n));
    is_error *err = NULL;
    /* Python: read().strip().split("\n"); line 0 is the header. */
    char *p = text;
    while (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n') p++;
    char *end = text + n;
    while (end > p && (end[-1] == ' ' || end[-1] == '\t' || end[-1] == '\r' || end[-1] == '\n')) end--;
    *end = 0;
    if (strncmp(p, "#version", 8) != 0) {
        err = is_errorf(IS_E_FORMAT, "%s: missing the \"#version: ...\" header line", path);
        goto done;
    }
    /* Sized by the lines present (a small tokenizer gets a small table), at most CLIP's merge count. */
    size_t lines = 0;
    for (const char *q = strchr(p, '\n'); q && lines < CLIP_MAX_MERGES; q = strchr(q + 1, '\n')) lines++;
    err = is_merge_table_init(&tok->merges, lines);
    p = strchr(p, '\n');
    for (int32_t rank = 0; !err && p && rank < CLIP_MAX_MERGES; rank++) {
        char *line = p + 1;
        p = strchr(line, '\n');
        if (p) *p = 0;
        err = add_merge(tok, path, (size_t)rank + 2, line, rank);
    }
done:
    free(text);
    return err;
}

/* ------------------------------------------------------------------ special tokens */

enum { SPECIAL_BOS, SPECIAL_EOS, SPECIAL_UNK, SPECIAL_PAD, N_SPECIAL };
static const char *const special_keys[N_SPECIAL] = {"bos_token", "eos_token", "unk_token", "pad_token"};
/* CLIPTokenizer.__init__ defaults. */
static const char *const special_defaults[N_SPECIAL] = {"<|startoftext|>", "<|endoftext|>", "<|endoftext|>",
                                                        "<|endoftext|>"};

/* A token value: "text" or {"content": "text", "lstrip": false, ...}. New string in *content. */
static is_error *parse_token_value(const cJSON *v, const char *path, const char *key, char **content) {
    const cJSON *text = v;
    if (cJSON_IsObject(v)) {
        text = cJSON_GetObjectItemCaseSensitive(v, "content");
        const char *flags[] = {"lstrip", "rstrip", "single_word"};
        for (int i = 0; i < 3; i++)
            if (cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(v, flags[i])))
                return is_errorf(IS_E_UNSUPPORTED, "%s: %s: \"%s\": true is not supported", path, key, flags[i]);
    }
    if (!cJSON_IsString(text) || !text->valuestring[0])
        return is_errorf(IS_E_FORMAT, "%s: %s must be a non-empty string or an object with a \"content\" string",
                         path, key);
    *content = strdup(text->valuestring);
    return *content ? NULL : is_error_oom(path);
}

static is_error *add_added_token(is_tokenizer *tok, const char *path, const char *key, const char *text) {
    for (size_t i = 0; i < tok->n_added; i++)
        if (!strcmp(tok->added[i].text, text)) return NULL;
    size_t len = strlen(text);
    int32_t id = is_vocab_find(&tok->vocab, text, len);
    if (id < 0)
        return is_errorf(IS_E_UNSUPPORTED, "%s: %s \"%s\" is not in vocab.json (new added tokens are not supported)",
                         path, key, text);
    is_added_token *grown = realloc(tok->added, (tok->n_added + 1) * sizeof *grown);
    if (!grown) return is_error_oom(path);
    tok->added = grown;
    char *copy = strdup(text);
    if (!copy) return is_error_oom(path);
    tok->added[tok->n_added++] = (is_added_token){copy, len, id};
    return NULL;
}

/* Reads one config file (if present) into special[] and the list of extra added tokens. */
static is_error *read_special_file(is_tokenizer *tok, const char *path, char *special[N_SPECIAL],
                                   const char *special_src[N_SPECIAL], int *found) {
    if (!is_file_exists(path)) return NULL;
    *found = 1;
    cJSON *root = NULL;
    IS_TRY(read_json(path, &root));
    is_error *err = NULL;
    if (!cJSON_IsObject(root)) err = is_errorf(IS_E_FORMAT, "%s: expected a JSON object", path);
    for (int k = 0; !err && k < N_SPECIAL; k++) {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(root, special_keys[k]);
        if (!v) continue;
        char *content = NULL;
        err = parse_token_value(v, path, special_keys[k], &content);
        if (err) break;
        free(special[k]);
        special[k] = content;
        special_src[k] = path;
    }
    /* Further added tokens: additional_special_tokens [..] and added_tokens_decoder {"id": {...}}. */
    const cJSON *extra = cJSON_GetObjectItemCaseSensitive(root, "additional_special_tokens");
    for (const cJSON *v = cJSON_IsArray(extra) ? extra->child : NULL; !err && v; v = v->next) {
        char *content = NULL;
        err = parse_token_value(v, path, "additional_special_tokens", &content);
        if (!err) err = add_added_token(tok, path, "additional_special_tokens", content);
        free(content);
    }
    const cJSON *decoder = cJSON_GetObjectItemCaseSensitive(root, "added_tokens_decoder");
    for (const cJSON *v = cJSON_IsObject(decoder) ? decoder->child : NULL; !err && v; v = v->next) {
        char *content = NULL;
        err = parse_token_value(v, path, "added_tokens_decoder", &content);
        if (!err) {
            char *stop = NULL;
            long id = strtol(v->string, &stop, 10);
            if (*stop || id != is_vocab_find(&tok->vocab, content, strlen(content)))
                err = is_errorf(IS_E_UNSUPPORTED, "%s: added_tokens_decoder: \"%s\" -> \"%s\" differs from vocab.json",
                                path, v->string, content);
        }
        if (!err) err = add_added_token(tok, path, "added_tokens_decoder", content);
        free(content);
    }
    cJSON_Delete(root);
    return err;
}

static is_error *load_special_tokens(is_tokenizer *tok, const char *dir) {
    char *config_path = is_path_join(dir, "tokenizer_config.json");
    char *map_path = is_path_join(dir, "special_tokens_map.json");
    char *special[N_SPECIAL] = {0};
    const char *special_src[N_SPECIAL] = {0};
    is_error *err = NULL;
    if (!config_path || !map_path) {
        err = is_error_oom(dir);
        goto done;
    }
    for (int k = 0; k < N_SPECIAL && !err; k++) {
        special[k] = strdup(special_defaults[k]);
        if (!special[k]) err = is_error_oom(dir);
    }
    /* special_tokens_map.json overrides tokenizer_config.json (as in from_pretrained). */
    int found = 0;
    if (!err) err = read_special_file(tok, config_path, special, special_src, &found);
    if (!err) err = read_special_file(tok, map_path, special, special_src, &found);
    if (!err && !found)
        err = is_errorf(IS_E_IO, "%s: neither special_tokens_map.json nor tokenizer_config.json exists", dir);
    int32_t *ids[N_SPECIAL] = {&tok->bos_id, &tok->eos_id, &tok->unk_id, &tok->pad_id};
    for (int k = 0; k < N_SPECIAL && !err; k++) {
        err = add_added_token(tok, special_src[k] ? special_src[k] : dir, special_keys[k], special[k]);
        *ids[k] = is_vocab_find(&tok->vocab, special[k], strlen(special[k]));
    }
done:
    for (int k = 0; k < N_SPECIAL; k++) free(special[k]);
    free(config_path);
    free(map_path);
    return err;
}

/* ------------------------------------------------------------------ public entry points */

void is_tokenizer_free(is_tokenizer *tok) {
    if (!tok) return;
    is_vocab_table_free(&tok->vocab);
    is_merge_table_free(&tok->merges);
    for (size_t i = 0; i < tok->n_added; i++) free(tok->added[i].text);
    free(tok->added);
    free(tok);
}

is_error *is_tokenizer_load(const char *dir, is_tokenizer **out) {
    if (!out) return is_errorf(IS_E_ARGUMENT, "is_tokenizer_load: out is NULL");
    *out = NULL;
    if (!dir || !*dir) return is_errorf(IS_E_ARGUMENT, "is_tokenizer_load: no tokenizer folder given");
    is_tokenizer *tok = calloc(1, sizeof *tok);
    char *vocab_path = is_path_join(dir, "vocab.json");
    char *merges_path = is_path_join(dir, "merges.txt");
    is_error *err = NULL;
    if (!tok || !vocab_path || !merges_path) err = is_error_oom(dir);
    if (!err) err = load_vocab(tok, vocab_path);
    if (!err) err = find_byte_symbols(tok, vocab_path);
    if (!err) err = load_merges(tok, merges_path);
    if (!err) err = load_special_tokens(tok, dir);
    free(vocab_path);
    free(merges_path);
    if (err) {
        is_tokenizer_free(tok);
        return is_error_wrap(err, "loading tokenizer %s", dir);
    }
    *out = tok;
    return NULL;
}

int32_t is_tokenizer_bos_id(const is_tokenizer *tok) { return tok ? tok->bos_id : -1; }
int32_t is_tokenizer_eos_id(const is_tokenizer *tok) { return tok ? tok->eos_id : -1; }
int32_t is_tokenizer_pad_id(const is_tokenizer *tok) { return tok ? tok->pad_id : -1; }
