/* is_scheduler_load: a scheduler_config.json read like diffusers' <Class>.from_config(config): keys the
 * class knows override its defaults, other keys are ignored. Settings this engine does not implement are
 * refused with an error naming the file and field rather than silently computing something else. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/config.h"
#include "sample/scheduler.h"

typedef struct {
    const char *class_name;
    is_sampler kind;
    const char *default_spacing;
    int has_karras;
} sampler_class;

static const sampler_class CLASSES[] = {
    {"EulerDiscreteScheduler", IS_SAMPLER_EULER, "linspace", 1},
    {"EulerAncestralDiscreteScheduler", IS_SAMPLER_EULER_A, "linspace", 0},
    {"DDIMScheduler", IS_SAMPLER_DDIM, "leading", 0},
    {"DPMSolverMultistepScheduler", IS_SAMPLER_DPMPP_2M, "linspace", 1},
    {"LCMScheduler", IS_SAMPLER_LCM, "leading", 0},
    {"TCDScheduler", IS_SAMPLER_TCD, "leading", 0},
};
#define N_CLASSES ((int)(sizeof CLASSES / sizeof CLASSES[0]))

static is_error *parse_spacing(const char *v, const char *where, is_spacing *out) {
    if (strcmp(v, "leading") == 0) *out = IS_SPACING_LEADING;
    else if (strcmp(v, "trailing") == 0) *out = IS_SPACING_TRAILING;
    else if (strcmp(v, "linspace") == 0) *out = IS_SPACING_LINSPACE;
    else
        return is_errorf(IS_E_ARGUMENT, "%s: unknown timestep_spacing '%s' (expected leading, trailing or linspace)",
                         where, v);
    return NULL;
}

static const char *const PRED_NAMES[] = {"epsilon", "v_prediction", "sample"};

int is_sched_supports_prediction(is_sampler kind, is_prediction p) {
    /* diffusers' Euler a refuses "sample"; DDIM / DPM++ "sample" is not implemented here */
    return p != IS_PRED_SAMPLE || kind == IS_SAMPLER_EULER || kind == IS_SAMPLER_LCM || kind == IS_SAMPLER_TCD;
}

/* prediction_type text -> value, checked against what the sampler supports; `where` names the source. */
static is_error *parse_prediction(is_sampler kind, const char *sampler, const char *where, const char *v,
                                  is_prediction *out) {
    int found = -1;
    for (int i = 0; i < 3; i++)
        if (!strcmp(v, PRED_NAMES[i])) found = i;
    if (found < 0)
        return is_errorf(IS_E_ARGUMENT, "%s: unknown prediction_type \"%.64s\" (expected epsilon, v_prediction or sample)",
                         where, v);
    if (!is_sched_supports_prediction(kind, (is_prediction)found))
        return is_errorf(IS_E_UNSUPPORTED,
                         "%s: prediction_type \"%s\" is not supported by the %s sampler (supported: epsilon, "
                         "v_prediction)",
                         where, v, sampler);
    *out = (is_prediction)found;
    return NULL;
}

is_error *is_scheduler_set_prediction_type(is_scheduler *s, const char *type) {
    if (!s || !type) return is_errorf(IS_E_ARGUMENT, "scheduler: NULL scheduler or prediction type");
    return parse_prediction(s->kind, s->name, s->name, type, &s->prediction);
}

/* A string field that must take one of the listed values (first = class default). */
static is_error *expect_string(const is_config *cfg, const char *cls, const char *key, const char *const *allowed,
                               int n_allowed, const char **out) {
    const char *v = NULL;
    IS_TRY(is_config_string_or(cfg, key, allowed[0], &v));
    for (int i = 0; i < n_allowed; i++)
        if (strcmp(v, allowed[i]) == 0) {
            if (out) *out = v;
            return NULL;
        }
    char list[160] = "";
    for (int i = 0; i < n_allowed; i++)
        snprintf(list + strlen(list), sizeof list - strlen(list), "%s\"%s\"", i ? ", " : "", allowed[i]);
    return is_errorf(IS_E_UNSUPPORTED, "%s: %s '%s' = \"%s\" is not supported by this engine (supported: %s)",
                     cfg->path, cls, key, v, list);
}

