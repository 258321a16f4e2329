/* Golden test harness: finds ../shared/golden (or $IS_GOLDEN_DIR), loads cases.json,
 * compares tensors with |got-exp| <= atol + rtol*|exp| and reports the worst element. */
#ifndef IS_TEST_HARNESS_H
#define IS_TEST_HARNESS_H

#include <cjson/cJSON.h>
#include <stddef.h>

#include "core/error.h"
#include "core/safetensors.h"

/* Golden root folder (IS_GOLDEN_DIR overrides the default ../shared/golden). */
const char *th_golden(void);
/* New string: golden root + "/" + rel. */
char *th_golden_path(const char *rel);
/* A scratch folder for test outputs (inside the build tree). */
const char *th_tmpdir(void);
/* Parse cases/<group>/cases.json; aborts the test (counted as a failure) if unreadable. */
cJSON *th_load_cases(const char *group);
/* Path of a file inside a case folder: cases/<group>/<rel>. */
char *th_case_path(const char *group, const char *rel);
/* Open cases/<group>/<file> as safetensors (NULL + failure recorded on error). */
is_st *th_open_expected(const char *group, const char *file);

/* Record one check. */
void th_check(int ok, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* An is_error* that must be NULL; prints the message otherwise. Returns 1 if ok. */
int th_ok(is_error *err, const char *what);
/* An is_error* that must be non-NULL with a message containing `needle` (NULL = any). Frees it. */
int th_fails(is_error *err, const char *needle, const char *what);

/* Element-wise comparison against an expected tensor (any dtype). Checks numel too. */
int th_close(const char *what, const float *got, size_t n, const is_tensor *expected, double atol,
             double rtol);
int th_close_f32(const char *what, const float *got, const float *expected, size_t n, double atol,
                 double rtol);
/* Tolerance of tensor `name` in a case's "tolerance" object ({"atol":..,"rtol":..}). Missing: fail. */
void th_tolerance(const cJSON *c, const char *name, double *atol, double *rtol);
/* Look up tensor `name` in expected set (failure recorded if absent). */
const is_tensor *th_tensor(const is_st *st, const char *name);

/* Reduced-precision (bf16) comparison of a whole tensor against a reference, with two bounds:
 *   relative L2:  ||got - exp||_2 / ||exp||_2 <= rel_l2
 *   max abs:      max |got - exp| <= atol + max_rms * rel_l2 * rms(exp)
 * (rms(exp) = ||exp||_2 / sqrt(n); atol: the f32 case's tolerance, the reference's own error). An all-zero
 * reference needs got == exp. Prints the measured relative L2 and max|diff|/rms(exp) with their limits
 * (lines starting "  ok rel"), so the margins are visible in the test log. NaN fails. */
typedef struct {
    double rel_l2;   /* ||got-exp|| / ||exp|| (0 when both are 0, inf when only exp is 0) */
    double max_abs;  /* max |got-exp| */
    double rms;      /* rms(exp) */
} th_rel_stats;
th_rel_stats th_rel_measure(const float *got, const float *expected, size_t n);
int th_close_rel_f32(const char *what, const float *got, const float *expected, size_t n, double rel_l2,
                     double max_rms, double atol);
int th_close_rel(const char *what, const float *got, size_t n, const is_tensor *expected, double rel_l2,
                 double max_rms, double atol);

/* bf16 golden runs: the relative-L2 tolerance of tensor `name` of golden group `group` (docs/PRECISION.md),
 * 0 for a tensor no bf16 product feeds (compare it with its f32 tolerance). Unknown name: fails the test. */
double th_bf16_tolerance(const char *group, const char *name);
/* max |got - exp| <= atol + TH_BF16_MAX_RMS * rel_l2 * rms(exp) (docs/PRECISION.md) */
#define TH_BF16_MAX_RMS 6.0

/* How far got is over the bf16 limits of th_close_rel (rel_l2 > 0) or over atol (rel_l2 == 0: an f32-exact
 * tensor): the larger of the two ratios measured/limit, so > 1 means the check would fail. Counts nothing. */
double th_bf16_excess(const float *got, size_t n, const is_tensor *expected, double rel_l2, double atol);

/* Simulated bugs for the bf16 sensitivity checks: a copy of a model folder in which some weights are
 * changed the way a broken bf16 path would see them. TH_BUG_ZERO: all zeros (a missing bias; zeroing a
 * resnet's conv_shortcut weight and bias = a skipped residual); TH_BUG_TRANSPOSE: a square Linear
 * transposed, a Conv2d with Cout == Cin with its channel axes swapped, else its kernel transposed (a wrong
 * layout); TH_BUG_F16_AS_BF16: an F16 tensor's bits read as BF16 (a weight-dtype misread); TH_BUG_NAN: all NaN
 * (a corrupt or overflowed file; F32, F16 and BF16 tensors). */
typedef enum { TH_BUG_ZERO, TH_BUG_TRANSPOSE, TH_BUG_F16_AS_BF16, TH_BUG_NAN } th_bug_kind;
typedef struct {
    const char *tensor;
    th_bug_kind kind;
} th_bug_edit;
/* th_tmpdir()/<name>/: every file of src_dir linked, except `weights_file`, written with the edits applied
 * (each edit's tensor is a name or an fnmatch pattern, at most 16 edits; every edit must match a tensor).
 * Returns the new folder (free it) or NULL (failure recorded). */
char *th_bugged_model(const char *src_dir, const char *weights_file, const char *name, const th_bug_edit *edits,
                      int n_edits);

/* Named intermediates collected through an is_tensor_hook (hook_user = a th_capture with .batch set):
 * each name's per-item slices reassembled into [batch, ...], up to 40 names. */
typedef struct {
    char name[32];
    float *data;
    size_t per_item;
} th_captured;
typedef struct {
    int batch, n;
    th_captured t[40];
} th_capture;
void th_capture_hook(void *user, const char *name, int b, const float *data, int ndim, const int64_t *shape);
const th_captured *th_capture_get(const th_capture *cap, const char *name); /* NULL when not reported */
void th_capture_free(th_capture *cap);

/* Print "<N> passed, <M> failed" and return the process exit code. */
int th_done(void);

/* A weight tensor named "test.weight" owning its bytes (free((void *)t.data)): values converted to dt
 * (F32, F16, or BF16 rounded to nearest even). */
is_tensor th_weight(is_dtype dt, int ndim, const int64_t *shape, const float *values);

/* xorshift64 step of *state, as a float uniform in [-1, 1): the tests' deterministic random data. */
float th_frand(uint64_t *state);

/* One simulated bug of a sensitivity table: up to two edits, and whether the check must fail (0: a bug
 * known to stay under the bf16 limits, only reported). */
typedef struct {
    int must_fail;
    const char *what;
    th_bug_edit e[2];
    int n;
} th_bug_case;

/* The verdict on one simulated bug: worst = how far its worst tensor went past the bf16 limits (> 1:
 * caught). must_fail: a check that fails when the bug went unnoticed; else only reported. */
void th_bug_verdict(int must_fail, const char *what, const char *worst_name, double worst);

#endif
