/* is_bench: speed and memory of the real-size SDXL networks on this machine.
 *
 * Writes SDXL base 1.0-sized UNet, VAE, both text encoders and the IP-Adapter's ViT-bigG image
 * encoder with random weights (src/tiny layouts, real config values) into a folder, then runs each
 * network through the public API in its own child process, so each row's peak RSS is its own.
 * Every row is compared with an sgemm ceiling measured just before it in the same child (the
 * cores may be shared with other work; the ceiling moves with them); with --precision bf16 the
 * networks run in bf16 (is_*_set_precision after loading) and the ceiling is oneDNN's bf16 matmul
 * (ceiling_bf16.c). --only accuracy compares bf16 with f32 on the same inputs (accuracy.c). The e2e
 * rows run a whole is_generate; the e2e*cn ones add an SDXL-sized Canny ControlNet. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "bench.h"
#include "instantstyle.h"
#include "kernels/kernels.h"

double bench_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

double bench_cpu_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* ---- options */

typedef struct {
    const char *only;      /* comma-separated item names */
    const char *filter;    /* micro: only kernels whose label contains this */
    const char *model_dir; /* NULL: a temporary folder */
    const char *style_image; /* e2e rows */
    const char *tokenizer;   /* tokenizer row: a CLIP tokenizer folder */
    int keep, threads, warmup, steps;
    int repeat;              /* network rows: measured runs, the fastest reported (--repeat, default 1) */
    int lora_rank;           /* lora row: rank of the random full-coverage LoRA (--lora-rank, default 64) */
    int steps_given;         /* --steps was on the command line (accuracy: also a whole generation) */
    is_precision precision;  /* asked for (default F32: today's numbers) */
    is_precision effective;  /* what it runs as on this CPU (is_precision_resolve) */
} options;

/* The rows of the network table (not e2e, micro or accuracy). */
static int network_row(const char *name) {
    return strncmp(name, "e2e", 3) && strcmp(name, "accuracy") && strcmp(name, "micro") && strcmp(name, "tokenizer") &&
           strcmp(name, "lora");
}

/* Rows that run only when --only names them (long, or not a network). */
static int opt_in(const char *name) {
    return !strcmp(name, "micro") || !strncmp(name, "e2e", 3) || !strcmp(name, "accuracy") ||
           !strcmp(name, "tokenizer") || !strcmp(name, "lora");
}

static int wanted(const options *o, const char *name) {
    if (!o->only) return !opt_in(name);
    const char *p = o->only;
    size_t n = strlen(name);
    while (*p) {
        const char *e = strchr(p, ',');
        size_t len = e ? (size_t)(e - p) : strlen(p);
        if (len == n && !strncmp(p, name, n)) return 1;
        if (!e) break;
        p = e + 1;
    }
    return 0;
}

/* ---- one measured row, computed in a child process */

/* The stages of one is_generate, in the order its log reports them. */
enum { ST_TEXT, ST_IMAGE, ST_UNET_LOAD, ST_DENOISE, ST_VAE, N_STAGES };
static const char *const stage_names[N_STAGES] = {"text encoders", "image encoder", "unet + adapter load",
                                                  "denoising", "vae decode"};

typedef struct {
    int ok;
    double seconds, gflop, ceiling, load_s;
    double pack_s;             /* is_*_set_precision after loading (part of load_s) */
    double sgemm;              /* the f32 ceiling (== ceiling for f32 rows) */
    int bf16;                  /* ceiling is the bf16 matmul one (bf below) */
    bench_bf16_ceiling bf;     /* bf16 rows: measured in the row's process just before it */
    bench_accuracy acc;        /* the accuracy row */
    bench_lora lora;           /* the lora row */
    /* e2e rows: per stage, its seconds and the process's peak / current RSS (GiB) when it ended */
    double stage_s[N_STAGES], stage_peak[N_STAGES], stage_rss[N_STAGES];
    double step_s;             /* denoising seconds per step */
    int steps, stages_seen;    /* bit i: stage i reported */
    double unet_bytes, adapter_bytes, controlnet_bytes;
    double t_origin;           /* bench_now() when the generation started (log timestamps) */
    double cpu_s;              /* CPU seconds of the generation (all threads): wall x cores it really got */
    char msg[400];
} result;

int bench_run_self(char **args) {
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
        execv("/proc/self/exe", args);
        _exit(127);
    }
    int status = 0;
    return pid < 0 || waitpid(pid, &status, 0) < 0 || !WIFEXITED(status) || WEXITSTATUS(status) != 0 ? -1 : 0;
}

void bench_random_fill(float *x, int64_t n, float scale, uint32_t seed) {
    for (int64_t i = 0; i < n; i++) {
        seed = seed * 1664525u + 1013904223u;
        x[i] = scale * ((float)(seed >> 8) / (float)(1u << 23) - 1.0f);
    }
}

static int finite_all(const float *x, int64_t n) {
    for (int64_t i = 0; i < n; i++)
        if (!isfinite(x[i])) return 0;
    return 1;
}

typedef struct {
    const char *dir;
    int size;  /* pixels (UNet, VAE) */
    int which; /* text encoder 1 or 2 */
    int warmup;
    int repeat;              /* unet / vae rows: measured runs; the fastest is reported */
    int steps;               /* e2e; accuracy: 0 = no whole generation */
    const char *style_image; /* e2e */
    int controlnet;          /* e2e: with <dir>/controlnet on the Canny edges of the style image */
    int fast;                /* e2e: the lightning-4step preset (4 steps, Euler trailing, CFG off) */
    is_precision precision;  /* passed to is_*_set_precision / is_generate_params.precision */
    int lora_rank;           /* the lora row */
} job;

/* Each runner loads its network, runs the forward once unmeasured (warmup: page faults of the
 * mmap, scratch growth) and then measured (j->repeat times for the UNet and VAE, the fastest kept: the
 * shared machine's speed moves between runs, and the ceilings are best-of-runs too); fills r. */
typedef is_error *(*runner)(const job *j, result *r);

