/* The job queue: a bounded FIFO, one worker thread that owns the pipeline and runs one generation at a
 * time, and the finished jobs kept for their clients. One mutex guards everything; a condition variable
 * wakes the worker and every waiter (synchronous clients, event streams) on each change. */
#define _GNU_SOURCE /* POLLRDHUP: the peer closed its side */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/error.h"
#include "server/server_internal.h"

struct srv_job {
    char id[24];
    int refs;
    job_state state;
    srv_request *req;
    int step, total, image_no;
    double created, started, finished;
    double sampling_prev, sampling_cur; /* denoising seconds: finished images, this one (the ETA's rate) */
    int steps_prev;                     /* steps of the finished images */
    job_image images[SRV_MAX_IMAGES];
    int n_done;
    job_image preview;  /* the latest live preview (PNG, 1/8 size) while running; seed unused */
    int preview_step;   /* steps done (all images) when it was made, 0: none */
    srv_err error;
    atomic_int cancel, interrupt; /* interrupt: A1111's, with cancel set (keep the partial image) */
    int interrupted;
    int client_fd; /* >= 0: a synchronous client, polled for hang-up */
    unsigned version;
    srv_job *next; /* queue link */
};

struct srv_jobs {
    pthread_mutex_t mu;
    pthread_cond_t changed;
    pthread_t worker;
    int worker_started, stop;
    is_pipeline *pipeline;
    srv_job *head, *tail, *running;
    int queued, capacity;
    srv_job **finished; /* ring of the last `keep` finished jobs: n_finished of them from finished_at */
    int keep, n_finished, finished_at;
    unsigned long long next_id;
};

const char *job_state_name(job_state s) {
    static const char *const names[] = {"queued", "running", "done", "failed", "cancelled"};
    return s <= JOB_CANCELLED ? names[s] : "?";
}

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static void job_free(srv_job *j) {
    srv_request_free(j->req);
    for (int i = 0; i < j->n_done; i++) free(j->images[i].png), free(j->images[i].infotext);
    free(j->preview.png);
    free(j);
}

/* under mu */
static void unref(srv_job *j) {
    if (--j->refs == 0) job_free(j);
}

static void touch(srv_jobs *q, srv_job *j) {
    j->version++;
    pthread_cond_broadcast(&q->changed);
}

/* A finished job goes to the ring of the last `keep` (the ring's reference); the oldest leaves it. Under mu. */
static void retire(srv_jobs *q, srv_job *j) {
    if (q->n_finished == q->keep) {
        unref(q->finished[q->finished_at]);
        q->finished[q->finished_at] = NULL;
        q->finished_at = (q->finished_at + 1) % q->keep;
        q->n_finished--;
    }
    q->finished[(q->finished_at + q->n_finished) % q->keep] = j;
    j->refs++;
    q->n_finished++;
}

/* ---- callbacks from is_generate (worker thread) */

int srv_client_gone(int fd) {
    if (fd < 0) return 0;
    struct pollfd p = {.fd = fd, .events = POLLIN | POLLRDHUP};
    if (poll(&p, 1, 0) <= 0) return 0;
    return (p.revents & (POLLRDHUP | POLLHUP | POLLERR | POLLNVAL)) != 0;
}

typedef struct {
    srv_jobs *q;
    srv_job *j;
    const is_generate_params *gp; /* the image being made (for the preview PNG's parameters) */
} cb_ctx;

/* A1111's interrupt keeps what the sampler has (the image of its last x0 prediction); DELETE, a client gone or
 * the server stopping cancel outright. */
static int on_cancel(void *user) {
    cb_ctx *c = user;
    if (atomic_load(&c->j->cancel)) return atomic_load(&c->j->interrupt) ? IS_CANCEL_KEEP_PARTIAL : 1;
    if (srv_client_gone(c->j->client_fd)) {
        atomic_store(&c->j->cancel, 1);
        return 1;
    }
    return 0;
}

/* A live preview: a small PNG replacing the last one (encoded outside the lock; the progress call that
 * follows announces it). */
