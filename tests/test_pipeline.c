/* End to end: `instantstyle generate` (the real program, run as a user would) on the tiny
 * SDXL for every cases/pipeline_* golden: every dumped tensor and the PNG's pixels. Also
 * bad-input runs (clear error, non-zero exit, no output file left behind), the output targets
 * (symlinks followed; devices, FIFOs, folders refused before any work; --out -), repeated options,
 * progress and --quiet, the PNG parameters, SIGINT/SIGTERM, and is_encode_png. */
#include <dirent.h>
#include <png.h>
#include <setjmp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/fileio.h"
#include "harness.h"
#include "instantstyle.h"
#include "tiny/tiny_model.h"

#define MAX_ARGS 96

/* Start the program in `cwd` (NULL: here) with stdout to out_path (NULL: inherited) and stderr to
 * err_path. Returns its pid, or -1. */
static pid_t start_cli(const char *cwd, char **argv, const char *out_path, const char *err_path) {
    fflush(stdout);
    pid_t pid = fork();
    if (pid != 0) return pid;
    if (cwd && chdir(cwd) != 0) _exit(127);
    if (out_path && !freopen(out_path, "w", stdout)) _exit(127);
    if (!freopen(err_path, "w", stderr)) _exit(127);
    execv(argv[0], argv);
    _exit(127);
}

/* Exit status of pid, or -1 (killed by a signal, or no such child). */
static int wait_cli(pid_t pid) {
    int status = 0;
    if (pid < 0 || waitpid(pid, &status, 0) < 0) return -1;
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

static int run_cli_io(const char *cwd, char **argv, const char *out_path, const char *err_path) {
    return wait_cli(start_cli(cwd, argv, out_path, err_path));
}

/* Run the program in `cwd`; stderr goes to err_path. Returns the exit status (or -1). */
static int run_cli(const char *cwd, char **argv, const char *err_path) { return run_cli_io(cwd, argv, NULL, err_path); }

static char *slurp(const char *path) {
    char *text = NULL;
    size_t n = 0;
    is_error *e = is_read_file(path, 1 << 20, &text, &n);
    is_error_free(e);
    return text ? text : strdup("");
}

/* Count files in dir whose name starts with prefix (leftover temp files). */
static int count_prefixed(const char *dir, const char *prefix) {
    DIR *d = opendir(dir);
    if (!d) return 0;
    int n = 0;
    struct dirent *ent;
    while ((ent = readdir(d)))
        if (!strncmp(ent->d_name, prefix, strlen(prefix))) n++;
    closedir(d);
    return n;
}


/* The PNG's "parameters" text chunk (A1111 layout), or NULL. Caller frees. */
static char *png_parameters(const char *path) {
    FILE *fp = fopen(path, "rb");
    if (!fp) return NULL;
    char *result = NULL;
    png_structp png = png_create_read_struct(PNG_LIBPNG_VER_STRING, NULL, NULL, NULL);
    png_infop info = png ? png_create_info_struct(png) : NULL;
    if (png && info && !setjmp(png_jmpbuf(png))) {
        png_init_io(png, fp);
        png_read_info(png, info);
        png_textp text = NULL;
        int n = png_get_text(png, info, &text, NULL);
        for (int i = 0; i < n; i++)
            if (!strcmp(text[i].key, "parameters")) result = strdup(text[i].text);
    }
    png_destroy_read_struct(&png, &info, NULL);
    fclose(fp);
    return result;
}

static const char *option(const cJSON *c, const char *key, char *buf, size_t cap) {
    const cJSON *opts = cJSON_GetObjectItemCaseSensitive(c, "options");
    const cJSON *v = opts ? cJSON_GetObjectItemCaseSensitive(opts, key) : NULL;
    if (cJSON_IsString(v)) return v->valuestring;
    if (cJSON_IsNumber(v)) {
        snprintf(buf, cap, "%g", v->valuedouble);
        return buf;
    }
    return NULL;
}

static const char *program(void) {
    static char path[4096];
    snprintf(path, sizeof path, "%s/instantstyle", IS_BINARY_DIR);
    return path;
}

static void run_case(const char *group) {
    cJSON *root = th_load_cases(group);
    cJSON *c = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(root, "cases"), 0);
    cJSON *argv_json = cJSON_GetObjectItemCaseSensitive(c, "instantstyle_generate_argv");
    char *case_dir = th_case_path(group, "");
    char *model = th_golden_path("models/tiny-sdxl");
    char *adapter = th_golden_path("models/tiny-ip-adapter/ip-adapter_sdxl.safetensors");
    char out_png[4096], out_st[4096], err_path[4096];
    snprintf(out_png, sizeof out_png, "%s/%s.png", th_tmpdir(), group);
    snprintf(out_st, sizeof out_st, "%s/%s.safetensors", th_tmpdir(), group);
    snprintf(err_path, sizeof err_path, "%s/%s.stderr", th_tmpdir(), group);
    unlink(out_png);
    unlink(out_st);

    char *args[MAX_ARGS];
    int n = 0;
    args[n++] = (char *)program();
    args[n++] = "generate";
    int has_model = 0, has_adapter = 0;
    for (cJSON *a = argv_json ? argv_json->child : NULL; a && n < MAX_ARGS - 14; a = a->next) {
        has_model |= !strcmp(a->valuestring, "--model");
        has_adapter |= !strcmp(a->valuestring, "--ip-adapter");
        args[n++] = a->valuestring;
    }
    /* The older cases' command lines leave out the model and the adapter (the newer ones name them,
     * relative to the case folder the program runs in). */
    if (!has_model) {
        args[n++] = "--model";
        args[n++] = model;
    }
    int has_style = cJSON_GetObjectItemCaseSensitive(c, "style_image") &&
                    cJSON_IsString(cJSON_GetObjectItemCaseSensitive(c, "style_image"));
    if (!has_style) { /* the newer cases keep their options in "options" */
        const cJSON *opts = cJSON_GetObjectItemCaseSensitive(c, "options");
        has_style = opts && cJSON_IsString(cJSON_GetObjectItemCaseSensitive(opts, "style_image"));
    }
    if (has_style && !has_adapter) {
        args[n++] = "--ip-adapter";
        args[n++] = adapter;
    }
    args[n++] = "--out";
    args[n++] = out_png;
    args[n++] = "--dump-tensors";
    args[n++] = out_st;
    args[n++] = "--quiet";
    /* The goldens are f32 references with f32 tolerances: the exact mode, not the default (auto, which
     * is bf16 on a CPU with AMX). */
    args[n++] = "--precision";
    args[n++] = "f32";
    args[n] = NULL;

    int rc = run_cli(case_dir, args, err_path);
    char *err_text = slurp(err_path);
    th_check(rc == 0, "%s: instantstyle generate exited %d: %s", group, rc, err_text);
    free(err_text);

    is_st *got = NULL;
    is_st *exp = th_open_expected(group, "expected.safetensors");
    if (rc == 0 && th_ok(is_st_open(out_st, &got), "open dumped tensors") && exp) {
        /* Every expected tensor the engine dumps (step_noise is internal to the euler_a scheduler;
         * its effect is checked through latents_steps). */
        cJSON *tol = cJSON_GetObjectItemCaseSensitive(c, "tolerance");
        for (cJSON *t = tol ? tol->child : NULL; t; t = t->next) {
            const char *name = t->string;
            if (!strcmp(name, "step_noise")) continue;
            char what[256];
            snprintf(what, sizeof what, "%s %s", group, name);
            const is_tensor *g = is_st_find(got, name);
            const is_tensor *x = th_tensor(exp, name);
            if (!g) {
                th_check(0, "%s: not in the --dump-tensors file", what);
                continue;
            }
            if (!x) continue;
            char gs[128], xs[128];
            th_check(g->ndim == x->ndim && !memcmp(g->shape, x->shape, sizeof(int64_t) * (size_t)x->ndim),
                     "%s: dumped shape %s, expected %s", what, is_shape_str(g->shape, g->ndim, gs, sizeof gs),
                     is_shape_str(x->shape, x->ndim, xs, sizeof xs));
            double atol, rtol;
            th_tolerance(c, name, &atol, &rtol);
            float *gv = is_tensor_dup_f32(g);
            th_close(what, gv, (size_t)g->numel, x, atol, rtol);
            free(gv);
        }
    }
    /* The A1111 "parameters" chunk names the prompt, seed, size and sampler. */
    char *params = rc == 0 ? png_parameters(out_png) : NULL;
    th_check(params != NULL, "%s: PNG has no 'parameters' text chunk", group);
    if (params) {
        char buf[64], want[256];
        const char *prompt = option(c, "prompt", buf, sizeof buf);
        th_check(prompt && !strncmp(params, prompt, strlen(prompt)), "%s: parameters do not start with the prompt: %s",
                 group, params);
        snprintf(want, sizeof want, "Seed: %s,", option(c, "seed", buf, sizeof buf));
        th_check(strstr(params, want) != NULL, "%s: parameters lack '%s': %s", group, want, params);
        /* img2img cases take the size from the init image: the expected PNG says what it is */
        const is_tensor *u8 = exp ? is_st_find(exp, "image_u8") : NULL;
        if (u8 && u8->ndim == 4) {
            snprintf(want, sizeof want, "Size: %lldx%lld,", (long long)u8->shape[2], (long long)u8->shape[1]);
            th_check(strstr(params, want) != NULL, "%s: parameters lack '%s': %s", group, want, params);
        }
        const char *init = option(c, "init_image", buf, sizeof buf);
        if (init) {
            snprintf(want, sizeof want, "Denoising strength: %s,", option(c, "strength", buf, sizeof buf));
            th_check(strstr(params, want) != NULL, "%s: parameters lack '%s': %s", group, want, params);
        }
        if (option(c, "control_image", buf, sizeof buf) || option(c, "control_canny", buf, sizeof buf)) {
            snprintf(want, sizeof want, "Control scale: %s,", option(c, "control_scale", buf, sizeof buf));
            th_check(strstr(params, want) != NULL, "%s: parameters lack '%s': %s", group, want, params);
        }
        const char *sampler = option(c, "sampler", buf, sizeof buf);
        const char *label = !sampler ? "Sampler: Euler," : !strcmp(sampler, "euler_a") ? "Sampler: Euler a,"
                            : !strcmp(sampler, "ddim") ? "Sampler: DDIM," : !strcmp(sampler, "dpmpp_2m") ? "Sampler: DPM++ 2M,"
                            : !strcmp(sampler, "lcm") ? "Sampler: LCM," : !strcmp(sampler, "tcd") ? "Sampler: TCD,"
                            : "Sampler: Euler,";
        th_check(strstr(params, label) != NULL, "%s: parameters lack '%s': %s", group, label, params);
        th_check(strstr(params, "Precision: f32,") != NULL, "%s: parameters lack 'Precision: f32,': %s", group, params);
        free(params);
    }
    /* The PNG itself: decoded pixels against expected.png (atol 1, as image_u8). */
    char *exp_png = th_case_path(group, "expected.png");
    is_image a = {0, 0, NULL}, b = {0, 0, NULL};
    if (rc == 0 && th_ok(is_image_load(out_png, &a), "decode written PNG") &&
        th_ok(is_image_load(exp_png, &b), "decode expected.png")) {
        th_check(a.width == b.width && a.height == b.height, "%s: PNG is %dx%d, expected %dx%d", group, a.width,
                 a.height, b.width, b.height);
        if (a.width == b.width && a.height == b.height) {
            size_t npx = (size_t)a.width * a.height * 3;
            float *fa = malloc(npx * sizeof(float)), *fb = malloc(npx * sizeof(float));
            for (size_t i = 0; i < npx; i++) fa[i] = a.rgb[i], fb[i] = b.rgb[i];
            char what[256];
            snprintf(what, sizeof what, "%s PNG pixels", group);
            th_close_f32(what, fa, fb, npx, 1.0, 0.0);
            free(fa);
            free(fb);
        }
    }
    is_image_free(&a);
    is_image_free(&b);
    free(exp_png);
    is_st_close(got);
    is_st_close(exp);
    free(case_dir);
    free(model);
    free(adapter);
    cJSON_Delete(root);
}

