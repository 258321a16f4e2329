/* Connections (libmicrohttpd, one thread per connection: a synchronous generation or an event stream may
 * block its own thread without holding up the others), request bodies up to the limit, Basic auth,
 * routing, and the process's life: load, listen, serve until SIGINT / SIGTERM, stop cleanly. */
#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include "core/error.h"
#include "server/server_internal.h"

void srv_config_init(srv_config *c) {
    memset(c, 0, sizeof *c);
    c->host = "127.0.0.1";
    c->port = 7860;
    c->queue = 16;
    c->max_size = 2048;
    c->max_body = (size_t)50 << 20;
    c->max_connections = 64;
    c->timeout_s = 30;
    c->precision = IS_PRECISION_AUTO;
    is_pipeline_params_init(&c->pipeline);
    c->pipeline.memory = IS_MEMORY_KEEP;
}

double srv_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* ---- answers */

static void add_common_headers(struct MHD_Response *r) {
    MHD_add_response_header(r, "Cache-Control", "no-store");
    MHD_add_response_header(r, "X-Content-Type-Options", "nosniff");
}

/* Says when an idle connection will be closed (--timeout), so that a client's pool lets go of it first:
 * without the hint, Node's fetch keeps idle sockets 4 s and could send a request on one the server is
 * closing at that moment. */
static void add_keep_alive(struct MHD_Connection *c, struct MHD_Response *r) {
    const union MHD_ConnectionInfo *ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_TIMEOUT);
    if (!ci || !ci->connection_timeout) return;
    char keep_alive[32];
    snprintf(keep_alive, sizeof keep_alive, "timeout=%u", ci->connection_timeout);
    MHD_add_response_header(r, "Keep-Alive", keep_alive);
}

enum MHD_Result srv_queue_response(struct MHD_Connection *c, int status, struct MHD_Response *r) {
    if (!r) return MHD_NO; /* out of memory: MHD closes the connection */
    add_keep_alive(c, r);
    enum MHD_Result ok = MHD_queue_response(c, (unsigned)status, r);
    MHD_destroy_response(r);
    return ok;
}

enum MHD_Result srv_reply_bytes(struct MHD_Connection *c, int status, const char *type, const void *data, size_t n) {
    struct MHD_Response *r = MHD_create_response_from_buffer(n, (void *)data, MHD_RESPMEM_MUST_COPY);
    if (r) MHD_add_response_header(r, "Content-Type", type), add_common_headers(r);
    return srv_queue_response(c, status, r);
}

/* A response holding json's text (json is taken), with the JSON content type; NULL when out of memory. */
static struct MHD_Response *json_response(cJSON *json) {
    char *text = json ? cJSON_PrintUnformatted(json) : NULL;
    cJSON_Delete(json);
    struct MHD_Response *r = text ? MHD_create_response_from_buffer(strlen(text), text, MHD_RESPMEM_MUST_FREE) : NULL;
    if (!r) {
        free(text);
        return NULL;
    }
    MHD_add_response_header(r, "Content-Type", "application/json");
    add_common_headers(r);
    return r;
}

enum MHD_Result srv_reply_json(struct MHD_Connection *c, int status, cJSON *json) {
    return srv_queue_response(c, status, json_response(json));
}

static cJSON *error_json(const srv_err *e) {
    cJSON *root = cJSON_CreateObject(), *err = cJSON_AddObjectToObject(root, "error");
    cJSON_AddNumberToObject(err, "status", e->status);
    cJSON_AddStringToObject(err, "code", e->code[0] ? e->code : srv_status_code(e->status));
    if (e->field[0]) cJSON_AddStringToObject(err, "field", e->field);
    cJSON_AddStringToObject(err, "message", e->message);
    cJSON_AddStringToObject(root, "detail", e->message); /* what FastAPI (A1111) clients print */
    return root;
}

enum MHD_Result srv_reply_error(struct MHD_Connection *c, const srv_err *e) {
    int status = e->status ? e->status : 500;
    struct MHD_Response *r = json_response(error_json(e));
    if (r && status == 503) MHD_add_response_header(r, "Retry-After", "10");
    if (r && status == 405) MHD_add_response_header(r, "Allow", "GET, POST, DELETE");
    return srv_queue_response(c, status, r);
}

/* ---- one request */

typedef struct {
    char *body;
    size_t n, cap;
    int too_large;
} request_ctx;

static int authorized(srv *s, struct MHD_Connection *c) {
    if (!s->cfg->api_auth) return 1;
    char *pass = NULL, *user = MHD_basic_auth_get_username_password(c, &pass);
    int ok = 0;
    if (user && pass) {
        size_t ul = strlen(user), pl = strlen(pass), al = strlen(s->cfg->api_auth);
        char *want = malloc(ul + pl + 2);
        if (want) {
            snprintf(want, ul + pl + 2, "%s:%s", user, pass);
            /* the same time whatever matches */
            unsigned char diff = (unsigned char)(al != ul + pl + 1);
            for (size_t i = 0; i < al; i++) diff |= (unsigned char)(s->cfg->api_auth[i] ^ (i < ul + pl + 1 ? want[i] : 0));
            ok = !diff;
            free(want);
        }
    }
    MHD_free(user);
    MHD_free(pass);
    return ok;
}

