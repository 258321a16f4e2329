/* The per-network entry points: open the files, put the network's weights back to the file's, merge,
 * and repack for bf16 when the network was packed (the packing reads the merged views). */
#include <stdlib.h>
#include <string.h>

#include "lora/lora.h"
#include "text/clip_text.h"
#include "text/sdxl_prompt.h"
#include "unet/unet_internal.h"

static is_error *check_args(const void *net, const is_lora *loras, int n, const char *fn) {
    if (!net || n < 0 || (n > 0 && !loras)) return is_errorf(IS_E_ARGUMENT, "%s: NULL network or bad LoRA list", fn);
    for (int i = 0; i < n; i++)
        if (!loras[i].path) return is_errorf(IS_E_ARGUMENT, "%s: LoRA %d has no path", fn, i);
    return NULL;
}

/* Open loras[0..n), merge their `component` part into st. st is left without LoRA on error. */
static is_error *merge_files(is_st *st, const char *what, is_lora_component component, const is_unet *unet,
                             const is_lora *loras, int n) {
    is_st_restore(st);
    if (n == 0) return NULL;
    lora_file **files = calloc((size_t)n, sizeof *files);
    float *weights = calloc((size_t)n, sizeof *weights);
    is_error *err = files && weights ? NULL : is_error_oom("LoRA list");
    for (int i = 0; i < n && !err; i++) {
        weights[i] = loras[i].weight;
        err = lora_file_open(loras[i].path, &files[i]); /* its errors name the file */
    }
    if (!err) err = is_error_wrap(lora_merge(st, what, component, unet, files, weights, n), "applying LoRAs to the %s", what);
    if (err) is_st_restore(st);
    for (int i = 0; files && i < n; i++) lora_file_free(files[i]);
    free(files);
    free(weights);
    return err;
}

is_error *is_unet_set_loras(is_unet *u, const is_lora *loras, int n) {
    IS_TRY(check_args(u, loras, n, "is_unet_set_loras"));
    is_precision p = is_unet_precision(u);
    if (p == IS_PRECISION_BF16) IS_TRY(is_unet_set_precision(u, IS_PRECISION_F32)); /* unpack: packs read the views */
    is_error *err = merge_files(u->st, "UNet", IS_LORA_UNET, u, loras, n);
    if (p == IS_PRECISION_BF16) {
        is_error *e2 = is_unet_set_precision(u, p);
        if (err) is_error_free(e2);
        else err = e2;
    }
    return err;
}

is_error *is_clip_text_set_loras(is_clip_text *m, is_lora_component which, const is_lora *loras, int n) {
    IS_TRY(check_args(m, loras, n, "is_clip_text_set_loras"));
    if (which != IS_LORA_TEXT_ENCODER && which != IS_LORA_TEXT_ENCODER_2)
        return is_errorf(IS_E_ARGUMENT, "is_clip_text_set_loras: %s is not a text encoder", is_lora_component_name(which));
    is_precision p = is_clip_text_precision(m);
    if (p == IS_PRECISION_BF16) IS_TRY(is_clip_text_set_precision(m, IS_PRECISION_F32));
    is_error *err = merge_files(is_clip_text_weights(m), is_lora_component_name(which), which, NULL, loras, n);
    if (p == IS_PRECISION_BF16) {
        is_error *e2 = is_clip_text_set_precision(m, p);
        if (err) is_error_free(e2);
        else err = e2;
    }
    return err;
}

is_error *is_sdxl_text_set_loras(is_sdxl_text *t, const is_lora *loras, int n) {
    IS_TRY(check_args(t, loras, n, "is_sdxl_text_set_loras"));
    is_error *err = is_clip_text_set_loras(is_sdxl_text_encoder(t, 1), IS_LORA_TEXT_ENCODER, loras, n);
    if (!err) err = is_clip_text_set_loras(is_sdxl_text_encoder(t, 2), IS_LORA_TEXT_ENCODER_2, loras, n);
    if (err) { /* neither encoder keeps a LoRA */
        is_error_free(is_clip_text_set_loras(is_sdxl_text_encoder(t, 1), IS_LORA_TEXT_ENCODER, NULL, 0));
        is_error_free(is_clip_text_set_loras(is_sdxl_text_encoder(t, 2), IS_LORA_TEXT_ENCODER_2, NULL, 0));
    }
    return err;
}
