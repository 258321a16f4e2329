/* --only lora: a LoRA merged into the weights (what the engine does: is_unet_set_loras) against the
 * alternative it did not choose, a run-time low-rank side product y = W x + s * up(down x) at every patched
 * layer and every UNet evaluation, on the real-size SDXL UNet.
 *
 * The LoRA is a full-coverage random one written next to the model (DIR/lora_full_r<R>.safetensors, PEFT
 * names, f16), like kohya's full LoRAs or LCM-LoRA SDXL: every 2-D and 4-D weight of the UNet under
 * down_blocks., mid_block. and up_blocks. (attention projections, feed-forward, proj_in/proj_out, resnet
 * convolutions, time_emb_proj, shortcuts, down/upsampler convolutions); not the IP-Adapter's to_k_ip/to_v_ip.
 *
 * Merged: load, set the precision, time is_unet_set_loras, resident size before and after and the peak
 * during it, then one UNet evaluation (1024x1024 in bf16, 512x512 in f32) with the LoRA merged.
 * Side product: for every module of the file, the two low-rank products (and the add into the layer's
 * output) it would cost per UNet evaluation with batch 2 (CFG), at the token counts of an SDXL UNet
 * evaluation, on random inputs, through the same kernels (kernels/dnn.h: bf16 with the LoRA's own tensors
 * packed, or the exact f32 kernels). It is measured here only; the engine does not implement it. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bench.h"
#include "core/fileio.h"
#include "core/safetensors.h"
#include "kernels/dnn.h"
#include "kernels/kernels.h"

static const double gib = 1024.0 * 1024.0 * 1024.0;

void bench_lora_path(const char *dir, int rank, char *buf, size_t cap) {
    snprintf(buf, cap, "%s/lora_full_r%d.safetensors", dir, rank);
}

static int unet_module_weight(const is_tensor *t) {
    const char *n = t->name;
    size_t len = strlen(n);
    int in_blocks = !strncmp(n, "down_blocks.", 12) || !strncmp(n, "mid_block.", 10) || !strncmp(n, "up_blocks.", 10);
    int is_float = t->dtype == IS_DT_F32 || t->dtype == IS_DT_F16 || t->dtype == IS_DT_BF16;
    return in_blocks && is_float && (t->ndim == 2 || t->ndim == 4) && len > 7 && !strcmp(n + len - 7, ".weight");
}

/* f16 values uniform in [-scale, scale) */
static void random_f16(uint16_t *v, int64_t n, float scale, uint32_t *seed) {
    for (int64_t i = 0; i < n; i++) {
        *seed = *seed * 1664525u + 1013904223u;
        v[i] = is_f32_to_f16(scale * ((float)(*seed >> 8) / (float)(1u << 23) - 1.0f));
    }
}

is_error *bench_lora_write(const char *dir, int rank) {
    if (rank < 1) return is_errorf(IS_E_ARGUMENT, "--lora-rank must be at least 1");
    char unet_dir[4096], path[4200];
    snprintf(unet_dir, sizeof unet_dir, "%s/unet", dir);
    bench_lora_path(dir, rank, path, sizeof path);
    is_st *st = NULL;
    IS_TRY(is_st_open_in_dir(unet_dir, "diffusion_pytorch_model", &st));
    is_st_writer *w = is_st_writer_new();
    is_error *err = w ? NULL : is_error_oom("LoRA writer");
    uint16_t *buf = NULL;
    size_t cap = 0;
    uint32_t seed = 12345;
    int modules = 0;
    for (size_t i = 0; !err && i < is_st_count(st); i++) {
        const is_tensor *t = is_st_at(st, i);
        if (!unet_module_weight(t)) continue;
        char module[512], name[600];
        snprintf(module, sizeof module, "%.*s", (int)(strlen(t->name) - 7), t->name);
        int conv = t->ndim == 4;
        int64_t out = t->shape[0], K = t->numel / out;
        int64_t a_shape[4] = {rank, t->shape[1], conv ? t->shape[2] : 0, conv ? t->shape[3] : 0};
        int64_t b_shape[4] = {out, rank, 1, 1};
        size_t need = (size_t)(rank * (K > out ? K : out));
        if (need > cap) {
            free(buf);
            cap = need;
            if (!(buf = malloc(cap * sizeof(uint16_t)))) {
                err = is_error_oom("LoRA tensor");
                break;
            }
        }
        random_f16(buf, rank * K, 0.01f, &seed);
        snprintf(name, sizeof name, "unet.%s.lora_A.weight", module);
        if ((err = is_st_writer_add(w, name, IS_DT_F16, t->ndim, a_shape, buf))) break;
        random_f16(buf, rank * out, 0.01f, &seed);
        snprintf(name, sizeof name, "unet.%s.lora_B.weight", module);
        if ((err = is_st_writer_add(w, name, IS_DT_F16, t->ndim, b_shape, buf))) break;
        modules++;
    }
    if (!err && modules == 0) err = is_errorf(IS_E_FORMAT, "%s: no down_blocks./mid_block./up_blocks. weights", unet_dir);
    if (!err) err = is_st_writer_save(w, path);
    if (!err) printf("  %d modules, rank %d -> %s\n", modules, rank, path);
    free(buf);
    is_st_writer_free(w);
    is_st_close(st);
    return err;
}

