/* is_make_tiny_model: the sizes table, the folder layout, model_index.json and the scheduler. */
#include <dirent.h>
#include <errno.h>
#include <string.h>
#include <sys/stat.h>

#include "core/fileio.h"
#include "tiny/tiny_model.h"

/* Structurally SDXL, a few MB: three UNet levels [DownBlock2D, CrossAttnDownBlock2D x2] with
 * [1, 1, 2] transformer layers (11 Transformer2DModels, 17 cross-attentions), head counts in
 * attention_head_dim, text_time added conditions, two text encoders whose hidden states are
 * concatenated, a CLIP vision encoder for the adapter, a ControlNet whose conditioning embedding
 * is narrower than SDXL's [16, 32, 96, 256] but has its four levels (the golden tiny one's sizes). */
void tm_spec_default(tm_spec *s) {
    memset(s, 0, sizeof *s);
    s->text_encoder = (tm_clip_spec){
        .architecture = "CLIPTextModel", .hidden_act = "quick_gelu", .hidden_size = 32,
        .intermediate_size = 64, .num_attention_heads = 4, .num_hidden_layers = 3, .projection_dim = 32,
        .vocab_size = tm_tokenizer_vocab_size(), .max_position_embeddings = 77};
    s->text_encoder_2 = (tm_clip_spec){
        .architecture = "CLIPTextModelWithProjection", .hidden_act = "gelu", .with_projection = 1,
        .hidden_size = 64, .intermediate_size = 128, .num_attention_heads = 4, .num_hidden_layers = 3,
        .projection_dim = 48, .vocab_size = tm_tokenizer_vocab_size(), .max_position_embeddings = 77};
    s->image_encoder = (tm_clip_spec){
        .architecture = "CLIPVisionModelWithProjection", .hidden_act = "gelu", .vision = 1,
        .with_projection = 1, .hidden_size = 32, .intermediate_size = 64, .num_attention_heads = 2,
        .num_hidden_layers = 2, .projection_dim = 48, .image_size = 224, .patch_size = 32, .num_channels = 3};
    s->unet = (tm_unet_spec){
        .n_blocks = 3, .block_out_channels = {32, 32, 64}, .cross_attn = {0, 1, 1},
        .transformer_layers = {1, 1, 2}, .attention_head_dim = {1, 2, 4}, .layers_per_block = 2,
        .in_channels = 4, .out_channels = 4, .norm_num_groups = 32, .sample_size = 8,
        .addition_time_embed_dim = 8};
    s->vae = (tm_vae_spec){
        .n_blocks = 4, .block_out_channels = {32, 32, 64, 64}, .layers_per_block = 1, .in_channels = 3,
        .out_channels = 3, .latent_channels = 4, .norm_num_groups = 32, .sample_size = 64,
        .scaling_factor = 0.13025};
    s->controlnet = (tm_controlnet_spec){.conditioning_channels = 3, .n_cond_levels = 4,
                                         .cond_out_channels = {8, 16, 16, 32}};
    s->ip_tokens = 4;
    /* Storage dtypes as the real files: F16, the VAE F32 (SDXL's VAE overflows in F16; releases ship F32). */
    s->unet.dtype = s->text_encoder.dtype = s->text_encoder_2.dtype = s->image_encoder.dtype = s->ip_dtype = IS_DT_F16;
    s->vae.dtype = IS_DT_F32;
    /* SDXL's wiring: cross-attention sees both text encoders' hidden states side by side; the
     * added condition is the pooled projection plus six Fourier-embedded size/crop numbers. */
    s->unet.cross_attention_dim = s->text_encoder.hidden_size + s->text_encoder_2.hidden_size;
    s->unet.projection_class_embeddings_input_dim =
        s->text_encoder_2.projection_dim + 6 * s->unet.addition_time_embed_dim;
}

