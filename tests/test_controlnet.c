/* ControlNet golden tests (cases/controlnet): every case's ControlNet intermediates and residuals, then the
 * UNet step with and without them (the IP-Adapter case through a UNet with the adapter), each tensor with its
 * own tolerance; the same in bf16 (docs/PRECISION.md); guess-mode scaling; residual shapes; which UNets a
 * ControlNet fits (tiny SDXL, the 9-channel inpainting UNet; UNets of other shapes refused by field); load
 * errors. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/fileio.h"
#include "core/safetensors.h"
#include "harness.h"
#include "instantstyle.h"
#include "tiny/tiny_model.h"

#define GROUP "controlnet"
#define MAX_RES 32


static const char *jstr(const cJSON *o, const char *key) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

static double jnum(const cJSON *o, const char *key) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    return cJSON_IsNumber(v) ? v->valuedouble : NAN;
}

static float *input(const is_st *st, const char *name, size_t *numel) {
    const is_tensor *t = th_tensor(st, name);
    if (!t) return NULL;
    if (numel) *numel = (size_t)t->numel;
    return is_tensor_dup_f32(t);
}

/* ---- one case */
static int g_bf16;    /* compare with the bf16 tolerances */
static int g_measure; /* only measure (simulated bugs): the worst excess over the bf16 limits */
static double g_worst;
static char g_worst_name[64];

static void compare(const char *what, const cJSON *c, const char *name, const float *got, size_t n,
                    const is_tensor *expected) {
    double atol, rtol;
    th_tolerance(c, name, &atol, &rtol);
    if (g_measure) {
        double x = th_bf16_excess(got, n, expected, th_bf16_tolerance(GROUP, name), atol);
        if (x > g_worst) g_worst = x, snprintf(g_worst_name, sizeof g_worst_name, "%s", name);
        return;
    }
    double rel = g_bf16 ? th_bf16_tolerance(GROUP, name) : 0;
    if (rel == 0) th_close(what, got, n, expected, atol, rtol);
    else th_close_rel(what, got, n, expected, rel, TH_BF16_MAX_RMS, atol);
}

typedef struct {
    float *down, *mid;     /* the ControlNet's residuals */
    size_t n_down, n_mid;
    size_t off[MAX_RES];   /* residual k starts at down + off[k] (batch included) */
    size_t len[MAX_RES];   /* batch * C*H*W */
} residuals;

static void residuals_free(residuals *r) {
    free(r->down);
    free(r->mid);
    memset(r, 0, sizeof *r);
}

/* The case's inputs, ready for both networks. */
typedef struct {
    is_st *st;
    int h, w;
    float *sample, *ctx, *text, *ids, *cond, *embeds;
    size_t n_ctx, n_emb;
} case_inputs;

static int case_open(case_inputs *ci, const cJSON *c, const is_unet *u) {
    memset(ci, 0, sizeof *ci);
    ci->st = th_open_expected(GROUP, jstr(c, "expected"));
    if (!ci->st) return 0;
    ci->h = (int)jnum(c, "height") / 8;
    ci->w = (int)jnum(c, "width") / 8;
    ci->sample = input(ci->st, "sample", NULL);
    ci->ctx = input(ci->st, "encoder_hidden_states", &ci->n_ctx);
    ci->text = input(ci->st, "text_embeds", NULL);
    ci->ids = input(ci->st, "time_ids", NULL);
    ci->cond = input(ci->st, "controlnet_cond", NULL);
    if (is_st_find(ci->st, "image_embeds")) ci->embeds = input(ci->st, "image_embeds", &ci->n_emb);
    return ci->sample && ci->ctx && ci->text && ci->ids && ci->cond;
}

static void case_close(case_inputs *ci) {
    free(ci->sample), free(ci->ctx), free(ci->text), free(ci->ids), free(ci->cond), free(ci->embeds);
    is_st_close(ci->st);
    memset(ci, 0, sizeof *ci);
}

