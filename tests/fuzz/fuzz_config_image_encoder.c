/* image_encoder/config.json (transformers CLIPVisionConfig, or a CLIPConfig with a vision_config): the
 * input is the config.json of a folder whose model.safetensors and preprocessor_config.json are the
 * golden tiny IP-Adapter image encoder's, loaded with is_image_encoder_load. An encoder it accepts must
 * report consistent sizes, preprocess a 40x30 image and run one forward (image_embeds and the
 * penultimate hidden states). */
#include <stdlib.h>

#include "fuzz_common.h"
#include "instantstyle.h"

static const char *dir, *config_path;
static is_image img;

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc;
    (void)argv;
    dir = fz_path("image_encoder");
    config_path = fz_path("image_encoder/config.json");
    fz_symlink(fz_golden("models/tiny-ip-adapter/image_encoder/model.safetensors"),
               fz_path("image_encoder/model.safetensors"));
    fz_symlink(fz_golden("models/tiny-ip-adapter/image_encoder/preprocessor_config.json"),
               fz_path("image_encoder/preprocessor_config.json"));
    img.width = 40;
    img.height = 30;
    img.rgb = malloc(40 * 30 * 3);
    if (!img.rgb) fz_fail("out of memory");
    for (int i = 0; i < 40 * 30 * 3; i++) img.rgb[i] = (uint8_t)(i * 13);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    fz_write(config_path, data, size);
    is_image_encoder *enc = NULL;
    if (fz_error(is_image_encoder_load(dir, &enc))) return 0;
    int S = is_image_encoder_image_size(enc), P = is_image_encoder_projection_dim(enc);
    int H = is_image_encoder_hidden_size(enc), T = is_image_encoder_num_tokens(enc);
    if (S < 1 || P < 1 || H < 1 || T < 2) fz_fail("image size %d, projection %d, hidden %d, %d tokens", S, P, H, T);
    float *px = malloc((size_t)3 * S * S * sizeof(float)), *emb = malloc((size_t)P * sizeof(float));
    float *pen = malloc((size_t)T * H * sizeof(float));
    if (!px || !emb || !pen) fz_fail("out of memory");
    if (!fz_error(is_image_preprocess(enc, &img, px))) fz_error(is_image_encoder_forward(enc, px, emb, pen));
    free(px);
    free(emb);
    free(pen);
    is_image_encoder_free(enc);
    return 0;
}