/* ---------------------------------------------------------------- runs that must fail, and the CLI's contract */

static char g_model[4096], g_adapter[4096], g_style[4096];

static void init_paths(void) {
    snprintf(g_model, sizeof g_model, "%s/models/tiny-sdxl", th_golden());
    snprintf(g_adapter, sizeof g_adapter, "%s/models/tiny-ip-adapter/ip-adapter_sdxl.safetensors", th_golden());
    snprintf(g_style, sizeof g_style, "%s/images/tiny_50x40.png", th_golden());
}

enum {
    CLI_REPLACE = 0, /* an extra "--name value" replaces the base run's --name */
    CLI_APPEND = 1,  /* extras are appended as given (to repeat an option) */
    CLI_LOUD = 2,    /* no --quiet: the stage log shows whether any work was done */
};

/* argv for the tiny model with the style image, 64x64, 2 steps, writing out_png, plus extra. */
static int build_args(char **args, const char *out_png, char **extra, int n_extra, int flags) {
    char *base[] = {"--model", g_model, "--ip-adapter", g_adapter, "--style-image", g_style, "--prompt", "a cat",
                    "--width", "64", "--height", "64", "--steps", "2", "--out", (char *)out_png};
    int n = 0, nb = (int)(sizeof base / sizeof *base);
    int used[MAX_ARGS] = {0};
    args[n++] = (char *)program();
    args[n++] = "generate";
    for (int b = 0; b < nb; b += 2) {
        args[n++] = base[b];
        args[n] = base[b + 1];
        for (int e = 0; !(flags & CLI_APPEND) && e + 1 < n_extra; e++)
            if (!strcmp(extra[e], base[b])) args[n] = extra[e + 1], used[e] = used[e + 1] = 1;
        n++;
    }
    for (int e = 0; e < n_extra && n < MAX_ARGS - 2; e++)
        if (!used[e]) args[n++] = extra[e];
    if (!(flags & CLI_LOUD)) args[n++] = "--quiet";
    args[n] = NULL;
    return n;
}

static int count_of(const char *text, const char *needle) {
    int n = 0;
    for (const char *p = text; (p = strstr(p, needle)); p += strlen(needle)) n++;
    return n;
}

/* A run that must fail: non-zero exit, message containing needle, no output or temp file; with
 * CLI_LOUD also no stage log (the error came before any network ran). Returns stderr (caller frees). */