/* [null, null]: how diffusers records an optional component that is absent. */
static tm_json null_pair(void) {
    tm_json a = {cJSON_CreateArray(), 0};
    for (int k = 0; k < 2; k++)
        if (!a.obj || !cJSON_AddItemToArray(a.obj, cJSON_CreateNull())) a.oom = 1;
    return a;
}

is_error *tm_write_model_index(const char *dir) {
    static const char *const pairs[][3] = {
        {"scheduler", "diffusers", "EulerDiscreteScheduler"}, {"text_encoder", "transformers", "CLIPTextModel"},
        {"text_encoder_2", "transformers", "CLIPTextModelWithProjection"},
        {"tokenizer", "transformers", "CLIPTokenizer"},       {"tokenizer_2", "transformers", "CLIPTokenizer"},
        {"unet", "diffusers", "UNet2DConditionModel"},        {"vae", "diffusers", "AutoencoderKL"}};
    tm_json j = tm_json_new();
    tm_json_str(&j, "_class_name", "StableDiffusionXLPipeline");
    tm_json_str(&j, "_diffusers_version", "0.19.0.dev0");
    tm_json_null(&j, "add_watermarker");
    tm_json_add(&j, "feature_extractor", null_pair());
    tm_json_bool(&j, "force_zeros_for_empty_prompt", 1);
    tm_json_add(&j, "image_encoder", null_pair());
    for (size_t i = 0; i < sizeof pairs / sizeof pairs[0]; i++) tm_json_strs(&j, pairs[i][0], &pairs[i][1], 2);
    return tm_json_write(&j, dir, "model_index.json");
}

/* EulerDiscreteScheduler with stabilityai/stable-diffusion-xl-base-1.0's values. */
is_error *tm_write_scheduler_config(const char *dir) {
    tm_json j = tm_json_new();
    tm_json_str(&j, "_class_name", "EulerDiscreteScheduler");
    tm_json_str(&j, "_diffusers_version", "0.19.0.dev0");
    tm_json_num(&j, "beta_end", 0.012);
    tm_json_str(&j, "beta_schedule", "scaled_linear");
    tm_json_num(&j, "beta_start", 0.00085);
    tm_json_bool(&j, "clip_sample", 0);
    tm_json_str(&j, "interpolation_type", "linear");
    tm_json_num(&j, "num_train_timesteps", 1000);
    tm_json_str(&j, "prediction_type", "epsilon");
    tm_json_num(&j, "sample_max_value", 1.0);
    tm_json_bool(&j, "set_alpha_to_one", 0);
    tm_json_bool(&j, "skip_prk_steps", 1);
    tm_json_num(&j, "steps_offset", 1);
    tm_json_str(&j, "timestep_spacing", "leading");
    tm_json_null(&j, "trained_betas");
    tm_json_bool(&j, "use_karras_sigmas", 0);
    return tm_json_write(&j, dir, "scheduler_config.json");
}

/* mkdir that accepts an existing directory. */
static is_error *make_dir(const char *path) {
    if (mkdir(path, 0755) == 0) return NULL;
    struct stat st;
    if (errno == EEXIST && stat(path, &st) == 0 && S_ISDIR(st.st_mode)) return NULL;
    if (errno == EEXIST) return is_errorf(IS_E_IO, "%s exists and is not a directory", path);
    return is_errorf(IS_E_IO, "cannot create directory %s: %s", path, strerror(errno));
}

/* mkdir -p: every missing parent too. */
static is_error *make_dirs(const char *path) {
    char buf[4096];
    size_t n = strlen(path);
    if (n >= sizeof buf) return is_errorf(IS_E_ARGUMENT, "output path too long: %s", path);
    memcpy(buf, path, n + 1);
    for (size_t i = 1; i < n; i++) {
        if (buf[i] != '/' || buf[i - 1] == '/') continue;
        buf[i] = '\0';
        IS_TRY(make_dir(buf));
        buf[i] = '/';
    }
    return make_dir(buf);
}

