/* Scratch buffers that grow and are kept (see scratch.h). */
#include "kernels/scratch.h"

#include <omp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "core/error.h"
#include "kernels/kernels.h"

typedef struct {
    float *p;
    size_t n; /* floats */
} buffer;

static buffer g_global[IS_SCR_GLOBAL_COUNT];
static buffer g_thread[IS_SCRATCH_MAX_THREADS][IS_SCR_THREAD_COUNT];

/* Grow b to hold n floats; returns 0 on success (contents are not kept). */
static int grow(buffer *b, size_t n) {
    if (b->n >= n) return 0;
    if (n > SIZE_MAX / 8) return -1;
    size_t bytes = ((n * sizeof(float) + 63) / 64) * 64;
    free(b->p);
    b->p = aligned_alloc(64, bytes);
    b->n = b->p ? bytes / sizeof(float) : 0;
    return b->p ? 0 : -1;
}

static float *grow_or_die(buffer *b, size_t n) {
    if (grow(b, n)) {
        /* Kernels cannot return errors; callers avoid this path with is_kernels_reserve(). */
        fprintf(stderr, "instantstyle: out of memory growing kernel scratch to %.1f MiB "
                        "(call is_kernels_reserve() up front to get an error instead)\n",
                (double)n * sizeof(float) / (1 << 20));
        abort();
    }
    return b->p;
}

float *is_scratch(int slot, size_t nfloats) { return grow_or_die(&g_global[slot], nfloats); }

float *is_scratch_thread(int slot, size_t nfloats) {
    int t = omp_get_thread_num();
    if (t >= IS_SCRATCH_MAX_THREADS) abort();
    return grow_or_die(&g_thread[t][slot], nfloats);
}

is_error *is_kernels_reserve(int64_t max_weight_numel) {
    if (max_weight_numel < 0) return is_errorf(IS_E_ARGUMENT, "is_kernels_reserve: negative weight size");
    if (grow(&g_global[IS_SCR_WEIGHT], (size_t)max_weight_numel))
        return is_errorf(IS_E_NOMEM, "out of memory reserving %.1f MiB of kernel weight scratch",
                         (double)max_weight_numel * 4 / (1 << 20));
    int threads = omp_get_max_threads();
    if (threads > IS_SCRATCH_MAX_THREADS) threads = IS_SCRATCH_MAX_THREADS;
    const size_t need[IS_SCR_THREAD_COUNT] = {IS_SCR_PANEL_FLOATS, IS_SCR_TILE_FLOATS, IS_SCR_ACC_FLOATS,
                                              IS_SCR_STATS_FLOATS};
    for (int t = 0; t < threads; t++)
        for (int s = 0; s < IS_SCR_THREAD_COUNT; s++)
            if (grow(&g_thread[t][s], need[s]))
                return is_errorf(IS_E_NOMEM, "out of memory reserving %.1f MiB of kernel tile scratch",
                                 (double)need[s] * 4 / (1 << 20));
    return NULL;
}

size_t is_kernels_scratch_bytes(void) {
    size_t n = 0;
    for (int s = 0; s < IS_SCR_GLOBAL_COUNT; s++) n += g_global[s].n;
    for (int t = 0; t < IS_SCRATCH_MAX_THREADS; t++)
        for (int s = 0; s < IS_SCR_THREAD_COUNT; s++) n += g_thread[t][s].n;
    return n * sizeof(float);
}

void is_kernels_release(void) {
    for (int s = 0; s < IS_SCR_GLOBAL_COUNT; s++) free(g_global[s].p), g_global[s] = (buffer){0};
    for (int t = 0; t < IS_SCRATCH_MAX_THREADS; t++)
        for (int s = 0; s < IS_SCR_THREAD_COUNT; s++) free(g_thread[t][s].p), g_thread[t][s] = (buffer){0};
}
