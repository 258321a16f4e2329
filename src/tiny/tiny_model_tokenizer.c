/* The tiny model's tokenizers: CLIPTokenizer files with a byte-level vocabulary and no merges.
 * The vocabulary is laid out like CLIP's: the 256 byte symbols of GPT-2's byte-to-unicode map,
 * the same with "</w>" (word end), then <|startoftext|> and <|endoftext|> last, so EOS has the
 * largest id (CLIP's pooling takes the argmax id). With no merges every word encodes as its bytes. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/fileio.h"
#include "tiny/tiny_model.h"

#define N_BYTES 256

int tm_tokenizer_vocab_size(void) { return 2 * N_BYTES + 2; }

static int printable(int b) { return (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF); }

/* GPT-2's bytes_to_unicode order: printable bytes map to themselves (in byte order), the rest
 * to code points 256, 257, ... in byte order, listed after them. Fills code[i] for vocab id i. */
static void byte_symbols(int code[N_BYTES]) {
    int n = 0, extra = 0;
    for (int b = 0; b < N_BYTES; b++)
        if (printable(b)) code[n++] = b;
    for (int b = 0; b < N_BYTES; b++)
        if (!printable(b)) code[n++] = N_BYTES + extra++;
}

/* UTF-8 of a code point below 0x800 (all byte symbols are). */
static void utf8(int cp, char *out) {
    if (cp < 0x80) {
        out[0] = (char)cp;
        out[1] = '\0';
    } else {
        out[0] = (char)(0xC0 | (cp >> 6));
        out[1] = (char)(0x80 | (cp & 0x3F));
        out[2] = '\0';
    }
}

static is_error *vocab(const char *dir) {
    int code[N_BYTES];
    byte_symbols(code);
    tm_json j = tm_json_new();
    char sym[8], word_end[16];
    for (int i = 0; i < N_BYTES; i++) {
        utf8(code[i], sym);
        tm_json_num(&j, sym, i);
    }
    for (int i = 0; i < N_BYTES; i++) {
        utf8(code[i], sym);
        snprintf(word_end, sizeof word_end, "%s</w>", sym);
        tm_json_num(&j, word_end, N_BYTES + i);
    }
    tm_json_num(&j, "<|startoftext|>", 2 * N_BYTES);
    tm_json_num(&j, "<|endoftext|>", 2 * N_BYTES + 1);
    return tm_json_write(&j, dir, "vocab.json");
}

/* {"content": text, "lstrip": false, "normalized": true, "rstrip": false, "single_word": false},
 * with "__type": "AddedToken" first in tokenizer_config.json. */
static tm_json added_token(const char *text, int typed) {
    tm_json t = tm_json_new();
    if (typed) tm_json_str(&t, "__type", "AddedToken");
    tm_json_str(&t, "content", text);
    tm_json_bool(&t, "lstrip", 0);
    tm_json_bool(&t, "normalized", 1);
    tm_json_bool(&t, "rstrip", 0);
    tm_json_bool(&t, "single_word", 0);
    return t;
}

static is_error *special_tokens_map(const char *dir, const char *pad_token) {
    tm_json j = tm_json_new();
    tm_json_add(&j, "bos_token", added_token("<|startoftext|>", 0));
    tm_json_add(&j, "eos_token", added_token("<|endoftext|>", 0));
    tm_json_str(&j, "pad_token", pad_token);
    tm_json_add(&j, "unk_token", added_token("<|endoftext|>", 0));
    return tm_json_write(&j, dir, "special_tokens_map.json");
}

static is_error *tokenizer_config(const char *dir, const char *pad_token, int model_max_length) {
    tm_json j = tm_json_new();
    tm_json_bool(&j, "add_prefix_space", 0);
    tm_json_add(&j, "bos_token", added_token("<|startoftext|>", 1));
    tm_json_bool(&j, "clean_up_tokenization_spaces", 1);
    tm_json_bool(&j, "do_lower_case", 1);
    tm_json_add(&j, "eos_token", added_token("<|endoftext|>", 1));
    tm_json_str(&j, "errors", "replace");
    tm_json_num(&j, "model_max_length", model_max_length);
    tm_json_str(&j, "pad_token", pad_token);
    tm_json_str(&j, "tokenizer_class", "CLIPTokenizer");
    tm_json_add(&j, "unk_token", added_token("<|endoftext|>", 1));
    return tm_json_write(&j, dir, "tokenizer_config.json");
}

is_error *tm_write_tokenizer(const char *dir, const char *pad_token, int model_max_length) {
    IS_TRY(vocab(dir));
    char *merges = is_path_join(dir, "merges.txt");
    if (!merges) return is_error_oom("merges.txt path");
    static const char header[] = "#version: 0.2\n";
    is_error *err = is_write_file_atomic(merges, header, strlen(header));
    free(merges);
    IS_TRY(err);
    IS_TRY(special_tokens_map(dir, pad_token));
    return tokenizer_config(dir, pad_token, model_max_length);
}
