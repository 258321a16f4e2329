/* Block specs (--style-blocks, is_unet_set_ip_scale): the input, cut at its first NUL, is the spec given
 * to is_block_scales_parse with SDXL's 11 attention modules (the table unet_load.c builds for the real
 * UNet). Checks the documented contract: on success every value is finite and within [0, 10]; on error
 * the status is IS_E_ARGUMENT, every output is 0 and the message stays short whatever the spec's length
 * (it quotes at most 40 bytes of it). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_common.h"

/* Longest message seen on the seeds is about 300 bytes (the ComfyUI index error lists all 11 modules). */
#define MAX_MESSAGE 1024

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char *spec = fz_cstr(data, size);
    float out[FZ_SDXL_MODULES];
    for (int i = 0; i < FZ_SDXL_MODULES; i++) out[i] = -1.0f;
    is_error *err = is_block_scales_parse(spec, fz_sdxl_modules(), FZ_SDXL_MODULES, out);
    if (err) {
        const char *msg = is_error_message(err);
        if (is_error_code(err) != IS_E_ARGUMENT) fz_fail("status %s: %s", is_status_name(is_error_code(err)), msg);
        if (strlen(msg) > MAX_MESSAGE) fz_fail("a %zu-byte message for a %zu-byte spec", strlen(msg), strlen(spec));
        for (int i = 0; i < FZ_SDXL_MODULES; i++)
            if (out[i] != 0.0f) fz_fail("error, yet module %d has scale %g: %s", i, (double)out[i], msg);
        fz_error(err);
    } else {
        for (int i = 0; i < FZ_SDXL_MODULES; i++)
            if (!(isfinite(out[i]) && out[i] >= 0.0f && out[i] <= 10.0f))
                fz_fail("module %d has scale %g", i, (double)out[i]);
    }
    free(spec);
    return 0;
}
