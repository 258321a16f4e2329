/* safetensors reader (mmap, validated) and writer (atomic). A set may span several
 * shard files listed by a *.safetensors.index.json; lookups are by name. */
#ifndef IS_CORE_SAFETENSORS_H
#define IS_CORE_SAFETENSORS_H

#include "core/tensor.h"

typedef struct is_st is_st;

/* Open a .safetensors file, or a sharded set through its .index.json. */
is_error *is_st_open(const char *path, is_st **out);
void is_st_close(is_st *st);
/* Open a model folder's weights by diffusers/transformers naming: "<stem>.safetensors", its sharded
 * "<stem>.safetensors.index.json", then the ".fp16" variants of both. The error names what was
 * expected when none exists. */
is_error *is_st_open_in_dir(const char *dir, const char *stem, is_st **out);

const char *is_st_path(const is_st *st);
size_t is_st_count(const is_st *st);
const is_tensor *is_st_at(const is_st *st, size_t i); /* sorted by name */
/* Element count of the largest tensor (to size conversion buffers up front). */
int64_t is_st_max_numel(const is_st *st);
const is_tensor *is_st_find(const is_st *st, const char *name); /* NULL if absent */
/* Release the mapped pages that lie wholly inside tensor t (a tensor of st), after its data has been
 * copied elsewhere (e.g. packed for the bf16 path): they leave the resident set and are read from the
 * file again if touched. A tensor not in st's maps is left alone. */
void is_st_drop_pages(const is_st *st, const is_tensor *t);
/* Value of a key in the (first) file's __metadata__, or NULL. */
const char *is_st_metadata(const is_st *st, const char *key);

/* Find `name` and check its rank/dims (-1 = any). Errors name the file and tensor. */
is_error *is_st_get(const is_st *st, const char *name, int ndim, const int64_t *shape,
                    const is_tensor **out);
/* Same, with the shape given as arguments: is_st_getv(st, &t, "w", 2, 320, 768). */
is_error *is_st_getv(const is_st *st, const is_tensor **out, const char *name, int ndim, ...);
/* printf-style name (for "down_blocks.%d.resnets.%d.conv1.weight"), shape as varargs after ndim. */
is_error *is_st_getf(const is_st *st, const is_tensor **out, int ndim, const int64_t *shape,
                     const char *fmt, ...) __attribute__((format(printf, 5, 6)));

/* ---- overrides (LoRA merging): tensor t of st (a pointer is_st_find / is_st_get returned) views an owned
 * f32 copy of its current values from now on, with the same name and shape; *data is that copy, writable.
 * Every view already handed out sees the change (the table entry itself is changed). A second call for
 * the same tensor returns the same copy. Apply overrides before packing weights (is_*_set_precision). */
is_error *is_st_override_f32(is_st *st, const is_tensor *t, float **data);
/* Every overridden tensor views the file again; the copies are freed (is_st_close does this too). */
void is_st_restore(is_st *st);
/* Only t views the file again (no-op when t is not overridden). */
void is_st_restore_tensor(is_st *st, const is_tensor *t);
size_t is_st_override_count(const is_st *st);

/* ---- writer: collects tensors (copies data) and writes the file atomically. */
typedef struct is_st_writer is_st_writer;
is_st_writer *is_st_writer_new(void);
is_error *is_st_writer_add(is_st_writer *w, const char *name, is_dtype dt, int ndim,
                           const int64_t *shape, const void *data);
is_error *is_st_writer_add_f32(is_st_writer *w, const char *name, int ndim, const int64_t *shape,
                               const float *data);
is_error *is_st_writer_set_metadata(is_st_writer *w, const char *key, const char *value);
is_error *is_st_writer_save(const is_st_writer *w, const char *path);
void is_st_writer_free(is_st_writer *w);

#endif
