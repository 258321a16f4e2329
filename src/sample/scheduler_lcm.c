/* LCMScheduler (diffusers 0.30.3), the sampler of LCM-LoRA: timesteps picked from the 50-step distillation
 * schedule (timestep_spacing and steps_offset do not apply), the x0 prediction passed through the
 * consistency-model boundary condition (c_skip, c_out), then re-noised to the next timestep with fresh noise
 * from the generator on every step but the last. No input scaling, init sigma 1. */
#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF
#elif defined(__GNUC__)
#pragma GCC optimize("fp-contract=off") /* float32 updates must round like torch's separate ops */
#endif

#include <math.h>

#include "sample/scheduler.h"

is_error *is_sched_lcm_timesteps(struct is_scheduler *s, int N) {
    int T = s->T, orig = s->original_steps;
    if (N > orig)
        return is_errorf(IS_E_ARGUMENT,
                         "%s: %d steps exceed original_inference_steps %d (the schedule is a subset of its %d "
                         "distillation timesteps)",
                         s->name, N, orig, orig);
    int k = T / orig;
    IS_TRY(is_sched_alloc_schedule(s, N));
    /* numpy linspace(0, orig, N, endpoint=False) = j * (orig / N) in double, floored: an index into the
     * reversed origin schedule orig*k - 1, ..., 2k - 1, k - 1 */
    double step = (double)orig / N;
    for (int j = 0; j < N; j++) {
        int64_t idx = (int64_t)floor(j * step);
        int64_t t = (int64_t)k * (orig - idx) - 1;
        s->timesteps_i[j] = t;
        s->timesteps[j] = (float)t;
    }
    s->init_noise_sigma = 1.0f;
    return NULL;
}

is_error *is_sched_lcm_set_timesteps(struct is_scheduler *s, int N) {
    IS_TRY(is_sched_lcm_timesteps(s, N));
    for (int i = 0; i < N; i++) {
        int64_t t = s->timesteps_i[i];
        int64_t prev = i + 1 < N ? s->timesteps_i[i + 1] : t; /* the last step "goes" to its own timestep */
        s->step_a[i] = s->alphas_cumprod[t];
        s->step_b[i] = s->alphas_cumprod[prev];
        /* get_scalings_for_boundary_condition_discrete: float32 0-dim tensor ops, sigma_data = 0.5 */
        float st = (float)t * (float)s->timestep_scaling;
        float st2 = st * st;
        float den = st2 + 0.25f;
        float inv = 1.0f / den; /* torch's 0.25 / tensor is reciprocal() * 0.25 */
        s->step_c[i] = inv * 0.25f;
        s->step_d[i] = st / sqrtf(den);
    }
    return NULL;
}

is_error *is_sched_lcm_step(struct is_scheduler *s, int i, const float *eps, float *x, int64_t n, is_torch_rng *g) {
    float a_t = s->step_a[i], a_prev = s->step_b[i], c_skip = s->step_c[i], c_out = s->step_d[i];
    float beta_t = 1.0f - a_t, beta_prev = 1.0f - a_prev;
    float sqrt_a = sqrtf(a_t), sqrt_b = sqrtf(beta_t);
    float lim = s->clip_sample_range;
    for (int64_t k = 0; k < n; k++) {
        float xv = x[k], p, unused_eps;
        is_sched_vp_predict(s->prediction, sqrt_a, sqrt_b, xv, eps[k], &p, &unused_eps);
        if (s->clip_sample) p = p < -lim ? -lim : p > lim ? lim : p;
        float a = c_out * p, b = c_skip * xv;
        float d = a + b;
        if (s->capture_x0) s->capture_x0[k] = p;
        if (s->capture_second) s->capture_second[k] = d;
        x[k] = d;
    }
    if (i == s->n - 1) return NULL; /* the last step returns `denoised`, no draw */
    /* re-noise to the next timestep: one draw per step, after the x0 math, as diffusers */
    is_torch_randn(g, s->noise, n);
    float sqrt_a_prev = sqrtf(a_prev), sqrt_b_prev = sqrtf(beta_prev);
    for (int64_t k = 0; k < n; k++) {
        float a = sqrt_a_prev * x[k], b = sqrt_b_prev * s->noise[k];
        x[k] = a + b;
    }
    return NULL;
}
