/* is_bench --only accuracy: how far bf16 moves the numbers on the real-size (random-weight) model.
 * The same inputs run in F32 and then in BF16 through the public API:
 *   - one UNet CFG evaluation (batch 2, size/8 latents, 77 text tokens, IP-Adapter tokens on every
 *     cross-attention at scale 1): relative L2 error and max abs error of noise_pred;
 *   - one VAE decode of size/8 latents: same metrics on the image;
 *   - with steps > 0, a whole is_generate (the e2e rows' InstantStyle settings): relative L2 error of
 *     the float image and the PSNR of the 8-bit bf16 image against the f32 one.
 * Each run is timed; the first run of each network includes paging its weights in. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"

static void compare(const float *ref, const float *got, int64_t n, bench_acc_metric *m) {
    double d2 = 0, r2 = 0, maxd = 0, maxr = 0;
    for (int64_t i = 0; i < n; i++) {
        double d = (double)got[i] - (double)ref[i];
        d2 += d * d, r2 += (double)ref[i] * (double)ref[i];
        if (fabs(d) > maxd || isnan(d)) maxd = isnan(d) ? NAN : fabs(d);
        if (fabs((double)ref[i]) > maxr) maxr = fabs((double)ref[i]);
    }
    m->rel_l2 = r2 > 0 ? sqrt(d2 / r2) : sqrt(d2);
    m->max_abs = maxd, m->ref_max = maxr, m->n = n;
    m->done = 1;
}

static double psnr_u8(const uint8_t *a, const uint8_t *b, int64_t n) {
    double se = 0;
    for (int64_t i = 0; i < n; i++) {
        double d = (double)a[i] - (double)b[i];
        se += d * d;
    }
    return se == 0 ? INFINITY : 10.0 * log10(255.0 * 255.0 / (se / (double)n));
}

static float *alloc_floats(int64_t n) { return malloc((size_t)n * sizeof(float)); }

static is_error *unet_accuracy(const char *root, int size, bench_accuracy *a) {
    char dir[4096], adapter[4096];
    snprintf(dir, sizeof dir, "%s/unet", root);
    snprintf(adapter, sizeof adapter, "%s/ip-adapter/ip-adapter_sdxl.safetensors", root);
    is_unet *u = NULL;
    IS_TRY(is_unet_load(dir, &u));
    is_error *err = NULL;
    const int batch = 2, h = size / 8, w = size / 8, seq = 77;
    float *sample = NULL, *ctx = NULL, *te = NULL, *emb = NULL, *tok = NULL, *ref = NULL, *out = NULL;
    if ((err = is_unet_load_ip_adapter(u, adapter, 0)) || (err = is_unet_set_ip_scale(u, "all", 1.0f)) ||
        (err = is_unet_set_precision(u, IS_PRECISION_F32)))
        goto done;
    int C = is_unet_in_channels(u), D = is_unet_cross_attention_dim(u), pooled = is_unet_pooled_dim(u);
    int E = is_unet_ip_embed_dim(u), T = is_unet_ip_num_tokens(u);
    int64_t n_sample = (int64_t)batch * C * h * w, n_out = (int64_t)batch * is_unet_out_channels(u) * h * w;
    sample = alloc_floats(n_sample), ctx = alloc_floats((int64_t)batch * seq * D), te = alloc_floats(batch * pooled);
    emb = alloc_floats((int64_t)batch * E), tok = alloc_floats((int64_t)batch * T * D);
    ref = alloc_floats(n_out), out = alloc_floats(n_out);
    if (!sample || !ctx || !te || !emb || !tok || !ref || !out) {
        err = is_error_oom("accuracy inputs");
        goto done;
    }
    is_torch_rng g;
    is_torch_rng_seed(&g, 2024);
    is_torch_randn(&g, sample, n_sample);
    is_torch_randn(&g, ctx, (int64_t)batch * seq * D);
    is_torch_randn(&g, te, (int64_t)batch * pooled);
    is_torch_randn(&g, emb, (int64_t)batch * E);
    if ((err = is_unet_ip_tokens(u, emb, batch, tok))) goto done; /* f32: the same tokens feed both runs */
    float time_ids[12];
    for (int b = 0; b < batch; b++) {
        float *t = time_ids + 6 * b;
        t[0] = t[1] = t[4] = t[5] = (float)size, t[2] = t[3] = 0.0f;
    }
    is_unet_input in = {.batch = batch, .height = h, .width = w, .sample = sample, .timestep = 999.0f,
                        .encoder_hidden_states = ctx, .seq_len = seq, .text_embeds = te, .time_ids = time_ids,
                        .ip_tokens = tok};
    double t0 = bench_now();
    if ((err = is_unet_forward(u, &in, ref))) goto done;
    a->unet.f32_s = bench_now() - t0;
    t0 = bench_now();
    if ((err = is_unet_set_precision(u, IS_PRECISION_BF16))) goto done;
    a->unet.pack_s = bench_now() - t0;
    t0 = bench_now();
    if ((err = is_unet_forward(u, &in, out))) goto done;
    a->unet.bf16_s = bench_now() - t0;
    compare(ref, out, n_out, &a->unet);
