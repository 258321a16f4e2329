/* CLIP text transformer (transformers CLIPTextModel / CLIPTextModelWithProjection).
 * Public API in instantstyle.h (section text/clip_text); this header adds the
 * accessors the prompt layer needs. */
#ifndef IS_TEXT_CLIP_TEXT_H
#define IS_TEXT_CLIP_TEXT_H

#include "core/error.h"
#include "core/safetensors.h"

/* Folder the model was loaded from (for error messages). */
const char *is_clip_text_dir(const is_clip_text *m);
int is_clip_text_num_layers(const is_clip_text *m);
int is_clip_text_vocab_size(const is_clip_text *m);
/* The weights (for LoRA merging: src/lora), their bf16 packs (NULL in f32) and the LoRAs they carry. */
is_st *is_clip_text_weights(is_clip_text *m);
is_precision is_clip_text_precision(const is_clip_text *m);
struct is_dnn *clip_text_dnn(is_clip_text *m);
struct lora_state **clip_text_lora_slot(is_clip_text *m);

#endif
