/* schedulers_fast golden group: the few-step samplers (LCM, TCD, Euler "trailing" incl. x0 prediction, DDIM
 * "trailing"). Every case is built twice (the SDXL config with the case's overrides given as arguments, and
 * the case's full resulting config loaded by its _class_name), then checked three ways: the schedule and
 * per-step scalars; every step in isolation (the recorded x, t, model_output, the generator replayed to that
 * step, set_begin_index); and the chained README loop with our own stand-in model, incl. every noise draw
 * and rng_probe (the generator consumption). Plus the API's error paths. */
#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF
#elif defined(__GNUC__)
#pragma GCC optimize("fp-contract=off") /* the stand-in model rounds like torch's separate ops */
#endif

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/fileio.h"
#include "core/tensor.h"
#include "harness.h"
#include "sample/scheduler.h"

static const char *GROUP = "schedulers_fast";
static char *g_config; /* SDXL scheduler_config.json (EulerDiscreteScheduler) */

typedef struct {
    const cJSON *c;
    const is_st *st;
    const char *name;  /* case name */
    const char *build; /* which way the scheduler was built */
    is_sampler kind;
    int N;
    float eta;
    int64_t n; /* latent numel */
} fcase;

/* ------------------------------------------------------------------ golden access */

static int64_t *gold_i64(const is_tensor *t) { /* I64 data in a safetensors file may be unaligned */
    int64_t *v = malloc((size_t)(t->numel ? t->numel : 1) * sizeof *v);
    memcpy(v, t->data, (size_t)t->numel * 8);
    return v;
}

/* got (n floats) against golden tensor `name` from element `off` on, with the case's tolerance of `name`. */
static void cmp_at(const fcase *f, const char *name, const char *what, const float *got, size_t off, size_t n) {
    const is_tensor *t = th_tensor(f->st, name);
    if (!t) return;
    double atol, rtol;
    th_tolerance(f->c, name, &atol, &rtol);
    char label[200];
    snprintf(label, sizeof label, "%s [%s] %s", f->name, f->build, what);
    th_check((size_t)t->numel >= off + n, "%s: golden has %lld elements, need %zu", label, (long long)t->numel, off + n);
    if ((size_t)t->numel < off + n) return;
    float *exp = malloc(n * sizeof *exp);
    if (t->dtype == IS_DT_I64) {
        int64_t *v = gold_i64(t);
        for (size_t k = 0; k < n; k++) exp[k] = (float)v[off + k];
        free(v);
    } else {
        float *all = is_tensor_dup_f32(t);
        memcpy(exp, all + off, n * sizeof *exp);
        free(all);
    }
    th_close_f32(label, got, exp, n, atol, rtol);
    free(exp);
}

static void cmp_all(const fcase *f, const char *name, const float *got, size_t n) {
    const is_tensor *t = th_tensor(f->st, name);
    if (!t) return;
    char what[80];
    snprintf(what, sizeof what, "%s (all)", name);
    th_check((size_t)t->numel == n, "%s [%s] %s: %lld elements, expected %zu", f->name, f->build, name,
             (long long)t->numel, n);
    cmp_at(f, name, what, got, 0, n);
}

/* An int64 tensor compared exactly. */
static void cmp_i64(const fcase *f, const char *name, const int64_t *got, int64_t n) {
    const is_tensor *t = th_tensor(f->st, name);
    if (!t) return;
    int64_t *v = gold_i64(t);
    int same = t->numel == n && t->dtype == IS_DT_I64;
    for (int64_t k = 0; same && k < n; k++) same = v[k] == got[k];
    th_check(same, "%s [%s] %s: int64 values exact", f->name, f->build, name);
    free(v);
}

static float *gold_slice(const fcase *f, const char *name, int i) { /* [i] of an [N, latent] tensor */
    const is_tensor *t = th_tensor(f->st, name);
    if (!t || t->numel < (int64_t)(i + 1) * f->n) return NULL;
    float *all = is_tensor_dup_f32(t), *out = malloc((size_t)f->n * sizeof *out);
    memcpy(out, all + (size_t)i * f->n, (size_t)f->n * sizeof *out);
    free(all);
    return out;
}

