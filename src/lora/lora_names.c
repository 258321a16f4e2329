/* LoRA tensor names -> (network, diffusers / transformers module, role), as diffusers 0.30.3 reads them
 * (lora_conversion_utils: _maybe_map_sgm_blocks_to_diffusers, _convert_non_diffusers_lora_to_diffusers).
 * kohya stems are module paths with '.' replaced by '_'; a plain "replace every _ by ." breaks the names
 * that contain '_' themselves (to_out_0, transformer_blocks, self_attn, q_proj, ...), so the stem is split
 * at '_' except inside the known multi-word names below. UNet stems may use the original (SGM) block names
 * (input_blocks / middle_block / output_blocks), numbered with the UNet's layers_per_block. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lora/lora.h"
#include "unet/unet_internal.h"

const char *is_lora_component_name(is_lora_component c) {
    switch (c) {
    case IS_LORA_UNET: return "unet";
    case IS_LORA_TEXT_ENCODER: return "text_encoder";
    case IS_LORA_TEXT_ENCODER_2: return "text_encoder_2";
    }
    return "?";
}

static int ends_with(const char *s, size_t n, const char *suffix) {
    size_t k = strlen(suffix);
    return n >= k && memcmp(s + n - k, suffix, k) == 0;
}

static is_error *set_stem(lora_name *out, const char *name, const char *begin, size_t len) {
    if (len == 0) return is_errorf(IS_E_FORMAT, "LoRA tensor '%s': no module name", name);
    if (len >= sizeof out->stem) return is_errorf(IS_E_FORMAT, "LoRA tensor '%s': module name too long", name);
    memcpy(out->stem, begin, len);
    out->stem[len] = 0;
    return NULL;
}

/* kohya: lora_unet_<stem>, lora_te_ / lora_te1_ / lora_te2_<stem>; .lora_down.weight / .lora_up.weight / .alpha */
static is_error *split_kohya(const char *name, const char *prefix, is_lora_component c, lora_name *out) {
    static const struct { const char *suffix; is_lora_role role; } roles[] = {
        {".lora_down.weight", IS_LORA_DOWN}, {".lora_up.weight", IS_LORA_UP}, {".alpha", IS_LORA_ALPHA}};
    const char *stem = name + strlen(prefix);
    size_t n = strlen(stem);
    out->kohya = 1;
    out->component = c;
    for (size_t i = 0; i < sizeof roles / sizeof *roles; i++)
        if (ends_with(stem, n, roles[i].suffix)) {
            out->role = roles[i].role;
            return set_stem(out, name, stem, n - strlen(roles[i].suffix));
        }
    return is_errorf(IS_E_UNSUPPORTED, "LoRA tensor '%s': expected <name>.lora_down.weight, .lora_up.weight or .alpha "
                     "(LoHa, LoKr and DoRA tensors are not supported)", name);
}