is_error *bench_lora_ensure(const char *dir, int rank) {
    char path[4200], r[16];
    bench_lora_path(dir, rank, path, sizeof path);
    struct stat sb;
    if (stat(path, &sb) == 0 && sb.st_size > 0) return NULL;
    printf("writing a full-coverage random LoRA (rank %d) for %s/unet ...\n", rank, dir);
    double t0 = bench_now();
    snprintf(r, sizeof r, "%d", rank);
    /* in a separate process: the writer holds the whole file in memory; keep that out of the measured one */
    char *args[] = {"is_bench", "--write-lora", r, "--model-dir", (char *)dir, NULL};
    if (bench_run_self(args)) return is_errorf(IS_E_IO, "writing the random LoRA %s failed", path);
    printf("  done in %.0f s\n", bench_now() - t0);
    return NULL;
}

/* ---- resident size of this process, GiB: current (VmRSS) and high-water mark (VmHWM) */

static void rss_now(double *rss, double *hwm) {
    char line[256];
    long kib;
    *rss = *hwm = 0;
    FILE *f = fopen("/proc/self/status", "r");
    while (f && fgets(line, sizeof line, f)) {
        if (sscanf(line, "VmRSS: %ld kB", &kib) == 1) *rss = (double)kib / (1024.0 * 1024.0);
        if (sscanf(line, "VmHWM: %ld kB", &kib) == 1) *hwm = (double)kib / (1024.0 * 1024.0);
    }
    if (f) fclose(f);
}

/* The high-water mark becomes the current resident size (Linux >= 4.0). */
static void peak_reset(void) {
    FILE *f = fopen("/proc/self/clear_refs", "w");
    if (!f) return;
    fputs("5", f);
    fclose(f);
}

/* ---- the side product */

typedef struct {
    const is_tensor *down, *up;
    int conv, stride, pad;
    int level_shift;  /* resolution = latent >> level_shift (input of the down conv) */
    int tokens;       /* linear layers reading the text context (77) or the time embedding (1); 0: res^2 */
} side_mod;

static int block_index(const char *name, const char *prefix) { return atoi(name + strlen(prefix)); }

/* The module's place in the UNet from its name (SDXL: 3 levels, latent, /2, /4; see the header). */
static void place(side_mod *m, const char *module) {
    if (!strncmp(module, "down_blocks.", 12)) m->level_shift = block_index(module, "down_blocks.");
    else if (!strncmp(module, "mid_block.", 10)) m->level_shift = 2;
    else {
        int i = block_index(module, "up_blocks.");
        /* the upsampler's conv runs after the 2x nearest upsample: one level finer */
        m->level_shift = strstr(module, ".upsamplers.") ? 1 - i : 2 - i;
    }
    m->stride = strstr(module, ".downsamplers.") ? 2 : 1;
    m->pad = m->conv ? (m->stride == 2 ? 1 : (int)(m->down->shape[2] / 2)) : 0;
    m->tokens = 0;
    if (strstr(module, ".attn2.to_k") || strstr(module, ".attn2.to_v")) m->tokens = 77;
    if (strstr(module, ".time_emb_proj")) m->tokens = 1;
}

