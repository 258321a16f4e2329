/* EulerDiscreteScheduler (diffusers 0.30.3): the SDXL default. Timesteps by spacing, sigmas by linear
 * interpolation of the training sigmas (optionally Karras, then timesteps re-derived by sigma_to_t), and
 * the first-order Euler step with s_churn = 0. Like diffusers, every step draws one noise tensor from the
 * generator and ignores it (gamma = 0), so the generator stream matches a diffusers run. */
#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF
#elif defined(__GNUC__)
#pragma GCC optimize("fp-contract=off") /* float32 updates must round like torch's separate ops */
#endif

#include <math.h>
#include <stdlib.h>

#include "sample/scheduler.h"

int is_sched_euler_timesteps(const struct is_scheduler *s, int N, double *tmp, float *t) {
    int T = s->T, cnt = N;
    switch (s->spacing) {
    case IS_SPACING_LINSPACE:
        is_np_linspace(0.0, T - 1, N, tmp);
        for (int i = 0; i < N; i++) t[i] = (float)tmp[N - 1 - i];
        break;
    case IS_SPACING_LEADING: {
        int r = T / N;
        for (int i = 0; i < N; i++) t[i] = (float)(r * (N - 1 - i)) + (float)s->steps_offset;
        break;
    }
    case IS_SPACING_TRAILING:
        cnt = is_np_arange(T, 0.0, -((double)T / N), tmp, N + 2);
        for (int i = 0; i < cnt; i++) t[i] = (float)rint(tmp[i]) - 1.0f;
        break;
    }
    return cnt;
}

float is_sched_euler_init_sigma(const struct is_scheduler *s) {
    float m = 0.0f;
    for (int i = 0; i <= s->n; i++)
        if (s->sigmas[i] > m) m = s->sigmas[i];
    if (s->spacing != IS_SPACING_LEADING) return m;
    float sq = m * m;
    return sqrtf(sq + 1.0f);
}

is_error *is_sched_euler_set_timesteps(struct is_scheduler *s, int N) {
    double *tmp = malloc((size_t)(N + 2) * sizeof *tmp);
    double *sig = malloc((size_t)(N + 2) * sizeof *sig);
    float *t = malloc((size_t)(N + 2) * sizeof *t);
    if (!tmp || !sig || !t) {
        free(tmp), free(sig), free(t);
        return is_error_oom("euler timesteps");
    }
    int cnt = is_sched_euler_timesteps(s, N, tmp, t);
    for (int i = 0; i < cnt; i++) sig[i] = is_sched_interp(s, t[i]); /* double, from float32 timesteps */
    if (s->karras) {
        /* range from the SPACED sigmas (config sigma_min/max override), N ramp points, t from sigma */
        double smin = s->sigma_min_cfg >= 0 ? s->sigma_min_cfg : sig[cnt - 1];
        double smax = s->sigma_max_cfg >= 0 ? s->sigma_max_cfg : sig[0];
        is_sched_karras(smin, smax, N, sig);
        cnt = N;
        for (int i = 0; i < cnt; i++) t[i] = (float)is_sched_sigma_to_t(s, sig[i]);
    }
    is_error *e = is_sched_alloc_schedule(s, cnt);
    if (!e) {
        for (int i = 0; i < cnt; i++) {
            s->timesteps[i] = t[i];
            s->timesteps_i[i] = (int64_t)t[i];
            s->sigmas[i] = (float)sig[i];
        }
        s->sigmas[cnt] = 0.0f;
        s->init_noise_sigma = is_sched_euler_init_sigma(s);
    }
    free(tmp), free(sig), free(t);
    return e;
}

/* x0 prediction of one element (epsilon, sample or v_prediction), as diffusers writes it. */
static inline float pred_x0(is_prediction p, float sigma, float c_out, float c_skip_div, float x, float e) {
    if (p == IS_PRED_EPSILON) {
        float se = sigma * e;
        return x - se;
    }
    if (p == IS_PRED_SAMPLE) return e; /* the model predicts x0 (SDXL-Lightning 1-step) */
    float a = e * c_out, b = x / c_skip_div;
    return a + b;
}

is_error *is_sched_euler_step(struct is_scheduler *s, int i, const float *eps, float *x, int64_t n, is_torch_rng *g) {
    float sigma = s->sigmas[i];
    is_torch_randn(g, s->noise, n); /* drawn and unused (s_churn = 0), as diffusers does */
    float dt = s->sigmas[i + 1] - sigma;
    float sq1 = sigma * sigma + 1.0f;
    float c_out = -sigma / sqrtf(sq1);
    for (int64_t k = 0; k < n; k++) {
        float xv = x[k];
        float p = pred_x0(s->prediction, sigma, c_out, sq1, xv, eps[k]);
        if (s->capture_x0) s->capture_x0[k] = p;
        float d = (xv - p) / sigma;
        float dd = d * dt;
        x[k] = xv + dd;
    }
    return NULL;
}
