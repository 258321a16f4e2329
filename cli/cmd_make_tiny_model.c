/* instantstyle make-tiny-model DIR: a small random-weight SDXL + IP-Adapter for smoke tests. */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "commands.h"
#include "instantstyle.h"

static void usage(FILE *out) {
    fprintf(out,
            "usage: instantstyle make-tiny-model [--seed N] [--force] DIR\n\n"
            "Writes a tiny SDXL pipeline with random weights and an IP-Adapter for it, in the same\n"
            "file layouts as the real releases, so the whole pipeline can run without downloads:\n"
            "  DIR/sdxl/        model_index.json, scheduler/, tokenizer/, tokenizer_2/ (byte-level\n"
            "                   vocabulary), text_encoder/, text_encoder_2/, unet/, vae/\n"
            "  DIR/ip-adapter/  ip-adapter_sdxl.safetensors (h94 layout), image_encoder/\n"
            "Images it generates are abstract: the weights are random. About 10 MB in all.\n\n"
            "options:\n"
            "  --seed N   seed of the random weights (default 0); the same seed writes the same files\n"
            "  --force    write into DIR even if it is not empty (overwrites the model files)\n"
            "  -h, --help show this help\n\n"
            "example:\n"
            "  instantstyle make-tiny-model /tmp/tiny\n");
}

/* A whole-string non-negative decimal; 0 on success. */
static int parse_seed(const char *s, uint64_t *out) {
    char *end = NULL;
    errno = 0;
    if (*s < '0' || *s > '9') return -1;
    unsigned long long v = strtoull(s, &end, 10);
    if (*end || errno) return -1;
    *out = (uint64_t)v;
    return 0;
}

int is_cmd_make_tiny_model(int argc, char **argv) {
    uint64_t seed = 0;
    int force = 0;
    const char *dir = NULL;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = NULL;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage(stdout);
            return 0;
        } else if (!strcmp(a, "--force")) {
            force = 1;
        } else if (!strcmp(a, "--seed")) {
            v = i + 1 < argc ? argv[++i] : NULL;
            if (!v || parse_seed(v, &seed)) {
                fprintf(stderr, "instantstyle make-tiny-model: --seed needs a non-negative integer%s%s%s\n",
                        v ? " (got '" : "", v ? v : "", v ? "')" : "");
                return 2;
            }
        } else if (a[0] == '-' && a[1]) {
            fprintf(stderr, "instantstyle make-tiny-model: unknown option '%s'\n\n", a);
            usage(stderr);
            return 2;
        } else if (dir) {
            fprintf(stderr, "instantstyle make-tiny-model: one DIR only ('%s' and '%s' given)\n\n", dir, a);
            usage(stderr);
            return 2;
        } else {
            dir = a;
        }
    }
    if (!dir) {
        usage(stderr);
        return 2;
    }
    is_error *err = is_make_tiny_model(dir, seed, force);
    if (err) return is_cli_fail(err);
    printf("wrote %s/sdxl and %s/ip-adapter (seed %llu)\n", dir, dir, (unsigned long long)seed);
    return 0;
}
