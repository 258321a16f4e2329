/* Few-step presets: the sampler settings each distilled SDXL family is published with (its model card's
 * diffusers example), so that `--preset lightning-4step --lora sdxl_lightning_4step_lora.safetensors` runs
 * the way its authors run it. A preset sets steps, sampler, spacing, prediction type, CFG and eta;
 * options given after it override it. docs/FEW_STEP.md lists where each model comes from. */
#include <string.h>

#include "core/error.h"
#include "instantstyle.h"

typedef struct {
    const char *name;
    int steps;
    is_sampler sampler;
    const char *spacing;     /* NULL: the sampler's own schedule */
    const char *prediction;  /* NULL: as configured (epsilon) */
    float cfg, eta;
} preset;

static const preset presets[] = {
    /* ByteDance/SDXL-Lightning: EulerDiscreteScheduler, timestep_spacing "trailing", guidance_scale 0 */
    {"lightning-2step", 2, IS_SAMPLER_EULER, "trailing", NULL, 0.0f, 0.0f},
    {"lightning-4step", 4, IS_SAMPLER_EULER, "trailing", NULL, 0.0f, 0.0f},
    {"lightning-8step", 8, IS_SAMPLER_EULER, "trailing", NULL, 0.0f, 0.0f},
    /* its 1-step UNet predicts the sample itself */
    {"lightning-1step", 1, IS_SAMPLER_EULER, "trailing", "sample", 0.0f, 0.0f},
    /* latent-consistency/lcm-lora-sdxl: LCMScheduler, 4 steps, guidance_scale 1 (CFG off) */
    {"lcm-4step", 4, IS_SAMPLER_LCM, NULL, NULL, 1.0f, 0.0f},
    {"lcm-8step", 8, IS_SAMPLER_LCM, NULL, NULL, 1.0f, 0.0f},
    /* h1t/TCD-SDXL-LoRA: TCDScheduler, 4 steps, guidance_scale 0, eta (gamma) 0.3 */
    {"tcd-4step", 4, IS_SAMPLER_TCD, NULL, NULL, 0.0f, 0.3f},
    /* ByteDance/Hyper-SD (Hyper-SDXL-nsteps-lora): DDIMScheduler, timestep_spacing "trailing", guidance 0 */
    {"hyper-sd-4step", 4, IS_SAMPLER_DDIM, "trailing", NULL, 0.0f, 0.0f},
    {"hyper-sd-8step", 8, IS_SAMPLER_DDIM, "trailing", NULL, 0.0f, 0.0f},
};

int is_preset_count(void) { return (int)(sizeof presets / sizeof presets[0]); }

const char *is_preset_name(int i) { return i >= 0 && i < is_preset_count() ? presets[i].name : NULL; }

is_error *is_generate_params_preset(is_generate_params *gp, const char *name) {
    if (!gp || !name) return is_errorf(IS_E_ARGUMENT, "is_generate_params_preset: NULL argument");
    for (int i = 0; i < is_preset_count(); i++) {
        const preset *p = &presets[i];
        if (strcmp(p->name, name)) continue;
        gp->steps = p->steps;
        gp->sampler = p->sampler;
        gp->timestep_spacing = p->spacing;
        gp->prediction_type = p->prediction;
        gp->cfg = p->cfg;
        gp->eta = p->eta;
        gp->karras = -1;
        return NULL;
    }
    char list[512] = "";
    for (int i = 0; i < is_preset_count(); i++) {
        size_t at = strlen(list);
        if (at + strlen(presets[i].name) + 3 >= sizeof list) break;
        strcat(list, i ? ", " : "");
        strcat(list, presets[i].name);
    }
    return is_errorf(IS_E_ARGUMENT, "unknown preset '%.64s' (known: %s)", name, list);
}
