/* instantstyle: InstantStyle (SDXL + IP-Adapter) style-preserving text-to-image in C.
 *
 * One header, one prefix (is_). Objects are opaque *_context-like handles with explicit
 * load/free. Every fallible function returns an is_error* : NULL on success, otherwise an
 * error value whose message names the file, tensor or field at fault. Free it with
 * is_error_free(). Sizes are read from the model files, never assumed.
 *
 * Two parts:
 *   STABLE API: errors, threads, precision, images, sampler names, the pipeline, is_generate and
 *     PNG output. Changed only deliberately: an incompatible change bumps the shared library's
 *     SOVERSION (libinstantstyle.so.0).
 *   COMPONENTS: the networks one by one (tokenizer, text encoders, image encoder, UNet, VAE,
 *     schedulers, torch RNG, tiny-model maker, content subtraction, debug hooks). Unstable: may
 *     change in any release.
 * Every function is marked IS_API: the shared library exports exactly these symbols.
 */
#ifndef INSTANTSTYLE_H
#define INSTANTSTYLE_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define IS_VERSION_STRING "0.1.0"

/* The library is compiled with -fvisibility=hidden: only functions marked IS_API are exported
 * from libinstantstyle.so. Harmless for the static library. Define IS_API yourself to override. */
#ifndef IS_API
#if defined(__GNUC__) || defined(__clang__)
#define IS_API __attribute__((visibility("default")))
#else
#define IS_API
#endif
#endif

/* ================================================================================================
 * STABLE API
 * ================================================================================================ */

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
    IS_E_INTERNAL,
    IS_E_CANCELLED    /* the caller's cancel callback asked to stop (is_generate_params.cancel) */
} is_status;

typedef struct is_error is_error;
/* A message is shorter than IS_ERROR_MAX_BYTES: one that would be longer (quoting hostile input: a
 * tensor name, a path, a JSON key) is cut on a UTF-8 boundary and ends in "...". */
#define IS_ERROR_MAX_BYTES 2048

IS_API const char *is_error_message(const is_error *err); /* "success" for NULL */
IS_API is_status is_error_code(const is_error *err);      /* IS_OK for NULL */
IS_API const char *is_status_name(is_status code);
IS_API void is_error_free(is_error *err);

/* ---------------------------------------------------------------- threads */

/* Number of threads used by kernels (OpenMP). n <= 0 selects all cores. */
IS_API void is_set_threads(int n);
IS_API int is_get_threads(void);

/* ---------------------------------------------------------------- precision */

/* The arithmetic of the matrix products, convolutions and attention products.
 * F32: the exact mode, the numbers of the diffusers / PyTorch f32 references.
 * BF16: operands rounded to bfloat16, products accumulated in f32, through oneDNN (Intel AMX or
 *   AVX512-BF16 kernels, chosen at run time); norms, softmax, activations and the scheduler stay f32.
 *   Weights are converted and reordered once when the precision is set (same memory as an F16 file).
 *   Accuracy: docs/PRECISION.md. Without bf16 hardware, BF16 runs as F32 (and the log says so).
 * AUTO: BF16 where it is faster on this CPU (AMX; AVX512-BF16 when a short measurement shows bf16
 *   products beating f32 ones), F32 otherwise. */
typedef enum { IS_PRECISION_AUTO = 0, IS_PRECISION_F32, IS_PRECISION_BF16 } is_precision;
IS_API const char *is_precision_name(is_precision p);              /* "auto", "f32", "bf16" */
IS_API int is_precision_parse(const char *text, is_precision *out); /* 0 on success, -1 for an unknown name */
/* What `want` runs as on this CPU: F32 or BF16, never AUTO. why (may be NULL) receives a one-line
 * reason naming the CPU's instruction set (and the measurement, for AUTO on AVX512-BF16 without AMX). */
IS_API is_precision is_precision_resolve(is_precision want, char *why, size_t why_cap);

/* ---------------------------------------------------------------- images */

/* An 8-bit RGB image, interleaved, rows top to bottom: what PIL's Image.convert("RGB") gives. */
typedef struct { int width, height; uint8_t *rgb; } is_image;
/* PNG or JPEG, detected by content. Errors name the file and the problem (unreadable, truncated, unsupported). */
IS_API is_error *is_image_load(const char *path, is_image *out);
/* The same from a PNG or JPEG file's bytes in memory (e.g. a base64 upload); `what` names them in messages. */
IS_API is_error *is_image_decode(const uint8_t *data, size_t size, const char *what, is_image *out);
IS_API void is_image_free(is_image *img);
/* Decompression-bomb guard, as Pillow's (docs/LIMITS.md): is_image_load (and is_generate's style image)
 * refuses, from the header and before decoding anything, an image of more than is_get_max_image_pixels()
 * pixels (width x height). The default is Pillow's DecompressionBombError threshold, 2 x
 * PIL.Image.MAX_IMAGE_PIXELS. 0, or anything above 268435456 (2^28), means 268435456: that hard
 * ceiling (and 32768 per side) holds whatever is set.
 * Progressive JPEGs also get at most 3 bytes per allowed pixel for libjpeg's coefficient buffers
 * (512 MiB by default). Process-wide and thread-safe; applies to the loads that start afterwards. */
#define IS_MAX_IMAGE_PIXELS_DEFAULT 178956970u
IS_API void is_set_max_image_pixels(uint64_t n);
IS_API uint64_t is_get_max_image_pixels(void);

/* Canny edges exactly as OpenCV 4.6's cv2.Canny(cv2.imread(file), low, high) (aperture 3, L1 gradient)
 * computes them on the file's decoded pixels: per pixel the colour channel with the largest |dx|+|dy|
 * (ties: B, then G, then R), non-maximum suppression, 8-connected hysteresis. low > high are swapped;
 * both are floored. edges: width*height bytes, 255 on an edge, 0 elsewhere. InstantStyle's control
 * images use low 50, high 200. */
IS_API is_error *is_canny(const is_image *rgb, double low, double high, uint8_t *edges);

/* ---------------------------------------------------------------- sampler names */

