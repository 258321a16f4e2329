#include "kernels/kernels.h"

/* Kernels run from one thread at a time (they parallelise inside), so a plain double is enough. */
static double g_flops;

void is_flops_add(double n) { g_flops += n; }
double is_flops_total(void) { return g_flops; }
void is_flops_reset(void) { g_flops = 0; }
