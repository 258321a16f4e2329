/* The native API: /v1/info, /v1/jobs (submit), /v1/jobs/{id} (state, cancel), its image and its
 * server-sent event stream. docs/SERVER.md. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server/server_internal.h"

#define KEEPALIVE_S 15.0

static enum MHD_Result fail(struct MHD_Connection *c, int status, const char *field, const char *fmt, const char *arg) {
    srv_err e;
    srv_fail(&e, status, field, fmt, arg);
    return srv_reply_error(c, &e);
}

static void add_time(cJSON *o, const char *key, double t) {
    if (t > 0) cJSON_AddNumberToObject(o, key, t);
    else cJSON_AddNullToObject(o, key);
}

/* Jobs ahead: a number while queued, 0 once running, null when finished. */
static void add_position(cJSON *o, const job_snapshot *sn) {
    if (sn->state == JOB_QUEUED || sn->state == JOB_RUNNING) cJSON_AddNumberToObject(o, "position", sn->state == JOB_QUEUED ? sn->position : 0);
    else cJSON_AddNullToObject(o, "position");
}

/* Seconds left: null until a step has run (nothing to go by), 0 when finished. */
static void add_eta(cJSON *o, const job_snapshot *sn) {
    if (sn->state == JOB_QUEUED || (sn->state == JOB_RUNNING && sn->step == 0 && sn->image_no == 0)) cJSON_AddNullToObject(o, "eta_seconds");
    else cJSON_AddNumberToObject(o, "eta_seconds", sn->eta_s);
}

/* step, total, image, images, fraction, eta_seconds (and the live preview's URL) of a snapshot into o. */
static void add_progress(cJSON *o, const job_snapshot *sn, const char *id) {
    if (sn->state == JOB_RUNNING && sn->preview_step > 0) {
        char url[96];
        snprintf(url, sizeof url, "/v1/jobs/%s/preview.png?step=%d", id, sn->preview_step); /* a new URL per step */
        cJSON_AddStringToObject(o, "preview", url);
    }
    cJSON_AddNumberToObject(o, "step", sn->step);
    cJSON_AddNumberToObject(o, "total", sn->total);
    cJSON_AddNumberToObject(o, "image", sn->image_no);
    cJSON_AddNumberToObject(o, "images", sn->n_images);
    cJSON_AddNumberToObject(o, "fraction", sn->fraction);
    add_eta(o, sn);
}

cJSON *srv_job_json(srv *s, srv_job *j) {
    job_snapshot sn;
    jobs_snapshot(s->jobs, j, &sn);
    const srv_request *r = job_request(j);
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "id", job_id(j));
    cJSON_AddStringToObject(o, "state", job_state_name(sn.state));
    add_position(o, &sn);
    add_progress(cJSON_AddObjectToObject(o, "progress"), &sn, job_id(j));
    add_time(o, "created", sn.created);
    add_time(o, "started", sn.started);
    add_time(o, "finished", sn.finished);
    if (sn.finished > 0 && sn.started > 0) cJSON_AddNumberToObject(o, "seconds", sn.finished - sn.started);
    cJSON_AddItemToObject(o, "params", cJSON_Duplicate(r->params, 1));
    if (sn.state == JOB_DONE || (sn.state == JOB_CANCELLED && sn.n_done > 0)) {
        const job_image *im = job_image_at(s->jobs, j, 0);
        cJSON *res = cJSON_AddObjectToObject(o, "result");
        char url[96];
        snprintf(url, sizeof url, "/v1/jobs/%s/image.png", job_id(j));
        cJSON_AddStringToObject(res, "image", url);
        cJSON_AddNumberToObject(res, "width", r->gp.width);
        cJSON_AddNumberToObject(res, "height", r->gp.height);
        if (im) {
            cJSON_AddNumberToObject(res, "seed", (double)im->seed);
            cJSON_AddStringToObject(res, "info", im->infotext);
        }
    }
    if (sn.state == JOB_FAILED) {
        cJSON *e = cJSON_AddObjectToObject(o, "error");
        cJSON_AddNumberToObject(e, "status", sn.error.status);
        cJSON_AddStringToObject(e, "code", sn.error.code);
        cJSON_AddStringToObject(e, "message", sn.error.message);
    }
    return o;
}

