/* Seeded random tensors for the tiny model, collected into a safetensors writer. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/fileio.h"
#include "kernels/bf16.h"
#include "tiny/tiny_model.h"

/* splitmix64: tiny, well-mixed, and the same on every platform. */
static uint64_t next_u64(uint64_t *s) {
    uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

/* Uniform in (0, 1): 53 random bits, never 0 (Box-Muller takes its log). */
static double next_unit(uint64_t *s) { return ((double)(next_u64(s) >> 11) + 0.5) * (1.0 / 9007199254740992.0); }

static uint64_t fnv1a(const char *text) {
    uint64_t h = 0xCBF29CE484222325ull;
    for (const unsigned char *p = (const unsigned char *)text; *p; p++) h = (h ^ *p) * 0x100000001B3ull;
    return h;
}

void tm_weights_init(tm_weights *g, is_dtype dtype, uint64_t seed, const char *stream) {
    memset(g, 0, sizeof *g);
    g->dtype = dtype;
    g->rng = seed ^ fnv1a(stream);
    next_u64(&g->rng);
    g->std = 0.02f; /* CLIP's initializer_range: activations stay small and finite */
    g->w = is_st_writer_new();
    if (!g->w) g->err = is_error_oom("safetensors writer");
}

static int make_room(tm_weights *g, size_t n) {
    if (n <= g->cap) return 1;
    float *buf = realloc(g->buf, n * sizeof *buf);
    if (buf) g->buf = buf;
    void *cast = buf ? realloc(g->cast, n * sizeof(double)) : NULL; /* the widest stored dtype */
    if (cast) g->cast = cast;
    if (!buf || !cast) {
        g->err = is_error_oom("tiny model tensor");
        return 0;
    }
    g->cap = n;
    return 1;
}

/* Store g->buf[0..n) as tensor `name` in the file's dtype. */
static void add_tensor(tm_weights *g, const char *name, int ndim, const int64_t *shape, size_t n) {
    const void *data = g->buf;
    if (g->dtype == IS_DT_F16) {
        uint16_t *h = g->cast;
        for (size_t i = 0; i < n; i++) h[i] = is_f32_to_f16(g->buf[i]);
        data = h;
    } else if (g->dtype == IS_DT_BF16) {
        uint16_t *h = g->cast;
        for (size_t i = 0; i < n; i++) h[i] = is_f32_to_bf16(g->buf[i]);
        data = h;
    } else if (g->dtype == IS_DT_F64) {
        double *d = g->cast;
        for (size_t i = 0; i < n; i++) d[i] = g->buf[i];
        data = d;
    } else if (g->dtype != IS_DT_F32) {
        g->err = is_errorf(IS_E_INTERNAL, "tiny model: tensor '%s': unsupported dtype %s", name,
                           is_dtype_name(g->dtype));
        return;
    }
    g->err = is_st_writer_add(g->w, name, g->dtype, ndim, shape, data);
}

/* Fill g->buf with numel(shape) values (random when value is NAN), then add tensor "prefix.leaf". */
static void emit(tm_weights *g, const char *prefix, const char *leaf, float value, int ndim,
                 const int64_t *shape) {
    if (g->err) return;
    char name[512];
    int len = snprintf(name, sizeof name, "%s%s%s", prefix, *prefix ? "." : "", leaf);
    if (len < 0 || (size_t)len >= sizeof name) {
        g->err = is_errorf(IS_E_INTERNAL, "tiny model: tensor name too long: %s.%s", prefix, leaf);
        return;
    }
    size_t n = 1;
    for (int i = 0; i < ndim; i++) n *= (size_t)shape[i];
    if (!make_room(g, n)) return;
    if (isnan(value)) {
        for (size_t i = 0; i < n; i += 2) { /* Box-Muller: two normals per pair of uniforms */
            double r = sqrt(-2.0 * log(next_unit(&g->rng))), a = 2.0 * M_PI * next_unit(&g->rng);
            g->buf[i] = (float)(g->std * r * cos(a));
            if (i + 1 < n) g->buf[i + 1] = (float)(g->std * r * sin(a));
        }
    } else {
        for (size_t i = 0; i < n; i++) g->buf[i] = value;
    }
    add_tensor(g, name, ndim, shape, n);
}

void tm_random(tm_weights *g, const char *prefix, const char *leaf, int ndim, const int64_t *shape) {
    emit(g, prefix, leaf, NAN, ndim, shape);
}

void tm_constant(tm_weights *g, const char *prefix, const char *leaf, float value, int ndim,
                 const int64_t *shape) {
    emit(g, prefix, leaf, value, ndim, shape);
}

/* "prefix.leaf" into buf, so modules can append ".weight" / ".bias". */
static const char *module(char *buf, size_t cap, const char *prefix, const char *leaf) {
    snprintf(buf, cap, "%s%s%s", prefix, *prefix ? "." : "", leaf);
    return buf;
}

void tm_linear(tm_weights *g, const char *prefix, const char *leaf, int64_t out, int64_t in, int bias) {
    char m[512];
    module(m, sizeof m, prefix, leaf);
    int64_t w[2] = {out, in};
    tm_random(g, m, "weight", 2, w);
    if (bias) tm_constant(g, m, "bias", 0.0f, 1, &out);
}

void tm_conv(tm_weights *g, const char *prefix, const char *leaf, int64_t out, int64_t in, int64_t k) {
    char m[512];
    module(m, sizeof m, prefix, leaf);
    int64_t w[4] = {out, in, k, k};
    tm_random(g, m, "weight", 4, w);
    tm_constant(g, m, "bias", 0.0f, 1, &out);
}

void tm_norm(tm_weights *g, const char *prefix, const char *leaf, int64_t n) {
    char m[512];
    module(m, sizeof m, prefix, leaf);
    tm_constant(g, m, "weight", 1.0f, 1, &n);
    tm_constant(g, m, "bias", 0.0f, 1, &n);
}

is_error *tm_weights_finish(tm_weights *g, const char *dir, const char *name) {
    is_error *err = g->err;
    char *path = is_path_join(dir, name);
    if (!err && !path) err = is_error_oom(name);
    if (!err) err = is_st_writer_set_metadata(g->w, "format", "pt");
    if (!err) err = is_st_writer_save(g->w, path);
    is_st_writer_free(g->w);
    free(g->buf);
    free(g->cast);
    memset(g, 0, sizeof *g);
    err = err ? is_error_wrap(err, "writing %s/%s", dir, name) : NULL;
    free(path);
    return err;
}
