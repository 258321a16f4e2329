/* `instantstyle serve`: an HTTP server (libmicrohttpd) around one long-lived is_pipeline. Internal to the
 * program (not part of the library): the CLI's serve command fills a srv_config and calls srv_run.
 *
 * The data's path: http.c (connections, bodies, auth, routing) -> request.c (JSON -> a checked srv_request,
 * errors naming the field) -> jobs.c (the FIFO queue and the one worker thread that runs is_generate) ->
 * native.c (/v1/jobs, server-sent events) and a1111.c (/sdapi/v1/...) turn jobs into answers; page.c
 * serves the web page (web/index.html, embedded at build time). docs/SERVER.md is the contract. */
#ifndef IS_SERVER_SERVER_H
#define IS_SERVER_SERVER_H

#include <stddef.h>
#include <stdio.h>

#include "instantstyle.h"

typedef struct {
    const char *host;          /* "127.0.0.1" */
    int port;                  /* 0: any free port */
    const char *api_auth;      /* "user:pass" or NULL */
    int queue;                 /* queued jobs at most (the running one not counted) */
    int max_size;              /* width / height at most */
    size_t max_body;           /* bytes of a request body */
    int max_connections;
    int timeout_s;             /* idle connections are closed after this */
    is_precision precision;
    is_pipeline_params pipeline;
    const char *model_name;    /* shown in /sdapi/v1/sd-models and /v1/info */
} srv_config;

void srv_config_init(srv_config *c);
/* Load the pipeline, listen, serve until SIGINT / SIGTERM. Prints "listening on http://HOST:PORT/" on out
 * once accepting. Returns the error that stopped it from starting, NULL after a clean stop. */
is_error *srv_run(const srv_config *c, FILE *out);

#endif
