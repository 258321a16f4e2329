/* How the f32 kernels split work across threads without the thread count changing a result.
 * Internal to src/kernels. */
#ifndef IS_KERNELS_SPLIT_H
#define IS_KERNELS_SPLIT_H

/* Where a piece of a product ends can decide how OpenBLAS rounds an element (its edge kernels, and
 * all of its AVX2 kernels, round differently), so work split by the real thread count made --threads 1
 * and 2 differ in the last bit. Split for this many threads instead (8 keeps 1, 2, 4 and 8 balanced). */
#define IS_SPLIT_THREADS 8
/* The thread count to split a product or convolution for: the real one where OpenBLAS's kernels give
 * the same bits however the work is split (its AVX-512 ones), IS_SPLIT_THREADS elsewhere (gemm.c). */
int is_k_split_threads(void);

#endif
