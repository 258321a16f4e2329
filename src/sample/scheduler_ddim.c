/* DDIMScheduler (diffusers 0.30.3): integer timesteps, prev_t = t - T // N whatever the spacing (a
 * diffusers quirk kept on purpose), alphas_cumprod[prev_t] or the final alpha (alphas_cumprod[0] unless
 * set_alpha_to_one), optional eta noise drawn from the generator. No input scaling, init sigma 1. */
#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF
#elif defined(__GNUC__)
#pragma GCC optimize("fp-contract=off") /* float32 updates must round like torch's separate ops */
#endif

#include <math.h>
#include <stdlib.h>

#include "sample/scheduler.h"

is_error *is_sched_ddim_set_timesteps(struct is_scheduler *s, int N) {
    int T = s->T, cnt = N;
    double *tmp = malloc((size_t)(N + 2) * sizeof *tmp);
    int64_t *t = malloc((size_t)(N + 2) * sizeof *t);
    if (!tmp || !t) {
        free(tmp), free(t);
        return is_error_oom("ddim timesteps");
    }
    switch (s->spacing) {
    case IS_SPACING_LINSPACE:
        is_np_linspace(0.0, T - 1, N, tmp);
        for (int i = 0; i < N; i++) t[i] = (int64_t)rint(tmp[N - 1 - i]);
        break;
    case IS_SPACING_LEADING:
        for (int i = 0; i < N; i++) t[i] = (int64_t)(T / N) * (N - 1 - i) + s->steps_offset;
        break;
    case IS_SPACING_TRAILING:
        cnt = is_np_arange(T, 0.0, -((double)T / N), tmp, N + 2);
        for (int i = 0; i < cnt; i++) t[i] = (int64_t)rint(tmp[i]) - 1;
        break;
    }
    is_error *e = is_sched_alloc_schedule(s, cnt);
    if (!e) {
        for (int i = 0; i < cnt; i++) {
            s->timesteps_i[i] = t[i];
            s->timesteps[i] = (float)t[i];
        }
        s->init_noise_sigma = 1.0f;
        /* alpha_prod_t and alpha_prod_t_prev per step */
        float final_alpha = s->set_alpha_to_one ? 1.0f : s->alphas_cumprod[0];
        for (int i = 0; i < cnt && !e; i++) {
            int64_t ts = t[i], prev = ts - T / N;
            int64_t idx = ts < 0 ? ts + T : ts; /* Python indexing: alphas_cumprod[-1] is the last entry */
            if (idx < 0 || idx >= T) {
                e = is_errorf(IS_E_INTERNAL, "ddim: timestep %lld outside the training table", (long long)ts);
                break;
            }
            s->step_a[i] = s->alphas_cumprod[idx];
            s->step_b[i] = prev >= 0 ? s->alphas_cumprod[prev] : final_alpha;
        }
    }
    free(tmp), free(t);
    return e;
}

is_error *is_sched_ddim_step(struct is_scheduler *s, int i, const float *eps, float *x, int64_t n, is_torch_rng *g) {
    float a_t = s->step_a[i], a_prev = s->step_b[i];
    float beta_t = 1.0f - a_t, beta_prev = 1.0f - a_prev;
    float sqrt_a = sqrtf(a_t), sqrt_b = sqrtf(beta_t), sqrt_a_prev = sqrtf(a_prev);
    float ratio = a_t / a_prev;
    float variance = (beta_prev / beta_t) * (1.0f - ratio);
    float std = s->eta * sqrtf(variance);
    float std2 = std * std;
    float dir_coef = sqrtf(beta_prev - std2);
    float lim = s->clip_sample_range;
    for (int64_t k = 0; k < n; k++) {
        float xv = x[k], p, pe;
        is_sched_vp_predict(s->prediction, sqrt_a, sqrt_b, xv, eps[k], &p, &pe);
        if (s->clip_sample) p = p < -lim ? -lim : p > lim ? lim : p;
        if (s->capture_x0) s->capture_x0[k] = p;
        float dir = dir_coef * pe;
        float ap = sqrt_a_prev * p;
        x[k] = ap + dir;
    }
    if (s->eta > 0.0f) {
        is_torch_randn(g, s->noise, n);
        for (int64_t k = 0; k < n; k++) {
            float v = std * s->noise[k];
            x[k] = x[k] + v;
        }
    }
    return NULL;
}
