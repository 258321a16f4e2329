/* Sub-commands of the instantstyle program. Each returns the process exit code. */
#ifndef IS_CLI_COMMANDS_H
#define IS_CLI_COMMANDS_H

#include <stdio.h>

typedef struct {
    const char *name;
    const char *summary;
    int (*run)(int argc, char **argv); /* argv[0] is the command name */
} is_cli_command;

/* Print an is_error to stderr as "instantstyle: <message>", free it, return 1. */
struct is_error;
int is_cli_fail(struct is_error *err);
/* A refused command line (command_args.h): for a misuse of the command (usage_error), "instantstyle
 * COMMAND: <message>", a blank line and the command's usage on stderr, return 2; else is_cli_fail. */
int is_cli_refuse(struct is_error *err, int usage_error, const char *command, void (*usage)(FILE *out));
/* Re-executes the program once with OPENBLAS_CORETYPE set when OpenBLAS fell back to its generic
 * kernels on a CPU it does not know (blas_core.c). */
void is_cli_fix_blas_core(char **argv);

int is_cmd_generate(int argc, char **argv);

int is_cmd_make_tiny_model(int argc, char **argv);

int is_cmd_tokenize(int argc, char **argv);

int is_cmd_list_blocks(int argc, char **argv);

int is_cmd_canny(int argc, char **argv);

int is_cmd_serve(int argc, char **argv);

#endif
