/* `instantstyle generate` options: the input, split at NUL bytes, is the argument vector after
 * "generate" (a trailing NUL ends the last argument; an input without one still ends it). It is
 * parsed by is_gen_parse (cli/generate_args.c), the generate command's option parser; nothing is run.
 * Options it accepts are then formatted as the PNG "parameters" text is (is_format_parameters, with a
 * pipeline record naming the parsed paths and the golden scheduler config; no file is opened but that
 * config) and the --style-blocks spec is parsed against SDXL's modules, as generate would before any
 * work. The other commands (tokenize, list-blocks, make-tiny-model) parse their options inside the
 * command itself, which then loads models or writes files: they are not fuzzed here. */
#include <stdlib.h>
#include <string.h>

#include "fuzz_common.h"
#include "generate.h"
#include "instantstyle.h"
#include "pipeline/pipeline_internal.h"

#define MAX_ARGS 256

static const char *scheduler_config;

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc;
    (void)argv;
    scheduler_config = fz_golden("models/tiny-sdxl/scheduler/scheduler_config.json");
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char *buf = fz_cstr(data, size);
    char *argv[MAX_ARGS + 2];
    int argc = 0;
    argv[argc++] = "generate";
    for (size_t i = 0; i < size && argc < MAX_ARGS;) {
        argv[argc++] = buf + i;
        i += strlen(buf + i) + 1;
    }
    argv[argc] = NULL;

    is_gen_options o;
    is_gen_options_init(&o);
    /* --threads N and --max-image-pixels N set process-wide values: restored for the next input */
    int threads = is_get_threads();
    uint64_t max_pixels = is_get_max_image_pixels();
    is_error *err = is_gen_parse(argc, argv, &o);
    is_set_threads(threads);
    is_set_max_image_pixels(max_pixels);
    if (!fz_error(err) && !o.help) {
        if (!o.paths.model_dir || !o.gp.prompt) fz_fail("parse succeeded without --model and --prompt");
        struct is_pipeline p;
        memset(&p, 0, sizeof p);
        p.model_dir = (char *)o.paths.model_dir;
        p.ip_adapter = (char *)o.paths.ip_adapter;
        p.image_encoder_dir = (char *)o.paths.image_encoder_dir;
        p.scheduler_config = (char *)scheduler_config;
        p.default_width = p.default_height = 1024;
        int w = o.gp.width ? o.gp.width : 1024, h = o.gp.height ? o.gp.height : 1024;
        char *text = is_format_parameters(&p, &o.gp, w, h, o.gp.precision);
        if (!text) fz_fail("is_format_parameters returned NULL");
        free(text);
        float scales[FZ_SDXL_MODULES];
        fz_error(is_block_scales_parse(o.gp.style_blocks, fz_sdxl_modules(), FZ_SDXL_MODULES, scales));
    }
    is_gen_options_free(&o); /* the --lora paths */
    free(buf);
    return 0;
}
