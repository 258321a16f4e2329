/* instantstyle: InstantStyle (SDXL + IP-Adapter) style-preserving text-to-image in C.
 *
 * One header, one prefix (is_). Objects are opaque *_context-like handles with explicit
 * load/free. Every fallible function returns an is_error* : NULL on success, otherwise an
 * error value whose message names the file, tensor or field at fault. Free it with
 * is_error_free(). Sizes are read from the model files, never assumed.
 */
#ifndef INSTANTSTYLE_H
#define INSTANTSTYLE_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define IS_VERSION_STRING "0.1.0"

/* ---------------------------------------------------------------- errors */

typedef enum {
    IS_OK = 0,
    IS_E_IO,          /* a file could not be opened, read or written */
    IS_E_FORMAT,      /* a file is malformed (safetensors, JSON, PNG, ...) */
    IS_E_SHAPE,       /* a tensor has the wrong shape or dtype */
    IS_E_CONFIG,      /* a config.json field is missing or inconsistent */
    IS_E_ARGUMENT,    /* a caller-supplied value is invalid */
    IS_E_NOMEM,       /* out of memory */
    IS_E_UNSUPPORTED, /* valid input that this engine does not implement */
    IS_E_INTERNAL
} is_status;

typedef struct is_error is_error;

const char *is_error_message(const is_error *err); /* "success" for NULL */
is_status is_error_code(const is_error *err);      /* IS_OK for NULL */
const char *is_status_name(is_status code);
void is_error_free(is_error *err);

/* ---------------------------------------------------------------- threads */

/* Number of threads used by kernels (OpenMP). n <= 0 selects all cores. */
void is_set_threads(int n);
int is_get_threads(void);

/* ---------------------------------------------------------------- tokenizer */
/* (section: text/tokenizer) */

/* ---------------------------------------------------------------- text encoders */
/* (section: text/clip_text, text/prompt) */

/* CLIP text transformer (transformers CLIPTextModel / CLIPTextModelWithProjection). */
typedef struct is_clip_text is_clip_text;
/* A transformers CLIPTextModel / CLIPTextModelWithProjection folder: config.json + model.safetensors (or a sharded index). */
is_error *is_clip_text_load(const char *dir, is_clip_text **out);
void is_clip_text_free(is_clip_text *m);
int is_clip_text_hidden_size(const is_clip_text *m);
int is_clip_text_projection_dim(const is_clip_text *m);   /* 0 when the model has no text_projection */
int is_clip_text_max_positions(const is_clip_text *m);
/* Run on n ids (1 <= n <= max_positions). Each output may be NULL: penultimate [n,hidden] = hidden_states[-2];
 * last_hidden [n,hidden] (after final LayerNorm); pooled [hidden] (final-LN state at the pooled position);
 * text_embeds [proj_dim]. Uses scratch buffers inside m: one forward at a time per model object. */
is_error *is_clip_text_forward(is_clip_text *m, const int32_t *ids, int n, float *penultimate, float *last_hidden,
                               float *pooled, float *text_embeds);
/* Position whose final state is pooled: argmax(ids) when config eos_token_id == 2 (legacy CLIP configs),
 * else the first position holding eos_token_id (0 when absent), as transformers does. */
int is_clip_text_pooled_position(const is_clip_text *m, const int32_t *ids, int n);

/* SDXL prompt encoding (diffusers StableDiffusionXLPipeline.encode_prompt, one prompt, no LoRA / clip_skip). */
typedef struct is_sdxl_text is_sdxl_text;
/* SDXL pipeline folder: model_index.json, tokenizer/, tokenizer_2/, text_encoder/, text_encoder_2/. */
is_error *is_sdxl_text_load(const char *model_dir, is_sdxl_text **out);
void is_sdxl_text_free(is_sdxl_text *t);
int is_sdxl_text_seq_len(const is_sdxl_text *t);     /* 77 */
int is_sdxl_text_embed_dim(const is_sdxl_text *t);   /* hidden_1 + hidden_2 (768+1280 for SDXL) */
int is_sdxl_text_pooled_dim(const is_sdxl_text *t);  /* projection dim of text_encoder_2 */
int is_sdxl_text_force_zeros(const is_sdxl_text *t); /* model_index.json force_zeros_for_empty_prompt (default true) */
typedef struct { int truncated_1, truncated_2; } is_prompt_info;   /* tokens dropped by truncation per tokenizer */
/* prompt_embeds [seq_len*embed_dim], pooled [pooled_dim]. prompt == NULL means "no prompt" (diffusers None): zeros
 * when force_zeros, else encoded as "". prompt_2 == NULL or "" falls back to prompt, as diffusers does. info may be NULL. */
is_error *is_sdxl_encode_prompt(is_sdxl_text *t, const char *prompt, const char *prompt_2, float *prompt_embeds,
                                float *pooled, is_prompt_info *info);
/* The same from already tokenized ids (seq_len each, e.g. from is_tokenizer_encode_padded). */
is_error *is_sdxl_encode_ids(is_sdxl_text *t, const int32_t *ids_1, const int32_t *ids_2, float *prompt_embeds,
                             float *pooled);

/* ---------------------------------------------------------------- images and image encoder */
/* (section: vision/) */

/* ---------------------------------------------------------------- UNet and IP-Adapter */
/* (section: unet/) */

/* ---------------------------------------------------------------- VAE */
/* (section: vae/) */

/* ---------------------------------------------------------------- RNG and samplers */
/* (section: sample/) */

/* ---------------------------------------------------------------- pipeline */
/* (section: pipeline/) */

/* Write a small random-weight SDXL pipeline (dir/sdxl/) and IP-Adapter (dir/ip-adapter/) in the real
 * file layouts, for smoke tests without downloads. Weights are deterministic in seed. A non-empty dir
 * is refused unless force (files are then overwritten in place). */
is_error *is_make_tiny_model(const char *dir, uint64_t seed, int force);

#ifdef __cplusplus
}
#endif

#endif /* INSTANTSTYLE_H */