static void on_preview(void *user, int step, int total, const is_image *rgb) {
    (void)total;
    cb_ctx *c = user;
    is_image_result img = {.width = rgb->width, .height = rgb->height, .rgb = rgb->rgb};
    uint8_t *png = NULL;
    size_t n = 0;
    is_error *err = is_encode_png(&img, c->q->pipeline, c->gp, &png, &n);
    if (err) { /* a preview is optional: keep the last one */
        is_error_free(err);
        return;
    }
    pthread_mutex_lock(&c->q->mu);
    free(c->j->preview.png);
    c->j->preview.png = png, c->j->preview.png_n = n;
    c->j->preview_step = c->j->steps_prev + step;
    pthread_mutex_unlock(&c->q->mu);
}

/* seconds: since this image's denoising began */
static void on_progress(void *user, int step, int total, double seconds) {
    cb_ctx *c = user;
    pthread_mutex_lock(&c->q->mu);
    c->j->sampling_cur = seconds;
    c->j->step = step, c->j->total = total;
    touch(c->q, c->j);
    pthread_mutex_unlock(&c->q->mu);
}

/* ---- the worker */

static void run_job(srv_jobs *q, srv_job *j) {
    srv_request *r = j->req;
    cb_ctx ctx = {q, j, NULL};
    is_error *err = NULL;
    for (int i = 0; i < r->n_images && !err && !atomic_load(&j->cancel); i++) {
        is_generate_params gp = r->gp;
        gp.seed = r->seed + (uint64_t)i;
        gp.progress = on_progress, gp.cancel = on_cancel, gp.preview = on_preview, gp.user = &ctx;
        ctx.gp = &gp;
        pthread_mutex_lock(&q->mu);
        j->sampling_prev += j->sampling_cur, j->steps_prev += j->step;
        j->sampling_cur = 0;
        j->image_no = i, j->step = 0, j->total = gp.steps;
        touch(q, j);
        pthread_mutex_unlock(&q->mu);
        is_image_result res = {0};
        err = is_generate(q->pipeline, &gp, &res);
        job_image im = {.seed = gp.seed};
        if (!err) err = is_encode_png(&res, q->pipeline, &gp, &im.png, &im.png_n);
        if (!err && !(im.infotext = is_parameters_text(&res, q->pipeline, &gp))) err = is_errorf(IS_E_NOMEM, "out of memory");
        is_image_result_free(&res);
        pthread_mutex_lock(&q->mu);
        if (!err) j->images[j->n_done++] = im;
        else free(im.png), free(im.infotext);
        pthread_mutex_unlock(&q->mu);
    }
    pthread_mutex_lock(&q->mu);
    j->finished = now_s();
    if (!err && !atomic_load(&j->cancel)) {
        j->state = JOB_DONE;
    } else if (!err || is_error_code(err) == IS_E_CANCELLED) { /* interrupted: the images so far stay */
        j->state = JOB_CANCELLED;
    } else {
        is_status st = is_error_code(err);
        int status = st == IS_E_ARGUMENT || st == IS_E_FORMAT || st == IS_E_UNSUPPORTED || st == IS_E_SHAPE ? 400 : 500;
        srv_fail(&j->error, status, "", "%s", is_error_message(err));
        if (status == 500) snprintf(j->error.code, sizeof j->error.code, "generation_failed");
        j->state = JOB_FAILED;
    }
    is_error_free(err);
    /* the decoded images and the preview are no longer needed; the echo and results stay */
    free(j->preview.png);
    j->preview = (job_image){0};
    is_image_free(&r->style), is_image_free(&r->init), is_image_free(&r->mask);
    r->gp.style_rgb = r->gp.init_rgb = r->gp.mask_rgb = NULL;
    q->running = NULL;
    retire(q, j);
    touch(q, j);
    unref(j); /* the worker's */
    pthread_mutex_unlock(&q->mu);
}

static void *worker(void *arg) {
    srv_jobs *q = arg;
    pthread_mutex_lock(&q->mu);
    for (;;) {
        while (!q->head && !q->stop) pthread_cond_wait(&q->changed, &q->mu);
        if (q->stop) break;
        srv_job *j = q->head;
        q->head = j->next;
        if (!q->head) q->tail = NULL;
        j->next = NULL;
        q->queued--;
        j->state = JOB_RUNNING;
        j->started = now_s();
        q->running = j;
        touch(q, j);
        pthread_mutex_unlock(&q->mu);
        run_job(q, j);
        pthread_mutex_lock(&q->mu);
    }
    pthread_mutex_unlock(&q->mu);
    return NULL;
}

