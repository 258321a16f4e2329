#include "kernels/kernels.h"

/* Kernels add from the thread that calls them (outside their parallel regions): one counter per
 * calling thread, so pipelines generating on different threads do not mix their counts. */
static _Thread_local double t_flops;

void is_flops_add(double n) { t_flops += n; }
double is_flops_total(void) { return t_flops; }
void is_flops_reset(void) { t_flops = 0; }