static void unet_input(is_unet_input *in, const case_inputs *ci, const cJSON *c, const is_unet *u) {
    is_unet_input_init(in);
    in->batch = 2;
    in->height = ci->h;
    in->width = ci->w;
    in->sample = ci->sample;
    in->timestep = (float)jnum(c, "timestep");
    in->encoder_hidden_states = ci->ctx;
    in->seq_len = (int)(ci->n_ctx / 2 / (size_t)is_unet_cross_attention_dim(u));
    in->text_embeds = ci->text;
    in->time_ids = ci->ids;
}

/* ControlNet forward with the case's inputs (scale and guess mode as given); residual offsets filled in. */
static int controlnet_run(is_controlnet *cn, const is_unet *u, const case_inputs *ci, const cJSON *c, float scale,
                          int guess, th_capture *cap, residuals *r, const char *what) {
    memset(r, 0, sizeof *r);
    is_controlnet_input in;
    is_controlnet_input_init(&in);
    unet_input(&in.unet, ci, c, u);
    in.cond = ci->cond;
    in.conditioning_scale = scale;
    in.guess_mode = guess;
    if (cap) {
        in.unet.hook = th_capture_hook;
        in.unet.hook_user = cap;
    }
    const int n = is_controlnet_num_down_residuals(cn);
    size_t at = 0;
    for (int k = 0; k < n && k < MAX_RES; k++) {
        int64_t s[3];
        th_check(is_controlnet_residual_shape(cn, k, ci->h, ci->w, s) == 0, "%s: residual_shape(%d)", what, k);
        r->off[k] = at;
        r->len[k] = (size_t)(2 * s[0] * s[1] * s[2]);
        at += r->len[k];
    }
    int64_t ms[3] = {0, 0, 0};
    th_check(is_controlnet_residual_shape(cn, n, ci->h, ci->w, ms) == 0, "%s: residual_shape(mid)", what);
    r->n_down = (size_t)(2 * is_controlnet_down_floats(cn, ci->h, ci->w));
    th_check(r->n_down == at, "%s: down_floats = sum of the residual shapes", what);
    r->n_mid = (size_t)(2 * ms[0] * ms[1] * ms[2]);
    r->down = malloc(r->n_down * sizeof(float));
    r->mid = malloc(r->n_mid * sizeof(float));
    return th_ok(is_controlnet_forward(cn, &in, r->down, r->mid), what);
}

/* UNet step with the residuals (or none); u_ip is used when the case has image embeddings. */
static int unet_run(is_unet *u, const case_inputs *ci, const cJSON *c, const residuals *r, float *noise,
                    const char *what) {
    is_unet_input in;
    unet_input(&in, ci, c, u);
    float *tokens = NULL;
    if (ci->embeds) {
        tokens = malloc((size_t)2 * is_unet_ip_num_tokens(u) * is_unet_cross_attention_dim(u) * sizeof(float));
        th_ok(is_unet_ip_tokens(u, ci->embeds, 2, tokens), "ip tokens");
        in.ip_tokens = tokens;
    }
    if (r) {
        in.down_residuals = r->down;
        in.mid_residual = r->mid;
    }
    int ok = th_ok(is_unet_forward(u, &in, noise), what);
    free(tokens);
    return ok;
}

