/* Internals shared by the pipeline's files. */
#ifndef IS_PIPELINE_INTERNAL_H
#define IS_PIPELINE_INTERNAL_H

#include "core/error.h"
#include "core/safetensors.h"
#include "instantstyle.h"

/* The networks a pipeline keeps between generations (KEEP mode), each loaded on first use. */
typedef struct {
    is_sdxl_text *text;
    is_image_encoder *image_encoder;
    is_unet *unet;          /* with the adapter loaded when the pipeline has one */
    is_vae *vae;
    is_controlnet *controlnet;
} pipeline_networks;

struct is_pipeline {
    char *model_dir;
    char *ip_adapter;        /* NULL: plain SDXL */
    char *image_encoder_dir; /* NULL when no adapter */
    char *controlnet_dir;    /* NULL: no ControlNet */
    char *unet_file;         /* NULL: unet_dir's own weights */
    char *unet_dir, *vae_dir, *scheduler_config;
    int default_width, default_height; /* unet sample_size * 8 */
    int unet_base_channels;            /* block_out_channels[0]: 320 for SDXL */
    int unet_in_channels, unet_out_channels; /* 9 / 4: an inpainting UNet */
    is_memory_mode memory;             /* KEEP or LOW */
    int threads;                       /* 0: the calling thread's OpenMP default */
    /* Sizes of the networks' weight files (*.safetensors), for the memory decision and accounting. */
    uint64_t bytes_text, bytes_image_encoder, bytes_unet, bytes_vae, bytes_controlnet;
    pipeline_networks kept;            /* KEEP mode only */
    char *kept_text_loras, *kept_unet_loras; /* the LoRA list merged into the kept networks (NULL: none) */
};

/* Free the networks kept in p (KEEP mode). */
void pipeline_release_networks(is_pipeline *p);

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