static char *cli_error(const char *what, const char *needle, char **extra, int n_extra, int flags) {
    char dir[2048], out_png[4096], err_path[4096];
    snprintf(dir, sizeof dir, "%s/bad-run", th_tmpdir());
    mkdir(dir, 0755);
    snprintf(out_png, sizeof out_png, "%s/out.png", dir);
    snprintf(err_path, sizeof err_path, "%s/../bad-run.stderr", dir);
    unlink(out_png);
    char *args[MAX_ARGS];
    build_args(args, out_png, extra, n_extra, flags);
    int rc = run_cli(NULL, args, err_path);
    char *msg = slurp(err_path);
    th_check(rc != 0 && rc != 127, "%s: exit status %d, expected a failure", what, rc);
    th_check(strstr(msg, needle) != NULL, "%s: message '%s' does not mention '%s'", what, msg, needle);
    th_check(!is_file_exists(out_png), "%s: left an output file behind", what);
    th_check(count_prefixed(dir, "out.png.tmp") == 0, "%s: left a temporary file behind", what);
    if (flags & CLI_LOUD)
        th_check(!strstr(msg, "text encoders"), "%s: failed only after work had started: %s", what, msg);
    if (rc != 0) printf("  ok (expected failure) %s: %s", what, strstr(msg, "instantstyle: ") ? strstr(msg, "instantstyle: ") : msg);
    return msg;
}

static void expect_cli_error(const char *what, const char *needle, char **extra, int n_extra) {
    free(cli_error(what, needle, extra, n_extra, CLI_REPLACE));
}

static int is_png_bytes(const char *data, size_t n) {
    static const unsigned char sig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
    static const unsigned char iend[8] = {'I', 'E', 'N', 'D', 0xAE, 0x42, 0x60, 0x82};
    return n > 20 && !memcmp(data, sig, 8) && !memcmp(data + n - 8, iend, 8); /* whole: ends with IEND */
}

static int is_png_file(const char *path) {
    char *data = NULL;
    size_t n = 0;
    is_error *e = is_read_file(path, 64u << 20, &data, &n);
    int ok = !e && is_png_bytes(data, n);
    is_error_free(e);
    free(data);
    return ok;
}

/* --out through a symlink replaces the file it names and keeps the link; devices, FIFOs, folders and
 * empty names are refused before any work and left as they were. */
static void output_targets(void) {
    char dir[4096], real[4200], link_path[4200], dev[4200], fifo[4200], err_path[4200];
    snprintf(dir, sizeof dir, "%s/targets", th_tmpdir());
    mkdir(dir, 0755);
    snprintf(real, sizeof real, "%s/real.png", dir);
    snprintf(link_path, sizeof link_path, "%s/link.png", dir);
    snprintf(err_path, sizeof err_path, "%s/targets.stderr", th_tmpdir());
    th_ok(is_write_file_atomic(real, "old", 3), real);
    unlink(link_path);
    th_check(symlink("real.png", link_path) == 0, "symlink %s", link_path);
    char *args[MAX_ARGS];
    build_args(args, link_path, NULL, 0, 0);
    int rc = run_cli(NULL, args, err_path);
    struct stat st;
    char target[64] = {0};
    th_check(rc == 0, "--out SYMLINK: exit status %d", rc);
    th_check(lstat(link_path, &st) == 0 && S_ISLNK(st.st_mode), "--out SYMLINK: the link was replaced");
    th_check(readlink(link_path, target, sizeof target - 1) == 8 && !strcmp(target, "real.png"),
             "--out SYMLINK: the link now points to '%s'", target);
    th_check(is_png_file(real), "--out SYMLINK: the file it names is not the PNG");
    th_check(count_prefixed(dir, "real.png.tmp") + count_prefixed(dir, "link.png.tmp") == 0,
             "--out SYMLINK: temporary file left behind");

    /* A private character device like /dev/null (a real one only where mknod is not allowed, where
     * nothing can replace /dev/null either). */
    snprintf(dev, sizeof dev, "%s/null-dev", dir);
    unlink(dev);
    if (mknod(dev, S_IFCHR | 0666, makedev(1, 3)) != 0) snprintf(dev, sizeof dev, "/dev/null");
    char *to_dev[] = {"--out", dev};
    free(cli_error("--out DEVICE", "character device", to_dev, 2, CLI_LOUD));
    th_check(stat(dev, &st) == 0 && S_ISCHR(st.st_mode), "--out DEVICE: %s is no longer a character device", dev);
    snprintf(fifo, sizeof fifo, "%s/fifo", dir);
    unlink(fifo);
    th_check(mkfifo(fifo, 0644) == 0, "mkfifo %s", fifo);
    char *to_fifo[] = {"--out", fifo};
    free(cli_error("--out FIFO", "FIFO", to_fifo, 2, CLI_LOUD));
    th_check(stat(fifo, &st) == 0 && S_ISFIFO(st.st_mode), "--out FIFO: %s is no longer a FIFO", fifo);
    char *to_dir[] = {"--out", dir};
    free(cli_error("--out DIR", "is a directory", to_dir, 2, CLI_LOUD));
    th_check(stat(dir, &st) == 0 && S_ISDIR(st.st_mode), "--out DIR: %s is no longer a folder", dir);
    char *to_empty[] = {"--out", ""};
    free(cli_error("--out ''", "empty", to_empty, 2, CLI_LOUD));
    char *dump_dir[] = {"--dump-tensors", dir};
    free(cli_error("--dump-tensors DIR", "--dump-tensors: ", dump_dir, 2, CLI_LOUD));
}

/* --out - writes the same PNG bytes to stdout as --out FILE writes to the file, and no file. */
static void stdout_output(void) {
    char dir[4096], file[4200], piped[4200], err_path[4200];
    snprintf(dir, sizeof dir, "%s/stdout-run", th_tmpdir());
    mkdir(dir, 0755);
    snprintf(file, sizeof file, "%s/file.png", dir);
    snprintf(piped, sizeof piped, "%s/../stdout-run.bytes", dir);
    snprintf(err_path, sizeof err_path, "%s/../stdout-run.stderr", dir);
    char *f32[] = {"--precision", "f32"};
    char *args[MAX_ARGS];
    build_args(args, file, f32, 2, 0);
    th_check(run_cli(NULL, args, err_path) == 0, "--out FILE run failed");
    build_args(args, "-", f32, 2, 0);
    int rc = run_cli_io(dir, args, piped, err_path); /* in dir: a file named "-" would show there */
    th_check(rc == 0, "--out -: exit status %d", rc);
    char *a = NULL, *b = NULL;
    size_t na = 0, nb = 0;
    is_error *e1 = is_read_file(file, 64u << 20, &a, &na), *e2 = is_read_file(piped, 64u << 20, &b, &nb);
    th_check(!e1 && !e2 && is_png_bytes(b, nb), "--out -: standard output does not hold a complete PNG");
    th_check(!e1 && !e2 && na == nb && !memcmp(a, b, na), "--out -: %zu bytes on stdout, %zu in the file, or different",
             nb, na);
    th_check(count_prefixed(dir, "-") == 0 && count_prefixed(dir, "instantstyle") == 0,
             "--out -: wrote a file in the working folder");
    is_error_free(e1);
    is_error_free(e2);
    free(a);
    free(b);
}

/* --threads changes the speed, never the image: 1 and 2 threads write the same PNG bytes (in f32 the
 * few-rows products used to split their weights by thread count, which changed the last bit). Run with
 * the OpenBLAS kernels the environment gives, then with its AVX2 "Haswell" kernels (an AVX2-only CPU's,
 * and what OPENBLAS_CORETYPE=Haswell selects anywhere), whose rounding follows how a product is split:
 * there OpenBLAS's own thread split changed the image until the engine split products itself. */
