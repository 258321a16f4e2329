/* OpenBLAS 0.3.21 (Debian 12's) does not know newer Intel server CPUs (Emerald Rapids, model 207,
 * among them) and falls back to its generic "Prescott" kernels: f32 matrix products run about 6x
 * slower (31 against 190 GFLOP/s measured on 2 cores). OpenBLAS reads OPENBLAS_CORETYPE only while it
 * loads, so the program names the right core family and re-executes itself, once; a core type the
 * user set is never touched. */
#include <cblas.h>
#include <stdlib.h>
#include <strings.h>
#include <unistd.h>

#include "commands.h"

void is_cli_fix_blas_core(char **argv) {
    if (getenv("OPENBLAS_CORETYPE")) return;
    const char *core = openblas_get_corename();
    if (!core || strcasecmp(core, "prescott")) return;
    __builtin_cpu_init();
    const char *want = __builtin_cpu_supports("avx512bf16") ? "Cooperlake"
                       : __builtin_cpu_supports("avx512f")  ? "SkylakeX"
                       : __builtin_cpu_supports("avx2")     ? "Haswell"
                                                            : NULL;
    if (!want || setenv("OPENBLAS_CORETYPE", want, 0)) return;
    execv("/proc/self/exe", argv); /* on failure: go on with the generic kernels */
}
