/* LoRA files (src/lora/: names in kohya / SGM / diffusers / PEFT form, grouping, shapes, merging): each input
 * is a .safetensors file given to is_unet_set_loras on the golden tiny SDXL UNet and to is_clip_text_set_loras
 * on both tiny text encoders (all loaded once, f32), at weight 0.7. Checks the documented contract: on error
 * the network carries no LoRA (every weight views its file again); on success at most one f32 copy per LoRA
 * module, and removing the LoRA (n = 0) puts every weight back. Each input is written under a new name. */
#include <stdio.h>
#include <stdlib.h>

#include "fuzz_common.h"
#include "instantstyle.h"
#include "text/clip_text.h"
#include "unet/unet_internal.h"

static is_unet *unet;
static is_clip_text *te[2];
static const char *base;

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc;
    (void)argv;
    unet = fz_golden_unet();
    const char *dirs[2] = {fz_golden("models/tiny-sdxl/text_encoder"), fz_golden("models/tiny-sdxl/text_encoder_2")};
    for (int i = 0; i < 2; i++) {
        is_error *e = is_clip_text_load(dirs[i], &te[i]);
        if (e) fz_fail("loading %s: %s", dirs[i], is_error_message(e));
    }
    base = fz_path("lora");
    return 0;
}

/* One network: set the LoRA, check what it carries, take it off again. */
static void one(const char *what, is_st *st, is_error *err, size_t modules, is_error *(*clear)(int)) {
    size_t copies = is_st_override_count(st);
    if (fz_error(err)) {
        if (copies) fz_fail("%s: an error left %zu weights as LoRA copies", what, copies);
        return;
    }
    if (copies > modules) fz_fail("%s: %zu weights copied for a file of %zu tensors", what, copies, modules);
    if (fz_error(clear(0))) fz_fail("%s: removing the LoRA failed", what);
    if (is_st_override_count(st)) fz_fail("%s: %zu copies left after removing the LoRA", what, is_st_override_count(st));
}

static is_error *clear_unet(int n) { return is_unet_set_loras(unet, NULL, n); }
static is_error *clear_te1(int n) { return is_clip_text_set_loras(te[0], IS_LORA_TEXT_ENCODER, NULL, n); }
static is_error *clear_te2(int n) { return is_clip_text_set_loras(te[1], IS_LORA_TEXT_ENCODER_2, NULL, n); }

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static unsigned long serial;
    char path[4096];
    snprintf(path, sizeof path, "%s-%lu.safetensors", base, serial++);
    fz_write(path, data, size);
    size_t tensors = 0;
    is_st *st = NULL;
    if (!fz_error(is_st_open(path, &st))) {
        tensors = is_st_count(st);
        is_st_close(st);
    }
    is_lora l = {path, 0.7f};
    one("UNet", unet->st, is_unet_set_loras(unet, &l, 1), tensors, clear_unet);
    one("text_encoder", is_clip_text_weights(te[0]), is_clip_text_set_loras(te[0], IS_LORA_TEXT_ENCODER, &l, 1), tensors, clear_te1);
    one("text_encoder_2", is_clip_text_weights(te[1]), is_clip_text_set_loras(te[1], IS_LORA_TEXT_ENCODER_2, &l, 1), tensors,
        clear_te2);
    fz_remove(path);
    return 0;
}