/* PEFT / diffusers: <network>.<module>.lora_A.weight / .lora_B.weight, and diffusers' older spellings. */
static is_error *split_peft(const char *name, const char *prefix, is_lora_component c, lora_name *out) {
    static const struct { const char *suffix, *module_tail; is_lora_role role; } roles[] = {
        {".lora_A.weight", "", IS_LORA_DOWN},
        {".lora_B.weight", "", IS_LORA_UP},
        {".lora.down.weight", "", IS_LORA_DOWN},
        {".lora.up.weight", "", IS_LORA_UP},
        {".lora_linear_layer.down.weight", "", IS_LORA_DOWN},
        {".lora_linear_layer.up.weight", "", IS_LORA_UP},
        {".processor.to_q_lora.down.weight", ".to_q", IS_LORA_DOWN},
        {".processor.to_q_lora.up.weight", ".to_q", IS_LORA_UP},
        {".processor.to_k_lora.down.weight", ".to_k", IS_LORA_DOWN},
        {".processor.to_k_lora.up.weight", ".to_k", IS_LORA_UP},
        {".processor.to_v_lora.down.weight", ".to_v", IS_LORA_DOWN},
        {".processor.to_v_lora.up.weight", ".to_v", IS_LORA_UP},
        {".processor.to_out_lora.down.weight", ".to_out.0", IS_LORA_DOWN},
        {".processor.to_out_lora.up.weight", ".to_out.0", IS_LORA_UP},
    };
    const char *stem = name + strlen(prefix);
    size_t n = strlen(stem);
    out->kohya = 0;
    out->component = c;
    for (size_t i = 0; i < sizeof roles / sizeof *roles; i++)
        if (ends_with(stem, n, roles[i].suffix)) {
            size_t len = n - strlen(roles[i].suffix), tail = strlen(roles[i].module_tail);
            out->role = roles[i].role;
            if (len + tail >= sizeof out->stem)
                return is_errorf(IS_E_FORMAT, "LoRA tensor '%s': module name too long", name);
            IS_TRY(set_stem(out, name, stem, len));
            memcpy(out->stem + len, roles[i].module_tail, tail + 1);
            return NULL;
        }
    return is_errorf(IS_E_UNSUPPORTED, "LoRA tensor '%s': expected <module>.lora_A.weight or .lora_B.weight "
                     "(DoRA magnitudes and alphas in PEFT files are not supported)", name);
}

is_error *lora_split_name(const char *name, lora_name *out) {
    memset(out, 0, sizeof *out);
    static const struct { const char *prefix; is_lora_component c; int kohya; } layouts[] = {
        {"lora_unet_", IS_LORA_UNET, 1},
        {"lora_te1_", IS_LORA_TEXT_ENCODER, 1},
        {"lora_te2_", IS_LORA_TEXT_ENCODER_2, 1},
        {"lora_te_", IS_LORA_TEXT_ENCODER, 1},
        {"unet.", IS_LORA_UNET, 0},
        {"text_encoder.", IS_LORA_TEXT_ENCODER, 0},
        {"text_encoder_2.", IS_LORA_TEXT_ENCODER_2, 0},
    };
    for (size_t i = 0; i < sizeof layouts / sizeof *layouts; i++)
        if (strncmp(name, layouts[i].prefix, strlen(layouts[i].prefix)) == 0)
            return layouts[i].kohya ? split_kohya(name, layouts[i].prefix, layouts[i].c, out)
                                    : split_peft(name, layouts[i].prefix, layouts[i].c, out);
    return is_errorf(IS_E_FORMAT, "LoRA tensor '%s': unknown name (expected lora_unet_*, lora_te1_*, lora_te2_* "
                     "(kohya) or unet.*, text_encoder.*, text_encoder_2.* (diffusers / PEFT))", name);
}

/* ---------------------------------------------------------------- kohya stems */

/* Module-path words that contain '_' (diffusers UNet, transformers CLIP). */
static const char *const WORDS[] = {
    "down_blocks", "up_blocks", "mid_block", "transformer_blocks", "proj_in", "proj_out", "to_q", "to_k",
    "to_v", "to_out", "time_emb_proj", "conv_shortcut", "text_model", "self_attn", "q_proj", "k_proj",
    "v_proj", "out_proj", "text_projection", "final_layer_norm", "layer_norm1", "layer_norm2",
    "conv_in", "conv_out", "conv_norm_out", "time_embedding", "add_embedding", "linear_1", "linear_2",
    "token_embedding", "position_embedding"};

