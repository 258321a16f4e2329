/* Pipeline object: resolves and checks the model folders; the networks are opened by is_generate. */
#include <stdlib.h>
#include <string.h>

#include "core/config.h"
#include "core/fileio.h"
#include "pipeline/pipeline_internal.h"

void is_generate_params_init(is_generate_params *p) {
    memset(p, 0, sizeof *p);
    p->steps = 30;
    p->cfg = 5.0f;
    p->sampler = IS_SAMPLER_FROM_CONFIG;
    p->karras = -1;
    p->ip_scale = 1.0f;
    p->style_blocks = "style";
    p->content_scale = 0.5f;
    p->vae_tiling = -1;
}

void is_pipeline_free(is_pipeline *p) {
    if (!p) return;
    free(p->model_dir);
    free(p->ip_adapter);
    free(p->image_encoder_dir);
    free(p->unet_dir);
    free(p->vae_dir);
    free(p->scheduler_config);
    free(p);
}

static is_error *need_path(const char *path, const char *what) {
    if (!is_file_exists(path))
        return is_errorf(IS_E_IO, "%s: not found (expected %s)", path, what);
    return NULL;
}

is_error *is_pipeline_load(const is_pipeline_paths *paths, is_pipeline **out) {
    *out = NULL;
    if (!paths || !paths->model_dir) return is_errorf(IS_E_ARGUMENT, "no model folder given");
    is_pipeline *p = calloc(1, sizeof *p);
    if (!p) return is_error_oom("pipeline");
    is_error *err = NULL;
    p->model_dir = strdup(paths->model_dir);
    p->unet_dir = is_path_join(paths->model_dir, "unet");
    p->vae_dir = is_path_join(paths->model_dir, "vae");
    p->scheduler_config = is_path_join(paths->model_dir, "scheduler/scheduler_config.json");
    if (!p->model_dir || !p->unet_dir || !p->vae_dir || !p->scheduler_config) err = is_error_oom("pipeline");
    char *index = err ? NULL : is_path_join(paths->model_dir, "model_index.json");
    if (!err) err = need_path(index, "an SDXL diffusers folder with model_index.json");
    free(index);
    if (!err) err = need_path(p->scheduler_config, "the model's scheduler config");
    if (!err && paths->ip_adapter) {
        err = need_path(paths->ip_adapter, "an IP-Adapter .safetensors file");
        if (!err && !(p->ip_adapter = strdup(paths->ip_adapter))) err = is_error_oom("pipeline");
        if (!err && paths->image_encoder_dir) {
            p->image_encoder_dir = strdup(paths->image_encoder_dir);
        } else if (!err) {
            char *dir = is_path_dirname(paths->ip_adapter);
            p->image_encoder_dir = dir ? is_path_join(dir, "image_encoder") : NULL;
            free(dir);
        }
        if (!err && !p->image_encoder_dir) err = is_error_oom("pipeline");
        if (!err) err = need_path(p->image_encoder_dir, "the IP-Adapter's image_encoder/ folder (--image-encoder)");
    }
    if (!err) {
        is_config cfg;
        err = is_config_load_in(p->unet_dir, "config.json", &cfg);
        int64_t sample_size = 128, channels[16];
        int n_channels = 0;
        if (!err) err = is_config_int(&cfg, "sample_size", &sample_size);
        if (!err) err = is_config_int_list(&cfg, "block_out_channels", channels, 16, -1, 0, &n_channels);
        p->unet_base_channels = n_channels > 0 ? (int)channels[0] : 320;
        is_config_free(&cfg);
        /* VAE scale = 2^(number of VAE blocks - 1), as diffusers' vae_scale_factor. */
        int64_t blocks[16];
        int n_blocks = 0;
        if (!err) err = is_config_load_in(p->vae_dir, "config.json", &cfg);
        if (!err) err = is_config_int_list(&cfg, "block_out_channels", blocks, 16, -1, 0, &n_blocks);
        is_config_free(&cfg);
        p->default_width = p->default_height = (int)sample_size * (1 << (n_blocks > 0 ? n_blocks - 1 : 3));
    }
    if (err) {
        is_pipeline_free(p);
        return err;
    }
    *out = p;
    return NULL;
}
