/* LoRA golden tests (cases/lora): the module every tensor of both LoRA files maps to (kohya SGM and PEFT
 * layouts), the merged weights of the named layers at weights 1 and 0.6, one UNet call and SDXL prompt
 * encoding with each case's LoRAs (weights, two LoRAs at once, cross_attention_kwargs scale, fuse_lora),
 * each with the case's tolerance; then the name rules beyond the goldens (diffusers-style kohya names,
 * layers_per_block 3) and the errors: unknown tensors, unpaired tensors, shapes that do not fit, a LoRA
 * for another model. Unknown names and modules the network lacks are errors, where diffusers drops the
 * latter with a warning ("unexpected keys"): nothing here is ignored silently. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/fileio.h"
#include "harness.h"
#include "lora/lora.h"
#include "text/clip_text.h"
#include "text/sdxl_prompt.h"
#include "unet/unet_internal.h"

#define GROUP "lora"

/* bf16 runs: outputs compared with the unet / text_encoders groups' bf16 tolerances (docs/PRECISION.md). */
static int g_bf16;

static void compare_out(const char *what, const cJSON *c, const char *group, const char *name, const float *got,
                        size_t n, const is_tensor *exp) {
    double atol, rtol;
    th_tolerance(c, name, &atol, &rtol);
    if (g_bf16) th_close_rel(what, got, n, exp, th_bf16_tolerance(group, name), TH_BF16_MAX_RMS, atol);
    else th_close(what, got, n, exp, atol, rtol);
}

static const char *jstr(const cJSON *o, const char *key) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

static float *input(const is_st *inputs, const char *name, size_t *numel) {
    const is_tensor *t = th_tensor(inputs, name);
    if (!t) return NULL;
    if (numel) *numel = (size_t)t->numel;
    return is_tensor_dup_f32(t);
}

/* ---------------------------------------------------------------- the case's LoRA list */

typedef struct {
    is_lora l[4];
    char *paths[4];
    int n;
} lora_list;

/* cross_attention_kwargs={'scale': s} and fuse_lora(lora_scale=s) multiply every adapter weight by s. */
static double extra_scale(const cJSON *c) {
    const char *d = jstr(c, "diffusers");
    const char *keys[] = {"cross_attention_kwargs={'scale': ", "lora_scale="};
    for (int i = 0; d && i < 2; i++) {
        const char *p = strstr(d, keys[i]);
        if (p) return strtod(p + strlen(keys[i]), NULL);
    }
    return 1.0;
}

static void case_loras(const cJSON *c, lora_list *out) {
    memset(out, 0, sizeof *out);
    double s = extra_scale(c);
    const cJSON *e;
    cJSON_ArrayForEach(e, cJSON_GetObjectItemCaseSensitive(c, "loras")) {
        if (out->n == 4) break;
        out->paths[out->n] = th_case_path(GROUP, jstr(e, "file"));
        out->l[out->n].path = out->paths[out->n];
        out->l[out->n].weight = (float)(cJSON_GetObjectItemCaseSensitive(e, "weight")->valuedouble * s);
        out->n++;
    }
}

static void free_loras(lora_list *l) {
    for (int i = 0; i < l->n; i++) free(l->paths[i]);
}

/* ---------------------------------------------------------------- mapping */

static const char *role_name(is_lora_role r) {
    return r == IS_LORA_DOWN ? "lora_A (down)" : r == IS_LORA_UP ? "lora_B (up)" : "alpha";
}

static cJSON *load_json(const char *rel) {
    char *path = th_case_path(GROUP, rel), *text = NULL;
    size_t n = 0;
    cJSON *j = NULL;
    if (th_ok(is_read_file(path, 64u << 20, &text, &n), path)) j = cJSON_ParseWithLength(text, n);
    th_check(j != NULL, "%s parses", rel);
    free(text);
    free(path);
    return j;
}

