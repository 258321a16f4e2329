/* Merging: for each module, W' = W + scale * up @ down with scale = weight * alpha / rank, as peft's
 * merge (fuse_lora) computes it in float32: the product first, then the scale, then the sum; several
 * LoRAs add one after the other. A convolution's down [r, in, kh, kw] is a [r, in*kh*kw] matrix and its
 * up [out, r, 1, 1] an [out, r] one, so the same product gives every kernel position.
 *
 * A plan is made first (every module placed, fitted and scaled: errors before any weight changes), then
 * tensors are merged one at a time into f32 copies (is_st_override_f32), so a caller packing for bf16 can
 * drop each copy as soon as it is packed. */
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

static int cmp_ptr(const void *a, const void *b) {
    uintptr_t x = (uintptr_t) * (const is_tensor *const *)a, y = (uintptr_t) * (const is_tensor *const *)b;
    return x < y ? -1 : x > y;
}

int lora_tensor_in(const is_tensor *const *sorted, size_t n, const is_tensor *t) {
    return n && bsearch(&t, sorted, n, sizeof *sorted, cmp_ptr) != NULL;
}

size_t lora_sort_unique(const is_tensor **v, size_t n) {
    if (!n) return 0;
    qsort(v, n, sizeof *v, cmp_ptr);
    size_t k = 1;
    for (size_t i = 1; i < n; i++)
        if (v[i] != v[k - 1]) v[k++] = v[i];
    return k;
}

/* The plan's patches of files[i] for `component`, appended in file order. */
static is_error *plan_file(lora_plan *p, const is_st *st, const char *what, is_lora_component component,
                           const is_unet *unet, const lora_file *f, float weight) {
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
        if (w->dtype != IS_DT_F32 && w->dtype != IS_DT_F16 && w->dtype != IS_DT_BF16 && w->dtype != IS_DT_F64)
            return is_errorf(IS_E_SHAPE, "%s: tensor '%s' has dtype %s, expected a float dtype", is_st_path(st), wname,
                             is_dtype_name(w->dtype));
        /* No alpha: alpha = rank (scale 1 at weight 1). diffusers 0.30.3 gives a module without alpha the
         * file's most common alpha when other modules have one, and the first module's rank when ranks
         * differ and none has; files like that are not made by kohya or diffusers' trainers. */
        double alpha = m->alpha ? (double)is_tensor_get_f32(m->alpha, 0) : (double)m->rank;
        float scale = (float)((double)weight * alpha / (double)m->rank);
        if (scale == 0.0f) continue; /* the weights stay the file's */
        p->patches[p->n] = (lora_patch){.w = w, .m = m, .scale = scale};
        p->targets[p->n++] = w;
    }
    return NULL;
}

is_error *lora_plan_make(const is_st *st, const char *what, is_lora_component component, const is_unet *unet,
                         const is_lora *loras, int n, lora_plan *out) {
    *out = (lora_plan){0};
    lora_plan *p = out;
    p->files = calloc((size_t)(n ? n : 1), sizeof *p->files);
    is_error *err = p->files ? NULL : is_error_oom("LoRA list");
    for (int i = 0; i < n && !err; i++, p->n_files++) err = lora_file_open(loras[i].path, &p->files[i]); /* names the file */
    size_t cap = 0;
    for (int i = 0; i < p->n_files && !err; i++) cap += p->files[i]->n;
    if (!err) {
        p->patches = malloc((cap ? cap : 1) * sizeof *p->patches);
        p->targets = malloc((cap ? cap : 1) * sizeof *p->targets);
        if (!p->patches || !p->targets) err = is_error_oom("LoRA plan");
    }
    for (int i = 0; i < n && !err; i++) err = plan_file(p, st, what, component, unet, p->files[i], loras[i].weight);
    if (err) {
        lora_plan_free(p);
        return err;
    }
    p->n_targets = lora_sort_unique(p->targets, p->n);
    return NULL;
}

void lora_plan_free(lora_plan *p) {
    for (int i = 0; p->files && i < p->n_files; i++) lora_file_free(p->files[i]);
    free(p->files);
    free(p->patches);
    free(p->targets);
    *p = (lora_plan){0};
}

is_error *lora_plan_merge(const lora_plan *p, is_st *st, const is_tensor *t) {
    float *W = NULL;
    for (size_t i = 0; i < p->n; i++) {
        if (p->patches[i].w != t) continue;
        if (!W) {
            const is_tensor file_view = *t; /* the mapped values, read once for the copy */
            IS_TRY(is_st_override_f32(st, t, &W));
            is_st_drop_pages(st, &file_view); /* the copy (and the packs made from it) replace them */
        }
        IS_TRY(is_error_wrap(add_product(W, p->patches[i].m, p->patches[i].scale), "merging LoRA into '%s'", t->name));
    }
    return NULL;
}