static void threads_same_bits(void) {
    char one[4096], two[4096], err_path[4096];
    snprintf(one, sizeof one, "%s/threads-1.png", th_tmpdir());
    snprintf(two, sizeof two, "%s/threads-2.png", th_tmpdir());
    snprintf(err_path, sizeof err_path, "%s/threads.stderr", th_tmpdir());
    char *t1[] = {"--precision", "f32", "--threads", "1", "--width", "256", "--height", "256", "--steps", "4"};
    char *t2[] = {"--precision", "f32", "--threads", "2", "--width", "256", "--height", "256", "--steps", "4"};
    const char *env = getenv("OPENBLAS_CORETYPE");
    char *saved = env ? strdup(env) : NULL;
    const char *cores[] = {NULL, "Haswell"}; /* NULL: as the environment has it */
    for (int c = 0; c < 2; c++) {
        const char *core = cores[c] ? cores[c] : saved ? saved : "(unset)";
        if (cores[c]) setenv("OPENBLAS_CORETYPE", cores[c], 1);
        char *args[MAX_ARGS];
        build_args(args, one, t1, 10, 0);
        th_check(run_cli(NULL, args, err_path) == 0, "OPENBLAS_CORETYPE %s: --threads 1 run failed", core);
        build_args(args, two, t2, 10, 0);
        th_check(run_cli(NULL, args, err_path) == 0, "OPENBLAS_CORETYPE %s: --threads 2 run failed", core);
        char *a = NULL, *b = NULL;
        size_t na = 0, nb = 0;
        is_error *e1 = is_read_file(one, 64u << 20, &a, &na), *e2 = is_read_file(two, 64u << 20, &b, &nb);
        th_check(!e1 && !e2 && na == nb && !memcmp(a, b, na),
                 "OPENBLAS_CORETYPE %s: --threads 1 and 2 write the same PNG (%zu and %zu bytes)", core, na, nb);
        is_error_free(e1);
        is_error_free(e2);
        free(a);
        free(b);
    }
    if (saved) setenv("OPENBLAS_CORETYPE", saved, 1);
    else unsetenv("OPENBLAS_CORETYPE");
    free(saved);
}

/* An option that takes one value, given twice, is refused (it used to keep the last one). */
static void repeated_options(void) {
    char other[4096];
    snprintf(other, sizeof other, "%s/images/grey_180x236.png", th_golden());
    char *two_styles[] = {"--style-image", other};
    free(cli_error("two --style-image", "--style-image given twice; several style images are not supported yet",
                   two_styles, 2, CLI_APPEND));
    char *two_adapters[] = {"--ip-adapter", g_adapter};
    free(cli_error("two --ip-adapter", "--ip-adapter given twice", two_adapters, 2, CLI_APPEND));
    char *two_prompts[] = {"--prompt", "a dog"};
    free(cli_error("two --prompt", "--prompt given twice", two_prompts, 2, CLI_APPEND));
    char *two_steps[] = {"--steps", "3"};
    free(cli_error("two --steps", "--steps given twice", two_steps, 2, CLI_APPEND));
    char *out_alias[] = {"-o", "other.png"};
    free(cli_error("--out and -o", "--out given twice", out_alias, 2, CLI_APPEND));
}

/* Sizes the library refuses are refused by the CLI; messages name each path once and never echo a
 * long argument whole. */
static void limits_and_messages(void) {
    char *wide[] = {"--width", "16384"};
    free(cli_error("--width 16384", "--width: 16384 is larger than the supported 8192", wide, 2, CLI_LOUD));
    char *tall[] = {"--height", "9000"};
    free(cli_error("--height 9000", "--height: 9000 is larger than the supported 8192", tall, 2, CLI_LOUD));
    char *nostyle[] = {"--style-image", "/nonexistent/style.png"};
    char *msg = cli_error("missing style image, before any work", "/nonexistent/style.png", nostyle, 2, CLI_LOUD);
    th_check(count_of(msg, "/nonexistent/style.png") == 1, "missing style image: path repeated: %s", msg);
    free(msg);
    char *nomodel[] = {"--model", "/nonexistent/model"};
    msg = cli_error("missing model folder", "/nonexistent/model", nomodel, 2, 0);
    th_check(count_of(msg, "/nonexistent/model") == 1, "missing model: path repeated: %s", msg);
    free(msg);
    char long_value[400];
    memset(long_value, 'x', sizeof long_value - 1);
    long_value[sizeof long_value - 1] = 0;
    char *opts[][2] = {{"--sampler", long_value}, {"--precision", long_value}, {"--seed", long_value},
                       {"--vae-tiling", long_value}, {"--timestep-spacing", long_value}};
    for (size_t i = 0; i < sizeof opts / sizeof *opts; i++) {
        char what[64];
        snprintf(what, sizeof what, "%s with 399 characters", opts[i][0]);
        msg = cli_error(what, "...'", opts[i], 2, 0);
        th_check(strlen(msg) < 200 && !strstr(msg, long_value + 300), "%s: the message echoes it whole (%zu bytes)",
                 what, strlen(msg));
        free(msg);
    }
}

/* stderr not a terminal: one progress line per step (fewer for fast steps); --quiet hides progress
 * and the stage log, not the library's warnings. */
static void progress_and_quiet(void) {
    char out_png[4096], err_path[4096];
    snprintf(out_png, sizeof out_png, "%s/progress.png", th_tmpdir());
    snprintf(err_path, sizeof err_path, "%s/progress.stderr", th_tmpdir());
    char *args[MAX_ARGS];
    char *three[] = {"--steps", "3"};
    build_args(args, out_png, three, 2, CLI_LOUD);
    int rc = run_cli(NULL, args, err_path);
    char *text = slurp(err_path);
    th_check(rc == 0 && strstr(text, "step 1/3, ") && strstr(text, "step 3/3, ") && strstr(text, " s/step, ETA 0:"),
             "progress lines missing from a log file: %s", text);
    free(text);
    char long_prompt[600] = "";
    for (int i = 0; i < 60; i++) strcat(long_prompt, "a cat ");
    char *quiet_long[] = {"--prompt", long_prompt};
    build_args(args, out_png, quiet_long, 2, 0);
    rc = run_cli(NULL, args, err_path);
    text = slurp(err_path);
    th_check(rc == 0 && strstr(text, "warning: the prompt is longer"), "--quiet hid the warning: '%s'", text);
    th_check(!strstr(text, "step ") && !strstr(text, "text encoders") && !strstr(text, "wrote"),
             "--quiet showed progress: '%s'", text);
    free(text);
}

static void expect_field(const char *what, const char *params, const char *field) {
    th_check(params && strstr(params, field), "%s: parameters lack '%s': %s", what, field, params ? params : "(none)");
}

