/* Shared scheduler pieces: training tables, numpy-exact spacing helpers (arange / linspace / interp),
 * Karras sigmas, sigma_to_t, buffers, and the public is_scheduler_* entry points that dispatch to the
 * per-sampler files. */
#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF
#elif defined(__GNUC__)
#pragma GCC optimize("fp-contract=off") /* float32 updates must round like torch's separate ops */
#endif

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "sample/scheduler.h"

/* ------------------------------------------------------------------ training tables */

/* torch.linspace(start, end, T, dtype=float32) on CPU, bit-exact: float step; the first half counts up from
 * start, the second half down from end; 8-lane vectors take their base from the formula and add lane*step,
 * the last (T mod 16) elements are scalar. GCC contracted these multiply-adds in libtorch (reproduces the
 * reference betas bit for bit). */
static void torch_linspace_f32(double start_d, double end_d, int T, float *out) {
    float start = (float)start_d, end = (float)end_d;
    float step = (end - start) / (float)(T - 1);
    int halfway = T / 2, vec_end = T / 16 * 16;
    for (int i = 0; i < T; i++) {
        int b = i < vec_end ? i / 8 * 8 : i;
        float base = b < halfway ? fmaf(step, (float)b, start) : fmaf(-step, (float)(T - 1 - b), end);
        out[i] = b == i ? base : fmaf((float)(i - b), step, base);
    }
}

static double alpha_bar_cosine(double t) {
    double c = cos((t + 0.008) / 1.008 * 3.141592653589793 / 2.0);
    return c * c;
}

is_error *is_sched_build_tables(struct is_scheduler *s, const char *beta_schedule, double beta_start,
                                double beta_end, const float *trained_betas) {
    int T = s->T;
    s->betas = malloc((size_t)T * sizeof(float));
    s->alphas_cumprod = malloc((size_t)T * sizeof(float));
    s->train_sigmas = malloc((size_t)T * sizeof(float));
    s->log_sigmas = malloc((size_t)T * sizeof(float));
    if (!s->betas || !s->alphas_cumprod || !s->train_sigmas || !s->log_sigmas) return is_error_oom("scheduler tables");
    if (trained_betas) {
        memcpy(s->betas, trained_betas, (size_t)T * sizeof(float));
    } else if (strcmp(beta_schedule, "linear") == 0) {
        torch_linspace_f32(beta_start, beta_end, T, s->betas);
    } else if (strcmp(beta_schedule, "scaled_linear") == 0) {
        /* float32 linspace of the square roots, squared in float32 */
        torch_linspace_f32(sqrt(beta_start), sqrt(beta_end), T, s->betas);
        for (int i = 0; i < T; i++) s->betas[i] = s->betas[i] * s->betas[i];
    } else { /* squaredcos_cap_v2 (betas_for_alpha_bar, cosine), float64 then float32 */
        for (int i = 0; i < T; i++) {
            double b = 1.0 - alpha_bar_cosine((double)(i + 1) / T) / alpha_bar_cosine((double)i / T);
            s->betas[i] = (float)(b < 0.999 ? b : 0.999);
        }
    }
    /* torch.cumprod accumulates in double and rounds each prefix to float32 */
    double acc = 1.0;
    for (int i = 0; i < T; i++) {
        float alpha = 1.0f - s->betas[i];
        acc *= alpha;
        s->alphas_cumprod[i] = (float)acc;
        float a = s->alphas_cumprod[i];
        if (!(a > 0.0f) || !(a < 1.0f))
            return is_errorf(IS_E_CONFIG, "betas give alphas_cumprod[%d] = %g outside (0, 1)", i, (double)a);
        s->train_sigmas[i] = sqrtf((1.0f - a) / a);
        s->log_sigmas[i] = logf(s->train_sigmas[i]);
    }
    return NULL;
}

/* ------------------------------------------------------------------ numpy helpers */

int is_np_arange(double start, double stop, double step, double *out, int max) {
    double len = ceil((stop - start) / step);
    if (!(len > 0)) return 0;
    int n = len > 1e9 ? 1000000000 : (int)len;
    /* numpy fills: buffer[0] = start, buffer[1] = start + step, then start + i * (buffer[1] - buffer[0]) */
    double second = start + step;
    double delta = second - start;
    for (int i = 0; i < n && i < max; i++) out[i] = i == 0 ? start : i == 1 ? second : start + i * delta;
    return n;
}

void is_np_linspace(double start, double stop, int num, double *out) {
    if (num <= 0) return;
    if (num == 1) {
        out[0] = 0.0 * (stop - start) + start;
        return;
    }
    double step = (stop - start) / (num - 1);
    for (int i = 0; i < num; i++) out[i] = (double)i * step + start;
    out[num - 1] = stop;
}