/* Every tensor of the file: component, module and role; per module rank, alpha and alpha/rank. */
static void test_mapping(const cJSON *c, const is_unet *u) {
    const char *cname = jstr(c, "name");
    cJSON *map = load_json(jstr(c, "mapping_file"));
    char *path = th_case_path(GROUP, jstr(c, "lora_file"));
    lora_file *f = NULL;
    if (!map || !th_ok(lora_file_open(path, &f), path)) goto done;
    const cJSON *rows = cJSON_GetObjectItemCaseSensitive(map, "rows"), *row;
    int n_rows = 0, bad = 0, per[3] = {0, 0, 0};
    cJSON_ArrayForEach(row, rows) {
        n_rows++;
        const char *name = row->string;
        const char *comp = cJSON_GetArrayItem(row, 0)->valuestring, *module = cJSON_GetArrayItem(row, 1)->valuestring;
        const char *role = cJSON_GetArrayItem(row, 2)->valuestring;
        int rank = cJSON_GetArrayItem(row, 6)->valueint;
        double alpha = cJSON_GetArrayItem(row, 7)->valuedouble, scale = cJSON_GetArrayItem(row, 8)->valuedouble;
        is_lora_target t;
        is_error *err = is_lora_map_name(name, u, &t);
        int ok = !err && !strcmp(is_lora_component_name(t.component), comp) && !strcmp(t.module, module) &&
                 !strcmp(role_name(t.role), role);
        if (!err) per[t.component]++;
        /* the grouped module: rank and alpha as diffusers used them */
        lora_name ln;
        int found = 0;
        if (!err && !lora_split_name(name, &ln))
            for (size_t k = 0; k < f->n; k++) {
                const lora_module *m = &f->mods[k];
                if (m->name.component != ln.component || strcmp(m->name.stem, ln.stem)) continue;
                double a = m->alpha ? is_tensor_get_f32(m->alpha, 0) : (double)m->rank;
                found = m->rank == rank && a == alpha && fabs(a / (double)m->rank - scale) < 1e-12;
            }
        if (!ok || !found) {
            if (bad++ < 5)
                fprintf(stderr, "  %s: %s -> %s %s %s (rank/alpha %s), expected %s %s %s rank %d alpha %g%s%s\n", cname,
                        name, err ? "error" : is_lora_component_name(t.component), err ? "" : t.module,
                        err ? "" : role_name(t.role), found ? "ok" : "wrong", comp, module, role, rank, alpha,
                        err ? ": " : "", err ? is_error_message(err) : "");
        }
        is_error_free(err);
    }
    th_check(bad == 0, "%s: all %d tensors map to the golden module, role, rank and alpha (%d wrong)", cname, n_rows, bad);
    th_check((size_t)n_rows == is_st_count(f->st), "%s: the table lists every tensor of the file (%d of %zu)", cname,
             n_rows, is_st_count(f->st));
    const cJSON *tpc = cJSON_GetObjectItemCaseSensitive(c, "tensors_per_component");
    for (int k = 0; k < 3; k++) {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(tpc, is_lora_component_name((is_lora_component)k));
        th_check(v && v->valueint == per[k], "%s: %d %s tensors (golden %d)", cname, per[k],
                 is_lora_component_name((is_lora_component)k), v ? v->valueint : -1);
    }
done:
    lora_file_free(f);
    free(path);
    cJSON_Delete(map);
}

/* ---------------------------------------------------------------- merged weights */

typedef struct {
    is_unet *u;
    is_sdxl_text *t;
} nets;

/* The weights of "<component>.<module>" as the network sees them now. */
static const is_tensor *weight_of(const nets *n, const char *layer) {
    char name[300];
    const is_st *st = NULL;
    const char *module = NULL;
    if (!strncmp(layer, "unet.", 5)) st = n->u->st, module = layer + 5;
    else if (!strncmp(layer, "text_encoder_2.", 15))
        st = is_clip_text_weights(is_sdxl_text_encoder(n->t, 2)), module = layer + 15;
    else if (!strncmp(layer, "text_encoder.", 13))
        st = is_clip_text_weights(is_sdxl_text_encoder(n->t, 1)), module = layer + 13;
    if (!st) return NULL;
    snprintf(name, sizeof name, "%s.weight", module);
    return is_st_find(st, name);
}

static int set_all(const nets *n, const is_lora *l, int k, const char *what) {
    int ok = th_ok(is_unet_set_loras(n->u, l, k), what);
    return th_ok(is_sdxl_text_set_loras(n->t, l, k), what) && ok;
}

static void compare_layers(const cJSON *c, const is_st *exp, const nets *n, const char *suffix) {
    const cJSON *e;
    cJSON_ArrayForEach(e, cJSON_GetObjectItemCaseSensitive(c, "merged_layers")) {
        char name[300], what[400];
        double atol, rtol;
        snprintf(name, sizeof name, "%s.%s", e->valuestring, suffix);
        snprintf(what, sizeof what, "%s: %s", jstr(c, "name"), name);
        const is_tensor *w = weight_of(n, e->valuestring);
        th_check(w != NULL, "%s: weight found", what);
        if (!w) continue;
        float *got = is_tensor_dup_f32(w);
        th_tolerance(c, name, &atol, &rtol);
        th_close(what, got, (size_t)w->numel, th_tensor(exp, name), atol, rtol);
        free(got);
    }
}

static void test_merged(const cJSON *c, const nets *n) {
    is_st *exp = th_open_expected(GROUP, jstr(c, "expected"));
    char *path = th_case_path(GROUP, jstr(c, "lora_file"));
    if (!exp) goto done;
    if (set_all(n, NULL, 0, "no LoRA")) compare_layers(c, exp, n, "base");
    is_lora l = {path, 1.0f};
    if (set_all(n, &l, 1, "weight 1")) compare_layers(c, exp, n, "merged_w1");
    l.weight = 0.6f;
    if (set_all(n, &l, 1, "weight 0.6")) compare_layers(c, exp, n, "merged_w0.6");
    set_all(n, NULL, 0, "no LoRA");
    th_check(is_st_override_count(n->u->st) == 0, "%s: no LoRA: every UNet weight views the file again", jstr(c, "name"));
done:
    is_st_close(exp);
    free(path);
}

