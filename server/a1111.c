/* The A1111 web UI API (/sdapi/v1/...), as AUTOMATIC1111/stable-diffusion-webui modules/api/api.py
 * answers it, for the clients written against it (Krita plugins, bots, scripts). txt2img / img2img are
 * synchronous: the answer comes with the images; a client that hangs up cancels its job. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "server/base64.h"
#include "server/server_internal.h"

static enum MHD_Result fail(struct MHD_Connection *c, int status, const char *fmt, const char *arg) {
    srv_err e;
    srv_fail(&e, status, "", fmt, arg);
    return srv_reply_error(c, &e);
}

static void timestamp(double t, char *out, size_t cap) {
    time_t s = (time_t)t;
    struct tm tm;
    gmtime_r(&s, &tm);
    strftime(out, cap, "%Y%m%d%H%M%S", &tm);
}

/* The "info" string: a JSON text, as A1111's Processed.js() gives it. */
static char *info_text(srv *s, srv_job *j, const job_snapshot *sn) {
    const srv_request *r = job_request(j);
    cJSON *o = cJSON_CreateObject();
    const char *prompt = r->prompt ? r->prompt : "", *neg = r->negative_prompt ? r->negative_prompt : "";
    cJSON_AddStringToObject(o, "prompt", prompt);
    cJSON *ap = cJSON_AddArrayToObject(o, "all_prompts"), *an = NULL;
    cJSON_AddStringToObject(o, "negative_prompt", neg);
    an = cJSON_AddArrayToObject(o, "all_negative_prompts");
    cJSON_AddNumberToObject(o, "seed", (double)r->seed);
    cJSON *as = cJSON_AddArrayToObject(o, "all_seeds"), *sub = NULL;
    cJSON_AddNumberToObject(o, "subseed", -1);
    sub = cJSON_AddArrayToObject(o, "all_subseeds");
    cJSON_AddNumberToObject(o, "subseed_strength", 0);
    cJSON_AddNumberToObject(o, "width", r->gp.width);
    cJSON_AddNumberToObject(o, "height", r->gp.height);
    cJSON_AddStringToObject(o, "sampler_name", r->sampler_label);
    cJSON_AddNumberToObject(o, "cfg_scale", r->gp.cfg);
    cJSON_AddNumberToObject(o, "steps", r->gp.steps);
    cJSON_AddNumberToObject(o, "batch_size", r->batch_size);
    cJSON_AddFalseToObject(o, "restore_faces");
    cJSON_AddNullToObject(o, "face_restoration_model");
    cJSON_AddStringToObject(o, "sd_model_name", s->cfg->model_name ? s->cfg->model_name : "");
    cJSON_AddNullToObject(o, "sd_model_hash");
    cJSON_AddNumberToObject(o, "seed_resize_from_w", -1);
    cJSON_AddNumberToObject(o, "seed_resize_from_h", -1);
    if (r->init.rgb || r->gp.strength > 0) cJSON_AddNumberToObject(o, "denoising_strength", r->gp.strength > 0 ? r->gp.strength : 0);
    else cJSON_AddNullToObject(o, "denoising_strength");
    cJSON_AddObjectToObject(o, "extra_generation_params");
    cJSON_AddNumberToObject(o, "index_of_first_image", 0);
    cJSON *inf = cJSON_AddArrayToObject(o, "infotexts");
    cJSON_AddArrayToObject(o, "styles");
    char ts[32];
    timestamp(sn->created, ts, sizeof ts);
    cJSON_AddStringToObject(o, "job_timestamp", ts);
    cJSON_AddNumberToObject(o, "clip_skip", 1);
    cJSON_AddFalseToObject(o, "is_using_inpainting_conditioning");
    cJSON_AddStringToObject(o, "version", IS_VERSION_STRING);
    for (int i = 0;; i++) {
        const job_image *im = job_image_at(s->jobs, j, i);
        if (!im) break;
        cJSON_AddItemToArray(ap, cJSON_CreateString(prompt));
        cJSON_AddItemToArray(an, cJSON_CreateString(neg));
        cJSON_AddItemToArray(as, cJSON_CreateNumber((double)im->seed));
        cJSON_AddItemToArray(sub, cJSON_CreateNumber((double)im->seed));
        cJSON_AddItemToArray(inf, cJSON_CreateString(im->infotext));
    }
    char *text = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    return text;
}

