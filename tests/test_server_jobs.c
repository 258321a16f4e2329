/* The server's job queue (server/jobs.c) without HTTP or a model: with no pipeline every generation fails at
 * once (is_generate refuses a NULL pipeline), so many jobs pass through quickly. Checks that every job ends,
 * cancelling, the ring of the last finished jobs (older ones are forgotten, newer
 * ones found, each job freed once: ASan), and a clean shutdown with jobs still queued. */
#include <stdio.h>
#include <string.h>

#include "harness.h"
#include "server/server_internal.h"

#define KEEP 8

static srv_request *request(int steps) {
    char body[128];
    snprintf(body, sizeof body, "{\"prompt\": \"a cat\", \"steps\": %d, \"seed\": 7}", steps);
    srv_config cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.max_size = 1024;
    srv_err e;
    cJSON *b = srv_parse_body(body, strlen(body), &e);
    srv_request *r = b ? srv_parse_native(b, &cfg, &e) : NULL;
    cJSON_Delete(b);
    th_check(r != NULL, "request parses: %s", r ? "" : e.message);
    return r;
}

static job_state wait_final(srv_jobs *q, srv_job *j) {
    job_snapshot s;
    for (int k = 0; k < 2000; k++) {
        jobs_snapshot(q, j, &s);
        if (s.state == JOB_DONE || s.state == JOB_FAILED || s.state == JOB_CANCELLED) return s.state;
        jobs_wait(q, j, s.version, 0.05);
    }
    return s.state;
}

int main(void) {
    srv_jobs *q = jobs_start(NULL, 4, KEEP);
    th_check(q != NULL, "the queue starts");
    if (!q) return th_done();

    /* 40 jobs one after the other: each fails (no pipeline) with a 4xx/5xx error message */
    char ids[40][24];
    for (int i = 0; i < 40; i++) {
        srv_request *r = request(1 + i % 3);
        int pos = -1;
        srv_job *j = r ? jobs_submit(q, r, -1, &pos) : NULL;
        th_check(j != NULL, "job %d queued", i);
        if (!j) {
            srv_request_free(r);
            continue;
        }
        snprintf(ids[i], sizeof ids[i], "%s", job_id(j));
        th_check(wait_final(q, j) == JOB_FAILED, "job %d fails without a pipeline", i);
        job_snapshot s;
        jobs_snapshot(q, j, &s);
        th_check(s.error.status >= 400 && s.error.message[0], "job %d: error %d '%s'", i, s.error.status, s.error.message);
        jobs_release(q, j);
    }
    /* the ring keeps the last KEEP finished jobs */
    for (int i = 0; i < 40; i++) {
        srv_job *j = jobs_find(q, ids[i]);
        th_check((j != NULL) == (i >= 40 - KEEP), "job %s %s", ids[i], j ? "found" : "forgotten");
        jobs_release(q, j);
    }
    th_check(jobs_find(q, "j999") == NULL, "an unknown id is not found");

    /* many quick submissions (the bound itself needs a generation that takes time: tests/server/api_test.mjs
     * checks the 503): every one ends, cancelled or failed */
    int accepted = 0;
    srv_job *held[64];
    for (int i = 0; i < 64; i++) {
        srv_request *r = request(150);
        srv_job *j = jobs_submit(q, r, -1, NULL);
        if (j) held[accepted++] = j;
        else srv_request_free(r);
    }
    th_check(accepted > 0, "submissions accepted (%d of 64)", accepted);
    /* cancelling: queued ones leave at once; all end cancelled or failed */
    for (int i = 0; i < accepted; i++) jobs_cancel(q, held[i]);
    for (int i = 0; i < accepted; i++) {
        job_state st = wait_final(q, held[i]);
        th_check(st == JOB_CANCELLED || st == JOB_FAILED, "cancelled job %d ends %s", i, job_state_name(st));
        jobs_release(q, held[i]);
    }
    /* shutdown with jobs queued: they end cancelled, nothing leaks */
    srv_job *last[3];
    for (int i = 0; i < 3; i++) last[i] = jobs_submit(q, request(150), -1, NULL);
    jobs_shutdown(q);
    for (int i = 0; i < 3; i++)
        if (last[i]) {
            job_snapshot s;
            jobs_snapshot(q, last[i], &s);
            th_check(s.state == JOB_CANCELLED || s.state == JOB_FAILED, "after shutdown job %d is %s", i, job_state_name(s.state));
            jobs_release(q, last[i]);
        }
    jobs_free(q);
    return th_done();
}
