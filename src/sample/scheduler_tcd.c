/* TCDScheduler (diffusers 0.30.3), the sampler of TCD-LoRA / Hyper-SD: LCM's timesteps; each step moves
 * the trajectory to the earlier timestep s = floor((1 - gamma) * t_prev) with the model's own noise
 * (pred_noised_sample), then, when gamma > 0 and it is not the last step, forward-diffuses from s back to
 * t_prev with fresh noise from the generator. gamma is the pipeline's eta (default 0: deterministic). */
#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF
#elif defined(__GNUC__)
#pragma GCC optimize("fp-contract=off") /* float32 updates must round like torch's separate ops */
#endif

#include <math.h>

#include "sample/scheduler.h"

is_error *is_sched_tcd_set_timesteps(struct is_scheduler *s, int N) {
    IS_TRY(is_sched_lcm_timesteps(s, N));
    for (int i = 0; i < N; i++) {
        int64_t prev = i + 1 < N ? s->timesteps_i[i + 1] : 0; /* the last step goes to 0 */
        s->step_a[i] = s->alphas_cumprod[s->timesteps_i[i]];
        s->step_b[i] = s->alphas_cumprod[prev];
    }
    return NULL;
}

is_error *is_sched_tcd_step(struct is_scheduler *s, int i, const float *eps, float *x, int64_t n, is_torch_rng *g) {
    int64_t prev = i + 1 < s->n ? s->timesteps_i[i + 1] : 0;
    /* (1 - gamma) is a Python float, times the int64 0-dim prev_timestep: a float32 product, floored */
    float keep = (float)(1.0 - (double)s->eta);
    float fs = keep * (float)prev;
    int64_t ts = (int64_t)floorf(fs);
    if (ts < 0 || ts >= s->T)
        return is_errorf(IS_E_INTERNAL, "%s: timestep_s %lld outside the training table", s->name, (long long)ts);
    float a_t = s->step_a[i], a_prev = s->step_b[i], a_s = s->alphas_cumprod[ts];
    s->step_s[i] = ts;
    s->step_c[i] = a_s;
    float beta_t = 1.0f - a_t, beta_s = 1.0f - a_s;
    float sqrt_a = sqrtf(a_t), sqrt_b = sqrtf(beta_t), sqrt_as = sqrtf(a_s), sqrt_bs = sqrtf(beta_s);
    for (int64_t k = 0; k < n; k++) {
        float p, pe;
        is_sched_vp_predict(s->prediction, sqrt_a, sqrt_b, x[k], eps[k], &p, &pe);
        float a = sqrt_as * p, b = sqrt_bs * pe;
        float xs = a + b;
        if (s->capture_x0) s->capture_x0[k] = p;
        if (s->capture_second) s->capture_second[k] = xs;
        x[k] = xs;
    }
    if (!(s->eta > 0.0f) || i == s->n - 1) return NULL; /* deterministic, or the last step: x_s */
    is_torch_randn(g, s->noise, n);
    float ratio = a_prev / a_s;
    float c_xs = sqrtf(ratio), c_noise = sqrtf(1.0f - ratio);
    for (int64_t k = 0; k < n; k++) {
        float a = c_xs * x[k], b = c_noise * s->noise[k];
        x[k] = a + b;
    }
    return NULL;
}