/* The samplers is_generate and is_scheduler_load know (diffusers 0.30.3 schedulers). */
typedef enum {
    IS_SAMPLER_FROM_CONFIG = 0,
    IS_SAMPLER_EULER,
    IS_SAMPLER_EULER_A,
    IS_SAMPLER_DDIM,
    IS_SAMPLER_DPMPP_2M,
    IS_SAMPLER_LCM, /* LCMScheduler (LCM-LoRA) */
    IS_SAMPLER_TCD  /* TCDScheduler (TCD-LoRA, Hyper-SD); gamma = eta */
} is_sampler;
/* One name table for every caller: "from_config", "euler", "euler_a", "ddim", "dpmpp_2m", "lcm", "tcd"
 * ("?" for a value outside the enum). parse: 0 on success, -1 for an unknown name (*out untouched; out may be NULL). */
IS_API const char *is_sampler_name(is_sampler s);
IS_API int is_sampler_parse(const char *text, is_sampler *out);

/* ---------------------------------------------------------------- pipeline */

/* The whole InstantStyle generation: prompt (+ style image) -> image, as diffusers'
 * StableDiffusionXLPipeline with an IP-Adapter computes it for the same seed. */
typedef struct is_pipeline is_pipeline;

/* What a pipeline keeps in memory between generations.
 * KEEP: every network stays loaded (and packed, in bf16) after its first use: the second generation
 *   loads nothing. Needs about the model's weights in memory (SDXL + ViT-bigG: about 10 GB).
 * LOW: each stage opens its network and releases it when done (text encoders, image encoder, UNet,
 *   VAE): the least memory, every generation pays the loading.
 * AUTO: KEEP when the weights fit in half of this machine's physical memory, LOW otherwise. */
typedef enum { IS_MEMORY_AUTO = 0, IS_MEMORY_KEEP, IS_MEMORY_LOW } is_memory_mode;
IS_API const char *is_memory_mode_name(is_memory_mode m);              /* "auto", "keep", "low" */
IS_API int is_memory_mode_parse(const char *text, is_memory_mode *out); /* 0 on success, -1 for an unknown name */

typedef struct {
    const char *model_dir;         /* SDXL diffusers folder (model_index.json, unet/, vae/, ...) */
    const char *ip_adapter;        /* h94-layout IP-Adapter .safetensors, or NULL for plain SDXL */
    const char *image_encoder_dir; /* NULL: the image_encoder/ folder beside the adapter file */
    const char *controlnet;        /* diffusers ControlNetModel folder (config.json + weights), or NULL */
    const char *unet_file;         /* a single-file UNet replacing model_dir/unet's weights (its config stays), or NULL */
    is_memory_mode memory;         /* default AUTO */
    int threads;                   /* compute threads of this pipeline's generations; 0: all cores */
} is_pipeline_params;
IS_API void is_pipeline_params_init(is_pipeline_params *p);

/* Checks the folders and configs (no network is loaded yet: each is loaded on first use, then kept
 * or released as params->memory says). */
IS_API is_error *is_pipeline_load(const is_pipeline_params *params, is_pipeline **out);
IS_API void is_pipeline_free(is_pipeline *p);
IS_API is_memory_mode is_pipeline_memory_mode(const is_pipeline *p); /* KEEP or LOW (AUTO resolved at load) */
/* Weights of the networks the pipeline keeps loaded now, as the size of their weight files (about what
 * they occupy: bf16 packs them to the size of an F16 file, f32 runs from the files' mapped pages);
 * 0 in LOW mode between generations. */
IS_API size_t is_pipeline_resident_bytes(const is_pipeline *p);

/* A LoRA file and its weight (diffusers' set_adapters adapter weight; the file formats and how they are
 * merged: the LoRA section of the components below). */
#define IS_MAX_LORAS 16
typedef struct {
    const char *path;  /* a .safetensors LoRA file */
    float weight;      /* set_adapters' adapter weight (x cross_attention_kwargs' scale, if any) */
} is_lora;

typedef void (*is_progress_fn)(void *user, int step, int total, double seconds);
typedef void (*is_log_fn)(void *user, const char *message);
/* A live preview after denoising step `step` of `total`: the sampler's current x0 prediction (the image it is
 * heading for) at 1/8 of the output size, mapped from SDXL's 4 latent channels to RGB by fixed factors (A1111's
 * "Approx cheap"), no VAE. rgb is valid during the call only. */
typedef void (*is_preview_fn)(void *user, int step, int total, const is_image *rgb);
/* Return non-zero to stop the generation: checked before every stage and every denoising step. Any value
 * but IS_CANCEL_KEEP_PARTIAL cancels (IS_E_CANCELLED). IS_CANCEL_KEEP_PARTIAL, once a denoising step has run,
 * stops as A1111's interrupt does: the remaining steps are skipped and the sampler's latest x0 prediction is
 * decoded and returned (is_image_result.steps_done tells how many steps ran); before the first step it
 * cancels. */
typedef int (*is_cancel_fn)(void *user);
#define IS_CANCEL_KEEP_PARTIAL 2

