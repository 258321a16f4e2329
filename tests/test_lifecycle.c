/* The long-lived pipeline: networks kept between generations (KEEP) or loaded per stage (LOW) give the
 * same pixels; a kept pipeline's second generation loads nothing; cancellation stops within a step,
 * frees everything and writes nothing; a style image in memory equals the same image from its file;
 * two pipelines generating at once in two threads give the numbers of one after the other. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/fileio.h"
#include "core/safetensors.h"
#include "harness.h"
#include "instantstyle.h"
#include "kernels/dnn.h"

static char g_dir[4096];
static char *g_sdxl, *g_ip, *g_style;

/* Log lines of one generation, counted by kind. */
typedef struct {
    int loaded, kept, lines;
    char first_loaded[160];
} log_count;

static void on_log(void *user, const char *msg) {
    log_count *c = user;
    c->lines++;
    if (strstr(msg, ": loaded in ")) {
        if (!c->loaded++) snprintf(c->first_loaded, sizeof c->first_loaded, "%s", msg);
    }
    if (strstr(msg, ": kept loaded")) c->kept++;
}

typedef struct {
    int merges;
} merge_log;
static void on_merge_log(void *user, const char *msg) {
    if (strstr(msg, " merged in ")) ((merge_log *)user)->merges++;
}

static is_pipeline *open_pipeline(is_memory_mode mode, int threads) {
    is_pipeline_params pp;
    is_pipeline_params_init(&pp);
    pp.model_dir = g_sdxl;
    pp.ip_adapter = g_ip;
    pp.memory = mode;
    pp.threads = threads;
    is_pipeline *p = NULL;
    if (!th_ok(is_pipeline_load(&pp, &p), "pipeline load")) return NULL;
    return p;
}

static void base_params(is_generate_params *g, uint64_t seed) {
    is_generate_params_init(g);
    g->prompt = "a cat sitting on a chair";
    g->content_prompt = "a landscape";
    g->style_image = g_style;
    g->width = 64;
    g->height = 48;
    g->steps = 3;
    g->seed = seed;
    g->precision = IS_PRECISION_F32;
}

/* One generation into r; 0 on success. */
static int generate(is_pipeline *p, is_generate_params *g, is_image_result *r, log_count *lc, const char *what) {
    memset(lc, 0, sizeof *lc);
    g->log = on_log;
    g->user = lc;
    return th_ok(is_generate(p, g, r), what) ? 0 : -1;
}

static int same_pixels(const is_image_result *a, const is_image_result *b) {
    size_t n = 3 * (size_t)a->width * (size_t)a->height;
    return a->width == b->width && a->height == b->height && a->image && b->image &&
           !memcmp(a->image, b->image, n * sizeof(float)) && !memcmp(a->rgb, b->rgb, n);
}

