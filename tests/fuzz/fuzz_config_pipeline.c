/* The pipeline folder's small JSON files: a tiny random-weight SDXL pipeline is written once
 * (is_make_tiny_model, into the temporary folder); each input is "model_index.json" [FZ_SEP
 * "unet/config.json" [FZ_SEP "vae/config.json" [FZ_SEP "tokenizer/tokenizer_config.json"]]], and a part
 * not in the input is the tiny model's own file. Then is_pipeline_load (which reads model_index.json's
 * presence, the UNet's sample_size and block_out_channels and the VAE's block_out_channels) and
 * is_sdxl_text_load (model_index.json's force_zeros_for_empty_prompt and text_encoder, both tokenizers,
 * tokenizer_config.json's model_max_length, both text encoders) run on the folder. A pipeline that loads
 * must report its memory mode; text encoders that load must tokenize a prompt into seq_len ids. */
#include <stdlib.h>
#include <string.h>

#include "core/fileio.h"
#include "fuzz_common.h"
#include "instantstyle.h"

static const char *model_dir;
static const char *files[4];
static char *original[4];
static size_t original_n[4];

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc;
    (void)argv;
    const char *root = fz_path("tiny");
    is_error *e = is_make_tiny_model(root, 1, 0);
    if (e) fz_fail("is_make_tiny_model: %s", is_error_message(e));
    model_dir = fz_path("tiny/sdxl");
    static const char *const rel[4] = {"tiny/sdxl/model_index.json", "tiny/sdxl/unet/config.json",
                                       "tiny/sdxl/vae/config.json", "tiny/sdxl/tokenizer/tokenizer_config.json"};
    for (int i = 0; i < 4; i++) {
        files[i] = fz_path(rel[i]);
        e = is_read_file(files[i], 1 << 20, &original[i], &original_n[i]);
        if (e) fz_fail("%s", is_error_message(e));
    }
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    fz_part part[4];
    int n = fz_split(data, size, part, 4);
    for (int i = 0; i < 4; i++) {
        if (i < n) fz_write(files[i], part[i].p, part[i].n);
        else fz_write(files[i], original[i], original_n[i]);
    }
    is_pipeline_params params;
    is_pipeline_params_init(&params);
    params.model_dir = model_dir;
    is_pipeline *p = NULL;
    if (!fz_error(is_pipeline_load(&params, &p))) {
        is_memory_mode m = is_pipeline_memory_mode(p);
        if (m != IS_MEMORY_KEEP && m != IS_MEMORY_LOW) fz_fail("memory mode %d", (int)m);
        is_pipeline_free(p);
    }
    is_sdxl_text *t = NULL;
    if (!fz_error(is_sdxl_text_load(model_dir, &t))) {
        int seq = is_sdxl_text_seq_len(t);
        if (seq < 2 || seq > 1 << 16) fz_fail("seq_len %d", seq);
        int32_t *ids_1 = malloc((size_t)seq * sizeof(int32_t)), *ids_2 = malloc((size_t)seq * sizeof(int32_t));
        if (!ids_1 || !ids_2) fz_fail("out of memory");
        int zeros = -1;
        is_prompt_info info;
        fz_error(is_sdxl_tokenize(t, "a cat, watercolor", NULL, ids_1, ids_2, &zeros, &info));
        fz_error(is_sdxl_tokenize(t, NULL, NULL, ids_1, ids_2, &zeros, &info));
        free(ids_1);
        free(ids_2);
        is_sdxl_text_free(t);
    }
    return 0;
}
