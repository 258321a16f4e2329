/* Benchmark internals shared by the bench/ files. */
#ifndef IS_BENCH_H
#define IS_BENCH_H

#include <stdint.h>

#include "core/error.h"
#include "instantstyle.h"

double bench_now(void);                          /* monotonic seconds */
/* Run this program again with args (args[0] its name; NULL-terminated) and wait: 0 when it exited with 0. */
int bench_run_self(char **args);
/* n pseudo-random values in [-scale, scale) from seed (the same every run). */
void bench_random_fill(float *x, int64_t n, float scale, uint32_t seed);
/* One UNet CFG evaluation (batch 2, 77 text tokens, random inputs) at size x size pixels, after one unmeasured
 * warm-up when asked, then repeat measured runs: wall and CPU seconds of the fastest, GFLOP, whether the
 * output is finite. */
is_error *bench_unet_eval(is_unet *u, int size, int warmup, int repeat, double *seconds, double *cpu_s, double *gflop,
                          int *finite);
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

/* ---- LoRA: merged into the weights (is_unet_set_loras) against a run-time low-rank side product
 * (lora_bench.c). Plain data: it travels through the result pipe. GiB for memory. */
typedef struct {
    int rank, modules, n_linear, n_conv, bf16;
    double file_bytes;        /* the LoRA file (f16) */
    double patched_f32_bytes; /* the weights it patches, as f32 (what merging in f32 copies) */
    double load_s, set_s;     /* is_unet_load + set_precision; is_unet_set_loras */
    double rss_loaded, peak_loaded, rss_after, peak_set; /* before / after set_loras; peak during it */
    int eval_size;            /* one UNet CFG evaluation (batch 2) with the LoRA merged: 1024 bf16, 512 f32 */
    double eval_s, eval_gflop, rss_eval, peak_eval;
    int n_side, side_size[2]; /* the side product at these sizes (the eval's; f32 also 1024) */
    double side_s[2], side_gflop[2], side_packed_bytes;
    double set_cpu_s, eval_cpu_s, side_cpu_s[2]; /* CPU seconds (all threads): wall x cores each really got */
    double side_kind_s[2][2], side_conv_gflop[2]; /* per size: seconds of the linear [0] and conv [1] modules */
    int64_t side_fallbacks;   /* bf16 side-product operations that ran in f32 */
} bench_lora;
/* dir/lora_full_r<rank>.safetensors */
void bench_lora_path(const char *dir, int rank, char *buf, size_t cap);
/* Writes it (PEFT names, f16, values in +-0.01): a lora_A/lora_B pair for every 2-D and 4-D weight of dir/unet
 * under down_blocks., mid_block., up_blocks. (is_bench --write-lora). */
is_error *bench_lora_write(const char *dir, int rank);
/* Writes it in a separate process (this program with --write-lora) when absent. */
is_error *bench_lora_ensure(const char *dir, int rank);
/* The measured child: merged (load, set precision p, time is_unet_set_loras, one UNet evaluation), then the
 * side product of every module of the file per UNet evaluation with batch 2. */
is_error *bench_lora_run(const char *dir, is_precision p, int rank, int warmup, bench_lora *out);
/* steps: CFG steps for the "over N steps" figure */
void bench_lora_print(const bench_lora *l, int steps);

#endif