double is_sched_interp(const struct is_scheduler *s, double x) {
    const float *fp = s->train_sigmas;
    int T = s->T;
    if (!(x > 0.0)) return fp[0];
    if (x >= T - 1) return fp[T - 1];
    int j = (int)floor(x);
    if (x == (double)j) return fp[j];
    double slope = ((double)fp[j + 1] - (double)fp[j]) / 1.0;
    return slope * (x - (double)j) + (double)fp[j];
}

void is_sched_karras(double sigma_min, double sigma_max, int n, double *out) {
    const double rho = 7.0;
    double min_inv = pow(sigma_min, 1.0 / rho), max_inv = pow(sigma_max, 1.0 / rho);
    is_np_linspace(0.0, 1.0, n, out); /* the ramp */
    for (int i = 0; i < n; i++) out[i] = pow(max_inv + out[i] * (min_inv - max_inv), rho);
}

double is_sched_sigma_to_t(const struct is_scheduler *s, double sigma) {
    const float *L = s->log_sigmas;
    int T = s->T;
    double ls = log(sigma > 1e-10 ? sigma : 1e-10);
    /* last index with L[k] <= ls (the table is increasing), 0 if none, at most T-2 */
    int k = 0;
    for (int i = 0; i < T; i++)
        if (ls - (double)L[i] >= 0.0) k = i;
    if (k > T - 2) k = T - 2;
    double w = ((double)L[k] - ls) / (double)(L[k] - L[k + 1]);
    if (w < 0.0) w = 0.0;
    if (w > 1.0) w = 1.0;
    return (1.0 - w) * k + w * (k + 1);
}

is_error *is_sched_check_first_unique(const struct is_scheduler *s) {
    for (int i = 1; i < s->n; i++)
        if (s->timesteps[i] == s->timesteps[0])
            return is_errorf(IS_E_UNSUPPORTED,
                             "%s: %d steps give a repeated first timestep %g (diffusers would start at its second "
                             "occurrence); use fewer steps",
                             s->name, s->requested_steps, (double)s->timesteps[0]);
    return NULL;
}

/* ------------------------------------------------------------------ buffers */

is_error *is_sched_alloc_schedule(struct is_scheduler *s, int n) {
    free(s->timesteps);
    free(s->timesteps_i);
    free(s->sigmas);
    free(s->step_a);
    free(s->step_b);
    free(s->step_c);
    free(s->step_d);
    free(s->step_s);
    free(s->step_order);
    s->timesteps = calloc((size_t)n, sizeof(float));
    s->timesteps_i = calloc((size_t)n, sizeof(int64_t));
    s->sigmas = calloc((size_t)n + 1, sizeof(float));
    s->step_a = calloc((size_t)n, sizeof(float));
    s->step_b = calloc((size_t)n, sizeof(float));
    s->step_c = calloc((size_t)n, sizeof(float));
    s->step_d = calloc((size_t)n, sizeof(float));
    s->step_s = calloc((size_t)n, sizeof(int64_t));
    s->step_order = calloc((size_t)n, sizeof(int));
    s->n = 0;
    if (!s->timesteps || !s->timesteps_i || !s->sigmas || !s->step_a || !s->step_b || !s->step_c || !s->step_d ||
        !s->step_s || !s->step_order)
        return is_error_oom("scheduler timesteps");
    s->n = n;
    return NULL;
}

static int needs_noise(const struct is_scheduler *s) {
    return s->kind == IS_SAMPLER_EULER || s->kind == IS_SAMPLER_EULER_A || s->kind == IS_SAMPLER_LCM ||
           ((s->kind == IS_SAMPLER_DDIM || s->kind == IS_SAMPLER_TCD) && s->eta > 0);
}

is_error *is_sched_reserve_buffers(struct is_scheduler *s, int64_t n) {
    if (n <= s->cap && (!needs_noise(s) || s->noise) && (s->kind != IS_SAMPLER_DPMPP_2M || s->m_prev)) return NULL;
    int64_t cap = n > s->cap ? n : s->cap;
    if (needs_noise(s)) {
        float *p = realloc(s->noise, (size_t)cap * sizeof(float));
        if (!p) return is_error_oom("scheduler noise buffer");
        s->noise = p;
    }
    if (s->kind == IS_SAMPLER_DPMPP_2M) {
        float *a = realloc(s->m_prev, (size_t)cap * sizeof(float));
        if (!a) return is_error_oom("scheduler DPM++ history");
        s->m_prev = a;
        float *b = realloc(s->m_cur, (size_t)cap * sizeof(float));
        if (!b) return is_error_oom("scheduler DPM++ history");
        s->m_cur = b;
    }
    s->cap = cap;
    return NULL;
}

