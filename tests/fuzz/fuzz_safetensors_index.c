/* Sharded safetensors: the input is "INDEX" FZ_SEP "SHARD1" [FZ_SEP "SHARD2"], written as
 * model.safetensors.index.json, model-00001-of-00002.safetensors and model-00002-of-00002.safetensors
 * in an otherwise empty folder (a shard not in the input is a missing file). The index is opened by
 * is_st_open and by is_st_open_in_dir(dir, "model"); a set either accepts must pass fz_check_st. */
#include "fuzz_common.h"

static const char *dir, *index_path, *shard_path[2];

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc;
    (void)argv;
    dir = fz_path("model");
    index_path = fz_path("model/model.safetensors.index.json");
    shard_path[0] = fz_path("model/model-00001-of-00002.safetensors");
    shard_path[1] = fz_path("model/model-00002-of-00002.safetensors");
    fz_mkdirs(dir);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    fz_part part[3];
    int n = fz_split(data, size, part, 3);
    fz_write(index_path, part[0].p, part[0].n);
    for (int i = 0; i < 2; i++) {
        if (i + 1 < n) fz_write(shard_path[i], part[i + 1].p, part[i + 1].n);
        else fz_remove(shard_path[i]);
    }
    is_st *st = NULL;
    if (!fz_error(is_st_open(index_path, &st))) {
        fz_check_st(st);
        is_st_close(st);
    }
    if (!fz_error(is_st_open_in_dir(dir, "model", &st))) {
        fz_check_st(st);
        is_st_close(st);
    }
    return 0;
}