static is_error *run_unet(const job *j, result *r) {
    char dir[4096];
    snprintf(dir, sizeof dir, "%s/unet", j->dir);
    double t0 = bench_now();
    is_unet *u = NULL;
    IS_TRY(is_unet_load(dir, &u));
    double tp = bench_now();
    is_error *perr = is_unet_set_precision(u, j->precision);
    r->pack_s = bench_now() - tp;
    r->load_s = bench_now() - t0;
    if (perr) {
        is_unet_free(u);
        return perr;
    }
    int finite = 1;
    double cpu_s = 0;
    is_error *err = bench_unet_eval(u, j->size, j->warmup, j->repeat, &r->seconds, &cpu_s, &r->gflop, &finite);
    if (!err && !finite) snprintf(r->msg, sizeof r->msg, "non-finite output");
    is_unet_free(u);
    return err;
}

is_error *bench_unet_eval(is_unet *u, int size, int warmup, int repeat, double *seconds, double *cpu_s, double *gflop,
                          int *finite) {
    const int batch = 2, h = size / 8, w = size / 8, seq = 77; /* one CFG step: uncond + cond */
    int C = is_unet_in_channels(u), D = is_unet_cross_attention_dim(u), pooled = is_unet_pooled_dim(u);
    int64_t n_sample = (int64_t)batch * C * h * w, n_out = (int64_t)batch * is_unet_out_channels(u) * h * w;
    float *sample = malloc((size_t)n_sample * sizeof(float)), *out = malloc((size_t)n_out * sizeof(float));
    float *ctx = malloc((size_t)batch * seq * D * sizeof(float)), *te = malloc((size_t)batch * pooled * sizeof(float));
    float time_ids[12] = {0};
    is_error *err = NULL;
    if (!sample || !out || !ctx || !te) {
        err = is_error_oom("benchmark inputs");
        goto done;
    }
    bench_random_fill(sample, n_sample, 1.0f, 1);
    bench_random_fill(ctx, (int64_t)batch * seq * D, 1.0f, 2);
    bench_random_fill(te, (int64_t)batch * pooled, 1.0f, 3);
    for (int b = 0; b < batch; b++) {
        float *t = time_ids + 6 * b;
        t[0] = t[4] = (float)size, t[1] = t[5] = (float)size;
    }
    is_unet_input in = {.batch = batch, .height = h, .width = w, .sample = sample, .timestep = 999.0f,
                        .encoder_hidden_states = ctx, .seq_len = seq, .text_embeds = te, .time_ids = time_ids};
    if (warmup && (err = is_unet_forward(u, &in, out))) goto done;
    *seconds = 0;
    for (int r = 0; r < repeat && !err; r++) {
        is_flops_reset();
        double t1 = bench_now(), c1 = bench_cpu_now();
        err = is_unet_forward(u, &in, out);
        double dt = bench_now() - t1, dc = bench_cpu_now() - c1;
        if (r == 0 || dt < *seconds) *seconds = dt, *cpu_s = dc; /* the fastest run */
        if (repeat > 1) fprintf(stderr, "  UNet %dx%d run %d of %d: %.2f s (%.2f CPU s)\n", size, size, r + 1, repeat, dt, dc);
        *gflop = is_flops_total() * 1e-9;
    }
    *finite = !err && finite_all(out, n_out);
done:
    free(sample), free(out), free(ctx), free(te);
    return err;
}

static is_error *run_vae(const job *j, result *r) {
    char dir[4096];
    snprintf(dir, sizeof dir, "%s/vae", j->dir);
    double t0 = bench_now();
    is_vae *v = NULL;
    IS_TRY(is_vae_load(dir, &v));
    double tp = bench_now();
    is_error *perr = is_vae_set_precision(v, j->precision);
    r->pack_s = bench_now() - tp;
    r->load_s = bench_now() - t0;
    if (perr) {
        is_vae_free(v);
        return perr;
    }
    int s = is_vae_scale(v), h = j->size / s, w = j->size / s, C = is_vae_latent_channels(v);
    float *lat = malloc((size_t)C * h * w * sizeof(float)), *img = malloc((size_t)3 * j->size * j->size * sizeof(float));
    is_error *err = NULL;
    if (!lat || !img) {
        err = is_error_oom("benchmark inputs");
        goto done;
    }
    bench_random_fill(lat, (int64_t)C * h * w, 0.5f, 4);
    is_vae_options opt = {.tiling = 0}; /* the untiled decode, as the pipeline runs 1024x1024 */
    if (j->warmup && (err = is_vae_decode(v, lat, h, w, &opt, img))) goto done;
    for (int k = 0; k < j->repeat && !err; k++) {
        is_flops_reset();
        double t1 = bench_now();
        err = is_vae_decode(v, lat, h, w, &opt, img);
        double dt = bench_now() - t1;
        if (k == 0 || dt < r->seconds) r->seconds = dt; /* the fastest run */
        if (j->repeat > 1) fprintf(stderr, "  VAE decode %dx%d run %d of %d: %.2f s\n", j->size, j->size, k + 1, j->repeat, dt);
        r->gflop = is_flops_total() * 1e-9;
    }
    if (!err && !finite_all(img, (int64_t)3 * j->size * j->size)) snprintf(r->msg, sizeof r->msg, "non-finite output");
done:
    free(lat), free(img);
    is_vae_free(v);
    return err;
}

static is_error *run_text(const job *j, result *r) {
    char dir[4096];
    snprintf(dir, sizeof dir, "%s/%s", j->dir, j->which == 1 ? "text_encoder" : "text_encoder_2");
    double t0 = bench_now();
    is_clip_text *m = NULL;
    IS_TRY(is_clip_text_load(dir, &m));
    double tp = bench_now();
    is_error *perr = is_clip_text_set_precision(m, j->precision);
    r->pack_s = bench_now() - tp;
    r->load_s = bench_now() - t0;
    if (perr) {
        is_clip_text_free(m);
        return perr;
    }
    int n = 77, hid = is_clip_text_hidden_size(m), proj = is_clip_text_projection_dim(m);
    int32_t ids[77];
    uint32_t s = 7;
    ids[0] = 49406; /* BOS, then random words, EOS, padding */
    for (int i = 1; i < 40; i++) s = s * 1664525u + 1013904223u, ids[i] = (int32_t)(s % 49000u);
    for (int i = 40; i < n; i++) ids[i] = 49407;
    float *pen = malloc((size_t)n * hid * sizeof(float)), *pooled = malloc((size_t)hid * sizeof(float));
    float *emb = malloc((size_t)(proj > 0 ? proj : 1) * sizeof(float));
    is_error *err = NULL;
    if (!pen || !pooled || !emb) {
        err = is_error_oom("benchmark inputs");
        goto done;
    }
    if (j->warmup && (err = is_clip_text_forward(m, ids, n, pen, NULL, pooled, proj > 0 ? emb : NULL))) goto done;
    is_flops_reset();
    double t1 = bench_now();
    err = is_clip_text_forward(m, ids, n, pen, NULL, pooled, proj > 0 ? emb : NULL);
    r->seconds = bench_now() - t1;
    r->gflop = is_flops_total() * 1e-9;
done:
    free(pen), free(pooled), free(emb);
    is_clip_text_free(m);
    return err;
}

