/* Internals shared by the pipeline's files. */
#ifndef IS_PIPELINE_INTERNAL_H
#define IS_PIPELINE_INTERNAL_H

#include "core/error.h"
#include "core/safetensors.h"

struct is_pipeline {
    char *model_dir;
    char *ip_adapter;        /* NULL: plain SDXL */
    char *image_encoder_dir; /* NULL when no adapter */
    char *unet_dir, *vae_dir, *scheduler_config;
    int default_width, default_height; /* unet sample_size * 8 */
    int unet_base_channels;            /* block_out_channels[0]: 320 for SDXL */
};

/* Named-intermediate collector for --dump-tensors (no-op when path is NULL). */
typedef struct {
    is_st_writer *w;
    const char *path;
} is_dump;

is_error *is_dump_begin(is_dump *d, const char *path);
is_error *is_dump_f32(is_dump *d, const char *name, const float *data, int ndim, ...);
is_error *is_dump_u8(is_dump *d, const char *name, const uint8_t *data, int ndim, ...);
is_error *is_dump_finish(is_dump *d); /* writes the file atomically; frees */
void is_dump_abort(is_dump *d);

/* A1111-style "parameters" text for the PNG (malloc'ed). */
char *is_format_parameters(const is_pipeline *p, const is_generate_params *gp, int width, int height,
                           is_precision ran);

#endif