/* Every option that changes the image is in the PNG's parameters. */
static void parameters_record_options(void) {
    char out_png[4096], err_path[4096];
    snprintf(out_png, sizeof out_png, "%s/options.png", th_tmpdir());
    snprintf(err_path, sizeof err_path, "%s/options.stderr", th_tmpdir());
    char *opts[] = {"--prompt-2", "second prompt", "--negative-prompt", "blurry", "--negative-prompt-2", "low quality",
                    "--sampler", "ddim", "--timestep-spacing", "trailing", "--eta", "0.5", "--guidance-rescale", "0.7",
                    "--cfg", "6", "--seed", "7", "--original-size", "512x384", "--target-size", "256x192",
                    "--crop-top", "16", "--crop-left", "8", "--precision", "f32", "--vae-tiling", "on",
                    "--style-blocks", "style+layout", "--ip-scale", "0.8", "--content-prompt", "a landscape",
                    "--content-scale", "0.3"};
    char *args[MAX_ARGS];
    build_args(args, out_png, opts, (int)(sizeof opts / sizeof *opts), 0);
    int rc = run_cli(NULL, args, err_path);
    th_check(rc == 0, "every option: exit status %d", rc);
    char *params = rc == 0 ? png_parameters(out_png) : NULL;
    const char *fields[] = {"a cat\nNegative prompt: blurry\nSteps: 2,", "Sampler: DDIM,", "CFG scale: 6,",
                            "CFG rescale: 0.7,", "Seed: 7,", "Size: 64x64,", "Prompt 2: second prompt,",
                            "Negative prompt 2: low quality,", "Timestep spacing: trailing,", "Eta: 0.5,",
                            "Original size: 512x384,", "Target size: 256x192,", "Crop top: 16,", "Crop left: 8,",
                            "VAE tiling: on,", "IP-Adapter: ip-adapter_sdxl.safetensors,", "IP-Adapter scale: 0.8,",
                            "Style image: tiny_50x40.png,", "Style blocks: style+layout,",
                            "Content prompt: a landscape,", "Content scale: 0.3,", "Precision: f32,"};
    for (size_t i = 0; i < sizeof fields / sizeof *fields; i++) expect_field("every option", params, fields[i]);
    free(params);
    char *karras[] = {"--sampler", "euler", "--karras"};
    build_args(args, out_png, karras, 3, 0);
    rc = run_cli(NULL, args, err_path);
    params = rc == 0 ? png_parameters(out_png) : NULL;
    expect_field("--karras", params, "Sampler: Euler, Schedule type: Karras,");
    free(params);
}
/* SIGINT / SIGTERM during a long generation: "cancelled", 130 / 143, no output, no temp file. */
static void signal_cancels(int sig, int want_status) {
    char dir[4096], out_png[4200], err_path[4200];
    snprintf(dir, sizeof dir, "%s/cancel-run", th_tmpdir());
    mkdir(dir, 0755);
    snprintf(out_png, sizeof out_png, "%s/cancel.png", dir);
    snprintf(err_path, sizeof err_path, "%s/../cancel-run.stderr", dir);
    unlink(out_png);
    unlink(err_path); /* a stale log's "step 1/" would send the signal too early */
    char *many[] = {"--steps", "1000"};
    char *args[MAX_ARGS];
    build_args(args, out_png, many, 2, CLI_LOUD);
    pid_t pid = start_cli(NULL, args, NULL, err_path);
    int seen = 0, status = -1, ended = 0;
    for (int waited = 0; pid > 0 && waited < 1200 && !seen && !ended; waited++) { /* up to 120 s */
        char *text = slurp(err_path);
        seen = strstr(text, "step 1/") != NULL;
        free(text);
        int st = 0;
        if (!seen && waitpid(pid, &st, WNOHANG) == pid) /* finished without a progress line */
            ended = 1, status = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
        if (!seen && !ended) usleep(100 * 1000);
    }
    th_check(seen, "signal %d: no progress line before the run ended (or within 120 s)", sig);
    if (!ended && pid > 0) {
        kill(pid, seen ? sig : SIGKILL);
        status = wait_cli(pid);
    }
    char *text = slurp(err_path);
    th_check(status == want_status, "signal %d: exit status %d, expected %d: %s", sig, status, want_status, text);
    th_check(strstr(text, "cancelled") != NULL, "signal %d: no 'cancelled' message", sig);
    th_check(!is_file_exists(out_png), "signal %d: wrote the output file", sig);
    th_check(count_prefixed(dir, "cancel.png.tmp") == 0, "signal %d: left a temporary file", sig);
    free(text);
}

/* --precision bf16 runs (as f32 on a CPU without bf16) and the PNG says which precision ran. */
static void precision_in_png(void) {
    char out_png[4096], err_path[4096];
    snprintf(out_png, sizeof out_png, "%s/precision.png", th_tmpdir());
    snprintf(err_path, sizeof err_path, "%s/precision.stderr", th_tmpdir());
    char *model = th_golden_path("models/tiny-sdxl");
    char *args[] = {(char *)program(), "generate", "--model", model, "--prompt", "a cat", "--width", "64",
                    "--height", "64", "--steps", "2", "--quiet", "--precision", "bf16", "--out", out_png, NULL};
    int rc = run_cli(NULL, args, err_path);
    th_check(rc == 0, "--precision bf16: exit status %d", rc);
    char want[64];
    snprintf(want, sizeof want, "Precision: %s,", is_precision_name(is_precision_resolve(IS_PRECISION_BF16, NULL, 0)));
    char *params = rc == 0 ? png_parameters(out_png) : NULL;
    th_check(params && strstr(params, want), "--precision bf16: parameters lack '%s': %s", want, params ? params : "none");
    free(params);
    free(model);
}

/* is_encode_png gives exactly the bytes is_save_png writes. */
static void encode_matches_save(void) {
    is_pipeline_params pp;
    is_pipeline_params_init(&pp);
    pp.model_dir = g_model;
    is_pipeline *p = NULL;
    if (!th_ok(is_pipeline_load(&pp, &p), "load the tiny pipeline")) return;
    uint8_t rgb[5 * 3 * 3];
    for (size_t i = 0; i < sizeof rgb; i++) rgb[i] = (uint8_t)(i * 37);
    is_image_result img;
    memset(&img, 0, sizeof img);
    img.width = 5, img.height = 3, img.rgb = rgb, img.precision = IS_PRECISION_F32;
    is_generate_params gp;
    is_generate_params_init(&gp);
    gp.prompt = "a cat, \"quoted\"\nsecond line";
    gp.negative_prompt = "blurry";
    char path[4096];
    snprintf(path, sizeof path, "%s/encode.png", th_tmpdir());
    uint8_t *data = NULL;
    size_t size = 0;
    char *file = NULL;
    size_t n = 0;
    if (th_ok(is_save_png(path, &img, p, &gp), "is_save_png") && th_ok(is_encode_png(&img, p, &gp, &data, &size), "is_encode_png") &&
        th_ok(is_read_file(path, 1 << 20, &file, &n), "read the saved PNG"))
        th_check(n == size && !memcmp(file, data, n) && is_png_bytes(file, n),
                 "is_encode_png: %zu bytes, is_save_png wrote %zu, or different", size, n);
    free(data);
    data = NULL;
    th_fails(is_encode_png(NULL, p, &gp, &data, &size), "no image", "is_encode_png without an image");
    th_check(data == NULL && size == 0, "is_encode_png: output set on failure");
    free(file);
    is_pipeline_free(p);
}

/* --preset sets what its model card does, and options given explicitly override it: the preset run writes
 * the same PNG bytes as the same settings spelled out (the golden pipeline_fast_lightning_euler settings). */