static void run_case(is_controlnet *cn, is_unet *u, is_unet *u_ip, const cJSON *c, const char *tag) {
    const char *cname = jstr(c, "name");
    char what[160];
    case_inputs ci;
    int ip = 0;
    if (!case_open(&ci, c, u)) {
        th_check(0, "%s: inputs", cname);
        case_close(&ci);
        return;
    }
    if (ci.embeds) {
        ip = 1;
        char *spec = cJSON_PrintUnformatted(cJSON_GetObjectItemCaseSensitive(c, "unet_ip_adapter_scale_spec"));
        snprintf(what, sizeof what, "%s%s: set_ip_scale(%s)", cname, tag, spec);
        th_ok(is_unet_set_ip_scale(u_ip, spec, 1.0f), what);
        free(spec);
        th_check(ci.n_emb == (size_t)2 * is_unet_ip_embed_dim(u_ip), "%s: image_embeds size", cname);
    }
    th_capture cap = {.batch = 2};
    residuals r;
    snprintf(what, sizeof what, "%s%s: ControlNet forward", cname, tag);
    int ok = controlnet_run(cn, u, &ci, c, (float)jnum(c, "conditioning_scale"),
                            cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(c, "guess_mode")), &cap, &r, what);
    th_check(!th_capture_get(&cap, "t_emb") && !th_capture_get(&cap, "time_ids_emb") && th_capture_get(&cap, "down_blocks.2"),
             "%s: hook names are the ControlNet's", cname);
    size_t n_out = (size_t)2 * is_unet_out_channels(u) * ci.h * ci.w;
    float *noise = calloc(n_out, sizeof(float)), *plain = calloc(n_out, sizeof(float));
    is_unet *unet = ip ? u_ip : u;
    snprintf(what, sizeof what, "%s%s: UNet with the residuals", cname, tag);
    ok = ok && unet_run(unet, &ci, c, &r, noise, what);
    snprintf(what, sizeof what, "%s%s: UNet without them", cname, tag);
    ok = ok && unet_run(unet, &ci, c, NULL, plain, what);
    const cJSON *o;
    cJSON_ArrayForEach(o, cJSON_GetObjectItemCaseSensitive(c, "outputs")) {
        const char *name = o->string;
        const float *got = NULL;
        size_t n = 0;
        const cJSON *inputs = cJSON_GetObjectItemCaseSensitive(c, "inputs"), *e;
        int is_input = 0;
        cJSON_ArrayForEach(e, inputs) is_input |= cJSON_IsString(e) && !strcmp(e->valuestring, name);
        if (is_input || !ok) continue;
        if (!strncmp(name, "cn.", 3)) {
            const th_captured *cp = th_capture_get(&cap, name + 3);
            if (cp) got = cp->data, n = cp->per_item * 2;
        } else if (!strncmp(name, "down_block_res_samples.", 23)) {
            int k = atoi(name + 23);
            if (k >= 0 && k < is_controlnet_num_down_residuals(cn) && k < MAX_RES) got = r.down + r.off[k], n = r.len[k];
        } else if (!strcmp(name, "mid_block_res_sample")) {
            got = r.mid, n = r.n_mid;
        } else if (!strcmp(name, "noise_pred")) {
            got = noise, n = n_out;
        } else if (!strcmp(name, "noise_pred_without_control")) {
            got = plain, n = n_out;
        }
        snprintf(what, sizeof what, "%s%s: %s", cname, tag, name);
        if (!got) th_check(0, "%s: not produced", what);
        else compare(what, c, name, got, n, th_tensor(ci.st, name));
    }
    th_capture_free(&cap);
    residuals_free(&r);
    free(noise);
    free(plain);
    case_close(&ci);
}

static const cJSON *find_case(const cJSON *cases, const char *name) {
    const cJSON *c;
    cJSON_ArrayForEach(c, cases) if (!strcmp(jstr(c, "name"), name)) return c;
    return NULL;
}

