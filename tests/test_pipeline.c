/* End to end: `instantstyle generate` (the real program, run as a user would) on the tiny
 * SDXL for every cases/pipeline_* golden: every dumped tensor and the PNG's pixels. Also
 * bad-input runs: clear error, non-zero exit, no output file left behind. */
#include <dirent.h>
#include <png.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/fileio.h"
#include "harness.h"
#include "instantstyle.h"

#define MAX_ARGS 96

/* Run the program in `cwd`; stderr goes to err_path. Returns the exit status (or -1). */
static int run_cli(const char *cwd, char **argv, const char *err_path) {
    fflush(stdout);
    pid_t pid = fork();
    if (pid < 0) return -1;
    if (pid == 0) {
        if (cwd && chdir(cwd) != 0) _exit(127);
        FILE *e = freopen(err_path, "w", stderr);
        (void)e;
        execv(argv[0], argv);
        _exit(127);
    }
    int status = 0;
    if (waitpid(pid, &status, 0) < 0) return -1;
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

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
    for (cJSON *a = argv_json ? argv_json->child : NULL; a && n < MAX_ARGS - 14; a = a->next) args[n++] = a->valuestring;
    args[n++] = "--model";
    args[n++] = model;
    int has_style = cJSON_GetObjectItemCaseSensitive(c, "style_image") &&
                    cJSON_IsString(cJSON_GetObjectItemCaseSensitive(c, "style_image"));
    if (has_style) {
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
        snprintf(want, sizeof want, "Size: %sx", option(c, "width", buf, sizeof buf));
        th_check(strstr(params, want) != NULL, "%s: parameters lack '%s': %s", group, want, params);
        const char *sampler = option(c, "sampler", buf, sizeof buf);
        const char *label = !sampler ? "Sampler: Euler," : !strcmp(sampler, "euler_a") ? "Sampler: Euler a,"
                            : !strcmp(sampler, "ddim") ? "Sampler: DDIM," : !strcmp(sampler, "dpmpp_2m") ? "Sampler: DPM++ 2M,"
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

/* A run that must fail: non-zero exit, message containing needle, no output or temp file. */
static void expect_cli_error(const char *what, const char *needle, char **extra, int n_extra) {
    char dir[2048], out_png[4096], err_path[4096];
    snprintf(dir, sizeof dir, "%s/bad-run", th_tmpdir());
    mkdir(dir, 0755);
    snprintf(out_png, sizeof out_png, "%s/out.png", dir);
    snprintf(err_path, sizeof err_path, "%s/../bad-run.stderr", dir);
    unlink(out_png);
    char *model = th_golden_path("models/tiny-sdxl");
    char *adapter = th_golden_path("models/tiny-ip-adapter/ip-adapter_sdxl.safetensors");
    char *style = th_golden_path("images/tiny_50x40.png");
    char *args[MAX_ARGS];
    int n = 0;
    args[n++] = (char *)program();
    args[n++] = "generate";
    char *base[] = {"--model", model, "--ip-adapter", adapter, "--style-image", style, "--prompt", "a cat",
                    "--width", "64", "--height", "64", "--steps", "2", "--quiet", "--out", out_png};
    for (size_t i = 0; i < sizeof base / sizeof *base; i++) args[n++] = base[i];
    for (int i = 0; i < n_extra; i++) args[n++] = extra[i]; /* later options override earlier ones */
    args[n] = NULL;
    int rc = run_cli(NULL, args, err_path);
    char *msg = slurp(err_path);
    th_check(rc != 0 && rc != 127, "%s: exit status %d, expected a failure", what, rc);
    th_check(strstr(msg, needle) != NULL, "%s: message '%s' does not mention '%s'", what, msg, needle);
    th_check(!is_file_exists(out_png), "%s: left an output file behind", what);
    th_check(count_prefixed(dir, "out.png.tmp") == 0, "%s: left a temporary file behind", what);
    if (rc != 0) printf("  ok (expected failure) %s: %s", what, msg);
    free(msg);
    free(model);
    free(adapter);
    free(style);
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

int main(void) {
    const char *groups[] = {"pipeline_euler_style", "pipeline_euler_a_plain", "pipeline_ddim_all",
                            "pipeline_ddim_rescale", "pipeline_dpmpp_karras_layout", "pipeline_empty_negative",
                            "pipeline_none_negative"};
    for (size_t i = 0; i < sizeof groups / sizeof *groups; i++) run_case(groups[i]);
    precision_in_png();

    char *w[] = {"--width", "60"};
    expect_cli_error("width not a multiple of 8", "multiples of 8", w, 2);
    char *huge[] = {"--width", "16384"};
    expect_cli_error("width beyond the supported size", "larger than the supported", huge, 2);
    char *s0[] = {"--steps", "0"};
    expect_cli_error("zero steps", "steps must be at least 1", s0, 2);
    char *nomodel[] = {"--model", "/nonexistent/model"};
    expect_cli_error("missing model folder", "/nonexistent/model", nomodel, 2);
    char *noimg[] = {"--style-image", "/nonexistent/style.png"};
    expect_cli_error("missing style image", "/nonexistent/style.png", noimg, 2);
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
    char *badprec[] = {"--precision", "fp16"};
    expect_cli_error("unknown precision", "fp16", badprec, 2);
    return th_done();
}
