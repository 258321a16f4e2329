/* transformers CLIPVisionModelWithProjection (the IP-Adapter image encoder), float32 activations,
 * weights used in their stored dtype from the safetensors mmap. */
#ifndef IS_VISION_CLIP_VISION_H
#define IS_VISION_CLIP_VISION_H

#include "core/error.h"
#include "vision/clip_preprocess.h"

/* The encoder's CLIPImageProcessor settings (preprocessor_config.json or CLIP defaults). */
const is_clip_preproc *is_image_encoder_preproc(const is_image_encoder *enc);

/* Forward pass with every output the goldens check; any output pointer may be NULL.
 * image_embeds [projection_dim], penultimate and last_hidden [num_tokens, hidden]
 * (last_hidden = encoder output before post_layernorm). With only penultimate asked for, the last
 * layer is skipped. Works in the encoder's own scratch: one forward at a time per encoder. */
is_error *is_clip_vision_forward(is_image_encoder *enc, const float *pixel_values, float *image_embeds,
                                 float *penultimate, float *last_hidden);

/* The encoder's bf16 context (NULL in f32): after is_image_encoder_set_precision to bf16 its first forward streams
 * the products' weights and the next forward (or set_precision call) packs them (is_dnn_apply_precision's
 * stream_first). */
const struct is_dnn *is_clip_vision_dnn(const is_image_encoder *enc);

#endif