/* ------------------------------------------------------------------ the README's run */

static is_sampler sampler_of(const char *cls) {
    if (!strcmp(cls, "LCMScheduler")) return IS_SAMPLER_LCM;
    if (!strcmp(cls, "TCDScheduler")) return IS_SAMPLER_TCD;
    if (!strcmp(cls, "DDIMScheduler")) return IS_SAMPLER_DDIM;
    return IS_SAMPLER_EULER;
}

/* Draws step i takes from the pipeline's generator (README: Euler every step; LCM, TCD with gamma > 0 every
 * step but the last; DDIM with eta 0 none). */
static int draws_of_step(const fcase *f, int i) {
    switch (f->kind) {
    case IS_SAMPLER_EULER: return 1;
    case IS_SAMPLER_LCM: return i < f->N - 1;
    case IS_SAMPLER_TCD: return f->eta > 0 && i < f->N - 1;
    default: return f->eta > 0;
    }
}

/* model_output = fl(fl(fl(0.8f * in) + c_t) + fl(0.25f * r)), c_t = (float)(0.05 sin(t / 100)) */
static void stand_in_model(const float *in, const float *r, double t, float *out, int64_t n) {
    float ct = (float)(0.05 * sin(t / 100.0));
    for (int64_t k = 0; k < n; k++) {
        float a = 0.8f * in[k];
        float b = a + ct;
        float c = 0.25f * r[k];
        out[k] = b + c;
    }
}

/* The schedule: timesteps, sigmas, init_noise_sigma, scale_divisor, per-step scalars known before stepping. */
static void check_schedule(const fcase *f, is_scheduler *s) {
    int N = f->N;
    float *tv = malloc((size_t)N * sizeof *tv), *div = malloc((size_t)N * sizeof *div);
    for (int i = 0; i < N; i++) {
        tv[i] = is_scheduler_timestep(s, i);
        div[i] = is_scheduler_scale_divisor(s, i);
    }
    cmp_all(f, "timesteps", tv, (size_t)N);
    const is_tensor *tt = th_tensor(f->st, "timesteps");
    if (tt && tt->dtype == IS_DT_I64) cmp_i64(f, "timesteps", is_scheduler_timesteps_int(s), N);
    if (is_st_find(f->st, "sigmas")) {
        th_check(is_scheduler_sigmas(s) != NULL, "%s [%s]: sigmas exist", f->name, f->build);
        if (is_scheduler_sigmas(s)) cmp_all(f, "sigmas", is_scheduler_sigmas(s), (size_t)N + 1);
    } else {
        th_check(is_scheduler_sigmas(s) == NULL, "%s [%s]: no sigmas for a VP sampler", f->name, f->build);
    }
    float ins = is_scheduler_init_noise_sigma(s);
    cmp_all(f, "init_noise_sigma", &ins, 1);
    cmp_all(f, "scale_divisor", div, (size_t)N);
    if (f->kind != IS_SAMPLER_EULER) {
        cmp_all(f, "alpha_prod_t", is_scheduler_step_values(s, 0), (size_t)N);
        cmp_all(f, "alpha_prod_t_prev", is_scheduler_step_values(s, 1), (size_t)N);
    }
    if (f->kind == IS_SAMPLER_LCM) {
        cmp_all(f, "c_skip", is_scheduler_step_values(s, 2), (size_t)N);
        cmp_all(f, "c_out", is_scheduler_step_values(s, 3), (size_t)N);
    }
    const is_tensor *ss = th_tensor(f->st, "sample_steps");
    if (ss) {
        int64_t *w = gold_i64(ss);
        int all = ss->numel == N;
        for (int i = 0; all && i < N; i++) all = w[i] == i;
        th_check(all, "%s: sample_steps = 0..N-1 (every step stored)", f->name);
        free(w);
    }
    free(tv), free(div);
}

