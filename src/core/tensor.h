/* Typed, shaped views into memory (usually a safetensors mmap) and dtype conversion. */
#ifndef IS_CORE_TENSOR_H
#define IS_CORE_TENSOR_H

#include <stddef.h>
#include <stdint.h>

#include "core/error.h"

#define IS_MAX_DIMS 8

typedef enum {
    IS_DT_F32, IS_DT_F16, IS_DT_BF16, IS_DT_F64,
    IS_DT_I64, IS_DT_I32, IS_DT_I16, IS_DT_I8, IS_DT_U8, IS_DT_BOOL,
    IS_DT_COUNT
} is_dtype;

/* A tensor viewed in place: weights stay in their stored dtype inside the mmap. */
typedef struct {
    const char *name;  /* tensor name inside its file */
    const char *file;  /* path of the file it came from (for error messages) */
    is_dtype dtype;
    int ndim;
    int64_t shape[IS_MAX_DIMS];
    int64_t numel;
    const void *data;
    size_t nbytes;
} is_tensor;

size_t is_dtype_size(is_dtype dt);
const char *is_dtype_name(is_dtype dt);            /* safetensors spelling: "F16" */
int is_dtype_from_name(const char *s, is_dtype *out); /* 0 on success */

/* Convert n elements starting at element `first` of src (dtype dt) to f32. */
void is_convert_to_f32(is_dtype dt, const void *src, size_t first, size_t n, float *dst);
float is_f16_to_f32(uint16_t h);
uint16_t is_f32_to_f16(float f);
float is_bf16_to_f32(uint16_t h);

/* Whole tensor to f32 (dst holds t->numel floats). */
void is_tensor_to_f32(const is_tensor *t, float *dst);
/* Element i as f32 (slow path, for scalars and small vectors). */
float is_tensor_get_f32(const is_tensor *t, size_t i);
/* Newly malloc'ed f32 copy of a (small) tensor; NULL on OOM. */
float *is_tensor_dup_f32(const is_tensor *t);

/* "[2, 4, 8, 8]" into buf. */
const char *is_shape_str(const int64_t *shape, int ndim, char *buf, size_t cap);

/* Check rank and dims (-1 = any) and return an IS_E_SHAPE error naming the tensor. */
is_error *is_tensor_expect(const is_tensor *t, int ndim, const int64_t *shape);

#endif
