/* scheduler.add_noise(original, noise, timesteps[i]) of each diffusers 0.30.3 scheduler: how img2img
 * and inpainting noise the init image's latents to the first timestep they run (and how the 4-channel
 * inpainting loop re-noises them after every step). Sigma schedulers (Euler, Euler a) add sigma * noise;
 * DPM++ scales to the VP form alpha_t * x + sigma_t * noise with alpha_t = 1 / sqrt(sigma^2 + 1); DDIM,
 * LCM and TCD use sqrt(alphas_cumprod[t]). Each factor is a float32 tensor op in diffusers: the same
 * roundings here (torch's pow(x, 0.5) is sqrt). */
#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF
#elif defined(__GNUC__)
#pragma GCC optimize("fp-contract=off")
#endif

#include <math.h>

#include "sample/scheduler.h"

is_error *is_scheduler_add_noise(const is_scheduler *s, int i, const float *original, const float *noise, float *out,
                                 int64_t n) {
    if (!s || !original || !noise || !out || n < 1) return is_errorf(IS_E_ARGUMENT, "add_noise: NULL argument or n < 1");
    if (i < 0 || i >= s->n) return is_errorf(IS_E_ARGUMENT, "%s: add_noise at step %d outside the %d timesteps", s->name, i, s->n);
    switch (s->kind) {
    case IS_SAMPLER_EULER:
    case IS_SAMPLER_EULER_A: {
        float sigma = s->sigmas[i];
        for (int64_t k = 0; k < n; k++) {
            float ns = noise[k] * sigma;
            out[k] = original[k] + ns;
        }
        return NULL;
    }
    case IS_SAMPLER_DPMPP_2M: {
        float sigma = s->sigmas[i];
        float sq = sigma * sigma;
        float alpha_t = 1.0f / sqrtf(sq + 1.0f), sigma_t = sigma * alpha_t;
        for (int64_t k = 0; k < n; k++) {
            float a = alpha_t * original[k], b = sigma_t * noise[k];
            out[k] = a + b;
        }
        return NULL;
    }
    case IS_SAMPLER_DDIM:
    case IS_SAMPLER_LCM:
    case IS_SAMPLER_TCD: { /* DDPM's add_noise, which LCM and TCD copy */
        int64_t t = s->timesteps_i[i];
        if (t < 0 || t >= s->T) return is_errorf(IS_E_INTERNAL, "%s: timestep %lld outside the training table", s->name, (long long)t);
        float a = s->alphas_cumprod[t];
        float sqrt_a = sqrtf(a), sqrt_1ma = sqrtf(1.0f - a);
        for (int64_t k = 0; k < n; k++) {
            float x = sqrt_a * original[k], e = sqrt_1ma * noise[k];
            out[k] = x + e;
        }
        return NULL;
    }
    default: return is_errorf(IS_E_INTERNAL, "add_noise: bad scheduler kind");
    }
}
