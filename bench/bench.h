/* Benchmark internals shared by the bench/ files. */
#ifndef IS_BENCH_H
#define IS_BENCH_H

#include <stdint.h>

#include "core/error.h"

double bench_now(void);                          /* monotonic seconds */
double bench_cpu_now(void);                      /* CPU seconds of this process (all threads) */
/* Best GFLOP/s of an n^3 sgemm on all threads; *cpu_gflops (if not NULL): best GFLOP per CPU-second. */
double bench_sgemm_ceiling(int64_t n, int reps, double *cpu_gflops);
void bench_micro(const char *filter); /* kernel micro-benchmark (labels containing filter; NULL = all) */

/* Write component `name` (unet, vae, text_encoder, text_encoder_2, image_encoder) of a random-weight
 * SDXL base 1.0-sized model into root/name (sdxl_model.c); present: config and weights exist. */
is_error *bench_write_component(const char *root, const char *name);
int bench_component_present(const char *root, const char *name);

#endif