/* ---------------------------------------------------------------- network cases */

/* One UNet call with loras[0..n) merged, against the case's noise_pred. */
/* One UNet evaluation on the group's inputs at case c's timestep (NULL on failure; the caller frees). */
static float *unet_eval(is_unet *u, const cJSON *c, const is_st *inputs, size_t *n_out, const char *what) {
    const is_tensor *s = th_tensor(inputs, "sample");
    if (!s) return NULL;
    is_unet_input in;
    is_unet_input_init(&in);
    in.batch = 1;
    in.height = (int)s->shape[2];
    in.width = (int)s->shape[3];
    in.timestep = (float)cJSON_GetObjectItemCaseSensitive(c, "timestep")->valuedouble;
    size_t n_ctx = 0;
    float *sample = input(inputs, "sample", NULL), *ctx = input(inputs, "encoder_hidden_states", &n_ctx);
    float *text = input(inputs, "text_embeds", NULL), *ids = input(inputs, "time_ids", NULL);
    in.sample = sample;
    in.encoder_hidden_states = ctx;
    in.seq_len = (int)(n_ctx / (size_t)is_unet_cross_attention_dim(u));
    in.text_embeds = text;
    in.time_ids = ids;
    *n_out = (size_t)is_unet_out_channels(u) * in.height * in.width;
    float *noise = calloc(*n_out, sizeof(float));
    if (!th_ok(is_unet_forward(u, &in, noise), what)) {
        free(noise);
        noise = NULL;
    }
    free(sample), free(ctx), free(text), free(ids);
    return noise;
}

static void run_unet(const cJSON *c, is_unet *u, const is_st *inputs, const is_lora *loras, int n, const char *tag) {
    const char *cname = jstr(c, "name");
    is_st *exp = th_open_expected(GROUP, jstr(c, "expected"));
    char what[200];
    snprintf(what, sizeof what, "%s%s: set LoRAs", cname, tag);
    if (!exp || !th_ok(is_unet_set_loras(u, loras, n), what)) {
        is_st_close(exp);
        return;
    }
    size_t n_out = 0;
    snprintf(what, sizeof what, "%s%s: noise_pred", cname, tag);
    float *noise = unet_eval(u, c, inputs, &n_out, what);
    if (noise) compare_out(what, c, "unet", "noise_pred", noise, n_out, th_tensor(exp, "noise_pred"));
    free(noise);
    is_st_close(exp);
}

/* bf16 keeps no f32 copy of a patched weight (the packs hold the merged values) and the state follows the
 * precision: merging into packs gives the same packs as packing merged copies, bit for bit; removing the
 * LoRA gives the packs of the file; going back to f32 merges the copies again (the golden's numbers). */
static void test_bf16_lifecycle(is_unet *u, const is_st *inputs, const cJSON *c) {
    lora_list l;
    case_loras(c, &l);
    const char *cname = jstr(c, "name");
    size_t n = 0, n2 = 0;
    float *merged_in_packs = NULL, *packed_merged = NULL, *removed = NULL, *plain = NULL;
    /* in bf16: merged into the packs */
    if (!th_ok(is_unet_set_loras(u, l.l, l.n), "bf16 set_loras")) goto done;
    th_check(is_st_override_count(u->st) == 0, "%s (bf16): no f32 copy is kept (%zu kept)", cname, is_st_override_count(u->st));
    merged_in_packs = unet_eval(u, c, inputs, &n, "bf16 LoRA in the packs");
    /* removed in bf16, against packs made from the file */
    th_ok(is_unet_set_loras(u, NULL, 0), "bf16 LoRAs removed");
    removed = unet_eval(u, c, inputs, &n2, "bf16 LoRA removed");
    th_ok(is_unet_set_precision(u, IS_PRECISION_F32), "f32");
    th_check(is_st_override_count(u->st) == 0, "no LoRA: no copies in f32");
    th_ok(is_unet_set_precision(u, IS_PRECISION_BF16), "bf16 again");
    plain = unet_eval(u, c, inputs, &n2, "bf16 plain");
    th_check(removed && plain && !memcmp(removed, plain, n * sizeof(float)),
             "%s (bf16): removing the LoRA gives the file's packs, bit for bit", cname);
    /* merged in f32, then packed */
    th_ok(is_unet_set_precision(u, IS_PRECISION_F32), "f32");
    th_ok(is_unet_set_loras(u, l.l, l.n), "f32 set_loras");
    th_check(is_st_override_count(u->st) > 0, "%s (f32): the patched weights are f32 copies", cname);
    th_ok(is_unet_set_precision(u, IS_PRECISION_BF16), "bf16 with the LoRA");
    th_check(is_st_override_count(u->st) == 0, "%s: packing drops the copies (%zu kept)", cname, is_st_override_count(u->st));
    packed_merged = unet_eval(u, c, inputs, &n2, "bf16 packed from merged copies");
    th_check(merged_in_packs && packed_merged && !memcmp(merged_in_packs, packed_merged, n * sizeof(float)),
             "%s (bf16): merging into the packs = packing the merged copies, bit for bit", cname);
    th_check(merged_in_packs && plain && memcmp(merged_in_packs, plain, n * sizeof(float)), "%s (bf16): the LoRA changes the output", cname);
    /* back to f32: the copies are merged again, the golden's numbers (g_bf16 is 0: f32 tolerances) */
    if (th_ok(is_unet_set_precision(u, IS_PRECISION_F32), "f32 with the LoRA")) {
        size_t m = 0;
        char what[200];
        snprintf(what, sizeof what, "%s (f32, merged again on leaving bf16): noise_pred", cname);
        float *again = unet_eval(u, c, inputs, &m, what);
        is_st *exp = th_open_expected(GROUP, jstr(c, "expected"));
        if (again && exp) compare_out(what, c, "unet", "noise_pred", again, m, th_tensor(exp, "noise_pred"));
        free(again);
        is_st_close(exp);
    }
done:
    th_ok(is_unet_set_loras(u, NULL, 0), "LoRAs removed");
    free(merged_in_packs), free(packed_merged), free(removed), free(plain);
    free_loras(&l);
}