static enum MHD_Result info(srv *s, struct MHD_Connection *c) {
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "version", IS_VERSION_STRING);
    cJSON_AddStringToObject(o, "model", s->cfg->model_name ? s->cfg->model_name : s->cfg->pipeline.model_dir);
    if (s->cfg->pipeline.ip_adapter) cJSON_AddStringToObject(o, "ip_adapter", s->cfg->pipeline.ip_adapter);
    else cJSON_AddNullToObject(o, "ip_adapter");
    cJSON *sm = cJSON_AddArrayToObject(o, "samplers");
    for (int i = IS_SAMPLER_EULER; i <= IS_SAMPLER_TCD; i++) cJSON_AddItemToArray(sm, cJSON_CreateString(is_sampler_name((is_sampler)i)));
    cJSON *pr = cJSON_AddArrayToObject(o, "presets");
    for (int i = 0; i < is_preset_count(); i++) cJSON_AddItemToArray(pr, cJSON_CreateString(is_preset_name(i)));
    cJSON *modes = cJSON_AddArrayToObject(o, "style_modes");
    const char *names[] = {"style", "style+layout", "all"};
    for (int i = 0; i < 3; i++) cJSON_AddItemToArray(modes, cJSON_CreateString(names[i]));
    cJSON_AddNumberToObject(o, "max_size", s->cfg->max_size);
    cJSON_AddNumberToObject(o, "max_steps", SRV_MAX_STEPS);
    int queued = 0, cap = 0;
    srv_job *run = jobs_running(s->jobs, &queued, &cap);
    cJSON *q = cJSON_AddObjectToObject(o, "queue");
    cJSON_AddNumberToObject(q, "capacity", cap);
    cJSON_AddNumberToObject(q, "queued", queued);
    cJSON_AddNumberToObject(q, "running", run ? 1 : 0);
    jobs_release(s->jobs, run);
    is_generate_params d;
    is_generate_params_init(&d);
    cJSON *df = cJSON_AddObjectToObject(o, "defaults");
    cJSON_AddNumberToObject(df, "steps", d.steps);
    cJSON_AddNumberToObject(df, "cfg", d.cfg);
    cJSON_AddNumberToObject(df, "ip_scale", d.ip_scale);
    cJSON_AddNumberToObject(df, "content_scale", d.content_scale);
    cJSON_AddStringToObject(df, "style_mode", d.style_blocks ? d.style_blocks : "style");
    cJSON_AddNumberToObject(df, "seed", -1);
    return srv_reply_json(c, 200, o);
}

static enum MHD_Result submit(srv *s, struct MHD_Connection *c, const char *body, size_t n) {
    srv_err e = {0};
    cJSON *b = srv_parse_body(body, n, &e);
    srv_request *r = b ? srv_parse_native(b, s->cfg, &e) : NULL;
    cJSON_Delete(b);
    if (r && srv_check_style_blocks(s, r->style_blocks, "style_mode", &e)) {
        srv_request_free(r);
        r = NULL;
    }
    if (!r) return srv_reply_error(c, &e);
    int position = 0;
    srv_job *j = jobs_submit(s->jobs, r, -1, &position);
    if (!j) {
        srv_request_free(r);
        srv_fail(&e, 503, "", "the queue is full (%d jobs): try again later", s->cfg->queue);
        return srv_reply_error(c, &e);
    }
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "id", job_id(j));
    cJSON_AddStringToObject(o, "state", "queued");
    cJSON_AddNumberToObject(o, "position", position);
    jobs_release(s->jobs, j);
    return srv_reply_json(c, 202, o);
}

/* ---- server-sent events */

typedef struct {
    srv *s;
    srv_job *j;
    unsigned seen;
    int first, ended;
    char *pending; /* bytes not yet handed to MHD */
    size_t len, at;
} stream;

static void stream_free(void *cls) {
    stream *st = cls;
    jobs_release(st->s->jobs, st->j);
    free(st->pending);
    free(st);
}

static void set_pending(stream *st, const char *name, char *data) {
    if (name && !data) { /* out of memory: end the stream */
        st->ended = 1;
        return;
    }
    size_t cap = (data ? strlen(data) : 0) + 64;
    st->pending = malloc(cap);
    if (!st->pending) st->ended = 1;
    else if (name) st->len = (size_t)snprintf(st->pending, cap, "event: %s\ndata: %s\n\n", name, data);
    else st->len = (size_t)snprintf(st->pending, cap, ": keep-alive\n\n");
    free(data);
}

/* The next event into st->pending, blocking until the job changes (or a keep-alive comment after
 * KEEPALIVE_S without change). */
static void next_event(stream *st) {
    free(st->pending);
    st->pending = NULL, st->len = st->at = 0;
    unsigned before = st->seen;
    if (!st->first) st->seen = jobs_wait(st->s->jobs, st->j, st->seen, KEEPALIVE_S);
    job_snapshot sn;
    jobs_snapshot(st->s->jobs, st->j, &sn);
    int final = sn.state == JOB_DONE || sn.state == JOB_FAILED || sn.state == JOB_CANCELLED;
    int stopping = atomic_load(&st->s->stopping);
    if (!st->first && !final && !stopping && sn.version == before) { /* nothing new */
        set_pending(st, NULL, NULL);
        return;
    }
    st->first = 0;
    st->seen = sn.version;
    if (final || stopping) { /* the last event: the job as GET gives it */
        cJSON *o = srv_job_json(st->s, st->j);
        st->ended = 1;
        set_pending(st, final ? job_state_name(sn.state) : "cancelled", o ? cJSON_PrintUnformatted(o) : NULL);
        cJSON_Delete(o);
        return;
    }
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "state", job_state_name(sn.state));
    add_progress(o, &sn, job_id(st->j));
    add_position(o, &sn);
    set_pending(st, "progress", cJSON_PrintUnformatted(o));
    cJSON_Delete(o);
}