/* Per image: rows M of the linear, or input H (= W) of the conv and its output Ho. */
static void geometry(const side_mod *m, int latent, int64_t *M, int64_t *H, int64_t *Ho) {
    int64_t res = latent >> m->level_shift;
    *H = res;
    *Ho = m->conv ? is_conv_out_size(res, m->down->shape[2], m->stride, m->pad) : res;
    *M = m->tokens ? m->tokens : res * res;
}

/* kind: 0 linear, 1 conv, -1 both */
static double side_flop(const side_mod *mods, int n, int latent, int batch, int kind) {
    double f = 0;
    for (int i = 0; i < n; i++) {
        const side_mod *m = &mods[i];
        if (kind >= 0 && m->conv != kind) continue;
        int64_t M, H, Ho, R = m->down->shape[0], out = m->up->shape[0], K = m->down->numel / R;
        geometry(m, latent, &M, &H, &Ho);
        int64_t rows = m->conv ? Ho * Ho : M;
        f += 2.0 * (double)batch * (double)rows * (double)R * (double)(K + out);
    }
    return f;
}

typedef struct {
    float *x, *mid, *ys, *y;
} side_bufs;

/* One pass: every module's down, up and the add of s * up(down x) into the layer output y. */
/* t_kind (may be NULL): seconds of the linear [0] and the conv [1] modules are added there. */
static void side_pass(is_dnn *d, const side_mod *mods, int n, int latent, int batch, const side_bufs *b, double *t_kind) {
    const float s = 1.0f;
    for (int i = 0; i < n; i++) {
        double t0 = bench_now();
        const side_mod *m = &mods[i];
        int64_t M, H, Ho, R = m->down->shape[0], out = m->up->shape[0];
        geometry(m, latent, &M, &H, &Ho);
        if (!m->conv) {
            int64_t rows = (int64_t)batch * M;
            is_dnn_linear(d, b->mid, b->x, rows, m->down, NULL);
            is_dnn_linear(d, b->ys, b->mid, rows, m->up, NULL);
            int64_t k = rows * out;
#pragma omp parallel for schedule(static)
            for (int64_t e = 0; e < k; e++) b->y[e] += s * b->ys[e];
        } else {
            int64_t Cin = m->down->shape[1], per_in = Cin * H * H, per_out = out * Ho * Ho;
            for (int img = 0; img < batch; img++) {
                is_dnn_conv2d(d, b->mid, b->x + img * per_in, Cin, H, H, m->down, NULL, m->stride, m->pad);
                is_dnn_conv2d(d, b->ys, b->mid, R, Ho, Ho, m->up, NULL, 1, 0);
                float *y = b->y + img * per_out;
#pragma omp parallel for schedule(static)
                for (int64_t e = 0; e < per_out; e++) y[e] += s * b->ys[e];
            }
        }
        if (t_kind) t_kind[m->conv] += bench_now() - t0;
    }
}