static void unet_case(const cJSON *c, is_unet *u, const is_st *inputs) {
    lora_list l;
    case_loras(c, &l);
    run_unet(c, u, inputs, l.l, l.n, g_bf16 ? " (bf16)" : "");
    free_loras(&l);
}

static void te_case(const cJSON *c, is_sdxl_text *t) {
    const char *cname = jstr(c, "name");
    lora_list l;
    case_loras(c, &l);
    is_st *exp = th_open_expected(GROUP, jstr(c, "expected"));
    char what[200];
    snprintf(what, sizeof what, "%s: set LoRAs", cname);
    if (!exp || !th_ok(is_sdxl_text_set_loras(t, l.l, l.n), what)) goto done;
    int n = is_sdxl_text_seq_len(t), dim = is_sdxl_text_embed_dim(t), pd = is_sdxl_text_pooled_dim(t);
    int32_t *ids[2] = {malloc((size_t)n * sizeof(int32_t)), malloc((size_t)n * sizeof(int32_t))};
    float *embeds = malloc((size_t)n * (size_t)dim * sizeof(float)), *pooled = malloc((size_t)pd * sizeof(float));
    const char *prompt = jstr(c, "prompt");
    if (th_ok(is_sdxl_tokenize(t, prompt, NULL, ids[0], ids[1], NULL, NULL), "tokenize"))
        for (int k = 0; k < 2; k++) {
            char name[32];
            snprintf(name, sizeof name, "input_ids_%d", k + 1);
            const is_tensor *e = th_tensor(exp, name);
            int same = e && e->numel == n;
            for (int i = 0; same && i < n; i++) same = ids[k][i] == (int32_t)is_tensor_get_f32(e, (size_t)i);
            th_check(same, "%s: %s exact", cname, name);
        }
    snprintf(what, sizeof what, "%s: encode_prompt", cname);
    if (th_ok(is_sdxl_encode_prompt(t, prompt, NULL, embeds, pooled, NULL), what)) {
        snprintf(what, sizeof what, "%s%s: prompt_embeds", cname, g_bf16 ? " (bf16)" : "");
        compare_out(what, c, "text_encoders", "prompt_embeds", embeds, (size_t)n * dim, th_tensor(exp, "prompt_embeds"));
        snprintf(what, sizeof what, "%s%s: pooled_prompt_embeds", cname, g_bf16 ? " (bf16)" : "");
        compare_out(what, c, "text_encoders", "pooled_prompt_embeds", pooled, (size_t)pd,
                    th_tensor(exp, "pooled_prompt_embeds"));
    }
    free(ids[0]), free(ids[1]), free(embeds), free(pooled);
done:
    is_st_close(exp);
    free_loras(&l);
}

/* ---------------------------------------------------------------- names beyond the goldens */

static void expect_map(const char *name, const is_unet *u, is_lora_component comp, const char *module, is_lora_role role) {
    is_lora_target t;
    is_error *err = is_lora_map_name(name, u, &t);
    th_check(!err && t.component == comp && t.role == role && !strcmp(t.module, module), "%s -> %s (got %s)", name, module,
             err ? is_error_message(err) : t.module);
    is_error_free(err);
}

