/* Benchmark internals shared by the bench/ files. */
#ifndef IS_BENCH_H
#define IS_BENCH_H

#include <stdint.h>

#include "core/error.h"
#include "instantstyle.h"

double bench_now(void);                          /* monotonic seconds */
double bench_cpu_now(void);                      /* CPU seconds of this process (all threads) */
/* Best GFLOP/s of an n^3 sgemm on all threads; *cpu_gflops (if not NULL): best GFLOP per CPU-second. */
double bench_sgemm_ceiling(int64_t n, int reps, double *cpu_gflops);
/* Kernel micro-benchmark (labels containing filter; NULL = all). bf16: each matrix product,
 * convolution and attention row is followed by its bf16 row (is_dnn_*, kernels/dnn.h). */
void bench_micro(const char *filter, int bf16);
/* --only tokenizer (tokenizer_bench.c): long inputs through is_tokenizer_encode with the CLIP tokenizer
 * in dir; 0 on success. */
int bench_tokenizer(const char *dir);

/* ---- bf16 ceiling (ceiling_bf16.c): oneDNN bf16 matmul 8192x640x5760 and 3x3 convolution
 * 2x640x64x64 -> 640, all threads, best of reps. Plain data: it travels through the result pipe. */
typedef struct {
    double matmul, conv;         /* best wall GFLOP/s (0: not measured, see msg) */
    double matmul_cpu, conv_cpu; /* best GFLOP per CPU-second */
    char matmul_impl[64], conv_impl[64]; /* oneDNN's implementation strings */
    char isa[32];                /* oneDNN's effective ISA */
    char version[32];
    char msg[200];               /* why a ceiling could not be measured */
} bench_bf16_ceiling;
int bench_bf16_ceiling_measure(int reps, bench_bf16_ceiling *out); /* 0, or -1 with out->msg */
void bench_bf16_ceiling_print(const bench_bf16_ceiling *c, int threads);
const char *bench_dnnl_isa_name(void);

/* ---- this machine (cpu_env.c) */
typedef struct {
    char model[128];
    int family, model_id;
    int avx2, avx512f, avx512_bf16, amx_bf16;
} bench_cpu;
void bench_cpu_detect(bench_cpu *c);
/* Prints the CPU's vector extensions, the OpenBLAS build and core, and a WARNING line when
 * OpenBLAS picked kernels below what the CPU runs (e.g. its generic "Prescott" ones on a CPU it
 * does not know), naming the OPENBLAS_CORETYPE that fits. Sets nothing. */
void bench_print_cpu_and_blas(const bench_cpu *c);

/* ---- accuracy of bf16 against f32 on the real-size model (accuracy.c) */
typedef struct {
    int done;
    double rel_l2;      /* ||bf16 - f32|| / ||f32|| */
    double max_abs;     /* max |bf16 - f32| */
    double ref_max;     /* max |f32|, for scale */
    double f32_s, bf16_s, pack_s;
    double psnr;        /* generation: of the 8-bit bf16 image against the f32 one (dB; inf: identical) */
    int64_t n;
} bench_acc_metric;
typedef struct {
    bench_acc_metric unet, vae, gen;
    int size, gen_steps;
    char precision_why[160]; /* is_precision_resolve's reason for BF16 */
} bench_accuracy;
/* dir: the model folder (unet/, vae/, ip-adapter/, and for steps > 0 the whole pipeline);
 * size: pixels (512); steps > 0: also a whole is_generate in both precisions. */
is_error *bench_accuracy_run(const char *dir, int size, int steps, const char *style_image, bench_accuracy *out);
void bench_accuracy_print(const bench_accuracy *a);

/* Write component `name` (unet, vae, text_encoder, text_encoder_2, image_encoder) of a random-weight
 * SDXL base 1.0-sized model into root/name (sdxl_model.c); present: config and weights exist. */
is_error *bench_write_component(const char *root, const char *name);
int bench_component_present(const char *root, const char *name);

#endif
