/* torch_rng golden group: raw mt19937 streams, torch.rand and torch.randn (scalar path with its cached
 * normal, 16-wide path with its tail rule), fresh and sequential generators -- all bit-exact. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "sample/torch_rng.h"

static const char *GROUP = "torch_rng";

/* Python int as decimal string -> uint64 (mod 2**64, negative = two's complement). */
static uint64_t parse_seed(const char *s) {
    if (s[0] == '-') return (uint64_t)strtoll(s, NULL, 10);
    return strtoull(s, NULL, 10);
}

static int64_t shape_numel(const cJSON *shape) {
    int64_t n = 1;
    const cJSON *d;
    cJSON_ArrayForEach(d, shape) n *= (int64_t)d->valuedouble;
    return n;
}

static void test_raw(const cJSON *c, is_st *st) {
    const cJSON *seeds = cJSON_GetObjectItem(c, "seeds");
    int n = cJSON_GetObjectItem(c, "n")->valueint;
    const cJSON *sd;
    cJSON_ArrayForEach(sd, seeds) {
        char name[64];
        snprintf(name, sizeof name, "u32_seed%s", sd->valuestring);
        const is_tensor *t = th_tensor(st, name);
        if (!t) continue;
        is_torch_rng g;
        is_torch_rng_seed(&g, parse_seed(sd->valuestring));
        const unsigned char *raw = t->data; /* may be unaligned */
        int bad = -1;
        for (int i = 0; i < n && i < t->numel; i++) {
            int64_t want;
            memcpy(&want, raw + (size_t)i * 8, 8);
            if ((int64_t)is_torch_rng_u32(&g) != want) {
                bad = i;
                break;
            }
        }
        th_check(t->numel == n && bad < 0, "mt19937_raw %s: first %d outputs (first mismatch %d)", name, n, bad);
    }
}

/* Run the case's ops and check the values and how many u32 each op consumed. */
static void test_ops(const cJSON *c, is_st *st) {
    const char *cname = cJSON_GetObjectItem(c, "name")->valuestring;
    int sequential = strcmp(cJSON_GetObjectItem(c, "mode")->valuestring, "sequential") == 0;
    uint64_t seed = parse_seed(cJSON_GetObjectItem(c, "seed")->valuestring);
    is_torch_rng g;
    is_torch_rng_seed(&g, seed);
    const cJSON *op;
    cJSON_ArrayForEach(op, cJSON_GetObjectItem(c, "ops")) {
        const char *kind = cJSON_GetObjectItem(op, "op")->valuestring;
        if (strcmp(kind, "manual_seed") == 0) {
            is_torch_rng_seed(&g, parse_seed(cJSON_GetObjectItem(op, "seed")->valuestring));
            continue;
        }
        if (!sequential) is_torch_rng_seed(&g, seed);
        const char *tname = cJSON_GetObjectItem(op, "tensor")->valuestring;
        int64_t n = shape_numel(cJSON_GetObjectItem(op, "shape"));
        float *out = malloc((size_t)n * sizeof *out);
        /* Consumption check: draw on a copy, then count how many u32 separate it from the original. */
        is_torch_rng before = g;
        if (strcmp(kind, "randn") == 0)
            is_torch_randn(&g, out, n);
        else
            is_torch_rand(&g, out, n);
        int64_t want = (int64_t)cJSON_GetObjectItem(op, "u32_consumed")->valuedouble;
        int64_t used = 0;
        while (used <= want + 32 && !(before.mti == g.mti && memcmp(before.mt, g.mt, sizeof g.mt) == 0)) {
            is_torch_rng_u32(&before);
            used++;
        }
        th_check(used == want, "%s/%s: consumed %lld u32, torch %lld", cname, tname, (long long)used,
                 (long long)want);
        const is_tensor *t = th_tensor(st, tname);
        if (t) {
            char what[160];
            snprintf(what, sizeof what, "%s/%s %s[%lld]", cname, tname, kind, (long long)n);
            double atol, rtol;
            th_tolerance(c, tname, &atol, &rtol);
            th_close(what, out, (size_t)n, t, atol, rtol);
            /* exact means bit for bit, signed zeros included */
            th_check(t->dtype == IS_DT_F32 && t->numel == n && memcmp(out, t->data, (size_t)n * 4) == 0,
                     "%s: bitwise identical", what);
        }
        free(out);
    }
}

static void test_seed_reduction(void) {
    /* Only the low 32 bits seed mt19937; the cache is per generator and manual_seed clears it. */
    is_torch_rng a, b;
    is_torch_rng_seed(&a, 7);
    is_torch_rng_seed(&b, 4294967303ull);
    th_check(is_torch_rng_u32(&a) == is_torch_rng_u32(&b), "seeds 7 and 2^32+7 give the same stream");
    is_torch_rng_seed(&a, 0);
    th_check(is_torch_rng_u32(&a) == 2357136044u && is_torch_rng_u32(&a) == 2546248239u, "seed 0 stream");
    float x[3];
    is_torch_rng_seed(&a, 1);
    is_torch_randn(&a, x, 1);
    th_check(a.has_next_normal == 1, "randn[1] leaves a cached normal");
    is_torch_rng_seed(&a, 1);
    th_check(a.has_next_normal == 0 && a.seed == 1, "manual_seed clears the cache");
    is_torch_randn(&a, x, 0); /* empty draw: no consumption, no crash */
    th_check(a.mti == 624, "empty draw consumes nothing");
}

int main(void) {
    cJSON *cases = th_load_cases(GROUP);
    if (cases) {
        const cJSON *c;
        cJSON_ArrayForEach(c, cJSON_GetObjectItem(cases, "cases")) {
            is_st *st = th_open_expected(GROUP, cJSON_GetObjectItem(c, "expected")->valuestring);
            if (!st) continue;
            const cJSON *kind = cJSON_GetObjectItem(c, "kind");
            if (kind && strcmp(kind->valuestring, "mt19937_raw") == 0)
                test_raw(c, st);
            else
                test_ops(c, st);
            is_st_close(st);
        }
        cJSON_Delete(cases);
    }
    test_seed_reduction();
    return th_done();
}