static enum MHD_Result route(srv *s, struct MHD_Connection *c, const char *method, const char *url, const char *body,
                             size_t n) {
    if (!strcmp(url, "/") || !strcmp(url, "/index.html")) {
        if (strcmp(method, "GET") && strcmp(method, "HEAD")) {
            srv_err e;
            srv_fail(&e, 405, "", "%s %s: only GET", method, url);
            return srv_reply_error(c, &e);
        }
        return srv_reply_bytes(c, 200, "text/html; charset=utf-8", srv_page_html, srv_page_html_len);
    }
    if (!strncmp(url, "/v1/", 4)) return srv_native(s, c, method, url, body, n);
    if (!strncmp(url, "/sdapi/v1/", 10) || !strncmp(url, "/controlnet/", 12)) return srv_a1111(s, c, method, url, body, n);
    srv_err e;
    srv_fail(&e, 404, "", "%.200s: no such path (see docs/SERVER.md)", url);
    return srv_reply_error(c, &e);
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url, const char *method,
                                  const char *version, const char *upload, size_t *upload_n, void **con_cls) {
    (void)version;
    srv *s = cls;
    request_ctx *rc = *con_cls;
    if (!rc) { /* headers only: refuse a declared oversize body before reading it */
        rc = calloc(1, sizeof *rc);
        if (!rc) return MHD_NO;
        *con_cls = rc;
        const char *len = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
        if (len && strtoull(len, NULL, 10) > s->cfg->max_body) { /* answered now: the body is never read */
            rc->too_large = 1;
            srv_err e;
            srv_fail(&e, 413, "", "request body of %s bytes, over %zu (--max-body-mb)", len, s->cfg->max_body);
            return srv_reply_error(c, &e);
        }
        return MHD_YES;
    }
    if (*upload_n) {
        if (!rc->too_large && rc->n + *upload_n > s->cfg->max_body) {
            rc->too_large = 1;
            free(rc->body);
            rc->body = NULL, rc->n = rc->cap = 0;
        }
        if (!rc->too_large) {
            if (rc->n + *upload_n + 1 > rc->cap) {
                size_t cap = rc->cap ? rc->cap : 65536;
                while (cap < rc->n + *upload_n + 1) cap *= 2;
                char *b = realloc(rc->body, cap);
                if (!b) return MHD_NO;
                rc->body = b, rc->cap = cap;
            }
            memcpy(rc->body + rc->n, upload, *upload_n);
            rc->n += *upload_n;
            rc->body[rc->n] = 0;
        }
        *upload_n = 0;
        return MHD_YES;
    }
    if (!authorized(s, c)) {
        srv_err e;
        srv_fail(&e, 401, "", "authentication required (--api-auth)");
        struct MHD_Response *r = json_response(error_json(&e));
        if (!r) return MHD_NO;
        add_keep_alive(c, r);
        enum MHD_Result ok = MHD_queue_basic_auth_fail_response(c, "instantstyle", r);
        MHD_destroy_response(r);
        return ok;
    }
    if (rc->too_large) {
        srv_err e;
        srv_fail(&e, 413, "", "request body over %zu bytes (--max-body-mb)", s->cfg->max_body);
        return srv_reply_error(c, &e);
    }
    /* the path without its query string */
    char path[512];
    snprintf(path, sizeof path, "%s", url);
    return route(s, c, method, path, rc->body, rc->n);
}

static void on_completed(void *cls, struct MHD_Connection *c, void **con_cls, enum MHD_RequestTerminationCode toe) {
    (void)cls, (void)c, (void)toe;
    request_ctx *rc = *con_cls;
    if (!rc) return;
    free(rc->body);
    free(rc);
    *con_cls = NULL;
}

/* ---- block specs, checked on arrival */

int srv_check_style_blocks(srv *s, const char *spec, const char *field, srv_err *e) {
    if (!spec || !s->spec_unet) return 0;
    pthread_mutex_lock(&s->spec_mu);
    is_error *err = is_unet_set_ip_scale(s->spec_unet, spec, 1.0f);
    pthread_mutex_unlock(&s->spec_mu);
    if (!err) return 0;
    srv_fail(e, 400, field, "%s: %s", field, is_error_message(err));
    is_error_free(err);
    return -1;
}

/* The UNet's module table for srv_check_style_blocks (NULL when it cannot be opened: the job reports it). */
static is_unet *open_spec_unet(const srv_config *cfg) {
    char dir[4096];
    snprintf(dir, sizeof dir, "%s/unet", cfg->pipeline.model_dir);
    is_unet *u = NULL;
    is_error *err = cfg->pipeline.unet_file ? is_unet_load_file(dir, cfg->pipeline.unet_file, &u) : is_unet_load(dir, &u);
    is_error_free(err);
    return u;
}