/* ---- guess mode: residual k of N+1 scaled by logspace(-1, 0, N+1)[k] * scale, bit for bit. */
static void test_guess_mode(is_controlnet *cn, const is_unet *u, const cJSON *c) {
    /* torch.logspace(-1, 0, 10) in float32, as PyTorch 1.13's CPU kernel forms it (step in double, the upper
     * half counted from the end); 0.215443462 and 0.464158893 differ in the last bit from a float step. */
    static const float ls10[10] = {0.100000001f, 0.129154965f, 0.166810051f, 0.215443462f, 0.278255939f,
                                   0.359381378f, 0.464158893f, 0.599484265f, 0.77426368f,  1.0f};
    case_inputs ci;
    residuals plain, guess;
    const float scale = (float)jnum(c, "conditioning_scale");
    if (!case_open(&ci, c, u)) {
        case_close(&ci);
        return;
    }
    if (is_controlnet_num_down_residuals(cn) == 9 && controlnet_run(cn, u, &ci, c, 1.0f, 0, NULL, &plain, "scale 1") &&
        controlnet_run(cn, u, &ci, c, scale, 1, NULL, &guess, "guess mode")) {
        int bad = -1;
        for (int k = 0; k <= 9 && bad < 0; k++) {
            const float f = ls10[k] * scale;
            const float *p = k < 9 ? plain.down + plain.off[k] : plain.mid, *g = k < 9 ? guess.down + guess.off[k] : guess.mid;
            size_t n = k < 9 ? plain.len[k] : plain.n_mid;
            for (size_t i = 0; i < n; i++)
                if (g[i] != p[i] * f) bad = k;
        }
        th_check(bad < 0, "guess mode: residual k = plain residual x logspace(-1, 0, 10)[k] x %g exactly (first bad: %d)",
                 scale, bad);
        /* And against diffusers: the golden guess-mode residuals / the plain ones, by least squares. */
        const is_tensor *t = th_tensor(ci.st, "down_block_res_samples.3");
        float *gold = t ? is_tensor_dup_f32(t) : NULL;
        if (gold) {
            double pg = 0, pp = 0;
            for (size_t i = 0; i < plain.len[3]; i++) pg += (double)plain.down[plain.off[3] + i] * gold[i],
                                                      pp += (double)plain.down[plain.off[3] + i] * plain.down[plain.off[3] + i];
            th_check(fabs(pg / pp / (ls10[3] * scale) - 1) < 1e-4, "guess mode: golden residual 3 / plain = %.7g (%.7g)",
                     pg / pp, ls10[3] * scale);
        }
        free(gold);
        residuals_free(&guess);
    }
    residuals_free(&plain);
    case_close(&ci);
}

/* ---- sizes */
static void test_shapes(is_controlnet *cn, const is_unet *u) {
    th_check(is_controlnet_num_down_residuals(cn) == 9 && is_unet_num_skips(u) == 9, "9 down residuals, 9 UNet skips");
    static const int64_t want[10][3] = {{32, 8, 12}, {32, 8, 12}, {32, 8, 12}, {32, 4, 6}, {32, 4, 6},
                                        {32, 4, 6},  {32, 2, 3},  {64, 2, 3},  {64, 2, 3}, {64, 2, 3}};
    int ok = 1;
    for (int k = 0; k < 10; k++) {
        int64_t s[3] = {0, 0, 0};
        ok &= is_controlnet_residual_shape(cn, k, 8, 12, s) == 0 && !memcmp(s, want[k], sizeof s);
    }
    th_check(ok, "residual shapes at 8x12 latents (k = 9: the mid residual)");
    int64_t s[3];
    th_check(is_controlnet_residual_shape(cn, 10, 8, 8, s) == -1 && is_controlnet_residual_shape(cn, -1, 8, 8, s) == -1 &&
                 is_controlnet_residual_shape(cn, 0, 0, 8, s) == -1,
             "residual_shape: bad k or size -> -1");
    /* odd sizes: stride-2 padding-1 convolutions round up */
    th_check(is_controlnet_residual_shape(cn, 9, 5, 7, s) == 0 && s[1] == 2 && s[2] == 2, "mid residual of 5x7: 2x2");
    th_check(is_controlnet_down_floats(cn, 8, 8) == 32 * 64 * 3 + 32 * 16 * 3 + 32 * 4 + 64 * 4 * 2,
             "down_floats(8, 8) = 8320");
    th_check(is_controlnet_precision(cn) == IS_PRECISION_F32, "a loaded ControlNet runs in f32");
    th_check(is_controlnet_conditioning_channels(cn) == 3 && is_controlnet_conditioning_channels(NULL) == 0,
             "conditioning channels: 3 (RGB), 0 for NULL");
}

