/* The option parsers of tokenize, list-blocks, canny, make-tiny-model and serve (cli/command_args.c):
 * hand-written argument vectors and the options or the error each must give. A refusal must name the
 * option or argument at fault and say whether it is a misuse of the command (usage, exit 2) or a bad
 * value (exit 1); --help stops parsing. The fuzzer (tests/fuzz/fuzz_cli.c) runs the same parsers. */
#include <stdint.h>
#include <string.h>

#include "command_args.h"
#include "harness.h"

#define ARGV(...) ((char *[]){__VA_ARGS__, NULL})
/* err = fn(argc, argv, &o) for the arguments given (the first is the command's name). */
#define PARSE(fn, o, ...)                                                                                              \
    do {                                                                                                               \
        char **argv_ = ARGV(__VA_ARGS__);                                                                              \
        int argc_ = 0;                                                                                                 \
        while (argv_[argc_]) argc_++;                                                                                  \
        err = fn(argc_, argv_, &o);                                                                                    \
    } while (0)

static is_error *err;

/* err must be a refusal naming `needle`, with o.usage as given. */
#define REFUSED(o, needle, want_usage, what)                                                                           \
    do {                                                                                                               \
        th_check((o).usage == (want_usage), "%s: usage flag %d (want %d)", what, (o).usage, want_usage);               \
        th_fails(err, needle, what);                                                                                   \
    } while (0)

static void test_tokenize(void) {
    is_tokenize_options o;
    PARSE(is_tokenize_parse, o, "tokenize", "--model", "m", "a cat");
    if (th_ok(err, "tokenize: --model m TEXT"))
        th_check(!strcmp(o.model, "m") && !strcmp(o.text, "a cat") && o.tokenizer == 1 && !o.pad && !o.help,
                 "tokenize defaults: tokenizer 1, no --pad");
    PARSE(is_tokenize_parse, o, "tokenize", "--pad", "--tokenizer", "2", "--model", "m", "--", "-x");
    if (th_ok(err, "tokenize: every option, TEXT after --"))
        th_check(o.tokenizer == 2 && o.pad && !strcmp(o.text, "-x"), "tokenize: tokenizer 2, --pad, TEXT '-x'");
    PARSE(is_tokenize_parse, o, "tokenize", "--model", "m", "-");
    if (th_ok(err, "tokenize: '-' is a TEXT")) th_check(!strcmp(o.text, "-"), "tokenize: TEXT '-'");
    PARSE(is_tokenize_parse, o, "tokenize", "--help", "--bogus");
    th_check(!err && o.help, "tokenize --help before anything wrong: help, no error");
    PARSE(is_tokenize_parse, o, "tokenize", "--model", "m", "--", "--help");
    if (th_ok(err, "tokenize: --help after -- is the TEXT")) th_check(!o.help && !strcmp(o.text, "--help"), "TEXT --help");

    PARSE(is_tokenize_parse, o, "tokenize", "--model", "m", "--tokenizer", "3", "x");
    REFUSED(o, "--tokenizer: '3' must be 1 or 2", 0, "tokenize --tokenizer 3");
    PARSE(is_tokenize_parse, o, "tokenize", "--model", "m", "--model", "n", "x");
    REFUSED(o, "--model given twice", 0, "tokenize --model twice");
    PARSE(is_tokenize_parse, o, "tokenize", "x", "--model");
    REFUSED(o, "'--model' needs a value", 0, "tokenize --model without a value");
    PARSE(is_tokenize_parse, o, "tokenize", "--model", "m", "--bogus", "x");
    REFUSED(o, "unknown option '--bogus'", 1, "tokenize --bogus");
    PARSE(is_tokenize_parse, o, "tokenize", "--model", "m", "a", "b");
    REFUSED(o, "extra argument 'b'", 1, "tokenize with two TEXTs");
    PARSE(is_tokenize_parse, o, "tokenize", "x");
    REFUSED(o, "--model DIR is required", 1, "tokenize without --model");
    PARSE(is_tokenize_parse, o, "tokenize", "--model", "m");
    REFUSED(o, "TEXT is missing", 1, "tokenize without TEXT");
}