/* ---- the process */

static is_error *load_pipeline(const srv_config *cfg, is_pipeline **out) {
    IS_TRY(is_pipeline_load(&cfg->pipeline, out));
    return NULL;
}

is_error *srv_run(const srv_config *cfg, FILE *out) {
    struct sockaddr_in6 a6;
    struct sockaddr_in a4;
    struct sockaddr *addr = NULL;
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION | MHD_USE_ERROR_LOG;
    memset(&a4, 0, sizeof a4), memset(&a6, 0, sizeof a6);
    char resolved[INET6_ADDRSTRLEN];
    const char *host = cfg->host;
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM}, *ai = NULL;
    if (inet_pton(AF_INET, host, &a4.sin_addr) != 1 && inet_pton(AF_INET6, host, &a6.sin6_addr) != 1 &&
        getaddrinfo(host, NULL, &hints, &ai) == 0 && ai) { /* a name: its first address ("localhost") */
        const void *src = ai->ai_family == AF_INET ? (const void *)&((struct sockaddr_in *)ai->ai_addr)->sin_addr
                                                   : (const void *)&((struct sockaddr_in6 *)ai->ai_addr)->sin6_addr;
        if (inet_ntop(ai->ai_family, src, resolved, sizeof resolved)) host = resolved;
        freeaddrinfo(ai);
    }
    if (inet_pton(AF_INET, host, &a4.sin_addr) == 1) {
        a4.sin_family = AF_INET, a4.sin_port = htons((uint16_t)cfg->port);
        addr = (struct sockaddr *)&a4;
    } else if (inet_pton(AF_INET6, host, &a6.sin6_addr) == 1) {
        a6.sin6_family = AF_INET6, a6.sin6_port = htons((uint16_t)cfg->port);
        addr = (struct sockaddr *)&a6;
        flags |= MHD_USE_IPv6;
    } else {
        return is_errorf(IS_E_ARGUMENT, "--host %s: not an address or a name of this machine (e.g. 127.0.0.1, 0.0.0.0, ::1, "
                         "localhost)", cfg->host);
    }
    /* every thread started from here on inherits the blocked signals; this one waits for them */
    sigset_t sigs;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGINT), sigaddset(&sigs, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);
    signal(SIGPIPE, SIG_IGN);

    srv s = {.cfg = cfg, .started = srv_now()};
    IS_TRY(load_pipeline(cfg, &s.pipeline));
    s.spec_unet = open_spec_unet(cfg);
    pthread_mutex_init(&s.spec_mu, NULL);
    s.jobs = jobs_start(s.pipeline, cfg->queue, 64);
    if (!s.jobs) {
        is_unet_free(s.spec_unet);
        is_pipeline_free(s.pipeline);
        return is_errorf(IS_E_NOMEM, "starting the job queue");
    }
    struct MHD_Daemon *d = MHD_start_daemon(
        flags, (uint16_t)cfg->port, NULL, NULL, on_request, &s, MHD_OPTION_SOCK_ADDR, addr,
        MHD_OPTION_CONNECTION_LIMIT, (unsigned)cfg->max_connections, MHD_OPTION_CONNECTION_TIMEOUT,
        (unsigned)cfg->timeout_s, MHD_OPTION_NOTIFY_COMPLETED, on_completed, &s, MHD_OPTION_END);
    if (!d) {
        jobs_shutdown(s.jobs);
        jobs_free(s.jobs);
        is_unet_free(s.spec_unet);
        is_pipeline_free(s.pipeline);
        return is_errorf(IS_E_IO, "cannot listen on %s port %d (in use, or not an address of this machine?)", cfg->host,
                         cfg->port);
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT);
    int port = info ? info->port : cfg->port;
    fprintf(out, "listening on http://%s%s%s:%d/\n", addr == (struct sockaddr *)&a6 ? "[" : "", host,
            addr == (struct sockaddr *)&a6 ? "]" : "", port);
    fflush(out);
    int sig = 0;
    sigwait(&sigs, &sig);
    fprintf(out, "stopping (%s)\n", sig == SIGINT ? "SIGINT" : "SIGTERM");
    fflush(out);
    atomic_store(&s.stopping, 1);
    MHD_quiesce_daemon(d);   /* no new connections */
    jobs_shutdown(s.jobs);   /* cancels the running job, drops the queue, wakes every waiter */
    MHD_stop_daemon(d);      /* joins the connection threads (they answer and let go of their jobs) */
    jobs_free(s.jobs);
    is_unet_free(s.spec_unet);
    pthread_mutex_destroy(&s.spec_mu);
    is_pipeline_free(s.pipeline);
    return NULL;
}
