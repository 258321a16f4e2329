/* CLIP text transformer (transformers CLIPTextModel / CLIPTextModelWithProjection).
 * Public API in instantstyle.h (section text/clip_text); this header adds the
 * accessors the prompt layer needs. */
#ifndef IS_TEXT_CLIP_TEXT_H
#define IS_TEXT_CLIP_TEXT_H

#include "core/error.h"

/* Folder the model was loaded from (for error messages). */
const char *is_clip_text_dir(const is_clip_text *m);
int is_clip_text_num_layers(const is_clip_text *m);
int is_clip_text_vocab_size(const is_clip_text *m);

#endif