static is_error *side_product(const char *lora_path, int bf16, const int *sizes, int n_sizes, bench_lora *L) {
    is_st *st = NULL;
    IS_TRY(is_st_open(lora_path, &st));
    size_t cnt = is_st_count(st);
    side_mod *mods = calloc(cnt ? cnt : 1, sizeof *mods);
    is_dnn *d = NULL;
    side_bufs b = {0};
    is_error *err = mods ? NULL : is_error_oom("LoRA modules");
    int n = 0;
    const char *suffix = ".lora_A.weight";
    for (size_t i = 0; !err && i < cnt; i++) {
        const is_tensor *t = is_st_at(st, i);
        size_t len = strlen(t->name), sl = strlen(suffix);
        if (len <= 5 + sl || strncmp(t->name, "unet.", 5) || strcmp(t->name + len - sl, suffix)) continue;
        char module[512], up_name[600];
        snprintf(module, sizeof module, "%.*s", (int)(len - sl - 5), t->name + 5);
        snprintf(up_name, sizeof up_name, "unet.%s.lora_B.weight", module);
        side_mod *m = &mods[n];
        m->down = t;
        if (!(m->up = is_st_find(st, up_name))) err = is_errorf(IS_E_FORMAT, "%s: no %s", lora_path, up_name);
        else {
            m->conv = t->ndim == 4;
            place(m, module);
            n++;
            if (m->conv) L->n_conv++;
            else L->n_linear++;
        }
    }
    L->modules = n;
    if (!err && bf16) {
        err = is_dnn_create(&d);
        for (int i = 0; !err && i < n; i++) {
            err = is_dnn_pack(d, st, mods[i].down);
            if (!err) err = is_dnn_pack(d, st, mods[i].up);
        }
        if (!err) L->side_packed_bytes = (double)is_dnn_packed_bytes(d);
    }
    /* buffers for the largest size */
    int64_t nx = 1, nmid = 1, ny = 1;
    const int batch = 2;
    int latent_max = 0;
    for (int s = 0; s < n_sizes; s++)
        if (sizes[s] / 8 > latent_max) latent_max = sizes[s] / 8;
    for (int i = 0; !err && i < n; i++) {
        const side_mod *m = &mods[i];
        int64_t M, H, Ho, R = m->down->shape[0], out = m->up->shape[0], K = m->down->numel / R;
        geometry(m, latent_max, &M, &H, &Ho);
        int64_t in_e = m->conv ? m->down->shape[1] * H * H : M * K, rows = m->conv ? Ho * Ho : M;
        if (batch * in_e > nx) nx = batch * in_e;
        if (batch * rows * R > nmid) nmid = batch * rows * R;
        if (batch * rows * out > ny) ny = batch * rows * out;
    }
    if (!err) {
        b.x = malloc((size_t)nx * sizeof(float)), b.mid = malloc((size_t)nmid * sizeof(float));
        b.ys = malloc((size_t)ny * sizeof(float)), b.y = calloc((size_t)ny, sizeof(float));
        if (!b.x || !b.mid || !b.ys || !b.y) err = is_error_oom("side product buffers");
        else bench_random_fill(b.x, nx, 1.0f, 9);
    }
    for (int s = 0; !err && s < n_sizes; s++) {
        int latent = sizes[s] / 8;
        side_pass(d, mods, n, latent, batch, &b, NULL); /* warm-up: primitives, scratch, page faults */
        double t0 = bench_now(), c0 = bench_cpu_now();
        side_pass(d, mods, n, latent, batch, &b, L->side_kind_s[s]);
        L->side_size[s] = sizes[s];
        L->side_s[s] = bench_now() - t0;
        L->side_cpu_s[s] = bench_cpu_now() - c0;
        L->side_gflop[s] = side_flop(mods, n, latent, batch, -1) * 1e-9;
        L->side_conv_gflop[s] = side_flop(mods, n, latent, batch, 1) * 1e-9;
        L->n_side = s + 1;
    }
    for (int64_t e = 0; !err && e < ny; e++)
        if (!isfinite(b.y[e])) err = is_errorf(IS_E_INTERNAL, "side product output is not finite");
    if (d) L->side_fallbacks = is_dnn_fallbacks(d);
    free(b.x), free(b.mid), free(b.ys), free(b.y);
    is_dnn_free(d);
    free(mods);
    is_st_close(st);
    return err;
}

