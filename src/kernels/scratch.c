/* Scratch buffers that grow and are kept (see scratch.h). Each OS thread has its own set: a pipeline
 * generating on one thread (with its OpenMP team) never shares a buffer with a pipeline generating on
 * another, and a thread's buffers are freed when it exits. */
#include "kernels/scratch.h"

#include <omp.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "core/error.h"
#include "kernels/kernels.h"

typedef struct {
    float *p;
    size_t n; /* floats */
} buffer;

/* One thread's buffers: the "global" slots are used by the thread that calls the kernels, the
 * per-thread slots by every thread of its OpenMP team (each team member is a thread of its own). */
typedef struct {
    buffer global[IS_SCR_GLOBAL_COUNT];
    buffer thread[IS_SCR_THREAD_COUNT];
} thread_scratch;

static pthread_key_t g_key;
static pthread_once_t g_key_once = PTHREAD_ONCE_INIT;
static _Thread_local thread_scratch *t_scratch;

static void free_set(thread_scratch *s) {
    for (int i = 0; i < IS_SCR_GLOBAL_COUNT; i++) free(s->global[i].p), s->global[i] = (buffer){0};
    for (int i = 0; i < IS_SCR_THREAD_COUNT; i++) free(s->thread[i].p), s->thread[i] = (buffer){0};
}

static void on_thread_exit(void *p) {
    free_set(p);
    free(p);
}

static void make_key(void) { pthread_key_create(&g_key, on_thread_exit); }

/* The calling thread's set, created on first use; NULL when out of memory. */
static thread_scratch *mine(void) {
    if (t_scratch) return t_scratch;
    pthread_once(&g_key_once, make_key);
    thread_scratch *s = calloc(1, sizeof *s);
    if (!s || pthread_setspecific(g_key, s)) {
        free(s);
        return NULL;
    }
    return t_scratch = s;
}

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
    if (!b || grow(b, n)) {
        /* Kernels cannot return errors; callers avoid this path with is_kernels_reserve(). */
        fprintf(stderr, "instantstyle: out of memory growing kernel scratch to %.1f MiB "
                        "(call is_kernels_reserve() up front to get an error instead)\n",
                (double)n * sizeof(float) / (1 << 20));
        abort();
    }
    return b->p;
}

float *is_scratch(int slot, size_t nfloats) {
    thread_scratch *s = mine();
    return grow_or_die(s ? &s->global[slot] : NULL, nfloats);
}

float *is_scratch_thread(int slot, size_t nfloats) {
    thread_scratch *s = mine();
    return grow_or_die(s ? &s->thread[slot] : NULL, nfloats);
}

is_error *is_kernels_reserve(int64_t max_weight_numel) {
    if (max_weight_numel < 0) return is_errorf(IS_E_ARGUMENT, "is_kernels_reserve: negative weight size");
    thread_scratch *s = mine();
    if (!s || grow(&s->global[IS_SCR_WEIGHT], (size_t)max_weight_numel))
        return is_errorf(IS_E_NOMEM, "out of memory reserving %.1f MiB of kernel weight scratch",
                         (double)max_weight_numel * 4 / (1 << 20));
    const size_t need[IS_SCR_THREAD_COUNT] = {IS_SCR_PANEL_FLOATS, IS_SCR_TILE_FLOATS, IS_SCR_ACC_FLOATS,
                                              IS_SCR_STATS_FLOATS};
    int failed = 0;
    /* Every member of this thread's team reserves its own tiles. */
#pragma omp parallel reduction(| : failed)
    {
        thread_scratch *t = mine();
        for (int i = 0; i < IS_SCR_THREAD_COUNT; i++) failed |= !t || grow(&t->thread[i], need[i]);
    }
    if (failed) return is_errorf(IS_E_NOMEM, "out of memory reserving kernel tile scratch (%.1f MiB per thread)",
                                 (double)(need[0] + need[1] + need[2] + need[3]) * 4 / (1 << 20));
    return NULL;
}

static size_t set_bytes(const thread_scratch *s) {
    size_t n = 0;
    for (int i = 0; s && i < IS_SCR_GLOBAL_COUNT; i++) n += s->global[i].n;
    for (int i = 0; s && i < IS_SCR_THREAD_COUNT; i++) n += s->thread[i].n;
    return n * sizeof(float);
}

size_t is_kernels_scratch_bytes(void) {
    size_t n = set_bytes(t_scratch);
#pragma omp parallel reduction(+ : n)
    if (omp_get_thread_num() > 0) n += set_bytes(t_scratch);
    return n;
}

void is_kernels_release(void) {
#pragma omp parallel
    if (t_scratch) free_set(t_scratch);
}