/* ------------------------------------------------------------------ public API */

const char *is_scheduler_name(const is_scheduler *s) { return s ? s->name : "(null)"; }

is_error *is_scheduler_set_timesteps(is_scheduler *s, int steps) {
    if (!s) return is_errorf(IS_E_ARGUMENT, "scheduler: NULL scheduler");
    if (steps < 1)
        return is_errorf(IS_E_ARGUMENT, "%s: number of inference steps must be >= 1, got %d", s->name, steps);
    if (steps > s->T)
        return is_errorf(IS_E_ARGUMENT, "%s: number of inference steps %d exceeds num_train_timesteps %d", s->name,
                         steps, s->T);
    s->requested_steps = steps;
    s->next_step = 0;
    s->begin = 0;
    s->lower_order_nums = 0;
    switch (s->kind) {
    case IS_SAMPLER_EULER: IS_TRY(is_sched_euler_set_timesteps(s, steps)); break;
    case IS_SAMPLER_EULER_A: IS_TRY(is_sched_euler_a_set_timesteps(s, steps)); break;
    case IS_SAMPLER_DDIM: IS_TRY(is_sched_ddim_set_timesteps(s, steps)); break;
    case IS_SAMPLER_DPMPP_2M: IS_TRY(is_sched_dpmpp_set_timesteps(s, steps)); break;
    case IS_SAMPLER_LCM: IS_TRY(is_sched_lcm_set_timesteps(s, steps)); break;
    case IS_SAMPLER_TCD: IS_TRY(is_sched_tcd_set_timesteps(s, steps)); break;
    default: return is_errorf(IS_E_INTERNAL, "scheduler: bad kind");
    }
    return is_sched_check_first_unique(s);
}

int is_scheduler_num_steps(const is_scheduler *s) { return s ? s->n : 0; }

float is_scheduler_timestep(const is_scheduler *s, int i) {
    if (!s || i < 0 || i >= s->n) return NAN;
    return s->timesteps[i];
}

float is_scheduler_init_noise_sigma(const is_scheduler *s) { return s ? s->init_noise_sigma : NAN; }

static int scales_input(const is_scheduler *s) { return s->kind == IS_SAMPLER_EULER || s->kind == IS_SAMPLER_EULER_A; }

float is_scheduler_scale_divisor(const is_scheduler *s, int i) {
    if (!s || i < 0 || i >= s->n) return NAN;
    if (!scales_input(s)) return 1.0f;
    float sigma = s->sigmas[i];
    float sq = sigma * sigma;
    return sqrtf(sq + 1.0f); /* (sigma**2 + 1) ** 0.5 on a float32 tensor */
}

void is_scheduler_scale_model_input(const is_scheduler *s, int i, const float *x, float *out, int64_t n) {
    if (!s || i < 0 || i >= s->n || !scales_input(s)) {
        if (out != x) memmove(out, x, (size_t)n * sizeof(float));
        return;
    }
    float d = is_scheduler_scale_divisor(s, i);
    for (int64_t k = 0; k < n; k++) out[k] = x[k] / d;
}

is_error *is_scheduler_reserve(is_scheduler *s, int64_t n) {
    if (!s || n < 1) return is_errorf(IS_E_ARGUMENT, "scheduler reserve: need a scheduler and n >= 1");
    return is_sched_reserve_buffers(s, n);
}

is_error *is_scheduler_set_eta(is_scheduler *s, float eta) {
    if (!s) return is_errorf(IS_E_ARGUMENT, "scheduler: NULL scheduler");
    if (!(eta >= 0.0f) || !isfinite(eta)) return is_errorf(IS_E_ARGUMENT, "%s: eta must be >= 0, got %g", s->name, eta);
    if (s->kind != IS_SAMPLER_DDIM && s->kind != IS_SAMPLER_TCD && eta != 0.0f)
        return is_errorf(IS_E_ARGUMENT, "%s: eta is a DDIM / TCD option (got %g)", s->name, eta);
    if (s->kind == IS_SAMPLER_TCD && eta > 1.0f) /* diffusers asserts 0 <= gamma <= 1 */
        return is_errorf(IS_E_ARGUMENT, "%s: eta (TCD's gamma) must be in [0, 1], got %g", s->name, eta);
    s->eta = eta;
    /* eta > 0 needs the noise buffer: keep the promise that a reserved scheduler's steps do not allocate */
    return s->cap > 0 ? is_sched_reserve_buffers(s, s->cap) : NULL;
}