is_error *bench_lora_run(const char *dir, is_precision p, int rank, int warmup, bench_lora *L) {
    char unet_dir[4096], path[4200];
    snprintf(unet_dir, sizeof unet_dir, "%s/unet", dir);
    bench_lora_path(dir, rank, path, sizeof path);
    L->rank = rank;
    L->bf16 = is_precision_resolve(p, NULL, 0) == IS_PRECISION_BF16;
    struct stat sb;
    L->file_bytes = stat(path, &sb) == 0 ? (double)sb.st_size : 0;
    /* the patched weights' size as f32 (what f32 merging copies), from the file's shapes */
    {
        is_st *st = NULL;
        IS_TRY(is_st_open(path, &st));
        double f32 = 0;
        for (size_t i = 0; i < is_st_count(st); i++) {
            const is_tensor *a = is_st_at(st, i);
            size_t len = strlen(a->name);
            if (len < 14 || strcmp(a->name + len - 14, ".lora_A.weight")) continue;
            char up[600];
            snprintf(up, sizeof up, "%.*s.lora_B.weight", (int)(len - 14), a->name);
            const is_tensor *b = is_st_find(st, up);
            if (b) f32 += 4.0 * (double)b->shape[0] * (double)(a->numel / a->shape[0]);
        }
        L->patched_f32_bytes = f32;
        is_st_close(st);
    }

    /* merged */
    double t0 = bench_now();
    is_unet *u = NULL;
    IS_TRY(is_unet_load(unet_dir, &u));
    is_error *err = is_unet_set_precision(u, p);
    L->load_s = bench_now() - t0;
    if (!err) {
        rss_now(&L->rss_loaded, &L->peak_loaded);
        peak_reset();
        is_lora lora = {path, 1.0f};
        double t1 = bench_now(), c1 = bench_cpu_now();
        err = is_unet_set_loras(u, &lora, 1);
        L->set_s = bench_now() - t1;
        L->set_cpu_s = bench_cpu_now() - c1;
        double hwm;
        rss_now(&L->rss_after, &hwm);
        L->peak_set = hwm;
    }
    L->eval_size = L->bf16 ? 1024 : 512; /* f32 at 1024 takes minutes per evaluation */
    if (!err) {
        int finite = 1;
        err = bench_unet_eval(u, L->eval_size, warmup, 1, &L->eval_s, &L->eval_cpu_s, &L->eval_gflop, &finite);
        if (!err && !finite) err = is_errorf(IS_E_INTERNAL, "UNet output with the LoRA merged is not finite");
    }
    if (!err) rss_now(&L->rss_eval, &L->peak_eval);
    is_unet_free(u);
    if (err) return err;

    /* side product: at the evaluation's size, and in f32 also at 1024 */
    int sizes[2] = {L->eval_size, 1024};
    return side_product(path, L->bf16, sizes, L->eval_size == 1024 ? 1 : 2, L);
}

void bench_lora_print(const bench_lora *L, int steps) {
    const char *prec = L->bf16 ? "bf16" : "f32";
    printf("LoRA rank %d, %d modules (%d linear, %d conv), file %.2f GiB (f16); the patched weights as f32: %.2f GiB\n",
           L->rank, L->modules, L->n_linear, L->n_conv, L->file_bytes / gib, L->patched_f32_bytes / gib);
    printf("merged (%s): set_loras %.1f s (%.2f cores), RSS %.2f -> %.2f GiB (%+.2f), peak %.2f GiB (before: %.2f);"
           " UNet eval %d %.1f s (%.2f cores), %.0f GFLOP (unchanged by merging); RSS after it %.2f GiB, peak %.2f GiB\n",
           prec, L->set_s, L->set_cpu_s / L->set_s, L->rss_loaded, L->rss_after, L->rss_after - L->rss_loaded,
           L->peak_set, L->peak_loaded, L->eval_size, L->eval_s, L->eval_cpu_s / L->eval_s, L->eval_gflop, L->rss_eval,
           L->peak_eval);
    for (int s = 0; s < L->n_side; s++) {
        printf("side product (%s): +%.2f s per UNet evaluation at %d (%.2f cores)", prec, L->side_s[s], L->side_size[s],
               L->side_cpu_s[s] / L->side_s[s]);
        if (L->side_size[s] == L->eval_size && L->eval_s > 0)
            printf(" (+%.1f%% of the eval's wall time, +%.1f%% of its CPU time)", 100.0 * L->side_s[s] / L->eval_s,
                   L->eval_cpu_s > 0 ? 100.0 * L->side_cpu_s[s] / L->eval_cpu_s : 0.0);
        else
            printf(" (no UNet evaluation at %d in this run)", L->side_size[s]);
        printf(", +%.0f GFLOP (%.0f GFLOP/s); over %d CFG steps +%.0f s; memory: the LoRA file only", L->side_gflop[s],
               L->side_gflop[s] / L->side_s[s], steps, steps * L->side_s[s]);
        if (L->bf16) printf(" (packed to bf16: %.2f GiB)", L->side_packed_bytes / gib);
        printf("\n");
    }
    for (int s = 0; s < L->n_side; s++)
        printf("  side product at %d: linear modules %.2f s, %.0f GFLOP; conv modules %.2f s, %.0f GFLOP\n", L->side_size[s],
               L->side_kind_s[s][0], L->side_gflop[s] - L->side_conv_gflop[s], L->side_kind_s[s][1], L->side_conv_gflop[s]);
    if (L->side_fallbacks) printf("  (%lld side-product operations fell back to f32)\n", (long long)L->side_fallbacks);
}
