/* One LoRA file: every tensor's name is split (lora_names.c) and the tensors are grouped per module:
 * down + up (+ alpha). A tensor the grouping cannot place is an error naming it, as diffusers raises
 * "The following keys have not been correctly renamed" for kohya files. Shapes are checked against each
 * other here and against the network's weight when merged. */
#include <stdlib.h>
#include <string.h>

#include "lora/lora.h"

typedef struct {
    lora_name n;
    const is_tensor *t;
} entry;

static int entry_cmp(const void *a, const void *b) {
    const entry *x = a, *y = b;
    if (x->n.component != y->n.component) return (int)x->n.component - (int)y->n.component;
    int c = strcmp(x->n.stem, y->n.stem);
    return c ? c : (int)x->n.role - (int)y->n.role;
}

static int is_float(is_dtype d) { return d == IS_DT_F32 || d == IS_DT_F16 || d == IS_DT_BF16 || d == IS_DT_F64; }

/* down [r, in(, kh, kw)], up [out, r(, 1, 1)], alpha a scalar. */
static is_error *check_module(const lora_file *f, lora_module *m) {
    const char *path = is_st_path(f->st);
    const is_tensor *d = m->down, *u = m->up, *a = m->alpha;
    const is_tensor *any = d ? d : u ? u : a;
    if (!d || !u)
        return is_errorf(IS_E_FORMAT, "%s: tensor '%s' has no matching %s tensor", path, any->name,
                         d ? "up (lora_B / lora_up)" : "down (lora_A / lora_down)");
    char s1[96], s2[96];
    if (!is_float(d->dtype) || !is_float(u->dtype) || (a && !is_float(a->dtype)))
        return is_errorf(IS_E_SHAPE, "%s: tensor '%s': LoRA tensors must have a float dtype", path, d->name);
    int conv_up = u->ndim == 4 && u->shape[2] == 1 && u->shape[3] == 1;
    if ((d->ndim != 2 && d->ndim != 4) || (u->ndim != 2 && !conv_up) || u->shape[1] != d->shape[0] || d->shape[0] <= 0)
        return is_errorf(IS_E_SHAPE, "%s: tensors '%s' %s and '%s' %s: expected down [rank, in] or [rank, in, kh, kw] "
                         "and up [out, rank] or [out, rank, 1, 1]", path, d->name, is_shape_str(d->shape, d->ndim, s1, sizeof s1),
                         u->name, is_shape_str(u->shape, u->ndim, s2, sizeof s2));
    if (a && a->numel != 1)
        return is_errorf(IS_E_SHAPE, "%s: tensor '%s' %s: alpha must be one number", path, a->name,
                         is_shape_str(a->shape, a->ndim, s1, sizeof s1));
    m->rank = d->shape[0];
    return NULL;
}

static is_error *group(lora_file *f) {
    size_t n = is_st_count(f->st);
    if (!n) return is_errorf(IS_E_FORMAT, "%s: no tensors: not a LoRA file", is_st_path(f->st));
    entry *e = calloc(n, sizeof *e);
    f->mods = calloc(n, sizeof *f->mods);
    if (!e || !f->mods) {
        free(e);
        return is_error_oom("LoRA tensors");
    }
    is_error *err = NULL;
    for (size_t i = 0; i < n && !err; i++) {
        e[i].t = is_st_at(f->st, i);
        err = is_error_wrap(lora_split_name(e[i].t->name, &e[i].n), "%s", is_st_path(f->st));
    }
    if (!err) qsort(e, n, sizeof *e, entry_cmp);
    for (size_t i = 0; i < n && !err; i++) {
        int same = i > 0 && e[i].n.component == e[i - 1].n.component && strcmp(e[i].n.stem, e[i - 1].n.stem) == 0;
        if (!same) {
            f->mods[f->n].name = e[i].n;
            f->n++;
        }
        lora_module *m = &f->mods[f->n - 1];
        const is_tensor **slot = e[i].n.role == IS_LORA_DOWN ? &m->down : e[i].n.role == IS_LORA_UP ? &m->up : &m->alpha;
        if (*slot)
            err = is_errorf(IS_E_FORMAT, "%s: tensors '%s' and '%s' are the same part of one module", is_st_path(f->st),
                            (*slot)->name, e[i].t->name);
        *slot = e[i].t;
    }
    for (size_t i = 0; i < f->n && !err; i++) err = check_module(f, &f->mods[i]);
    free(e);
    return err;
}

is_error *lora_file_open(const char *path, lora_file **out) {
    *out = NULL;
    lora_file *f = calloc(1, sizeof *f);
    if (!f) return is_error_oom("LoRA file");
    is_error *err = is_st_open(path, &f->st);
    if (!err) err = group(f);
    if (err) {
        lora_file_free(f);
        return err;
    }
    *out = f;
    return NULL;
}

void lora_file_free(lora_file *f) {
    if (!f) return;
    is_st_close(f->st);
    free(f->mods);
    free(f);
}
