/* PNG output with text chunks (A1111's "parameters"), written atomically. */
#ifndef IS_PIPELINE_PNG_WRITE_H
#define IS_PIPELINE_PNG_WRITE_H

#include <stdint.h>

#include "core/error.h"

typedef struct {
    const char *key;
    const char *value; /* UTF-8; stored as tEXt when ASCII, else iTXt */
} is_png_text;

/* rgb: 8-bit RGB interleaved, rows top to bottom. */
is_error *is_png_write_rgb8(const char *path, const uint8_t *rgb, int width, int height,
                            const is_png_text *texts, int n_texts);

#endif