static void check_keep_and_low(void) {
    is_pipeline *keep = open_pipeline(IS_MEMORY_KEEP, 0), *low = open_pipeline(IS_MEMORY_LOW, 0);
    if (!keep || !low) goto done;
    th_check(is_pipeline_memory_mode(keep) == IS_MEMORY_KEEP && is_pipeline_memory_mode(low) == IS_MEMORY_LOW,
             "memory modes as asked");
    is_generate_params g;
    base_params(&g, 42);
    is_image_result r1 = {0}, r2 = {0}, r3 = {0}, rl = {0}, rs = {0}, rsl = {0};
    log_count c1, c2, c3, cl, cs, csl;
    th_check(is_pipeline_resident_bytes(keep) == 0, "a new pipeline holds no network");
    if (!generate(keep, &g, &r1, &c1, "keep: first generation")) {
        th_check(c1.loaded == 4 && c1.kept == 0, "keep: the first generation loads the 4 networks (loaded %d, kept %d)",
                 c1.loaded, c1.kept);
        th_check(is_pipeline_resident_bytes(keep) > 0, "keep: networks resident after a generation (%zu bytes)",
                 is_pipeline_resident_bytes(keep));
    }
    if (!generate(keep, &g, &r2, &c2, "keep: second generation")) {
        th_check(c2.loaded == 0 && c2.kept == 4, "keep: the second generation loads nothing (loaded %d, kept %d; %s)",
                 c2.loaded, c2.kept, c2.first_loaded);
        th_check(same_pixels(&r1, &r2), "keep: the second generation gives the first one's pixels");
    }
    if (!generate(low, &g, &rl, &cl, "low: generation")) {
        th_check(cl.loaded == 4 && cl.kept == 0, "low: every stage loads its network (loaded %d)", cl.loaded);
        th_check(is_pipeline_resident_bytes(low) == 0, "low: no network resident after a generation");
        th_check(same_pixels(&r1, &rl), "low and keep give the same pixels");
    }
    /* Other settings on the kept networks (adapter scales, no style, another seed), then the first
     * settings again: nothing of an earlier generation leaks into a later one. */
    is_generate_params o;
    base_params(&o, 7);
    o.style_blocks = "all";
    o.ip_scale = 0.5f;
    if (!generate(keep, &o, &rs, &cs, "keep: other settings") && !generate(low, &o, &rsl, &csl, "low: other settings"))
        th_check(same_pixels(&rs, &rsl), "keep and low agree with other adapter scales and seed");
    is_image_result_free(&rs);
    is_image_result_free(&rsl);
    o.style_image = NULL;
    o.content_prompt = NULL;
    if (!generate(keep, &o, &rs, &cs, "keep: no style image") && !generate(low, &o, &rsl, &csl, "low: no style image"))
        th_check(same_pixels(&rs, &rsl), "keep (adapter loaded, unused) and low (no adapter) agree without a style image");
    if (!generate(keep, &g, &r3, &c3, "keep: first settings again"))
        th_check(same_pixels(&r1, &r3), "keep: the first settings again give the first pixels");
    is_image_result_free(&r1);
    is_image_result_free(&r2);
    is_image_result_free(&r3);
    is_image_result_free(&rl);
    is_image_result_free(&rs);
    is_image_result_free(&rsl);
done:
    is_pipeline_free(keep);
    is_pipeline_free(low);
}

/* ---- cancellation */

typedef struct {
    log_count log;
    int steps_seen, cancel_after, asked;
} cancel_state;

static void on_cancel_log(void *user, const char *msg) { on_log(&((cancel_state *)user)->log, msg); }
static void on_progress(void *user, int step, int total, double s) {
    (void)total, (void)s;
    ((cancel_state *)user)->steps_seen = step;
}
static int on_cancel(void *user) {
    cancel_state *c = user;
    c->asked++;
    return c->cancel_after >= 0 && c->steps_seen >= c->cancel_after;
}

static void check_cancel(void) {
    is_pipeline *p = open_pipeline(IS_MEMORY_KEEP, 0);
    if (!p) return;
    char *dump = is_path_join(g_dir, "cancelled-dump.safetensors");
    const int after[] = {0, 1, 2};
    for (size_t i = 0; i < sizeof after / sizeof after[0]; i++) {
        is_generate_params g;
        base_params(&g, 42);
        g.steps = 5;
        g.dump_tensors = dump;
        cancel_state c = {.cancel_after = after[i]};
        g.log = on_cancel_log;
        g.progress = on_progress;
        g.cancel = on_cancel;
        g.user = &c;
        is_image_result r;
        memset(&r, 0xab, sizeof r);
        is_error *e = is_generate(p, &g, &r);
        th_check(is_error_code(e) == IS_E_CANCELLED, "cancel after step %d: IS_E_CANCELLED (got %s: %s)", after[i],
                 is_status_name(is_error_code(e)), is_error_message(e));
        th_check(c.steps_seen == after[i], "cancel after step %d: stopped within one step (%d steps ran)", after[i],
                 c.steps_seen);
        th_check(!r.image && !r.rgb && r.width == 0, "cancel after step %d: no image returned", after[i]);
        struct stat st;
        th_check(stat(dump, &st) != 0, "cancel after step %d: no dump file written", after[i]);
        is_error_free(e);
    }
    /* Cancelled before the first stage: nothing is loaded; then the pipeline still works. */
    is_generate_params g;
    base_params(&g, 42);
    cancel_state c = {.cancel_after = 0, .steps_seen = 0};
    g.cancel = on_cancel;
    g.user = &c;
    is_image_result r = {0};
    is_error *e = is_generate(p, &g, &r);
    th_check(is_error_code(e) == IS_E_CANCELLED && c.asked >= 1, "cancel at once: IS_E_CANCELLED");
    is_error_free(e);
    log_count lc;
    base_params(&g, 42);
    if (!generate(p, &g, &r, &lc, "generation after cancellations"))
        th_check(r.width == 64 && r.height == 48, "the pipeline generates after cancelled generations");
    is_image_result_free(&r);
    is_pipeline_free(p);
    free(dump);
}

