/* schedulers golden group: Euler, Euler a, DDIM, DPM++ 2M (+ Karras) built from the SDXL scheduler config,
 * run in the README's deterministic loop (a fixed function stands in for the UNet) and compared tensor by
 * tensor; the training tables; rescale_noise_cfg; and the error paths. */
#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF
#elif defined(__GNUC__)
#pragma GCC optimize("fp-contract=off") /* the stand-in model rounds twice, like torch */
#endif

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/fileio.h"
#include "harness.h"
#include "sample/scheduler.h"

static const char *GROUP = "schedulers";
static char *g_config; /* SDXL scheduler_config.json */

/* Compare `got` with tensor `name` of the case, with the case's tolerance. Absent tensors are skipped
 * (each case only stores what applies to its sampler). */
static void cmp(const cJSON *c, const is_st *st, const char *name, const float *got, size_t n) {
    const is_tensor *t = is_st_find(st, name);
    if (!t) return;
    double atol, rtol;
    th_tolerance(c, name, &atol, &rtol);
    char what[160];
    snprintf(what, sizeof what, "%s/%s", cJSON_GetObjectItem(c, "name")->valuestring, name);
    if (t->dtype != IS_DT_I64) {
        th_close(what, got, n, t, atol, rtol);
        return;
    }
    /* I64 data inside a safetensors file may be unaligned: copy before converting */
    th_check((size_t)t->numel == n, "%s: %lld elements, expected %zu", what, (long long)t->numel, n);
    if ((size_t)t->numel != n) return;
    float *exp = malloc(n * sizeof *exp);
    for (size_t k = 0; k < n; k++) {
        int64_t v;
        memcpy(&v, (const unsigned char *)t->data + k * 8, 8);
        exp[k] = (float)v;
    }
    th_close_f32(what, got, exp, n, atol, rtol);
    free(exp);
}

static float stand_in_model(float x, double t) {
    float ct = (float)(0.05 * sin(t / 100.0));
    float a = 0.8f * x;
    return a + ct;
}

static is_sampler sampler_of(const char *cls) {
    if (strcmp(cls, "EulerDiscreteScheduler") == 0) return IS_SAMPLER_EULER;
    if (strcmp(cls, "EulerAncestralDiscreteScheduler") == 0) return IS_SAMPLER_EULER_A;
    if (strcmp(cls, "DDIMScheduler") == 0) return IS_SAMPLER_DDIM;
    return IS_SAMPLER_DPMPP_2M;
}

