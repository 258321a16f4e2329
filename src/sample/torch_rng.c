/* torch.Generator("cpu") + torch.randn / torch.rand in float32, bit-exact with PyTorch 1.13.1 on x86-64
 * (the AVX2 kernel set). See cases/torch_rng/README.md for the algorithm this file transcribes:
 * mt19937 seeded with the low 32 bits of the seed; < 16 normals: scalar double Box-Muller with a cached
 * second value kept in the generator; >= 16 normals: all uniforms first, then torch's 16-wide float
 * Box-Muller (avx_mathfun.h log/sincos, evaluated lane by lane with the same fused multiply-adds). */
#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF
#elif defined(__GNUC__)
#pragma GCC optimize("fp-contract=off") /* the fmaf calls below are the only fusions allowed */
#endif

#include <math.h>
#include <string.h>

#include "sample/torch_rng.h"

#define MT_N 624
#define MT_M 397

void is_torch_rng_seed(is_torch_rng *g, uint64_t seed) {
    memset(g, 0, sizeof *g);
    g->seed = seed;
    uint32_t s = (uint32_t)(seed & 0xFFFFFFFFu); /* torch seeds mt19937 with the low 32 bits only */
    g->mt[0] = s;
    for (int i = 1; i < MT_N; i++)
        g->mt[i] = 1812433253u * (g->mt[i - 1] ^ (g->mt[i - 1] >> 30)) + (uint32_t)i;
    g->mti = MT_N; /* the first draw regenerates the whole state */
    g->has_next_normal = 0;
    g->next_normal = 0.0;
}

static void mt_twist(uint32_t *st) {
    for (int i = 0; i < MT_N; i++) {
        uint32_t y = (st[i] & 0x80000000u) | (st[(i + 1) % MT_N] & 0x7FFFFFFFu);
        st[i] = st[(i + MT_M) % MT_N] ^ (y >> 1) ^ ((y & 1u) ? 0x9908B0DFu : 0u);
    }
}

uint32_t is_torch_rng_u32(is_torch_rng *g) {
    if (g->mti >= MT_N) {
        mt_twist(g->mt);
        g->mti = 0;
    }
    uint32_t y = g->mt[g->mti++];
    y ^= y >> 11;
    y ^= (y << 7) & 0x9D2C5680u;
    y ^= (y << 15) & 0xEFC60000u;
    y ^= y >> 18;
    return y;
}

/* 24-bit float uniform in [0, 1). */
static float uniform_f32(is_torch_rng *g) { return (float)(is_torch_rng_u32(g) & 0xFFFFFFu) * 0x1p-24f; }

/* 53-bit double uniform in [0, 1) from random64() = first << 32 | second. */
static double uniform_f64(is_torch_rng *g) {
    uint64_t hi = is_torch_rng_u32(g);
    uint64_t lo = is_torch_rng_u32(g);
    uint64_t r = (hi << 32) | lo;
    return (double)(r & ((1ull << 53) - 1)) * 0x1p-53;
}

void is_torch_rand(is_torch_rng *g, float *out, int64_t n) {
    for (int64_t i = 0; i < n; i++) out[i] = uniform_f32(g);
}

static float f32_from_bits(uint32_t b) {
    float f;
    memcpy(&f, &b, 4);
    return f;
}

static uint32_t bits_from_f32(float f) {
    uint32_t b;
    memcpy(&b, &f, 4);
    return b;
}

/* log256_ps for one lane, u in [2^-24, 1]. */
static float avx_log(float u) {
    static const uint32_t P[9] = {0x3D9021BB, 0xBDEBD1B8, 0x3DEF251A, 0xBDFE5D4F, 0x3E11E9BF,
                                  0xBE2AAE50, 0x3E4CCEAC, 0xBE7FFFFC, 0x3EAAAAAA};
    const float sqrthf = f32_from_bits(0x3F3504F3), q1 = f32_from_bits(0xB95E8083),
                q2 = f32_from_bits(0x3F318000);
    uint32_t bits = bits_from_f32(u);
    float e = (float)((int)(bits >> 23) - 127) + 1.0f;
    float m = f32_from_bits((bits & 0x807FFFFFu) | 0x3F000000u);
    float x = m + (-1.0f);
    if (m < sqrthf) {
        e = e - 1.0f;
        x = m + x;
    }
    float y = f32_from_bits(P[0]);
    for (int k = 1; k < 9; k++) y = fmaf(y, x, f32_from_bits(P[k]));
    float z = x * x;
    y = y * x;
    float eq1 = e * q1;
    y = fmaf(y, z, eq1);
    y = fmaf(-z, 0.5f, y);
    x = x + y;
    return fmaf(e, q2, x);
}

