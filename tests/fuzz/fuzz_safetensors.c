/* safetensors, one file: the input is the whole file (8-byte header length, JSON header, data).
 * is_st_open validates it; a file it accepts must give tensors whose views lie inside the data section
 * (every byte is read, so ASan catches a view past the mapping), sorted unique names that is_st_find
 * finds, and shapes whose element count times the dtype size is the stored size. */
#include <stdlib.h>
#include <string.h>

#include "core/safetensors.h"
#include "fuzz_common.h"

static const char *path;

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc;
    (void)argv;
    path = fz_path("model.safetensors");
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    fz_write(path, data, size);
    is_st *st = NULL;
    if (!fz_error(is_st_open(path, &st))) {
        fz_check_st(st);
        const is_tensor *t = NULL;
        fz_error(is_st_getv(st, &t, "x", 2, (int64_t)1, (int64_t)-1));
        is_st_close(st);
    }
    return 0;
}