/* Step i alone: x = x_init or samples[i-1], model_output[i], the generator replayed to step i. */
static void check_step_alone(const fcase *f, is_scheduler *s, int i, const float *x_init) {
    int64_t n = f->n;
    char what[64];
    if (!th_ok(is_scheduler_set_timesteps(s, f->N), "set_timesteps (isolated step)")) return;
    if (i > 0 && !th_ok(is_scheduler_set_begin_index(s, i), "set_begin_index")) return;
    is_torch_rng g;
    is_torch_rng_seed(&g, (uint64_t)cJSON_GetObjectItem(f->c, "seed")->valueint);
    float *scratch = malloc((size_t)n * sizeof *scratch);
    is_torch_randn(&g, scratch, n); /* the latents */
    int draw_idx = 0;
    for (int j = 0; j < i; j++)
        for (int d = 0; d < draws_of_step(f, j); d++, draw_idx++) is_torch_randn(&g, scratch, n);
    float *x = i == 0 ? malloc((size_t)n * sizeof *x) : gold_slice(f, "samples", i - 1);
    float *eps = gold_slice(f, "model_output", i);
    if (i == 0) memcpy(x, x_init, (size_t)n * sizeof *x);
    float *inp = malloc((size_t)n * sizeof *inp), *x0 = calloc((size_t)n, sizeof *x0), *sec = calloc((size_t)n, sizeof *sec);
    if (!x || !eps) {
        th_check(0, "%s: golden samples / model_output for step %d", f->name, i);
        goto done;
    }
    is_scheduler_scale_model_input(s, i, x, inp, n);
    snprintf(what, sizeof what, "model_input[%d] (alone)", i);
    cmp_at(f, "model_input", what, inp, (size_t)i * n, (size_t)n);
    is_scheduler_capture(s, x0, sec);
    if (!th_ok(is_scheduler_step(s, i, eps, x, n, &g), f->name)) goto done;
    is_scheduler_capture(s, NULL, NULL);
    snprintf(what, sizeof what, "samples[%d] (alone)", i);
    cmp_at(f, "samples", what, x, (size_t)i * n, (size_t)n);
    snprintf(what, sizeof what, "pred_original_sample[%d] (alone)", i);
    cmp_at(f, "pred_original_sample", what, x0, (size_t)i * n, (size_t)n);
    if (f->kind == IS_SAMPLER_LCM) {
        snprintf(what, sizeof what, "denoised[%d] (alone)", i);
        cmp_at(f, "denoised", what, sec, (size_t)i * n, (size_t)n);
    }
    if (f->kind == IS_SAMPLER_TCD) {
        snprintf(what, sizeof what, "pred_noised_sample[%d] (alone)", i);
        cmp_at(f, "pred_noised_sample", what, sec, (size_t)i * n, (size_t)n);
        int64_t ts = is_scheduler_timesteps_s(s)[i];
        const is_tensor *t = th_tensor(f->st, "timestep_s");
        if (t) {
            int64_t *v = gold_i64(t);
            th_check(v[i] == ts, "%s [%s] timestep_s[%d] = %lld, expected %lld (alone)", f->name, f->build, i,
                     (long long)ts, (long long)v[i]);
            free(v);
        }
        snprintf(what, sizeof what, "alpha_prod_s[%d] (alone)", i);
        cmp_at(f, "alpha_prod_s", what, is_scheduler_step_values(s, 2) + i, (size_t)i, 1);
    }
    /* the step's own noise draw (Euler's unused one is not recorded) */
    if (draws_of_step(f, i) && is_st_find(f->st, "noise")) {
        snprintf(what, sizeof what, "noise[%d] (alone)", i);
        cmp_at(f, "noise", what, s->noise, (size_t)draw_idx * n, (size_t)n);
    }
done:
    is_scheduler_capture(s, NULL, NULL);
    free(scratch), free(x), free(eps), free(inp), free(x0), free(sec);
}

