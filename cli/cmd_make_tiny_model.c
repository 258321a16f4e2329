/* instantstyle make-tiny-model DIR: a small random-weight SDXL + IP-Adapter + ControlNet for smoke tests. */
#include <stdint.h>
#include <stdio.h>

#include "command_args.h"
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
    is_make_tiny_model_options o;
    is_error *err = is_make_tiny_model_parse(argc, argv, &o);
    if (o.help) {
        usage(stdout);
        return 0;
    }
    if (err) return is_cli_refuse(err, o.usage, "make-tiny-model", usage);
    const char *dir = o.dir;
    uint64_t seed = o.seed;

    err = is_make_tiny_model(dir, seed, o.force);
    if (err) return is_cli_fail(err);
    printf("wrote %s/sdxl, %s/ip-adapter and %s/controlnet (seed %llu)\n", dir, dir, dir, (unsigned long long)seed);
    return 0;
}