/* IS_CANCEL_KEEP_PARTIAL (A1111's interrupt): after a step has run, the rest are skipped and the last x0
 * prediction is decoded: an image with steps_done < steps, other than the full run's, the same for the same
 * stop; before any step it cancels like any other value. */
static int on_keep_partial(void *user) {
    cancel_state *c = user;
    c->asked++;
    return c->steps_seen >= c->cancel_after ? IS_CANCEL_KEEP_PARTIAL : 0;
}
static void check_keep_partial(void) {
    is_pipeline *p = open_pipeline(IS_MEMORY_KEEP, 0);
    if (!p) return;
    is_generate_params g;
    is_image_result full = {0}, part = {0}, again = {0};
    base_params(&g, 42);
    g.steps = 4;
    th_ok(is_generate(p, &g, &full), "full run");
    th_check(full.steps_done == 4 && full.steps == 4, "full run: steps_done %d of %d", full.steps_done, full.steps);
    cancel_state c = {.cancel_after = 2};
    g.progress = on_progress;
    g.cancel = on_keep_partial;
    g.user = &c;
    if (th_ok(is_generate(p, &g, &part), "stopped after step 2, keeping the partial image")) {
        th_check(part.steps_done == 2 && part.steps == 4 && part.width == 64 && part.height == 48 && part.rgb,
                 "partial: %dx%d, steps_done %d of %d", part.width, part.height, part.steps_done, part.steps);
        th_check(!same_pixels(&full, &part), "the partial image is not the full run's");
        c = (cancel_state){.cancel_after = 2};
        th_ok(is_generate(p, &g, &again), "the same stop again");
        th_check(same_pixels(&part, &again), "the same stop gives the same partial image");
    }
    c = (cancel_state){.cancel_after = 0};
    is_image_result none = {0};
    is_error *e = is_generate(p, &g, &none);
    th_check(is_error_code(e) == IS_E_CANCELLED && !none.rgb, "IS_CANCEL_KEEP_PARTIAL before any step cancels (%s)",
             is_error_message(e));
    is_error_free(e);
    is_image_result_free(&full), is_image_result_free(&part), is_image_result_free(&again);
    is_pipeline_free(p);
}

/* ---- style image in memory */

/* Live previews: one per step, numbered 1..total, 1/8 of the output size; they do not change the image; the
 * last one is the cheap RGB map of the final latents (Euler's last x0 prediction is where it lands; the dump
 * has the latents, mapped here by hand with A1111's SDXL factors; 1 level apart at most: x0 and the stepped
 * latents differ in the last float bits). */