/* sincos256_ps for one lane, a in [0, 2*pi). */
static void avx_sincos(float a, float *sin_out, float *cos_out) {
    const float fopi = f32_from_bits(0x3FA2F983);
    const float mdp1 = f32_from_bits(0xBF490000), mdp2 = f32_from_bits(0xB97DA000),
                mdp3 = f32_from_bits(0xB3222169);
    const float c0 = f32_from_bits(0x37CCF5CE), c1 = f32_from_bits(0xBAB6061A), c2 = f32_from_bits(0x3D2AAAA5);
    const float s0 = f32_from_bits(0xB94CA1F9), s1 = f32_from_bits(0x3C08839E), s2 = f32_from_bits(0xBE2AAAA3);
    float y = a * fopi;
    int j = (int)y;
    j = (j + 1) & ~1;
    float yf = (float)j;
    float x = fmaf(yf, mdp1, a);
    x = fmaf(yf, mdp2, x);
    x = fmaf(yf, mdp3, x);
    float z = x * x;
    float half_z = 0.5f * z;
    float c = fmaf(c0, z, c1);
    c = fmaf(c, z, c2);
    c = c * z;
    c = fmaf(c, z, -half_z);
    c = c + 1.0f;
    float s = fmaf(s0, z, s1);
    s = fmaf(s, z, s2);
    s = s * z;
    s = fmaf(s, x, x);
    float sr, cr;
    if (j & 2) {
        sr = c;
        cr = s;
    } else {
        sr = s;
        cr = c;
    }
    if (j & 4) sr = -sr;
    if (((j - 2) & 4) == 0) cr = -cr;
    *sin_out = sr;
    *cos_out = cr;
}

/* normal_fill_16_AVX2: pairs p[j] with p[j+8]. */
static void block16(float *p) {
    const float two_pi = f32_from_bits(0x40C90FDB);
    for (int j = 0; j < 8; j++) {
        float u1 = 1.0f - p[j];
        float u2 = p[j + 8];
        float radius = sqrtf(-2.0f * avx_log(u1));
        float theta = two_pi * u2;
        float s, c;
        avx_sincos(theta, &s, &c);
        float a = radius * c, b = radius * s;
        p[j] = a + 0.0f; /* fma(x, std=1, mean=0): turns -0 into +0 */
        p[j + 8] = b + 0.0f;
    }
}

static float scalar_normal(is_torch_rng *g) {
    double v;
    if (g->has_next_normal) {
        v = g->next_normal;
        g->has_next_normal = 0;
    } else {
        double u1 = uniform_f64(g), u2 = uniform_f64(g);
        double r = sqrt(-2.0 * log(1.0 - u2));
        double th = (2.0 * 3.141592653589793) * u1;
        g->next_normal = r * sin(th);
        g->has_next_normal = 1;
        v = r * cos(th);
    }
    return (float)(v * 1.0 + 0.0);
}

void is_torch_randn(is_torch_rng *g, float *out, int64_t n) {
    if (n <= 0) return;
    if (n < 16) {
        for (int64_t i = 0; i < n; i++) out[i] = scalar_normal(g);
        return;
    }
    for (int64_t i = 0; i < n; i++) out[i] = uniform_f32(g); /* all uniforms first */
    for (int64_t i = 0; i + 16 <= n; i += 16) block16(out + i);
    if (n % 16) { /* tail: 16 fresh uniforms transformed over the last 16 slots */
        float *tail = out + n - 16;
        for (int k = 0; k < 16; k++) tail[k] = uniform_f32(g);
        block16(tail);
    }
}