/* A boolean field that this engine only implements with one value. */
static is_error *expect_bool(const is_config *cfg, const char *cls, const char *key, int def, int supported) {
    int v;
    IS_TRY(is_config_bool_or(cfg, key, def, &v));
    if (v != supported)
        return is_errorf(IS_E_UNSUPPORTED, "%s: %s '%s' = %s is not supported by this engine", cfg->path, cls, key,
                         v ? "true" : "false");
    return NULL;
}

static is_error *read_trained_betas(const is_config *cfg, int T, float **out) {
    *out = NULL;
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(cfg->root, "trained_betas");
    if (!v || cJSON_IsNull(v)) return NULL;
    if (!cJSON_IsArray(v) || cJSON_GetArraySize(v) != T)
        return is_errorf(IS_E_CONFIG, "%s: field 'trained_betas' must be null or a list of %d numbers", cfg->path, T);
    float *b = malloc((size_t)T * sizeof *b);
    if (!b) return is_error_oom("trained_betas");
    int i = 0;
    const cJSON *it;
    cJSON_ArrayForEach(it, v) {
        if (!cJSON_IsNumber(it)) {
            free(b);
            return is_errorf(IS_E_CONFIG, "%s: field 'trained_betas'[%d] must be a number", cfg->path, i);
        }
        b[i++] = (float)it->valuedouble;
    }
    *out = b;
    return NULL;
}

