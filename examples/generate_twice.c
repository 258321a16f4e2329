/* generate_twice: the library from a program's side, using only the stable part of instantstyle.h.
 *
 *   generate_twice MODEL_DIR IP_ADAPTER STYLE_IMAGE OUT_PREFIX
 *
 * 1. Creates one pipeline that keeps its networks loaded (IS_MEMORY_KEEP).
 * 2. Generates twice with different seeds, printing the pipeline's log lines and timing each
 *    generation, and writes OUT_PREFIX-1.png and OUT_PREFIX-2.png. The first generation loads
 *    every network ("<network>: loaded in X.XX s"); the second must load nothing ("kept loaded").
 * 3. Starts a third generation and cancels it after its first denoising step (the cancel callback
 *    is asked before every stage and step); is_generate must return IS_E_CANCELLED.
 * Exits 0 when all of that happened, 1 otherwise (with a line saying what did not).
 *
 * Build against an installed prefix P:
 *   cc generate_twice.c $(PKG_CONFIG_PATH=P/lib/pkgconfig pkg-config --cflags --libs instantstyle)
 * or with CMake: examples/CMakeLists.txt (find_package(instantstyle)).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "instantstyle.h"

/* What the callbacks of one generation saw. */
typedef struct {
    int generation;   /* 1, 2, 3: prefixes the printed log lines */
    int loads;        /* log lines saying a network was loaded (not kept) */
    int steps_done;   /* progress callbacks so far */
    int cancel_after; /* ask to stop once this many steps are done; 0: never */
} run_state;

static void on_log(void *user, const char *message) {
    run_state *st = user;
    printf("  [%d] %s\n", st->generation, message);
    if (strstr(message, "loaded in")) st->loads++;
}

static void on_progress(void *user, int step, int total, double seconds) {
    run_state *st = user;
    (void)step;
    (void)total;
    (void)seconds;
    st->steps_done++;
}

static int on_cancel(void *user) {
    const run_state *st = user;
    return st->cancel_after > 0 && st->steps_done >= st->cancel_after;
}

static double now_s(void) {
    struct timespec ts;
    timespec_get(&ts, TIME_UTC);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* Prints and frees err; always returns 1 (the exit status). */
static int fail(const char *what, is_error *err) {
    fprintf(stderr, "generate_twice: %s: %s\n", what, is_error_message(err));
    is_error_free(err);
    return 1;
}

/* One generation with seed; the image is written to path unless path is NULL. */
static is_error *generate(is_pipeline *pipe, const char *style, uint64_t seed, run_state *st, const char *path,
                          is_image_result *out) {
    is_generate_params gp;
    is_generate_params_init(&gp);
    gp.prompt = "a cat sitting on a chair";
    gp.style_image = style;
    gp.seed = seed;
    gp.log = on_log;
    gp.progress = on_progress;
    gp.cancel = on_cancel;
    gp.user = st;
    double t0 = now_s();
    is_error *err = is_generate(pipe, &gp, out);
    printf("generation %d (seed %llu): %s in %.2f s, %d denoising steps, %d network(s) loaded\n", st->generation,
           (unsigned long long)seed, err ? is_status_name(is_error_code(err)) : "done", now_s() - t0, st->steps_done,
           st->loads);
    if (!err && path) {
        err = is_save_png(path, out, pipe, &gp);
        if (!err) printf("  wrote %s\n", path);
    }
    return err;
}

int main(int argc, char **argv) {
    if (argc != 5) {
        fprintf(stderr, "usage: %s MODEL_DIR IP_ADAPTER STYLE_IMAGE OUT_PREFIX\n", argv[0]);
        return 2;
    }
    const char *style = argv[3], *prefix = argv[4];
    size_t path_cap = strlen(prefix) + 16;
    char *path1 = malloc(path_cap), *path2 = malloc(path_cap);
    if (!path1 || !path2) return 1;
    snprintf(path1, path_cap, "%s-1.png", prefix);
    snprintf(path2, path_cap, "%s-2.png", prefix);

    is_pipeline_params pp;
    is_pipeline_params_init(&pp);
    pp.model_dir = argv[1];
    pp.ip_adapter = argv[2];
    pp.memory = IS_MEMORY_KEEP; /* the point of this example: the second generation loads nothing */
    is_pipeline *pipe = NULL;
    is_error *err = is_pipeline_load(&pp, &pipe);
    if (err) return fail("loading the pipeline", err);

    int rc = 0;
    is_image_result r1 = {0}, r2 = {0}, r3 = {0};
    run_state s1 = {.generation = 1}, s2 = {.generation = 2}, s3 = {.generation = 3, .cancel_after = 1};
    if ((err = generate(pipe, style, 1, &s1, path1, &r1))) {
        rc = fail("generation 1", err);
    } else if ((err = generate(pipe, style, 2, &s2, path2, &r2))) {
        rc = fail("generation 2", err);
    } else if (s1.loads == 0) {
        /* Without the first generation's "loaded in" lines, counting them in the second proves nothing. */
        fprintf(stderr, "generate_twice: generation 1 logged no \"loaded in\" line\n");
        rc = 1;
    } else if (s2.loads != 0) {
        fprintf(stderr, "generate_twice: generation 2 loaded %d network(s); a KEEP pipeline must load nothing\n",
                s2.loads);
        rc = 1;
    } else if (r1.width != r2.width || r1.height != r2.height ||
               !memcmp(r1.rgb, r2.rgb, (size_t)r1.width * (size_t)r1.height * 3)) {
        fprintf(stderr, "generate_twice: seeds 1 and 2 gave the same image\n");
        rc = 1;
    } else {
        /* The cancel callback asks to stop once the first step is done: at the check before step 2. */
        err = generate(pipe, style, 3, &s3, NULL, &r3);
        if (is_error_code(err) != IS_E_CANCELLED) {
            fprintf(stderr, "generate_twice: generation 3 returned %s (%s), expected IS_E_CANCELLED\n",
                    is_status_name(is_error_code(err)), is_error_message(err));
            rc = 1;
        } else if (s3.steps_done != 1) {
            fprintf(stderr, "generate_twice: generation 3 ran %d denoising steps before stopping, expected 1\n",
                    s3.steps_done);
            rc = 1;
        } else if (r3.rgb || r3.image) {
            fprintf(stderr, "generate_twice: the cancelled generation returned an image\n");
            rc = 1;
        } else {
            printf("generation 3: cancelled after 1 step as asked (%s)\n", is_error_message(err));
        }
        is_error_free(err);
    }

    is_image_result_free(&r1);
    is_image_result_free(&r2);
    is_image_result_free(&r3);
    is_pipeline_free(pipe);
    free(path1);
    free(path2);
    if (rc == 0) printf("generate_twice: ok\n");
    return rc;
}
