/* text_encoder/config.json and text_encoder_2/config.json (transformers CLIPTextConfig): the input is
 * the config.json of a folder whose model.safetensors is the golden tiny SDXL text_encoder_2's (BF16,
 * with text_projection) when the input mentions "WithProjection" (CLIPTextModelWithProjection), else
 * text_encoder's (F16), loaded with is_clip_text_load. An encoder it accepts must run one forward on
 * [BOS, a, EOS] with every output requested (text_embeds only when it has a projection). */
#define _GNU_SOURCE /* memmem */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_common.h"
#include "instantstyle.h"

static const char *dir[2], *config_path[2];

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc;
    (void)argv;
    static const char *const name[2] = {"text_encoder", "text_encoder_2"};
    for (int k = 0; k < 2; k++) {
        char rel[64], golden[96];
        dir[k] = fz_path(name[k]);
        snprintf(rel, sizeof rel, "%s/config.json", name[k]);
        config_path[k] = fz_path(rel);
        snprintf(rel, sizeof rel, "%s/model.safetensors", name[k]);
        snprintf(golden, sizeof golden, "models/tiny-sdxl/%s/model.safetensors", name[k]);
        fz_symlink(fz_golden(golden), fz_path(rel));
    }
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    int k = memmem(data, size, "WithProjection", 14) != NULL;
    fz_write(config_path[k], data, size);
    is_clip_text *m = NULL;
    if (fz_error(is_clip_text_load(dir[k], &m))) return 0;
    int H = is_clip_text_hidden_size(m), P = is_clip_text_projection_dim(m), max_pos = is_clip_text_max_positions(m);
    if (H < 1 || P < 0 || max_pos < 1) fz_fail("hidden %d, projection %d, %d positions", H, P, max_pos);
    const int32_t ids[3] = {49406, 320, 49407};
    int n = max_pos < 3 ? max_pos : 3;
    float *pen = malloc((size_t)n * H * sizeof(float)), *last = malloc((size_t)n * H * sizeof(float));
    float *pooled = malloc((size_t)H * sizeof(float)), *embeds = malloc(((size_t)P + 1) * sizeof(float));
    if (!pen || !last || !pooled || !embeds) fz_fail("out of memory");
    fz_error(is_clip_text_forward(m, ids, n, pen, last, pooled, P ? embeds : NULL));
    int pos = is_clip_text_pooled_position(m, ids, n);
    if (pos < 0 || pos >= n) fz_fail("pooled position %d of %d", pos, n);
    free(pen);
    free(last);
    free(pooled);
    free(embeds);
    is_clip_text_free(m);
    return 0;
}