static is_error *run_vision(const job *j, result *r) {
    char dir[4096];
    snprintf(dir, sizeof dir, "%s/image_encoder", j->dir);
    double t0 = bench_now();
    is_image_encoder *enc = NULL;
    IS_TRY(is_image_encoder_load(dir, &enc));
    /* In bf16 the first set_precision streams the products' weights (a generation's one use, unpacked) and
     * the second packs them: the row times the packed encoder, as a kept pipeline runs it, and stderr gets
     * the streamed first forward. */
    double tp = bench_now(), load_s = tp - t0;
    is_error *perr = is_image_encoder_set_precision(enc, j->precision);
    double pack_s = bench_now() - tp;
    int S = is_image_encoder_image_size(enc), P = is_image_encoder_projection_dim(enc);
    float *px = malloc((size_t)3 * S * S * sizeof(float)), *emb = malloc((size_t)P * sizeof(float));
    is_error *err = perr;
    if (!err && (!px || !emb)) err = is_error_oom("benchmark inputs");
    if (err) goto done;
    bench_random_fill(px, (int64_t)3 * S * S, 1.5f, 5);
    if (is_precision_resolve(j->precision, NULL, 0) == IS_PRECISION_BF16) {
        double ts = bench_now();
        if ((err = is_image_encoder_forward(enc, px, emb, NULL))) goto done;
        double first_s = bench_now() - ts, setup_s = pack_s;
        tp = bench_now();
        if ((err = is_image_encoder_set_precision(enc, j->precision))) goto done;
        pack_s += bench_now() - tp;
        fprintf(stderr, "  image encoder first use (bf16 products streamed, not packed): %.2f s + %.2f s set-up; "
                "packing for later uses: %.2f s\n", first_s, setup_s, pack_s - setup_s);
    }
    r->pack_s = pack_s;
    r->load_s = load_s + pack_s;
    if (j->warmup && (err = is_image_encoder_forward(enc, px, emb, NULL))) goto done;
    is_flops_reset();
    double t1 = bench_now();
    err = is_image_encoder_forward(enc, px, emb, NULL);
    r->seconds = bench_now() - t1;
    r->gflop = is_flops_total() * 1e-9;
done:
    free(px), free(emb);
    is_image_encoder_free(enc);
    return err;
}

/* ---- end to end: one whole is_generate */

static double peak_rss_gib(void) {
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_maxrss / (1024.0 * 1024.0);
}

static double current_rss_gib(void) {
    long pages = 0, resident = 0;
    FILE *f = fopen("/proc/self/statm", "r");
    if (f && fscanf(f, "%ld %ld", &pages, &resident) != 2) resident = 0;
    if (f) fclose(f);
    return (double)resident * (double)sysconf(_SC_PAGESIZE) / (1024.0 * 1024.0 * 1024.0);
}

static double file_bytes(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 ? (double)st.st_size : 0.0;
}

/* is_generate's log: one line per stage with its time ("text encoders: 1.23 s", "denoising: 2
 * steps, 180.00 s (90.00 s/step)", ...). Each line is also a memory probe: the high-water mark when
 * a stage ends says which stage raised it. */
static void e2e_log(void *user, const char *line) {
    result *r = user;
    fprintf(stderr, "  [e2e %7.1f s] %s (peak RSS so far %.2f GiB, now %.2f GiB)\n", bench_now() - r->t_origin, line,
            peak_rss_gib(), current_rss_gib());
    for (int i = 0; i < N_STAGES; i++) {
        size_t n = strlen(stage_names[i]);
        if (strncmp(line, stage_names[i], n) || line[n] != ':') continue;
        const char *v = line + n + 1;
        double sec = 0, per = 0;
        int steps = 0;
        if (i == ST_DENOISE ? sscanf(v, " %d steps, %lf s (%lf s/step)", &steps, &sec, &per) == 3
                            : sscanf(v, " %lf s", &sec) == 1) {
            r->stage_s[i] = sec;
            r->stage_peak[i] = peak_rss_gib();
            r->stage_rss[i] = current_rss_gib();
            r->stages_seen |= 1 << i;
            if (i == ST_DENOISE) r->steps = steps, r->step_s = per;
        }
    }
}

static void e2e_progress(void *user, int step, int total, double seconds) {
    (void)user;
    fprintf(stderr, "  [e2e] denoising step %d/%d done, %.1f s\n", step, total, seconds);
}

/* InstantStyle as a user runs it: 1024x1024 (or j->size), IP-Adapter with the style image, a
 * content prompt subtracted, style blocks "style", CFG 5; with j->controlnet also a Canny ControlNet
 * on the style image's edges at 0.6, as InstantStyle's ControlNet example. No warm-up: the run
 * includes mapping every network, as a real generation does. */
