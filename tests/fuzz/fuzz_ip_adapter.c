/* IP-Adapter weights (h94's ip-adapter_sdxl.safetensors layout: image_proj.*, ip_adapter.N.to_k_ip /
 * to_v_ip): the golden tiny SDXL UNet is loaded once; each input is a .safetensors file given to
 * is_unet_load_ip_adapter (after is_st_open and fz_check_st on the same file). An adapter it accepts must
 * report its sizes, turn an image embedding of its embed_dim into IP tokens and take a block spec. Each input
 * is written under a new name and unlinked after loading, so the adapter the UNet keeps from an earlier
 * input still maps its own file. */
#include <stdio.h>
#include <stdlib.h>

#include "fuzz_common.h"
#include "instantstyle.h"

static is_unet *unet;
static char path[4096];
static const char *base;

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc;
    (void)argv;
    unet = fz_golden_unet();
    base = fz_path("adapter");
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static unsigned long serial;
    snprintf(path, sizeof path, "%s-%lu.safetensors", base, serial++);
    fz_write(path, data, size);
    is_st *st = NULL;
    if (!fz_error(is_st_open(path, &st))) {
        fz_check_st(st);
        is_st_close(st);
    }
    is_error *err = is_unet_load_ip_adapter(unet, path, 0);
    fz_remove(path);
    if (fz_error(err)) return 0;
    int dim = is_unet_ip_embed_dim(unet), ntok = is_unet_ip_num_tokens(unet), cad = is_unet_cross_attention_dim(unet);
    if (dim < 1 || ntok < 1 || !is_unet_has_ip_adapter(unet)) fz_fail("adapter: %d-dim embeddings, %d tokens", dim, ntok);
    float *emb = calloc((size_t)dim, sizeof(float)), *tokens = malloc((size_t)ntok * cad * sizeof(float));
    if (!emb || !tokens) fz_fail("out of memory");
    for (int i = 0; i < dim; i++) emb[i] = (float)(i % 7) - 3.0f;
    fz_error(is_unet_ip_tokens(unet, emb, 1, tokens));
    fz_touch(tokens, (size_t)ntok * cad * sizeof(float));
    free(emb);
    free(tokens);
    fz_error(is_unet_set_ip_scale(unet, "style", 1.0f));
    return 0;
}