static void presets(void) {
    char lora[4096], a_png[4096], b_png[4096], c_png[4096], err_path[4096];
    snprintf(lora, sizeof lora, "%s/models/tiny-sdxl-lora/lora_peft_r4.safetensors:0.8", th_golden());
    snprintf(a_png, sizeof a_png, "%s/preset-a.png", th_tmpdir());
    snprintf(b_png, sizeof b_png, "%s/preset-b.png", th_tmpdir());
    snprintf(c_png, sizeof c_png, "%s/preset-c.png", th_tmpdir());
    snprintf(err_path, sizeof err_path, "%s/preset.stderr", th_tmpdir());
    char *args[MAX_ARGS];
    char *preset[] = {"--preset", "lightning-4step", "--lora", lora, "--precision", "f32"};
    build_args(args, a_png, preset, 6, CLI_REPLACE);
    /* build_args puts --steps 2 in the base run: drop it so that the preset's 4 steps apply */
    for (int i = 0; args[i]; i++)
        if (!strcmp(args[i], "--steps")) {
            for (int k = i; args[k]; k++) args[k] = args[k + 2];
            break;
        }
    int rc_a = run_cli(NULL, args, err_path);
    char *spelled[] = {"--steps", "4", "--sampler", "euler", "--timestep-spacing", "trailing", "--cfg", "0", "--lora", lora,
                       "--precision", "f32"};
    build_args(args, b_png, spelled, 12, CLI_REPLACE);
    int rc_b = run_cli(NULL, args, err_path);
    char *pa = rc_a == 0 ? png_parameters(a_png) : NULL, *pb = rc_b == 0 ? png_parameters(b_png) : NULL;
    th_check(pa && pb && !strcmp(pa, pb), "--preset lightning-4step runs (exit %d) like its settings spelled out (exit %d)",
             rc_a, rc_b);
    free(pb);
    size_t na = 0, nb = 0;
    char *fa = NULL, *fb = NULL;
    if (rc_a == 0 && rc_b == 0 && th_ok(is_read_file(a_png, 1 << 24, &fa, &na), "read") &&
        th_ok(is_read_file(b_png, 1 << 24, &fb, &nb), "read"))
        th_check(na == nb && !memcmp(fa, fb, na), "--preset lightning-4step writes the spelled-out run's PNG bytes");
    th_check(pa && strstr(pa, "Steps: 4, Sampler: Euler, Timestep spacing: trailing, CFG scale: 0,"),
             "the preset's settings are in the PNG parameters: %s", pa ? pa : "(none)");
    free(fa);
    free(fb);
    free(pa);
    char *override[] = {"--preset", "lcm-4step", "--steps", "2"};
    build_args(args, c_png, override, 4, CLI_REPLACE);
    int rc_c = run_cli(NULL, args, err_path);
    char *pc = rc_c == 0 ? png_parameters(c_png) : NULL;
    th_check(pc && strstr(pc, "Steps: 2, Sampler: LCM,") && strstr(pc, "CFG scale: 1,"),
             "--steps after --preset lcm-4step overrides the preset's steps only: %s", pc ? pc : "(failed)");
    free(pc);
    char *bad[] = {"--preset", "turbo-1step"};
    free(cli_error("an unknown preset", "lightning-4step", bad, 2, CLI_LOUD));
}

static const char *mismatched_model(void);
static void model_with_unet(const char *name, int block1, uint64_t seed, char *dir, size_t cap);

/* One run of the base arguments plus extra, writing th_tmpdir()/unet-<tag>.png into png; 1 when it worked. */
static int run_png(const char *tag, char **extra, int n_extra, char *png, size_t cap) {
    char err_path[4096];
    snprintf(png, cap, "%s/unet-%s.png", th_tmpdir(), tag);
    snprintf(err_path, sizeof err_path, "%s/unet-%s.stderr", th_tmpdir(), tag);
    char *args[MAX_ARGS];
    build_args(args, png, extra, n_extra, CLI_REPLACE);
    int rc = run_cli(NULL, args, err_path);
    char *err = slurp(err_path);
    th_check(rc == 0, "%s: exit %d: %s", tag, rc, err);
    free(err);
    return rc == 0;
}

/* --unet FILE: a single-file UNet replaces the model's unet/ weights (its config stays): the model's own
 * file gives the default run's pixels, another UNet file the pixels of a model folder holding it; one of
 * other shapes fails naming a tensor. */
/* The pixels of two PNGs are equal (the parameters chunks may differ). */
static int same_pixels(const char *a, const char *b) {
    is_image x = {0}, y = {0};
    is_error *e1 = is_image_load(a, &x), *e2 = is_image_load(b, &y);
    int same = !e1 && !e2 && x.width == y.width && x.height == y.height &&
               !memcmp(x.rgb, y.rgb, (size_t)x.width * x.height * 3);
    is_error_free(e1), is_error_free(e2);
    is_image_free(&x), is_image_free(&y);
    return same;
}

/* --ip-start / --ip-end: the IP-Adapter acts in that fraction of the steps. The full window is the default
 * run; a window no step falls in (end 0.01 of 4 steps) is the run without image tokens, which --ip-scale 0
 * also gives; the second half only differs from both. Bad windows are refused before any network loads. */
static void ip_window(void) {
    char full[4096], dflt[4096], none[4096], zero[4096], half[4096];
    char *a[] = {"--precision", "f32", "--steps", "4"};
    char *b[] = {"--precision", "f32", "--steps", "4", "--ip-start", "0", "--ip-end", "1"};
    char *c[] = {"--precision", "f32", "--steps", "4", "--ip-end", "0.01"};
    char *d[] = {"--precision", "f32", "--steps", "4", "--ip-scale", "0"};
    char *h[] = {"--precision", "f32", "--steps", "4", "--ip-start", "0.5"};
    if (!run_png("ipw-default", a, 4, dflt, sizeof dflt) || !run_png("ipw-full", b, 8, full, sizeof full) ||
        !run_png("ipw-none", c, 6, none, sizeof none) || !run_png("ipw-zero", d, 6, zero, sizeof zero) ||
        !run_png("ipw-half", h, 6, half, sizeof half))
        return;
    th_check(same_pixels(dflt, full), "--ip-start 0 --ip-end 1 gives the default run's pixels");
    th_check(same_pixels(none, zero), "a window no step falls in gives the pixels of --ip-scale 0");
    th_check(!same_pixels(half, dflt) && !same_pixels(half, none), "--ip-start 0.5 differs from the full and empty windows");
    char *params = png_parameters(half);
    th_check(params && strstr(params, "IP-Adapter window: \"0.5, 1\""), "the window is in the PNG parameters: %s", params);
    free(params);
    char *bad1[] = {"--ip-start", "0.6", "--ip-end", "0.5"};
    expect_cli_error("--ip-start after --ip-end", "IP-Adapter start and end", bad1, 4);
    char *bad2[] = {"--ip-end", "1.5"};
    expect_cli_error("--ip-end 1.5", "--ip-end: 1.5 is outside 0..1", bad2, 2);
}

