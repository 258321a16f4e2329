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

/* Print "<N> passed, <M> failed" and return the process exit code. */
int th_done(void);

#endif
