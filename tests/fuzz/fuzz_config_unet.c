/* unet/config.json: the input is the UNet's config.json, in a folder whose
 * diffusion_pytorch_model.safetensors is the golden tiny SDXL UNet's. The config is parsed alone first
 * (unet_config_parse: cheap, the part most inputs reach); a config it accepts is loaded with is_unet_load
 * against the weights, and a UNet that loads must answer its size queries, take block specs, load the
 * golden IP-Adapter (or refuse it with an error) and run one forward on an 8x8 latent. */
#include <stdlib.h>
#include <string.h>

#include "fuzz_common.h"
#include "instantstyle.h"
#include "unet/unet_internal.h"

static const char *dir, *config_path, *adapter;

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc;
    (void)argv;
    dir = fz_path("unet");
    config_path = fz_path("unet/config.json");
    fz_symlink(fz_golden("models/tiny-sdxl/unet/diffusion_pytorch_model.safetensors"),
               fz_path("unet/diffusion_pytorch_model.safetensors"));
    adapter = fz_golden("models/tiny-ip-adapter/ip-adapter_sdxl.safetensors");
    return 0;
}

static void forward(is_unet *u) {
    const int H = 8, W = 8, seq = 3, cin = is_unet_in_channels(u), cad = is_unet_cross_attention_dim(u);
    const int pooled = is_unet_pooled_dim(u), ntime = is_unet_time_ids_count(u), cout = is_unet_out_channels(u);
    const int ntok = is_unet_has_ip_adapter(u) ? is_unet_ip_num_tokens(u) : 0;
    if (cin < 1 || cin > 64 || cad < 1 || cad > 4096 || pooled < 0 || pooled > 4096 || cout < 1 || cout > 64)
        return; /* sizes the golden weights cannot have: the load would have failed */
    float *x = calloc((size_t)cin * H * W, sizeof(float)), *ehs = calloc((size_t)seq * cad, sizeof(float));
    float *te = calloc((size_t)pooled + 1, sizeof(float)), *ids = calloc((size_t)ntime + 1, sizeof(float));
    float *ip = calloc((size_t)ntok * cad + 1, sizeof(float)), *out = calloc((size_t)cout * H * W, sizeof(float));
    if (!x || !ehs || !te || !ids || !ip || !out) fz_fail("out of memory");
    for (int i = 0; i < cin * H * W; i++) x[i] = (float)((i * 7919) % 200 - 100) / 100.0f;
    for (int i = 0; i < ntime; i++) ids[i] = 64.0f;
    is_unet_input in;
    is_unet_input_init(&in);
    in.batch = 1;
    in.height = H;
    in.width = W;
    in.sample = x;
    in.timestep = 999.0f;
    in.encoder_hidden_states = ehs;
    in.seq_len = seq;
    in.text_embeds = te;
    in.time_ids = ids;
    in.ip_tokens = ntok ? ip : NULL;
    fz_error(is_unet_forward(u, &in, out));
    fz_touch(out, (size_t)cout * H * W * sizeof(float));
    free(x);
    free(ehs);
    free(te);
    free(ids);
    free(ip);
    free(out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    fz_write(config_path, data, size);
    is_config cfg;
    if (fz_error(is_config_load(config_path, &cfg))) return 0;
    unet_config c;
    int bad = fz_error(unet_config_parse(&cfg, &c));
    is_config_free(&cfg);
    if (bad) return 0;

    is_unet *u = NULL;
    if (fz_error(is_unet_load(dir, &u))) return 0;
    int n = is_unet_num_cross_attn(u);
    for (int i = 0; i < n; i++) {
        const char *name = is_unet_cross_attn_name(u, i), *module = is_unet_cross_attn_module(u, i);
        if (!name || !module || strncmp(name, module, strlen(module)))
            fz_fail("cross-attention layer %d: name '%s' outside module '%s'", i, name ? name : "(null)",
                    module ? module : "(null)");
        if (is_unet_cross_attn_comfy_index(u, i) < 0) fz_fail("layer %d has no ComfyUI index", i);
    }
    static const char *const specs[] = {"all", "style", "style+layout", "0:1,2:0.5", "up=1", "{\"mid\": 0.5}"};
    for (size_t k = 0; k < sizeof specs / sizeof *specs; k++) fz_error(is_unet_set_ip_scale(u, specs[k], 0.5f));
    fz_error(is_unet_load_ip_adapter(u, adapter, 0));
    forward(u);
    is_unet_free(u);
    return 0;
}
