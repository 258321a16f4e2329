/* Live previews: after a denoising step, the sampler's current x0 prediction (the latents it is heading
 * for) as a small RGB image, by the fixed 4 -> 3 linear map A1111 calls "Approx cheap" for SDXL
 * (modules/sd_samplers_common.py: rgb = latents . coeffs, then (v + 1) / 2 clamped, times 255, truncated).
 * 1/8 of the output size: no VAE runs, a 1024x1024 preview costs 16K pixels of arithmetic. */
#include <stdlib.h>

#include "pipeline/generate_internal.h"
#include "sample/scheduler.h"

/* latent channel l -> R, G, B */
static const float sdxl_rgb[4][3] = {{0.3448f, 0.4168f, 0.4395f},
                                     {-0.1953f, -0.0290f, 0.0250f},
                                     {0.1074f, 0.0886f, -0.0163f},
                                     {-0.3730f, -0.2499f, -0.2088f}};

is_error *gen_preview_prepare(const is_generate_params *gp, gen_state *s) {
    s->x0 = malloc((size_t)s->latent_n * sizeof(float));
    if (!s->x0) return is_error_oom("x0 prediction");
    is_scheduler_capture(s->sched, s->x0, NULL);
    if (!gp->preview || s->lc != 4) return NULL; /* the map is SDXL's 4-channel latent space */
    s->preview_rgb = malloc((size_t)s->lh * (size_t)s->lw * 3);
    return s->preview_rgb ? NULL : is_error_oom("live preview");
}

void gen_preview_step(const is_generate_params *gp, gen_state *s, int step, int total) {
    if (!s->preview_rgb) return;
    const size_t px = (size_t)s->lh * (size_t)s->lw;
    const float *x = s->x0;
    uint8_t *o = s->preview_rgb;
    for (size_t i = 0; i < px; i++)
        for (int r = 0; r < 3; r++) {
            float v = 0.0f;
            for (int l = 0; l < 4; l++) v += x[(size_t)l * px + i] * sdxl_rgb[l][r];
            v = (v + 1.0f) * 0.5f;
            v = v > 0.0f ? (v < 1.0f ? v : 1.0f) : 0.0f; /* NaN -> 0: converting it to a byte is undefined */
            o[i * 3 + (size_t)r] = (uint8_t)(v * 255.0f);
        }
    is_image img = {.width = s->lw, .height = s->lh, .rgb = o};
    gp->preview(gp->user, step, total, &img);
}