static is_error *run_e2e(const job *j, result *r) {
    char adapter[4096], encoder[4096], unet_file[4096], controlnet[4096], controlnet_file[4200];
    snprintf(adapter, sizeof adapter, "%s/ip-adapter/ip-adapter_sdxl.safetensors", j->dir);
    snprintf(encoder, sizeof encoder, "%s/image_encoder", j->dir);
    snprintf(unet_file, sizeof unet_file, "%s/unet/diffusion_pytorch_model.safetensors", j->dir);
    snprintf(controlnet, sizeof controlnet, "%s/controlnet", j->dir);
    snprintf(controlnet_file, sizeof controlnet_file, "%s/diffusion_pytorch_model.safetensors", controlnet);
    r->unet_bytes = file_bytes(unet_file);
    r->adapter_bytes = file_bytes(adapter);
    r->controlnet_bytes = j->controlnet ? file_bytes(controlnet_file) : 0;
    double t0 = bench_now(), c0 = bench_cpu_now();
    is_pipeline_params paths;
    is_pipeline_params_init(&paths);
    paths.memory = IS_MEMORY_LOW; /* one generation, as the CLI runs it: the lowest peak memory */
    paths.model_dir = j->dir;
    paths.ip_adapter = adapter;
    paths.image_encoder_dir = encoder;
    if (j->controlnet) paths.controlnet = controlnet;
    is_pipeline *p = NULL;
    IS_TRY(is_pipeline_load(&paths, &p));
    is_generate_params gp;
    is_generate_params_init(&gp);
    gp.prompt = "a cat sitting on a wooden bench, masterpiece, best quality";
    gp.negative_prompt = "text, watermark, lowres, low quality, worst quality, deformed";
    gp.width = gp.height = j->size;
    gp.steps = j->steps;
    gp.seed = 42;
    gp.style_image = j->style_image;
    gp.style_blocks = "style";
    gp.content_prompt = "a house";
    gp.precision = j->precision; /* set always: the library's default is AUTO */
    if (j->fast) IS_TRY(is_generate_params_preset(&gp, "lightning-4step")); /* steps, sampler, CFG off */
    if (j->controlnet) {
        gp.control_image = j->style_image;
        gp.control_canny = 1;      /* its Canny edges (default thresholds) are the control image */
        gp.control_scale = 0.6f;   /* InstantStyle's controlnet_conditioning_scale */
    }
    gp.log = e2e_log;
    gp.progress = e2e_progress;
    gp.user = r;
    r->t_origin = t0;
    is_flops_reset();
    is_image_result img;
    is_error *err = is_generate(p, &gp, &img);
    r->seconds = bench_now() - t0;
    r->cpu_s = bench_cpu_now() - c0;
    r->gflop = is_flops_total() * 1e-9;
    if (!err && !finite_all(img.image, (int64_t)3 * img.width * img.height))
        snprintf(r->msg, sizeof r->msg, "non-finite image");
    is_image_result_free(&img);
    is_pipeline_free(p);
    return err;
}

/* bf16 against f32 on the same inputs (accuracy.c); j->steps > 0 adds a whole generation. */
static is_error *run_accuracy(const job *j, result *r) {
    double t0 = bench_now();
    is_error *e = bench_accuracy_run(j->dir, j->size, j->steps, j->style_image, &r->acc);
    r->seconds = bench_now() - t0;
    return e;
}

/* A full-coverage LoRA merged, against the run-time side product (lora_bench.c). */
static is_error *run_lora(const job *j, result *r) {
    double t0 = bench_now();
    is_error *e = bench_lora_run(j->dir, j->precision, j->lora_rank, j->warmup, &r->lora);
    r->seconds = bench_now() - t0;
    return e;
}

/* Runs item `name` in a fresh process (this program re-executed with --child: OpenMP and OpenBLAS
 * thread pools do not survive a plain fork), which measures the ceiling, runs the network and
 * sends its result back through a pipe; *peak_rss_gib is that process's peak resident size. */
static result run_child(const options *o, const char *dir, const char *name, double *peak_rss_gib) {
    result r;
    memset(&r, 0, sizeof r);
    int fd[2];
    if (pipe(fd) != 0) {
        snprintf(r.msg, sizeof r.msg, "pipe failed");
        return r;
    }
    char fdarg[16], threads[16], steps[16], rank[16], repeat[16];
    snprintf(fdarg, sizeof fdarg, "%d", fd[1]);
    snprintf(threads, sizeof threads, "%d", o->threads);
    snprintf(rank, sizeof rank, "%d", o->lora_rank);
    snprintf(repeat, sizeof repeat, "%d", o->repeat);
    /* accuracy: a whole generation only when --steps was given */
    snprintf(steps, sizeof steps, "%d", !strcmp(name, "accuracy") && !o->steps_given ? 0 : o->steps);
    char *args[] = {"is_bench", "--child", (char *)name, "--result-fd", fdarg, "--model-dir", (char *)dir,
                    "--threads", threads, "--steps", steps, "--style-image", (char *)o->style_image,
                    "--precision", (char *)is_precision_name(o->precision), "--lora-rank", rank,
                    "--repeat", repeat,
                    o->warmup ? NULL : "--no-warmup", NULL};
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
        close(fd[0]);
        execv("/proc/self/exe", args);
        _exit(127);
    }
    close(fd[1]);
    ssize_t got = 0;
    while (pid > 0 && got < (ssize_t)sizeof r) {
        ssize_t n = read(fd[0], (char *)&r + got, sizeof r - (size_t)got);
        if (n <= 0) break;
        got += n;
    }
    close(fd[0]);
    int status = 0;
    struct rusage ru;
    memset(&ru, 0, sizeof ru);
    if (pid > 0) wait4(pid, &status, 0, &ru);
    *peak_rss_gib = (double)ru.ru_maxrss / (1024.0 * 1024.0); /* ru_maxrss is in KiB */
    if (got != (ssize_t)sizeof r) {
        memset(&r, 0, sizeof r);
        snprintf(r.msg, sizeof r.msg, "child failed (status %d)", status);
    }
    return r;
}

/* The row's peak RSS is the network's own: the ceilings' buffers (sgemm 48 MB; the bf16 matmul's f32
 * output alone is 189 MB) are freed, and the high-water mark that getrusage and the parent's wait4
 * report is reset to the current resident size (Linux >= 4.0; left as it is elsewhere). */
static void reset_peak_rss(void) {
    FILE *f = fopen("/proc/self/clear_refs", "w");
    if (!f) return;
    fputs("5", f);
    fclose(f);
}

/* With --repeat the row ran several times, long enough for the machine's speed to change: the ceilings
 * are measured again after it and the higher of each kept (a higher ceiling only lowers the row's %). */
