#include "core/tensor.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#if defined(__F16C__)
#include <immintrin.h>
#endif

static const struct {
    const char *name;
    size_t size;
} dtype_info[IS_DT_COUNT] = {
    [IS_DT_F32] = {"F32", 4}, [IS_DT_F16] = {"F16", 2}, [IS_DT_BF16] = {"BF16", 2},
    [IS_DT_F64] = {"F64", 8}, [IS_DT_I64] = {"I64", 8}, [IS_DT_I32] = {"I32", 4},
    [IS_DT_I16] = {"I16", 2}, [IS_DT_I8] = {"I8", 1},   [IS_DT_U8] = {"U8", 1},
    [IS_DT_BOOL] = {"BOOL", 1},
};

size_t is_dtype_size(is_dtype dt) { return dt < IS_DT_COUNT ? dtype_info[dt].size : 0; }
const char *is_dtype_name(is_dtype dt) { return dt < IS_DT_COUNT ? dtype_info[dt].name : "?"; }

int is_dtype_from_name(const char *s, is_dtype *out) {
    for (int i = 0; i < IS_DT_COUNT; i++) {
        if (strcmp(s, dtype_info[i].name) == 0) {
            *out = (is_dtype)i;
            return 0;
        }
    }
    return -1;
}

float is_f16_to_f32(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000) << 16;
    uint32_t exp = (h >> 10) & 0x1f, mant = h & 0x3ff, bits;
    if (exp == 0) {
        if (mant == 0) {
            bits = sign;
        } else { /* subnormal: renormalise */
            int e = -1;
            do {
                e++;
                mant <<= 1;
            } while (!(mant & 0x400));
            bits = sign | ((uint32_t)(127 - 15 - e) << 23) | ((mant & 0x3ff) << 13);
        }
    } else if (exp == 31) {
        bits = sign | 0x7f800000u | (mant << 13);
    } else {
        bits = sign | ((exp + 112) << 23) | (mant << 13);
    }
    float f;
    memcpy(&f, &bits, 4);
    return f;
}

uint16_t is_f32_to_f16(float f) {
#if defined(__F16C__)
    return (uint16_t)_cvtss_sh(f, 0);
#else
    uint32_t x;
    memcpy(&x, &f, 4);
    uint32_t sign = (x >> 16) & 0x8000;
    int32_t exp = (int32_t)((x >> 23) & 0xff) - 127 + 15;
    uint32_t mant = x & 0x7fffff;
    if (((x >> 23) & 0xff) == 0xff) return (uint16_t)(sign | 0x7c00 | (mant ? 0x200 : 0));
    if (exp >= 31) return (uint16_t)(sign | 0x7c00);
    if (exp <= 0) {
        if (exp < -10) return (uint16_t)sign;
        mant |= 0x800000;
        uint32_t shift = (uint32_t)(14 - exp);
        uint32_t half = mant >> shift, rem = mant & ((1u << shift) - 1), mid = 1u << (shift - 1);
        if (rem > mid || (rem == mid && (half & 1))) half++;
        return (uint16_t)(sign | half);
    }
    uint32_t half = sign | ((uint32_t)exp << 10) | (mant >> 13), rem = mant & 0x1fff;
    if (rem > 0x1000 || (rem == 0x1000 && (half & 1))) half++;
    return (uint16_t)half;
#endif
}

float is_bf16_to_f32(uint16_t h) {
    uint32_t bits = (uint32_t)h << 16;
    float f;
    memcpy(&f, &bits, 4);
    return f;
}

static void f16_run(const uint16_t *s, size_t n, float *d) {
    size_t i = 0;
#if defined(__F16C__)
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(d + i, _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(s + i))));
#endif
    for (; i < n; i++) {
        uint16_t h;
        memcpy(&h, s + i, 2); /* tolerate 2-byte misalignment */
        d[i] = is_f16_to_f32(h);
    }
}

