/* instantstyle tokenize: print the CLIP token ids of a text (as SDXL's text encoders receive them). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "args.h"
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

/* what, then arg (when not NULL) quoted and capped (see is_arg_quote), then why. */
static int bad_usage(const char *what, const char *arg, const char *why) {
    is_arg_quoted q;
    fprintf(stderr, "instantstyle tokenize: %s%s%s%s\n\n", what, arg ? " " : "", arg ? is_arg_quote(arg, &q) : "", why);
    usage(stderr);
    return 2;
}

static void print_ids(const int32_t *ids, size_t n) {
    for (size_t i = 0; i < n; i++) printf(i ? " %d" : "%d", (int)ids[i]);
    printf("\n");
}

int is_cmd_tokenize(int argc, char **argv) {
    const char *model = NULL, *text = NULL;
    int which = 1, pad = 0, options_done = 0;
    is_arg_seen seen = {{NULL}, 0};
    for (int i = 1; i < argc; i++) {
        is_arg_quoted q;
        const char *a = argv[i];
        int takes_value = !options_done && (!strcmp(a, "--model") || !strcmp(a, "--tokenizer"));
        if (takes_value) {
            is_error *e = is_arg_once(&seen, a, NULL);
            if (!e && i + 1 >= argc) e = is_errorf(IS_E_ARGUMENT, "%s needs a value", a);
            if (e) return is_cli_fail(e);
        }
        if (!options_done && (!strcmp(a, "-h") || !strcmp(a, "--help"))) {
            usage(stdout);
            return 0;
        } else if (takes_value && !strcmp(a, "--model")) {
            model = argv[++i];
        } else if (takes_value) {
            const char *v = argv[++i];
            if (strcmp(v, "1") && strcmp(v, "2"))
                return is_cli_fail(is_errorf(IS_E_ARGUMENT, "--tokenizer: %s must be 1 or 2", is_arg_quote(v, &q)));
            which = v[0] - '0';
        } else if (!options_done && !strcmp(a, "--pad")) {
            pad = 1;
        } else if (!options_done && !strcmp(a, "--")) {
            options_done = 1;
        } else if (!options_done && a[0] == '-' && a[1]) {
            return bad_usage("unknown option", a, " (put -- before a TEXT that starts with '-')");
        } else if (text) {
            return bad_usage("one TEXT only; quote it (extra argument", a, ")");
        } else {
            text = a;
        }
    }
    if (!model) return bad_usage("--model DIR is required", NULL, "");
    if (!text) return bad_usage("TEXT is missing", NULL, "");

    char *dir = is_path_join(model, which == 1 ? "tokenizer" : "tokenizer_2");
    if (!dir) return is_cli_fail(is_errorf(IS_E_NOMEM, "out of memory"));
    is_tokenizer *tok = NULL;
    is_error *err = is_tokenizer_load(dir, &tok);
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
