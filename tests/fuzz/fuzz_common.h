/* Shared helpers of the libFuzzer harnesses (tests/fuzz/README.md): a private temporary folder for the
 * files a harness writes from its input, the golden data folder, input splitting, and the SDXL table of
 * attention modules for block specs. */
#ifndef IS_FUZZ_COMMON_H
#define IS_FUZZ_COMMON_H

#include <stddef.h>
#include <stdint.h>

#include "core/error.h"
#include "instantstyle.h"
#include "core/safetensors.h"
#include "unet/block_scales.h"

/* libFuzzer entry points (declared here so that -Wmissing-prototypes stays quiet). */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

/* Separator of the parts of a multi-file input ("index | shard 1 | shard 2", "model_index | unet
 * config | ..."): a line of its own, listed in every such harness's dictionary. */
#define FZ_SEP "\n#--next-file--#\n"

/* This process's own folder under /dev/shm (or $TMPDIR, /tmp), created on first use and removed
 * with everything in it at exit. */
const char *fz_tmpdir(void);
/* fz_tmpdir()/rel, kept for the life of the process (at most 256 paths in all: call it at initialisation). */
const char *fz_path(const char *rel);
/* The golden folder ($IS_GOLDEN_DIR, else ../shared/golden beside the checkout) joined with rel, like
 * fz_path; exits with a message when it does not exist. */
const char *fz_golden(const char *rel);

/* Write data to path (created or truncated); mkdir -p its folder first. Aborts on I/O errors: those
 * are the harness's problem, not the input's. */
void fz_write(const char *path, const void *data, size_t n);
/* Remove path if it exists (a missing part of a multi-file input is a missing file). */
void fz_remove(const char *path);
/* symlink(target, path), replacing path; mkdir -p its folder first. */
void fz_symlink(const char *target, const char *path);
void fz_mkdirs(const char *dir);

/* Split data at FZ_SEP into at most max parts; returns the number of parts (>= 1). The parts point
 * into data. */
typedef struct {
    const uint8_t *p;
    size_t n;
} fz_part;
int fz_split(const uint8_t *data, size_t size, fz_part *parts, int max);

/* A NUL-terminated malloc'ed copy of data (free it). */
char *fz_cstr(const uint8_t *data, size_t size);

/* Consume an error: its message must be a bounded, NUL-terminated string (read it whole, so ASan sees
 * any overrun) and its code a known status. Frees it. Returns 1 when err was an error. */
int fz_error(is_error *err);

/* The golden tiny SDXL UNet (models/tiny-sdxl/unet), loaded once at initialisation; exits with the
 * error when it does not load. */
is_unet *fz_golden_unet(void);

/* Abort with a message (an invariant of the API did not hold: libFuzzer reports it as a crash). */
void fz_fail(const char *fmt, ...) __attribute__((noreturn, format(printf, 1, 2)));

/* Touch every byte of a buffer (ASan checks each read); returns a checksum so nothing is optimised out. */
unsigned fz_touch(const void *p, size_t n);

/* SDXL's attention modules as unet_load.c builds them (diffusers attn_processors order: down, up, mid;
 * ComfyUI index in forward order), the real table behind every --style-blocks spec. */
#define FZ_SDXL_MODULES 11
const is_attn_module *fz_sdxl_modules(void);

/* A set is_st_open accepted: names sorted, unique and found by is_st_find; element counts times the
 * dtype size equal the stored sizes; every tensor byte readable (ASan checks each view lies inside its
 * mapping), before and after is_st_drop_pages; small tensors convert to f32. Aborts otherwise. */
void fz_check_st(const is_st *st);

#endif