typedef struct {
    int calls, bad_order, bad_size;
    uint8_t last[8 * 6 * 3];
} preview_state;
static void on_preview(void *user, int step, int total, const is_image *rgb) {
    preview_state *ps = user;
    ps->calls++;
    if (step != ps->calls || total != 3) ps->bad_order++;
    if (rgb->width != 8 || rgb->height != 6) ps->bad_size++;
    else memcpy(ps->last, rgb->rgb, sizeof ps->last);
}
static void check_preview(void) {
    is_pipeline *p = open_pipeline(IS_MEMORY_KEEP, 0);
    if (!p) return;
    is_generate_params g;
    base_params(&g, 11);
    g.sampler = IS_SAMPLER_EULER;
    is_image_result plain = {0}, seen = {0};
    th_ok(is_generate(p, &g, &plain), "generation without preview");
    preview_state ps;
    memset(&ps, 0, sizeof ps);
    char dump[4096];
    snprintf(dump, sizeof dump, "%s/preview-dump.safetensors", th_tmpdir());
    g.preview = on_preview;
    g.user = &ps;
    g.dump_tensors = dump;
    if (th_ok(is_generate(p, &g, &seen), "generation with preview")) {
        th_check(ps.calls == 3 && !ps.bad_order && !ps.bad_size, "preview: %d calls (want 3), %d out of order, %d of another size",
                 ps.calls, ps.bad_order, ps.bad_size);
        th_check(same_pixels(&plain, &seen), "a preview does not change the image");
        is_st *st = NULL;
        const is_tensor *lat = NULL;
        if (th_ok(is_st_open(dump, &st), "dump") && th_ok(is_st_get(st, "latents_final", 4, NULL, &lat), "latents_final")) {
            static const float k[4][3] = {{0.3448f, 0.4168f, 0.4395f}, {-0.1953f, -0.0290f, 0.0250f},
                                          {0.1074f, 0.0886f, -0.0163f}, {-0.3730f, -0.2499f, -0.2088f}};
            float x[4 * 48];
            is_tensor_to_f32(lat, x);
            int worst = 0;
            for (int i = 0; i < 48; i++)
                for (int r = 0; r < 3; r++) {
                    float v = 0;
                    for (int l = 0; l < 4; l++) v += x[l * 48 + i] * k[l][r];
                    v = (v + 1) * 0.5f;
                    v = v < 0 ? 0 : v > 1 ? 1 : v;
                    int d = abs((int)(uint8_t)(v * 255.0f) - (int)ps.last[i * 3 + r]);
                    worst = d > worst ? d : worst;
                }
            th_check(worst <= 1, "the last preview is the cheap map of the final latents (worst difference %d levels)", worst);
        }
        is_st_close(st);
    }
    is_image_result_free(&plain);
    is_image_result_free(&seen);
    is_pipeline_free(p);
}

/* A UNet whose weights make the latents NaN (a corrupt file): the step that produced them is an error, and no
 * preview of it is made (NaN pixels would be converted to bytes: undefined behaviour). */
