/* DPMSolverMultistepScheduler (diffusers 0.30.3), algorithm "dpmsolver++", order 2 ("DPM++ 2M", with
 * Karras sigmas "DPM++ 2M Karras"). Each step converts the model output to an x0 prediction and keeps the
 * previous one; step 0 and the last step are first order, the others second order (midpoint, or heun).
 * Never draws noise. The schedule scalars are float32 like diffusers' 0-dim tensors. */
#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF
#elif defined(__GNUC__)
#pragma GCC optimize("fp-contract=off") /* float32 updates must round like torch's separate ops */
#endif

#include <math.h>
#include <string.h>
#include <stdlib.h>

#include "sample/scheduler.h"

/* diffusers' last_timestep: T minus the number of flipped lambdas below lambda_min_clipped. */
static int last_timestep(const struct is_scheduler *s) {
    int below = 0;
    for (int j = 0; j < s->T; j++) {
        float a = s->alphas_cumprod[s->T - 1 - j];
        float lam = logf(sqrtf(a)) - logf(sqrtf(1.0f - a));
        if ((double)lam < s->lambda_min_clipped) below++;
    }
    return s->T - below;
}

is_error *is_sched_dpmpp_set_timesteps(struct is_scheduler *s, int N) {
    int T = s->T, last = last_timestep(s), cnt = N;
    /* diffusers would go on with an empty (trailing) or a made-up schedule (timesteps 0 and -1, or all
     * steps_offset): refuse the config instead. Karras sigmas come from the whole table and ignore it. */
    if (last < 1 && !s->karras) {
        float a = s->alphas_cumprod[0];
        return is_errorf(IS_E_CONFIG,
                         "%s: lambda_min_clipped = %g clips every timestep (the largest lambda of the schedule is "
                         "%.4g): expected a value below it (diffusers' default is -inf)",
                         s->config_path ? s->config_path : s->name, s->lambda_min_clipped,
                         (double)(logf(sqrtf(a)) - logf(sqrtf(1.0f - a))));
    }
    double *tmp = malloc((size_t)(N + 2) * sizeof *tmp);
    double *sig = malloc((size_t)(N + 2) * sizeof *sig);
    int64_t *t = malloc((size_t)(N + 2) * sizeof *t);
    if (!tmp || !sig || !t) {
        free(tmp), free(sig), free(t);
        return is_error_oom("dpm++ timesteps");
    }
    /* DPM's spacing rules take N+1 points and drop the last */
    switch (s->spacing) {
    case IS_SPACING_LINSPACE:
        is_np_linspace(0.0, last - 1, N + 1, tmp);
        for (int i = 0; i < N; i++) t[i] = (int64_t)rint(tmp[N - i]);
        break;
    case IS_SPACING_LEADING: {
        int64_t r = last / (N + 1);
        for (int i = 0; i < N; i++) t[i] = r * (N - i) + s->steps_offset;
        break;
    }
    case IS_SPACING_TRAILING:
        cnt = is_np_arange(last, 0.0, -((double)T / N), tmp, N + 2);
        for (int i = 0; i < cnt; i++) t[i] = (int64_t)rint(tmp[i]) - 1;
        break;
    }
    if (s->karras) {
        /* range from the FULL training table, whatever the spacing; timesteps rounded from sigma_to_t */
        is_sched_karras(s->train_sigmas[0], s->train_sigmas[T - 1], N, sig);
        cnt = N;
        for (int i = 0; i < N; i++) t[i] = (int64_t)rint(is_sched_sigma_to_t(s, sig[i]));
    } else {
        for (int i = 0; i < cnt; i++) sig[i] = is_sched_interp(s, (double)t[i]);
    }
    is_error *e = is_sched_alloc_schedule(s, cnt);
    if (!e) {
        for (int i = 0; i < cnt; i++) {
            s->timesteps_i[i] = t[i];
            s->timesteps[i] = (float)t[i];
            s->sigmas[i] = (float)sig[i];
        }
        s->sigmas[cnt] = 0.0f; /* final_sigmas_type "zero" */
        s->init_noise_sigma = 1.0f;
    }
    free(tmp), free(sig), free(t);
    return e;
}

typedef struct {
    float alpha, sig, lambda;
} vp_point;

static vp_point vp_from_sigma(float sigma) {
    vp_point p;
    float sq = sigma * sigma;
    p.alpha = 1.0f / sqrtf(sq + 1.0f);
    p.sig = sigma * p.alpha;
    p.lambda = logf(p.alpha) - logf(p.sig);
    return p;
}

is_error *is_sched_dpmpp_step(struct is_scheduler *s, int i, const float *eps, float *x, int64_t n) {
    int last_step = i == s->n - 1;
    /* lower_order_final: the last step is first order (final_sigmas_type "zero" forces it for every N) */
    int order = (s->solver_order == 1 || s->lower_order_nums < 1 || last_step) ? 1 : 2;
    s->step_order[i] = order;
    vp_point cur = vp_from_sigma(s->sigmas[i]);
    float sigma_next = s->sigmas[i + 1];
    float *m = s->m_cur;
    /* x0 prediction of this step */
    for (int64_t k = 0; k < n; k++) {
        if (s->prediction == IS_PRED_EPSILON) {
            float se = cur.sig * eps[k];
            m[k] = (x[k] - se) / cur.alpha;
        } else {
            float ax = cur.alpha * x[k], se = cur.sig * eps[k];
            m[k] = ax - se;
        }
    }
    if (s->capture_x0) memcpy(s->capture_x0, m, (size_t)n * sizeof(float));
    if (sigma_next == 0.0f && order == 1) {
        /* sigma_t = 0: alpha_t = 1, exp(-h) = 0, the update is exactly x = m (diffusers evaluates log(0)) */
        for (int64_t k = 0; k < n; k++) x[k] = m[k];
    } else {
        vp_point nxt = vp_from_sigma(sigma_next);
        float h = nxt.lambda - cur.lambda;
        float c_x = nxt.sig / cur.sig;
        float em1 = expf(-h) - 1.0f;
        float c_d0 = nxt.alpha * em1;
        if (order == 1) {
            for (int64_t k = 0; k < n; k++) {
                float a = c_x * x[k], b = c_d0 * m[k];
                x[k] = a - b;
            }
        } else {
            vp_point prev = vp_from_sigma(s->sigmas[i - 1]);
            float h0 = cur.lambda - prev.lambda;
            float r0 = h0 / h;
            float inv_r0 = 1.0f / r0;
            /* midpoint: - 0.5 * (alpha_t * (exp(-h) - 1)) * D1; heun: + (alpha_t * ((exp(-h) - 1) / h + 1)) * D1 */
            float c_d1 = s->solver_heun ? -(nxt.alpha * (em1 / h + 1.0f)) : 0.5f * c_d0;
            const float *mp = s->m_prev;
            for (int64_t k = 0; k < n; k++) {
                float diff = m[k] - mp[k];
                float d1 = inv_r0 * diff;
                float a = c_x * x[k], b = c_d0 * m[k], c = c_d1 * d1;
                float ab = a - b;
                x[k] = ab - c;
            }
        }
    }
    /* keep this step's x0 prediction as the history */
    s->m_cur = s->m_prev;
    s->m_prev = m;
    if (s->lower_order_nums < s->solver_order) s->lower_order_nums++;
    return NULL;
}