typedef struct {
    const char *prompt;            /* required */
    const char *prompt_2;          /* NULL/"": same as prompt (diffusers) */
    const char *negative_prompt;   /* NULL: no negative prompt (zeros when force_zeros_for_empty_prompt) */
    const char *negative_prompt_2;
    int width, height;             /* 0: the model's default size; multiples of 8 */
    int steps;                     /* >= 1 */
    float cfg;                     /* classifier-free guidance scale; <= 1 disables the negative branch */
    float guidance_rescale;        /* 0 = off */
    is_sampler sampler;            /* IS_SAMPLER_FROM_CONFIG: the model folder's scheduler decides */
    int karras;                    /* -1: as configured, 0/1: override */
    const char *timestep_spacing;  /* NULL: as configured; "leading", "trailing", "linspace" */
    const char *prediction_type;   /* NULL: as configured; "epsilon", "v_prediction", "sample" */
    float eta;                     /* DDIM eta; TCD gamma (0..1) */
    uint64_t seed;
    const char *style_image;       /* PNG/JPEG path, or NULL (then style_rgb, or no IP-Adapter conditioning) */
    const is_image *style_rgb;     /* the style image in memory (used when style_image is NULL; not copied,
                                      must stay valid during is_generate) */
    float ip_scale;                /* multiplies every block value */
    const char *style_blocks;      /* "style", "style+layout", "all", diffusers dict, ComfyUI or short form */
    const char *content_prompt;    /* NULL: no content subtraction */
    float content_scale;
    double ip_start, ip_end;       /* fraction of the steps the IP-Adapter acts in, default 0 and 1 (sd-webui-controlnet's
                                      guidance_start / guidance_end of an IP-Adapter unit); outside, no image tokens */
    int original_width, original_height;  /* SDXL size conditioning; 0: the output size */
    int crop_top, crop_left;
    int target_width, target_height;      /* 0: the output size */
    int vae_tiling;                /* -1 auto, 0 off, 1 on (decode, and encode of init / masked images) */
    /* Image-based stylization (docs/IMAGE_TO_IMAGE.md). Each image is a file path or, when the path is
     * NULL, pixels in memory (not copied; valid during is_generate).
     * img2img: an init image, partly noised (strength) and denoised; its size (rounded down to a multiple
     *   of 8, LANCZOS) is the output size unless width/height are given.
     * inpainting: init image + mask (white = repaint, black = keep; grey binarised at 128), with a
     *   9-channel inpainting UNet or a plain one (latents re-blended after every step), as diffusers. */
    const char *init_image;
    const is_image *init_rgb;
    double strength;               /* (0, 1]; < 0 (default): diffusers' default, 0.3 img2img, 0.9999 inpainting.
                                      double, as Python's: int(steps * strength) decides how many steps run */
    const char *mask_image;
    const is_image *mask_rgb;
    /* ControlNet (the pipeline's is_pipeline_params.controlnet): a control image ([0,1] RGB, resized to
     * the output size with LANCZOS), or with control_canny a photo whose Canny edges are the control image. */
    const char *control_image;
    const is_image *control_rgb;
    int control_canny;             /* 1: the control image is a photo: is_canny(canny_low, canny_high) first */
    double canny_low, canny_high;  /* default 50, 200 (InstantStyle's) */
    float control_scale;           /* controlnet_conditioning_scale, default 1 */
    double control_start, control_end; /* fraction of the steps the ControlNet acts in, default 0 and 1 */
    int guess_mode;                /* diffusers guess_mode: ControlNet on the conditional half only, residual k scaled by logspace(-1, 0) */
    /* LoRAs merged into the UNet and both text encoders for this generation (a pipeline that keeps its
     * networks re-merges only when the list changes). At most IS_MAX_LORAS. */
    const is_lora *loras;
    int n_loras;
    const char *dump_tensors;      /* write named intermediates to this safetensors file */
    is_precision precision;        /* IS_PRECISION_AUTO (default): bf16 where this CPU runs it faster */
    is_progress_fn progress;       /* called after each denoising step (may be NULL) */
    is_log_fn log;                 /* one line per stage with its time (may be NULL) */
    is_cancel_fn cancel;           /* may be NULL; see is_cancel_fn */
    is_preview_fn preview;         /* may be NULL; see is_preview_fn (after every step, before progress) */
    void *user;                    /* passed to progress, log and cancel */
} is_generate_params;

/* InstantStyle's defaults: 30 steps, cfg 5, style blocks "style", ip_scale 1, content_scale 0.5,
 * seed 0, size from the model. */
IS_API void is_generate_params_init(is_generate_params *p);
/* Few-step presets (docs/FEW_STEP.md): the steps, sampler, timestep spacing, prediction type, CFG and eta a
 * distilled SDXL family is published with ("lightning-4step", "lcm-4step", "tcd-4step", "hyper-sd-8step",
 * ...; the model itself comes from --lora or the model folder). Sets only those fields. */
IS_API is_error *is_generate_params_preset(is_generate_params *p, const char *name);
IS_API int is_preset_count(void);
IS_API const char *is_preset_name(int i); /* NULL outside 0..count-1 */

typedef struct {
    int width, height;
    float *image;  /* [3, height, width] in 0..1 */
    uint8_t *rgb;  /* [height, width, 3] 8-bit, as diffusers' PIL output */
    is_precision precision; /* what ran: IS_PRECISION_F32 or IS_PRECISION_BF16 */
    int steps_done, steps;  /* denoising steps run, of those planned (fewer: stopped with IS_CANCEL_KEEP_PARTIAL) */
} is_image_result;

/* One generation. Thread safety: one generation at a time per pipeline (calls on one pipeline from
 * several threads must be serialised by the caller); different pipelines may generate at the same
 * time from different threads, with the same numbers as one after the other. A cancelled generation
 * returns IS_E_CANCELLED, frees everything it allocated and writes nothing (no dump file). */
IS_API is_error *is_generate(is_pipeline *p, const is_generate_params *params, is_image_result *out);
IS_API void is_image_result_free(is_image_result *r);

/* PNG with an A1111-style "parameters" text chunk describing params; written atomically. */
IS_API is_error *is_save_png(const char *path, const is_image_result *img, const is_pipeline *p,
                             const is_generate_params *params);
/* The A1111 "parameters" text those PNGs carry (malloc'ed, free() it; NULL when out of memory). */
IS_API char *is_parameters_text(const is_image_result *img, const is_pipeline *p, const is_generate_params *params);
/* The same PNG bytes in memory (*data malloc'ed, free() it). */
IS_API is_error *is_encode_png(const is_image_result *img, const is_pipeline *p, const is_generate_params *params,
                               uint8_t **data, size_t *size);

/* ================================================================================================
 * Components: unstable API, may change in any release
 *
 * The networks and steps is_generate is built from, for tools and tests that need them one by
 * one. Names, signatures and structs here may change in any release, including patch releases.
 * ================================================================================================ */

/* ---------------------------------------------------------------- debug hooks */

/* Called by the networks with named f32 intermediates of batch item batch_index (shape excludes
 * the batch axis), so callers can dump or compare them. */
typedef void (*is_tensor_hook)(void *user, const char *name, int batch_index, const float *data, int ndim,
                               const int64_t *shape);

/* ---------------------------------------------------------------- tokenizer */

/* CLIP BPE tokenizer, identical to transformers' slow CLIPTokenizer (without ftfy) as diffusers' SDXL
 * encode_prompt uses it. The tokenizer's special tokens (incl. its pad token) are split out of the raw text. */
