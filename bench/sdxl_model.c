/* Real-size SDXL base 1.0 networks with random weights, written in the real file layouts so the
 * real loaders run: the sizes below are the published config.json values, the files come from the
 * smoke-model generator (src/tiny) fed with those sizes instead of its tiny ones. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "bench.h"
#include "core/error.h"
#include "tiny/tiny_model.h"

/* stabilityai/stable-diffusion-xl-base-1.0 (unet/, vae/, text_encoder/, text_encoder_2/ config.json),
 * h94/IP-Adapter sdxl_models/image_encoder/config.json (OpenCLIP ViT-bigG-14 vision tower) and
 * diffusers/controlnet-canny-sdxl-1.0's config.json (the UNet's down path and mid block, a
 * [16, 32, 96, 256] conditioning embedding). */
static void sdxl_spec(tm_spec *s) {
    memset(s, 0, sizeof *s);
    s->text_encoder = (tm_clip_spec){
        .architecture = "CLIPTextModel", .hidden_act = "quick_gelu", .hidden_size = 768,
        .intermediate_size = 3072, .num_attention_heads = 12, .num_hidden_layers = 12, .projection_dim = 768,
        .vocab_size = 49408, .max_position_embeddings = 77};
    s->text_encoder_2 = (tm_clip_spec){
        .architecture = "CLIPTextModelWithProjection", .hidden_act = "gelu", .with_projection = 1,
        .hidden_size = 1280, .intermediate_size = 5120, .num_attention_heads = 20, .num_hidden_layers = 32,
        .projection_dim = 1280, .vocab_size = 49408, .max_position_embeddings = 77};
    s->image_encoder = (tm_clip_spec){
        .architecture = "CLIPVisionModelWithProjection", .hidden_act = "gelu", .vision = 1,
        .with_projection = 1, .hidden_size = 1664, .intermediate_size = 8192, .num_attention_heads = 16,
        .num_hidden_layers = 48, .projection_dim = 1280, .image_size = 224, .patch_size = 14, .num_channels = 3};
    s->unet = (tm_unet_spec){
        .n_blocks = 3, .block_out_channels = {320, 640, 1280}, .cross_attn = {0, 1, 1},
        .transformer_layers = {1, 2, 10}, .attention_head_dim = {5, 10, 20}, .layers_per_block = 2,
        .in_channels = 4, .out_channels = 4, .norm_num_groups = 32, .sample_size = 128,
        .addition_time_embed_dim = 256};
    s->vae = (tm_vae_spec){
        .n_blocks = 4, .block_out_channels = {128, 256, 512, 512}, .layers_per_block = 2, .in_channels = 3,
        .out_channels = 3, .latent_channels = 4, .norm_num_groups = 32, .sample_size = 1024,
        .scaling_factor = 0.13025};
    s->controlnet = (tm_controlnet_spec){.conditioning_channels = 3, .n_cond_levels = 4,
                                         .cond_out_channels = {16, 32, 96, 256}};
    s->ip_tokens = 4;
    /* the published files' dtypes: F16, the VAE F32 */
    s->unet.dtype = s->text_encoder.dtype = s->text_encoder_2.dtype = s->image_encoder.dtype = s->ip_dtype = IS_DT_F16;
    s->vae.dtype = IS_DT_F32;
    s->unet.cross_attention_dim = s->text_encoder.hidden_size + s->text_encoder_2.hidden_size;     /* 2048 */
    s->unet.projection_class_embeddings_input_dim =
        s->text_encoder_2.projection_dim + 6 * s->unet.addition_time_embed_dim;                       /* 2816 */
}

static is_error *make_dir(const char *path) {
    if (mkdir(path, 0755) == 0 || errno == EEXIST) return NULL;
    return is_errorf(IS_E_IO, "cannot create directory %s: %s", path, strerror(errno));
}

static int exists(const char *dir, const char *file) {
    char p[4096 + 64];
    int n = snprintf(p, sizeof p, "%s/%s", dir, file);
    if (n < 0 || (size_t)n >= sizeof p) return 0;
    struct stat st;
    return stat(p, &st) == 0;
}

/* The small files that make root a diffusers SDXL folder: model_index.json, scheduler/ and both
 * tokenizers. The tokenizers are the generator's byte-level ones (514 ids): every id they produce
 * lies inside the text encoders' 49408-row embedding tables, so the real-size encoders accept them. */
static is_error *write_pipeline_files(const char *root) {
    char dir[4096];
    IS_TRY(tm_write_model_index(root));
    snprintf(dir, sizeof dir, "%s/scheduler", root);
    IS_TRY(make_dir(dir));
    IS_TRY(tm_write_scheduler_config(dir));
    snprintf(dir, sizeof dir, "%s/tokenizer", root);
    IS_TRY(make_dir(dir));
    IS_TRY(tm_write_tokenizer(dir, "<|endoftext|>", 77));
    snprintf(dir, sizeof dir, "%s/tokenizer_2", root);
    IS_TRY(make_dir(dir));
    return tm_write_tokenizer(dir, "!", 77); /* as SDXL's tokenizer_2 */
}

is_error *bench_write_component(const char *root, const char *name) {
    tm_spec s;
    sdxl_spec(&s);
    char dir[4096];
    snprintf(dir, sizeof dir, "%s/%s", root, name);
    IS_TRY(make_dir(root));
    if (!strcmp(name, "pipeline")) return write_pipeline_files(root);
    IS_TRY(make_dir(dir));
    const uint64_t seed = 1234;
    /* h94 sdxl_models/ip-adapter_sdxl.safetensors: 4 tokens of 2048 from the 1280-dim bigG
     * embedding, to_k_ip/to_v_ip for the 70 cross-attentions. */
    if (!strcmp(name, "ip-adapter")) return tm_write_ip_adapter(dir, &s, seed);
    if (!strcmp(name, "unet")) return tm_write_unet(dir, &s.unet, seed);
    /* 1.25 B parameters in F16, 2.5 GB (the published file's size) */
    if (!strcmp(name, "controlnet")) return tm_write_controlnet(dir, &s.unet, &s.controlnet, seed);
    if (!strcmp(name, "vae")) return tm_write_vae(dir, &s.vae, seed);
    if (!strcmp(name, "text_encoder")) return tm_write_clip(dir, &s.text_encoder, seed, name);
    if (!strcmp(name, "text_encoder_2")) return tm_write_clip(dir, &s.text_encoder_2, seed, name);
    if (!strcmp(name, "image_encoder")) {
        IS_TRY(tm_write_clip(dir, &s.image_encoder, seed, name));
        return tm_write_preprocessor_config(dir, &s.image_encoder);
    }
    return is_errorf(IS_E_ARGUMENT, "unknown component '%s'", name);
}

int bench_component_present(const char *root, const char *name) {
    char dir[4096];
    snprintf(dir, sizeof dir, "%s/%s", root, name);
    if (!strcmp(name, "pipeline"))
        return exists(root, "model_index.json") && exists(root, "scheduler/scheduler_config.json") &&
               exists(root, "tokenizer/vocab.json") && exists(root, "tokenizer_2/vocab.json");
    if (!strcmp(name, "ip-adapter")) return exists(dir, "ip-adapter_sdxl.safetensors");
    return exists(dir, "config.json") &&
           (exists(dir, "model.safetensors") || exists(dir, "diffusion_pytorch_model.safetensors"));
}
