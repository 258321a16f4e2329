/* The program's argument vectors: the input, split at NUL bytes, is what follows "instantstyle" (a
 * trailing NUL ends the last argument; an input without one still ends it). When the first argument
 * names a command other than generate (tokenize, list-blocks, canny, make-tiny-model, serve) the rest
 * goes to that command's option parser (cli/command_args.c); otherwise the whole input is generate's
 * arguments (after an optional "generate"), parsed by is_gen_parse (cli/generate_args.c). Only the
 * parsers run: no command loads a model or writes a file.
 *
 * Each parser either refuses with a bounded message or gives options that hold what the command
 * relies on: the required arguments are there, numbers are in their documented ranges. Accepted
 * generate options are also formatted as the PNG "parameters" text is (is_format_parameters, with a
 * pipeline record naming the parsed paths and the golden scheduler config; no file is opened but that
 * config), and every --style-blocks spec (generate's, list-blocks') is parsed against SDXL's modules
 * as the command would before any work. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_common.h"
#include "command_args.h"
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

static void check_style_blocks(const char *spec) {
    float scales[FZ_SDXL_MODULES];
    fz_error(is_block_scales_parse(spec, fz_sdxl_modules(), FZ_SDXL_MODULES, scales));
}

static void generate(int argc, char **argv) {
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
        check_style_blocks(o.gp.style_blocks);
    }
    is_gen_options_free(&o); /* the --lora paths */
}

/* A parser's result: an error (bounded message; `usage` only on errors) or options to check. */
static int refused(is_error *err, int help, int usage) {
    int bad = fz_error(err);
    if (usage && !bad) fz_fail("usage set without an error");
    if (help && bad) fz_fail("--help with an error");
    return bad || help;
}

static void tokenize(int argc, char **argv) {
    is_tokenize_options o;
    if (refused(is_tokenize_parse(argc, argv, &o), o.help, o.usage)) return;
    if (!o.model || !o.text || (o.tokenizer != 1 && o.tokenizer != 2) || (o.pad != 0 && o.pad != 1))
        fz_fail("tokenize options: model %p, text %p, tokenizer %d, pad %d", (void *)o.model, (void *)o.text,
                o.tokenizer, o.pad);
}

static void list_blocks(int argc, char **argv) {
    is_list_blocks_options o;
    if (refused(is_list_blocks_parse(argc, argv, &o), o.help, o.usage)) return;
    if (!o.model || !o.style_blocks || !isfinite(o.ip_scale)) fz_fail("list-blocks options: scale %g", o.ip_scale);
    check_style_blocks(o.style_blocks);
}

static void canny(int argc, char **argv) {
    is_canny_options o;
    if (refused(is_canny_parse(argc, argv, &o), o.help, o.usage)) return;
    if (!o.in || !o.out || !isfinite(o.low) || !isfinite(o.high)) fz_fail("canny options: low %g, high %g", o.low, o.high);
}

static void make_tiny_model(int argc, char **argv) {
    is_make_tiny_model_options o;
    if (refused(is_make_tiny_model_parse(argc, argv, &o), o.help, o.usage)) return;
    if (!o.dir || (o.force != 0 && o.force != 1)) fz_fail("make-tiny-model options: force %d", o.force);
}

static void serve(int argc, char **argv) {
    is_serve_options o;
    memset(&o, 0, sizeof o); /* srv_config_init is the HTTP layer's; the parser reads none of its defaults */
    is_pipeline_params_init(&o.server.pipeline);
    if (refused(is_serve_parse(argc, argv, &o), o.help, 0)) return;
    const srv_config *c = &o.server;
    if (!c->pipeline.model_dir || !c->model_name || c->port < 0 || c->port > 65535 || c->max_body < (1u << 20) ||
        c->max_body > ((size_t)4096 << 20) || o.max_image_pixels < 4096 || (c->api_auth && !strchr(c->api_auth, ':')))
        fz_fail("serve options: port %d, body %zu, pixels %llu", c->port, c->max_body,
                (unsigned long long)o.max_image_pixels);
}

static const struct {
    const char *name;
    void (*parse)(int argc, char **argv);
} commands[] = {
    {"generate", generate}, {"tokenize", tokenize}, {"list-blocks", list_blocks},
    {"canny", canny},       {"make-tiny-model", make_tiny_model}, {"serve", serve},
};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char *buf = fz_cstr(data, size);
    /* argv[0] is the command's name: the input's first argument when it names one, else "generate" */
    char *argv[MAX_ARGS + 2];
    int argc = 0;
    argv[argc++] = "generate";
    for (size_t i = 0; i < size && argc < MAX_ARGS;) {
        argv[argc++] = buf + i;
        i += strlen(buf + i) + 1;
    }
    argv[argc] = NULL;
    void (*parse)(int, char **) = generate;
    int first = 0;
    for (size_t k = 0; argc > 1 && k < sizeof commands / sizeof commands[0]; k++)
        if (!strcmp(argv[1], commands[k].name)) parse = commands[k].parse, first = 1;
    parse(argc - first, argv + first);
    free(buf);
    return 0;
}