static void test_names(const is_unet *u) {
    const is_lora_role D = IS_LORA_DOWN, U = IS_LORA_UP, A = IS_LORA_ALPHA;
    const is_lora_component UN = IS_LORA_UNET, T1 = IS_LORA_TEXT_ENCODER, T2 = IS_LORA_TEXT_ENCODER_2;
    /* older kohya files: diffusers block names with '_' */
    expect_map("lora_unet_down_blocks_1_attentions_0_transformer_blocks_0_attn1_to_q.lora_down.weight", NULL, UN,
               "down_blocks.1.attentions.0.transformer_blocks.0.attn1.to_q", D);
    expect_map("lora_unet_up_blocks_0_attentions_2_transformer_blocks_1_attn2_to_out_0.lora_up.weight", NULL, UN,
               "up_blocks.0.attentions.2.transformer_blocks.1.attn2.to_out.0", U);
    expect_map("lora_unet_down_blocks_0_resnets_1_conv_shortcut.alpha", NULL, UN, "down_blocks.0.resnets.1.conv_shortcut", A);
    expect_map("lora_unet_down_blocks_0_downsamplers_0_conv.lora_down.weight", NULL, UN, "down_blocks.0.downsamplers.0.conv", D);
    expect_map("lora_unet_mid_block_resnets_1_time_emb_proj.lora_down.weight", NULL, UN, "mid_block.resnets.1.time_emb_proj", D);
    expect_map("lora_unet_mid_block_attentions_0_transformer_blocks_0_ff_net_0_proj.lora_down.weight", NULL, UN,
               "mid_block.attentions.0.transformer_blocks.0.ff.net.0.proj", D);
    expect_map("lora_te_text_model_encoder_layers_11_self_attn_out_proj.lora_up.weight", NULL, T1,
               "text_model.encoder.layers.11.self_attn.out_proj", U);
    expect_map("lora_te2_text_model_encoder_layers_3_mlp_fc2.alpha", NULL, T2, "text_model.encoder.layers.3.mlp.fc2", A);
    /* older diffusers spellings */
    expect_map("unet.down_blocks.1.attentions.0.transformer_blocks.0.attn1.processor.to_out_lora.down.weight", NULL, UN,
               "down_blocks.1.attentions.0.transformer_blocks.0.attn1.to_out.0", D);
    expect_map("text_encoder.text_model.encoder.layers.0.self_attn.q_proj.lora_linear_layer.up.weight", NULL, T1,
               "text_model.encoder.layers.0.self_attn.q_proj", U);
    expect_map("text_encoder_2.text_model.encoder.layers.0.mlp.fc1.lora.down.weight", NULL, T2,
               "text_model.encoder.layers.0.mlp.fc1", D);
    /* SGM numbering comes from the UNet: layers_per_block 3 (4 input blocks per level), 3 levels */
    struct is_unet fake;
    memset(&fake, 0, sizeof fake);
    fake.cfg.n_blocks = 3;
    for (int b = 0; b < 3; b++) fake.cfg.layers_per_block[b] = 3;
    expect_map("lora_unet_input_blocks_3_0_in_layers_2.lora_down.weight", &fake, UN, "down_blocks.0.resnets.2.conv1", D);
    expect_map("lora_unet_input_blocks_4_0_op.lora_down.weight", &fake, UN, "down_blocks.0.downsamplers.0.conv", D);
    expect_map("lora_unet_input_blocks_5_1_proj_in.lora_down.weight", &fake, UN, "down_blocks.1.attentions.0.proj_in", D);
    expect_map("lora_unet_input_blocks_11_0_skip_connection.lora_up.weight", &fake, UN,
               "down_blocks.2.resnets.2.conv_shortcut", U);
    expect_map("lora_unet_output_blocks_7_2_conv.lora_up.weight", &fake, UN, "up_blocks.1.upsamplers.0.conv", U);
    expect_map("lora_unet_output_blocks_3_1_conv.lora_up.weight", &fake, UN, "up_blocks.0.upsamplers.0.conv", U);
    expect_map("lora_unet_output_blocks_11_0_emb_layers_1.lora_down.weight", &fake, UN, "up_blocks.2.resnets.3.time_emb_proj", D);
    /* and with SDXL's 2 (the tiny UNet): output_blocks_5 is up block 1's upsampler */
    expect_map("lora_unet_output_blocks_5_2_conv.lora_down.weight", u, UN, "up_blocks.1.upsamplers.0.conv", D);
    expect_map("lora_unet_middle_block_2_out_layers_3.lora_down.weight", u, UN, "mid_block.resnets.1.conv2", D);

    is_lora_target t;
    th_fails(is_lora_map_name("lora_unet_input_blocks_4_1_proj_in.lora_down.weight", NULL, &t), "layers_per_block",
             "SGM names need the UNet");
    th_fails(is_lora_map_name("lora_unet_input_blocks_12_1_proj_in.lora_down.weight", u, &t), "no such block",
             "SGM block past the UNet's");
    th_fails(is_lora_map_name("lora_unet_input_blocks_0_0.lora_down.weight", u, &t), "not an SGM UNet layer",
             "SGM conv_in (diffusers cannot map it either)");
    th_fails(is_lora_map_name("lora_unet_input_blocks_1_0_in_layers_0.lora_down.weight", u, &t), "not an SGM UNet layer",
             "SGM resnet norm");
    th_fails(is_lora_map_name("lora_unet_down_blocks_0_resnets_0_conv1.hada_w1_a", NULL, &t), "LoHa",
             "LyCORIS LoHa tensor");
    th_fails(is_lora_map_name("unet.down_blocks.0.resnets.0.conv1.lora_magnitude_vector", NULL, &t), "DoRA", "DoRA");
    th_fails(is_lora_map_name("model.diffusion_model.x.weight", NULL, &t), "unknown name", "not a LoRA name");
    th_fails(is_lora_map_name("lora_unet_.lora_down.weight", NULL, &t), "no module name", "empty module");
    th_fails(is_lora_map_name("lora_unet_down_blocks__0.lora_down.weight", NULL, &t), "not a module name", "empty part");
}