typedef struct is_tokenizer is_tokenizer;
#define IS_CLIP_MAX_LENGTH 77
/* dir holds vocab.json, merges.txt and special_tokens_map.json / tokenizer_config.json. */
IS_API is_error *is_tokenizer_load(const char *dir, is_tokenizer **out);
IS_API void is_tokenizer_free(is_tokenizer *tok);
/* Untruncated ids [BOS, content..., EOS]; *ids is malloc'ed (caller frees), *n its length. Every encode
 * refuses a text over 64 KiB (IS_E_ARGUMENT; CLIP reads only its first 77 tokens; docs/LIMITS.md). */
IS_API is_error *is_tokenizer_encode(const is_tokenizer *tok, const char *utf8_text, int32_t **ids, size_t *n);
/* Exactly max_length ids as the text encoder receives them (truncated keeping BOS and EOS, padded with the
 * pad token); *n_truncated (may be NULL) = number of content tokens cut off. */
IS_API is_error *is_tokenizer_encode_padded(const is_tokenizer *tok, const char *utf8_text, int max_length,
                                            int32_t *ids, int *n_truncated);
IS_API int32_t is_tokenizer_bos_id(const is_tokenizer *tok);
IS_API int32_t is_tokenizer_eos_id(const is_tokenizer *tok);
IS_API int32_t is_tokenizer_pad_id(const is_tokenizer *tok);

/* ---------------------------------------------------------------- text encoders */

/* CLIP text transformer (transformers CLIPTextModel / CLIPTextModelWithProjection). */
typedef struct is_clip_text is_clip_text;
/* A transformers CLIPTextModel / CLIPTextModelWithProjection folder: config.json + model.safetensors (or a sharded index). */
IS_API is_error *is_clip_text_load(const char *dir, is_clip_text **out);
IS_API void is_clip_text_free(is_clip_text *m);
IS_API is_error *is_clip_text_set_precision(is_clip_text *m, is_precision p); /* see is_precision */
IS_API int is_clip_text_hidden_size(const is_clip_text *m);
IS_API int is_clip_text_projection_dim(const is_clip_text *m);   /* 0 when the model has no text_projection */
IS_API int is_clip_text_max_positions(const is_clip_text *m);
/* Run on n ids (1 <= n <= max_positions). Each output may be NULL: penultimate [n,hidden] = hidden_states[-2];
 * last_hidden [n,hidden] (after final LayerNorm); pooled [hidden] (final-LN state at the pooled position);
 * text_embeds [proj_dim]. Uses scratch buffers inside m: one forward at a time per model object. */
IS_API is_error *is_clip_text_forward(is_clip_text *m, const int32_t *ids, int n, float *penultimate, float *last_hidden,
                                      float *pooled, float *text_embeds);
/* Position whose final state is pooled: argmax(ids) when config eos_token_id == 2 (legacy CLIP configs),
 * else the first position holding eos_token_id (0 when absent), as transformers does. */
IS_API int is_clip_text_pooled_position(const is_clip_text *m, const int32_t *ids, int n);

/* SDXL prompt encoding (diffusers StableDiffusionXLPipeline.encode_prompt, one prompt, no LoRA / clip_skip). */
typedef struct is_sdxl_text is_sdxl_text;
/* SDXL pipeline folder: model_index.json, tokenizer/, tokenizer_2/, text_encoder/, text_encoder_2/. */
IS_API is_error *is_sdxl_text_load(const char *model_dir, is_sdxl_text **out);
IS_API void is_sdxl_text_free(is_sdxl_text *t);
IS_API is_error *is_sdxl_text_set_precision(is_sdxl_text *t, is_precision p); /* both encoders */
IS_API int is_sdxl_text_seq_len(const is_sdxl_text *t);     /* 77 */
IS_API int is_sdxl_text_embed_dim(const is_sdxl_text *t);   /* hidden_1 + hidden_2 (768+1280 for SDXL) */
IS_API int is_sdxl_text_pooled_dim(const is_sdxl_text *t);  /* projection dim of text_encoder_2 */
IS_API int is_sdxl_text_force_zeros(const is_sdxl_text *t); /* model_index.json force_zeros_for_empty_prompt (default true) */
typedef struct { int truncated_1, truncated_2; } is_prompt_info;   /* tokens dropped by truncation per tokenizer */
/* prompt_embeds [seq_len*embed_dim], pooled [pooled_dim]. prompt == NULL means "no prompt" (diffusers None): zeros
 * when force_zeros, else encoded as "". prompt_2 == NULL or "" falls back to prompt, as diffusers does. info may be NULL. */
IS_API is_error *is_sdxl_encode_prompt(is_sdxl_text *t, const char *prompt, const char *prompt_2, float *prompt_embeds,
                                       float *pooled, is_prompt_info *info);
/* The ids is_sdxl_encode_prompt would encode (seq_len each). *zeros (may be NULL) is set to 1, ids untouched, when
 * prompt == NULL and force_zeros (the embeddings are then zeros). */
IS_API is_error *is_sdxl_tokenize(is_sdxl_text *t, const char *prompt, const char *prompt_2, int32_t *ids_1, int32_t *ids_2,
                                  int *zeros, is_prompt_info *info);
/* The same from already tokenized ids (seq_len each, e.g. from is_tokenizer_encode_padded). */
IS_API is_error *is_sdxl_encode_ids(is_sdxl_text *t, const int32_t *ids_1, const int32_t *ids_2, float *prompt_embeds,
                                    float *pooled);

/* ---------------------------------------------------------------- image encoder */
/* (is_image, is_image_load and is_image_free are in the stable part above.) */

typedef struct is_image_encoder is_image_encoder;
/* An IP-Adapter image_encoder/ folder: config.json (CLIPVisionModelWithProjection), model.safetensors, preprocessor_config.json (optional: CLIP defaults). */
IS_API is_error *is_image_encoder_load(const char *dir, is_image_encoder **out);
IS_API void is_image_encoder_free(is_image_encoder *enc);
/* See is_precision. In BF16 the first forward after it rounds each weight from the file as its product runs
 * (no packed copy: an image encoder often runs once); the second forward packs them first. Same numbers. */