static int client_fd(struct MHD_Connection *c) {
    const union MHD_ConnectionInfo *ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
    return ci ? ci->connect_fd : -1;
}

static enum MHD_Result generate(srv *s, struct MHD_Connection *c, int img2img, const char *body, size_t n) {
    srv_err e = {0};
    cJSON *b = srv_parse_body(body, n, &e);
    srv_request *r = b ? srv_parse_a1111(b, img2img, s->cfg, &e) : NULL;
    int send_images = 1;
    const cJSON *si = b ? cJSON_GetObjectItemCaseSensitive(b, "send_images") : NULL;
    if (cJSON_IsFalse(si)) send_images = 0;
    cJSON_Delete(b);
    if (r && srv_check_style_blocks(s, r->style_blocks, "alwayson_scripts.controlnet.args.style_blocks", &e)) {
        srv_request_free(r);
        r = NULL;
    }
    if (!r) return srv_reply_error(c, &e);
    int fd = client_fd(c);
    srv_job *j = jobs_submit(s->jobs, r, fd, NULL);
    if (!j) {
        srv_request_free(r);
        srv_fail(&e, 503, "", "the queue is full (%d jobs): try again later", s->cfg->queue);
        return srv_reply_error(c, &e);
    }
    job_snapshot sn;
    unsigned seen = 0;
    for (;;) {
        jobs_snapshot(s->jobs, j, &sn);
        if (sn.state == JOB_DONE || sn.state == JOB_FAILED || sn.state == JOB_CANCELLED) break;
        if (atomic_load(&s->stopping) || srv_client_gone(fd)) { /* a queued job of a gone client leaves the queue */
            jobs_cancel(s->jobs, j);
            jobs_snapshot(s->jobs, j, &sn);
            break;
        }
        seen = jobs_wait(s->jobs, j, sn.version, 1.0);
    }
    (void)seen;
    enum MHD_Result ok;
    if (sn.state == JOB_FAILED) {
        ok = srv_reply_error(c, &sn.error);
    } else if (sn.state != JOB_DONE && !(sn.state == JOB_CANCELLED && sn.interrupted)) {
        srv_fail(&e, 409, "", "the job was cancelled (%s)", atomic_load(&s->stopping) ? "the server is stopping" : "client gone");
        ok = srv_reply_error(c, &e);
    } else { /* done, or interrupted: the images made so far, as A1111 */
        cJSON *o = cJSON_CreateObject(), *imgs = cJSON_AddArrayToObject(o, "images");
        for (int i = 0; send_images; i++) {
            const job_image *im = job_image_at(s->jobs, j, i);
            if (!im) break;
            char *b64 = b64_encode(im->png, im->png_n);
            cJSON_AddItemToArray(imgs, b64 ? cJSON_CreateString(b64) : cJSON_CreateNull());
            free(b64);
        }
        cJSON_AddItemToObject(o, "parameters", cJSON_Duplicate(job_request(j)->params, 1));
        char *info = info_text(s, j, &sn);
        cJSON_AddStringToObject(o, "info", info ? info : "{}");
        free(info);
        ok = srv_reply_json(c, 200, o);
    }
    jobs_release(s->jobs, j);
    return ok;
}