static void unet_file(void) {
    char own[8192], other_dir[4096], other_file[8400], bad[8192];
    snprintf(own, sizeof own, "%s/unet/diffusion_pytorch_model.safetensors", g_model);
    model_with_unet("model-other-unet", 0, 99, other_dir, sizeof other_dir);
    snprintf(other_file, sizeof other_file, "%s/unet/diffusion_pytorch_model.safetensors", other_dir);
    snprintf(bad, sizeof bad, "%s/unet/diffusion_pytorch_model.safetensors", mismatched_model());
    char *f32[] = {"--precision", "f32"};
    char *with_own[] = {"--unet", own, "--precision", "f32"};
    char *with_other[] = {"--unet", other_file, "--precision", "f32"};
    char *in_folder[] = {"--model", other_dir, "--precision", "f32"};
    char p0[4096], p1[4096], p2[4096], p3[4096];
    int ok = run_png("default", f32, 2, p0, sizeof p0) & run_png("own-file", with_own, 4, p1, sizeof p1) &
             run_png("other-file", with_other, 4, p2, sizeof p2) & run_png("other-folder", in_folder, 4, p3, sizeof p3);
    /* the PNG's parameters name the UNet file, so compare the decoded pixels */
    is_image ib = {0}, ia = {0}, io = {0}, ic = {0};
    if (ok && th_ok(is_image_load(p0, &ib), p0) && th_ok(is_image_load(p1, &ia), p1) &&
        th_ok(is_image_load(p2, &io), p2) && th_ok(is_image_load(p3, &ic), p3)) {
        size_t n = (size_t)ib.width * ib.height * 3;
        th_check(!memcmp(ib.rgb, ia.rgb, n), "--unet with the model's own UNet file gives the default pixels");
        th_check(!memcmp(io.rgb, ic.rgb, n), "--unet FILE gives the pixels of a model folder holding that UNet");
        th_check(memcmp(ib.rgb, io.rgb, n) != 0, "another UNet file changes the image");
    }
    char *pa = png_parameters(p2);
    th_check(pa && strstr(pa, "UNet: diffusion_pytorch_model.safetensors,"), "the PNG names the UNet file: %s", pa ? pa : "");
    free(pa);
    is_image_free(&ib);
    is_image_free(&ia);
    is_image_free(&io);
    is_image_free(&ic);
    char *missing[] = {"--unet", "/nonexistent/unet.safetensors"};
    free(cli_error("a --unet file that does not exist", "/nonexistent/unet.safetensors", missing, 2, CLI_LOUD));
    char *misfit[] = {"--unet", bad};
    free(cli_error("a --unet file of other shapes", "has shape", misfit, 2, CLI_REPLACE));
}

/* cases/canny through `instantstyle generate --control-canny`: the edge map it dumps ("edges") equals
 * cv2.Canny's exactly (a 1-step 64x64 ControlNet generation on the tiny model around it). */
static void canny_cases(void) {
    cJSON *root = th_load_cases("canny");
    char cn[4096];
    snprintf(cn, sizeof cn, "%s/models/tiny-controlnet", th_golden());
    const cJSON *c;
    cJSON *cases = root ? cJSON_GetObjectItem(root, "cases") : NULL;
    cJSON_ArrayForEach(c, cases) {
        const char *name = cJSON_GetObjectItem(c, "name")->valuestring;
        char out_png[4096], out_st[4096], err_path[4096];
        snprintf(out_png, sizeof out_png, "%s/canny-%s.png", th_tmpdir(), name);
        snprintf(out_st, sizeof out_st, "%s/canny-%s.safetensors", th_tmpdir(), name);
        snprintf(err_path, sizeof err_path, "%s/canny-%s.stderr", th_tmpdir(), name);
        char *extra[16];
        int n = 0;
        extra[n++] = "--controlnet";
        extra[n++] = cn;
        extra[n++] = "--steps";
        extra[n++] = "1";
        extra[n++] = "--dump-tensors";
        extra[n++] = out_st;
        extra[n++] = "--precision";
        extra[n++] = "f32";
        const cJSON *o;
        cJSON_ArrayForEach(o, cJSON_GetObjectItem(c, "instantstyle_generate_options")) if (n < 16) extra[n++] = o->valuestring;
        char *args[MAX_ARGS];
        build_args(args, out_png, extra, n, CLI_REPLACE);
        int rc = run_cli(th_golden(), args, err_path); /* the cases' image paths are relative to the golden root */
        char *err = slurp(err_path);
        th_check(rc == 0, "canny %s: instantstyle generate exited %d: %s", name, rc, err);
        free(err);
        is_st *got = NULL;
        char file[256];
        snprintf(file, sizeof file, "%s", cJSON_GetObjectItem(c, "expected")->valuestring);
        is_st *exp = th_open_expected("canny", file);
        if (rc == 0 && exp && th_ok(is_st_open(out_st, &got), "open the dump")) {
            const is_tensor *g = is_st_find(got, "edges"), *x = th_tensor(exp, "edges");
            th_check(g && x && g->dtype == IS_DT_U8 && g->numel == x->numel && g->ndim == 2 &&
                         !memcmp(g->shape, x->shape, 2 * sizeof(int64_t)) && !memcmp(g->data, x->data, (size_t)x->numel),
                     "canny %s: generate's edges equal cv2.Canny's exactly", name);
        }
        is_st_close(got);
        is_st_close(exp);
    }
    cJSON_Delete(root);
}

/* th_tmpdir()/name: tiny-sdxl's parts linked, with a generated UNet of tiny-sdxl's shape (seed) whose
 * block_out_channels[1] is block1 (0: tiny-sdxl's). Writes the folder into dir. */
static void model_with_unet(const char *name, int block1, uint64_t seed, char *dir, size_t cap) {
    snprintf(dir, cap, "%s/%s", th_tmpdir(), name);
    mkdir(dir, 0755);
    const char *parts[] = {"model_index.json", "scheduler", "text_encoder", "text_encoder_2", "tokenizer", "tokenizer_2", "vae"};
    for (size_t i = 0; i < sizeof parts / sizeof parts[0]; i++) {
        char from[8192], to[8192];
        snprintf(from, sizeof from, "%s/%s", g_model, parts[i]);
        snprintf(to, sizeof to, "%s/%s", dir, parts[i]);
        unlink(to);
        th_check(symlink(from, to) == 0, "link %s", to);
    }
    tm_spec spec;
    tm_spec_default(&spec);
    if (block1) spec.unet.block_out_channels[1] = block1;
    char unet[8192];
    snprintf(unet, sizeof unet, "%s/unet", dir);
    mkdir(unet, 0755);
    th_ok(tm_write_unet(unet, &spec.unet, seed), unet);
}

/* A pipeline folder like tiny-sdxl whose UNet has other block channels (so a ControlNet built for
 * tiny-sdxl does not fit it); returns the folder (static). */
static const char *mismatched_model(void) {
    static char dir[4096];
    model_with_unet("model-unet-32-64-64", 64, 7, dir, sizeof dir);
    return dir;
}

/* A random-weight ControlNet for tiny-sdxl's UNet whose control image has `channels` channels; returns the
 * folder (static, one per call site). */
static void controlnet_with_channels(int channels, char *dir, size_t cap) {
    snprintf(dir, cap, "%s/controlnet-cond-%d", th_tmpdir(), channels);
    mkdir(dir, 0755);
    tm_spec spec;
    tm_spec_default(&spec);
    spec.controlnet.conditioning_channels = channels;
    th_ok(tm_write_controlnet(dir, &spec.unet, &spec.controlnet, 11), dir);
}

