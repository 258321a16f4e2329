/* Pipeline object: resolves and checks the model folders and decides what stays loaded; the networks
 * are opened by is_generate (and kept here in KEEP mode). */
#include <dirent.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/config.h"
#include "core/fileio.h"
#include "pipeline/pipeline_internal.h"

void is_generate_params_init(is_generate_params *p) {
    memset(p, 0, sizeof *p);
    p->steps = 30;
    p->cfg = 5.0f;
    p->sampler = IS_SAMPLER_FROM_CONFIG;
    p->karras = -1;
    p->ip_scale = 1.0f;
    p->style_blocks = "style";
    p->content_scale = 0.5f;
    p->vae_tiling = -1;
    p->strength = -1.0f; /* diffusers' default for the mode: 0.3 img2img, 0.9999 inpainting */
    p->canny_low = 50.0;
    p->canny_high = 200.0;
    p->control_scale = 1.0f;
    p->control_end = 1.0f;
    p->ip_end = 1.0;
}

void is_pipeline_params_init(is_pipeline_params *p) {
    memset(p, 0, sizeof *p);
    p->memory = IS_MEMORY_AUTO;
}

static const char *const memory_names[] = {"auto", "keep", "low"};

const char *is_memory_mode_name(is_memory_mode m) {
    return (unsigned)m < sizeof memory_names / sizeof memory_names[0] ? memory_names[m] : "unknown";
}

int is_memory_mode_parse(const char *text, is_memory_mode *out) {
    for (int i = 0; text && i < (int)(sizeof memory_names / sizeof memory_names[0]); i++)
        if (!strcmp(text, memory_names[i])) {
            *out = (is_memory_mode)i;
            return 0;
        }
    return -1;
}

is_memory_mode is_pipeline_memory_mode(const is_pipeline *p) { return p ? p->memory : IS_MEMORY_LOW; }

void pipeline_release_networks(is_pipeline *p) {
    is_sdxl_text_free(p->kept.text);
    is_image_encoder_free(p->kept.image_encoder);
    is_unet_free(p->kept.unet);
    is_vae_free(p->kept.vae);
    is_controlnet_free(p->kept.controlnet);
    memset(&p->kept, 0, sizeof p->kept);
    free(p->kept_text_loras);
    free(p->kept_unet_loras);
    p->kept_text_loras = p->kept_unet_loras = NULL;
}

size_t is_pipeline_resident_bytes(const is_pipeline *p) {
    if (!p) return 0;
    uint64_t n = (p->kept.unet ? p->bytes_unet : 0) + (p->kept.vae ? p->bytes_vae : 0) +
                 (p->kept.text ? p->bytes_text : 0) + (p->kept.image_encoder ? p->bytes_image_encoder : 0) +
                 (p->kept.controlnet ? p->bytes_controlnet : 0);
    return (size_t)n;
}

void is_pipeline_free(is_pipeline *p) {
    if (!p) return;
    pipeline_release_networks(p);
    free(p->model_dir);
    free(p->ip_adapter);
    free(p->image_encoder_dir);
    free(p->controlnet_dir);
    free(p->unet_file);
    free(p->unet_dir);
    free(p->vae_dir);
    free(p->scheduler_config);
    free(p);
}

/* Total size of the *.safetensors files in dir (0 when unreadable: the loaders report that later). */
static uint64_t weight_files_bytes(const char *dir) {
    DIR *d = dir ? opendir(dir) : NULL;
    if (!d) return 0;
    uint64_t n = 0;
    for (struct dirent *e; (e = readdir(d));) {
        size_t len = strlen(e->d_name);
        if (len < 12 || strcmp(e->d_name + len - 12, ".safetensors")) continue;
        char *path = is_path_join(dir, e->d_name);
        struct stat st;
        if (path && stat(path, &st) == 0 && S_ISREG(st.st_mode)) n += (uint64_t)st.st_size;
        free(path);
    }
    closedir(d);
    return n;
}

static uint64_t file_bytes(const char *path) {
    struct stat st;
    return path && stat(path, &st) == 0 ? (uint64_t)st.st_size : 0;
}

/* AUTO: keep everything when the weights take at most half of the physical memory (the other half
 * for the activations of a large image and for the rest of the system). */
static void decide_memory(is_pipeline *p, is_memory_mode want) {
    uint64_t weights = p->bytes_text + p->bytes_image_encoder + p->bytes_unet + p->bytes_vae + p->bytes_controlnet;
    double have = (double)sysconf(_SC_PHYS_PAGES) * (double)sysconf(_SC_PAGESIZE);
    if (want == IS_MEMORY_AUTO) want = have > 0 && (double)weights > have / 2 ? IS_MEMORY_LOW : IS_MEMORY_KEEP;
    p->memory = want;
}

static is_error *need_path(const char *path, const char *what) {
    if (!is_file_exists(path))
        return is_errorf(IS_E_IO, "%s: not found (expected %s)", path, what);
    return NULL;
}

