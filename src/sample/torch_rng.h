/* PyTorch 1.13.1 CPU generator (mt19937 + torch's normal/uniform transforms), bit-exact.
 * The public part (is_torch_rng, seed, randn, rand) is in instantstyle.h; this adds the raw engine. */
#ifndef IS_SAMPLE_TORCH_RNG_H
#define IS_SAMPLE_TORCH_RNG_H

#include "instantstyle.h"

/* Next raw 32-bit mt19937 output. */
uint32_t is_torch_rng_u32(is_torch_rng *g);

#endif