/* ---------------------------------------------------------------- errors */

/* A LoRA file of the given tensors (F32, values th_frand) in the scratch folder. */
typedef struct {
    const char *name;
    int ndim;
    int64_t shape[4];
} spec;

static char *write_lora(const char *file, const spec *s, int n) {
    is_st_writer *w = is_st_writer_new();
    uint64_t seed = 7;
    for (int i = 0; i < n; i++) {
        int64_t numel = 1;
        for (int k = 0; k < s[i].ndim; k++) numel *= s[i].shape[k];
        float *v = malloc((size_t)(numel ? numel : 1) * sizeof(float));
        for (int64_t k = 0; k < numel; k++) v[k] = 0.1f * th_frand(&seed);
        th_ok(is_st_writer_add_f32(w, s[i].name, s[i].ndim, s[i].shape, v), s[i].name);
        free(v);
    }
    char *path = is_path_join(th_tmpdir(), file);
    th_ok(is_st_writer_save(w, path), file);
    is_st_writer_free(w);
    return path;
}

static void expect_refused(const nets *n, const char *file, const spec *s, int k, const char *needle, const char *what) {
    char *path = write_lora(file, s, k);
    is_lora l[2] = {{path, 1.0f}, {path, 0.5f}};
    /* first a good state, so that the test sees the failed call undo it */
    char *good = th_case_path(GROUP, "../../models/tiny-sdxl-lora/lora_peft_r4.safetensors");
    is_lora g = {good, 1.0f};
    th_ok(is_unet_set_loras(n->u, &g, 1), "good LoRA first");
    is_error *e1 = is_unet_set_loras(n->u, l, 1);
    is_error *e2 = is_sdxl_text_set_loras(n->t, l, 2);
    th_check(e1 || e2, "%s: refused", what);
    th_fails(e1 ? e1 : e2, needle, what);
    if (e1) is_error_free(e2);
    th_check(is_st_override_count(n->u->st) == 0 &&
                 is_st_override_count(is_clip_text_weights(is_sdxl_text_encoder(n->t, 1))) == 0 &&
                 is_st_override_count(is_clip_text_weights(is_sdxl_text_encoder(n->t, 2))) == 0,
             "%s: the networks are left without LoRA", what);
    free(good);
    free(path);
}

