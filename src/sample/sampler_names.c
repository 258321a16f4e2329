/* is_sampler_name / is_sampler_parse: the one table of sampler names, so the CLI, the PNG metadata
 * and library callers cannot drift apart. */
#include <string.h>

#include "instantstyle.h"

/* A switch without default: -Wswitch (in -Wall, with -Werror) fails the build when an is_sampler
 * value has no name, and is_sampler_parse walks this same switch. */
const char *is_sampler_name(is_sampler s) {
    switch (s) {
    case IS_SAMPLER_FROM_CONFIG: return "from_config";
    case IS_SAMPLER_EULER: return "euler";
    case IS_SAMPLER_EULER_A: return "euler_a";
    case IS_SAMPLER_DDIM: return "ddim";
    case IS_SAMPLER_DPMPP_2M: return "dpmpp_2m";
    case IS_SAMPLER_LCM: return "lcm";
    case IS_SAMPLER_TCD: return "tcd";
    }
    return "?";
}

int is_sampler_parse(const char *text, is_sampler *out) {
    if (!text) return -1;
    /* The enum is contiguous from IS_SAMPLER_FROM_CONFIG = 0; "?" marks the first value past its end. */
    for (int v = IS_SAMPLER_FROM_CONFIG;; v++) {
        const char *name = is_sampler_name((is_sampler)v);
        if (!strcmp(name, "?")) return -1;
        if (!strcmp(text, name)) {
            if (out) *out = (is_sampler)v;
            return 0;
        }
    }
}