static void check_nan_weights(void) {
    char *unet_dir = is_path_join(g_sdxl, "unet");
    const th_bug_edit nan_bias = {"conv_out.bias", TH_BUG_NAN};
    char *bad = th_bugged_model(unet_dir, "diffusion_pytorch_model.safetensors", "unet-nan", &nan_bias, 1);
    char *file = bad ? is_path_join(bad, "diffusion_pytorch_model.safetensors") : NULL;
    is_pipeline_params pp;
    is_pipeline_params_init(&pp);
    pp.model_dir = g_sdxl;
    pp.ip_adapter = g_ip;
    pp.unet_file = file;
    is_pipeline *p = NULL;
    if (file && th_ok(is_pipeline_load(&pp, &p), "pipeline with a NaN UNet")) {
        for (int prec = 0; prec < 2; prec++) {
            is_generate_params g;
            base_params(&g, 5);
            g.precision = prec ? IS_PRECISION_BF16 : IS_PRECISION_F32;
            preview_state ps;
            memset(&ps, 0, sizeof ps);
            g.preview = on_preview;
            g.user = &ps;
            is_image_result r = {0};
            th_fails(is_generate(p, &g, &r), "denoising step 1 produced non-finite latents", "NaN UNet weights");
            th_check(ps.calls == 0 && r.image == NULL, "no preview (%d) and no image from NaN latents", ps.calls);
        }
    }
    is_pipeline_free(p);
    free(file);
    free(bad);
    free(unet_dir);
    /* A VAE that decodes to NaN: an error, not a black image (what diffusers' cast to bytes would give). */
    char *vae_dir = is_path_join(g_sdxl, "vae");
    const th_bug_edit nan_out = {"decoder.conv_out.bias", TH_BUG_NAN};
    char *bad_vae = th_bugged_model(vae_dir, "diffusion_pytorch_model.safetensors", "vae-nan", &nan_out, 1);
    char *model = bad_vae ? is_path_join(th_tmpdir(), "model-vae-nan") : NULL;
    if (model) { /* the tiny model with the bugged VAE folder in place of its own */
        mkdir(model, 0755);
        static const char *const parts[] = {"model_index.json", "scheduler", "text_encoder", "text_encoder_2",
                                            "tokenizer", "tokenizer_2", "unet"};
        for (size_t i = 0; i < sizeof parts / sizeof *parts; i++) {
            char *from = is_path_join(g_sdxl, parts[i]), *to = is_path_join(model, parts[i]);
            unlink(to);
            th_check(symlink(from, to) == 0, "link %s", to);
            free(from), free(to);
        }
        char *to = is_path_join(model, "vae");
        unlink(to);
        th_check(symlink(bad_vae, to) == 0, "link %s", to);
        free(to);
        pp.model_dir = model;
        pp.unet_file = NULL;
        p = NULL;
        if (th_ok(is_pipeline_load(&pp, &p), "pipeline with a NaN VAE")) {
            is_generate_params g;
            base_params(&g, 5);
            is_image_result r = {0};
            th_fails(is_generate(p, &g, &r), "the VAE decode produced non-finite pixels", "NaN VAE output");
            th_check(r.image == NULL, "no image from a NaN decode");
        }
        is_pipeline_free(p);
    }
    free(model);
    free(bad_vae);
    free(vae_dir);
}

static void check_style_in_memory(void) {
    is_pipeline *p = open_pipeline(IS_MEMORY_KEEP, 0);
    is_image img = {0, 0, NULL};
    if (!p || !th_ok(is_image_load(g_style, &img), g_style)) goto done;
    is_generate_params g;
    base_params(&g, 42);
    is_image_result a = {0}, b = {0};
    log_count lc;
    int ok = !generate(p, &g, &a, &lc, "style from its file");
    g.style_image = NULL;
    g.style_rgb = &img;
    ok = ok && !generate(p, &g, &b, &lc, "style in memory");
    if (ok) th_check(same_pixels(&a, &b), "a style image in memory gives the pixels of the same image from its file");
    is_image bad = {0, 10, NULL};
    g.style_rgb = &bad;
    is_image_result_free(&b);
    is_error *e = is_generate(p, &g, &b);
    th_check(is_error_code(e) == IS_E_ARGUMENT && strstr(is_error_message(e), "style_rgb"),
             "a style image in memory without pixels is refused: %s", is_error_message(e));
    is_error_free(e);
    is_image_result_free(&a);
    is_image_result_free(&b);
done:
    is_image_free(&img);
    is_pipeline_free(p);
}

/* img2img + inpainting + Canny ControlNet in one generation: the images from their files and the same
 * images in memory give the same pixels; a KEEP pipeline's second run loads nothing (the ControlNet is
 * kept too), and a LOW pipeline gives the same pixels. */
