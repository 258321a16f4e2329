/* instantstyle command-line program: a thin layer over the library. */
#include <stdio.h>
#include <string.h>

#include "args.h"
#include "commands.h"
#include "instantstyle.h"

static const is_cli_command commands[] = {
    {"make-tiny-model", "write a small random-weight SDXL + IP-Adapter for smoke tests", is_cmd_make_tiny_model},
    {"tokenize", "print the CLIP token ids of a text", is_cmd_tokenize},
    {"list-blocks", "list the UNet's cross-attention layers and their IP-Adapter scales", is_cmd_list_blocks},
    {"generate", "make an image from a prompt, in the style of an image", is_cmd_generate},
    {"canny", "write the Canny edge map of an image (a ControlNet control image)", is_cmd_canny},
    {"serve", "HTTP server: A1111-compatible API, job API and a web page", is_cmd_serve},
    {NULL, NULL, NULL},
};

/* A library message may quote user input at length (a pasted --style-blocks dictionary): the
 * terminal gets at most this much of it. */
#define IS_CLI_MESSAGE_MAX 1024

int is_cli_fail(struct is_error *err) {
    const char *msg = is_error_message(err);
    size_t n = strlen(msg);
    if (n > IS_CLI_MESSAGE_MAX) {
        n = IS_CLI_MESSAGE_MAX;
        while (n > 0 && ((unsigned char)msg[n] & 0xC0) == 0x80) n--; /* not inside a character */
    }
    fprintf(stderr, "instantstyle: error: %.*s%s\n", (int)n, msg, msg[n] ? "..." : "");
    is_error_free(err);
    return 1;
}

int is_cli_refuse(struct is_error *err, int usage_error, const char *command, void (*usage)(FILE *out)) {
    if (!usage_error) return is_cli_fail(err);
    fprintf(stderr, "instantstyle %s: %s\n\n", command, is_error_message(err));
    is_error_free(err);
    usage(stderr);
    return 2;
}

static void usage(FILE *out) {
    fprintf(out,
            "instantstyle %s: InstantStyle (SDXL + IP-Adapter) style-preserving text-to-image on the CPU\n\n"
            "usage: instantstyle COMMAND [OPTIONS]\n\ncommands:\n",
            IS_VERSION_STRING);
    for (const is_cli_command *c = commands; c->name; c++) fprintf(out, "  %-16s %s\n", c->name, c->summary);
    fprintf(out, "\n'instantstyle COMMAND --help' describes each command's options.\n");
}

int main(int argc, char **argv) {
    is_cli_fix_blas_core(argv);
    if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
        usage(stdout);
        return argc < 2 ? 2 : 0;
    }
    if (!strcmp(argv[1], "--version")) {
        printf("instantstyle %s\n", IS_VERSION_STRING);
        return 0;
    }
    for (const is_cli_command *c = commands; c->name; c++)
        if (!strcmp(argv[1], c->name)) return c->run(argc - 1, argv + 1);
    is_arg_quoted q;
    fprintf(stderr, "instantstyle: unknown command %s\n\n", is_arg_quote(argv[1], &q));
    usage(stderr);
    return 2;
}