srv_jobs *jobs_start(is_pipeline *p, int capacity, int keep_finished) {
    srv_jobs *q = calloc(1, sizeof *q);
    if (!q) return NULL;
    q->pipeline = p, q->capacity = capacity, q->keep = keep_finished > 0 ? keep_finished : 1;
    q->finished = calloc((size_t)q->keep, sizeof *q->finished);
    pthread_mutex_init(&q->mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&q->changed, &ca);
    pthread_condattr_destroy(&ca);
    if (!q->finished || pthread_create(&q->worker, NULL, worker, q)) {
        jobs_shutdown(q);
        jobs_free(q);
        return NULL;
    }
    q->worker_started = 1;
    return q;
}

void jobs_shutdown(srv_jobs *q) {
    if (!q) return;
    pthread_mutex_lock(&q->mu);
    q->stop = 1;
    if (q->running) atomic_store(&q->running->cancel, 1);
    for (srv_job *j = q->head, *next; j; j = next) { /* dropped: cancelled */
        next = j->next;
        j->state = JOB_CANCELLED;
        touch(q, j);
        unref(j);
    }
    q->head = q->tail = NULL;
    q->queued = 0;
    pthread_cond_broadcast(&q->changed);
    pthread_mutex_unlock(&q->mu);
    if (q->worker_started) pthread_join(q->worker, NULL);
    q->worker_started = 0;
}

void jobs_free(srv_jobs *q) {
    if (!q) return;
    for (int i = 0; q->finished && i < q->keep; i++)
        if (q->finished[i]) unref(q->finished[i]);
    free(q->finished);
    pthread_cond_destroy(&q->changed);
    pthread_mutex_destroy(&q->mu);
    free(q);
}

srv_job *jobs_submit(srv_jobs *q, srv_request *req, int client_fd, int *position) {
    pthread_mutex_lock(&q->mu);
    if (q->stop || q->queued >= q->capacity) {
        pthread_mutex_unlock(&q->mu);
        return NULL;
    }
    srv_job *j = calloc(1, sizeof *j);
    if (!j) {
        pthread_mutex_unlock(&q->mu);
        return NULL;
    }
    snprintf(j->id, sizeof j->id, "j%llu", ++q->next_id);
    j->req = req, j->client_fd = client_fd, j->created = now_s(), j->state = JOB_QUEUED;
    j->refs = 2; /* the queue / worker's and the caller's */
    if (q->tail) q->tail->next = j;
    else q->head = j;
    q->tail = j;
    if (position) *position = q->queued + (q->running ? 1 : 0);
    q->queued++;
    touch(q, j);
    pthread_mutex_unlock(&q->mu);
    return j;
}

srv_job *jobs_find(srv_jobs *q, const char *id) {
    srv_job *found = NULL;
    pthread_mutex_lock(&q->mu);
    if (q->running && !strcmp(q->running->id, id)) found = q->running;
    for (srv_job *j = q->head; j && !found; j = j->next)
        if (!strcmp(j->id, id)) found = j;
    for (int i = 0; i < q->keep && !found; i++)
        if (q->finished[i] && !strcmp(q->finished[i]->id, id)) found = q->finished[i];
    if (found) found->refs++;
    pthread_mutex_unlock(&q->mu);
    return found;
}

void jobs_release(srv_jobs *q, srv_job *j) {
    if (!j) return;
    pthread_mutex_lock(&q->mu);
    unref(j);
    pthread_mutex_unlock(&q->mu);
}

const char *job_id(const srv_job *j) { return j->id; }
const srv_request *job_request(const srv_job *j) { return j->req; }

