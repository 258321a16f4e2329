/* SDXL prompt encoding: both tokenizers + both CLIP text encoders, with diffusers 0.30.3
 * StableDiffusionXLPipeline.encode_prompt semantics. Public API in instantstyle.h
 * (section text/prompt). */
#ifndef IS_TEXT_SDXL_PROMPT_H
#define IS_TEXT_SDXL_PROMPT_H

#include "core/error.h"

/* The two text encoders inside (borrowed; freed with t). */
is_clip_text *is_sdxl_text_encoder(const is_sdxl_text *t, int which); /* which = 1 or 2 */

#endif