IS_API is_error *is_image_encoder_set_precision(is_image_encoder *enc, is_precision p);
IS_API int is_image_encoder_image_size(const is_image_encoder *enc);      /* crop size, 224 */
IS_API int is_image_encoder_projection_dim(const is_image_encoder *enc);
IS_API int is_image_encoder_hidden_size(const is_image_encoder *enc);
IS_API int is_image_encoder_num_tokens(const is_image_encoder *enc);      /* patches + 1 */
/* CLIPImageProcessor: pixel_values [3, S, S] (S = image_size). */
IS_API is_error *is_image_preprocess(const is_image_encoder *enc, const is_image *img, float *pixel_values);
/* image_embeds [projection_dim]; penultimate (may be NULL) [num_tokens, hidden] = hidden_states[-2]. */
IS_API is_error *is_image_encoder_forward(is_image_encoder *enc, const float *pixel_values, float *image_embeds, float *penultimate);

/* ---------------------------------------------------------------- UNet and IP-Adapter */
/* SDXL-family UNet2DConditionModel (diffusers layout) with IP-Adapter decoupled cross-attention.
 * Weights stay in the safetensors mmap in their stored dtype (F16/BF16/F32). */
typedef struct is_unet is_unet;
IS_API is_error *is_unet_load(const char *unet_dir, is_unet **out);
/* A single-file UNet (e.g. SDXL-Lightning's sdxl_lightning_4step_unet.safetensors, diffusers names) with the
 * config.json of config_dir (the base model's unet/ folder). */
IS_API is_error *is_unet_load_file(const char *config_dir, const char *weights_file, is_unet **out);   /* config.json + diffusion_pytorch_model.safetensors (or sharded index) */
IS_API void is_unet_free(is_unet *u);
/* Free the activations of the last forward (they are regrown by the next one); the weights stay. */
IS_API void is_unet_release_workspace(is_unet *u);
IS_API int is_unet_in_channels(const is_unet *u);
IS_API int is_unet_out_channels(const is_unet *u);
IS_API int is_unet_cross_attention_dim(const is_unet *u);
IS_API int is_unet_pooled_dim(const is_unet *u);        /* text_embeds size expected by add_embedding */
IS_API int is_unet_time_ids_count(const is_unet *u);    /* 6 */
/* IP-Adapter (h94 layout .safetensors). image_embed_dim_expected: the image encoder's projection dim to check against (0 = don't check). */
IS_API is_error *is_unet_load_ip_adapter(is_unet *u, const char *path, int image_embed_dim_expected);
IS_API int is_unet_has_ip_adapter(const is_unet *u);
IS_API int is_unet_ip_embed_dim(const is_unet *u);      /* ImageProjModel input size */
IS_API int is_unet_ip_num_tokens(const is_unet *u);
/* ImageProjModel: image_embeds [batch, embed_dim] -> tokens [batch, num_tokens, cross_attention_dim]. */
IS_API is_error *is_unet_ip_tokens(is_unet *u, const float *image_embeds, int batch, float *tokens);
/* Block targeting: spec = "style" | "style+layout" | "all" | diffusers JSON dict or bare number | ComfyUI "6:1,..." | short form;
 * each resulting per-layer value is multiplied by scale. Errors list the valid names. NULL spec = "all".
 * Also accepted: "layout", "none". Syntax and examples: docs/STYLE_BLOCKS.md. */
IS_API is_error *is_unet_set_ip_scale(is_unet *u, const char *spec, float scale);
IS_API int is_unet_num_cross_attn(const is_unet *u);                      /* attn2 processors, diffusers order */
IS_API const char *is_unet_cross_attn_name(const is_unet *u, int i);      /* "down_blocks.2.attentions.1.transformer_blocks.0.attn2.processor" */
IS_API float is_unet_cross_attn_scale(const is_unet *u, int i);
/* Attention module ("down_blocks.2.attentions.1") holding cross-attention layer i, and that module's
 * ComfyUI layer_weights index (forward order down, mid, up: 0..10 on SDXL). */
IS_API const char *is_unet_cross_attn_module(const is_unet *u, int i);
IS_API int is_unet_cross_attn_comfy_index(const is_unet *u, int i);
/* is_unet_input.hook receives "t_emb", "time_emb", "time_ids_emb", "aug_emb", "conv_in", "down_blocks.0", ...,
 * "mid_block", "up_blocks.N", "noise_pred" of each batch item. */
typedef struct {
    int batch, height, width;            /* latent size */
    const float *sample;                 /* [batch, in_channels, height, width] */
    float timestep;
    const float *encoder_hidden_states;  /* [batch, seq_len, cross_attention_dim] */
    int seq_len;
    const float *text_embeds;            /* [batch, pooled_dim] */
    const float *time_ids;               /* [batch, 6] */
    const float *ip_tokens;              /* [batch, ip_num_tokens, cross_attention_dim] or NULL (no IP branch) */
    /* ControlNet residuals (is_controlnet_forward), or NULL: added to the skip connections after the down
     * path (residual k to skip k, the layout is_controlnet_residual_shape gives, each [batch, C, H, W], one
     * after the other) and to the mid block's output. */
    const float *down_residuals;
    const float *mid_residual;           /* [batch, C_mid, H_mid, W_mid] */
    is_tensor_hook hook; void *hook_user;  /* may be NULL */
} is_unet_input;
IS_API void is_unet_input_init(is_unet_input *in); /* all zero: no IP branch, no hook */
/* Precision of the UNet and its adapter (see is_precision). BF16 packs every UNet weight now; an adapter
 * loaded before or after is packed too (each layer's to_k_ip/to_v_ip only while its IP scale is non-zero,
 * so is_unet_set_ip_scale may pack or release them). F32 releases the packed weights. The first forward
 * at a new size creates the bf16 primitives for it (later ones reuse them). */
IS_API is_error *is_unet_set_precision(is_unet *u, is_precision p);
IS_API is_precision is_unet_precision(const is_unet *u);
/* One denoiser evaluation. Activation buffers are kept in u and reused while batch/size/seq_len stay the same. */
IS_API is_error *is_unet_forward(is_unet *u, const is_unet_input *in, float *noise_pred /* [batch, out_channels, height, width] */);