static void remeasure_ceilings(result *r) {
    double sgemm = bench_sgemm_ceiling(2048, 4, NULL);
    if (sgemm > r->sgemm) r->sgemm = sgemm;
    if (!r->bf16) {
        r->ceiling = r->sgemm;
        return;
    }
    bench_bf16_ceiling after;
    memset(&after, 0, sizeof after);
    if (bench_bf16_ceiling_measure(8, &after) || after.matmul <= 0) return;
    if (after.matmul > r->bf.matmul) r->bf.matmul = after.matmul, r->bf.matmul_cpu = after.matmul_cpu;
    if (after.conv > r->bf.conv) r->bf.conv = after.conv, r->bf.conv_cpu = after.conv_cpu;
    r->ceiling = r->bf.matmul;
}

/* The --child side of run_child. */
static int child_main(const options *o, const char *name, int result_fd) {
    static const struct {
        const char *name;
        runner fn;
        int size, which, controlnet, fast;
    } runners[] = {{"unet512", run_unet, 512, 0, 0, 0},     {"unet1024", run_unet, 1024, 0, 0, 0},
                   {"vae1024", run_vae, 1024, 0, 0, 0},     {"text", run_text, 0, 1, 0, 0},
                   {"text2", run_text, 0, 2, 0, 0},         {"vision", run_vision, 0, 0, 0, 0},
                   {"e2e1024", run_e2e, 1024, 0, 0, 0},     {"e2e512", run_e2e, 512, 0, 0, 0},
                   {"e2e1024cn", run_e2e, 1024, 0, 1, 0},   {"e2e512cn", run_e2e, 512, 0, 1, 0},
                   {"e2e1024fast", run_e2e, 1024, 0, 0, 1}, {"accuracy", run_accuracy, 512, 0, 0, 0},
                   {"lora", run_lora, 0, 0, 0, 0}};
    result r;
    memset(&r, 0, sizeof r);
    snprintf(r.msg, sizeof r.msg, "unknown item '%s'", name);
    for (size_t i = 0; i < sizeof runners / sizeof runners[0]; i++) {
        if (strcmp(runners[i].name, name)) continue;
        job j = {.dir = o->model_dir, .size = runners[i].size, .which = runners[i].which, .warmup = o->warmup,
                 .repeat = o->repeat,
                 .steps = o->steps, .style_image = o->style_image, .controlnet = runners[i].controlnet,
                 .fast = runners[i].fast,
                 .precision = o->precision, .lora_rank = o->lora_rank};
        r.msg[0] = 0;
        if (runners[i].fn != run_accuracy) {
            r.ceiling = r.sgemm = bench_sgemm_ceiling(2048, 4, NULL);
            if (o->effective == IS_PRECISION_BF16) {
                bench_bf16_ceiling_measure(8, &r.bf);
                if (r.bf.matmul > 0) r.bf16 = 1, r.ceiling = r.bf.matmul;
            }
            reset_peak_rss();
        }
        is_error *e = runners[i].fn(&j, &r);
        if (!e && o->repeat > 1 && runners[i].fn != run_accuracy) remeasure_ceilings(&r);
        if (e) {
            snprintf(r.msg, sizeof r.msg, "%s", is_error_message(e));
            is_error_free(e);
        } else {
            r.ok = 1;
        }
        if (r.ok && o->effective == IS_PRECISION_BF16 && !r.bf16 && runners[i].fn != run_accuracy)
            snprintf(r.msg, sizeof r.msg, "(no bf16 ceiling: %s; the ceiling column is sgemm's)", r.bf.msg);
    }
    ssize_t wr = write(result_fd, &r, sizeof r);
    return wr == (ssize_t)sizeof r && r.ok ? 0 : 1;
}

/* ---- the model folder */

static is_error *ensure_component(const char *root, const char *name) {
    if (bench_component_present(root, name)) return NULL;
    if (!strcmp(name, "pipeline"))
        printf("writing model_index.json, scheduler/, tokenizer/ and tokenizer_2/ to %s ...\n", root);
    else
        printf("writing random-weight %s to %s/%s ...\n", name, root, name);
    fflush(stdout);
    double t0 = bench_now();
    /* in a separate process (the generator holds a whole file in memory; keep that out of ours) */
    char *args[] = {"is_bench", "--write", (char *)name, "--model-dir", (char *)root, NULL};
    if (bench_run_self(args)) return is_errorf(IS_E_IO, "writing the random %s failed", name);
    printf("  done in %.0f s\n", bench_now() - t0);
    return NULL;
}

/* Runs an e2e item and prints its two tables: times per stage, and memory at the end of each stage. */
static int e2e_row(const options *o, const char *dir, const char *label, const char *name) {
    double rss = 0;
    result r = run_child(o, dir, name, &rss);
    int fast = strstr(name, "fast") != NULL; /* the preset fixes its steps */
    printf("\n%s%s, %d steps (no warm-up; every network is mapped and paged in during the run):\n\n", label,
           r.bf16 ? ", bf16" : "", fast ? 4 : o->steps);
    if (!r.ok) {
        printf("failed: %s\n", r.msg);
        return 1;
    }
    const double gib = 1024.0 * 1024.0 * 1024.0;
    printf("| total s | text encoders s | image encoder s | UNet + adapter load s | denoising s/step | VAE decode s | "
           "GFLOP/s | %s ceiling GFLOP/s | cores it got | peak RSS GiB |\n", r.bf16 ? "bf16 matmul" : "sgemm");
    printf("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n");
    printf("| %.1f | %.2f | %.2f | %.2f | %.2f | %.2f | %.1f | %.1f | %.2f | %.2f |%s%s\n", r.seconds, r.stage_s[ST_TEXT],
           r.stage_s[ST_IMAGE], r.stage_s[ST_UNET_LOAD], r.step_s, r.stage_s[ST_VAE], r.gflop / r.seconds, r.ceiling,
           r.cpu_s / r.seconds, rss,
           r.msg[0] ? " " : "", r.msg);
    /* Which stage raised the high-water mark: the first whose end-of-stage peak equals the final one. */
    int peak_stage = -1;
    for (int i = 0; i < N_STAGES; i++)
        if ((r.stages_seen >> i & 1) && r.stage_peak[i] >= rss - 0.005 && peak_stage < 0) peak_stage = i;
    double unet_w = r.unet_bytes / gib;
    printf("\nPeak RSS at the end of each stage (high-water mark so far / resident now), GiB; UNet f16 weights %.2f GiB,"
           " IP-Adapter file %.2f GiB (only the style blocks' to_k_ip/to_v_ip are read):\n\n",
           r.unet_bytes / gib, r.adapter_bytes / gib);
    printf("| stage | peak so far | resident at its end |\n|---|---:|---:|\n");
    for (int i = 0; i < N_STAGES; i++)
        if (r.stages_seen >> i & 1) printf("| %s | %.2f | %.2f |\n", stage_names[i], r.stage_peak[i], r.stage_rss[i]);
    if (r.controlnet_bytes > 0)
        printf("\nControlNet f16 weights %.2f GiB (its time is part of denoising s/step; compare the row without it)\n",
               r.controlnet_bytes / gib);
    printf("\npeak RSS %.2f GiB, reached in stage: %s", rss, peak_stage >= 0 ? stage_names[peak_stage] : "?");
    if (r.stages_seen >> ST_DENOISE & 1) {
        if (r.controlnet_bytes > 0)
            printf("; UNet stage peak minus the UNet's and the ControlNet's f16 weights: %.2f GiB",
                   r.stage_peak[ST_DENOISE] - unet_w - r.controlnet_bytes / gib);
        else
            printf("; UNet stage peak minus the UNet's f16 weights: %.2f GiB", r.stage_peak[ST_DENOISE] - unet_w);
    }
    printf("\n");
    fflush(stdout);
    return 0;
}

