/* instantstyle tokenize: print the CLIP token ids of a text (as SDXL's text encoders receive them). */
#include <stdio.h>
#include <stdlib.h>

#include "command_args.h"
#include "commands.h"
#include "core/error.h"
#include "core/fileio.h"
#include "instantstyle.h"

static void usage(FILE *out) {
    fprintf(out,
            "usage: instantstyle tokenize --model DIR [--tokenizer 1|2] [--pad] [--] TEXT\n\n"
            "Prints the CLIP token ids of TEXT on one line, separated by spaces, beginning with the\n"
            "start token (49406) and ending with the end token (49407), exactly as transformers'\n"
            "CLIPTokenizer (without ftfy) gives them to SDXL's text encoders.\n\n"
            "options:\n"
            "  --model DIR      SDXL pipeline folder holding tokenizer/ and tokenizer_2/\n"
            "  --tokenizer 1|2  1: DIR/tokenizer (text_encoder, default); 2: DIR/tokenizer_2\n"
            "                   (text_encoder_2, whose pad token '!' is always its own token 0)\n"
            "  --pad            print exactly %d ids: truncated (keeping the end token) or padded with\n"
            "                   the tokenizer's pad token, as the text encoder receives them; the number\n"
            "                   of cut tokens goes to stderr\n"
            "  --               end of options (for a TEXT that starts with '-')\n"
            "  -h, --help       show this help\n\n"
            "example:\n"
            "  instantstyle tokenize --model sdxl --tokenizer 2 \"a photo of a cat\"\n",
            IS_CLIP_MAX_LENGTH);
}

static void print_ids(const int32_t *ids, size_t n) {
    for (size_t i = 0; i < n; i++) printf(i ? " %d" : "%d", (int)ids[i]);
    printf("\n");
}

int is_cmd_tokenize(int argc, char **argv) {
    is_tokenize_options o;
    is_error *err = is_tokenize_parse(argc, argv, &o);
    if (o.help) {
        usage(stdout);
        return 0;
    }
    if (err) return is_cli_refuse(err, o.usage, "tokenize", usage);
    const char *text = o.text;
    int which = o.tokenizer, pad = o.pad;

    char *dir = is_path_join(o.model, which == 1 ? "tokenizer" : "tokenizer_2");
    if (!dir) return is_cli_fail(is_errorf(IS_E_NOMEM, "out of memory"));
    is_tokenizer *tok = NULL;
    err = is_tokenizer_load(dir, &tok);
    free(dir);
    if (err) return is_cli_fail(err);
    if (pad) {
        int32_t ids[IS_CLIP_MAX_LENGTH];
        int cut = 0;
        err = is_tokenizer_encode_padded(tok, text, IS_CLIP_MAX_LENGTH, ids, &cut);
        if (!err) {
            print_ids(ids, IS_CLIP_MAX_LENGTH);
            if (cut) fprintf(stderr, "instantstyle tokenize: %d tokens truncated\n", cut);
        }
    } else {
        int32_t *ids = NULL;
        size_t n = 0;
        err = is_tokenizer_encode(tok, text, &ids, &n);
        if (!err) print_ids(ids, n);
        free(ids);
    }
    is_tokenizer_free(tok);
    return err ? is_cli_fail(err) : 0;
}
