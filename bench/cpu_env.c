/* What this machine is and whether its libraries know it: the CPU's vector extensions (from
 * /proc/cpuinfo) and the kernels OpenBLAS chose. OpenBLAS 0.3.21 (DYNAMIC_ARCH) falls back to its
 * generic "Prescott" kernels on CPU models it does not know (e.g. the Intel Xeon family 6 model 207
 * with AMX), which makes every f32 number several times slower than the CPU is; the bench says so
 * and names the OPENBLAS_CORETYPE that fits, but never sets it itself. */
#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "bench.h"

static int has_flag(const char *flags, const char *name) {
    size_t n = strlen(name);
    for (const char *p = flags; (p = strstr(p, name)) != NULL; p += n)
        if ((p == flags || p[-1] == ' ' || p[-1] == '\t') && (p[n] == ' ' || p[n] == '\n' || p[n] == 0)) return 1;
    return 0;
}

void bench_cpu_detect(bench_cpu *c) {
    memset(c, 0, sizeof *c);
    snprintf(c->model, sizeof c->model, "?");
    FILE *f = fopen("/proc/cpuinfo", "r");
    if (!f) return;
    static char line[8192]; /* the flags line is long */
    int got_flags = 0, got_model = 0, got_family = 0, got_id = 0;
    while (fgets(line, sizeof line, f) && !(got_flags && got_model && got_family && got_id)) {
        char *colon = strchr(line, ':');
        if (!colon) continue;
        if (!got_model && !strncmp(line, "model name", 10)) {
            snprintf(c->model, sizeof c->model, "%s", colon + 2);
            c->model[strcspn(c->model, "\n")] = 0;
            got_model = 1;
        } else if (!got_family && !strncmp(line, "cpu family", 10)) {
            c->family = atoi(colon + 1), got_family = 1;
        } else if (!got_id && !strncmp(line, "model", 5) && (line[5] == ' ' || line[5] == '\t')) {
            c->model_id = atoi(colon + 1), got_id = 1;
        } else if (!got_flags && !strncmp(line, "flags", 5)) {
            c->avx2 = has_flag(colon + 1, "avx2");
            c->avx512f = has_flag(colon + 1, "avx512f");
            c->avx512_bf16 = has_flag(colon + 1, "avx512_bf16");
            c->amx_bf16 = has_flag(colon + 1, "amx_bf16");
            got_flags = 1;
        }
    }
    fclose(f);
}

static int core_in(const char *core, const char *const *list) {
    for (; *list; list++)
        if (!strcasecmp(core, *list)) return 1;
    return 0;
}

void bench_print_cpu_and_blas(const bench_cpu *c) {
    printf("CPU: family %d model %d; avx2 %s, avx512f %s, avx512_bf16 %s, amx_bf16 %s\n", c->family, c->model_id,
           c->avx2 ? "yes" : "no", c->avx512f ? "yes" : "no", c->avx512_bf16 ? "yes" : "no",
           c->amx_bf16 ? "yes" : "no");
    const char *core = openblas_get_corename();
    const char *env = getenv("OPENBLAS_CORETYPE");
    printf("OpenBLAS: %s (core %s%s%s)\n", openblas_get_config(), core ? core : "?",
           env && *env ? ", OPENBLAS_CORETYPE=" : "", env && *env ? env : "");
    if (!core) return;
    static const char *const avx512_cores[] = {"SkylakeX", "Cooperlake", "SapphireRapids", NULL};
    static const char *const avx2_cores[] = {"Haswell", "Zen", "SkylakeX", "Cooperlake", "SapphireRapids", NULL};
    const char *want = NULL;
    if (c->avx512f && !core_in(core, avx512_cores))
        want = c->avx512_bf16 ? "Cooperlake" : "SkylakeX";
    else if (!c->avx512f && c->avx2 && !core_in(core, avx2_cores))
        want = "Haswell";
    if (!want) return;
    printf("WARNING: OpenBLAS runs its \"%s\" kernels on this %s CPU (it does not know family %d model %d):\n"
           "WARNING: every f32 number below (the sgemm ceiling included) is far below what this CPU does.\n"
           "WARNING: rerun with OPENBLAS_CORETYPE=%s in the environment for this CPU's %s kernels "
           "(is_bench does not set it).\n",
           core, c->avx512f ? (c->avx512_bf16 ? "AVX-512 (BF16)" : "AVX-512") : "AVX2", c->family, c->model_id, want,
           c->avx512f ? "AVX-512" : "AVX2");
}