static void test_errors(const nets *n) {
    const char *q = "lora_unet_input_blocks_4_1_transformer_blocks_0_attn1_to_q";
    char dn[160], up[160], al[160];
    snprintf(dn, sizeof dn, "%s.lora_down.weight", q);
    snprintf(up, sizeof up, "%s.lora_up.weight", q);
    snprintf(al, sizeof al, "%s.alpha", q);
    spec unknown[] = {{dn, 2, {4, 32}}, {up, 2, {32, 4}}, {"lora_unet_foo.hada_w1_a", 2, {4, 4}}};
    expect_refused(n, "bad_unknown.safetensors", unknown, 3, "lora_unet_foo.hada_w1_a", "unknown tensor (LoHa) named");
    spec other[] = {{dn, 2, {4, 32}}, {up, 2, {32, 4}}, {"model.diffusion_model.out.2.weight", 2, {4, 4}}};
    expect_refused(n, "bad_name.safetensors", other, 3, "model.diffusion_model.out.2.weight", "non-LoRA tensor named");
    spec no_up[] = {{dn, 2, {4, 32}}};
    expect_refused(n, "bad_no_up.safetensors", no_up, 1, "no matching up", "down without up");
    spec alpha_only[] = {{al, 0, {0}}};
    expect_refused(n, "bad_alpha_only.safetensors", alpha_only, 1, "no matching", "alpha without down/up");
    spec rank_mismatch[] = {{dn, 2, {4, 32}}, {up, 2, {32, 8}}};
    expect_refused(n, "bad_rank.safetensors", rank_mismatch, 2, "expected down [rank, in]", "up rank != down rank");
    spec in_mismatch[] = {{dn, 2, {4, 40}}, {up, 2, {32, 4}}};
    expect_refused(n, "bad_in.safetensors", in_mismatch, 2, "do not fit module", "down [4, 40] for a 32-wide to_q");
    spec conv_as_linear[] = {{"lora_unet_input_blocks_1_0_in_layers_2.lora_down.weight", 2, {4, 32}},
                             {"lora_unet_input_blocks_1_0_in_layers_2.lora_up.weight", 2, {32, 4}}};
    expect_refused(n, "bad_conv.safetensors", conv_as_linear, 2, "do not fit module", "Linear LoRA on a 3x3 conv");
    spec vec_alpha[] = {{dn, 2, {4, 32}}, {up, 2, {32, 4}}, {al, 1, {2}}};
    expect_refused(n, "bad_alpha.safetensors", vec_alpha, 3, "alpha must be one number", "alpha with 2 values");
    /* a LoRA for another model: SDXL-sized text encoder layer, a UNet block this model lacks */
    spec te_big[] = {{"lora_te1_text_model_encoder_layers_0_self_attn_q_proj.lora_down.weight", 2, {4, 768}},
                     {"lora_te1_text_model_encoder_layers_0_self_attn_q_proj.lora_up.weight", 2, {768, 4}}};
    expect_refused(n, "bad_te_size.safetensors", te_big, 2, "a LoRA for another model", "CLIP-L-sized text encoder LoRA");
    spec te_layer[] = {{"lora_te2_text_model_encoder_layers_30_mlp_fc1.lora_down.weight", 2, {4, 64}},
                       {"lora_te2_text_model_encoder_layers_30_mlp_fc1.lora_up.weight", 2, {256, 4}}};
    expect_refused(n, "bad_te_layer.safetensors", te_layer, 2, "has no tensor 'text_model.encoder.layers.30.mlp.fc1.weight'",
                   "text encoder layer 30 of a 2-layer model");
    spec unet_block[] = {{"unet.down_blocks.3.attentions.0.proj_in.lora_A.weight", 2, {4, 64}},
                         {"unet.down_blocks.3.attentions.0.proj_in.lora_B.weight", 2, {64, 4}}};
    expect_refused(n, "bad_unet_block.safetensors", unet_block, 2, "down_blocks.3.attentions.0.proj_in.weight",
                   "PEFT LoRA for a 4-level UNet");
    spec sgm_block[] = {{"lora_unet_output_blocks_11_1_proj_in.lora_down.weight", 2, {4, 64}},
                        {"lora_unet_output_blocks_11_1_proj_in.lora_up.weight", 2, {64, 4}}};
    expect_refused(n, "bad_sgm_block.safetensors", sgm_block, 2, "no such block", "SGM output block 11 of 9");

    is_lora missing = {"/nonexistent/lora.safetensors", 1.0f};
    th_fails(is_unet_set_loras(n->u, &missing, 1), "/nonexistent/lora.safetensors", "missing LoRA file named");
    th_fails(is_unet_set_loras(NULL, &missing, 1), "NULL", "NULL UNet");
    th_fails(is_clip_text_set_loras(is_sdxl_text_encoder(n->t, 1), IS_LORA_UNET, &missing, 1), "not a text encoder",
             "clip_text with the UNet component");
}

/* A kohya file with diffusers-style names instead of SGM ones patches the same modules and gives the
 * weight-1 case's noise_pred; weight 0 copies nothing. */
static void test_renamed_kohya(const nets *n, const is_st *inputs, const cJSON *w1_case) {
    char *src = th_case_path(GROUP, "../../models/tiny-sdxl-lora/lora_kohya_r8_a4.safetensors");
    char *path = is_path_join(th_tmpdir(), "lora_kohya_diffusers_names.safetensors");
    is_st *st = NULL;
    if (!th_ok(is_st_open(src, &st), src)) goto done;
    is_st_writer *w = is_st_writer_new();
    int bad = 0;
    for (size_t i = 0; i < is_st_count(st); i++) {
        const is_tensor *t = is_st_at(st, i);
        is_lora_target tg;
        char name[400], mod[IS_LORA_MODULE_MAX];
        is_error *err = is_lora_map_name(t->name, n->u, &tg);
        bad += err != NULL;
        is_error_free(err);
        if (err || tg.component != IS_LORA_UNET) {
            bad += is_st_writer_add(w, t->name, t->dtype, t->ndim, t->shape, t->data) != NULL;
            continue;
        }
        snprintf(mod, sizeof mod, "%s", tg.module);
        for (char *p = mod; *p; p++)
            if (*p == '.') *p = '_';
        snprintf(name, sizeof name, "lora_unet_%s%s", mod, strchr(t->name, '.'));
        bad += is_st_writer_add(w, name, t->dtype, t->ndim, t->shape, t->data) != NULL;
    }
    th_check(bad == 0 && th_ok(is_st_writer_save(w, path), path), "renamed kohya file written");
    is_st_writer_free(w);
    is_lora l = {path, 1.0f}, sgm = {src, 1.0f};
    run_unet(w1_case, n->u, inputs, &l, 1, " (kohya file with diffusers block names)");
    size_t n_renamed = is_st_override_count(n->u->st);
    th_ok(is_unet_set_loras(n->u, &sgm, 1), "SGM kohya LoRA");
    th_check(n_renamed == is_st_override_count(n->u->st) && n_renamed > 0,
             "both spellings patch the same number of UNet weights (%zu)", n_renamed);
    l.weight = 0.0f;
    th_ok(is_unet_set_loras(n->u, &l, 1), "weight 0");
    th_check(is_st_override_count(n->u->st) == 0, "weight 0 copies no weight");
done:
    is_st_close(st);
    free(src);
    free(path);
}