static void run_sampler_case(const cJSON *c, const is_st *st) {
    const char *cname = cJSON_GetObjectItem(c, "name")->valuestring;
    const cJSON *ov = cJSON_GetObjectItem(c, "from_config_overrides");
    const cJSON *sp = cJSON_GetObjectItem(ov, "timestep_spacing");
    const cJSON *kr = cJSON_GetObjectItem(ov, "use_karras_sigmas");
    is_sampler kind = sampler_of(cJSON_GetObjectItem(c, "scheduler")->valuestring);
    int N = cJSON_GetObjectItem(c, "num_inference_steps")->valueint;
    int seed = cJSON_GetObjectItem(c, "seed")->valueint;
    float eta = (float)cJSON_GetObjectItem(c, "eta")->valuedouble;
    int64_t n = 1;
    const cJSON *d;
    cJSON_ArrayForEach(d, cJSON_GetObjectItem(c, "latent_shape")) n *= d->valueint;

    is_scheduler *s = NULL;
    if (!th_ok(is_scheduler_load(g_config, kind, kr ? cJSON_IsTrue(kr) : -1, sp ? sp->valuestring : NULL, &s), cname))
        return;
    if (kind == IS_SAMPLER_DDIM) th_ok(is_scheduler_set_eta(s, eta), "set eta");
    if (!th_ok(is_scheduler_set_timesteps(s, N), cname)) {
        is_scheduler_free(s);
        return;
    }
    int steps = is_scheduler_num_steps(s);
    th_check(steps == cJSON_GetObjectItem(c, "num_timesteps")->valueint, "%s: %d timesteps", cname, steps);
    th_ok(is_scheduler_reserve(s, n), "reserve");
    /* after reserve, steps must not allocate: the buffers stay put (DPM++ swaps its two history buffers) */
    const float *noise_buf = s->noise;
    uintptr_t hist = (uintptr_t)s->m_prev ^ (uintptr_t)s->m_cur;

    /* schedule */
    float *tv = malloc((size_t)steps * sizeof *tv), *div = malloc((size_t)steps * sizeof *div);
    for (int i = 0; i < steps; i++) {
        tv[i] = is_scheduler_timestep(s, i);
        div[i] = is_scheduler_scale_divisor(s, i);
    }
    cmp(c, st, "timesteps", tv, (size_t)steps);
    const is_tensor *tt = is_st_find(st, "timesteps");
    if (tt && tt->dtype == IS_DT_I64) {
        const int64_t *ti = is_scheduler_timesteps_int(s);
        th_check(tt->numel == steps && memcmp(ti, tt->data, (size_t)steps * 8) == 0, "%s: int64 timesteps exact", cname);
    }
    if (is_scheduler_sigmas(s)) cmp(c, st, "sigmas", is_scheduler_sigmas(s), (size_t)steps + 1);
    float ins = is_scheduler_init_noise_sigma(s);
    cmp(c, st, "init_noise_sigma", &ins, 1);
    cmp(c, st, "scale_divisor", div, (size_t)steps);
    if (kind == IS_SAMPLER_EULER_A) {
        cmp(c, st, "sigma_up", is_scheduler_step_values(s, 0), (size_t)steps);
        cmp(c, st, "sigma_down", is_scheduler_step_values(s, 1), (size_t)steps);
    }
    if (kind == IS_SAMPLER_DDIM) {
        cmp(c, st, "alpha_prod_t", is_scheduler_step_values(s, 0), (size_t)steps);
        cmp(c, st, "alpha_prod_t_prev", is_scheduler_step_values(s, 1), (size_t)steps);
    }

    /* the recorded run */
    is_torch_rng g;
    is_torch_rng_seed(&g, (uint64_t)seed);
    float *lat = malloc((size_t)n * sizeof *lat), *x = malloc((size_t)n * sizeof *x);
    float *inp = malloc((size_t)n * sizeof *inp), *eps = malloc((size_t)n * sizeof *eps);
    float *noise = calloc((size_t)steps * (size_t)n, sizeof *noise);
    is_torch_randn(&g, lat, n);
    cmp(c, st, "latents_randn", lat, (size_t)n);
    for (int64_t k = 0; k < n; k++) x[k] = lat[k] * ins;
    cmp(c, st, "x_init", x, (size_t)n);

    const is_tensor *ss = is_st_find(st, "sample_steps");
    int K = ss ? (int)ss->numel : 0;
    int64_t *which = calloc((size_t)(K ? K : 1), sizeof *which); /* copied: safetensors data may be unaligned */
    if (ss) memcpy(which, ss->data, (size_t)K * sizeof *which);
    float *samples = calloc((size_t)(K ? K : 1) * (size_t)n, sizeof *samples);
    int kk = 0;
    float *orders = calloc((size_t)steps, sizeof *orders);
    for (int i = 0; i < steps; i++) {
        is_scheduler_scale_model_input(s, i, x, inp, n);
        double t = is_scheduler_timestep(s, i);
        for (int64_t k = 0; k < n; k++) eps[k] = stand_in_model(inp[k], t);
        if (!th_ok(is_scheduler_step(s, i, eps, x, n, &g), cname)) break;
        if (s->noise && (kind != IS_SAMPLER_DDIM || eta > 0)) memcpy(noise + (size_t)i * n, s->noise, (size_t)n * 4);
        if (kk < K && which[kk] == i) memcpy(samples + (size_t)kk++ * n, x, (size_t)n * 4);
    }
    th_check(kk == K, "%s: %d of %d sample steps recorded", cname, kk, K);
    th_check(s->noise == noise_buf && ((uintptr_t)s->m_prev ^ (uintptr_t)s->m_cur) == hist,
             "%s: no allocation inside the sampling loop", cname);
    cmp(c, st, "samples", samples, (size_t)K * n);
    cmp(c, st, "noise", noise, (size_t)steps * n);
    if (kind == IS_SAMPLER_DPMPP_2M) {
        for (int i = 0; i < steps; i++) orders[i] = (float)is_scheduler_solver_orders(s)[i];
        cmp(c, st, "solver_order_used", orders, (size_t)steps);
    }
    float probe[16];
    is_torch_randn(&g, probe, 16);
    cmp(c, st, "rng_probe", probe, 16);

    /* stepping out of order is refused */
    th_fails(is_scheduler_step(s, 0, eps, x, n, &g), "out of order", "step out of order");
    free(tv), free(div), free(lat), free(x), free(inp), free(eps), free(noise), free(samples), free(orders), free(which);
    is_scheduler_free(s);
}