static void test_list_blocks(void) {
    is_list_blocks_options o;
    PARSE(is_list_blocks_parse, o, "list-blocks", "--model", "m");
    if (th_ok(err, "list-blocks --model m"))
        th_check(!strcmp(o.style_blocks, "style") && o.ip_scale == 1.0f && !o.ip_adapter,
                 "list-blocks defaults: style, scale 1, no adapter");
    PARSE(is_list_blocks_parse, o, "list-blocks", "--ip-scale", "0.8", "--style-blocks", "up.block_0=0,1,0", "--model",
          "m", "--ip-adapter", "a.safetensors");
    if (th_ok(err, "list-blocks: every option"))
        th_check(o.ip_scale == 0.8f && !strcmp(o.style_blocks, "up.block_0=0,1,0") && !strcmp(o.ip_adapter, "a.safetensors"),
                 "list-blocks: scale 0.8f, the spec and the adapter as given");
    PARSE(is_list_blocks_parse, o, "list-blocks", "--model", "m", "--ip-scale", "nan");
    REFUSED(o, "--ip-scale: 'nan' is not a number", 0, "list-blocks --ip-scale nan");
    PARSE(is_list_blocks_parse, o, "list-blocks", "--model", "m", "--ip-scale", "1e39");
    REFUSED(o, "--ip-scale: '1e39' is not a number", 0, "list-blocks --ip-scale beyond float");
    PARSE(is_list_blocks_parse, o, "list-blocks", "--model", "m", "--model", "m");
    REFUSED(o, "--model given twice", 0, "list-blocks --model twice");
    PARSE(is_list_blocks_parse, o, "list-blocks", "unet");
    REFUSED(o, "unknown option 'unet'", 1, "list-blocks with an argument");
    PARSE(is_list_blocks_parse, o, "list-blocks", "--model", "m", "--style-blocks");
    REFUSED(o, "missing value for '--style-blocks'", 1, "list-blocks --style-blocks without a value");
    PARSE(is_list_blocks_parse, o, "list-blocks", "--ip-scale", "2");
    REFUSED(o, "--model is required", 1, "list-blocks without --model");
}

static void test_canny(void) {
    is_canny_options o;
    PARSE(is_canny_parse, o, "canny", "in.jpg", "out.png");
    if (th_ok(err, "canny IN OUT"))
        th_check(!strcmp(o.in, "in.jpg") && !strcmp(o.out, "out.png") && o.low == 50 && o.high == 200,
                 "canny defaults: 50, 200");
    /* kept in double: as a float 199.99999999 would be 200, which cv2.Canny floors differently */
    PARSE(is_canny_parse, o, "canny", "--high", "199.99999999", "--low", "250", "--", "-in.png", "-");
    if (th_ok(err, "canny: thresholds, files after --"))
        th_check(o.high == 199.99999999 && o.high < 200 && o.low == 250 && !strcmp(o.in, "-in.png") && !strcmp(o.out, "-"),
                 "canny: high 199.99999999 (double), low 250 (not swapped by the parser), IN '-in.png', OUT '-'");
    PARSE(is_canny_parse, o, "canny", "--low", "inf", "a", "b");
    REFUSED(o, "--low: 'inf' is not a number", 0, "canny --low inf");
    PARSE(is_canny_parse, o, "canny", "--high", "1", "--high", "2", "a", "b");
    REFUSED(o, "--high given twice", 0, "canny --high twice");
    PARSE(is_canny_parse, o, "canny", "a", "b", "--low");
    REFUSED(o, "'--low' needs a value", 0, "canny --low without a value");
    PARSE(is_canny_parse, o, "canny", "a", "b", "c");
    REFUSED(o, "unexpected argument 'c'", 1, "canny with three files");
    PARSE(is_canny_parse, o, "canny", "-x", "a", "b");
    REFUSED(o, "unknown option '-x'", 1, "canny -x");
    PARSE(is_canny_parse, o, "canny", "a");
    REFUSED(o, "OUT is missing", 1, "canny without OUT");
    PARSE(is_canny_parse, o, "canny", "--low", "1");
    REFUSED(o, "IN and OUT are missing", 1, "canny without files");
}

static void test_make_tiny_model(void) {
    is_make_tiny_model_options o;
    PARSE(is_make_tiny_model_parse, o, "make-tiny-model", "dir");
    if (th_ok(err, "make-tiny-model DIR")) th_check(!strcmp(o.dir, "dir") && o.seed == 0 && !o.force, "defaults: seed 0");
    PARSE(is_make_tiny_model_parse, o, "make-tiny-model", "--seed", "18446744073709551615", "dir", "--force");
    if (th_ok(err, "make-tiny-model: every option"))
        th_check(o.seed == UINT64_MAX && o.force, "make-tiny-model: seed 2^64-1, --force");
    PARSE(is_make_tiny_model_parse, o, "make-tiny-model", "--seed", "18446744073709551616", "dir");
    REFUSED(o, "--seed: '18446744073709551616' is not a non-negative integer", 0, "make-tiny-model --seed 2^64");
    PARSE(is_make_tiny_model_parse, o, "make-tiny-model", "--seed", "-1", "dir");
    REFUSED(o, "--seed: '-1' must be a non-negative integer", 0, "make-tiny-model --seed -1");
    PARSE(is_make_tiny_model_parse, o, "make-tiny-model", "a", "b");
    REFUSED(o, "one DIR only ('a' and 'b' given)", 1, "make-tiny-model with two DIRs");
    PARSE(is_make_tiny_model_parse, o, "make-tiny-model", "--forse", "a");
    REFUSED(o, "unknown option '--forse'", 1, "make-tiny-model --forse");
    PARSE(is_make_tiny_model_parse, o, "make-tiny-model", "--force");
    REFUSED(o, "DIR is missing", 1, "make-tiny-model without DIR");
}

static void serve_init(is_serve_options *o) {
    memset(o, 0, sizeof *o);
    is_pipeline_params_init(&o->server.pipeline);
    o->server.port = 7860;
}

