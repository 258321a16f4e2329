/* PNG output with text chunks (A1111's "parameters"): in memory, or written atomically. */
#ifndef IS_PIPELINE_PNG_WRITE_H
#define IS_PIPELINE_PNG_WRITE_H

#include <stddef.h>
#include <stdint.h>

#include "core/error.h"

typedef struct {
    const char *key;
    const char *value; /* UTF-8; stored as tEXt when ASCII, else iTXt */
} is_png_text;

/* rgb: 8-bit RGB interleaved, rows top to bottom. *data is malloc'ed (caller frees). */
is_error *is_png_encode_rgb8(const uint8_t *rgb, int width, int height, const is_png_text *texts, int n_texts,
                             uint8_t **data, size_t *size);
#endif
