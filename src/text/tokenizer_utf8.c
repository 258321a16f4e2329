/* Strict UTF-8 decoding/encoding and a growable int32 array for the tokenizer. */
#include <stdlib.h>

#include "text/tokenizer.h"

is_error *is_i32vec_push(is_i32vec *vec, int32_t x) {
    if (vec->n == vec->cap) {
        size_t cap = vec->cap ? vec->cap * 2 : 64;
        int32_t *v = realloc(vec->v, cap * sizeof *v);
        if (!v) return is_error_oom("tokenizer buffer");
        vec->v = v;
        vec->cap = cap;
    }
    vec->v[vec->n++] = x;
    return NULL;
}

void is_i32vec_free(is_i32vec *vec) {
    free(vec->v);
    vec->v = NULL;
    vec->n = vec->cap = 0;
}

/* Length of the sequence starting at s[i] and its code point; 0 when invalid. */
static size_t decode_one(const unsigned char *s, size_t len, size_t i, int32_t *cp) {
    unsigned b0 = s[i];
    if (b0 < 0x80) {
        *cp = (int32_t)b0;
        return 1;
    }
    size_t need;
    int32_t c, min;
    if (b0 >= 0xC2 && b0 <= 0xDF) {
        need = 1, c = b0 & 0x1F, min = 0x80;
    } else if (b0 >= 0xE0 && b0 <= 0xEF) {
        need = 2, c = b0 & 0x0F, min = 0x800;
    } else if (b0 >= 0xF0 && b0 <= 0xF4) {
        need = 3, c = b0 & 0x07, min = 0x10000;
    } else {
        return 0; /* continuation byte, overlong 2-byte lead, or beyond U+10FFFF */
    }
    if (len - i - 1 < need) return 0;
    for (size_t k = 1; k <= need; k++) {
        unsigned b = s[i + k];
        if ((b & 0xC0) != 0x80) return 0;
        c = (c << 6) | (int32_t)(b & 0x3F);
    }
    if (c < min || c > 0x10FFFF || (c >= 0xD800 && c <= 0xDFFF)) return 0;
    *cp = c;
    return need + 1;
}

is_error *is_utf8_decode(const char *s, size_t len, is_i32vec *out) {
    const unsigned char *u = (const unsigned char *)s;
    for (size_t i = 0; i < len;) {
        int32_t cp;
        size_t k = decode_one(u, len, i, &cp);
        if (!k) return is_errorf(IS_E_ARGUMENT, "text is not valid UTF-8 (bad byte 0x%02X at offset %zu)", u[i], i);
        IS_TRY(is_i32vec_push(out, cp));
        i += k;
    }
    return NULL;
}

size_t is_utf8_put(int32_t cp, unsigned char *buf) {
    uint32_t c = (uint32_t)cp;
    if (c < 0x80) {
        buf[0] = (unsigned char)c;
        return 1;
    }
    if (c < 0x800) {
        buf[0] = (unsigned char)(0xC0 | (c >> 6));
        buf[1] = (unsigned char)(0x80 | (c & 0x3F));
        return 2;
    }
    if (c < 0x10000) {
        buf[0] = (unsigned char)(0xE0 | (c >> 12));
        buf[1] = (unsigned char)(0x80 | ((c >> 6) & 0x3F));
        buf[2] = (unsigned char)(0x80 | (c & 0x3F));
        return 3;
    }
    buf[0] = (unsigned char)(0xF0 | (c >> 18));
    buf[1] = (unsigned char)(0x80 | ((c >> 12) & 0x3F));
    buf[2] = (unsigned char)(0x80 | ((c >> 6) & 0x3F));
    buf[3] = (unsigned char)(0x80 | (c & 0x3F));
    return 4;
}
