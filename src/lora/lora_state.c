/* The LoRAs a network carries, and how they reach its weights in f32 (copies) and in bf16 (packs). */
#include <stdlib.h>
#include <string.h>

#include "lora/lora.h"

struct lora_state {
    is_lora *loras; /* copies: paths owned */
    int n;
    const is_tensor **patched; /* sorted: the weights the list patches */
    size_t n_patched;
    const char *what; /* static strings: names for errors */
    is_lora_component component;
    const is_unet *unet;
};

void lora_state_free(lora_state *s) {
    if (!s) return;
    for (int i = 0; i < s->n; i++) free((char *)s->loras[i].path);
    free(s->loras);
    free(s->patched);
    free(s);
}

static is_error *copy_list(const is_lora *loras, int n, is_lora **out) {
    *out = calloc((size_t)(n ? n : 1), sizeof **out);
    if (!*out) return is_error_oom("LoRA list");
    for (int i = 0; i < n; i++) {
        (*out)[i] = loras[i];
        if (!((*out)[i].path = strdup(loras[i].path))) {
            for (int k = 0; k < i; k++) free((char *)(*out)[k].path);
            free(*out);
            return is_error_oom("LoRA list");
        }
    }
    return NULL;
}

/* Every tensor some pack reads, sorted. */
static is_error *pack_sources(const is_dnn *dnn, const is_tensor ***out, size_t *n) {
    size_t slots = is_dnn_pack_slots(dnn), cap = 0;
    const is_tensor *src[IS_DNN_PACK_MAX_SOURCES];
    for (size_t i = 0; i < slots; i++) cap += (size_t)is_dnn_pack_sources(dnn, i, src, IS_DNN_PACK_MAX_SOURCES);
    *out = malloc((cap ? cap : 1) * sizeof **out);
    if (!*out) return is_error_oom("bf16 weight sources");
    *n = 0;
    for (size_t i = 0; i < slots; i++) {
        int k = is_dnn_pack_sources(dnn, i, src, IS_DNN_PACK_MAX_SOURCES);
        for (int j = 0; j < k; j++) (*out)[(*n)++] = src[j];
    }
    *n = lora_sort_unique(*out, *n);
    return NULL;
}

/* Pack again every pack reading a tensor of `touched` or of plan's targets, each from its sources with
 * plan's patches merged (plan NULL: the file's values), dropping the merged copies once packed. */
static is_error *repack(is_st *st, is_dnn *dnn, const lora_plan *plan, const is_tensor *const *touched, size_t n_touched) {
    const is_tensor *src[IS_DNN_PACK_MAX_SOURCES];
    for (size_t slot = 0; slot < is_dnn_pack_slots(dnn); slot++) {
        int k = is_dnn_pack_sources(dnn, slot, src, IS_DNN_PACK_MAX_SOURCES), hit = 0;
        for (int j = 0; j < k; j++)
            hit |= lora_tensor_in(touched, n_touched, src[j]) || (plan && lora_tensor_in(plan->targets, plan->n_targets, src[j]));
        if (!hit) continue;
        is_error *err = NULL;
        for (int j = 0; j < k && !err && plan; j++) err = lora_plan_merge(plan, st, src[j]);
        if (!err) err = is_dnn_repack(dnn, st, slot);
        for (int j = 0; j < k; j++) is_st_restore_tensor(st, src[j]);
        if (err) return err;
    }
    return NULL;
}

/* Bring st (and dnn) to plan's values: f32 copies of the targets no pack reads; packs for the others. */
static is_error *apply_plan(is_st *st, is_dnn *dnn, const lora_plan *plan) {
    const is_tensor **read = NULL;
    size_t n_read = 0;
    if (dnn) {
        IS_TRY(repack(st, dnn, plan, NULL, 0));
        IS_TRY(pack_sources(dnn, &read, &n_read));
    }
    is_error *err = NULL;
    for (size_t i = 0; i < plan->n_targets && !err; i++)
        if (!lora_tensor_in(read, n_read, plan->targets[i])) err = lora_plan_merge(plan, st, plan->targets[i]);
    free(read);
    return err;
}

/* The file's values everywhere: no copies, and the packs that read a weight `before` patched packed again. */
static is_error *clear(is_st *st, is_dnn *dnn, const is_tensor *const *before, size_t n_before) {
    is_st_restore(st); /* the copies are all LoRA's */
    return dnn ? repack(st, dnn, NULL, before, n_before) : NULL;
}

is_error *lora_state_set(lora_state **slot, is_st *st, is_dnn *dnn, const char *what, is_lora_component component,
                         const is_unet *unet, const is_lora *loras, int n) {
    lora_state *old = *slot, *s = NULL;
    *slot = NULL;
    const is_tensor *const *before = old ? old->patched : NULL;
    size_t n_before = old ? old->n_patched : 0;
    lora_plan plan = {0};
    is_lora *list = NULL;
    /* every file read and checked before any weight changes */
    is_error *err = lora_plan_make(st, what, component, unet, loras, n, &plan);
    if (!err && n) err = copy_list(loras, n, &list);
    if (!err && n && !(s = calloc(1, sizeof *s))) err = is_error_oom("LoRA state");
    if (!err) err = clear(st, dnn, before, n_before);
    if (!err) err = apply_plan(st, dnn, &plan);
    if (err) { /* carry no LoRA */
        is_error *e2 = clear(st, dnn, before, n_before);
        if (!e2 && dnn) e2 = repack(st, dnn, NULL, plan.targets, plan.n_targets);
        if (e2) err = is_error_wrap(err, "(and putting the %s's bf16 weights back failed too: %s)", what, is_error_message(e2));
        is_error_free(e2);
        for (int i = 0; list && i < n; i++) free((char *)list[i].path);
        free(list);
        free(s);
    } else if (s) {
        *s = (lora_state){.loras = list, .n = n, .patched = plan.targets, .n_patched = plan.n_targets, .what = what,
                          .component = component, .unet = unet};
        plan.targets = NULL; /* taken */
        *slot = s;
    }
    lora_plan_free(&plan);
    lora_state_free(old);
    return err ? is_error_wrap(err, "applying LoRAs to the %s", what) : NULL;
}

is_error *lora_state_precision_changed(lora_state **slot, is_st *st, is_dnn *dnn) {
    lora_state *s = *slot;
    if (!s) return NULL;
    if (dnn) { /* the packs were made from the merged copies: drop the copies they read */
        const is_tensor **read = NULL;
        size_t n_read = 0;
        IS_TRY(pack_sources(dnn, &read, &n_read));
        for (size_t i = 0; i < s->n_patched; i++)
            if (lora_tensor_in(read, n_read, s->patched[i])) is_st_restore_tensor(st, s->patched[i]);
        free(read);
        return NULL;
    }
    /* unpacked: the dropped copies are needed again; merge the list anew (its files are read again) */
    return lora_state_set(slot, st, NULL, s->what, s->component, s->unet, s->loras, s->n);
}
