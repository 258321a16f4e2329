/* Option parsers of tokenize, list-blocks, canny, make-tiny-model and serve (command_args.h). */
#include "command_args.h"

#include <string.h>

#include "args.h"
#include "instantstyle.h"

/* A misuse of the command line: the command prints its usage after the message. */
#define USAGE_ERROR(o, ...) ((o)->usage = 1, is_errorf(IS_E_ARGUMENT, __VA_ARGS__))

static int is_help(const char *a) { return !strcmp(a, "-h") || !strcmp(a, "--help"); }
static int is_option(const char *a) { return a[0] == '-' && a[1]; } /* "-" alone is a file or text */

is_error *is_tokenize_parse(int argc, char **argv, is_tokenize_options *o) {
    memset(o, 0, sizeof *o);
    o->tokenizer = 1;
    int options_done = 0;
    is_arg_seen seen = {{NULL}, 0};
    for (int i = 1; i < argc; i++) {
        is_arg_quoted q;
        const char *a = argv[i];
        if (!options_done && is_help(a)) {
            o->help = 1;
            return NULL;
        }
        if (!options_done && (!strcmp(a, "--model") || !strcmp(a, "--tokenizer"))) {
            const char *v = NULL;
            IS_TRY(is_arg_once(&seen, a, NULL));
            IS_TRY(is_arg_value(argc, argv, &i, &v));
            if (!strcmp(a, "--model")) {
                o->model = v;
            } else {
                if (strcmp(v, "1") && strcmp(v, "2"))
                    return is_errorf(IS_E_ARGUMENT, "--tokenizer: %s must be 1 or 2", is_arg_quote(v, &q));
                o->tokenizer = v[0] - '0';
            }
        } else if (!options_done && !strcmp(a, "--pad")) {
            o->pad = 1;
        } else if (!options_done && !strcmp(a, "--")) {
            options_done = 1;
        } else if (!options_done && is_option(a)) {
            return USAGE_ERROR(o, "unknown option %s (put -- before a TEXT that starts with '-')", is_arg_quote(a, &q));
        } else if (o->text) {
            return USAGE_ERROR(o, "one TEXT only; quote it (extra argument %s)", is_arg_quote(a, &q));
        } else {
            o->text = a;
        }
    }
    if (!o->model) return USAGE_ERROR(o, "--model DIR is required");
    if (!o->text) return USAGE_ERROR(o, "TEXT is missing");
    return NULL;
}

is_error *is_list_blocks_parse(int argc, char **argv, is_list_blocks_options *o) {
    memset(o, 0, sizeof *o);
    o->style_blocks = "style";
    o->ip_scale = 1.0f;
    is_arg_seen seen = {{NULL}, 0};
    for (int i = 1; i < argc; i++) {
        is_arg_quoted q;
        const char *a = argv[i], *v = NULL;
        if (is_help(a)) {
            o->help = 1;
            return NULL;
        }
        int known = !strcmp(a, "--model") || !strcmp(a, "--ip-adapter") || !strcmp(a, "--style-blocks") ||
                    !strcmp(a, "--ip-scale");
        if (!known) return USAGE_ERROR(o, "unknown option %s", is_arg_quote(a, &q));
        IS_TRY(is_arg_once(&seen, a, NULL));
        if (i + 1 >= argc) return USAGE_ERROR(o, "missing value for %s", is_arg_quote(a, &q));
        v = argv[++i];
        if (!strcmp(a, "--model")) o->model = v;
        else if (!strcmp(a, "--ip-adapter")) o->ip_adapter = v;
        else if (!strcmp(a, "--style-blocks")) o->style_blocks = v;
        else IS_TRY(is_arg_float(a, v, &o->ip_scale));
    }
    if (!o->model) return USAGE_ERROR(o, "--model is required");
    return NULL;
}

is_error *is_canny_parse(int argc, char **argv, is_canny_options *o) {
    memset(o, 0, sizeof *o);
    o->low = 50;
    o->high = 200;
    int options_done = 0;
    is_arg_seen seen = {{NULL}, 0};
    for (int i = 1; i < argc; i++) {
        is_arg_quoted q;
        const char *a = argv[i], *v = NULL;
        if (!options_done && is_help(a)) {
            o->help = 1;
            return NULL;
        } else if (!options_done && (!strcmp(a, "--low") || !strcmp(a, "--high"))) {
            IS_TRY(is_arg_once(&seen, a, NULL));
            IS_TRY(is_arg_value(argc, argv, &i, &v));
            /* in double, as cv2.Canny takes it: as a float 199.99999999 would be 200, which floors differently */
            IS_TRY(is_arg_double(a, v, !strcmp(a, "--low") ? &o->low : &o->high));
        } else if (!options_done && !strcmp(a, "--")) {
            options_done = 1;
        } else if (!options_done && is_option(a)) {
            return USAGE_ERROR(o, "unknown option %s", is_arg_quote(a, &q));
        } else if (o->out) {
            return USAGE_ERROR(o, "IN and OUT only; unexpected argument %s", is_arg_quote(a, &q));
        } else {
            *(o->in ? &o->out : &o->in) = a;
        }
    }
    if (!o->out) return USAGE_ERROR(o, o->in ? "OUT is missing" : "IN and OUT are missing");
    return NULL;
}