done:
    free(sample), free(ctx), free(te), free(emb), free(tok), free(ref), free(out);
    is_unet_free(u);
    return err;
}

static is_error *vae_accuracy(const char *root, int size, bench_accuracy *a) {
    char dir[4096];
    snprintf(dir, sizeof dir, "%s/vae", root);
    is_vae *v = NULL;
    IS_TRY(is_vae_load(dir, &v));
    is_error *err = NULL;
    int s = is_vae_scale(v), h = size / s, w = size / s, C = is_vae_latent_channels(v);
    int64_t n_img = (int64_t)3 * size * size;
    float *lat = alloc_floats((int64_t)C * h * w), *ref = alloc_floats(n_img), *out = alloc_floats(n_img);
    if (!lat || !ref || !out) {
        err = is_error_oom("accuracy inputs");
        goto done;
    }
    if ((err = is_vae_set_precision(v, IS_PRECISION_F32))) goto done;
    is_torch_rng g;
    is_torch_rng_seed(&g, 2025);
    is_torch_randn(&g, lat, (int64_t)C * h * w);
    is_vae_options opt = {.tiling = 0};
    double t0 = bench_now();
    if ((err = is_vae_decode(v, lat, h, w, &opt, ref))) goto done;
    a->vae.f32_s = bench_now() - t0;
    t0 = bench_now();
    if ((err = is_vae_set_precision(v, IS_PRECISION_BF16))) goto done;
    a->vae.pack_s = bench_now() - t0;
    t0 = bench_now();
    if ((err = is_vae_decode(v, lat, h, w, &opt, out))) goto done;
    a->vae.bf16_s = bench_now() - t0;
    compare(ref, out, n_img, &a->vae);
done:
    free(lat), free(ref), free(out);
    is_vae_free(v);
    return err;
}

/* One generation in precision p; the e2e rows' settings at size x size. */
static is_error *generate(const char *root, int size, int steps, const char *style_image, is_precision p,
                          is_image_result *img, double *seconds) {
    char adapter[4096], encoder[4096];
    snprintf(adapter, sizeof adapter, "%s/ip-adapter/ip-adapter_sdxl.safetensors", root);
    snprintf(encoder, sizeof encoder, "%s/image_encoder", root);
    is_pipeline_params paths;
    is_pipeline_params_init(&paths);
    paths.memory = IS_MEMORY_LOW; /* one generation, as the CLI runs it: the lowest peak memory */
    paths.model_dir = root;
    paths.ip_adapter = adapter;
    paths.image_encoder_dir = encoder;
    is_pipeline *pl = NULL;
    memset(img, 0, sizeof *img);
    double t0 = bench_now();
    IS_TRY(is_pipeline_load(&paths, &pl));
    is_generate_params gp;
    is_generate_params_init(&gp);
    gp.prompt = "a cat sitting on a wooden bench, masterpiece, best quality";
    gp.negative_prompt = "text, watermark, lowres, low quality, worst quality, deformed";
    gp.width = gp.height = size;
    gp.steps = steps;
    gp.seed = 42;
    gp.style_image = style_image;
    gp.style_blocks = "style";
    gp.content_prompt = "a house";
    gp.precision = p;
    is_error *err = is_generate(pl, &gp, img);
    *seconds = bench_now() - t0;
    is_pipeline_free(pl);
    return err;
}