/* "a_b_to_out_0" -> "a.b.to_out.0" (appended to out at *at). */
static int dot_stem(const char *s, char *out, size_t cap, size_t *at) {
    while (*s) {
        size_t len = 0;
        for (size_t w = 0; w < sizeof WORDS / sizeof *WORDS; w++) {
            size_t k = strlen(WORDS[w]);
            if (k > len && strncmp(s, WORDS[w], k) == 0 && (s[k] == '_' || s[k] == 0)) len = k;
        }
        if (!len) len = strcspn(s, "_");
        if (len == 0 || *at + len + 2 > cap) return -1; /* empty part ("a__b", trailing '_') or too long */
        if (*at) out[(*at)++] = '.';
        memcpy(out + *at, s, len);
        *at += len;
        out[*at] = 0;
        s += len;
        if (*s == '_') {
            s++;
            if (!*s) return -1;
        }
    }
    return 0;
}

/* "12_rest" -> 12, rest; -1 if s does not start with a number and '_'. */
static int take_int(const char **s) {
    const char *p = *s;
    if (*p < '0' || *p > '9') return -1;
    long v = strtol(p, (char **)&p, 10);
    if (*p != '_' || v > 100000) return -1;
    *s = p + 1;
    return (int)v;
}

/* A resnet's SGM layer names. */
static const char *resnet_part(const char *rest) {
    static const char *const map[][2] = {{"in_layers_2", "conv1"}, {"out_layers_3", "conv2"},
                                         {"emb_layers_1", "time_emb_proj"}, {"skip_connection", "conv_shortcut"},
                                         {"conv1", "conv1"}, {"conv2", "conv2"}, {"time_emb_proj", "time_emb_proj"},
                                         {"conv_shortcut", "conv_shortcut"}};
    for (size_t i = 0; i < sizeof map / sizeof *map; i++)
        if (strcmp(rest, map[i][0]) == 0) return map[i][1];
    return NULL;
}

/* input_blocks_N_M_rest / middle_block_M_rest / output_blocks_N_M_rest -> diffusers block prefix + part.
 * Returns 0, -1 for a malformed name, -2 for a block this UNet does not have. */
static int sgm_path(const char *stem, const unet_config *c, char *out, size_t cap) {
    const char *s = stem, *rest;
    char buf[IS_LORA_MODULE_MAX];
    int kind; /* 0 input, 1 middle, 2 output */
    int n = 0, m;
    if (strncmp(s, "input_blocks_", 13) == 0) kind = 0, s += 13;
    else if (strncmp(s, "middle_block_", 13) == 0) kind = 1, s += 13;
    else if (strncmp(s, "output_blocks_", 14) == 0) kind = 2, s += 14;
    else return -1;
    if (kind != 1 && (n = take_int(&s)) < 0) return -1;
    if ((m = take_int(&s)) < 0) return -1;
    rest = s;
    const char *res = resnet_part(rest);
    int is_attn = !res && strcmp(rest, "op") != 0 && strcmp(rest, "conv") != 0;
    if (kind == 1) {
        if (m == 0 || m == 2) {
            if (!res) return -1;
            snprintf(buf, sizeof buf, "mid_block.resnets.%d.%s", m / 2, res);
        } else if (m == 1 && is_attn) snprintf(buf, sizeof buf, "mid_block.attentions.0.");
        else return -1;
    } else if (kind == 0) {
        int start = 1, found = 0; /* input_blocks_0 is conv_in: not a block diffusers maps */
        for (int b = 0; b < c->n_blocks && !found; b++) {
            int L = c->layers_per_block[b];
            if (n >= start && n < start + L) {
                int j = n - start;
                if (m == 0 && res) snprintf(buf, sizeof buf, "down_blocks.%d.resnets.%d.%s", b, j, res);
                else if (m == 1 && is_attn) snprintf(buf, sizeof buf, "down_blocks.%d.attentions.%d.", b, j);
                else return -1;
                found = 1;
            } else if (n == start + L && b < c->n_blocks - 1) {
                if (m != 0 || strcmp(rest, "op") != 0) return -1;
                snprintf(buf, sizeof buf, "down_blocks.%d.downsamplers.0.conv", b);
                found = 1;
            }
            start += L + 1;
        }
        if (!found) return -2;
    } else {
        int start = 0, found = 0;
        for (int i = 0; i < c->n_blocks && !found; i++) {
            int R = c->layers_per_block[c->n_blocks - 1 - i] + 1, last = i == c->n_blocks - 1;
            if (n >= start && n < start + R) {
                int j = n - start;
                /* the upsampler follows the last resnet's attention (index 2), or the resnet (index 1) */
                if (m == 0 && res) snprintf(buf, sizeof buf, "up_blocks.%d.resnets.%d.%s", i, j, res);
                else if (m == 1 && is_attn) snprintf(buf, sizeof buf, "up_blocks.%d.attentions.%d.", i, j);
                else if ((m == 1 || m == 2) && strcmp(rest, "conv") == 0 && j == R - 1 && !last)
                    snprintf(buf, sizeof buf, "up_blocks.%d.upsamplers.0.conv", i);
                else return -1;
                found = 1;
            }
            start += R;
        }
        if (!found) return -2;
    }
    size_t at = strlen(buf);
    if (at >= cap) return -1;
    memcpy(out, buf, at + 1);
    if (is_attn) { /* buf ends with '.': the attention module's own path follows */
        out[--at] = 0;
        if (dot_stem(rest, out, cap, &at) != 0) return -1;
    }
    return 0;
}

