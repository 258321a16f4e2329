/* instantstyle generate, in three parts: options (generate_args.c), what the user sees and how
 * a run is interrupted (generate_ui.c), and the run itself (cmd_generate.c). */
#ifndef IS_CLI_GENERATE_H
#define IS_CLI_GENERATE_H

#include "core/error.h"
#include "instantstyle.h"

/* The largest --width / --height: the library's limit (is_generate refuses larger sizes). */
#define IS_CLI_MAX_SIDE 8192

typedef struct {
    is_pipeline_params paths;
    is_generate_params gp;
    const char *out;        /* "-": standard output */
    const char *style_path; /* --style-image; decoded by the CLI, given to the library as pixels */
    is_lora loras[IS_MAX_LORAS]; /* --lora FILE[:WEIGHT], repeatable */
    char *lora_paths[IS_MAX_LORAS]; /* FILE parts (malloc'ed; is_gen_options_free) */
    int quiet, help;
} is_gen_options;

extern const char *const is_gen_help_text;
void is_gen_options_init(is_gen_options *o);
/* Every option given at most once; errors name the option. Sets o->help and stops at --help. */
is_error *is_gen_parse(int argc, char **argv, is_gen_options *o);
void is_gen_options_free(is_gen_options *o);

/* Stage log and progress on stderr. A terminal gets a redrawn progress bar; a file or pipe gets
 * plain lines, one per step or fewer for fast steps. quiet hides progress and the stage log but
 * never the library's warnings ("warning: ..."). */
typedef struct {
    int quiet, tty;
    double last_line; /* seconds into the denoising loop of the last progress line (not a tty) */
} is_gen_ui;
void is_gen_ui_log(void *user, const char *message);
void is_gen_ui_progress(void *user, int step, int total, double seconds);

/* SIGINT and SIGTERM ask the generation to stop (a second one ends the program at once). */
void is_gen_cancel_install(void);
int is_gen_cancel_requested(void *user); /* is_cancel_fn */
int is_gen_cancel_signal(void);          /* the signal received, 0 if none */

#endif
