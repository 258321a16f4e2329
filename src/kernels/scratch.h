/* Reusable scratch memory for the kernels: buffers grow on demand and are kept for the next call,
 * so a network's sampling loop does not allocate. Each OS thread has its own set of both kinds:
 * "global" slots are used outside OpenMP regions, per-thread slots inside them. Growing aborts with a message if memory
 * runs out; is_kernels_reserve() (kernels.h) lets callers allocate up front and get an error instead.
 * Internal to src/kernels. */
#ifndef IS_KERNELS_SCRATCH_H
#define IS_KERNELS_SCRATCH_H

#include <stddef.h>

#include "core/tensor.h"

enum { IS_SCR_WEIGHT, IS_SCR_BIAS, IS_SCR_NORM, IS_SCR_GLOBAL_COUNT }; /* global slots */
enum { IS_SCR_T_PANEL, IS_SCR_T_TILE, IS_SCR_T_ACC, IS_SCR_T_STATS, IS_SCR_THREAD_COUNT }; /* per thread */

/* Per-thread tile sizes (floats) the kernels stay within for the usual shapes; is_kernels_reserve()
 * allocates these for every thread. */
#define IS_SCR_PANEL_FLOATS ((size_t)1 << 20) /* linear: a panel of weight rows converted to f32 */
#define IS_SCR_TILE_FLOATS ((size_t)4 << 20)  /* conv: im2col tile; attention: score tile */
#define IS_SCR_ACC_FLOATS ((size_t)1 << 17)   /* attention: output accumulator (rows x head dim) */
#define IS_SCR_STATS_FLOATS ((size_t)1 << 12) /* attention: running max and sum per row */

/* At least nfloats floats, 64-byte aligned, contents undefined. */
float *is_scratch(int slot, size_t nfloats);
/* The calling OpenMP thread's buffer. */
float *is_scratch_thread(int slot, size_t nfloats);

/* Convert n elements of weight t (from element `first`) to f32 into dst, in parallel (gemm.c). */
void is_k_convert_parallel(const is_tensor *t, size_t first, size_t n, float *dst);

#endif