/* ---- which UNets a ControlNet fits */
static is_unet *write_unet(const char *name, void (*edit)(tm_unet_spec *), char **dir_out) {
    tm_spec spec;
    tm_spec_default(&spec);
    edit(&spec.unet);
    char *dir = is_path_join(th_tmpdir(), name);
    mkdir(dir, 0755);
    is_unet *u = NULL;
    if (!th_ok(tm_write_unet(dir, &spec.unet, 7), name) || !th_ok(is_unet_load(dir, &u), name)) u = NULL;
    *dir_out = dir;
    return u;
}

static void edit_channels(tm_unet_spec *s) { s->block_out_channels[1] = 64; }
static void edit_layers(tm_unet_spec *s) { s->layers_per_block = 1; }
static void edit_cross(tm_unet_spec *s) { s->cross_attention_dim = 64; }
static void edit_pooled(tm_unet_spec *s) { s->projection_class_embeddings_input_dim += 8; }
static void edit_latents(tm_unet_spec *s) { s->in_channels = 8, s->out_channels = 8; }
static void edit_none(tm_unet_spec *s) { (void)s; }

static void test_check_unet(is_controlnet *cn, const char *cn_dir, is_unet *u) {
    th_ok(is_controlnet_check_unet(cn, u), "fits tiny-sdxl's UNet");
    char *inpaint_dir = th_golden_path("models/tiny-sdxl-inpaint/unet");
    is_unet *inpaint = NULL;
    if (th_ok(is_unet_load(inpaint_dir, &inpaint), "load the inpainting UNet")) {
        th_check(is_unet_in_channels(inpaint) == 9 && is_unet_out_channels(inpaint) == 4, "inpainting UNet: 9 in, 4 out");
        th_ok(is_controlnet_check_unet(cn, inpaint), "fits the 9-channel inpainting UNet (4 latent channels)");
    }
    is_unet_free(inpaint);
    free(inpaint_dir);

    struct {
        const char *dir, *field;
        void (*edit)(tm_unet_spec *);
    } bad[] = {
        {"unet-blocks-32-64-64", "block_out_channels: down residual 4 has 32 channels", edit_channels},
        {"unet-1-layer", "block_out_channels / layers_per_block: the ControlNet gives 9 down residuals, the UNet has 6",
         edit_layers},
        {"unet-cross-64", "cross_attention_dim: 96 in the ControlNet, 64 in the UNet", edit_cross},
        {"unet-pooled-56", "projection_class_embeddings_input_dim: the ControlNet takes a 48-dim", edit_pooled},
        {"unet-8-latents", "in_channels: the ControlNet takes 4 latent channels, the UNet's latents have 8", edit_latents},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char *dir = NULL;
        is_unet *x = write_unet(bad[i].dir, bad[i].edit, &dir);
        if (x) {
            is_error *err = is_controlnet_check_unet(cn, x);
            const char *m = is_error_message(err);
            th_check(err && strstr(m, bad[i].field) && strstr(m, dir) && strstr(m, cn_dir),
                     "refuses the UNet %s, naming both folders and the field (%s)", bad[i].dir, m);
            is_error_free(err);
        }
        is_unet_free(x);
        free(dir);
    }
    /* The tiny model generator's UNet is tiny SDXL's shape: it fits. */
    char *dir = NULL;
    is_unet *same = write_unet("unet-same-shape", edit_none, &dir);
    if (same) th_ok(is_controlnet_check_unet(cn, same), "fits a random UNet of the same shape");
    is_unet_free(same);
    free(dir);
    th_fails(is_controlnet_check_unet(NULL, u), "NULL", "check_unet(NULL)");
}

/* ---- load errors */