static void run_tables_case(const cJSON *c, const is_st *st) {
    is_scheduler *s = NULL;
    if (!th_ok(is_scheduler_load(g_config, IS_SAMPLER_FROM_CONFIG, -1, NULL, &s), "load SDXL config")) return;
    cmp(c, st, "betas", is_scheduler_table(s, 0), 1000);
    cmp(c, st, "alphas_cumprod", is_scheduler_table(s, 1), 1000);
    cmp(c, st, "train_sigmas", is_scheduler_table(s, 2), 1000);
    is_scheduler_free(s);
}

static void run_guidance_case(const cJSON *c, const is_st *st) {
    const is_tensor *tu = th_tensor(st, "noise_pred_uncond"), *tt = th_tensor(st, "noise_pred_text");
    if (!tu || !tt) return;
    float w = is_tensor_get_f32(th_tensor(st, "guidance_scale"), 0);
    float phi = is_tensor_get_f32(th_tensor(st, "guidance_rescale"), 0);
    int64_t total = tu->numel, B = tu->shape[0], per = total / B;
    float *u = is_tensor_dup_f32(tu), *tx = is_tensor_dup_f32(tt);
    float *cfg = malloc((size_t)total * sizeof *cfg);
    float std_text[16], std_cfg[16];
    for (int64_t k = 0; k < total; k++) { /* the pipeline's CFG line in float32 */
        float diff = tx[k] - u[k];
        float sc = w * diff;
        cfg[k] = u[k] + sc;
    }
    cmp(c, st, "noise_cfg", cfg, (size_t)total);
    for (int64_t b = 0; b < B && b < 16; b++) {
        std_text[b] = is_std_unbiased(tx + b * per, per);
        std_cfg[b] = is_std_unbiased(cfg + b * per, per);
        is_rescale_noise_cfg(cfg + b * per, tx + b * per, per, phi);
    }
    cmp(c, st, "std_text", std_text, (size_t)B);
    cmp(c, st, "std_cfg", std_cfg, (size_t)B);
    cmp(c, st, "noise_cfg_rescaled", cfg, (size_t)total);
    free(u), free(tx), free(cfg);
}

static char *write_config(const char *name, const char *json) {
    char *p = is_path_join(th_tmpdir(), name);
    FILE *f = fopen(p, "w");
    fputs(json, f);
    fclose(f);
    return p;
}