/* Number of skip connections of this UNet (the down residuals a ControlNet gives it: 9 for SDXL). */
IS_API int is_unet_num_skips(const is_unet *u);

/* ---------------------------------------------------------------- ControlNet */

/* diffusers ControlNetModel (SDXL): the UNet's down path and mid block with their own weights, a
 * conditioning embedding of the control image, and one 1x1 "zero" convolution per residual. Weights stay
 * in the safetensors mmap (or are packed for bf16, like the UNet's). */
typedef struct is_controlnet is_controlnet;
IS_API is_error *is_controlnet_load(const char *dir, is_controlnet **out); /* config.json + diffusion_pytorch_model.safetensors */
IS_API void is_controlnet_free(is_controlnet *c);
IS_API is_error *is_controlnet_set_precision(is_controlnet *c, is_precision p);
IS_API is_precision is_controlnet_precision(const is_controlnet *c);
IS_API void is_controlnet_release_workspace(is_controlnet *c);
/* NULL when the ControlNet's residuals fit this UNet (channels, skip count, text and time embedding
 * sizes), else an error naming the first mismatch. */
IS_API is_error *is_controlnet_check_unet(const is_controlnet *c, const is_unet *u);
IS_API int is_controlnet_num_down_residuals(const is_controlnet *c);
/* Channels of the control image is_controlnet_forward reads (config.json's conditioning_channels; 3 for RGB). */
IS_API int is_controlnet_conditioning_channels(const is_controlnet *c);
/* Pixels of the control image per latent (8: is_controlnet_input.cond is [batch, C, 8h, 8w]). */
IS_API int is_controlnet_image_scale(const is_controlnet *c);
/* Shape [C, H, W] of down residual k (0 <= k < num_down_residuals) or, for k == num_down_residuals, of the
 * mid residual, for an h x w latent; returns 0, or -1 for a bad k. */
IS_API int is_controlnet_residual_shape(const is_controlnet *c, int k, int h, int w, int64_t shape[3]);
/* Floats of all down residuals of one batch item together (is_unet_input.down_residuals holds batch times this). */
IS_API int64_t is_controlnet_down_floats(const is_controlnet *c, int h, int w);
typedef struct {
    is_unet_input unet;            /* sample, timestep, text states, text_embeds, time_ids, batch and size
                                      (ip_tokens ignored: the ControlNet has no IP-Adapter branch) */
    const float *cond;             /* [batch, conditioning_channels, 8h, 8w] control image in [0, 1] */
    float conditioning_scale;
    int guess_mode;                /* residual k of N+1 scaled by logspace(-1, 0, N+1)[k] as well */
} is_controlnet_input;
IS_API void is_controlnet_input_init(is_controlnet_input *in); /* zeros, conditioning_scale 1 */
/* down: the residuals one after the other, residual k as [batch, C_k, H_k, W_k] (the layout of
 * is_unet_input.down_residuals), already multiplied by the scale; mid: [batch, C, H, W]. Hook names: "time_emb", "aug_emb", "conv_in",
 * "cond_embedding", "down_blocks.<i>", "mid_block". */
IS_API is_error *is_controlnet_forward(is_controlnet *c, const is_controlnet_input *in, float *down, float *mid);

/* ---------------------------------------------------------------- LoRA */

/* LoRA files as diffusers 0.30.3 load_lora_weights + set_adapters reads them (the naming rules:
 * src/lora/lora_names.c). Two layouts:
 *   kohya / sd-scripts: lora_unet_<SGM or diffusers block names with _>, lora_te1_ (lora_te_), lora_te2_,
 *     each "<name>.lora_down.weight", "<name>.lora_up.weight" and an optional scalar "<name>.alpha";
 *   diffusers / PEFT: "unet.<module>.lora_A.weight" / ".lora_B.weight", "text_encoder.", "text_encoder_2."
 *     (no alpha: alpha = rank), and the older diffusers names (".lora.down.weight",
 *     ".lora_linear_layer.down.weight", ".processor.to_q_lora.down.weight").
 * Linear and Conv2d (LoCon) modules are merged into the weights once: W' = W + sum over the LoRAs of
 * weight * alpha / rank * up @ down (convolutions per kernel position), as diffusers' fuse_lora, which
 * equals the unfused adapters up to float rounding. Only the patched weights are copied (to float32);
 * every other weight stays in the file's mmap. A tensor the engine cannot place (unknown name, a module
 * the network does not have, a shape that does not fit it) is an error naming the tensor: diffusers
 * raises for the first kind too and drops the second with a warning, which would silently change
 * what the LoRA does. LoHa / LoKr / DoRA tensors are refused. */
/* (is_lora is in the stable part above, with is_generate_params.) */
typedef enum { IS_LORA_UNET = 0, IS_LORA_TEXT_ENCODER, IS_LORA_TEXT_ENCODER_2 } is_lora_component;
typedef enum { IS_LORA_DOWN = 0, IS_LORA_UP, IS_LORA_ALPHA } is_lora_role; /* lora_A / lora_B / alpha */
#define IS_LORA_MODULE_MAX 256
typedef struct {
    is_lora_component component;
    is_lora_role role;
    char module[IS_LORA_MODULE_MAX]; /* diffusers / transformers module path: "down_blocks.1.attentions.0.proj_in" */
} is_lora_target;
IS_API const char *is_lora_component_name(is_lora_component c); /* "unet", "text_encoder", "text_encoder_2" */
/* Where tensor `name` of a LoRA file goes. unet: the UNet the file is for (its layers_per_block numbers
 * kohya's SGM input_blocks / output_blocks); may be NULL for every other name. Checks the name only: that
 * the module exists in a network is checked when the LoRA is applied. */
IS_API is_error *is_lora_map_name(const char *name, const is_unet *unet, is_lora_target *out);
/* Merge loras[0..n) into the network's weights, replacing any LoRAs merged before (n = 0: none, the
 * file's weights again). Each file's tensors for this network are applied; its tensors for other networks
 * are checked by name only. A network already packed for bf16 is repacked. On error the network is left
 * without any LoRA. */
