/* diffusers rescale_noise_cfg (the SDXL pipeline's guidance_rescale, Lin et al. 2023 sec. 3.4):
 * noise_cfg <- phi * noise_cfg * std(text) / std(cfg) + (1 - phi) * noise_cfg, stds over one batch item. */
#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF
#elif defined(__GNUC__)
#pragma GCC optimize("fp-contract=off") /* float32 updates must round like torch's separate ops */
#endif

#include <math.h>

#include "sample/scheduler.h"

float is_std_unbiased(const float *x, int64_t n) {
    if (n < 2) return NAN; /* torch.std of one element (n-1 = 0) */
    double mean = 0.0;
    for (int64_t k = 0; k < n; k++) mean += x[k];
    mean /= (double)n;
    double ss = 0.0;
    for (int64_t k = 0; k < n; k++) {
        double d = x[k] - mean;
        ss += d * d;
    }
    return (float)sqrt(ss / (double)(n - 1));
}

void is_rescale_noise_cfg(float *noise_cfg, const float *noise_pred_text, int64_t n, float guidance_rescale) {
    float std_text = is_std_unbiased(noise_pred_text, n);
    float std_cfg = is_std_unbiased(noise_cfg, n);
    float factor = std_text / std_cfg;              /* float32 [B,1,1,1] tensor division */
    float phi = guidance_rescale;
    float keep = (float)(1.0 - (double)guidance_rescale); /* Python float (1 - phi), cast for the multiply */
    for (int64_t k = 0; k < n; k++) {
        float rescaled = noise_cfg[k] * factor;
        float a = phi * rescaled, b = keep * noise_cfg[k];
        noise_cfg[k] = a + b;
    }
}