static void machine_info(const options *o) {
    char line[512];
    bench_cpu cpu;
    bench_cpu_detect(&cpu);
    long mem_kib = 0;
    FILE *f = fopen("/proc/meminfo", "r");
    while (f && fgets(line, sizeof line, f))
        if (sscanf(line, "MemTotal: %ld kB", &mem_kib) == 1) break;
    if (f) fclose(f);
    double load[3] = {0};
    getloadavg(load, 3);
    printf("machine: %s, %ld cores online, %.1f GiB RAM; threads used: %d\n", cpu.model, sysconf(_SC_NPROCESSORS_ONLN),
           (double)mem_kib / (1024.0 * 1024.0), is_get_threads());
    bench_print_cpu_and_blas(&cpu);
    char why[256] = "";
    is_precision_resolve(o->precision, why, sizeof why);
    printf("precision: %s asked, runs as %s (%s)\n", is_precision_name(o->precision), is_precision_name(o->effective),
           why);
    printf("load average at start: %.2f %.2f %.2f\n", load[0], load[1], load[2]);
    printf("warm-up run before each measurement: %s\n", o->warmup ? "yes" : "no");
    if (o->repeat > 1)
        printf("UNet and VAE rows: the fastest of %d measured runs; each ceiling measured before and after the row, "
               "the higher kept\n",
               o->repeat);
    printf("\n");
}

/* Appends src to the string in dst[cap], truncating. */
static void append(char *dst, size_t cap, const char *src) {
    size_t n = strlen(dst);
    while (*src && n + 1 < cap) dst[n++] = *src++;
    dst[n] = 0;
}

static void usage(void) {
    printf("usage: is_bench [--only LIST] [--precision f32|bf16|auto] [--threads N] [--model-dir DIR] [--keep]\n"
           "       [--no-warmup] [--filter TEXT] [--steps N] [--style-image PNG] [--tokenizer DIR]\n"
           "       [--lora-rank R] [--repeat N]\n"
           "  LIST: comma-separated from unet512,unet1024,vae1024,text,text2,vision (default: all)\n"
           "        and, only when asked: micro (kernel micro-benchmark at SDXL shapes;\n"
           "        --filter TEXT keeps the kernels whose label contains TEXT), e2e1024 and e2e512\n"
           "        (a whole is_generate with the IP-Adapter, style image and content prompt;\n"
           "        --steps N denoising steps, default 2; --style-image, default docs/examples/style.png),\n"
           "        e2e1024cn and e2e512cn (the same plus an SDXL-sized Canny ControlNet on the style\n"
           "        image's edges at scale 0.6; adds controlnet/, 2.5 GB, to the model folder),\n"
           "        e2e1024fast (the e2e1024 generation with the lightning-4step preset: 4 steps, Euler\n"
           "        trailing, CFG off: one UNet evaluation per step; random weights, no LoRA needed to time it),\n"
           "        accuracy (bf16 against f32 at 512x512 on the same inputs: one UNet CFG evaluation and\n"
           "        one VAE decode; with --steps N also a whole is_generate of N steps, PSNR of the image),\n"
           "        tokenizer (long words and 64 KiB prompts through is_tokenizer_encode; --tokenizer DIR,\n"
           "        default ../shared/golden/models/tiny-sdxl/tokenizer: a real CLIP vocabulary and merges)\n"
           "        lora (a full-coverage random LoRA, --lora-rank R (default 64), written once to\n"
           "        DIR/lora_full_rR.safetensors: merged by is_unet_set_loras (time, RSS) and one UNet evaluation\n"
           "        with it (1024 in bf16, 512 in f32), against the run-time side product s * up(down x) of every\n"
           "        module per UNet evaluation with batch 2 (measured only; the engine merges))\n"
           "  --precision: arithmetic of the networks' products (default f32: the exact mode). bf16 rows\n"
           "        are compared with oneDNN's bf16 matmul ceiling measured in the same process; micro adds\n"
           "        a bf16 row after each product, convolution and attention\n"
           "  --model-dir DIR: where the random SDXL-sized weights are written (reused when present;\n"
           "        default a temporary folder, deleted at exit unless --keep). About 11 GB.\n"
           "  --threads N: kernel threads (default: all cores)\n"
           "  --no-warmup: measure the first forward (includes page faults and scratch growth)\n"
           "  --repeat N: time the UNet and VAE rows N times and report the fastest (default 1); the\n"
           "        ceilings are then measured before and after the row and the higher kept\n");
}