is_error *is_pipeline_load(const is_pipeline_params *paths, is_pipeline **out) {
    *out = NULL;
    if (!paths || !paths->model_dir) return is_errorf(IS_E_ARGUMENT, "no model folder given");
    if ((unsigned)paths->memory > IS_MEMORY_LOW)
        return is_errorf(IS_E_ARGUMENT, "memory mode %d is not auto, keep or low", (int)paths->memory);
    if (paths->threads < 0 || paths->threads > 1024)
        return is_errorf(IS_E_ARGUMENT, "threads must be 0 (all cores) to 1024 (got %d)", paths->threads);
    is_pipeline *p = calloc(1, sizeof *p);
    if (!p) return is_error_oom("pipeline");
    is_error *err = NULL;
    p->model_dir = strdup(paths->model_dir);
    p->unet_dir = is_path_join(paths->model_dir, "unet");
    p->vae_dir = is_path_join(paths->model_dir, "vae");
    p->scheduler_config = is_path_join(paths->model_dir, "scheduler/scheduler_config.json");
    if (!p->model_dir || !p->unet_dir || !p->vae_dir || !p->scheduler_config) err = is_error_oom("pipeline");
    char *index = err ? NULL : is_path_join(paths->model_dir, "model_index.json");
    if (!err) err = need_path(index, "an SDXL diffusers folder with model_index.json");
    free(index);
    if (!err) err = need_path(p->scheduler_config, "the model's scheduler config");
    if (!err && paths->ip_adapter) {
        err = need_path(paths->ip_adapter, "an IP-Adapter .safetensors file");
        if (!err && !(p->ip_adapter = strdup(paths->ip_adapter))) err = is_error_oom("pipeline");
        if (!err && paths->image_encoder_dir) {
            p->image_encoder_dir = strdup(paths->image_encoder_dir);
        } else if (!err) {
            char *dir = is_path_dirname(paths->ip_adapter);
            p->image_encoder_dir = dir ? is_path_join(dir, "image_encoder") : NULL;
            free(dir);
        }
        if (!err && !p->image_encoder_dir) err = is_error_oom("pipeline");
        if (!err) err = need_path(p->image_encoder_dir, "the IP-Adapter's image_encoder/ folder (--image-encoder)");
    }
    if (!err && paths->unet_file) {
        err = need_path(paths->unet_file, "a single-file UNet .safetensors (--unet)");
        if (!err && !(p->unet_file = strdup(paths->unet_file))) err = is_error_oom("pipeline");
    }
    if (!err && paths->controlnet) {
        if (!(p->controlnet_dir = strdup(paths->controlnet))) err = is_error_oom("pipeline");
        char *cfg = err ? NULL : is_path_join(paths->controlnet, "config.json");
        if (!err) err = need_path(cfg, "a diffusers ControlNetModel folder with config.json (--controlnet)");
        free(cfg);
    }
    if (!err) {
        is_config cfg;
        err = is_config_load_in(p->unet_dir, "config.json", &cfg);
        int64_t sample_size = 128, channels[16];
        int n_channels = 0;
        if (!err) err = is_config_int(&cfg, "sample_size", &sample_size);
        if (!err) err = is_config_int_list(&cfg, "block_out_channels", channels, 16, -1, 0, &n_channels);
        int64_t in_ch = 4, out_ch = 4;
        if (!err) err = is_config_int_or(&cfg, "in_channels", 4, &in_ch);
        if (!err) err = is_config_int_or(&cfg, "out_channels", 4, &out_ch);
        if (!err && (in_ch < 1 || in_ch > 64 || out_ch < 1 || out_ch > 64))
            err = is_errorf(IS_E_CONFIG, "%s/config.json: in_channels %lld / out_channels %lld, expected 1..64", p->unet_dir,
                            (long long)in_ch, (long long)out_ch);
        p->unet_in_channels = (int)in_ch;
        p->unet_out_channels = (int)out_ch;
        p->unet_base_channels = n_channels > 0 && channels[0] > 0 && channels[0] <= 65536 ? (int)channels[0] : 320;
        is_config_free(&cfg);
        /* VAE scale = 2^(number of VAE blocks - 1), as diffusers' vae_scale_factor. */
        int64_t blocks[16];
        int n_blocks = 0;
        if (!err) err = is_config_load_in(p->vae_dir, "config.json", &cfg);
        if (!err) err = is_config_int_list(&cfg, "block_out_channels", blocks, 16, -1, 0, &n_blocks);
        is_config_free(&cfg);
        /* In 64 bits and bounded: a hostile config must not overflow the default size (fuzz finding). */
        int64_t side = sample_size * ((int64_t)1 << (n_blocks > 0 && n_blocks <= 8 ? n_blocks - 1 : 3));
        if (!err && (sample_size < 1 || side > 8192))
            err = is_errorf(IS_E_CONFIG, "%s/config.json: sample_size %lld gives a default size of %lld pixels; "
                            "expected 1..8192", p->unet_dir, (long long)sample_size, (long long)side);
        if (!err && n_channels > 0 && (channels[0] < 1 || channels[0] > 65536))
            err = is_errorf(IS_E_CONFIG, "%s/config.json: block_out_channels[0] = %lld, expected 1..65536", p->unet_dir,
                            (long long)channels[0]);
        if (!err) p->default_width = p->default_height = (int)side;
    }
    if (!err) {
        char *te1 = is_path_join(p->model_dir, "text_encoder"), *te2 = is_path_join(p->model_dir, "text_encoder_2");
        p->bytes_text = weight_files_bytes(te1) + weight_files_bytes(te2);
        free(te1);
        free(te2);
        p->bytes_unet = (p->unet_file ? file_bytes(p->unet_file) : weight_files_bytes(p->unet_dir)) + file_bytes(p->ip_adapter);
        p->bytes_vae = weight_files_bytes(p->vae_dir);
        p->bytes_image_encoder = weight_files_bytes(p->image_encoder_dir);
        p->bytes_controlnet = weight_files_bytes(p->controlnet_dir);
        p->threads = paths->threads;
        decide_memory(p, paths->memory);
    }
    if (err) {
        is_pipeline_free(p);
        return err;
    }
    *out = p;
    return NULL;
}
