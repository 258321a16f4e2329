/* Option parsers of the commands other than generate (whose parser is generate_args.c): tokenize,
 * list-blocks, canny, make-tiny-model and serve. Each fills its options from the argument vector
 * (argv[0] is the command name), changes nothing else and opens no file, so that the fuzzer
 * (tests/fuzz/fuzz_cli.c) and the unit test run exactly what the program runs.
 *
 * A refused vector returns an error naming the option or argument at fault. When the command line
 * is misused (an unknown option, a missing or extra argument) the parser also sets `usage`: the
 * command then prints its usage and exits 2; any other error (a bad value, an option given twice)
 * exits 1. --help sets `help` and stops parsing with no error. */
#ifndef IS_CLI_COMMAND_ARGS_H
#define IS_CLI_COMMAND_ARGS_H

#include <stdint.h>

#include "core/error.h"
#include "server/server.h"

typedef struct {
    const char *model; /* --model DIR (required) */
    const char *text;  /* TEXT (required) */
    int tokenizer;     /* --tokenizer 1|2 (default 1) */
    int pad;           /* --pad */
    int help, usage;
} is_tokenize_options;
is_error *is_tokenize_parse(int argc, char **argv, is_tokenize_options *o);

typedef struct {
    const char *model;        /* --model DIR (required) */
    const char *ip_adapter;   /* --ip-adapter FILE or NULL */
    const char *style_blocks; /* --style-blocks SPEC (default "style"), parsed against the UNet later */
    float ip_scale;           /* --ip-scale X (default 1) */
    int help, usage;
} is_list_blocks_options;
is_error *is_list_blocks_parse(int argc, char **argv, is_list_blocks_options *o);

typedef struct {
    const char *in, *out; /* IN and OUT (both required) */
    double low, high;     /* --low, --high (defaults 50, 200): finite, in double as cv2.Canny takes them */
    int help, usage;
} is_canny_options;
is_error *is_canny_parse(int argc, char **argv, is_canny_options *o);

typedef struct {
    const char *dir; /* DIR (required) */
    uint64_t seed;   /* --seed N (default 0) */
    int force;       /* --force */
    int help, usage;
} is_make_tiny_model_options;
is_error *is_make_tiny_model_parse(int argc, char **argv, is_make_tiny_model_options *o);

typedef struct {
    srv_config server;         /* initialised by the caller (srv_config_init); the options fill it */
    uint64_t max_image_pixels; /* --max-image-pixels (default 4096 x 4096): the command sets it process-wide */
    int help;                  /* every serve error is a usage error: the command prints its usage for all */
} is_serve_options;
/* o->server must be initialised; sets o->server.max_body and model_name from the options. */
is_error *is_serve_parse(int argc, char **argv, is_serve_options *o);

#endif