is_error *is_make_tiny_model_parse(int argc, char **argv, is_make_tiny_model_options *o) {
    memset(o, 0, sizeof *o);
    is_arg_seen seen = {{NULL}, 0};
    for (int i = 1; i < argc; i++) {
        is_arg_quoted q1, q2;
        const char *a = argv[i], *v = NULL;
        if (is_help(a)) {
            o->help = 1;
            return NULL;
        } else if (!strcmp(a, "--force")) {
            o->force = 1;
        } else if (!strcmp(a, "--seed")) {
            IS_TRY(is_arg_once(&seen, a, NULL));
            IS_TRY(is_arg_value(argc, argv, &i, &v));
            IS_TRY(is_arg_u64(a, v, &o->seed));
        } else if (is_option(a)) {
            return USAGE_ERROR(o, "unknown option %s", is_arg_quote(a, &q1));
        } else if (o->dir) {
            return USAGE_ERROR(o, "one DIR only (%s and %s given)", is_arg_quote(o->dir, &q1), is_arg_quote(a, &q2));
        } else {
            o->dir = a;
        }
    }
    if (!o->dir) return USAGE_ERROR(o, "DIR is missing");
    return NULL;
}

is_error *is_serve_parse(int argc, char **argv, is_serve_options *o) {
    srv_config *c = &o->server;
    is_arg_seen seen = {{NULL}, 0};
    int mb = 50;
    o->max_image_pixels = 4096ull * 4096ull;
    o->help = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = NULL;
        is_arg_quoted q;
        if (is_help(a)) {
            o->help = 1;
            return NULL;
        }
        if (a[0] != '-' || a[1] != '-') return is_errorf(IS_E_ARGUMENT, "unexpected argument %s", is_arg_quote(a, &q));
        IS_TRY(is_arg_once(&seen, a, NULL));
        IS_TRY(is_arg_value(argc, argv, &i, &v));
        if (!strcmp(a, "--model")) c->pipeline.model_dir = v;
        else if (!strcmp(a, "--ip-adapter")) c->pipeline.ip_adapter = v;
        else if (!strcmp(a, "--image-encoder")) c->pipeline.image_encoder_dir = v;
        else if (!strcmp(a, "--unet")) c->pipeline.unet_file = v;
        else if (!strcmp(a, "--host")) c->host = v;
        else if (!strcmp(a, "--port")) IS_TRY(is_arg_int(a, v, 0, 65535, &c->port));
        else if (!strcmp(a, "--api-auth")) {
            if (!strchr(v, ':')) return is_errorf(IS_E_ARGUMENT, "--api-auth: expected USER:PASS");
            c->api_auth = v;
        } else if (!strcmp(a, "--queue")) IS_TRY(is_arg_int(a, v, 1, 10000, &c->queue));
        else if (!strcmp(a, "--max-size")) IS_TRY(is_arg_int(a, v, 64, 16384, &c->max_size));
        else if (!strcmp(a, "--max-body-mb")) IS_TRY(is_arg_int(a, v, 1, 4096, &mb));
        else if (!strcmp(a, "--max-connections")) IS_TRY(is_arg_int(a, v, 2, 10000, &c->max_connections));
        else if (!strcmp(a, "--timeout")) IS_TRY(is_arg_int(a, v, 1, 86400, &c->timeout_s));
        else if (!strcmp(a, "--max-image-pixels")) IS_TRY(is_arg_u64(a, v, &o->max_image_pixels));
        else if (!strcmp(a, "--threads")) IS_TRY(is_arg_int(a, v, 0, 4096, &c->pipeline.threads));
        else if (!strcmp(a, "--precision")) {
            if (is_precision_parse(v, &c->precision)) return is_errorf(IS_E_ARGUMENT, "--precision: auto, f32 or bf16");
        } else if (!strcmp(a, "--memory")) {
            if (is_memory_mode_parse(v, &c->pipeline.memory)) return is_errorf(IS_E_ARGUMENT, "--memory: keep, low or auto");
        } else {
            return is_errorf(IS_E_ARGUMENT, "unknown option %s (see instantstyle serve --help)", is_arg_quote(a, &q));
        }
    }
    if (!c->pipeline.model_dir) return is_errorf(IS_E_ARGUMENT, "--model DIR is required");
    if (o->max_image_pixels < 64 * 64) return is_errorf(IS_E_ARGUMENT, "--max-image-pixels: at least 4096");
    c->max_body = (size_t)mb << 20;
    const char *slash = strrchr(c->pipeline.model_dir, '/');
    c->model_name = slash && slash[1] ? slash + 1 : c->pipeline.model_dir;
    return NULL;
}