is_error *is_scheduler_set_begin_index(is_scheduler *s, int begin) {
    if (!s) return is_errorf(IS_E_ARGUMENT, "scheduler: NULL scheduler");
    if (s->n == 0) return is_errorf(IS_E_ARGUMENT, "%s: set_begin_index before set_timesteps", s->name);
    if (begin < 0 || begin >= s->n)
        return is_errorf(IS_E_ARGUMENT, "%s: begin index %d outside the %d timesteps", s->name, begin, s->n);
    if (s->next_step != s->begin)
        return is_errorf(IS_E_ARGUMENT, "%s: set_begin_index after a step was taken", s->name);
    s->begin = begin;
    s->next_step = begin;
    return NULL;
}

int is_scheduler_begin_index(const is_scheduler *s) { return s ? s->begin : 0; }

is_error *is_scheduler_step(is_scheduler *s, int i, const float *model_output, float *sample, int64_t n,
                            is_torch_rng *g) {
    if (!s) return is_errorf(IS_E_ARGUMENT, "scheduler: NULL scheduler");
    if (s->n == 0) return is_errorf(IS_E_ARGUMENT, "%s: step before set_timesteps", s->name);
    if (i != s->next_step)
        return is_errorf(IS_E_ARGUMENT, "%s: step %d called out of order (expected step %d of %d)", s->name, i,
                         s->next_step, s->n);
    if (i >= s->n) return is_errorf(IS_E_ARGUMENT, "%s: step %d past the last step %d", s->name, i, s->n - 1);
    if (!model_output || !sample || n < 1) return is_errorf(IS_E_ARGUMENT, "%s: step needs data (n = %lld)", s->name, (long long)n);
    if (needs_noise(s) && !g) return is_errorf(IS_E_ARGUMENT, "%s: this sampler draws noise: a generator is required", s->name);
    if (i == s->begin) s->step_n = n;
    if (n != s->step_n)
        return is_errorf(IS_E_ARGUMENT, "%s: step %d has %lld elements, step 0 had %lld", s->name, i, (long long)n,
                         (long long)s->step_n);
    IS_TRY(is_sched_reserve_buffers(s, n));
    switch (s->kind) {
    case IS_SAMPLER_EULER: IS_TRY(is_sched_euler_step(s, i, model_output, sample, n, g)); break;
    case IS_SAMPLER_EULER_A: IS_TRY(is_sched_euler_a_step(s, i, model_output, sample, n, g)); break;
    case IS_SAMPLER_DDIM: IS_TRY(is_sched_ddim_step(s, i, model_output, sample, n, g)); break;
    case IS_SAMPLER_DPMPP_2M: IS_TRY(is_sched_dpmpp_step(s, i, model_output, sample, n)); break;
    case IS_SAMPLER_LCM: IS_TRY(is_sched_lcm_step(s, i, model_output, sample, n, g)); break;
    case IS_SAMPLER_TCD: IS_TRY(is_sched_tcd_step(s, i, model_output, sample, n, g)); break;
    default: return is_errorf(IS_E_INTERNAL, "scheduler: bad kind");
    }
    s->next_step = i + 1;
    return NULL;
}

/* ------------------------------------------------------------------ inspection (tests) */

const float *is_scheduler_sigmas(const is_scheduler *s) {
    return s && (s->kind == IS_SAMPLER_EULER || s->kind == IS_SAMPLER_EULER_A || s->kind == IS_SAMPLER_DPMPP_2M) ? s->sigmas
                                                                                                                : NULL;
}
const int64_t *is_scheduler_timesteps_int(const is_scheduler *s) { return s ? s->timesteps_i : NULL; }
const float *is_scheduler_step_values(const is_scheduler *s, int which) {
    return !s ? NULL : which == 0 ? s->step_a : which == 1 ? s->step_b : which == 2 ? s->step_c : s->step_d;
}
const int64_t *is_scheduler_timesteps_s(const is_scheduler *s) { return s ? s->step_s : NULL; }
void is_scheduler_capture(is_scheduler *s, float *x0, float *second) {
    if (!s) return;
    s->capture_x0 = x0;
    s->capture_second = second;
}
const int *is_scheduler_solver_orders(const is_scheduler *s) { return s ? s->step_order : NULL; }
const float *is_scheduler_table(const is_scheduler *s, int which) {
    return !s ? NULL : which == 0 ? s->betas : which == 1 ? s->alphas_cumprod : s->train_sigmas;
}