/* th_tmpdir()/name: the tiny ControlNet's weights (linked) with config.json field `key` set to the JSON `value`. */
static char *controlnet_with(const char *cn_dir, const char *name, const char *key, const char *value) {
    char *cfg_path = is_path_join(cn_dir, "config.json"), *text = NULL;
    size_t n = 0;
    char *dir = is_path_join(th_tmpdir(), name);
    if (th_ok(is_read_file(cfg_path, 1 << 20, &text, &n), "read the ControlNet config")) {
        cJSON *root = cJSON_Parse(text);
        cJSON_DeleteItemFromObjectCaseSensitive(root, key);
        cJSON_AddItemToObject(root, key, cJSON_Parse(value));
        char *out = cJSON_Print(root);
        mkdir(dir, 0755);
        char *cpath = is_path_join(dir, "config.json"), *wpath = is_path_join(dir, "diffusion_pytorch_model.safetensors");
        char *real = is_path_join(cn_dir, "diffusion_pytorch_model.safetensors");
        th_ok(is_write_file_atomic(cpath, out, strlen(out)), "write config");
        unlink(wpath);
        th_check(symlink(real, wpath) == 0, "link %s", wpath);
        free(cpath), free(wpath), free(real), free(out);
        cJSON_Delete(root);
    }
    free(text);
    free(cfg_path);
    return dir;
}