/* The README loop, chained, with our own stand-in model (its randomness from seed + 5000). */
static void check_chain(const fcase *f, is_scheduler *s) {
    int N = f->N;
    int64_t n = f->n;
    size_t all = (size_t)N * (size_t)n;
    if (!th_ok(is_scheduler_set_timesteps(s, N), "set_timesteps (chain)")) return;
    th_ok(is_scheduler_reserve(s, n), "reserve");
    const float *noise_buf = s->noise;
    is_torch_rng g, gm;
    is_torch_rng_seed(&g, (uint64_t)cJSON_GetObjectItem(f->c, "seed")->valueint);
    is_torch_rng_seed(&gm, (uint64_t)cJSON_GetObjectItem(f->c, "model_randn_seed")->valueint);
    float *lat = malloc((size_t)n * sizeof *lat), *x = malloc((size_t)n * sizeof *x), *r = malloc((size_t)n * sizeof *r);
    float *inputs = calloc(all, sizeof *inputs), *outputs = calloc(all, sizeof *outputs);
    float *samples = calloc(all, sizeof *samples), *x0 = calloc(all, sizeof *x0), *sec = calloc(all, sizeof *sec);
    float *noise = calloc(all, sizeof *noise), *alpha_s = calloc((size_t)N, sizeof *alpha_s);
    is_torch_randn(&g, lat, n);
    cmp_all(f, "latents_randn", lat, (size_t)n);
    float ins = is_scheduler_init_noise_sigma(s);
    for (int64_t k = 0; k < n; k++) x[k] = lat[k] * ins;
    cmp_all(f, "x_init", x, (size_t)n);
    int draws = 0, ok = 1;
    for (int i = 0; i < N && ok; i++) {
        float *in = inputs + (size_t)i * n, *out = outputs + (size_t)i * n;
        is_scheduler_scale_model_input(s, i, x, in, n);
        is_torch_randn(&gm, r, n);
        stand_in_model(in, r, is_scheduler_timestep(s, i), out, n);
        is_scheduler_capture(s, x0 + (size_t)i * n, sec + (size_t)i * n);
        ok = th_ok(is_scheduler_step(s, i, out, x, n, &g), f->name);
        memcpy(samples + (size_t)i * n, x, (size_t)n * sizeof *x);
        if (draws_of_step(f, i) && f->kind != IS_SAMPLER_EULER) memcpy(noise + (size_t)draws++ * n, s->noise, (size_t)n * 4);
        if (f->kind == IS_SAMPLER_TCD) alpha_s[i] = is_scheduler_step_values(s, 2)[i];
    }
    is_scheduler_capture(s, NULL, NULL);
    th_check(s->noise == noise_buf, "%s [%s]: no allocation inside the sampling loop", f->name, f->build);
    int want_draws = cJSON_GetObjectItem(f->c, "noise_draws")->valueint;
    if (f->kind != IS_SAMPLER_EULER)
        th_check(draws == want_draws, "%s [%s]: %d noise draws, expected %d", f->name, f->build, draws, want_draws);
    cmp_all(f, "model_input", inputs, all);
    cmp_all(f, "model_output", outputs, all);
    cmp_all(f, "samples", samples, all);
    cmp_all(f, "pred_original_sample", x0, all);
    if (f->kind == IS_SAMPLER_LCM) cmp_all(f, "denoised", sec, all);
    if (f->kind == IS_SAMPLER_TCD) {
        cmp_all(f, "pred_noised_sample", sec, all);
        cmp_i64(f, "timestep_s", is_scheduler_timesteps_s(s), N);
        cmp_all(f, "alpha_prod_s", alpha_s, (size_t)N);
    }
    if (is_st_find(f->st, "noise")) cmp_all(f, "noise", noise, (size_t)want_draws * n);
    else th_check(draws == 0, "%s [%s]: no noise recorded, none drawn", f->name, f->build);
    float probe[16];
    is_torch_randn(&g, probe, 16);
    cmp_all(f, "rng_probe", probe, 16);
    free(lat), free(x), free(r), free(inputs), free(outputs), free(samples), free(x0), free(sec), free(noise), free(alpha_s);
}

