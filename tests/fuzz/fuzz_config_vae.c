/* vae/config.json: the input is the VAE's config.json, in a folder whose
 * diffusion_pytorch_model.safetensors is the golden tiny SDXL VAE's, loaded with is_vae_load. A VAE it
 * accepts must answer its size queries (scale, latent channels, workspace bytes and the tiling decision
 * for small and large latents) and decode a 2x3 latent, untiled and tiled. */
#include <stdlib.h>

#include "fuzz_common.h"
#include "instantstyle.h"

static const char *dir, *config_path;

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc;
    (void)argv;
    dir = fz_path("vae");
    config_path = fz_path("vae/config.json");
    fz_symlink(fz_golden("models/tiny-sdxl/vae/diffusion_pytorch_model.safetensors"),
               fz_path("vae/diffusion_pytorch_model.safetensors"));
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    fz_write(config_path, data, size);
    is_vae *v = NULL;
    if (fz_error(is_vae_load(dir, &v))) return 0;
    int scale = is_vae_scale(v), C = is_vae_latent_channels(v);
    if (scale < 1 || scale > 1 << 7 || C < 1) fz_fail("VAE scale %d, %d latent channels", scale, C);
    static const int sides[][2] = {{1, 1}, {2, 3}, {128, 128}, {300, 17}};
    for (size_t k = 0; k < sizeof sides / sizeof *sides; k++) {
        int64_t bytes = is_vae_decode_workspace_bytes(v, sides[k][0], sides[k][1]);
        if (bytes < 0) fz_fail("negative workspace for %dx%d latents", sides[k][0], sides[k][1]);
        for (int tiling = -1; tiling <= 1; tiling++) (void)is_vae_decode_will_tile(v, sides[k][0], sides[k][1], tiling);
    }
    if (C <= 64) {
        const int h = 2, w = 3;
        float *z = calloc((size_t)C * h * w, sizeof(float)), *img = calloc((size_t)3 * h * w * scale * scale, sizeof(float));
        if (!z || !img) fz_fail("out of memory");
        is_vae_options o;
        is_vae_options_init(&o);
        for (o.tiling = 0; o.tiling <= 1; o.tiling++) fz_error(is_vae_decode(v, z, h, w, &o, img));
        free(z);
        free(img);
    }
    fz_touch((float[]){is_vae_scaling_factor(v)}, sizeof(float));
    is_vae_free(v);
    return 0;
}
