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

#ifdef __cplusplus
}
#endif

#endif /* INSTANTSTYLE_H */