/* dir/a[/b] as a new directory path in buf. */
static is_error *sub_dir(char *buf, size_t cap, const char *dir, const char *a, const char *b) {
    int n = b ? snprintf(buf, cap, "%s/%s/%s", dir, a, b) : snprintf(buf, cap, "%s/%s", dir, a);
    if (n < 0 || (size_t)n >= cap) return is_errorf(IS_E_ARGUMENT, "output path too long: %s/%s", dir, a);
    return make_dir(buf);
}

/* 1 if dir exists and holds anything besides . and .. */
static int non_empty(const char *dir) {
    DIR *d = opendir(dir);
    if (!d) return 0;
    const struct dirent *e;
    int found = 0;
    while (!found && (e = readdir(d)))
        found = strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0;
    closedir(d);
    return found;
}

is_error *tm_write_all(const char *dir, const tm_spec *spec, uint64_t seed) {
    const tm_spec s = *spec;
    char p[4096];
    IS_TRY(make_dirs(dir));
    IS_TRY(sub_dir(p, sizeof p, dir, "sdxl", NULL));
    IS_TRY(tm_write_model_index(p));
    IS_TRY(sub_dir(p, sizeof p, dir, "sdxl", "scheduler"));
    IS_TRY(tm_write_scheduler_config(p));
    IS_TRY(sub_dir(p, sizeof p, dir, "sdxl", "tokenizer"));
    IS_TRY(tm_write_tokenizer(p, "<|endoftext|>", s.text_encoder.max_position_embeddings));
    IS_TRY(sub_dir(p, sizeof p, dir, "sdxl", "tokenizer_2"));
    IS_TRY(tm_write_tokenizer(p, "!", s.text_encoder_2.max_position_embeddings)); /* as SDXL's */
    IS_TRY(sub_dir(p, sizeof p, dir, "sdxl", "text_encoder"));
    IS_TRY(tm_write_clip(p, &s.text_encoder, seed, "text_encoder"));
    IS_TRY(sub_dir(p, sizeof p, dir, "sdxl", "text_encoder_2"));
    IS_TRY(tm_write_clip(p, &s.text_encoder_2, seed, "text_encoder_2"));
    IS_TRY(sub_dir(p, sizeof p, dir, "sdxl", "unet"));
    IS_TRY(tm_write_unet(p, &s.unet, seed));
    IS_TRY(sub_dir(p, sizeof p, dir, "sdxl", "vae"));
    IS_TRY(tm_write_vae(p, &s.vae, seed));
    IS_TRY(sub_dir(p, sizeof p, dir, "ip-adapter", NULL));
    IS_TRY(tm_write_ip_adapter(p, &s, seed));
    IS_TRY(sub_dir(p, sizeof p, dir, "ip-adapter", "image_encoder"));
    IS_TRY(tm_write_clip(p, &s.image_encoder, seed, "image_encoder"));
    IS_TRY(tm_write_preprocessor_config(p, &s.image_encoder));
    IS_TRY(sub_dir(p, sizeof p, dir, "controlnet", NULL));
    return tm_write_controlnet(p, &s.unet, &s.controlnet, seed);
}

is_error *is_make_tiny_model(const char *dir, uint64_t seed, int force) {
    if (!dir || !*dir) return is_errorf(IS_E_ARGUMENT, "make-tiny-model: no output directory given");
    struct stat st;
    if (stat(dir, &st) == 0 && !S_ISDIR(st.st_mode))
        return is_errorf(IS_E_ARGUMENT, "make-tiny-model: %s exists and is not a directory", dir);
    if (!force && non_empty(dir))
        return is_errorf(IS_E_ARGUMENT, "make-tiny-model: %s is not empty (use --force to overwrite)", dir);
    tm_spec s;
    tm_spec_default(&s);
    return is_error_wrap(tm_write_all(dir, &s, seed), "make-tiny-model");
}