static is_error *configure(is_scheduler *s, const is_config *cfg, const sampler_class *cl, int karras,
                           const char *spacing_override) {
    const char *cls = cl->class_name;
    int64_t iv;
    IS_TRY(is_config_int_or(cfg, "num_train_timesteps", 1000, &iv));
    if (iv < 2 || iv > 100000)
        return is_errorf(IS_E_CONFIG, "%s: num_train_timesteps %lld out of range [2, 100000]", cfg->path, (long long)iv);
    s->T = (int)iv;
    IS_TRY(is_config_int_or(cfg, "steps_offset", 0, &iv));
    if (iv < 0 || iv >= s->T)
        return is_errorf(IS_E_CONFIG, "%s: steps_offset %lld out of range [0, %d)", cfg->path, (long long)iv, s->T);
    s->steps_offset = (int)iv;

    /* LCM and TCD build their schedule from original_inference_steps: timestep_spacing (and steps_offset)
     * in their config is ignored, as in diffusers; an explicit spacing argument would silently do nothing */
    int lcm_like = cl->kind == IS_SAMPLER_LCM || cl->kind == IS_SAMPLER_TCD;
    if (lcm_like) {
        if (spacing_override)
            return is_errorf(IS_E_ARGUMENT,
                             "%s has no timestep_spacing (its timesteps come from original_inference_steps): "
                             "timestep_spacing '%.32s' was requested for it",
                             cls, spacing_override);
        s->spacing = IS_SPACING_LEADING;
    } else {
        const char *spacing = NULL;
        IS_TRY(is_config_string_or(cfg, "timestep_spacing", cl->default_spacing, &spacing));
        if (spacing_override) IS_TRY(parse_spacing(spacing_override, "timestep_spacing argument", &s->spacing));
        else IS_TRY(parse_spacing(spacing, cfg->path, &s->spacing));
    }

    const char *pred = "epsilon";
    IS_TRY(is_config_string_or(cfg, "prediction_type", "epsilon", &pred));
    char where[512];
    snprintf(where, sizeof where, "%s: %s", cfg->path, cls);
    IS_TRY(parse_prediction(cl->kind, cls, where, pred, &s->prediction));

    /* class defaults: LCM / TCD default to SDXL's scaled_linear 0.00085 .. 0.012, the others to linear */
    static const char *const schedules[] = {"linear", "scaled_linear", "squaredcos_cap_v2"};
    static const char *const schedules_lcm[] = {"scaled_linear", "linear", "squaredcos_cap_v2"};
    const char *beta_schedule = "linear";
    IS_TRY(expect_string(cfg, cls, "beta_schedule", lcm_like ? schedules_lcm : schedules, 3, &beta_schedule));
    double beta_start, beta_end;
    IS_TRY(is_config_float_or(cfg, "beta_start", lcm_like ? 0.00085 : 0.0001, &beta_start));
    IS_TRY(is_config_float_or(cfg, "beta_end", lcm_like ? 0.012 : 0.02, &beta_end));
    IS_TRY(expect_bool(cfg, cls, "rescale_betas_zero_snr", 0, 0));

    int use_karras = 0;
    if (cl->has_karras) IS_TRY(is_config_bool_or(cfg, "use_karras_sigmas", 0, &use_karras));
    if (karras == 1 && !cl->has_karras)
        return is_errorf(IS_E_ARGUMENT, "%s has no Karras sigmas option (use_karras_sigmas): Karras was requested for it",
                         cls);
    if (karras == 0 || karras == 1) use_karras = karras;
    s->karras = use_karras;

    s->sigma_min_cfg = s->sigma_max_cfg = -1.0;
    s->eta = 0.0f;
    s->solver_order = 1;
    switch (cl->kind) {
    case IS_SAMPLER_EULER: {
        static const char *const interp[] = {"linear"}, *const finals[] = {"zero"}, *const ttype[] = {"discrete"};
        IS_TRY(expect_string(cfg, cls, "interpolation_type", interp, 1, NULL));
        IS_TRY(expect_string(cfg, cls, "final_sigmas_type", finals, 1, NULL));
        IS_TRY(expect_string(cfg, cls, "timestep_type", ttype, 1, NULL));
        IS_TRY(is_config_float_or(cfg, "sigma_min", -1.0, &s->sigma_min_cfg));
        IS_TRY(is_config_float_or(cfg, "sigma_max", -1.0, &s->sigma_max_cfg));
        break;
    }
    case IS_SAMPLER_DDIM: {
        double range;
        IS_TRY(is_config_bool_or(cfg, "set_alpha_to_one", 1, &s->set_alpha_to_one));
        IS_TRY(is_config_bool_or(cfg, "clip_sample", 1, &s->clip_sample));
        IS_TRY(is_config_float_or(cfg, "clip_sample_range", 1.0, &range));
        s->clip_sample_range = (float)range;
        IS_TRY(expect_bool(cfg, cls, "thresholding", 0, 0));
        break;
    }
    case IS_SAMPLER_DPMPP_2M: {
        static const char *const algos[] = {"dpmsolver++", "deis"}, *const finals[] = {"zero"};
        static const char *const solvers[] = {"midpoint", "heun", "logrho", "bh1", "bh2"};
        const char *solver = "midpoint";
        IS_TRY(expect_string(cfg, cls, "algorithm_type", algos, 2, NULL)); /* diffusers maps deis to dpmsolver++ */
        IS_TRY(expect_string(cfg, cls, "solver_type", solvers, 5, &solver));
        s->solver_heun = strcmp(solver, "heun") == 0; /* logrho/bh1/bh2 are mapped to midpoint by diffusers */
        IS_TRY(expect_string(cfg, cls, "final_sigmas_type", finals, 1, NULL));
        IS_TRY(is_config_int_or(cfg, "solver_order", 2, &iv));
        if (iv != 1 && iv != 2)
            return is_errorf(IS_E_UNSUPPORTED, "%s: %s solver_order %lld is not supported (1 or 2)", cfg->path, cls,
                             (long long)iv);
        s->solver_order = (int)iv;
        IS_TRY(is_config_bool_or(cfg, "lower_order_final", 1, &s->lower_order_final));
        IS_TRY(is_config_bool_or(cfg, "euler_at_final", 0, &s->euler_at_final));
        IS_TRY(expect_bool(cfg, cls, "thresholding", 0, 0));
        IS_TRY(expect_bool(cfg, cls, "use_lu_lambdas", 0, 0));
        const cJSON *vt = cJSON_GetObjectItemCaseSensitive(cfg->root, "variance_type");
        if (vt && !cJSON_IsNull(vt))
            return is_errorf(IS_E_UNSUPPORTED, "%s: %s 'variance_type' must be null", cfg->path, cls);
        IS_TRY(is_config_float_or(cfg, "lambda_min_clipped", -INFINITY, &s->lambda_min_clipped));
        break;
    }
    case IS_SAMPLER_LCM:
    case IS_SAMPLER_TCD: {
        IS_TRY(is_config_int_or(cfg, "original_inference_steps", 50, &iv));
        if (iv < 1 || iv > s->T)
            return is_errorf(IS_E_CONFIG, "%s: %s original_inference_steps %lld out of range [1, %d]", cfg->path, cls,
                             (long long)iv, s->T);
        s->original_steps = (int)iv;
        IS_TRY(is_config_float_or(cfg, "timestep_scaling", 10.0, &s->timestep_scaling));
        if (cl->kind == IS_SAMPLER_LCM) { /* TCD's step neither clips nor thresholds */
            double range;
            IS_TRY(is_config_bool_or(cfg, "clip_sample", 0, &s->clip_sample));
            IS_TRY(is_config_float_or(cfg, "clip_sample_range", 1.0, &range));
            s->clip_sample_range = (float)range;
            IS_TRY(expect_bool(cfg, cls, "thresholding", 0, 0));
        }
        break;
    }
    default:
        break;
    }

    float *trained = NULL;
    IS_TRY(read_trained_betas(cfg, s->T, &trained));
    is_error *e = is_sched_build_tables(s, beta_schedule, beta_start, beta_end, trained);
    free(trained);
    if (e) return is_error_wrap(e, "%s", cfg->path);

    static const char *const base_names[] = {"", "euler", "euler_a", "ddim", "dpmpp_2m", "lcm", "tcd"};
    snprintf(s->name, sizeof s->name, "%s%s", base_names[cl->kind], s->karras ? "_karras" : "");
    return NULL;
}