static void test_api_and_errors(void) {
    is_scheduler *s = NULL;
    /* from_config picks the class; names */
    if (th_ok(is_scheduler_load(g_config, IS_SAMPLER_FROM_CONFIG, -1, NULL, &s), "load")) {
        th_check(strcmp(is_scheduler_name(s), "euler") == 0, "name euler (got %s)", is_scheduler_name(s));
        th_fails(is_scheduler_set_timesteps(s, 0), ">= 1", "steps < 1 refused");
        th_fails(is_scheduler_set_timesteps(s, -3), ">= 1", "negative steps refused");
        th_fails(is_scheduler_set_timesteps(s, 1001), "exceeds", "steps > num_train_timesteps refused");
        float a = 0, b = 0;
        th_fails(is_scheduler_step(s, 0, &a, &b, 1, NULL), "before set_timesteps", "step before set_timesteps");
        th_ok(is_scheduler_set_timesteps(s, 4), "set 4");
        th_fails(is_scheduler_step(s, 0, &a, &b, 1, NULL), "generator", "Euler needs a generator");
        th_fails(is_scheduler_set_eta(s, 0.5f), "DDIM", "eta is DDIM / TCD only");
        is_scheduler_free(s);
    }
    s = NULL;
    if (th_ok(is_scheduler_load(g_config, IS_SAMPLER_DPMPP_2M, 1, "trailing", &s), "dpm karras")) {
        th_check(strcmp(is_scheduler_name(s), "dpmpp_2m_karras") == 0, "name dpmpp_2m_karras (got %s)", is_scheduler_name(s));
        is_scheduler_free(s);
    }
    s = NULL;
    th_fails(is_scheduler_load(g_config, IS_SAMPLER_EULER_A, 1, NULL, &s), "Karras", "Euler a has no Karras option");
    th_fails(is_scheduler_load(g_config, IS_SAMPLER_DDIM, 1, NULL, &s), "Karras", "DDIM has no Karras option");
    th_fails(is_scheduler_load(g_config, IS_SAMPLER_EULER, -1, "sideways", &s), "unknown timestep_spacing 'sideways'",
             "unknown timestep_spacing argument");
    th_check(s == NULL, "no scheduler on failure");
    char *missing = is_path_join(th_tmpdir(), "no_such_scheduler_config.json");
    th_fails(is_scheduler_load(missing, IS_SAMPLER_FROM_CONFIG, -1, NULL, &s), "no_such_scheduler_config.json",
             "missing config file");
    free(missing);

    char *p = write_config("sched_pndm.json", "{\"_class_name\": \"PNDMScheduler\", \"num_train_timesteps\": 1000}");
    th_fails(is_scheduler_load(p, IS_SAMPLER_FROM_CONFIG, -1, NULL, &s), "PNDMScheduler", "unknown _class_name");
    /* ... but an explicit sampler kind builds from the same config like <Class>.from_config */
    if (th_ok(is_scheduler_load(p, IS_SAMPLER_DDIM, -1, NULL, &s), "DDIM from a PNDM config")) is_scheduler_free(s);
    s = NULL;
    free(p);
    p = write_config("sched_badspacing.json", "{\"_class_name\": \"EulerDiscreteScheduler\", \"timestep_spacing\": \"odd\"}");
    th_fails(is_scheduler_load(p, IS_SAMPLER_FROM_CONFIG, -1, NULL, &s), "unknown timestep_spacing 'odd'",
             "unknown timestep_spacing in config");
    free(p);
    p = write_config("sched_noclass.json", "{\"num_train_timesteps\": 1000}");
    th_fails(is_scheduler_load(p, IS_SAMPLER_FROM_CONFIG, -1, NULL, &s), "_class_name", "missing _class_name");
    free(p);
    /* diffusers' Euler a refuses x0 prediction too (Euler, LCM and TCD take it: test_schedulers_fast) */
    p = write_config("sched_sample.json", "{\"_class_name\": \"EulerAncestralDiscreteScheduler\", \"prediction_type\": \"sample\"}");
    th_fails(is_scheduler_load(p, IS_SAMPLER_FROM_CONFIG, -1, NULL, &s), "prediction_type", "unsupported prediction_type");
    free(p);
    p = write_config("sched_broken.json", "{\"_class_name\": ");
    th_fails(is_scheduler_load(p, IS_SAMPLER_FROM_CONFIG, -1, NULL, &s), "JSON", "malformed JSON");
    free(p);

    /* trailing quirk: 61 steps give 62 timesteps ending in -1 (np.interp clamps; DDIM indexes the last entry) */
    if (th_ok(is_scheduler_load(g_config, IS_SAMPLER_DDIM, -1, "trailing", &s), "ddim trailing")) {
        th_ok(is_scheduler_set_timesteps(s, 61), "61 steps");
        th_check(is_scheduler_num_steps(s) == 62 && is_scheduler_timestep(s, 61) == -1.0f,
                 "trailing 61 -> 62 timesteps ending in -1 (got %d, last %g)", is_scheduler_num_steps(s),
                 (double)is_scheduler_timestep(s, is_scheduler_num_steps(s) - 1));
        th_ok(is_scheduler_set_timesteps(s, 16), "16 steps");
        th_check(is_scheduler_timestep(s, 1) == 937.0f, "trailing 16: 937.5 rounds half to even (938 - 1 = 937), got %g",
                 (double)is_scheduler_timestep(s, 1));
        is_scheduler_free(s);
        s = NULL;
    }
    /* DPM++ lambda_min_clipped (default linear betas: lambda runs from 4.605 at t = 0 down, crossing 0 at
     * t = 259): 0 keeps timesteps 0..258 (trailing, 1 step: arange(259, 0, -1000) - 1 = [258]); 5 clips them
     * all, which diffusers turns into an empty or made-up schedule: refused for every spacing (fuzz finding
     * tests/regressions/config_scheduler/), but not with Karras sigmas, which come from the whole table. */
    p = write_config("sched_clip0.json", "{\"_class_name\": \"DPMSolverMultistepScheduler\", \"lambda_min_clipped\": 0, "
                                         "\"timestep_spacing\": \"trailing\"}");
    if (th_ok(is_scheduler_load(p, IS_SAMPLER_FROM_CONFIG, -1, NULL, &s), "dpm lambda_min_clipped 0")) {
        th_ok(is_scheduler_set_timesteps(s, 1), "1 step");
        th_check(is_scheduler_num_steps(s) == 1 && is_scheduler_timestep(s, 0) == 258.0f,
                 "lambda_min_clipped 0, trailing, 1 step: [258] (got %d, first %g)", is_scheduler_num_steps(s),
                 (double)is_scheduler_timestep(s, 0));
        is_scheduler_free(s);
        s = NULL;
    }
    free(p);
    p = write_config("sched_clip5.json", "{\"_class_name\": \"DPMSolverMultistepScheduler\", \"lambda_min_clipped\": 5}");
    static const char *const spacings[] = {"linspace", "leading", "trailing"};
    for (int k = 0; k < 3; k++) {
        if (!th_ok(is_scheduler_load(p, IS_SAMPLER_FROM_CONFIG, -1, spacings[k], &s), "dpm lambda_min_clipped 5")) continue;
        th_fails(is_scheduler_set_timesteps(s, 1), "lambda_min_clipped = 5 clips every timestep", spacings[k]);
        th_fails(is_scheduler_set_timesteps(s, 30), "sched_clip5.json", spacings[k]);
        is_scheduler_free(s);
        s = NULL;
    }
    if (th_ok(is_scheduler_load(p, IS_SAMPLER_DPMPP_2M, 1, NULL, &s), "dpm karras, lambda_min_clipped 5")) {
        th_ok(is_scheduler_set_timesteps(s, 30), "Karras sigmas ignore lambda_min_clipped");
        th_check(is_scheduler_num_steps(s) == 30, "30 Karras timesteps (got %d)", is_scheduler_num_steps(s));
        is_scheduler_free(s);
        s = NULL;
    }
    free(p);
    /* DPM++ Karras timesteps can repeat at the end; stepping is by position */
    if (th_ok(is_scheduler_load(g_config, IS_SAMPLER_DPMPP_2M, 1, NULL, &s), "dpm karras 50")) {
        th_ok(is_scheduler_set_timesteps(s, 50), "50 steps");
        const int64_t *t = is_scheduler_timesteps_int(s);
        th_check(t[47] == 1 && t[48] == 1 && t[49] == 0, "Karras 50 ends 1, 1, 0 (got %lld %lld %lld)",
                 (long long)t[47], (long long)t[48], (long long)t[49]);
        is_scheduler_free(s);
        s = NULL;
    }
}