static ssize_t stream_read(void *cls, uint64_t pos, char *buf, size_t max) {
    (void)pos;
    stream *st = cls;
    if (st->at == st->len) {
        if (st->ended) return MHD_CONTENT_READER_END_OF_STREAM;
        next_event(st);
        if (!st->pending) return MHD_CONTENT_READER_END_OF_STREAM;
    }
    size_t k = st->len - st->at < max ? st->len - st->at : max;
    memcpy(buf, st->pending + st->at, k);
    st->at += k;
    return (ssize_t)k;
}

static enum MHD_Result events(srv *s, struct MHD_Connection *c, srv_job *j) {
    stream *st = calloc(1, sizeof *st);
    if (!st) {
        jobs_release(s->jobs, j);
        return MHD_NO;
    }
    *st = (stream){.s = s, .j = j, .first = 1};
    struct MHD_Response *r = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 4096, stream_read, st, stream_free);
    if (!r) {
        stream_free(st);
        return MHD_NO;
    }
    MHD_add_response_header(r, "Content-Type", "text/event-stream");
    MHD_add_response_header(r, "Cache-Control", "no-store");
    MHD_add_response_header(r, "X-Accel-Buffering", "no"); /* nginx: do not buffer the stream */
    return srv_queue_response(c, 200, r);
}

/* ---- routing: /v1/info, /v1/jobs, /v1/jobs/{id}[/image.png|/events] */

enum MHD_Result srv_native(srv *s, struct MHD_Connection *c, const char *method, const char *path, const char *body,
                           size_t body_n) {
    int get = !strcmp(method, "GET") || !strcmp(method, "HEAD");
    if (!strcmp(path, "/v1/info")) return get ? info(s, c) : fail(c, 405, "", "%s: only GET", path);
    if (!strcmp(path, "/v1/jobs") || !strcmp(path, "/v1/jobs/"))
        return !strcmp(method, "POST") ? submit(s, c, body, body_n) : fail(c, 405, "", "%s: only POST", path);
    if (strncmp(path, "/v1/jobs/", 9)) return fail(c, 404, "", "%.200s: no such path", path);
    char id[32];
    const char *rest = path + 9, *slash = strchr(rest, '/');
    size_t idn = slash ? (size_t)(slash - rest) : strlen(rest);
    if (idn == 0 || idn >= sizeof id) return fail(c, 404, "", "%.200s: no such job", path);
    memcpy(id, rest, idn);
    id[idn] = 0;
    const char *sub = slash ? slash : "";
    if (*sub && strcmp(sub, "/image.png") && strcmp(sub, "/events") && strcmp(sub, "/preview.png"))
        return fail(c, 404, "", "%.200s: no such path", path);
    srv_job *j = jobs_find(s->jobs, id);
    if (!j) return fail(c, 404, "id", "job %s: not found (finished jobs are kept for the last 64)", id);
    if (!*sub && !strcmp(method, "DELETE")) {
        jobs_cancel(s->jobs, j);
        cJSON *o = srv_job_json(s, j);
        jobs_release(s->jobs, j);
        return srv_reply_json(c, 200, o);
    }
    if (!get) {
        jobs_release(s->jobs, j);
        return fail(c, 405, "", "%s: GET (or DELETE for the job)", path);
    }
    if (!*sub) {
        cJSON *o = srv_job_json(s, j);
        jobs_release(s->jobs, j);
        return srv_reply_json(c, 200, o);
    }
    if (!strcmp(sub, "/events")) return events(s, c, j); /* the stream keeps the reference */
    if (!strcmp(sub, "/preview.png")) {
        size_t n = 0;
        uint8_t *png = job_preview_copy(s->jobs, j, &n, NULL);
        jobs_release(s->jobs, j);
        enum MHD_Result ok = png ? srv_reply_bytes(c, 200, "image/png", png, n)
                                 : fail(c, 404, "id", "job %s: no preview (only while it runs)", id);
        free(png);
        return ok;
    }
    const job_image *im = job_image_at(s->jobs, j, 0);
    enum MHD_Result ok = im ? srv_reply_bytes(c, 200, "image/png", im->png, im->png_n)
                            : fail(c, 404, "id", "job %s: no image yet", id);
    jobs_release(s->jobs, j);
    return ok;
}
