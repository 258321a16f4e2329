/* scheduler/scheduler_config.json: the input is the file, loaded with is_scheduler_load as its
 * _class_name says and as each sampler the CLI offers (--sampler euler|euler_a|ddim|dpmpp_2m|lcm|tcd, with
 * and without --karras, a --timestep-spacing override, and --eta 0.3 for DDIM and TCD). A scheduler it
 * accepts must set 1, 2, 7 and 30 steps (more than num_train_timesteps may be refused) with finite
 * timesteps, scale model inputs and run its first three steps on a 4-element sample. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_common.h"
#include "instantstyle.h"

static const char *path;

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc;
    (void)argv;
    path = fz_path("scheduler_config.json");
    return 0;
}

static void run(is_scheduler *s) {
    static const int steps[] = {1, 2, 7, 30};
    for (size_t k = 0; k < sizeof steps / sizeof *steps; k++) {
        if (fz_error(is_scheduler_set_timesteps(s, steps[k]))) continue;
        int n = is_scheduler_num_steps(s);
        if (n < 1 || n > 2 * steps[k] + 2) fz_fail("%s: %d timesteps for %d steps", is_scheduler_name(s), n, steps[k]);
        for (int i = 0; i < n; i++)
            if (!isfinite(is_scheduler_timestep(s, i))) fz_fail("%s: timestep %d is not finite", is_scheduler_name(s), i);
        fz_touch((float[]){is_scheduler_init_noise_sigma(s)}, sizeof(float));
        is_torch_rng g;
        is_torch_rng_seed(&g, 42);
        float x[4] = {0.5f, -1.0f, 2.0f, 0.0f}, eps[4] = {0.1f, 0.2f, -0.3f, 0.0f};
        for (int i = 0; i < n && i < 3; i++) {
            float in[4];
            is_scheduler_scale_model_input(s, i, x, in, 4);
            if (fz_error(is_scheduler_step(s, i, eps, x, 4, &g))) break;
        }
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    fz_write(path, data, size);
    static const struct {
        is_sampler kind;
        int karras;
        const char *spacing;
        float eta;
    } ways[] = {
        {IS_SAMPLER_FROM_CONFIG, -1, NULL, 0},    {IS_SAMPLER_EULER, 1, NULL, 0},
        {IS_SAMPLER_EULER_A, 0, "trailing", 0},   {IS_SAMPLER_DDIM, -1, "leading", 0.3f},
        {IS_SAMPLER_DPMPP_2M, 1, "linspace", 0},  {IS_SAMPLER_DPMPP_2M, 0, NULL, 0},
        {IS_SAMPLER_LCM, -1, NULL, 0},            {IS_SAMPLER_TCD, -1, "trailing", 0.3f},
    };
    for (size_t w = 0; w < sizeof ways / sizeof *ways; w++) {
        is_scheduler *s = NULL;
        if (fz_error(is_scheduler_load(path, ways[w].kind, ways[w].karras, ways[w].spacing, &s))) continue;
        if (ways[w].eta > 0 && fz_error(is_scheduler_set_eta(s, ways[w].eta))) fz_fail("%s refused eta %g", is_scheduler_name(s), (double)ways[w].eta);
        run(s);
        is_scheduler_free(s);
    }
    return 0;
}
