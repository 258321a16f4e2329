/* LoRA files (public API in instantstyle.h, section LoRA): names -> modules (lora_names.c), a file's
 * tensors grouped per module (lora_file.c), merged into a network's weights (lora_merge.c), the
 * per-network entry points (lora_apply.c). */
#ifndef IS_LORA_LORA_H
#define IS_LORA_LORA_H

#include "core/safetensors.h"

/* ---- lora_names.c */
/* A tensor name split into its network, role and stem: kohya: the name between "lora_unet_" /
 * "lora_te1_" ... and ".lora_down.weight" ... (still with '_'); PEFT: the module path. The error names the
 * tensor and what was expected. */
typedef struct {
    int kohya;
    is_lora_component component;
    is_lora_role role;
    char stem[IS_LORA_MODULE_MAX];
} lora_name;
is_error *lora_split_name(const char *name, lora_name *out);
/* The diffusers / transformers module path of a split name. unet: needed for kohya's SGM block names. */
is_error *lora_module_path(const lora_name *n, const is_unet *unet, char *module, size_t cap);

/* ---- lora_file.c: one LoRA file, its tensors grouped per (network, stem); views into the file. */
typedef struct {
    lora_name name;  /* role unused */
    const is_tensor *down, *up, *alpha; /* alpha may be NULL: alpha = rank */
    int64_t rank;
} lora_module;
typedef struct {
    is_st *st;
    lora_module *mods;
    size_t n;
} lora_file;
is_error *lora_file_open(const char *path, lora_file **out);
void lora_file_free(lora_file *f);

/* ---- lora_merge.c: W += weight * alpha/rank * up @ down for every module of `component` in files[0..n)
 * (weights[i] for files[i]), through is_st_override_f32 on st (the network's weights; what: its name for
 * errors). The caller restores st on error. */
is_error *lora_merge(is_st *st, const char *what, is_lora_component component, const is_unet *unet,
                     lora_file *const *files, const float *weights, int n);

#endif