IS_API is_error *is_unet_set_loras(is_unet *u, const is_lora *loras, int n);
IS_API is_error *is_clip_text_set_loras(is_clip_text *m, is_lora_component which, const is_lora *loras, int n);
IS_API is_error *is_sdxl_text_set_loras(is_sdxl_text *t, const is_lora *loras, int n); /* both encoders */

/* ---------------------------------------------------------------- VAE */


/* diffusers AutoencoderKL (SDXL VAE). Computed in float32 (SDXL's VAE overflows in f16; weights stay
 * in their stored dtype and are converted by the kernels), or with bf16 products (is_vae_set_precision:
 * bf16 has float32's range, so it does not overflow). An is_vae keeps its
 * activation workspace between calls (sized for the largest image seen), so one is_vae must not
 * be used by two threads at once. */
typedef struct is_vae is_vae;
IS_API is_error *is_vae_load(const char *vae_dir, is_vae **out); /* config.json + diffusion_pytorch_model.safetensors */
IS_API void is_vae_free(is_vae *v);
IS_API is_error *is_vae_set_precision(is_vae *v, is_precision p); /* see is_precision */
IS_API is_precision is_vae_precision(const is_vae *v);
IS_API float is_vae_scaling_factor(const is_vae *v);
IS_API int is_vae_latent_channels(const is_vae *v);
IS_API int is_vae_scale(const is_vae *v); /* pixels per latent: 2^(len(block_out_channels)-1), 8 for SDXL */

/* tiling: -1 automatic, 0 never, 1 always (diffusers' enable_tiling algorithm, for decode and
 * encode: tiles of config sample_size pixels / sample_size/scale latents, overlap factor 0.25,
 * blended in raster order; the result differs from the untiled one, as in diffusers). As in
 * diffusers, tiling only happens when the input is larger than one tile: the latents (decode), the
 * image's pixels (encode). A tiled call holds one tile's activations (plus the tiles' outputs).
 * Automatic: tiled exactly when tiling would apply AND the untiled call's activation workspace
 * (is_vae_decode_workspace_bytes / is_vae_encode_workspace_bytes) exceeds IS_VAE_AUTO_TILE_BYTES
 * (4 GiB). SDXL VAE decode: 1536 bytes per output pixel (the last block's first resnet holds its
 * 256-channel input and 128-channel hidden map), so 1024x1024 (1.5 GiB) decodes untiled and square
 * images from about 1680x1680 up (1792x1792: 4.6 GiB) are tiled. SDXL VAE encode: about 1024 bytes
 * per input pixel (the first downsampler holds its 128-channel input and its padded copy), so
 * 1024x1024 (1.0 GiB) and 2040x2040 (3.97 GiB) encode untiled, 2048x2048 (4.002 GiB) is tiled.
 * hook (may be NULL) receives "z", "post_quant_conv", "decoder.conv_in", "decoder.mid_block",
 * "decoder.up_blocks.<i>" and "image" (untiled decodes; tiled ones report only "z" and "image"),
 * and for encodes "encoder.conv_in", "encoder.down_blocks.<i>", "encoder.mid_block",
 * "encoder.conv_out", "moments" (tiled encodes report only "moments": the blended ones, unclamped). */
#define IS_VAE_AUTO_TILE_BYTES ((int64_t)4 << 30)
typedef struct {
    int tiling;
    is_tensor_hook hook;
    void *hook_user;
} is_vae_options;
IS_API void is_vae_options_init(is_vae_options *o); /* automatic tiling, no hook */
/* latents: pipeline latents [C, h, w] (NOT yet divided by scaling_factor: this function does
 * latents/scaling_factor, or latents*latents_std/scaling_factor + latents_mean when the config has
 * latents_mean/std, as diffusers' SDXL pipeline does). image: [out_channels, 8h, 8w], unclamped
 * model output (about -1..1). opt may be NULL (automatic tiling, no hook). */
IS_API is_error *is_vae_decode(is_vae *v, const float *latents, int h, int w, const is_vae_options *opt, float *image);
/* image [3,H,W] in [-1,1] (H, W positive multiples of is_vae_scale) -> latent distribution mean and
 * logvar (clamped to [-30, 20], after any tiling's blending) [C, H/8, W/8]; either may be NULL.
 * Automatic tiling (see is_vae_options). */
IS_API is_error *is_vae_encode(is_vae *v, const float *image, int H, int W, float *mean, float *logvar);
/* Same with a tiling option and a hook (opt may be NULL: automatic tiling, no hook). */
IS_API is_error *is_vae_encode_ex(is_vae *v, const float *image, int H, int W, const is_vae_options *opt, float *mean,
                                  float *logvar);
/* Bytes of activation workspace an untiled decode of h x w latents needs, and whether
 * is_vae_decode will tile with the given tiling option. */
IS_API int64_t is_vae_decode_workspace_bytes(const is_vae *v, int h, int w);
IS_API int is_vae_decode_will_tile(const is_vae *v, int h, int w, int tiling);
/* The same for an encode of an H x W image (0 bytes when the size is invalid). */
IS_API int64_t is_vae_encode_workspace_bytes(const is_vae *v, int H, int W);
IS_API int is_vae_encode_will_tile(const is_vae *v, int H, int W, int tiling);
/* Free the activation workspace now (it is re-allocated by the next decode/encode). */
IS_API void is_vae_release_workspace(is_vae *v);
/* (x/2+0.5).clamp(0,1) in place, and to uint8 HWC with numpy round-half-even of x*255. */
IS_API void is_image_postprocess(float *image, int64_t n);
IS_API void is_image_to_u8_hwc(const float *image01, int H, int W, uint8_t *rgb);

/* ---------------------------------------------------------------- RNG and samplers */

/* PyTorch 1.13.1 CPU generator, bit-exact: torch.Generator("cpu").manual_seed(seed) followed by
 * torch.randn / torch.rand(..., generator=g) in float32 (x86-64 AVX2 kernel). A plain struct: put it on
 * the stack, seed it, draw. The cached normal (next_normal) survives between calls like torch's. */