void is_convert_to_f32(is_dtype dt, const void *src, size_t first, size_t n, float *dst) {
    switch (dt) {
    case IS_DT_F32: memcpy(dst, (const unsigned char *)src + first * 4, n * sizeof(float)); return;
    case IS_DT_F16: f16_run((const uint16_t *)src + first, n, dst); return;
    case IS_DT_BF16: {
        const unsigned char *s = (const unsigned char *)src + first * 2;
        for (size_t i = 0; i < n; i++) {
            uint16_t h;
            memcpy(&h, s + 2 * i, 2);
            dst[i] = is_bf16_to_f32(h);
        }
        return;
    }
    /* Wider types go through memcpy: safetensors offsets need not be aligned for them. */
#define IS_CONVERT_UNALIGNED(T)                                          \
    {                                                                    \
        const unsigned char *s = (const unsigned char *)src + first * sizeof(T); \
        for (size_t i = 0; i < n; i++) {                                 \
            T v;                                                         \
            memcpy(&v, s + i * sizeof(T), sizeof(T));                    \
            dst[i] = (float)v;                                           \
        }                                                                \
        return;                                                          \
    }
    case IS_DT_F64: IS_CONVERT_UNALIGNED(double)
    case IS_DT_I64: IS_CONVERT_UNALIGNED(int64_t)
    case IS_DT_I32: IS_CONVERT_UNALIGNED(int32_t)
    case IS_DT_I16: IS_CONVERT_UNALIGNED(int16_t)
#undef IS_CONVERT_UNALIGNED
    case IS_DT_I8: {
        const int8_t *s = (const int8_t *)src + first;
        for (size_t i = 0; i < n; i++) dst[i] = (float)s[i];
        return;
    }
    case IS_DT_U8:
    case IS_DT_BOOL: {
        const uint8_t *s = (const uint8_t *)src + first;
        for (size_t i = 0; i < n; i++) dst[i] = (float)s[i];
        return;
    }
    case IS_DT_COUNT: break;
    }
    memset(dst, 0, n * sizeof(float));
}

void is_tensor_to_f32(const is_tensor *t, float *dst) {
    is_convert_to_f32(t->dtype, t->data, 0, (size_t)t->numel, dst);
}

float is_tensor_get_f32(const is_tensor *t, size_t i) {
    float v = 0.0f;
    if ((int64_t)i < t->numel) is_convert_to_f32(t->dtype, t->data, i, 1, &v);
    return v;
}

float *is_tensor_dup_f32(const is_tensor *t) {
    float *p = malloc((size_t)(t->numel > 0 ? t->numel : 1) * sizeof(float));
    if (p) is_tensor_to_f32(t, p);
    return p;
}

const char *is_shape_str(const int64_t *shape, int ndim, char *buf, size_t cap) {
    size_t used = 0;
    used += (size_t)snprintf(buf, cap, "[");
    for (int i = 0; i < ndim && used < cap; i++)
        used += (size_t)snprintf(buf + used, cap - used, i ? ", %lld" : "%lld", (long long)shape[i]);
    if (used < cap) snprintf(buf + used, cap - used, "]");
    return buf;
}

is_error *is_tensor_expect(const is_tensor *t, int ndim, const int64_t *shape) {
    int ok = t->ndim == ndim;
    for (int i = 0; ok && i < ndim; i++)
        if (shape[i] >= 0 && t->shape[i] != shape[i]) ok = 0;
    if (ok) return NULL;
    char got[128], want[128];
    is_shape_str(t->shape, t->ndim, got, sizeof got);
    is_shape_str(shape, ndim, want, sizeof want);
    for (char *p = want; *p; p++) /* show wildcards as '?' */
        if (p[0] == '-' && p[1] == '1') p[0] = ' ', p[1] = '?';
    return is_errorf(IS_E_SHAPE, "%s: tensor '%s' has shape %s, expected %s", t->file ? t->file : "?",
                     t->name ? t->name : "?", got, want);
}