static enum MHD_Result progress(srv *s, struct MHD_Connection *c) {
    const char *skip = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "skip_current_image");
    int want_image = !(skip && (!strcasecmp(skip, "true") || !strcmp(skip, "1")));
    int queued = 0;
    srv_job *j = jobs_running(s->jobs, &queued, NULL);
    job_snapshot sn;
    memset(&sn, 0, sizeof sn);
    if (j) jobs_snapshot(s->jobs, j, &sn);
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "progress", j ? sn.fraction : 0);
    cJSON_AddNumberToObject(o, "eta_relative", j ? sn.eta_s : 0);
    cJSON *st = cJSON_AddObjectToObject(o, "state");
    cJSON_AddFalseToObject(st, "skipped");
    cJSON_AddBoolToObject(st, "interrupted", j && sn.interrupted);
    cJSON_AddFalseToObject(st, "stopping_generation");
    cJSON_AddStringToObject(st, "job", j ? job_id(j) : "");
    cJSON_AddNumberToObject(st, "job_count", (j ? 1 : 0) + queued);
    char ts[32] = "0";
    if (j) timestamp(sn.created, ts, sizeof ts);
    cJSON_AddStringToObject(st, "job_timestamp", ts);
    cJSON_AddNumberToObject(st, "job_no", j ? sn.image_no : 0);
    cJSON_AddNumberToObject(st, "sampling_step", j ? sn.step : 0);
    cJSON_AddNumberToObject(st, "sampling_steps", j ? sn.total : 0);
    size_t png_n = 0;
    uint8_t *png = j && want_image ? job_preview_copy(s->jobs, j, &png_n, NULL) : NULL;
    char *b64 = png ? b64_encode(png, png_n) : NULL;
    if (b64) cJSON_AddStringToObject(o, "current_image", b64); /* the live preview: 1/8 size, latents mapped to RGB */
    else cJSON_AddNullToObject(o, "current_image");
    free(b64);
    free(png);
    if (j) {
        char text[96];
        snprintf(text, sizeof text, "image %d/%d, step %d/%d", sn.image_no + 1, sn.n_images, sn.step, sn.total);
        cJSON_AddStringToObject(o, "textinfo", text);
    } else {
        cJSON_AddNullToObject(o, "textinfo");
    }
    jobs_release(s->jobs, j);
    return srv_reply_json(c, 200, o);
}

static enum MHD_Result samplers(struct MHD_Connection *c) {
    cJSON *a = cJSON_CreateArray();
    const char *alias = NULL, *name;
    for (int i = 0; (name = srv_a1111_sampler(i, &alias)); i++) {
        cJSON *o = cJSON_CreateObject(), *al = cJSON_AddArrayToObject(o, "aliases");
        cJSON_AddStringToObject(o, "name", name);
        cJSON_AddItemToArray(al, cJSON_CreateString(alias));
        cJSON_AddObjectToObject(o, "options");
        cJSON_AddItemToArray(a, o);
    }
    return srv_reply_json(c, 200, a);
}

static enum MHD_Result schedulers(struct MHD_Connection *c) {
    static const char *const names[][2] = {{"automatic", "Automatic"}, {"karras", "Karras"}, {"uniform", "Uniform"},
                                           {"sgm_uniform", "SGM Uniform"}};
    cJSON *a = cJSON_CreateArray();
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "name", names[i][0]);
        cJSON_AddStringToObject(o, "label", names[i][1]);
        cJSON_AddNullToObject(o, "aliases");
        cJSON_AddNumberToObject(o, "default_rho", -1);
        cJSON_AddFalseToObject(o, "need_inner_model");
        cJSON_AddItemToArray(a, o);
    }
    return srv_reply_json(c, 200, a);
}

static const char *model_title(srv *s) { return s->cfg->model_name ? s->cfg->model_name : s->cfg->pipeline.model_dir; }

static enum MHD_Result sd_models(srv *s, struct MHD_Connection *c) {
    cJSON *a = cJSON_CreateArray(), *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "title", model_title(s));
    cJSON_AddStringToObject(o, "model_name", model_title(s));
    cJSON_AddNullToObject(o, "hash");
    cJSON_AddNullToObject(o, "sha256");
    cJSON_AddStringToObject(o, "filename", s->cfg->pipeline.model_dir);
    cJSON_AddNullToObject(o, "config");
    cJSON_AddItemToArray(a, o);
    return srv_reply_json(c, 200, a);
}

static enum MHD_Result options(srv *s, struct MHD_Connection *c, int post, const char *body, size_t n) {
    if (post) { /* accepted: one model is loaded, nothing to switch */
        srv_err e;
        cJSON *b = srv_parse_body(body, n, &e);
        if (!b) return srv_reply_error(c, &e);
        cJSON_Delete(b);
        return srv_reply_json(c, 200, cJSON_CreateNull());
    }
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "sd_model_checkpoint", model_title(s));
    cJSON_AddStringToObject(o, "samples_format", "png");
    cJSON_AddNumberToObject(o, "CLIP_stop_at_last_layers", 1);
    cJSON_AddTrueToObject(o, "enable_pnginfo");
    return srv_reply_json(c, 200, o);
}