static void check_image_inputs(void) {
    char *cn = is_path_join(g_dir, "controlnet");
    char *init_path = th_golden_path("images/i2i/content_64x64.png"), *mask_path = th_golden_path("images/i2i/mask_64x64.png");
    char *photo_path = th_golden_path("images/i2i/content_96x64.png");
    is_pipeline *keep = NULL, *low = NULL;
    is_image init = {0, 0, NULL}, mask = {0, 0, NULL}, photo = {0, 0, NULL};
    is_image_result a = {0}, b = {0}, c = {0};
    is_pipeline_params pp;
    is_pipeline_params_init(&pp);
    pp.model_dir = g_sdxl;
    pp.ip_adapter = g_ip;
    pp.controlnet = cn;
    pp.memory = IS_MEMORY_KEEP;
    if (!th_ok(is_pipeline_load(&pp, &keep), "KEEP pipeline with a ControlNet")) goto done;
    pp.memory = IS_MEMORY_LOW;
    if (!th_ok(is_pipeline_load(&pp, &low), "LOW pipeline with a ControlNet")) goto done;
    if (!th_ok(is_image_load(init_path, &init), "init") || !th_ok(is_image_load(mask_path, &mask), "mask") ||
        !th_ok(is_image_load(photo_path, &photo), "photo"))
        goto done;
    is_generate_params g;
    base_params(&g, 7);
    g.width = g.height = 0; /* the init image's size */
    g.init_image = init_path;
    g.mask_image = mask_path;
    g.strength = 0.7;
    g.control_image = photo_path;
    g.control_canny = 1;
    g.control_scale = 0.6f;
    log_count lc;
    int ok = !generate(keep, &g, &a, &lc, "files");
    th_check(ok && a.width == 64 && a.height == 64, "the output takes the init image's size (%dx%d)", a.width, a.height);
    g.init_image = g.mask_image = g.control_image = NULL;
    g.init_rgb = &init;
    g.mask_rgb = &mask;
    g.control_rgb = &photo;
    ok = ok && !generate(keep, &g, &b, &lc, "in memory");
    if (ok) {
        th_check(same_pixels(&a, &b), "init, mask and Canny photo in memory give the pixels of their files");
        th_check(lc.loaded == 0 && lc.kept >= 5, "KEEP: the second run loads nothing (%d loaded, %d kept; first: %s)",
                 lc.loaded, lc.kept, lc.first_loaded);
        th_check(is_pipeline_resident_bytes(keep) > 0, "KEEP: the networks, ControlNet included, stay resident");
    }
    ok = ok && !generate(low, &g, &c, &lc, "LOW mode");
    if (ok) th_check(same_pixels(&a, &c), "LOW mode gives the pixels of KEEP mode");
    is_image_result_free(&b);
    g.strength = 0;
    is_error *e = is_generate(keep, &g, &b);
    th_check(is_error_code(e) == IS_E_ARGUMENT && strstr(is_error_message(e), "strength"), "strength 0 is refused: %s",
             is_error_message(e));
    is_error_free(e);
    is_image empty = {64, 64, NULL};
    g.strength = 0.5;
    g.mask_rgb = &empty;
    e = is_generate(keep, &g, &b);
    th_check(is_error_code(e) == IS_E_ARGUMENT && strstr(is_error_message(e), "mask_rgb"),
             "a mask in memory without pixels is refused: %s", is_error_message(e));
    is_error_free(e);
done:
    is_image_result_free(&a);
    is_image_result_free(&b);
    is_image_result_free(&c);
    is_image_free(&init);
    is_image_free(&mask);
    is_image_free(&photo);
    is_pipeline_free(keep);
    is_pipeline_free(low);
    free(cn);
    free(init_path);
    free(mask_path);
    free(photo_path);
}

/* LoRAs on a kept pipeline: merged when asked, re-merged only when the list changes, removed when the
 * list is empty -- each run gives the pixels of a fresh LOW pipeline with the same list. */