static void run_built(fcase *f, is_scheduler *s) {
    if (f->kind == IS_SAMPLER_TCD || f->kind == IS_SAMPLER_DDIM) th_ok(is_scheduler_set_eta(s, f->eta), "set eta");
    if (!th_ok(is_scheduler_set_timesteps(s, f->N), f->name)) return;
    th_check(is_scheduler_num_steps(s) == cJSON_GetObjectItem(f->c, "num_timesteps")->valueint, "%s [%s]: %d timesteps",
             f->name, f->build, is_scheduler_num_steps(s));
    check_schedule(f, s);
    const is_tensor *xi = th_tensor(f->st, "x_init");
    float *x_init = xi ? is_tensor_dup_f32(xi) : NULL;
    if (x_init)
        for (int i = 0; i < f->N; i++) check_step_alone(f, s, i, x_init);
    free(x_init);
    check_chain(f, s);
}

/* The case's full resulting config with its class name, for the from_config path. */
static char *write_case_config(const cJSON *c) {
    cJSON *cfg = cJSON_Duplicate(cJSON_GetObjectItem(c, "scheduler_config"), 1);
    cJSON_AddStringToObject(cfg, "_class_name", cJSON_GetObjectItem(c, "scheduler")->valuestring);
    char *json = cJSON_Print(cfg);
    char name[128];
    snprintf(name, sizeof name, "sched_fast_%s.json", cJSON_GetObjectItem(c, "name")->valuestring);
    char *p = is_path_join(th_tmpdir(), name);
    FILE *fp = fopen(p, "w");
    if (fp) {
        fputs(json, fp);
        fclose(fp);
    }
    th_check(fp != NULL, "write %s", p);
    free(json);
    cJSON_Delete(cfg);
    return p;
}

static void run_case(const cJSON *c, const is_st *st) {
    fcase f = {.c = c, .st = st, .name = cJSON_GetObjectItem(c, "name")->valuestring};
    f.kind = sampler_of(cJSON_GetObjectItem(c, "scheduler")->valuestring);
    f.N = cJSON_GetObjectItem(c, "num_inference_steps")->valueint;
    f.eta = (float)cJSON_GetObjectItem(c, "eta")->valuedouble;
    f.n = 1;
    const cJSON *d;
    cJSON_ArrayForEach(d, cJSON_GetObjectItem(c, "latent_shape")) f.n *= d->valueint;
    const cJSON *ov = cJSON_GetObjectItem(c, "from_config_overrides");
    const cJSON *sp = cJSON_GetObjectItem(ov, "timestep_spacing"), *pt = cJSON_GetObjectItem(ov, "prediction_type");

    /* 1. <Class>.from_config(SDXL config) with the overrides as this engine's options */
    is_scheduler *s = NULL;
    f.build = "sdxl config + options";
    if (th_ok(is_scheduler_load(g_config, f.kind, -1, sp ? sp->valuestring : NULL, &s), f.name)) {
        if (pt) th_ok(is_scheduler_set_prediction_type(s, pt->valuestring), "set_prediction_type");
        run_built(&f, s);
        is_scheduler_free(s);
    }
    /* 2. the resulting config file, class chosen by its _class_name */
    char *p = write_case_config(c);
    s = NULL;
    f.build = "case config by _class_name";
    if (th_ok(is_scheduler_load(p, IS_SAMPLER_FROM_CONFIG, -1, NULL, &s), f.name)) {
        th_check(!strcmp(is_scheduler_name(s), is_sampler_name(f.kind)), "%s: built %s", f.name, is_scheduler_name(s));
        run_built(&f, s);
        is_scheduler_free(s);
    }
    free(p);
}

/* ------------------------------------------------------------------ API and errors */

static char *write_config(const char *name, const char *json) {
    char *p = is_path_join(th_tmpdir(), name);
    FILE *fp = fopen(p, "w");
    fputs(json, fp);
    fclose(fp);
    return p;
}

