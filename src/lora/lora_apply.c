/* The per-network entry points: each network carries a lora_state (lora_state.c), which merges the list
 * into its f32 weights or its bf16 packs. */
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

is_error *is_unet_set_loras(is_unet *u, const is_lora *loras, int n) {
    IS_TRY(check_args(u, loras, n, "is_unet_set_loras"));
    return lora_state_set(&u->lora, u->st, u->dnn, "UNet", IS_LORA_UNET, u, loras, n);
}

is_error *is_clip_text_set_loras(is_clip_text *m, is_lora_component which, const is_lora *loras, int n) {
    IS_TRY(check_args(m, loras, n, "is_clip_text_set_loras"));
    if (which != IS_LORA_TEXT_ENCODER && which != IS_LORA_TEXT_ENCODER_2)
        return is_errorf(IS_E_ARGUMENT, "is_clip_text_set_loras: %s is not a text encoder", is_lora_component_name(which));
    return lora_state_set(clip_text_lora_slot(m), is_clip_text_weights(m), clip_text_dnn(m), is_lora_component_name(which),
                          which, NULL, loras, n);
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
