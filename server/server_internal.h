/* Types shared by the server's files (see server.h for the path of a request through them). */
#ifndef IS_SERVER_INTERNAL_H
#define IS_SERVER_INTERNAL_H

#include <cjson/cJSON.h>
#include <microhttpd.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

#include "server/server.h"

/* ---- an error answer: {"error": {"status", "code", "field", "message"}} */
typedef struct {
    int status;       /* HTTP status */
    char code[32];    /* "bad_request", "queue_full", ... */
    char field[160];  /* the request field at fault, or "" */
    char message[640];
} srv_err;
/* Fill e; returns -1 (for `return srv_fail(...)`). */
int srv_fail(srv_err *e, int status, const char *field, const char *fmt, ...) __attribute__((format(printf, 4, 5)));
const char *srv_status_code(int status); /* 400 -> "bad_request" ... */

/* ---- request.c: a checked generation request */
#define SRV_MAX_IMAGES 16   /* batch_size x n_iter */
#define SRV_MAX_STEPS 150
#define SRV_MAX_TEXT (64 * 1024)
typedef struct {
    is_generate_params gp;  /* its pointers point into this struct (srv_request is never copied) */
    char *prompt, *negative_prompt, *style_blocks, *content_prompt;
    is_image style, init, mask; /* rgb NULL when absent */
    int n_images, batch_size, n_iter;
    uint64_t seed;          /* first image's; image i gets seed + i */
    char sampler_label[40]; /* the name the client used (A1111) or ours */
    int a1111;              /* answer in A1111's shape */
    cJSON *params;          /* what the answer echoes as "parameters" */
} srv_request;
/* body: the parsed JSON. Returns a request or NULL with *e filled (4xx naming the field). */
srv_request *srv_parse_native(const cJSON *body, const srv_config *cfg, srv_err *e);
srv_request *srv_parse_a1111(const cJSON *body, int img2img, const srv_config *cfg, srv_err *e);
void srv_request_free(srv_request *r);
/* Samplers by A1111 name, for /sdapi/v1/samplers: name i (NULL past the end) and its alias. */
const char *srv_a1111_sampler(int i, const char **alias);

/* ---- jobs.c: the queue and its one worker */
typedef enum { JOB_QUEUED, JOB_RUNNING, JOB_DONE, JOB_FAILED, JOB_CANCELLED } job_state;
const char *job_state_name(job_state s);
typedef struct {
    uint8_t *png;
    size_t png_n;
    uint64_t seed;
    char *infotext;
} job_image;
typedef struct srv_job srv_job;
typedef struct srv_jobs srv_jobs;
/* What a reader may look at, copied under the queue's lock. */
typedef struct {
    job_state state;
    int position;          /* jobs ahead (queued), else -1 */
    int step, total;       /* of the image being made */
    int image_no, n_images, n_done;
    double created, started, finished; /* seconds since the epoch; 0 = not yet */
    double eta_s, fraction;
    int interrupted;
    int preview_step;      /* a live preview exists (made after this many steps, all images), or 0 */
    unsigned version;      /* bumps on every change */
    srv_err error;         /* state FAILED (or a refused cancelled sync job) */
} job_snapshot;

srv_jobs *jobs_start(is_pipeline *p, int capacity, int keep_finished);
/* Cancel the running job, drop the queue (cancelled), wake every waiter for good, join the worker. The
 * jobs stay readable until jobs_free (after the connections that hold them are done). */
void jobs_shutdown(srv_jobs *q);
void jobs_free(srv_jobs *q);
/* Queue req (taken on success). client_fd >= 0: a synchronous client; its hang-up cancels the job.
 * Returns the job (a reference: jobs_release it) or NULL when the queue is full (req not taken). */
srv_job *jobs_submit(srv_jobs *q, srv_request *req, int client_fd, int *position);
/* The peer of socket fd hung up (fd < 0: never). */
int srv_client_gone(int fd);
srv_job *jobs_find(srv_jobs *q, const char *id); /* a reference, or NULL */
void jobs_release(srv_jobs *q, srv_job *j);
const char *job_id(const srv_job *j);
const srv_request *job_request(const srv_job *j);
void jobs_cancel(srv_jobs *q, srv_job *j);
/* A1111's interrupt: stop the running job, keeping the images made so far. 1 if one was running. */
int jobs_interrupt(srv_jobs *q);
void jobs_snapshot(srv_jobs *q, srv_job *j, job_snapshot *s);
/* Wait until the job changes (version != seen) or timeout_s passes; returns the current version. */
unsigned jobs_wait(srv_jobs *q, srv_job *j, unsigned seen, double timeout_s);
/* A copy of the job's latest live preview PNG (malloc'ed, *n bytes; *step: when it was made), or NULL. */
uint8_t *job_preview_copy(srv_jobs *q, srv_job *j, size_t *n, int *step);
/* Image i of a finished job (valid while the reference is held), NULL past the end. */
const job_image *job_image_at(srv_jobs *q, srv_job *j, int i);
/* The running job (a reference) or NULL; counts. */
srv_job *jobs_running(srv_jobs *q, int *queued, int *capacity);

/* ---- http.c: answers */
typedef struct srv srv;
struct srv {
    const srv_config *cfg;
    is_pipeline *pipeline;
    srv_jobs *jobs;
    atomic_int stopping;
    double started;
    /* The UNet's attention modules for checking block specs when a request arrives (its weights are mapped,
     * never read); NULL: specs are checked when the job runs. One request at a time (spec_mu). */
    is_unet *spec_unet;
    pthread_mutex_t spec_mu;
};
/* A block spec (style_mode / style_blocks) checked against the model's UNet: 0, or -1 with *e (400 naming
 * field). */
int srv_check_style_blocks(srv *s, const char *spec, const char *field, srv_err *e);
/* Queues r (taken; NULL: out of memory) with the Keep-Alive hint every answer carries. */
enum MHD_Result srv_queue_response(struct MHD_Connection *c, int status, struct MHD_Response *r);
enum MHD_Result srv_reply_json(struct MHD_Connection *c, int status, cJSON *json); /* takes json */
enum MHD_Result srv_reply_error(struct MHD_Connection *c, const srv_err *e);
enum MHD_Result srv_reply_bytes(struct MHD_Connection *c, int status, const char *type, const void *data, size_t n);
double srv_now(void); /* seconds since the epoch */

/* ---- native.c, a1111.c: one entry each; path is the URL path, body the request body (may be NULL). */
enum MHD_Result srv_native(srv *s, struct MHD_Connection *c, const char *method, const char *path, const char *body,
                           size_t body_n);
enum MHD_Result srv_a1111(srv *s, struct MHD_Connection *c, const char *method, const char *path, const char *body,
                          size_t body_n);
/* Parse a JSON object body: NULL with *e (400) when it is not one. */
cJSON *srv_parse_body(const char *body, size_t n, srv_err *e);
cJSON *srv_job_json(srv *s, srv_job *j); /* the job as GET /v1/jobs/{id} answers */

/* ---- page.c (generated from web/index.html) */
extern const unsigned char srv_page_html[];
extern const size_t srv_page_html_len;

#endif