static is_error *gen_accuracy(const char *root, int size, int steps, const char *style_image, bench_accuracy *a) {
    is_image_result ref, out;
    IS_TRY(generate(root, size, steps, style_image, IS_PRECISION_F32, &ref, &a->gen.f32_s));
    is_error *err = generate(root, size, steps, style_image, IS_PRECISION_BF16, &out, &a->gen.bf16_s);
    if (!err && (ref.width != out.width || ref.height != out.height))
        err = is_errorf(IS_E_ARGUMENT, "f32 image %dx%d, bf16 image %dx%d", ref.width, ref.height, out.width,
                        out.height);
    if (!err) {
        int64_t n = (int64_t)3 * ref.width * ref.height;
        compare(ref.image, out.image, n, &a->gen);
        a->gen.psnr = psnr_u8(ref.rgb, out.rgb, n);
        a->gen_steps = steps;
    }
    is_image_result_free(&ref);
    is_image_result_free(&out); /* zeroed by generate() before is_generate: safe after an error too */
    return err;
}

is_error *bench_accuracy_run(const char *dir, int size, int steps, const char *style_image, bench_accuracy *out) {
    memset(out, 0, sizeof *out);
    out->size = size;
    is_precision_resolve(IS_PRECISION_BF16, out->precision_why, sizeof out->precision_why);
    fprintf(stderr, "  [accuracy] UNet %dx%d, f32 then bf16 ...\n", size, size);
    IS_TRY(unet_accuracy(dir, size, out));
    fprintf(stderr, "  [accuracy] VAE decode %dx%d, f32 then bf16 ...\n", size, size);
    IS_TRY(vae_accuracy(dir, size, out));
    if (steps > 0) {
        fprintf(stderr, "  [accuracy] is_generate %dx%d, %d steps, f32 then bf16 ...\n", size, size, steps);
        IS_TRY(gen_accuracy(dir, size, steps, style_image, out));
    }
    return NULL;
}

void bench_accuracy_print(const bench_accuracy *a) {
    printf("\nbf16 against f32, %dx%d, same inputs (bf16 here: %s):\n\n", a->size, a->size, a->precision_why);
    printf("| computation | relative L2 error | max abs error | max abs f32 value | f32 s | bf16 s | bf16 packing s | "
           "PSNR of the 8-bit image dB |\n|---|---:|---:|---:|---:|---:|---:|---:|\n");
    const struct {
        const char *label;
        const bench_acc_metric *m;
    } rows[] = {{"UNet CFG evaluation (batch 2, IP tokens on all blocks, scale 1): noise_pred", &a->unet},
                {"VAE decode: image", &a->vae},
                {"is_generate (IP-Adapter, content prompt, CFG 5): image", &a->gen}};
    for (int i = 0; i < 3; i++) {
        const bench_acc_metric *m = rows[i].m;
        if (!m->done) continue;
        char pack[32] = "in bf16 s", psnr[32] = "";
        if (i < 2) snprintf(pack, sizeof pack, "%.2f", m->pack_s);
        if (i == 2) snprintf(psnr, sizeof psnr, isinf(m->psnr) ? "inf (identical)" : "%.2f", m->psnr);
        printf("| %s", rows[i].label);
        if (i == 2) printf(", %d steps", a->gen_steps);
        printf(" | %.3e | %.3e | %.3e | %.2f | %.2f | %s | %s |\n", m->rel_l2, m->max_abs, m->ref_max, m->f32_s,
               m->bf16_s, pack, psnr);
    }
    printf("\nf32 s of the UNet and VAE rows include paging their weights in (first run); the generation rows "
           "include loading and packing every network.\n");
    fflush(stdout);
}