/* is_st_override_f32: the table entry itself changes (views already handed out see it), a second call gives
 * the same copy, is_st_restore puts the file's view back. */
static void test_override(void) {
    char *path = th_golden_path("models/tiny-sdxl/text_encoder/model.safetensors");
    is_st *st = NULL, *other = NULL;
    if (th_ok(is_st_open(path, &st), path) && th_ok(is_st_open(path, &other), path)) {
        const is_tensor *t = is_st_find(st, "text_model.encoder.layers.0.mlp.fc1.weight");
        const is_tensor saved = *t;
        float *a = NULL, *b = NULL;
        th_ok(is_st_override_f32(st, t, &a), "override");
        th_check(a && t->dtype == IS_DT_F32 && t->data == a && t->nbytes == (size_t)t->numel * 4 &&
                     a[5] == is_f16_to_f32(((const uint16_t *)saved.data)[5]),
                 "override: the view is an f32 copy of the values");
        th_ok(is_st_override_f32(st, t, &b), "override again");
        th_check(a == b && is_st_override_count(st) == 1, "a second override returns the same copy");
        th_fails(is_st_override_f32(st, is_st_find(other, t->name), &b), "is not one of", "tensor of another file");
        is_st_restore(st);
        th_check(t->data == saved.data && t->dtype == saved.dtype && is_st_override_count(st) == 0,
                 "restore: the file's view again");
        th_ok(is_st_override_f32(st, t, &a), "override left for is_st_close to free");
    }
    is_st_close(st);
    is_st_close(other);
    free(path);
}

int main(void) {
    is_set_threads(2);
    cJSON *root = th_load_cases(GROUP);
    const cJSON *cases = cJSON_GetObjectItemCaseSensitive(root, "cases"), *c;
    char *unet_dir = th_golden_path("models/tiny-sdxl/unet"), *model = th_golden_path("models/tiny-sdxl");
    nets n = {0};
    is_st *inputs = th_open_expected(GROUP, "unet_inputs.safetensors");
    if (!th_ok(is_unet_load(unet_dir, &n.u), unet_dir) || !th_ok(is_sdxl_text_load(model, &n.t), model) || !inputs)
        goto done;

    const cJSON *w1 = NULL;
    cJSON_ArrayForEach(c, cases) {
        const char *kind = jstr(c, "kind");
        if (!strcmp(kind, "mapping")) {
            test_mapping(c, n.u);
            test_merged(c, &n);
        } else if (!strcmp(kind, "unet")) {
            unet_case(c, n.u, inputs);
            if (!strcmp(jstr(c, "name"), "unet_kohya_w1")) w1 = c;
        } else if (!strcmp(kind, "text_encoders")) {
            te_case(c, n.t);
        } else {
            th_check(0, "case %s: unknown kind %s", jstr(c, "name"), kind);
        }
    }
    test_names(n.u);
    test_override();
    if (w1) test_renamed_kohya(&n, inputs, w1);
    test_errors(&n);
    /* bf16: the networks are packed first, so each set_loras repacks the merged weights. Every case must
     * meet the bf16 tolerances (a LoRA missing from the packed weights is 1e4 x over them). */
    if (is_precision_resolve(IS_PRECISION_BF16, NULL, 0) == IS_PRECISION_BF16 &&
        th_ok(is_unet_set_precision(n.u, IS_PRECISION_BF16), "UNet bf16") &&
        th_ok(is_sdxl_text_set_precision(n.t, IS_PRECISION_BF16), "text encoders bf16")) {
        g_bf16 = 1;
        cJSON_ArrayForEach(c, cases) {
            const char *kind = jstr(c, "kind");
            if (!strcmp(kind, "unet")) unet_case(c, n.u, inputs);
            else if (!strcmp(kind, "text_encoders")) te_case(c, n.t);
        }
        th_check(is_unet_precision(n.u) == IS_PRECISION_BF16 &&
                     is_clip_text_precision(is_sdxl_text_encoder(n.t, 2)) == IS_PRECISION_BF16,
                 "the networks stay in bf16 through set_loras");
        g_bf16 = 0;
        if (w1) test_bf16_lifecycle(n.u, inputs, w1);
    }
done:
    is_st_close(inputs);
    is_unet_free(n.u);
    is_sdxl_text_free(n.t);
    free(unet_dir);
    free(model);
    cJSON_Delete(root);
    return th_done();
}
