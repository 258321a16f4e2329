/* The bf16 convolutions' layout changes around oneDNN: channel-major f32 rows into the channels-last bf16
 * input ([C][X] -> [X][C], rounded), and the channels-last f32 output back into channel-major maps ([X][C]
 * -> [C][X], written or added). Element by element one side is read or written with a stride of C (the
 * two were 14% of a 1024x1024 bf16 VAE decode); with AVX-512, 16x16 tiles are transposed in registers
 * (four rounds of swapping the off-diagonal blocks of size 8, 4, 2, 1), so every load and store is
 * contiguous. On the way in, the convolution's prologue (GroupNorm's per-channel affine, SiLU) is applied
 * to each tile row as it is loaded, with vmath.c's arithmetic on 16 lanes, so the f32 map is read once and
 * no f32 copy is written. Same values either way: a copy, one f32 add, or the prologue and is_f32_to_bf16's
 * rounding per element. */
#include <immintrin.h>
#include <string.h>

#include "kernels/bf16.h"
#include "kernels/bf16_avx512.h"
#include "kernels/vmath.h"
#include "kernels/vmath_avx512.h"

#define AVX512 IS_AVX512_TARGET

static void transpose_add_plain(float *out, int64_t ldo, const float *in, int64_t ldi, int64_t X, int64_t C,
                                int accumulate) {
    for (int64_t c = 0; c < C; c++) {
        float *o = out + c * ldo;
        const float *s = in + c;
        if (accumulate)
            for (int64_t x = 0; x < X; x++) o[x] += s[x * ldi];
        else
            for (int64_t x = 0; x < X; x++) o[x] = s[x * ldi];
    }
}

/* r[0..16) = the rows of a 16x16 tile, transposed in place. Round b (8, 4, 2, 1) swaps, in every 2b x 2b
 * block, the b x b blocks above and below the diagonal: for each row i with bit b clear, lane j of row i
 * takes row i+b's lane j-b where bit b of j is set (SWAP_IDX[.][0]: indices >= 16 pick from row i+b), and
 * row i+b takes row i's lane j+b where it is clear (SWAP_IDX[.][1]). */
static const int SWAP_IDX[4][2][16] = {
    {{0, 1, 2, 3, 4, 5, 6, 7, 16, 17, 18, 19, 20, 21, 22, 23},
     {8, 9, 10, 11, 12, 13, 14, 15, 24, 25, 26, 27, 28, 29, 30, 31}}, /* b = 8 */
    {{0, 1, 2, 3, 16, 17, 18, 19, 8, 9, 10, 11, 24, 25, 26, 27},
     {4, 5, 6, 7, 20, 21, 22, 23, 12, 13, 14, 15, 28, 29, 30, 31}}, /* b = 4 */
    {{0, 1, 16, 17, 4, 5, 20, 21, 8, 9, 24, 25, 12, 13, 28, 29},
     {2, 3, 18, 19, 6, 7, 22, 23, 10, 11, 26, 27, 14, 15, 30, 31}}, /* b = 2 */
    {{0, 16, 2, 18, 4, 20, 6, 22, 8, 24, 10, 26, 12, 28, 14, 30},
     {1, 17, 3, 19, 5, 21, 7, 23, 9, 25, 11, 27, 13, 29, 15, 31}}, /* b = 1 */
};

AVX512 static inline void transpose16(__m512 *r) {
    for (int s = 0, b = 8; s < 4; s++, b /= 2) {
        __m512i ilo = _mm512_loadu_si512(SWAP_IDX[s][0]), ihi = _mm512_loadu_si512(SWAP_IDX[s][1]);
        for (int i = 0; i < 16; i++) {
            if (i & b) continue;
            __m512 a = r[i], c = r[i + b];
            r[i] = _mm512_permutex2var_ps(a, ilo, c);
            r[i + b] = _mm512_permutex2var_ps(a, ihi, c);
        }
    }
}

AVX512 static void transpose_add_avx512(float *out, int64_t ldo, const float *in, int64_t ldi, int64_t X, int64_t C,
                                        int accumulate) {
    int64_t C16 = C / 16 * 16, X16 = X / 16 * 16;
    for (int64_t c0 = 0; c0 < C16; c0 += 16)
        for (int64_t x0 = 0; x0 < X16; x0 += 16) {
            __m512 r[16];
            for (int i = 0; i < 16; i++) r[i] = _mm512_loadu_ps(in + (x0 + i) * ldi + c0);
            transpose16(r);
            for (int j = 0; j < 16; j++) {
                float *o = out + (c0 + j) * ldo + x0;
                _mm512_storeu_ps(o, accumulate ? _mm512_add_ps(_mm512_loadu_ps(o), r[j]) : r[j]);
            }
        }
    /* the tails: columns past the last full tile, then channels past the last full block */
    if (X16 < X) transpose_add_plain(out + X16, ldo, in + X16 * ldi, ldi, X - X16, C16, accumulate);
    if (C16 < C) transpose_add_plain(out + C16 * ldo, ldo, in + C16, ldi, X, C - C16, accumulate);
}