typedef struct {
    uint32_t mt[624];     /* mt19937 state */
    int mti;              /* next output index into mt (624 = regenerate first) */
    uint64_t seed;        /* the full 64-bit seed given (mt19937 uses its low 32 bits) */
    double next_normal;   /* second Box-Muller value of the < 16-element path */
    int has_next_normal;
} is_torch_rng;
/* seed = Python int mod 2**64 (negative seeds: two's complement). */
IS_API void is_torch_rng_seed(is_torch_rng *g, uint64_t seed);
/* Same numbers as torch.randn(n elements, generator=g) on CPU in float32 (shape only matters through numel). */
IS_API void is_torch_randn(is_torch_rng *g, float *out, int64_t n);
/* Same numbers as torch.rand(n elements, generator=g), float32 in [0, 1). */
IS_API void is_torch_rand(is_torch_rng *g, float *out, int64_t n);

/* diffusers 0.30.3 schedulers (float32 CPU semantics). */
typedef struct is_scheduler is_scheduler;
/* config_path: a scheduler_config.json. kind FROM_CONFIG uses its _class_name (error naming the class if
 * unsupported); another kind is built like diffusers' <Class>.from_config(config) (keys a class does not know
 * are ignored). karras: -1 = as in config, 0/1 override (error if the sampler has no Karras option and 1 is
 * requested). timestep_spacing: NULL = from config ("leading", "trailing" or "linspace"). */
IS_API is_error *is_scheduler_load(const char *config_path, is_sampler kind, int karras, const char *timestep_spacing, is_scheduler **out);
IS_API void is_scheduler_free(is_scheduler *s);
IS_API const char *is_scheduler_name(const is_scheduler *s);        /* "euler", "euler_karras", "euler_a", "ddim", "dpmpp_2m", "dpmpp_2m_karras", "lcm", "tcd" */
/* Computes timesteps and sigmas and resets the step state (multistep history). 1 <= steps <= num_train_timesteps;
 * LCM / TCD: steps <= original_inference_steps (50), their schedule is a subset of that one (timestep_spacing
 * and steps_offset do not apply to them, as in diffusers).
 * The number of timesteps can exceed steps (diffusers' trailing quirk, e.g. 61 -> 62): use is_scheduler_num_steps. */
IS_API is_error *is_scheduler_set_timesteps(is_scheduler *s, int steps);
IS_API int is_scheduler_num_steps(const is_scheduler *s);
IS_API float is_scheduler_timestep(const is_scheduler *s, int i);   /* float32 value as diffusers' timesteps[i] */
IS_API float is_scheduler_init_noise_sigma(const is_scheduler *s);
/* out = scale_model_input(x, timesteps[i]) (out may == x) */
IS_API void is_scheduler_scale_model_input(const is_scheduler *s, int i, const float *x, float *out, int64_t n);
/* Preallocate the per-step buffers for samples of n floats (ancestral noise, DPM++ history), so that
 * is_scheduler_step never allocates. Optional: otherwise the first step allocates them. Buffers survive
 * set_timesteps; a step with a larger n than reserved reallocates. */
IS_API is_error *is_scheduler_reserve(is_scheduler *s, int64_t n);
/* sample <- step(model_output, timesteps[i], sample); ancestral samplers (Euler a, DDIM with eta > 0) draw
 * from g, Euler draws (and ignores) one noise tensor per step like diffusers, LCM draws on every step but the
 * last and TCD on every step but the last when eta > 0; g may be NULL only for samplers that do not draw
 * (g is required for LCM). Steps must be called in order i = 0..N-1 (multistep state is kept inside s). */
IS_API is_error *is_scheduler_step(is_scheduler *s, int i, const float *model_output, float *sample, int64_t n, is_torch_rng *g);
/* img2img / inpainting start part-way (diffusers set_begin_index): the first step taken is `begin`
 * (0 <= begin < num_steps), before any step. */
IS_API is_error *is_scheduler_set_begin_index(is_scheduler *s, int begin);
IS_API int is_scheduler_begin_index(const is_scheduler *s);
/* out = scheduler.add_noise(original, noise, timesteps[i]) (out may alias either input): Euler / Euler a
 * original + sigma_i * noise; DPM++ alpha_t * original + sigma_t * noise (alpha_t = 1/sqrt(sigma_i^2 + 1),
 * sigma_t = sigma_i * alpha_t); DDIM, LCM, TCD sqrt(alphas_cumprod[t]) * original + sqrt(1 - alphas_cumprod[t]) * noise. */
IS_API is_error *is_scheduler_add_noise(const is_scheduler *s, int i, const float *original, const float *noise, float *out,
                                        int64_t n);
/* DDIM eta (default 0; >= 0), or TCD's gamma (default 0, the SDXL pipeline's eta; 0..1, the TCD authors use
 * 0.3). Error for other samplers unless eta == 0. */
IS_API is_error *is_scheduler_set_eta(is_scheduler *s, float eta);
/* prediction_type, overriding the config's: "epsilon", "v_prediction" or "sample" (x0, e.g. SDXL-Lightning
 * 1-step with Euler). "sample" is supported by Euler, LCM and TCD; an error names the value and the sampler
 * that does not support it. */
IS_API is_error *is_scheduler_set_prediction_type(is_scheduler *s, const char *type);
/* diffusers rescale_noise_cfg: noise_cfg <- guidance_rescale-mixed version (std over all elements of one batch item). */
IS_API void is_rescale_noise_cfg(float *noise_cfg, const float *noise_pred_text, int64_t n, float guidance_rescale);

/* ---------------------------------------------------------------- tiny model and content subtraction */

/* Write a small random-weight SDXL pipeline (dir/sdxl/), IP-Adapter (dir/ip-adapter/) and ControlNet (dir/controlnet/) in the real
 * file layouts, for smoke tests without downloads. Weights are deterministic in seed. A non-empty dir
 * is refused unless force (files are then overwritten in place). */
IS_API is_error *is_make_tiny_model(const char *dir, uint64_t seed, int force);

/* InstantStyle content subtraction: image_embeds -= scale * content_embeds (the content prompt's
 * pooled, projected text_encoder_2 embedding). The two sizes must agree. */
IS_API is_error *is_content_subtract(float *image_embeds, int image_dim, const float *content_embeds, int content_dim,
                                     float scale);

#ifdef __cplusplus
}
#endif

#endif /* INSTANTSTYLE_H */
