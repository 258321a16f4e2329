/* instantstyle serve: the HTTP server (server/, docs/SERVER.md) with the models loaded once. */
#include <stdio.h>

#include "command_args.h"
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

int is_cmd_serve(int argc, char **argv) {
    is_serve_options o;
    srv_config_init(&o.server);
    is_error *err = is_serve_parse(argc, argv, &o);
    if (o.help) {
        usage(stdout);
        return 0;
    }
    if (err) {
        is_cli_fail(err);
        fprintf(stderr, "\n");
        usage(stderr);
        return 2;
    }
    is_set_max_image_pixels(o.max_image_pixels);
    err = srv_run(&o.server, stdout);
    return err ? is_cli_fail(err) : 0;
}