static void check_loras_kept(void) {
    char *kohya = th_golden_path("models/tiny-sdxl-lora/lora_kohya_r8_a4.safetensors");
    char *peft = th_golden_path("models/tiny-sdxl-lora/lora_peft_r4.safetensors");
    char *model = th_golden_path("models/tiny-sdxl");
    char *adapter = th_golden_path("models/tiny-ip-adapter/ip-adapter_sdxl.safetensors");
    is_pipeline *keep = NULL, *low = NULL;
    is_pipeline_params pp;
    is_pipeline_params_init(&pp);
    pp.model_dir = model; /* the golden LoRAs are for tiny-sdxl */
    pp.ip_adapter = adapter;
    pp.memory = IS_MEMORY_KEEP;
    if (!th_ok(is_pipeline_load(&pp, &keep), "KEEP pipeline")) goto done;
    pp.memory = IS_MEMORY_LOW;
    if (!th_ok(is_pipeline_load(&pp, &low), "LOW pipeline")) goto done;
    const is_lora a[2] = {{kohya, 0.7f}, {peft, 0.5f}}, b[1] = {{peft, 0.8f}};
    struct {
        const is_lora *l;
        int n;
        int merges; /* "LoRA(s) merged" log lines expected from the KEEP pipeline: text encoders + unet */
    } runs[] = {{a, 2, 2}, {a, 2, 0}, {b, 1, 2}, {NULL, 0, 2}, {a, 2, 2}};
    for (size_t i = 0; i < sizeof runs / sizeof runs[0]; i++) {
        is_generate_params g;
        base_params(&g, 11);
        g.loras = runs[i].l;
        g.n_loras = runs[i].n;
        is_image_result rk = {0}, rl = {0};
        merge_log ml = {0};
        g.log = on_merge_log;
        g.user = &ml;
        char what[64];
        snprintf(what, sizeof what, "LoRA run %zu (KEEP)", i + 1);
        int ok = th_ok(is_generate(keep, &g, &rk), what);
        g.log = NULL;
        snprintf(what, sizeof what, "LoRA run %zu (LOW)", i + 1);
        ok = th_ok(is_generate(low, &g, &rl), what) && ok;
        if (ok) {
            th_check(same_pixels(&rk, &rl), "LoRA run %zu: the kept pipeline gives a fresh pipeline's pixels", i + 1);
            th_check(ml.merges == runs[i].merges, "LoRA run %zu: %d merge log lines, expected %d", i + 1, ml.merges,
                     runs[i].merges);
        }
        is_image_result_free(&rk);
        is_image_result_free(&rl);
    }
done:
    is_pipeline_free(keep);
    is_pipeline_free(low);
    free(kohya);
    free(peft);
    free(model);
    free(adapter);
}

/* ---- two pipelines in two threads */

typedef struct {
    is_pipeline *p;
    is_generate_params g;
    is_image_result r;
    is_error *e;
} job;

static void *run_job(void *arg) {
    job *j = arg;
    j->e = is_generate(j->p, &j->g, &j->r);
    return NULL;
}

static void check_two_threads(is_precision prec) {
    const char *pname = is_precision_name(prec);
    job jobs[2];
    memset(jobs, 0, sizeof jobs);
    is_image_result seq[2] = {{0}, {0}};
    for (int i = 0; i < 2; i++) {
        jobs[i].p = open_pipeline(IS_MEMORY_KEEP, 1);
        base_params(&jobs[i].g, 100 + (uint64_t)i);
        jobs[i].g.precision = prec;
        if (i == 1) jobs[i].g.style_blocks = "style+layout";
    }
    if (!jobs[0].p || !jobs[1].p) goto done;
    /* One after the other on this thread, then at the same time on two threads. */
    for (int i = 0; i < 2; i++) th_ok(is_generate(jobs[i].p, &jobs[i].g, &seq[i]), "sequential generation");
    pthread_t t[2];
    for (int i = 0; i < 2; i++) th_check(!pthread_create(&t[i], NULL, run_job, &jobs[i]), "thread start");
    for (int i = 0; i < 2; i++) pthread_join(t[i], NULL);
    for (int i = 0; i < 2; i++) {
        th_ok(jobs[i].e, "generation on its own thread");
        jobs[i].e = NULL;
        th_check(same_pixels(&seq[i], &jobs[i].r), "%s: pipeline %d on its own thread, at the same time as another, "
                 "gives the pixels of the sequential run", pname, i);
    }
done:
    for (int i = 0; i < 2; i++) {
        is_image_result_free(&seq[i]);
        is_image_result_free(&jobs[i].r);
        is_pipeline_free(jobs[i].p);
    }
}