/* sd-webui-controlnet's discovery endpoints, which its API clients query to name a unit's module and model:
 * the one IP-Adapter this server has, under the names its units accept. */
static enum MHD_Result controlnet(srv *s, struct MHD_Connection *c, const char *path) {
    cJSON *o = cJSON_CreateObject();
    if (!strcmp(path, "/controlnet/version")) {
        cJSON_AddNumberToObject(o, "version", 2);
    } else if (!strcmp(path, "/controlnet/model_list")) {
        cJSON *a = cJSON_AddArrayToObject(o, "model_list");
        if (s->cfg->pipeline.ip_adapter) {
            const char *slash = strrchr(s->cfg->pipeline.ip_adapter, '/');
            char name[256];
            snprintf(name, sizeof name, "%s", slash ? slash + 1 : s->cfg->pipeline.ip_adapter);
            char *dot = strrchr(name, '.');
            if (dot) *dot = 0;
            if (!strstr(name, "ip-adapter") && !strstr(name, "ip_adapter")) /* so that a unit naming it is taken */
                snprintf(name, sizeof name, "ip-adapter_sdxl");
            cJSON_AddItemToArray(a, cJSON_CreateString(name));
        }
    } else if (!strcmp(path, "/controlnet/module_list")) {
        cJSON *a = cJSON_AddArrayToObject(o, "module_list");
        cJSON_AddItemToArray(a, cJSON_CreateString("ip-adapter_clip_sdxl")); /* the image encoder beside the adapter */
    } else {
        cJSON_Delete(o);
        return fail(c, 404, "%.200s: no such endpoint (controlnet/version, model_list, module_list)", path);
    }
    return srv_reply_json(c, 200, o);
}

enum MHD_Result srv_a1111(srv *s, struct MHD_Connection *c, const char *method, const char *path, const char *body,
                          size_t body_n) {
    if (!strncmp(path, "/controlnet/", 12))
        return strcmp(method, "GET") && strcmp(method, "HEAD") ? fail(c, 405, "%s: only GET", path) : controlnet(s, c, path);
    int get = !strcmp(method, "GET") || !strcmp(method, "HEAD"), post = !strcmp(method, "POST");
    const char *p = path + 10; /* after /sdapi/v1/ */
    if (!strcmp(p, "txt2img") || !strcmp(p, "img2img"))
        return post ? generate(s, c, p[0] == 'i', body, body_n) : fail(c, 405, "%s: only POST", path);
    if (!strcmp(p, "progress")) return get ? progress(s, c) : fail(c, 405, "%s: only GET", path);
    if (!strcmp(p, "interrupt") || !strcmp(p, "skip")) {
        if (!post) return fail(c, 405, "%s: only POST", path);
        jobs_interrupt(s->jobs);
        return srv_reply_json(c, 200, cJSON_CreateObject());
    }
    if (!strcmp(p, "options")) return get || post ? options(s, c, post, body, body_n) : fail(c, 405, "%s: GET or POST", path);
    if (!get) return strcmp(p, "samplers") && strcmp(p, "schedulers") && strcmp(p, "sd-models") && strcmp(p, "cmd-flags")
                         ? fail(c, 404, "%.200s: no such endpoint", path)
                         : fail(c, 405, "%s: only GET", path);
    if (!strcmp(p, "samplers")) return samplers(c);
    if (!strcmp(p, "schedulers")) return schedulers(c);
    if (!strcmp(p, "sd-models")) return sd_models(s, c);
    if (!strcmp(p, "cmd-flags")) return srv_reply_json(c, 200, cJSON_CreateObject());
    return fail(c, 404, "%.200s: no such endpoint (txt2img, img2img, progress, interrupt, skip, samplers, schedulers, "
                "sd-models, options, cmd-flags)", path);
}
