/* Thread count for OpenMP kernels and OpenBLAS. */
#include <cblas.h>
#include <omp.h>

#include "instantstyle.h"

void is_set_threads(int n) {
    if (n <= 0) n = omp_get_num_procs();
    omp_set_num_threads(n);
    openblas_set_num_threads(n);
}

int is_get_threads(void) { return omp_get_max_threads(); }
