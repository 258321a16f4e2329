/* --dump-tensors: the pipeline's named intermediates, written as one safetensors file. */
#include <stdarg.h>

#include "pipeline/pipeline_internal.h"

is_error *is_dump_begin(is_dump *d, const char *path) {
    d->path = path;
    d->w = NULL;
    if (!path) return NULL;
    d->w = is_st_writer_new();
    return d->w ? NULL : is_error_oom("tensor dump");
}

static is_error *add(is_dump *d, const char *name, is_dtype dt, const void *data, int ndim, va_list ap) {
    int64_t shape[IS_MAX_DIMS];
    for (int i = 0; i < ndim && i < IS_MAX_DIMS; i++) shape[i] = va_arg(ap, int64_t);
    return is_st_writer_add(d->w, name, dt, ndim, shape, data);
}

is_error *is_dump_f32(is_dump *d, const char *name, const float *data, int ndim, ...) {
    if (!d->w) return NULL;
    va_list ap;
    va_start(ap, ndim);
    is_error *e = add(d, name, IS_DT_F32, data, ndim, ap);
    va_end(ap);
    return e;
}

is_error *is_dump_u8(is_dump *d, const char *name, const uint8_t *data, int ndim, ...) {
    if (!d->w) return NULL;
    va_list ap;
    va_start(ap, ndim);
    is_error *e = add(d, name, IS_DT_U8, data, ndim, ap);
    va_end(ap);
    return e;
}

is_error *is_dump_finish(is_dump *d) {
    if (!d->w) return NULL;
    is_error *e = is_st_writer_save(d->w, d->path);
    is_dump_abort(d);
    return e ? is_error_wrap(e, "writing --dump-tensors file") : NULL;
}

void is_dump_abort(is_dump *d) {
    is_st_writer_free(d->w);
    d->w = NULL;
}