int main(int argc, char **argv) {
    options o = {.threads = 0, .warmup = 1, .steps = 2, .style_image = "docs/examples/style.png", .tokenizer = NULL,
                 .precision = IS_PRECISION_F32, .lora_rank = 64, .repeat = 1};
    const char *child = NULL, *write_component = NULL;
    int write_lora = 0;
    int result_fd = -1;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--only") && i + 1 < argc) o.only = argv[++i];
        else if (!strcmp(argv[i], "--child") && i + 1 < argc) child = argv[++i]; /* internal */
        else if (!strcmp(argv[i], "--result-fd") && i + 1 < argc) result_fd = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--write") && i + 1 < argc) write_component = argv[++i];
        else if (!strcmp(argv[i], "--write-lora") && i + 1 < argc) write_lora = atoi(argv[++i]); /* internal */
        else if (!strcmp(argv[i], "--lora-rank") && i + 1 < argc) o.lora_rank = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--repeat") && i + 1 < argc) o.repeat = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--model-dir") && i + 1 < argc) o.model_dir = argv[++i];
        else if (!strcmp(argv[i], "--filter") && i + 1 < argc) o.filter = argv[++i];
        else if (!strcmp(argv[i], "--threads") && i + 1 < argc) o.threads = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--steps") && i + 1 < argc) o.steps = atoi(argv[++i]), o.steps_given = 1;
        else if (!strcmp(argv[i], "--precision") && i + 1 < argc) {
            if (is_precision_parse(argv[++i], &o.precision) != 0) {
                fprintf(stderr, "is_bench: --precision takes f32, bf16 or auto, not '%s'\n", argv[i]);
                return 2;
            }
        }
        else if (!strcmp(argv[i], "--style-image") && i + 1 < argc) o.style_image = argv[++i];
        else if (!strcmp(argv[i], "--tokenizer") && i + 1 < argc) o.tokenizer = argv[++i];
        else if (!strcmp(argv[i], "--keep")) o.keep = 1;
        else if (!strcmp(argv[i], "--no-warmup")) o.warmup = 0;
        else {
            usage();
            return strcmp(argv[i], "--help") ? 2 : 0;
        }
    }
    if (write_lora) {
        is_error *e = o.model_dir ? bench_lora_write(o.model_dir, write_lora)
                                  : is_errorf(IS_E_ARGUMENT, "--write-lora needs --model-dir");
        if (e) fprintf(stderr, "is_bench: %s\n", is_error_message(e));
        int bad = e != NULL;
        is_error_free(e);
        return bad;
    }
    if (o.lora_rank < 1) {
        fprintf(stderr, "is_bench: --lora-rank must be at least 1\n");
        return 2;
    }
    if (o.repeat < 1 || o.repeat > 100) {
        fprintf(stderr, "is_bench: --repeat takes 1 to 100\n");
        return 2;
    }
    if (write_component) {
        is_error *e = o.model_dir ? bench_write_component(o.model_dir, write_component)
                                  : is_errorf(IS_E_ARGUMENT, "--write needs --model-dir");
        if (e) fprintf(stderr, "is_bench: %s\n", is_error_message(e));
        int bad = e != NULL;
        is_error_free(e);
        return bad;
    }
    is_set_threads(o.threads);
    o.effective = is_precision_resolve(o.precision, NULL, 0);
    if (child) return o.model_dir && result_fd >= 0 ? child_main(&o, child, result_fd) : 2;
    machine_info(&o);
    double ceiling = bench_sgemm_ceiling(2048, 5, NULL);
    printf("sgemm ceiling (2048^3, %d threads): %.1f GFLOP/s\n", is_get_threads(), ceiling);
    if (o.effective == IS_PRECISION_BF16) {
        bench_bf16_ceiling bf;
        bench_bf16_ceiling_measure(8, &bf);
        bench_bf16_ceiling_print(&bf, is_get_threads());
    }
    printf("\n");
    if (wanted(&o, "micro")) bench_micro(o.filter, o.effective == IS_PRECISION_BF16);
    if (wanted(&o, "tokenizer") &&
        bench_tokenizer(o.tokenizer ? o.tokenizer : "../shared/golden/models/tiny-sdxl/tokenizer"))
        return 1;

#define E2E_PARTS "unet", "vae", "text_encoder", "text_encoder_2", "image_encoder", "pipeline", "ip-adapter"
    enum { MAX_PARTS = 9 }; /* the e2e*cn rows' 8, and a NULL */
    static const struct {
        const char *name, *label, *components[MAX_PARTS];
    } items[] = {
        {"unet512", "UNet, one CFG step (batch 2), 512x512", {"unet"}},
        {"unet1024", "UNet, one CFG step (batch 2), 1024x1024", {"unet"}},
        {"vae1024", "VAE decode, 1024x1024", {"vae"}},
        {"text", "CLIP ViT-L text encoder, 77 tokens", {"text_encoder"}},
        {"text2", "OpenCLIP bigG text encoder, 77 tokens", {"text_encoder_2"}},
        {"vision", "ViT-bigG image encoder, 224x224", {"image_encoder"}},
        {"e2e1024", "is_generate 1024x1024, IP-Adapter + content prompt, CFG 5", {E2E_PARTS}},
        {"e2e512", "is_generate 512x512, IP-Adapter + content prompt, CFG 5", {E2E_PARTS}},
        {"e2e1024fast", "is_generate 1024x1024, IP-Adapter + content prompt, lightning-4step preset (Euler trailing, CFG off)",
         {E2E_PARTS}},
        {"e2e1024cn", "is_generate 1024x1024, IP-Adapter + content prompt, CFG 5 + Canny ControlNet 0.6",
         {E2E_PARTS, "controlnet"}},
        {"e2e512cn", "is_generate 512x512, IP-Adapter + content prompt, CFG 5 + Canny ControlNet 0.6",
         {E2E_PARTS, "controlnet"}},
        /* without --steps only unet, vae and ip-adapter are needed (see the component loop) */
        {"accuracy", "bf16 against f32, 512x512", {E2E_PARTS}},
        {"lora", "LoRA merged against a run-time low-rank side product", {"unet"}},
    };