static void test_errors(void) {
    is_scheduler *s = NULL;
    const is_sampler few[] = {IS_SAMPLER_LCM, IS_SAMPLER_TCD};
    for (int k = 0; k < 2; k++) {
        s = NULL;
        if (!th_ok(is_scheduler_load(g_config, few[k], -1, NULL, &s), "load lcm/tcd")) continue;
        th_check(!strcmp(is_scheduler_name(s), is_sampler_name(few[k])), "name %s", is_scheduler_name(s));
        th_fails(is_scheduler_set_timesteps(s, 51), "original_inference_steps 50", "51 steps > original_inference_steps");
        th_fails(is_scheduler_set_timesteps(s, 1000), "original_inference_steps 50", "1000 steps");
        if (th_ok(is_scheduler_set_timesteps(s, 50), "50 steps")) {
            th_check(is_scheduler_num_steps(s) == 50 && is_scheduler_timestep(s, 0) == 999.0f &&
                         is_scheduler_timestep(s, 49) == 19.0f,
                     "50 steps: the whole origin schedule 999 .. 19");
        }
        th_ok(is_scheduler_set_timesteps(s, 3), "3 steps");
        const int64_t *t = is_scheduler_timesteps_int(s);
        /* linspace(0, 50, 3, endpoint=False) = 0, 16.67, 33.33 -> 0, 16, 33 */
        th_check(t[0] == 999 && t[1] == 679 && t[2] == 339, "3 steps: 999 679 339 (got %lld %lld %lld)", (long long)t[0],
                 (long long)t[1], (long long)t[2]);
        th_check(is_scheduler_sigmas(s) == NULL && is_scheduler_init_noise_sigma(s) == 1.0f &&
                     is_scheduler_scale_divisor(s, 1) == 1.0f,
                 "VP sampler: no sigmas, init sigma 1, identity input scaling");
        th_fails(is_scheduler_set_prediction_type(s, "flow"), "flow", "unknown prediction_type");
        th_ok(is_scheduler_set_prediction_type(s, "v_prediction"), "v_prediction");
        th_ok(is_scheduler_set_prediction_type(s, "sample"), "sample");
        th_ok(is_scheduler_set_prediction_type(s, "epsilon"), "epsilon");
        th_fails(is_scheduler_set_timesteps(s, 0), ">= 1", "0 steps");
        is_scheduler_free(s);
    }
    th_fails(is_scheduler_load(g_config, IS_SAMPLER_LCM, -1, "trailing", &s), "timestep_spacing",
             "LCM has no timestep_spacing option");
    th_fails(is_scheduler_load(g_config, IS_SAMPLER_TCD, 1, NULL, &s), "Karras", "TCD has no Karras option");
    th_check(s == NULL, "no scheduler on failure");

    /* eta: TCD's gamma in [0, 1]; LCM has none */
    if (th_ok(is_scheduler_load(g_config, IS_SAMPLER_TCD, -1, NULL, &s), "tcd")) {
        th_fails(is_scheduler_set_eta(s, 1.5f), "[0, 1]", "TCD gamma > 1");
        th_ok(is_scheduler_set_eta(s, 1.0f), "TCD gamma 1");
        th_ok(is_scheduler_set_timesteps(s, 4), "4 steps");
        float a[4] = {0.1f, 0.2f, 0.3f, 0.4f}, b[4] = {0};
        th_fails(is_scheduler_step(s, 0, a, b, 4, NULL), "generator", "TCD gamma > 0 needs a generator");
        th_ok(is_scheduler_set_eta(s, 0.0f), "TCD gamma 0");
        th_ok(is_scheduler_step(s, 0, a, b, 4, NULL), "TCD gamma 0 draws nothing: no generator needed");
        is_scheduler_free(s);
        s = NULL;
    }
    if (th_ok(is_scheduler_load(g_config, IS_SAMPLER_LCM, -1, NULL, &s), "lcm")) {
        th_fails(is_scheduler_set_eta(s, 0.3f), "DDIM / TCD", "eta is not an LCM option");
        th_ok(is_scheduler_set_timesteps(s, 2), "2 steps");
        float a[4] = {0.1f, 0.2f, 0.3f, 0.4f}, b[4] = {0};
        th_fails(is_scheduler_step(s, 0, a, b, 4, NULL), "generator", "LCM needs a generator");
        is_scheduler_free(s);
        s = NULL;
    }

    /* prediction types: "sample" where diffusers' step takes it and this engine implements it */
    const is_sampler no_sample[] = {IS_SAMPLER_EULER_A, IS_SAMPLER_DDIM, IS_SAMPLER_DPMPP_2M};
    for (int k = 0; k < 3; k++) {
        s = NULL;
        if (!th_ok(is_scheduler_load(g_config, no_sample[k], -1, NULL, &s), "load")) continue;
        char want[64];
        snprintf(want, sizeof want, "\"sample\" is not supported by the %s sampler", is_scheduler_name(s));
        th_fails(is_scheduler_set_prediction_type(s, "sample"), want, "x0 prediction refused, naming the sampler");
        th_ok(is_scheduler_set_prediction_type(s, "v_prediction"), "v_prediction");
        th_fails(is_scheduler_set_prediction_type(s, NULL), "NULL", "NULL prediction type");
        is_scheduler_free(s);
    }
    if (th_ok(is_scheduler_load(g_config, IS_SAMPLER_EULER, -1, NULL, &s), "euler")) {
        th_ok(is_scheduler_set_prediction_type(s, "sample"), "Euler takes x0 prediction");
        th_fails(is_scheduler_set_prediction_type(s, "original_sample"), "unknown prediction_type \"original_sample\"",
                 "unknown prediction type named");
        is_scheduler_free(s);
        s = NULL;
    }
    char *p = write_config("sched_fast_sample.json",
                           "{\"_class_name\": \"EulerDiscreteScheduler\", \"prediction_type\": \"sample\"}");
    if (th_ok(is_scheduler_load(p, IS_SAMPLER_FROM_CONFIG, -1, NULL, &s), "Euler config with prediction_type sample")) {
        th_check(s->prediction == IS_PRED_SAMPLE, "prediction_type sample read from the config");
        is_scheduler_free(s);
        s = NULL;
    }
    free(p);
    p = write_config("sched_fast_badpred.json", "{\"_class_name\": \"LCMScheduler\", \"prediction_type\": \"flow\"}");
    th_fails(is_scheduler_load(p, IS_SAMPLER_FROM_CONFIG, -1, NULL, &s), "prediction_type \"flow\"",
             "unknown prediction_type in an LCM config");
    free(p);

    /* LCM / TCD config keys: class defaults (scaled_linear 0.00085 .. 0.012), original_inference_steps */
    p = write_config("sched_fast_lcm25.json", "{\"_class_name\": \"LCMScheduler\", \"original_inference_steps\": 25, "
                                              "\"timestep_spacing\": \"nonsense\", \"unknown_key\": 3}");
    if (th_ok(is_scheduler_load(p, IS_SAMPLER_FROM_CONFIG, -1, NULL, &s), "LCM config, keys it ignores")) {
        is_scheduler *sdxl = NULL;
        th_ok(is_scheduler_load(g_config, IS_SAMPLER_LCM, -1, NULL, &sdxl), "lcm sdxl");
        th_check(sdxl && !memcmp(is_scheduler_table(s, 1), is_scheduler_table(sdxl, 1), 1000 * sizeof(float)),
                 "LCM's default betas are SDXL's scaled_linear 0.00085 .. 0.012");
        is_scheduler_free(sdxl);
        th_ok(is_scheduler_set_timesteps(s, 4), "4 of 25");
        const int64_t *t = is_scheduler_timesteps_int(s);
        /* k = 40, origin 999, 959, ..., 39; indices 0, 6, 12, 18 */
        th_check(t[0] == 999 && t[1] == 759 && t[2] == 519 && t[3] == 279, "25 original steps: 999 759 519 279");
        th_fails(is_scheduler_set_timesteps(s, 26), "original_inference_steps 25", "26 of 25 steps");
        is_scheduler_free(s);
        s = NULL;
    }
    free(p);
    p = write_config("sched_fast_lcm0.json", "{\"_class_name\": \"TCDScheduler\", \"original_inference_steps\": 0}");
    th_fails(is_scheduler_load(p, IS_SAMPLER_FROM_CONFIG, -1, NULL, &s), "original_inference_steps", "0 original steps");
    free(p);

    /* the boundary condition at t = 0 (original_inference_steps 1000 reaches it): denoised = x exactly */
    p = write_config("sched_fast_lcm1000.json", "{\"_class_name\": \"LCMScheduler\", \"original_inference_steps\": 1000}");
    if (th_ok(is_scheduler_load(p, IS_SAMPLER_FROM_CONFIG, -1, NULL, &s), "LCM 1000 original steps")) {
        th_ok(is_scheduler_set_timesteps(s, 1000), "1000 steps");
        th_check(is_scheduler_timestep(s, 999) == 0.0f && is_scheduler_step_values(s, 2)[999] == 1.0f &&
                     is_scheduler_step_values(s, 3)[999] == 0.0f,
                 "t = 0: c_skip 1, c_out 0");
        /* t = 19: st = 190, c_skip = 0.25 / (190^2 + 0.25) = 6.9e-6 */
        double cs = is_scheduler_step_values(s, 2)[980], want = 0.25 / (190.0 * 190.0 + 0.25);
        th_check(is_scheduler_timestep(s, 980) == 19.0f && fabs(cs - want) < 1e-6 * want, "t = 19: c_skip %g, expected %g",
                 cs, want);
        is_scheduler_free(s);
        s = NULL;
    }
    free(p);
}

