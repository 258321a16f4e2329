/* LoRA files (public API in instantstyle.h, section LoRA): names -> modules (lora_names.c), a file's
 * tensors grouped per module (lora_file.c), planned and merged into a network's weights (lora_merge.c), what
 * a network carries across precision changes (lora_state.c), the per-network entry points (lora_apply.c). */
#ifndef IS_LORA_LORA_H
#define IS_LORA_LORA_H

#include "core/safetensors.h"
#include "kernels/dnn.h"

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

/* ---- lora_merge.c: the plan of a LoRA list for one network: each module placed on the weight it patches,
 * fitted and scaled (scale = weight * alpha / rank) before any weight changes; then merged a tensor at a time:
 * W += scale * up @ down for every patch of W in list order, into an f32 copy (is_st_override_f32). */
typedef struct {
    const is_tensor *w; /* a tensor of the network's is_st */
    const lora_module *m;
    float scale;
} lora_patch;
typedef struct {
    lora_file **files;
    int n_files;
    lora_patch *patches; /* in list order */
    size_t n;
    const is_tensor **targets; /* the distinct weights patched, sorted by address (lora_tensor_in) */
    size_t n_targets;
} lora_plan;
/* what names the network in errors; unet is needed for kohya's SGM block names (NULL for text encoders). */
is_error *lora_plan_make(const is_st *st, const char *what, is_lora_component component, const is_unet *unet,
                         const is_lora *loras, int n, lora_plan *out);
void lora_plan_free(lora_plan *p);
/* t's values become an f32 copy with every patch of t added (no-op when the plan does not patch t). */
is_error *lora_plan_merge(const lora_plan *p, is_st *st, const is_tensor *t);
/* Sorted pointer sets: sort and drop repeats (returns the new count); membership. */
size_t lora_sort_unique(const is_tensor **v, size_t n);
int lora_tensor_in(const is_tensor *const *sorted, size_t n, const is_tensor *t);

/* ---- lora_state.c: the LoRAs a network carries (is_unet, is_clip_text hold one; NULL = none).
 * f32: the patched weights are f32 copies (exactly diffusers' fuse_lora). bf16: the packs that read a
 * patched weight are packed again from the merged values, one pack at a time, and the f32 copies are
 * dropped once packed: the LoRA costs no memory beyond the packs (only weights no pack reads keep a copy).
 * The list is kept so that a change of precision merges again. */
typedef struct lora_state lora_state;
/* Make the network (weights st, packs dnn or NULL) carry loras[0..n) instead of what *slot held (the list is
 * copied). Every file is read and checked before anything changes; on a later failure the network carries
 * no LoRA. */
is_error *lora_state_set(lora_state **slot, is_st *st, is_dnn *dnn, const char *what, is_lora_component component,
                         const is_unet *unet, const is_lora *loras, int n);
/* After the network's precision changed (dnn: its packs, just made from the merged copies; NULL: unpacked). */
is_error *lora_state_precision_changed(lora_state **slot, is_st *st, is_dnn *dnn);
void lora_state_free(lora_state *s);

#endif
