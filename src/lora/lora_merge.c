/* Merging: for each module, W' = W + scale * up @ down with scale = weight * alpha / rank, as peft's
 * merge (fuse_lora) computes it in float32: the product first, then the scale, then the sum; several
 * LoRAs add one after the other. A convolution's down [r, in, kh, kw] is a [r, in*kh*kw] matrix and its
 * up [out, r, 1, 1] an [out, r] one, so the same product gives every kernel position. Only the patched
 * weights get an f32 copy (is_st_override_f32); the others stay in the mmap. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lora/lora.h"

/* W's shape must be [out] + down's [in(, kh, kw)], with up [out, r] (Linear) or [out, r, 1, 1] (Conv2d),
 * exactly as peft's layers would load them. */
static is_error *check_fit(const is_tensor *w, const lora_module *m, const char *module) {
    const is_tensor *d = m->down, *u = m->up;
    int ok = (w->ndim == 2 || w->ndim == 4) && d->ndim == w->ndim && u->ndim == w->ndim && u->shape[0] == w->shape[0];
    for (int k = 1; ok && k < w->ndim; k++) ok = d->shape[k] == w->shape[k];
    if (ok) return NULL;
    char s0[96], s1[96], s2[96];
    return is_errorf(IS_E_SHAPE, "LoRA tensors '%s' %s and '%s' %s do not fit module '%s' (weight %s): a LoRA for "
                     "another model?", d->name, is_shape_str(d->shape, d->ndim, s1, sizeof s1), u->name,
                     is_shape_str(u->shape, u->ndim, s2, sizeof s2), module, is_shape_str(w->shape, w->ndim, s0, sizeof s0));
}

/* W[out, K] += scale * up[out, r] @ down[r, K] */
static is_error *add_product(float *W, const lora_module *m, float scale) {
    const int64_t r = m->rank, out = m->up->shape[0], K = m->down->numel / r;
    float *down = is_tensor_dup_f32(m->down), *up = is_tensor_dup_f32(m->up);
    is_error *err = down && up ? NULL : is_error_oom("LoRA matrices");
    int oom = 0;
    if (!err) {
#pragma omp parallel reduction(| : oom)
        {
            float *acc = malloc((size_t)K * sizeof(float));
            oom = !acc;
#pragma omp for schedule(static)
            for (int64_t o = 0; o < out; o++) {
                if (!acc) continue;
                memset(acc, 0, (size_t)K * sizeof(float));
                for (int64_t j = 0; j < r; j++) {
                    const float a = up[o * r + j], *dj = down + j * K;
                    for (int64_t k = 0; k < K; k++) acc[k] += a * dj[k];
                }
                float *wo = W + o * K;
                for (int64_t k = 0; k < K; k++) wo[k] += acc[k] * scale;
            }
            free(acc);
        }
        if (oom) err = is_error_oom("LoRA merge row");
    }
    free(down);
    free(up);
    return err;
}

is_error *lora_merge(is_st *st, const char *what, is_lora_component component, const is_unet *unet,
                     lora_file *const *files, const float *weights, int n) {
    for (int i = 0; i < n; i++) {
        const lora_file *f = files[i];
        for (size_t k = 0; k < f->n; k++) {
            const lora_module *m = &f->mods[k];
            if (m->name.component != component) continue;
            char module[IS_LORA_MODULE_MAX], wname[IS_LORA_MODULE_MAX + 8];
            IS_TRY(is_error_wrap(lora_module_path(&m->name, unet, module, sizeof module), "%s", is_st_path(f->st)));
            snprintf(wname, sizeof wname, "%s.weight", module);
            const is_tensor *w = is_st_find(st, wname);
            if (!w)
                return is_errorf(IS_E_SHAPE, "%s: LoRA tensor '%s' patches module '%s', but the %s (%s) has no tensor "
                                 "'%s': a LoRA for another model?", is_st_path(f->st), m->down->name, module, what,
                                 is_st_path(st), wname);
            IS_TRY(is_error_wrap(check_fit(w, m, module), "%s", is_st_path(f->st)));
            /* No alpha: alpha = rank (scale 1 at weight 1). diffusers 0.30.3 gives a module without alpha the
             * file's most common alpha when other modules have one, and the first module's rank when ranks
             * differ and none has; files like that are not made by kohya or diffusers' trainers. */
            double alpha = m->alpha ? (double)is_tensor_get_f32(m->alpha, 0) : (double)m->rank;
            float scale = (float)((double)weights[i] * alpha / (double)m->rank);
            if (scale == 0.0f) continue; /* the weights stay the file's */
            float *W = NULL;
            IS_TRY(is_st_override_f32(st, w, &W));
            IS_TRY(add_product(W, m, scale));
        }
    }
    return NULL;
}
