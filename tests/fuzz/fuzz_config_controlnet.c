/* controlnet/config.json: the input is a ControlNet's config.json, in a folder whose
 * diffusion_pytorch_model.safetensors is the golden tiny ControlNet's, loaded with is_controlnet_load (the
 * UNet's config parser in down-path mode plus the ControlNet's own keys). A ControlNet that loads must
 * give positive residual shapes whose sizes add up to is_controlnet_down_floats, and is checked against
 * the golden tiny UNet. Where is_controlnet_check_unet accepts the pair, the contract the pipeline relies
 * on is exercised: one ControlNet forward on an 8x8 latent (64x64 control image; guess mode for inputs of
 * odd length), whose residuals then go into that UNet's forward. */
#include <stdlib.h>
#include <string.h>

#include "fuzz_common.h"
#include "instantstyle.h"

static const char *dir, *config_path;
static is_unet *unet;

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc;
    (void)argv;
    dir = fz_path("controlnet");
    config_path = fz_path("controlnet/config.json");
    fz_symlink(fz_golden("models/tiny-controlnet/diffusion_pytorch_model.safetensors"),
               fz_path("controlnet/diffusion_pytorch_model.safetensors"));
    unet = fz_golden_unet();
    return 0;
}

static float *zeros(size_t n) {
    float *p = calloc(n ? n : 1, sizeof(float));
    if (!p) fz_fail("out of memory");
    return p;
}

/* The residual layout for an h x w latent: each shape positive, the down ones adding up to down_floats. */
static void check_shapes(const is_controlnet *c, int n, int h, int w) {
    int64_t sum = 0, s[3];
    for (int k = 0; k <= n; k++) {
        if (is_controlnet_residual_shape(c, k, h, w, s)) fz_fail("no shape for residual %d of %d", k, n);
        if (s[0] < 1 || s[1] < 1 || s[2] < 1 || s[1] > h || s[2] > w)
            fz_fail("residual %d of a %dx%d latent: [%lld, %lld, %lld]", k, h, w, (long long)s[0], (long long)s[1],
                    (long long)s[2]);
        if (k < n) sum += s[0] * s[1] * s[2];
    }
    if (!is_controlnet_residual_shape(c, n + 1, h, w, s) || !is_controlnet_residual_shape(c, -1, h, w, s))
        fz_fail("a shape for residual %d or -1 of %d", n + 1, n);
    if (sum != is_controlnet_down_floats(c, h, w))
        fz_fail("down residuals of a %dx%d latent: %lld floats, down_floats says %lld", h, w, (long long)sum,
                (long long)is_controlnet_down_floats(c, h, w));
}

/* One ControlNet forward and the UNet forward that takes its residuals, batch 1, on zero inputs. */
static void forward_pair(is_controlnet *c, int n, int guess_mode) {
    const int H = 8, W = 8, seq = 3, cin = is_unet_in_channels(unet), cout = is_unet_out_channels(unet);
    const int cad = is_unet_cross_attention_dim(unet), pooled = is_unet_pooled_dim(unet);
    const int ntime = is_unet_time_ids_count(unet);
    int64_t mid_shape[3];
    if (is_controlnet_residual_shape(c, n, H, W, mid_shape)) fz_fail("no mid residual shape");
    const size_t down_n = (size_t)is_controlnet_down_floats(c, H, W);
    const size_t mid_n = (size_t)(mid_shape[0] * mid_shape[1] * mid_shape[2]);
    float *x = zeros((size_t)cin * H * W), *ehs = zeros((size_t)seq * cad), *te = zeros((size_t)pooled);
    float *ids = zeros((size_t)ntime), *cond = zeros((size_t)3 * 8 * H * 8 * W), *down = zeros(down_n);
    float *mid = zeros(mid_n), *out = zeros((size_t)cout * H * W);
    for (int i = 0; i < cin * H * W; i++) x[i] = (float)((i * 7919) % 200 - 100) / 100.0f;
    for (int i = 0; i < 3 * 64 * H * W; i++) cond[i] = (float)(i % 7) / 6.0f;
    for (int i = 0; i < ntime; i++) ids[i] = 64.0f;
    is_controlnet_input in;
    is_controlnet_input_init(&in);
    is_unet_input *u = &in.unet;
    u->batch = 1;
    u->height = H;
    u->width = W;
    u->sample = x;
    u->timestep = 999.0f;
    u->encoder_hidden_states = ehs;
    u->seq_len = seq;
    u->text_embeds = te;
    u->time_ids = ids;
    in.cond = cond;
    in.conditioning_scale = 0.5f;
    in.guess_mode = guess_mode;
    if (!fz_error(is_controlnet_forward(c, &in, down, mid))) {
        fz_touch(down, down_n * sizeof(float));
        fz_touch(mid, mid_n * sizeof(float));
        u->down_residuals = down;
        u->mid_residual = mid;
        if (!fz_error(is_unet_forward(unet, u, out))) fz_touch(out, (size_t)cout * H * W * sizeof(float));
    }
    free(x);
    free(ehs);
    free(te);
    free(ids);
    free(cond);
    free(down);
    free(mid);
    free(out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    fz_write(config_path, data, size);
    is_controlnet *c = NULL;
    if (fz_error(is_controlnet_load(dir, &c))) return 0;
    int n = is_controlnet_num_down_residuals(c);
    if (n < 1 || n > 64) fz_fail("%d down residuals", n);
    static const int sides[][2] = {{8, 8}, {1, 1}, {3, 5}, {128, 128}};
    for (size_t k = 0; k < sizeof sides / sizeof *sides; k++) check_shapes(c, n, sides[k][0], sides[k][1]);
    if (!fz_error(is_controlnet_check_unet(c, unet))) forward_pair(c, n, (int)(size & 1));
    is_controlnet_free(c);
    return 0;
}