static void test_serve(void) {
    is_serve_options o;
    serve_init(&o);
    PARSE(is_serve_parse, o, "serve", "--model", "models/sdxl");
    if (th_ok(err, "serve --model models/sdxl"))
        th_check(o.server.port == 7860 && o.server.max_body == 50u << 20 && o.max_image_pixels == 4096u * 4096u &&
                     !strcmp(o.server.model_name, "sdxl"),
                 "serve defaults: the caller's port kept, 50 MiB bodies, 4096 x 4096 pixels, model name 'sdxl'");
    serve_init(&o);
    PARSE(is_serve_parse, o, "serve", "--model", "m/sdxl/", "--ip-adapter", "a.safetensors", "--image-encoder", "enc",
          "--unet", "u.safetensors", "--host", "0.0.0.0", "--port", "0", "--api-auth", "user:pass", "--queue", "4",
          "--max-size", "1024", "--max-body-mb", "8", "--max-connections", "8", "--timeout", "60",
          "--max-image-pixels", "4096", "--precision", "bf16", "--memory", "low", "--threads", "2");
    if (th_ok(err, "serve: every option")) {
        const srv_config *c = &o.server;
        th_check(!strcmp(c->pipeline.ip_adapter, "a.safetensors") && !strcmp(c->pipeline.image_encoder_dir, "enc") &&
                     !strcmp(c->pipeline.unet_file, "u.safetensors") && !strcmp(c->host, "0.0.0.0") && c->port == 0 &&
                     !strcmp(c->api_auth, "user:pass") && c->queue == 4 && c->max_size == 1024 &&
                     c->max_body == 8u << 20 && c->max_connections == 8 && c->timeout_s == 60 &&
                     o.max_image_pixels == 4096 && c->precision == IS_PRECISION_BF16 &&
                     c->pipeline.memory == IS_MEMORY_LOW && c->pipeline.threads == 2,
                 "serve: every option's value");
        th_check(!strcmp(c->model_name, "m/sdxl/"), "serve: a model path ending in '/' is named whole (got %s)",
                 c->model_name);
    }
    struct {
        const char *option, *value, *needle;
    } bad[] = {
        {"--port", "65536", "--port: 65536 is out of range (0..65535)"},
        {"--queue", "0", "--queue: 0 is out of range (1..10000)"},
        {"--max-size", "63", "--max-size: 63 is out of range (64..16384)"},
        {"--max-body-mb", "4097", "--max-body-mb: 4097 is out of range (1..4096)"},
        {"--max-connections", "1", "--max-connections: 1 is out of range (2..10000)"},
        {"--timeout", "86401", "--timeout: 86401 is out of range (1..86400)"},
        {"--max-image-pixels", "4095", "--max-image-pixels: at least 4096"},
        {"--api-auth", "user", "--api-auth: expected USER:PASS"},
        {"--precision", "f16", "--precision: auto, f32 or bf16"},
        {"--memory", "none", "--memory: keep, low or auto"},
        {"--threads", "-1", "--threads: -1 is out of range (0..4096)"},
        {"--bogus", "1", "unknown option '--bogus'"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        serve_init(&o);
        PARSE(is_serve_parse, o, "serve", "--model", "m", (char *)bad[i].option, (char *)bad[i].value);
        th_fails(err, bad[i].needle, bad[i].option);
    }
    serve_init(&o);
    PARSE(is_serve_parse, o, "serve", "--port", "1");
    th_fails(err, "--model DIR is required", "serve without --model");
    serve_init(&o);
    PARSE(is_serve_parse, o, "serve", "--model", "m", "extra");
    th_fails(err, "unexpected argument 'extra'", "serve with an argument");
    serve_init(&o);
    PARSE(is_serve_parse, o, "serve", "--model", "m", "--help", "--port", "x");
    th_check(!err && o.help, "serve --help: help, no error");
}

/* Every message quotes user input capped (is_arg_quote): a megabyte option is not echoed whole. */
static void test_bounded_messages(void) {
    static char huge[1 << 20];
    memset(huge, 'x', sizeof huge - 1);
    huge[0] = huge[1] = '-';
    is_tokenize_options t;
    PARSE(is_tokenize_parse, t, "tokenize", "--model", "m", huge);
    th_check(err != NULL, "tokenize: a megabyte option is refused");
    if (err)
        th_check(strlen(is_error_message(err)) < 200 && strstr(is_error_message(err), "...'"),
                 "tokenize: its message quotes it cut (%zu bytes)", strlen(is_error_message(err)));
    is_error_free(err);
    is_serve_options s;
    serve_init(&s);
    PARSE(is_serve_parse, s, "serve", "--model", "m", "--port", huge + 2);
    th_check(err != NULL, "serve: a megabyte port is refused");
    if (err)
        th_check(strlen(is_error_message(err)) < 200, "serve: its message is %zu bytes", strlen(is_error_message(err)));
    is_error_free(err);
}

int main(void) {
    test_tokenize();
    test_list_blocks();
    test_canny();
    test_make_tiny_model();
    test_serve();
    test_bounded_messages();
    return th_done();
}