is_error *is_scheduler_load(const char *config_path, is_sampler kind, int karras, const char *timestep_spacing,
                            is_scheduler **out) {
    *out = NULL;
    if (!config_path) return is_errorf(IS_E_ARGUMENT, "scheduler: no scheduler_config.json path given");
    if (kind < IS_SAMPLER_FROM_CONFIG || kind > IS_SAMPLER_TCD)
        return is_errorf(IS_E_ARGUMENT, "scheduler: unknown sampler kind %d", (int)kind);
    if (karras < -1 || karras > 1)
        return is_errorf(IS_E_ARGUMENT, "scheduler: karras must be -1 (from config), 0 or 1, got %d", karras);
    is_config cfg;
    IS_TRY(is_error_wrap(is_config_load(config_path, &cfg), "loading scheduler config"));

    const sampler_class *cl = NULL;
    is_error *e = NULL;
    if (kind == IS_SAMPLER_FROM_CONFIG) {
        const char *cname = NULL;
        e = is_config_string(&cfg, "_class_name", &cname);
        if (!e) {
            for (int i = 0; i < N_CLASSES; i++)
                if (strcmp(cname, CLASSES[i].class_name) == 0) cl = &CLASSES[i];
            if (!cl)
                e = is_errorf(IS_E_UNSUPPORTED,
                              "%s: unsupported scheduler _class_name '%s' (supported: EulerDiscreteScheduler, "
                              "EulerAncestralDiscreteScheduler, DDIMScheduler, DPMSolverMultistepScheduler, "
                              "LCMScheduler, TCDScheduler)",
                              config_path, cname);
        }
    } else {
        for (int i = 0; i < N_CLASSES; i++)
            if (CLASSES[i].kind == kind) cl = &CLASSES[i];
    }
    is_scheduler *s = NULL;
    if (!e) {
        s = calloc(1, sizeof *s);
        if (!s) e = is_error_oom("scheduler");
    }
    if (!e) {
        s->kind = cl->kind;
        s->config_path = strdup(config_path);
        e = s->config_path ? configure(s, &cfg, cl, karras, timestep_spacing) : is_error_oom("scheduler");
    }
    is_config_free(&cfg);
    if (e) {
        is_scheduler_free(s);
        return e;
    }
    *out = s;
    return NULL;
}

void is_scheduler_free(is_scheduler *s) {
    if (!s) return;
    free(s->config_path);
    free(s->betas);
    free(s->alphas_cumprod);
    free(s->train_sigmas);
    free(s->log_sigmas);
    free(s->timesteps);
    free(s->timesteps_i);
    free(s->sigmas);
    free(s->step_a);
    free(s->step_b);
    free(s->step_c);
    free(s->step_d);
    free(s->step_s);
    free(s->step_order);
    free(s->noise);
    free(s->m_prev);
    free(s->m_cur);
    free(s);
}
