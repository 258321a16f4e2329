/* instantstyle serve: the HTTP server (server/, docs/SERVER.md) with the models loaded once. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "args.h"
#include "commands.h"
#include "instantstyle.h"
#include "server/server.h"

static void usage(FILE *out) {
    fprintf(out,
            "usage: instantstyle serve --model DIR [--ip-adapter FILE] [options]\n\n"
            "Serves the A1111-compatible API (/sdapi/v1/...), the native job API (/v1/jobs) and a web page (/)\n"
            "with one pipeline kept loaded; one generation at a time, the others wait in a FIFO queue.\n"
            "docs/SERVER.md describes every endpoint.\n\n"
            "options:\n"
            "  --model DIR            SDXL diffusers folder (required)\n"
            "  --ip-adapter FILE      h94-layout IP-Adapter .safetensors (its image_encoder/ beside it)\n"
            "  --image-encoder DIR    the image encoder folder, when not beside the adapter\n"
            "  --unet FILE            a single-file UNet replacing the model's (its config stays)\n"
            "  --host ADDR            address to listen on (default 127.0.0.1: this machine only; 0.0.0.0: all)\n"
            "  --port N               port (default 7860; 0: any free port, printed on start)\n"
            "  --api-auth USER:PASS   require HTTP Basic auth on every request\n"
            "  --queue N              jobs that may wait (default 16; a full queue answers 503)\n"
            "  --max-size N           largest width or height a request may ask for (default 2048)\n"
            "  --max-body-mb N        largest request body in MiB (default 50)\n"
            "  --max-connections N    simultaneous connections (default 64)\n"
            "  --timeout S            close connections idle this many seconds (default 30)\n"
            "  --max-image-pixels N   largest decoded upload (default 16777216 = 4096 x 4096)\n"
            "  --precision P          auto (default), f32 or bf16\n"
            "  --memory M             keep (default: every network stays loaded), low or auto\n"
            "  --threads N            compute threads (default: all cores)\n"
            "  -h, --help             show this help\n\n"
            "example:\n"
            "  instantstyle serve --model sdxl --ip-adapter IP-Adapter/sdxl_models/ip-adapter_sdxl.safetensors\n"
            "  then open http://127.0.0.1:7860/\n");
}

static is_error *parse(int argc, char **argv, srv_config *c, int *help) {
    is_arg_seen seen = {0};
    int mb = 50;
    uint64_t pixels = 4096ull * 4096ull;
    for (int i = 1; i < argc; i++) {
        const char *o = argv[i], *v = NULL;
        if (!strcmp(o, "-h") || !strcmp(o, "--help")) {
            *help = 1;
            return NULL;
        }
        if (o[0] != '-' || o[1] != '-') {
            is_arg_quoted q;
            return is_errorf(IS_E_ARGUMENT, "unexpected argument %s", is_arg_quote(o, &q));
        }
        IS_TRY(is_arg_once(&seen, o, NULL));
        IS_TRY(is_arg_value(argc, argv, &i, &v));
        if (!strcmp(o, "--model")) c->pipeline.model_dir = v;
        else if (!strcmp(o, "--ip-adapter")) c->pipeline.ip_adapter = v;
        else if (!strcmp(o, "--image-encoder")) c->pipeline.image_encoder_dir = v;
        else if (!strcmp(o, "--unet")) c->pipeline.unet_file = v;
        else if (!strcmp(o, "--host")) c->host = v;
        else if (!strcmp(o, "--port")) IS_TRY(is_arg_int(o, v, 0, 65535, &c->port));
        else if (!strcmp(o, "--api-auth")) {
            if (!strchr(v, ':')) return is_errorf(IS_E_ARGUMENT, "--api-auth: expected USER:PASS");
            c->api_auth = v;
        } else if (!strcmp(o, "--queue")) IS_TRY(is_arg_int(o, v, 1, 10000, &c->queue));
        else if (!strcmp(o, "--max-size")) IS_TRY(is_arg_int(o, v, 64, 16384, &c->max_size));
        else if (!strcmp(o, "--max-body-mb")) IS_TRY(is_arg_int(o, v, 1, 4096, &mb));
        else if (!strcmp(o, "--max-connections")) IS_TRY(is_arg_int(o, v, 2, 10000, &c->max_connections));
        else if (!strcmp(o, "--timeout")) IS_TRY(is_arg_int(o, v, 1, 86400, &c->timeout_s));
        else if (!strcmp(o, "--max-image-pixels")) IS_TRY(is_arg_u64(o, v, &pixels));
        else if (!strcmp(o, "--threads")) IS_TRY(is_arg_int(o, v, 0, 4096, &c->pipeline.threads));
        else if (!strcmp(o, "--precision")) {
            if (is_precision_parse(v, &c->precision)) return is_errorf(IS_E_ARGUMENT, "--precision: auto, f32 or bf16");
        } else if (!strcmp(o, "--memory")) {
            if (is_memory_mode_parse(v, &c->pipeline.memory)) return is_errorf(IS_E_ARGUMENT, "--memory: keep, low or auto");
        } else {
            is_arg_quoted q;
            return is_errorf(IS_E_ARGUMENT, "unknown option %s (see instantstyle serve --help)", is_arg_quote(o, &q));
        }
    }
    if (!c->pipeline.model_dir) return is_errorf(IS_E_ARGUMENT, "--model DIR is required");
    if (pixels < 64 * 64) return is_errorf(IS_E_ARGUMENT, "--max-image-pixels: at least 4096");
    c->max_body = (size_t)mb << 20;
    is_set_max_image_pixels(pixels);
    const char *slash = strrchr(c->pipeline.model_dir, '/');
    c->model_name = slash && slash[1] ? slash + 1 : c->pipeline.model_dir;
    return NULL;
}

int is_cmd_serve(int argc, char **argv) {
    srv_config c;
    srv_config_init(&c);
    int help = 0;
    is_error *err = parse(argc, argv, &c, &help);
    if (help) {
        usage(stdout);
        return 0;
    }
    if (err) {
        is_cli_fail(err);
        fprintf(stderr, "\n");
        usage(stderr);
        return 2;
    }
    err = srv_run(&c, stdout);
    return err ? is_cli_fail(err) : 0;
}