is_error *lora_module_path(const lora_name *n, const is_unet *unet, char *module, size_t cap) {
    module[0] = 0;
    if (!n->kohya) {
        if (strlen(n->stem) >= cap) return is_errorf(IS_E_FORMAT, "LoRA module '%s': name too long", n->stem);
        memcpy(module, n->stem, strlen(n->stem) + 1);
        return NULL;
    }
    const char *s = n->stem;
    int sgm = n->component == IS_LORA_UNET && (strncmp(s, "input_blocks_", 13) == 0 ||
                                               strncmp(s, "middle_block_", 13) == 0 ||
                                               strncmp(s, "output_blocks_", 14) == 0);
    if (sgm) {
        if (!unet)
            return is_errorf(IS_E_ARGUMENT, "LoRA module 'lora_unet_%s': SGM block names need the UNet (its "
                             "layers_per_block numbers the blocks)", s);
        int r = sgm_path(s, &unet->cfg, module, cap);
        if (r == -2)
            return is_errorf(IS_E_SHAPE, "LoRA module 'lora_unet_%s': this UNet has no such block (layers_per_block "
                             "%d, %d blocks): a LoRA for another model?", s, unet->cfg.layers_per_block[0],
                             unet->cfg.n_blocks);
        if (r != 0)
            return is_errorf(IS_E_FORMAT, "LoRA module 'lora_unet_%s': not an SGM UNet layer diffusers maps (resnet "
                             "in_layers_2 / out_layers_3 / emb_layers_1 / skip_connection, attention block layers, "
                             "downsampler op, upsampler conv)", s);
        return NULL;
    }
    size_t at = 0;
    if (dot_stem(s, module, cap, &at) != 0)
        return is_errorf(IS_E_FORMAT, "LoRA module '%s' (%s): not a module name", s, is_lora_component_name(n->component));
    if (n->component == IS_LORA_UNET) { /* diffusers' kohya conversion: downsampler "op" is "conv" */
        char *op = strstr(module, "samplers.0.op");
        if (op && op[13] == 0 && at + 2 < cap) memcpy(op + 11, "conv", 5);
    }
    return NULL;
}

is_error *is_lora_map_name(const char *name, const is_unet *unet, is_lora_target *out) {
    if (!name || !out) return is_errorf(IS_E_ARGUMENT, "is_lora_map_name: NULL argument");
    memset(out, 0, sizeof *out);
    lora_name n;
    IS_TRY(lora_split_name(name, &n));
    out->component = n.component;
    out->role = n.role;
    return is_error_wrap(lora_module_path(&n, unet, out->module, sizeof out->module), "LoRA tensor '%s'", name);
}