/* One channel's prologue on n values: vmath.c's loops, whose bits the AVX-512 tiles reproduce. */
static void prologue_row(float *y, const float *x, int64_t n, const float *scale, const float *shift, int64_t c,
                         int silu) {
    if (scale)
        is_v_affine(y, x, n, scale[c], shift[c], silu);
    else if (silu)
        is_v_silu(y, x, n);
    else
        memcpy(y, x, (size_t)n * sizeof(float));
}

static void transpose_to_bf16_plain(uint16_t *out, int64_t ldo, const float *in, int64_t ldi, int64_t X, int64_t C,
                                    const float *scale, const float *shift, int silu) {
    float buf[256];
    for (int64_t c = 0; c < C; c++)
        for (int64_t x0 = 0; x0 < X; x0 += 256) {
            int64_t n = X - x0 < 256 ? X - x0 : 256;
            prologue_row(buf, in + c * ldi + x0, n, scale, shift, c, silu);
            for (int64_t i = 0; i < n; i++) out[(x0 + i) * ldo + c] = is_f32_to_bf16(buf[i]);
        }
}

AVX512 static void transpose_to_bf16_avx512(uint16_t *out, int64_t ldo, const float *in, int64_t ldi, int64_t X,
                                            int64_t C, const float *scale, const float *shift, int silu) {
    int64_t C16 = C / 16 * 16, X16 = X / 16 * 16;
    for (int64_t c0 = 0; c0 < C16; c0 += 16)
        for (int64_t x0 = 0; x0 < X16; x0 += 16) {
            __m512 r[16];
            for (int j = 0; j < 16; j++) {
                __m512 v = _mm512_loadu_ps(in + (c0 + j) * ldi + x0);
                if (scale) v = _mm512_fmadd_ps(v, _mm512_set1_ps(scale[c0 + j]), _mm512_set1_ps(shift[c0 + j]));
                r[j] = silu ? is_silu16(v) : v;
            }
            transpose16(r);
            for (int i = 0; i < 16; i++) _mm256_storeu_si256((__m256i *)(out + (x0 + i) * ldo + c0), is_bf16x16_any(r[i]));
        }
    if (X16 < X) transpose_to_bf16_plain(out + X16 * ldo, ldo, in + X16, ldi, X - X16, C16, scale, shift, silu);
    if (C16 < C)
        transpose_to_bf16_plain(out + C16, ldo, in + C16 * ldi, ldi, X, C - C16, scale ? scale + C16 : NULL,
                                shift ? shift + C16 : NULL, silu);
}

static int has_avx512(void) {
    return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
           __builtin_cpu_supports("avx512vl");
}

int is_v_transpose_add_variant(float *out, int64_t ldo, const float *in, int64_t ldi, int64_t X, int64_t C,
                               int accumulate, int variant) {
    if (variant == IS_V_ROW_PORTABLE) {
        transpose_add_plain(out, ldo, in, ldi, X, C, accumulate);
        return 0;
    }
    if (variant != IS_V_ROW_AVX512 || !has_avx512()) return -1;
    transpose_add_avx512(out, ldo, in, ldi, X, C, accumulate);
    return 0;
}

void is_v_transpose_add(float *out, int64_t ldo, const float *in, int64_t ldi, int64_t X, int64_t C, int accumulate) {
    if (has_avx512())
        transpose_add_avx512(out, ldo, in, ldi, X, C, accumulate);
    else
        transpose_add_plain(out, ldo, in, ldi, X, C, accumulate);
}

int is_v_transpose_to_bf16_variant(uint16_t *out, int64_t ldo, const float *in, int64_t ldi, int64_t X, int64_t C,
                                   const float *scale, const float *shift, int silu, int variant) {
    if (variant == IS_V_ROW_PORTABLE) {
        transpose_to_bf16_plain(out, ldo, in, ldi, X, C, scale, shift, silu);
        return 0;
    }
    if (variant != IS_V_ROW_AVX512 || !has_avx512()) return -1;
    transpose_to_bf16_avx512(out, ldo, in, ldi, X, C, scale, shift, silu);
    return 0;
}

void is_v_transpose_to_bf16(uint16_t *out, int64_t ldo, const float *in, int64_t ldi, int64_t X, int64_t C,
                            const float *scale, const float *shift, int silu) {
    if (has_avx512())
        transpose_to_bf16_avx512(out, ldo, in, ldi, X, C, scale, shift, silu);
    else
        transpose_to_bf16_plain(out, ldo, in, ldi, X, C, scale, shift, silu);
}