/* img2img's pieces for LCM / TCD: add_noise (the DDPM form) and set_begin_index. */
static void test_add_noise_and_begin(void) {
    const is_sampler kinds[] = {IS_SAMPLER_LCM, IS_SAMPLER_TCD};
    const float x[3] = {0.5f, -1.25f, 2.0f}, e[3] = {1.0f, 0.25f, -0.75f};
    for (int k = 0; k < 2; k++) {
        is_scheduler *s = NULL;
        if (!th_ok(is_scheduler_load(g_config, kinds[k], -1, NULL, &s), "load for add_noise")) continue;
        th_ok(is_scheduler_set_timesteps(s, 8), "set_timesteps(8)");
        float out[3];
        th_ok(is_scheduler_add_noise(s, 2, x, e, out, 3), "add_noise");
        double a = is_scheduler_table(s, 1)[is_scheduler_timesteps_int(s)[2]];
        for (int j = 0; j < 3; j++) {
            double want = sqrt(a) * x[j] + sqrt(1.0 - a) * e[j];
            th_check(fabs(out[j] - want) <= 1e-6 * (1.0 + fabs(want)), "%s add_noise[%d] = %.9g, expected %.9g",
                     is_scheduler_name(s), j, (double)out[j], want);
        }
        th_fails(is_scheduler_add_noise(s, 8, x, e, out, 3), "outside", "add_noise past the last step");
        th_ok(is_scheduler_set_begin_index(s, 6), "begin index 6");
        is_torch_rng g;
        is_torch_rng_seed(&g, 1);
        float sample[3] = {0.1f, 0.2f, 0.3f};
        th_fails(is_scheduler_step(s, 0, e, sample, 3, &g), "out of order", "step 0 after begin index 6");
        th_ok(is_scheduler_step(s, 6, e, sample, 3, &g), "step 6 after begin index 6");
        th_ok(is_scheduler_step(s, 7, e, sample, 3, &g), "step 7");
        th_fails(is_scheduler_step(s, 8, e, sample, 3, &g), "past the last step", "no step past the last");
        is_scheduler_free(s);
    }
}

int main(void) {
    g_config = th_golden_path("models/tiny-sdxl/scheduler/scheduler_config.json");
    cJSON *cases = th_load_cases(GROUP);
    if (cases) {
        int count = 0;
        const cJSON *c;
        cJSON_ArrayForEach(c, cJSON_GetObjectItem(cases, "cases")) {
            is_st *st = th_open_expected(GROUP, cJSON_GetObjectItem(c, "expected")->valuestring);
            if (!st) continue;
            run_case(c, st);
            is_st_close(st);
            count++;
        }
        th_check(count == 12, "all 12 cases run (got %d)", count);
        cJSON_Delete(cases);
    }
    test_errors();
    test_add_noise_and_begin();
    free(g_config);
    return th_done();
}
