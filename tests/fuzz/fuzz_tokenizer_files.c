/* A tokenizer folder: the input is "vocab.json" FZ_SEP "merges.txt" [FZ_SEP "special_tokens_map.json"
 * [FZ_SEP "tokenizer_config.json"]], written into an otherwise empty folder (a part not in the input is a
 * missing file) and loaded with is_tokenizer_load. A tokenizer it accepts must encode a few fixed texts
 * (plain words, its special tokens, punctuation, non-ASCII) to [BOS, ..., EOS] with non-negative ids, and
 * pad them to 77 ids. */
#include <stdlib.h>
#include <string.h>

#include "fuzz_common.h"
#include "instantstyle.h"

static const char *dir, *files[4];

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc;
    (void)argv;
    dir = fz_path("tokenizer");
    files[0] = fz_path("tokenizer/vocab.json");
    files[1] = fz_path("tokenizer/merges.txt");
    files[2] = fz_path("tokenizer/special_tokens_map.json");
    files[3] = fz_path("tokenizer/tokenizer_config.json");
    fz_mkdirs(dir);
    return 0;
}

static void encode(const is_tokenizer *tok, const char *text) {
    int32_t *ids = NULL, pad[IS_CLIP_MAX_LENGTH];
    size_t n = 0;
    if (fz_error(is_tokenizer_encode(tok, text, &ids, &n))) fz_fail("valid UTF-8 '%s' refused", text);
    if (n < 2 || ids[0] != is_tokenizer_bos_id(tok) || ids[n - 1] != is_tokenizer_eos_id(tok))
        fz_fail("'%s': %zu ids, not [BOS, ..., EOS]", text, n);
    for (size_t i = 0; i < n; i++)
        if (ids[i] < 0) fz_fail("'%s': negative id %d", text, (int)ids[i]);
    free(ids);
    int cut = -1;
    if (fz_error(is_tokenizer_encode_padded(tok, text, IS_CLIP_MAX_LENGTH, pad, &cut)) || cut < 0)
        fz_fail("'%s': encode_padded failed after encode succeeded", text);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    fz_part part[4];
    int n = fz_split(data, size, part, 4);
    for (int i = 0; i < 4; i++) {
        if (i < n) fz_write(files[i], part[i].p, part[i].n);
        else fz_remove(files[i]);
    }
    is_tokenizer *tok = NULL;
    if (fz_error(is_tokenizer_load(dir, &tok))) return 0;
    static const char *const texts[] = {
        "a photo of a cat", "", "<|startoftext|>cat<|endoftext|> !!", "An astronaut riding a green horse, 4k",
        "caf\xc3\xa9 \xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e  <|endoftext|>x", "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~", "it's 'quoted'",
    };
    for (size_t i = 0; i < sizeof texts / sizeof *texts; i++) encode(tok, texts[i]);
    is_tokenizer_free(tok);
    return 0;
}