/* One table of sampler names: every enum value has a name that parses back to it. */
static void test_sampler_names(void) {
    const is_sampler all[] = {IS_SAMPLER_FROM_CONFIG, IS_SAMPLER_EULER, IS_SAMPLER_EULER_A, IS_SAMPLER_DDIM,
                              IS_SAMPLER_DPMPP_2M,    IS_SAMPLER_LCM,   IS_SAMPLER_TCD};
    const char *names[] = {"from_config", "euler", "euler_a", "ddim", "dpmpp_2m", "lcm", "tcd"};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) {
        is_sampler back = (is_sampler)-1;
        th_check(!strcmp(is_sampler_name(all[i]), names[i]) && !is_sampler_parse(names[i], &back) && back == all[i],
                 "sampler %s: name and parse agree", names[i]);
    }
    is_sampler s = IS_SAMPLER_EULER;
    th_check(is_sampler_parse("plms", &s) == -1 && is_sampler_parse("Euler", &s) == -1 &&
                 is_sampler_parse(NULL, &s) == -1 && s == IS_SAMPLER_EULER && !strcmp(is_sampler_name((is_sampler)99), "?"),
             "unknown sampler names and values are refused");
}

/* img2img's pieces: add_noise at a step (each sampler's formula, with values worked out from the
 * scheduler's own sigma / alphas_cumprod tables) and set_begin_index (steps start there, in order). */