#undef E2E_PARTS
    const int n_items = (int)(sizeof items / sizeof items[0]);
    int any = 0;
    for (int i = 0; i < n_items; i++) any |= wanted(&o, items[i].name);
    if (!any) return 0;

    char tmp[4096];
    const char *dir = o.model_dir;
    if (!dir) {
        const char *t = getenv("TMPDIR");
        snprintf(tmp, sizeof tmp, "%s/is_bench.XXXXXX", t && *t ? t : "/tmp");
        if (!mkdtemp(tmp)) {
            fprintf(stderr, "is_bench: cannot create a temporary folder in %s\n", tmp);
            return 1;
        }
        dir = tmp;
    }
    int rc = 0;
    for (int i = 0; i < n_items && !rc; i++) {
        if (!wanted(&o, items[i].name)) continue;
        for (int k = 0; k < MAX_PARTS && items[i].components[k] && !rc; k++) {
            const char *c = items[i].components[k];
            if (!strcmp(items[i].name, "accuracy") && !o.steps_given && strcmp(c, "unet") && strcmp(c, "vae") &&
                strcmp(c, "ip-adapter"))
                continue;
            is_error *e = ensure_component(dir, items[i].components[k]);
            if (e) {
                fprintf(stderr, "is_bench: %s\n", is_error_message(e));
                is_error_free(e);
                rc = 1;
            }
        }
    }
    if (!rc && wanted(&o, "lora")) {
        is_error *e = bench_lora_ensure(dir, o.lora_rank);
        if (e) {
            fprintf(stderr, "is_bench: %s\n", is_error_message(e));
            is_error_free(e);
            rc = 1;
        }
    }
    int networks = 0;
    for (int i = 0; i < n_items; i++) networks |= wanted(&o, items[i].name) && network_row(items[i].name);
    const int bf16 = o.effective == IS_PRECISION_BF16;
    if (!rc && networks) {
        if (bf16)
            printf("bf16 rows: the ceiling is oneDNN's bf16 matmul 8192x640x5760 measured in the row's process just "
                   "before it, and %% of ceiling is against it; the bf16 3x3 convolution ceiling (2x640x64x64) is the "
                   "last column. load s includes packing the weights to bf16 (is_*_set_precision).\n");
        printf("\n| network | seconds | GFLOP | GFLOP/s | %s ceiling GFLOP/s | %% of ceiling | peak RSS GiB | load s |%s\n",
               bf16 ? "bf16 matmul" : "sgemm", bf16 ? " bf16 conv ceiling GFLOP/s |" : "");
        printf("|---|---:|---:|---:|---:|---:|---:|---:|%s\n", bf16 ? "---:|" : "");
        fflush(stdout);
        char impl[512] = ""; /* the bf16 ceilings' oneDNN implementations (each different one once) */
        for (int i = 0; i < n_items; i++) {
            if (!wanted(&o, items[i].name) || !network_row(items[i].name)) continue;
            double rss = 0;
            result r = run_child(&o, dir, items[i].name, &rss);
            if (!r.ok) {
                printf("| %s%s | failed: %s | | | | | | |%s\n", items[i].label, bf16 ? ", bf16" : "", r.msg,
                       bf16 ? " |" : "");
                rc = 1;
                continue;
            }
            double gfs = r.gflop / r.seconds;
            char load[64], conv[64] = "", this_impl[sizeof impl];
            snprintf(this_impl, sizeof this_impl, "matmul [%s], conv [%s], effective ISA %s", r.bf.matmul_impl,
                     r.bf.conv_impl, r.bf.isa);
            if (bf16 && r.bf16 && !strstr(impl, this_impl)) {
                if (impl[0]) append(impl, sizeof impl, "; ");
                append(impl, sizeof impl, this_impl);
                append(impl, sizeof impl, " (first in the ");
                append(impl, sizeof impl, items[i].name);
                append(impl, sizeof impl, " row)");
            }
            if (bf16) {
                snprintf(load, sizeof load, "%.1f (packing %.1f)", r.load_s, r.pack_s);
                snprintf(conv, sizeof conv, " %.1f |", r.bf.conv);
            } else {
                snprintf(load, sizeof load, "%.1f", r.load_s);
            }
            printf("| %s%s | %.2f | %.0f | %.1f | %.1f | %.1f%% | %.2f | %s |%s%s%s\n", items[i].label,
                   bf16 ? ", bf16" : "", r.seconds, r.gflop, gfs, r.ceiling, 100.0 * gfs / r.ceiling, rss, load, conv,
                   r.msg[0] ? " " : "", r.msg);
            fflush(stdout);
        }
        if (bf16 && impl[0])
            printf("\nbf16 ceilings in the rows' processes: %s\n", impl);
    }
    if (!rc && wanted(&o, "accuracy")) {
        double rss = 0;
        result r = run_child(&o, dir, "accuracy", &rss);
        if (!r.ok) {
            printf("\naccuracy: failed: %s\n", r.msg);
            rc = 1;
        } else {
            bench_accuracy_print(&r.acc);
            printf("accuracy row: %.1f s in all, peak RSS %.2f GiB\n", r.seconds, rss);
        }
    }
    if (!rc && wanted(&o, "lora")) {
        double rss = 0;
        result r = run_child(&o, dir, "lora", &rss);
        printf("\nLoRA: merged (is_unet_set_loras) against a run-time low-rank side product, %s:\n",
               is_precision_name(o.effective));
        if (!r.ok) {
            printf("failed: %s\n", r.msg);
            rc = 1;
        } else {
            printf("ceilings in the row's process just before it: sgemm (2048^3) %.1f GFLOP/s\n", r.sgemm);
            if (r.bf16) bench_bf16_ceiling_print(&r.bf, is_get_threads());
            else if (bf16) printf("  no bf16 ceiling: %s\n", r.bf.msg);
            bench_lora_print(&r.lora, 30);
            printf("lora row: %.1f s in all (the LoRA file written before it not counted), peak RSS %.2f GiB\n",
                   r.seconds, rss);
        }
        fflush(stdout);
    }
    if (!rc) {
        for (int i = 0; i < n_items; i++)
            if (wanted(&o, items[i].name) && !strncmp(items[i].name, "e2e", 3)) rc |= e2e_row(&o, dir, items[i].label, items[i].name);
    }
    if (!o.model_dir && !o.keep) {
        char cmd[4200];
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
        if (system(cmd) != 0) fprintf(stderr, "is_bench: could not remove %s\n", dir);
    } else {
        printf("\nmodel files kept in %s\n", dir);
    }
    return rc;
}