/* img2img / inpainting / ControlNet inputs that cannot work: a clear error before any network runs. */
static void image_input_errors(void) {
    char content[4096], content96[4096], mask96[4096], canny[4096], cn[4096], bad_img[4096];
    snprintf(content, sizeof content, "%s/images/i2i/content_64x64.png", th_golden());
    snprintf(content96, sizeof content96, "%s/images/i2i/content_96x64.png", th_golden());
    snprintf(mask96, sizeof mask96, "%s/images/i2i/mask_96x64.png", th_golden());
    snprintf(canny, sizeof canny, "%s/images/i2i/canny_content_64x64_50_200.png", th_golden());
    snprintf(cn, sizeof cn, "%s/models/tiny-controlnet", th_golden());
    snprintf(bad_img, sizeof bad_img, "%s/not-an-image.png", th_tmpdir());
    const int L = CLI_LOUD;
    char *mism[] = {"--init-image", content, "--mask-image", mask96};
    free(cli_error("mask of another size than the init image", "must be the same size", mism, 4, L));
    char *s0[] = {"--init-image", content, "--strength", "0"};
    free(cli_error("strength 0", "outside (0, 1]", s0, 4, L));
    char *s15[] = {"--init-image", content, "--strength", "1.5"};
    free(cli_error("strength 1.5", "outside (0, 1]", s15, 4, L));
    char *snan[] = {"--init-image", content, "--strength", "nan"};
    free(cli_error("strength nan", "--strength", snan, 4, L));
    char *sfew[] = {"--init-image", content, "--strength", "0.2"}; /* int(2 * 0.2) = 0 steps */
    free(cli_error("strength that runs no step", "runs no step", sfew, 4, L));
    char *snoinit[] = {"--strength", "0.5"};
    free(cli_error("strength without an init image", "--init-image", snoinit, 2, L));
    char *masknoinit[] = {"--mask-image", mask96};
    free(cli_error("mask without an init image", "--init-image", masknoinit, 2, L));
    char *badinit[] = {"--init-image", bad_img};
    free(cli_error("init image that is not an image", "not-an-image.png", badinit, 2, L));
    char *badmask[] = {"--init-image", content96, "--mask-image", bad_img};
    free(cli_error("mask that is not an image", "not-an-image.png", badmask, 4, L));
    char *badctrl[] = {"--controlnet", cn, "--control-image", bad_img};
    free(cli_error("control image that is not an image", "not-an-image.png", badctrl, 4, L));
    char *badcanny[] = {"--controlnet", cn, "--control-canny", bad_img};
    free(cli_error("Canny source that is not an image", "not-an-image.png", badcanny, 4, L));
    char *nocn[] = {"--control-image", canny};
    free(cli_error("control image without a ControlNet", "--controlnet", nocn, 2, L));
    char *noctrl[] = {"--controlnet", cn};
    free(cli_error("ControlNet without a control image", "control image", noctrl, 2, L));
    char *both[] = {"--controlnet", cn, "--control-image", canny, "--control-canny", content};
    free(cli_error("both --control-image and --control-canny", "use one", both, 6, L));
    char *window[] = {"--controlnet", cn, "--control-image", canny, "--control-start", "0.7", "--control-end", "0.2"};
    free(cli_error("control start after control end", "smaller than control end", window, 8, L));
    char *notcn[] = {"--controlnet", g_model, "--control-image", canny};
    free(cli_error("a ControlNet folder that is not one", "config.json", notcn, 4, L));
    char *misfit[] = {"--model", (char *)mismatched_model(), "--controlnet", cn, "--control-image", canny};
    free(cli_error("a ControlNet that does not fit the UNet", "does not fit the UNet", misfit, 6, L));
    /* The pipeline's control image is RGB: a ControlNet made for another channel count (it loads, and its
     * residuals fit the UNet) would read past it (4) or misread it (1). */
    for (int channels = 1; channels <= 4; channels += 3) {
        char cn_c[4096], what[96];
        controlnet_with_channels(channels, cn_c, sizeof cn_c);
        snprintf(what, sizeof what, "a ControlNet taking %d-channel control images", channels);
        char *chan[] = {"--controlnet", cn_c, "--control-image", canny};
        free(cli_error(what, "conditioning_channels", chan, 4, L));
    }
    char *nolora[] = {"--lora", "/nonexistent/lora.safetensors:0.5"};
    free(cli_error("a LoRA file that does not exist", "/nonexistent/lora.safetensors: not found", nolora, 2, L));
    char lora_bad_w[4096];
    snprintf(lora_bad_w, sizeof lora_bad_w, "%s/models/tiny-sdxl-lora/lora_peft_r4.safetensors:0.5x", th_golden());
    char *badw[] = {"--lora", lora_bad_w};
    free(cli_error("a LoRA weight that is not a number", "--lora", badw, 2, L));
    char *notlora[] = {"--lora", g_adapter}; /* an IP-Adapter file is not a LoRA: refused, naming a tensor */
    free(cli_error("a file that is not a LoRA", "ip-adapter_sdxl.safetensors", notlora, 2, CLI_REPLACE));
    char inpaint[4096];
    snprintf(inpaint, sizeof inpaint, "%s/models/tiny-sdxl-inpaint", th_golden());
    char *nomask[] = {"--model", inpaint};
    free(cli_error("an inpainting UNet without a mask", "inpainting UNet", nomask, 2, L));
}

int main(void) {
    init_paths();
    const char *groups[] = {"pipeline_euler_style", "pipeline_euler_a_plain", "pipeline_ddim_all",
                            "pipeline_ddim_rescale", "pipeline_dpmpp_karras_layout", "pipeline_empty_negative",
                            "pipeline_none_negative", "pipeline_img2img_euler_s0p6", "pipeline_img2img_dpmpp_s0p3",
                            "pipeline_img2img_euler_s0p6_resize", "pipeline_inpaint_euler_s0p99",
                            "pipeline_inpaint_dpmpp_s0p7", "pipeline_inpaint_4ch_euler_s0p7",
                            "pipeline_controlnet_euler_style", "pipeline_controlnet_window_dpmpp",
                            "pipeline_controlnet_canny_resize", "pipeline_fast_lcm_style_lora",
                            "pipeline_fast_lightning_euler", "pipeline_fast_tcd_two_loras"};
    for (size_t i = 0; i < sizeof groups / sizeof *groups; i++) run_case(groups[i]);
    precision_in_png();
    encode_matches_save();

    char *w[] = {"--width", "60"};
    expect_cli_error("width not a multiple of 8", "multiples of 8", w, 2);
    char *s0[] = {"--steps", "0"};
    expect_cli_error("zero steps", "steps must be at least 1", s0, 2);
    char bad_img[4096];
    snprintf(bad_img, sizeof bad_img, "%s/not-an-image.png", th_tmpdir());
    FILE *fp = fopen(bad_img, "wb");
    fputs("this is not a PNG", fp);
    fclose(fp);
    char *badimg[] = {"--style-image", bad_img};
    expect_cli_error("unreadable style image", "not-an-image.png", badimg, 2);
    char *noad[] = {"--ip-adapter", "/nonexistent/ip-adapter.safetensors"};
    expect_cli_error("missing adapter", "/nonexistent/ip-adapter.safetensors", noad, 2);
    char *badblocks[] = {"--style-blocks", "up.block_9=1"};
    expect_cli_error("unknown style block", "block_9", badblocks, 2);
    char *badsampler[] = {"--sampler", "plms"};
    expect_cli_error("unknown sampler", "plms", badsampler, 2);
    /* The decompression-bomb limit can be lowered (and raised): a 50x40 style image over a 100-pixel limit
     * fails before any network loads. */
    char *maxpx[] = {"--max-image-pixels", "100"};
    free(cli_error("style image over --max-image-pixels", "is_set_max_image_pixels", maxpx, 2, CLI_LOUD));
    char *maxpx0[] = {"--max-image-pixels", "0"};
    expect_cli_error("zero --max-image-pixels", "--max-image-pixels", maxpx0, 2);
    char *maxpxbad[] = {"--max-image-pixels", "lots"};
    expect_cli_error("non-numeric --max-image-pixels", "--max-image-pixels", maxpxbad, 2);
    char *badprec[] = {"--precision", "fp16"};
    expect_cli_error("unknown precision", "fp16", badprec, 2);

    image_input_errors();
    canny_cases();
    presets();
    unet_file();
    ip_window();
    output_targets();
    stdout_output();
    threads_same_bits();
    repeated_options();
    limits_and_messages();
    progress_and_quiet();
    parameters_record_options();
    signal_cancels(SIGINT, 130);
    signal_cancels(SIGTERM, 143);
    return th_done();
}