static void test_add_noise_and_begin(void) {
    const is_sampler kinds[] = {IS_SAMPLER_EULER, IS_SAMPLER_EULER_A, IS_SAMPLER_DPMPP_2M, IS_SAMPLER_DDIM};
    const float x[3] = {0.5f, -1.25f, 2.0f}, e[3] = {1.0f, 0.25f, -0.75f};
    for (size_t k = 0; k < sizeof kinds / sizeof kinds[0]; k++) {
        is_scheduler *s = NULL;
        if (!th_ok(is_scheduler_load(g_config, kinds[k], -1, NULL, &s), "load for add_noise")) continue;
        th_ok(is_scheduler_set_timesteps(s, 10), "set_timesteps(10)");
        float out[3];
        const int i = 4;
        th_ok(is_scheduler_add_noise(s, i, x, e, out, 3), "add_noise");
        for (int j = 0; j < 3; j++) {
            double want;
            if (kinds[k] == IS_SAMPLER_DDIM) {
                double a = is_scheduler_table(s, 1)[is_scheduler_timesteps_int(s)[i]];
                want = sqrt(a) * x[j] + sqrt(1.0 - a) * e[j];
            } else if (kinds[k] == IS_SAMPLER_DPMPP_2M) {
                double sg = is_scheduler_sigmas(s)[i], alpha = 1.0 / sqrt(sg * sg + 1.0);
                want = alpha * x[j] + sg * alpha * e[j];
            } else {
                want = x[j] + (double)is_scheduler_sigmas(s)[i] * e[j];
            }
            th_check(fabs(out[j] - want) <= 1e-6 * (1.0 + fabs(want)), "%s add_noise[%d] = %.9g, expected %.9g",
                     is_scheduler_name(s), j, (double)out[j], want);
        }
        th_fails(is_scheduler_add_noise(s, 10, x, e, out, 3), "outside", "add_noise past the last step");
        th_fails(is_scheduler_set_begin_index(s, 10), "outside", "begin index past the last step");
        th_ok(is_scheduler_set_begin_index(s, 6), "begin index 6");
        th_check(is_scheduler_begin_index(s) == 6, "begin index is %d, expected 6", is_scheduler_begin_index(s));
        is_torch_rng g;
        is_torch_rng_seed(&g, 1);
        float sample[3] = {0.1f, 0.2f, 0.3f};
        th_fails(is_scheduler_step(s, 0, e, sample, 3, &g), "out of order", "step 0 after begin index 6");
        th_ok(is_scheduler_step(s, 6, e, sample, 3, &g), "step 6 after begin index 6");
        th_ok(is_scheduler_step(s, 7, e, sample, 3, &g), "step 7");
        th_fails(is_scheduler_set_begin_index(s, 2), "after a step", "begin index after a step");
        is_scheduler_free(s);
    }
}

int main(void) {
    test_sampler_names();
    g_config = th_golden_path("models/tiny-sdxl/scheduler/scheduler_config.json");
    cJSON *cases = th_load_cases(GROUP);
    if (cases) {
        const cJSON *c;
        cJSON_ArrayForEach(c, cJSON_GetObjectItem(cases, "cases")) {
            is_st *st = th_open_expected(GROUP, cJSON_GetObjectItem(c, "expected")->valuestring);
            if (!st) continue;
            const cJSON *kind = cJSON_GetObjectItem(c, "kind");
            if (kind && strcmp(kind->valuestring, "tables") == 0) run_tables_case(c, st);
            else if (kind && strcmp(kind->valuestring, "guidance_rescale") == 0) run_guidance_case(c, st);
            else run_sampler_case(c, st);
            is_st_close(st);
        }
        cJSON_Delete(cases);
    }
    test_api_and_errors();
    test_add_noise_and_begin();
    free(g_config);
    return th_done();
}
