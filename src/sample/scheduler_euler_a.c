/* EulerAncestralDiscreteScheduler (diffusers 0.30.3): Euler timesteps/sigmas (no Karras option), a step
 * to sigma_down followed by fresh noise scaled by sigma_up, drawn from the generator every step. */
#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF
#elif defined(__GNUC__)
#pragma GCC optimize("fp-contract=off") /* float32 updates must round like torch's separate ops */
#endif

#include <math.h>
#include <stdlib.h>

#include "sample/scheduler.h"

is_error *is_sched_euler_a_set_timesteps(struct is_scheduler *s, int N) {
    double *tmp = malloc((size_t)(N + 2) * sizeof *tmp);
    float *t = malloc((size_t)(N + 2) * sizeof *t);
    if (!tmp || !t) {
        free(tmp), free(t);
        return is_error_oom("euler_a timesteps");
    }
    int cnt = is_sched_euler_timesteps(s, N, tmp, t);
    is_error *e = is_sched_alloc_schedule(s, cnt);
    if (!e) {
        for (int i = 0; i < cnt; i++) {
            s->timesteps[i] = t[i];
            s->timesteps_i[i] = (int64_t)t[i];
            s->sigmas[i] = (float)is_sched_interp(s, t[i]);
        }
        s->sigmas[cnt] = 0.0f;
        s->init_noise_sigma = is_sched_euler_init_sigma(s);
        /* sigma_up / sigma_down per step, float32 scalar ops as on diffusers' 0-dim tensors */
        for (int i = 0; i < cnt; i++) {
            float from = s->sigmas[i], to = s->sigmas[i + 1];
            float to2 = to * to, from2 = from * from;
            float num = to2 * (from2 - to2);
            float up = sqrtf(num / from2);
            float up2 = up * up;
            s->step_a[i] = up;
            s->step_b[i] = sqrtf(to2 - up2);
        }
    }
    free(tmp), free(t);
    return e;
}

is_error *is_sched_euler_a_step(struct is_scheduler *s, int i, const float *eps, float *x, int64_t n,
                                is_torch_rng *g) {
    float sigma = s->sigmas[i];
    float up = s->step_a[i], down = s->step_b[i];
    float dt = down - sigma;
    float sq1 = sigma * sigma + 1.0f;
    float c_out = -sigma / sqrtf(sq1);
    for (int64_t k = 0; k < n; k++) {
        float xv = x[k], e = eps[k], p;
        if (s->prediction == IS_PRED_EPSILON) {
            float se = sigma * e;
            p = xv - se;
        } else {
            float a = e * c_out, b = xv / sq1;
            p = a + b;
        }
        if (s->capture_x0) s->capture_x0[k] = p;
        float d = (xv - p) / sigma;
        float dd = d * dt;
        x[k] = xv + dd;
    }
    is_torch_randn(g, s->noise, n); /* after the deterministic part, also on the last step (up = 0) */
    for (int64_t k = 0; k < n; k++) {
        float v = s->noise[k] * up;
        x[k] = x[k] + v;
    }
    return NULL;
}
