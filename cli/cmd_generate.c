/* instantstyle generate: prompt + style image -> PNG. Everything that can be checked is checked
 * before any network loads (options, output paths, the style image), and a cancelled or failed run
 * leaves no file behind. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "commands.h"
#include "core/fileio.h"
#include "generate.h"

/* Whether path can take the output, by creating and removing its temporary file: fails now, not
 * after the whole generation, for a folder, a device, an empty name or a folder without write access. */
static is_error *probe_writable(const char *opt, const char *path) {
    is_atomic_file af;
    IS_TRY(is_error_wrap(is_atomic_open(&af, path), "%s", opt));
    is_atomic_abort(&af);
    return NULL;
}

static is_error *check_outputs(const is_gen_options *o) {
    if (strcmp(o->out, "-") != 0) IS_TRY(probe_writable("--out", o->out));
    else if (isatty(STDOUT_FILENO))
        return is_errorf(IS_E_ARGUMENT, "--out -: standard output is a terminal; redirect it to a file or a pipe");
    const char *dump = o->gp.dump_tensors;
    if (!dump) return NULL;
    if (!strcmp(dump, "-"))
        return is_errorf(IS_E_ARGUMENT, "--dump-tensors: standard output is not supported; give a file name");
    if (!strcmp(dump, o->out)) return is_errorf(IS_E_ARGUMENT, "--dump-tensors and --out both name %s", dump);
    return probe_writable("--dump-tensors", dump);
}

static is_error *write_stdout(const is_image_result *img, const is_pipeline *p, const is_generate_params *meta) {
    uint8_t *data = NULL;
    size_t size = 0;
    IS_TRY(is_encode_png(img, p, meta, &data, &size));
    int ok = fwrite(data, 1, size, stdout) == size;
    ok &= fflush(stdout) == 0;
    free(data);
    return ok ? NULL : is_errorf(IS_E_IO, "--out -: writing the PNG to standard output failed");
}

static is_error *write_output(const is_gen_options *o, const is_image_result *img, const is_pipeline *p) {
    /* The pixels went to the library in memory; the metadata still names the style image file. */
    is_generate_params meta = o->gp;
    meta.style_image = o->style_path;
    if (!strcmp(o->out, "-")) return write_stdout(img, p, &meta);
    return is_save_png(o->out, img, p, &meta);
}

static is_error *cancelled_now(void) {
    return is_gen_cancel_signal() ? is_errorf(IS_E_CANCELLED, "cancelled") : NULL;
}

/* The style image is decoded here, before any network loads, so a bad one fails at once. */
static is_error *generate(is_gen_options *o, is_image *style, is_pipeline **p, is_image_result *img) {
    IS_TRY(check_outputs(o));
    if (o->style_path) {
        IS_TRY(is_error_wrap(is_image_load(o->style_path, style), "--style-image"));
        o->gp.style_rgb = style;
    }
    IS_TRY(cancelled_now());
    IS_TRY(is_pipeline_load(&o->paths, p));
    IS_TRY(is_generate(*p, &o->gp, img));
    IS_TRY(cancelled_now()); /* a signal after the last check inside the library */
    return write_output(o, img, *p);
}

/* 128 + the signal, as a shell reports a program ended by it (130 for Ctrl-C). */
static int fail(is_error *e) {
    if (is_error_code(e) != IS_E_CANCELLED) return is_cli_fail(e);
    is_error_free(e);
    fprintf(stderr, "instantstyle: cancelled\n");
    int sig = is_gen_cancel_signal();
    return 128 + (sig ? sig : 2);
}

int is_cmd_generate(int argc, char **argv) {
    is_gen_options o;
    is_gen_options_init(&o);
    is_error *e = is_gen_parse(argc, argv, &o);
    if (o.help) {
        fputs(is_gen_help_text, stdout);
        is_error_free(e);
        is_gen_options_free(&o);
        return 0;
    }
    if (e) {
        is_gen_options_free(&o);
        return is_cli_fail(e);
    }
    is_gen_cancel_install();
    is_gen_ui ui = {o.quiet, isatty(STDERR_FILENO), 0.0};
    o.gp.log = is_gen_ui_log;
    o.gp.progress = is_gen_ui_progress;
    o.gp.cancel = is_gen_cancel_requested;
    o.gp.user = &ui;
    is_image style = {0, 0, NULL};
    is_pipeline *p = NULL;
    is_image_result img;
    memset(&img, 0, sizeof img);
    e = generate(&o, &style, &p, &img);
    is_image_result_free(&img);
    is_pipeline_free(p);
    is_image_free(&style);
    is_gen_options_free(&o);
    if (e) return fail(e);
    if (!o.quiet) fprintf(stderr, "wrote %s\n", strcmp(o.out, "-") ? o.out : "the PNG to standard output");
    return 0;
}