static void test_load_errors(const char *cn_dir, const char *unet_dir) {
    is_controlnet *c = NULL;
    char *nodir = is_path_join(th_tmpdir(), "no-such-controlnet");
    th_fails(is_controlnet_load(nodir, &c), "config.json", "ControlNet from a missing folder");
    th_check(c == NULL, "no handle on failure");
    free(nodir);
    th_fails(is_controlnet_load(NULL, &c), "NULL", "NULL folder");
    th_fails(is_controlnet_load(unet_dir, &c), "ControlNetModel", "a UNet folder is not a ControlNet");
    is_unet *u = NULL;
    th_fails(is_unet_load(cn_dir, &u), "ControlNetModel", "a ControlNet folder is not a UNet");
    struct {
        const char *name, *key, *value, *needle;
    } bad[] = {
        {"cn-pool", "global_pool_conditions", "true", "global_pool_conditions"},
        {"cn-bgr", "controlnet_conditioning_channel_order", "\"bgr\"", "controlnet_conditioning_channel_order"},
        {"cn-embed-3", "conditioning_embedding_out_channels", "[8, 16, 32]", "conditioning_embedding_out_channels"},
        {"cn-blocks", "block_out_channels", "[32, 64, 64]", "down_blocks.1.resnets.0"},
        {"cn-embed-wide", "conditioning_embedding_out_channels", "[8, 16, 16, 64]", "controlnet_cond_embedding.blocks.5"},
        {"cn-no-mid", "mid_block_type", "null", "mid_block_type"},
        {"cn-mid2d", "mid_block_type", "\"UNetMidBlock2D\"", "UNetMidBlock2D"},
        {"cn-text-proj", "encoder_hid_dim", "64", "encoder_hid_dim"},
        {"cn-cond-1", "conditioning_channels", "1", "controlnet_cond_embedding.conv_in.weight"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char *dir = controlnet_with(cn_dir, bad[i].name, bad[i].key, bad[i].value), what[128];
        snprintf(what, sizeof what, "ControlNet config with %s = %s", bad[i].key, bad[i].value);
        th_fails(is_controlnet_load(dir, &c), bad[i].needle, what);
        free(dir);
    }
    /* Keys that are not ControlNetModel's are ignored, as diffusers does. */
    char *dir = controlnet_with(cn_dir, "cn-unet-keys", "conv_in_kernel", "5");
    if (th_ok(is_controlnet_load(dir, &c), "a ControlNet config with a UNet-only key (conv_in_kernel) loads"))
        is_controlnet_free(c);
    free(dir);
}

/* ---- the UNet's residual inputs */
static void test_unet_residual_args(is_unet *u) {
    float dummy[1] = {0}, out[1];
    is_unet_input in;
    is_unet_input_init(&in);
    in.batch = 1, in.height = 8, in.width = 8, in.seq_len = 1;
    in.sample = in.encoder_hidden_states = in.text_embeds = in.time_ids = dummy;
    in.down_residuals = dummy;
    th_fails(is_unet_forward(u, &in, out), "go together", "down residuals without the mid residual");
    in.down_residuals = NULL;
    in.mid_residual = dummy;
    th_fails(is_unet_forward(u, &in, out), "go together", "mid residual without the down residuals");
}

static void test_forward_args(is_controlnet *cn) {
    float dummy[1] = {0}, out[1];
    is_controlnet_input in;
    is_controlnet_input_init(&in);
    th_check(in.conditioning_scale == 1.0f && !in.guess_mode && !in.cond, "input_init: scale 1");
    in.unet.batch = 1, in.unet.height = 8, in.unet.width = 8, in.unet.seq_len = 1;
    in.unet.sample = in.unet.encoder_hidden_states = in.unet.text_embeds = in.unet.time_ids = dummy;
    th_fails(is_controlnet_forward(cn, &in, out, out), "cond", "no control image");
    in.cond = dummy;
    in.conditioning_scale = NAN;
    th_fails(is_controlnet_forward(cn, &in, out, out), "conditioning_scale", "NaN scale");
    in.conditioning_scale = 1;
    in.unet.text_embeds = NULL;
    th_fails(is_controlnet_forward(cn, &in, out, out), "text_embeds", "no text_embeds");
    th_fails(is_controlnet_forward(cn, &in, NULL, out), "NULL", "NULL down");
}

/* ---- Sensitivity (docs/PRECISION.md): a bug a bf16 path can have, simulated in ONE of the ControlNet's own
 * layers of the f32 network, must fail the bf16 tolerances. Not required for the conditioning embedding's
 * first layers: on the golden edge maps (8% non-zero pixels) the image-dependent part of cond_embedding is
 * 1.5% of its norm, the rest comes from the (re-drawn, non-zero) biases, so even a wrong first layer moves
 * it less than its bf16 tolerance (1.8%). */
static void test_sensitivity(const char *cn_dir, is_unet *u, is_unet *u_ip, const cJSON *c) {
    static const th_bug_case bugs[] = {
        {1, "wrong layout: the conditioning embedding's conv_out with Cin/Cout swapped",
         {{"controlnet_cond_embedding.conv_out.weight", TH_BUG_TRANSPOSE}}, 1},
        {0, "wrong layout: a stride-2 conditioning convolution's kernel transposed (blocks.1, 8 -> 16 channels)",
         {{"controlnet_cond_embedding.blocks.1.weight", TH_BUG_TRANSPOSE}}, 1},
        {1, "wrong layout: one zero convolution with Cin/Cout swapped (controlnet_down_blocks.4)",
         {{"controlnet_down_blocks.4.weight", TH_BUG_TRANSPOSE}}, 1},
        {1, "f16 misread as bf16: controlnet_mid_block", {{"controlnet_mid_block.weight", TH_BUG_F16_AS_BF16}}, 1},
        {0, "f16 misread as bf16: the conditioning embedding's conv_in",
         {{"controlnet_cond_embedding.conv_in.weight", TH_BUG_F16_AS_BF16}}, 1},
        {1, "missing bias: every zero convolution",
         {{"controlnet_down_blocks.*.bias", TH_BUG_ZERO}, {"controlnet_mid_block.bias", TH_BUG_ZERO}}, 2},
        {1, "missing bias: every conditioning-embedding convolution", {{"controlnet_cond_embedding.*.bias", TH_BUG_ZERO}}, 1},
    };
    for (size_t i = 0; i < sizeof bugs / sizeof bugs[0]; i++) {
        char name[32];
        snprintf(name, sizeof name, "controlnet-bug-%zu", i);
        char *dir = th_bugged_model(cn_dir, "diffusion_pytorch_model.safetensors", name, bugs[i].e, bugs[i].n);
        is_controlnet *b = NULL;
        if (dir && th_ok(is_controlnet_load(dir, &b), "load the ControlNet with a simulated bug")) {
            g_measure = 1;
            g_worst = 0;
            g_worst_name[0] = 0;
            run_case(b, u, u_ip, c, " [simulated bug]");
            g_measure = 0;
            th_bug_verdict(bugs[i].must_fail, bugs[i].what, g_worst_name, g_worst);
        }
        is_controlnet_free(b);
        free(dir);
    }
}

/* ---- bf16 (docs/PRECISION.md): every case with the ControlNet and both UNets in bf16. */
static void test_bf16(is_controlnet *cn, is_unet *u, is_unet *u_ip, const cJSON *cases) {
    if (is_precision_resolve(IS_PRECISION_BF16, NULL, 0) != IS_PRECISION_BF16) {
        printf("  no bf16 on this CPU: BF16 runs as f32, the bf16 cases are the f32 ones\n");
        return;
    }
    if (!th_ok(is_controlnet_set_precision(cn, IS_PRECISION_BF16), "ControlNet set_precision(BF16)") ||
        !th_ok(is_unet_set_precision(u, IS_PRECISION_BF16), "UNet set_precision(BF16)") ||
        !th_ok(is_unet_set_precision(u_ip, IS_PRECISION_BF16), "UNet + adapter set_precision(BF16)"))
        return;
    th_check(is_controlnet_precision(cn) == IS_PRECISION_BF16, "ControlNet precision bf16");
    g_bf16 = 1;
    const cJSON *c;
    cJSON_ArrayForEach(c, cases) run_case(cn, u, u_ip, c, " [bf16]");
    g_bf16 = 0;
    /* Back to f32: the f32 numbers again. */
    if (th_ok(is_controlnet_set_precision(cn, IS_PRECISION_F32), "ControlNet set_precision(F32)") &&
        th_ok(is_unet_set_precision(u, IS_PRECISION_F32), "UNet set_precision(F32)")) {
        th_check(is_controlnet_precision(cn) == IS_PRECISION_F32, "ControlNet precision f32 again");
        run_case(cn, u, u_ip, find_case(cases, "scale1_64x64"), " (f32 after bf16)");
    }
    is_unet_set_precision(u_ip, IS_PRECISION_F32);
}

int main(void) {
    cJSON *root = th_load_cases(GROUP);
    const cJSON *cases = cJSON_GetObjectItemCaseSensitive(root, "cases"), *c;
    char *cn_dir = th_golden_path("models/tiny-controlnet");
    char *unet_dir = th_golden_path("models/tiny-sdxl/unet");
    char *ip_path = th_golden_path("models/tiny-ip-adapter/ip-adapter_sdxl.safetensors");
    is_controlnet *cn = NULL;
    is_unet *u = NULL, *u_ip = NULL;
    if (!th_ok(is_controlnet_load(cn_dir, &cn), "load tiny ControlNet") || !th_ok(is_unet_load(unet_dir, &u), "load UNet") ||
        !th_ok(is_unet_load(unet_dir, &u_ip), "load UNet for the adapter") ||
        !th_ok(is_unet_load_ip_adapter(u_ip, ip_path, 48), "load IP-Adapter"))
        goto done;

    test_shapes(cn, u);
    cJSON_ArrayForEach(c, cases) run_case(cn, u, u_ip, c, "");
    /* Again on the same objects: reused workspaces, same numbers. */
    run_case(cn, u, u_ip, find_case(cases, "scale0p6_96x64_ip_style"), " (again)");
    test_guess_mode(cn, u, find_case(cases, "guess_mode_64x64"));
    /* After releasing the workspaces the next call regrows them. */
    is_controlnet_release_workspace(cn);
    run_case(cn, u, u_ip, find_case(cases, "scale1_64x64"), " (after release_workspace)");
    test_check_unet(cn, cn_dir, u);
    test_load_errors(cn_dir, unet_dir);
    test_unet_residual_args(u);
    test_forward_args(cn);
    test_bf16(cn, u, u_ip, cases);
    if (is_precision_resolve(IS_PRECISION_BF16, NULL, 0) == IS_PRECISION_BF16)
        test_sensitivity(cn_dir, u, u_ip, find_case(cases, "scale0p6_96x64_ip_style"));
done:
    is_controlnet_free(cn);
    is_unet_free(u);
    is_unet_free(u_ip);
    free(cn_dir);
    free(unet_dir);
    free(ip_path);
    cJSON_Delete(root);
    return th_done();
}