void jobs_cancel(srv_jobs *q, srv_job *j) {
    pthread_mutex_lock(&q->mu);
    if (j->state == JOB_QUEUED) { /* out of the queue at once */
        srv_job **link = &q->head, *prev = NULL;
        while (*link && *link != j) prev = *link, link = &(*link)->next;
        if (*link) {
            *link = j->next;
            if (q->tail == j) q->tail = prev;
            j->next = NULL;
            q->queued--;
            j->state = JOB_CANCELLED;
            j->finished = now_s();
            retire(q, j);
            unref(j); /* the queue's */
        }
    } else if (j->state == JOB_RUNNING) {
        atomic_store(&j->cancel, 1); /* stops before the next step */
    }
    touch(q, j);
    pthread_mutex_unlock(&q->mu);
}

int jobs_interrupt(srv_jobs *q) {
    pthread_mutex_lock(&q->mu);
    srv_job *j = q->running;
    if (j) {
        j->interrupted = 1;
        atomic_store(&j->interrupt, 1);
        atomic_store(&j->cancel, 1);
        touch(q, j);
    }
    pthread_mutex_unlock(&q->mu);
    return j != NULL;
}

void jobs_snapshot(srv_jobs *q, srv_job *j, job_snapshot *s) {
    pthread_mutex_lock(&q->mu);
    memset(s, 0, sizeof *s);
    s->state = j->state;
    s->position = -1;
    if (j->state == JOB_QUEUED) {
        int k = q->running ? 1 : 0;
        for (srv_job *x = q->head; x && x != j; x = x->next) k++;
        s->position = k;
    }
    /* before it runs, the steps asked for (img2img runs int(steps * strength) of them: the count the sampler
     * reports replaces it) */
    s->step = j->step, s->total = j->total ? j->total : j->req->gp.steps, s->image_no = j->image_no;
    s->n_images = j->req->n_images, s->n_done = j->n_done;
    s->created = j->created, s->started = j->started, s->finished = j->finished;
    s->interrupted = j->interrupted;
    s->version = j->version;
    s->preview_step = j->preview.png ? j->preview_step : 0;
    s->error = j->error;
    int per = j->total > 0 ? j->total : j->req->gp.steps;
    double all = (double)per * s->n_images, done = (double)per * j->image_no + j->step;
    s->fraction = j->state == JOB_DONE ? 1.0 : all > 0 ? done / all : 0;
    int steps_done = j->steps_prev + j->step;
    if (j->state == JOB_RUNNING && steps_done > 0) s->eta_s = (j->sampling_prev + j->sampling_cur) / steps_done * (all - done);
    pthread_mutex_unlock(&q->mu);
}

unsigned jobs_wait(srv_jobs *q, srv_job *j, unsigned seen, double timeout_s) {
    struct timespec until;
    clock_gettime(CLOCK_MONOTONIC, &until);
    long long ns = (long long)(timeout_s * 1e9) + until.tv_nsec;
    until.tv_sec += (time_t)(ns / 1000000000LL);
    until.tv_nsec = (long)(ns % 1000000000LL);
    pthread_mutex_lock(&q->mu);
    while (j->version == seen && !q->stop)
        if (pthread_cond_timedwait(&q->changed, &q->mu, &until) == ETIMEDOUT) break;
    unsigned v = j->version;
    pthread_mutex_unlock(&q->mu);
    return v;
}

uint8_t *job_preview_copy(srv_jobs *q, srv_job *j, size_t *n, int *step) {
    pthread_mutex_lock(&q->mu);
    uint8_t *copy = j->preview.png ? malloc(j->preview.png_n) : NULL;
    if (copy) memcpy(copy, j->preview.png, j->preview.png_n);
    *n = copy ? j->preview.png_n : 0;
    if (step) *step = j->preview_step;
    pthread_mutex_unlock(&q->mu);
    return copy;
}

const job_image *job_image_at(srv_jobs *q, srv_job *j, int i) {
    pthread_mutex_lock(&q->mu);
    const job_image *im = i >= 0 && i < j->n_done ? &j->images[i] : NULL;
    pthread_mutex_unlock(&q->mu);
    return im;
}

srv_job *jobs_running(srv_jobs *q, int *queued, int *capacity) {
    pthread_mutex_lock(&q->mu);
    srv_job *j = q->running;
    if (j) j->refs++;
    if (queued) *queued = q->queued;
    if (capacity) *capacity = q->capacity;
    pthread_mutex_unlock(&q->mu);
    return j;
}
