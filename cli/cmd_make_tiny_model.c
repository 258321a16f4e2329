/* instantstyle make-tiny-model DIR: a small random-weight SDXL + IP-Adapter + ControlNet for smoke tests. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "args.h"
#include "commands.h"
#include "instantstyle.h"

static void usage(FILE *out) {
    fprintf(out,
            "usage: instantstyle make-tiny-model [--seed N] [--force] DIR\n\n"
            "Writes a tiny SDXL pipeline with random weights, an IP-Adapter and a ControlNet for it,\n"
            "in the same file layouts as the real releases, so the whole pipeline can run without\n"
            "downloads:\n"
            "  DIR/sdxl/        model_index.json, scheduler/, tokenizer/, tokenizer_2/ (byte-level\n"
            "                   vocabulary), text_encoder/, text_encoder_2/, unet/, vae/\n"
            "  DIR/ip-adapter/  ip-adapter_sdxl.safetensors (h94 layout), image_encoder/\n"
            "  DIR/controlnet/  config.json, diffusion_pytorch_model.safetensors (diffusers\n"
            "                   ControlNetModel; use with --controlnet DIR/controlnet)\n"
            "Images it generates are abstract: the weights are random. About 10 MB in all.\n\n"
            "options:\n"
            "  --seed N   seed of the random weights (default 0); the same seed writes the same files\n"
            "  --force    write into DIR even if it is not empty (overwrites the model files)\n"
            "  -h, --help show this help\n\n"
            "example:\n"
            "  instantstyle make-tiny-model /tmp/tiny\n");
}

int is_cmd_make_tiny_model(int argc, char **argv) {
    uint64_t seed = 0;
    int force = 0;
    const char *dir = NULL;
    is_arg_seen seen = {{NULL}, 0};
    is_arg_quoted q1, q2;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = NULL;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage(stdout);
            return 0;
        } else if (!strcmp(a, "--force")) {
            force = 1;
        } else if (!strcmp(a, "--seed")) {
            is_error *e = is_arg_once(&seen, a, NULL);
            if (!e) e = is_arg_value(argc, argv, &i, &v);
            if (!e) e = is_arg_u64(a, v, &seed);
            if (e) return is_cli_fail(e);
        } else if (a[0] == '-' && a[1]) {
            fprintf(stderr, "instantstyle make-tiny-model: unknown option %s\n\n", is_arg_quote(a, &q1));
            usage(stderr);
            return 2;
        } else if (dir) {
            fprintf(stderr, "instantstyle make-tiny-model: one DIR only (%s and %s given)\n\n", is_arg_quote(dir, &q1),
                    is_arg_quote(a, &q2));
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
    printf("wrote %s/sdxl, %s/ip-adapter and %s/controlnet (seed %llu)\n", dir, dir, dir, (unsigned long long)seed);
    return 0;
}