static void check_params_errors(void) {
    is_pipeline_params pp;
    is_pipeline_params_init(&pp);
    th_check(pp.memory == IS_MEMORY_AUTO && pp.threads == 0 && !pp.model_dir, "pipeline params defaults");
    pp.model_dir = g_sdxl;
    pp.memory = (is_memory_mode)7;
    is_pipeline *p = NULL;
    is_error *e = is_pipeline_load(&pp, &p);
    th_check(is_error_code(e) == IS_E_ARGUMENT && !p, "an unknown memory mode is refused: %s", is_error_message(e));
    is_error_free(e);
    pp.memory = IS_MEMORY_AUTO;
    pp.threads = -1;
    e = is_pipeline_load(&pp, &p);
    th_check(is_error_code(e) == IS_E_ARGUMENT && !p, "negative threads are refused: %s", is_error_message(e));
    is_error_free(e);
    pp.threads = 0;
    if (th_ok(is_pipeline_load(&pp, &p), "auto memory"))
        th_check(is_pipeline_memory_mode(p) == IS_MEMORY_KEEP, "auto keeps a tiny model's networks");
    is_pipeline_free(p);
    is_memory_mode m = IS_MEMORY_AUTO;
    th_check(!is_memory_mode_parse("low", &m) && m == IS_MEMORY_LOW && is_memory_mode_parse("lo", &m) == -1 &&
                 !strcmp(is_memory_mode_name(IS_MEMORY_KEEP), "keep"),
             "memory mode names");
    th_check(!strcmp(is_status_name(IS_E_CANCELLED), "cancelled"), "status name of IS_E_CANCELLED");
}

static void write_at(const char *dir, const char *rel, const char *text) {
    char *path = is_path_join(dir, rel);
    th_ok(is_write_file_atomic(path, text, strlen(text)), path);
    free(path);
}

/* A config whose sample_size overflowed the default size (an int multiplication; fuzz finding
 * tests/fuzz/findings/config_pipeline) is refused with the file named. */
static void check_hostile_config(void) {
    char *dir = is_path_join(th_tmpdir(), "hostile-model");
    const char *sub[] = {"", "/unet", "/vae", "/scheduler"};
    for (size_t i = 0; i < 4; i++) {
        char d[4200];
        snprintf(d, sizeof d, "%s%s", dir, sub[i]);
        mkdir(d, 0755);
    }
    write_at(dir, "model_index.json", "{}");
    write_at(dir, "scheduler/scheduler_config.json", "{}");
    write_at(dir, "unet/config.json", "{\"sample_size\": 1073741824, \"block_out_channels\": [1]}");
    write_at(dir, "vae/config.json", "{\"block_out_channels\": [1, 1]}");
    is_pipeline_params pp;
    is_pipeline_params_init(&pp);
    pp.model_dir = dir;
    is_pipeline *p = NULL;
    th_fails(is_pipeline_load(&pp, &p), "sample_size 1073741824", "sample_size that overflows the default size");
    th_check(p == NULL, "no pipeline on a hostile config");
    free(dir);
}

int main(void) {
    snprintf(g_dir, sizeof g_dir, "%s/lifecycle", th_tmpdir());
    if (!th_ok(is_make_tiny_model(g_dir, 0, 1), "make tiny model")) return th_done();
    g_sdxl = is_path_join(g_dir, "sdxl");
    g_ip = is_path_join(g_dir, "ip-adapter/ip-adapter_sdxl.safetensors");
    g_style = th_golden_path("images/odd_rgb_301x217.png");
    check_params_errors();
    check_hostile_config();
    check_keep_and_low();
    check_cancel();
    check_keep_partial();
    check_style_in_memory();
    check_preview();
    check_nan_weights();
    check_image_inputs();
    check_loras_kept();
    check_two_threads(IS_PRECISION_F32);
    if (is_dnn_has_bf16()) check_two_threads(IS_PRECISION_BF16);
    free(g_sdxl);
    free(g_ip);
    free(g_style);
    return th_done();
}
