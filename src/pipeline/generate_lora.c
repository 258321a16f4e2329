/* LoRAs of one generation: checked before any network loads, merged into the text encoders and the UNet
 * right after each is acquired (before it is packed for bf16). A kept network remembers the list merged
 * into it (a signature of paths and weights) and is re-merged only when the list changes: merging a LoRA
 * that covers SDXL's UNet takes seconds. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/fileio.h"
#include "pipeline/generate_internal.h"

is_error *gen_check_loras(const is_generate_params *gp) {
    if (gp->n_loras < 0 || gp->n_loras > IS_MAX_LORAS || (gp->n_loras && !gp->loras))
        return is_errorf(IS_E_ARGUMENT, "loras: %d given, at most %d (with a list)", gp->n_loras, IS_MAX_LORAS);
    for (int i = 0; i < gp->n_loras; i++) {
        const is_lora *l = &gp->loras[i];
        if (!l->path) return is_errorf(IS_E_ARGUMENT, "LoRA %d: no file", i + 1);
        if (!isfinite(l->weight)) return is_errorf(IS_E_ARGUMENT, "LoRA %s: the weight must be a finite number", l->path);
        if (!is_file_exists(l->path)) return is_errorf(IS_E_IO, "LoRA %s: not found", l->path);
    }
    return NULL;
}

/* "path\x1fweight\x1e..." (weights exactly, as hex floats); NULL for no LoRA. */
static char *signature(const is_generate_params *gp) {
    if (!gp->n_loras) return NULL;
    size_t cap = 1;
    for (int i = 0; i < gp->n_loras; i++) cap += strlen(gp->loras[i].path) + 48;
    char *sig = malloc(cap), *at = sig;
    if (!sig) return NULL;
    for (int i = 0; i < gp->n_loras; i++)
        at += snprintf(at, cap - (size_t)(at - sig), "%s\x1f%a\x1e", gp->loras[i].path, (double)gp->loras[i].weight);
    return sig;
}

static int same(const char *a, const char *b) { return (!a && !b) || (a && b && !strcmp(a, b)); }

/* kept: the network belongs to the pipeline and *merged is what it holds; otherwise it was just loaded
 * (nothing merged) and is released after this generation. */
static is_error *apply(const is_generate_params *gp, int kept, char **merged, is_error *(*set)(void *, const is_lora *, int),
                       void *net, const char *what) {
    char *sig = signature(gp);
    if (gp->n_loras && !sig) return is_error_oom("LoRA list");
    if ((kept && same(sig, *merged)) || (!kept && !gp->n_loras)) {
        free(sig);
        return NULL;
    }
    double t0 = gen_now();
    is_error *e = set(net, gp->loras, gp->n_loras);
    if (e) {
        free(sig);
        if (kept) { /* set_loras left the network without any LoRA */
            free(*merged);
            *merged = NULL;
        }
        return e;
    }
    if (kept) {
        free(*merged);
        *merged = sig;
    } else {
        free(sig);
    }
    gen_log(gp, "%s: %d LoRA%s merged in %.2f s", what, gp->n_loras, gp->n_loras == 1 ? "" : "s", gen_now() - t0);
    return NULL;
}

static is_error *set_text(void *net, const is_lora *l, int n) { return is_sdxl_text_set_loras(net, l, n); }
static is_error *set_unet(void *net, const is_lora *l, int n) { return is_unet_set_loras(net, l, n); }

is_error *gen_text_loras(const is_generate_params *gp, gen_state *s) {
    return apply(gp, s->text == s->p->kept.text, &s->p->kept_text_loras, set_text, s->text, "text encoders");
}

is_error *gen_unet_loras(const is_generate_params *gp, gen_state *s) {
    return apply(gp, s->unet == s->p->kept.unet, &s->p->kept_unet_loras, set_unet, s->unet, "unet");
}
