/* instantstyle generate: prompt + style image -> PNG. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "args.h"
#include "commands.h"
#include "core/fileio.h"
#include "instantstyle.h"

static const char *help_text =
    "usage: instantstyle generate --model DIR --prompt TEXT [options]\n"
    "\n"
    "Generate an image with SDXL; with --style-image, in the style of that image (InstantStyle).\n"
    "\n"
    "model:\n"
    "  --model DIR              SDXL diffusers folder (model_index.json, unet/, vae/, text_encoder*/, ...)\n"
    "  --ip-adapter FILE        IP-Adapter weights in h94's layout (ip-adapter_sdxl.safetensors)\n"
    "  --image-encoder DIR      its CLIP image encoder folder (default: image_encoder/ beside FILE)\n"
    "prompt:\n"
    "  --prompt TEXT            what to draw (required)\n"
    "  --prompt-2 TEXT          prompt for text_encoder_2 (default: same as --prompt)\n"
    "  --negative-prompt TEXT   what to avoid; without it the negative branch is zeros (SDXL default)\n"
    "  --negative-prompt-2 TEXT negative prompt for text_encoder_2\n"
    "style (InstantStyle):\n"
    "  --style-image FILE       PNG or JPEG whose style to use (needs --ip-adapter)\n"
    "  --ip-scale X             IP-Adapter strength, multiplies every block value (default 1.0)\n"
    "  --style-blocks SPEC      where the style is injected (default style): style | style+layout | all |\n"
    "                           a diffusers set_ip_adapter_scale dict, e.g.\n"
    "                           '{\"up\": {\"block_0\": [0.0, 1.0, 0.0]}}' | ComfyUI '6:1' |\n"
    "                           short form 'down.block_2=0,1;up.block_0=0,1,0' (docs/STYLE_BLOCKS.md)\n"
    "  --content-prompt TEXT    describe the style image's content to subtract it from the style\n"
    "  --content-scale X        strength of that subtraction (default 0.5)\n"
    "sampling:\n"
    "  --width N, --height N    output size, multiples of 8 (default: the model's, 1024 for SDXL)\n"
    "  --steps N                denoising steps (default 30)\n"
    "  --cfg X                  classifier-free guidance scale (default 5; <= 1 turns it off)\n"
    "  --guidance-rescale X     diffusers guidance_rescale, 0..1 (default 0)\n"
    "  --sampler NAME           euler | euler_a | ddim | dpmpp_2m (default: the model's scheduler config)\n"
    "  --karras                 Karras sigmas (euler, dpmpp_2m)\n"
    "  --timestep-spacing S     leading | trailing | linspace (default: the scheduler config's)\n"
    "  --eta X                  DDIM eta (default 0)\n"
    "  --seed N                 seed; same numbers as torch.Generator('cpu').manual_seed(N) (default 0)\n"
    "  --original-size WxH      SDXL size conditioning (default: the output size)\n"
    "  --crop-top N, --crop-left N  SDXL crop conditioning (default 0)\n"
    "  --target-size WxH        SDXL target-size conditioning (default: the output size)\n"
    "output:\n"
    "  --out FILE               PNG to write (default instantstyle.png); written atomically, with an\n"
    "                           A1111-style 'parameters' text chunk\n"
    "  --vae-tiling MODE        auto | on | off: tiled VAE decoding (auto: on for large images)\n"
    "  --dump-tensors FILE      also write the named intermediates (prompt_embeds, image_embeds, ip_tokens,\n"
    "                           latents_init, latents_final, image, ...) to a safetensors file\n"
    "  --threads N              compute threads (default: all cores)\n"
    "  --precision P            auto | f32 | bf16 (default auto: bf16 where this CPU runs it faster, i.e.\n"
    "                           AMX, or AVX512-BF16 when measured faster; f32 is the exact mode)\n"
    "  --quiet                  no progress bar and no stage log\n";

typedef struct {
    int quiet, tty;
} ui_state;

static void on_log(void *user, const char *msg) {
    ui_state *ui = user;
    if (!ui->quiet) fprintf(stderr, "%s%s\n", ui->tty ? "\r\033[K" : "", msg);
}

static void on_progress(void *user, int step, int total, double seconds) {
    ui_state *ui = user;
    if (ui->quiet || !ui->tty) return;
    double per = seconds / step, eta = per * (total - step);
    int width = 30, filled = total ? step * width / total : width;
    char bar[64];
    for (int i = 0; i < width; i++) bar[i] = i < filled ? '#' : '.';
    bar[width] = 0;
    fprintf(stderr, "\r\033[Kstep %d/%d [%s] %.2f s/step, ETA %d:%02d", step, total, bar, per, (int)eta / 60,
            (int)eta % 60);
    if (step == total) fprintf(stderr, "\n");
    fflush(stderr);
}

static is_error *parse(int argc, char **argv, is_pipeline_paths *paths, is_generate_params *gp, const char **out,
                       int *quiet, int *help) {
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = NULL;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            *help = 1;
            return NULL;
        }
        if (!strcmp(a, "--quiet") || !strcmp(a, "-q")) {
            *quiet = 1;
            continue;
        }
        if (!strcmp(a, "--karras")) {
            gp->karras = 1;
            continue;
        }
        if (strncmp(a, "--", 2) != 0) return is_errorf(IS_E_ARGUMENT, "unexpected argument '%s' (see --help)", a);
        IS_TRY(is_arg_value(argc, argv, &i, &v));
        if (!strcmp(a, "--model")) paths->model_dir = v;
        else if (!strcmp(a, "--ip-adapter")) paths->ip_adapter = v;
        else if (!strcmp(a, "--image-encoder")) paths->image_encoder_dir = v;
        else if (!strcmp(a, "--prompt")) gp->prompt = v;
        else if (!strcmp(a, "--prompt-2")) gp->prompt_2 = v;
        else if (!strcmp(a, "--negative-prompt")) gp->negative_prompt = v;
        else if (!strcmp(a, "--negative-prompt-2")) gp->negative_prompt_2 = v;
        else if (!strcmp(a, "--style-image")) gp->style_image = v;
        else if (!strcmp(a, "--ip-scale")) IS_TRY(is_arg_float(a, v, &gp->ip_scale));
        else if (!strcmp(a, "--style-blocks")) gp->style_blocks = v;
        else if (!strcmp(a, "--content-prompt")) gp->content_prompt = v;
        else if (!strcmp(a, "--content-scale")) IS_TRY(is_arg_float(a, v, &gp->content_scale));
        else if (!strcmp(a, "--width")) IS_TRY(is_arg_int(a, v, 1, 1 << 20, &gp->width));
        else if (!strcmp(a, "--height")) IS_TRY(is_arg_int(a, v, 1, 1 << 20, &gp->height));
        else if (!strcmp(a, "--steps")) IS_TRY(is_arg_int(a, v, -1000000, 1000000, &gp->steps));
        else if (!strcmp(a, "--cfg")) IS_TRY(is_arg_float(a, v, &gp->cfg));
        else if (!strcmp(a, "--guidance-rescale")) IS_TRY(is_arg_float(a, v, &gp->guidance_rescale));
        else if (!strcmp(a, "--eta")) IS_TRY(is_arg_float(a, v, &gp->eta));
        else if (!strcmp(a, "--timestep-spacing")) gp->timestep_spacing = v;
        else if (!strcmp(a, "--seed")) IS_TRY(is_arg_u64(a, v, &gp->seed));
        else if (!strcmp(a, "--original-size")) IS_TRY(is_arg_size(a, v, &gp->original_width, &gp->original_height));
        else if (!strcmp(a, "--target-size")) IS_TRY(is_arg_size(a, v, &gp->target_width, &gp->target_height));
        else if (!strcmp(a, "--crop-top")) IS_TRY(is_arg_int(a, v, 0, 1 << 20, &gp->crop_top));
        else if (!strcmp(a, "--crop-left")) IS_TRY(is_arg_int(a, v, 0, 1 << 20, &gp->crop_left));
        else if (!strcmp(a, "--out") || !strcmp(a, "-o")) *out = v;
        else if (!strcmp(a, "--dump-tensors")) gp->dump_tensors = v;
        else if (!strcmp(a, "--threads")) {
            int n = 0;
            IS_TRY(is_arg_int(a, v, 1, 1024, &n));
            is_set_threads(n);
        } else if (!strcmp(a, "--sampler")) {
            if (!strcmp(v, "euler")) gp->sampler = IS_SAMPLER_EULER;
            else if (!strcmp(v, "euler_a")) gp->sampler = IS_SAMPLER_EULER_A;
            else if (!strcmp(v, "ddim")) gp->sampler = IS_SAMPLER_DDIM;
            else if (!strcmp(v, "dpmpp_2m")) gp->sampler = IS_SAMPLER_DPMPP_2M;
            else return is_errorf(IS_E_ARGUMENT, "--sampler: unknown sampler '%s' (euler, euler_a, ddim, dpmpp_2m)", v);
        } else if (!strcmp(a, "--precision")) {
            if (is_precision_parse(v, &gp->precision))
                return is_errorf(IS_E_ARGUMENT, "--precision: '%s' is not auto, f32 or bf16", v);
        } else if (!strcmp(a, "--vae-tiling")) {
            if (!strcmp(v, "auto")) gp->vae_tiling = -1;
            else if (!strcmp(v, "on")) gp->vae_tiling = 1;
            else if (!strcmp(v, "off")) gp->vae_tiling = 0;
            else return is_errorf(IS_E_ARGUMENT, "--vae-tiling: '%s' is not auto, on or off", v);
        } else {
            return is_errorf(IS_E_ARGUMENT, "unknown option '%s' (see instantstyle generate --help)", a);
        }
    }
    if (!paths->model_dir) return is_errorf(IS_E_ARGUMENT, "--model DIR is required");
    if (!gp->prompt) return is_errorf(IS_E_ARGUMENT, "--prompt TEXT is required");
    if (gp->style_image && !paths->ip_adapter)
        return is_errorf(IS_E_ARGUMENT, "--style-image needs --ip-adapter FILE");
    return NULL;
}

/* Fail before the long computation if the output cannot be written at all. */
static is_error *probe_writable(const char *path) {
    is_atomic_file af;
    IS_TRY(is_atomic_open(&af, path));
    is_atomic_abort(&af);
    return NULL;
}

int is_cmd_generate(int argc, char **argv) {
    is_pipeline_paths paths = {NULL, NULL, NULL};
    is_generate_params gp;
    is_generate_params_init(&gp);
    const char *out = "instantstyle.png";
    int quiet = 0, help = 0;
    is_error *e = parse(argc, argv, &paths, &gp, &out, &quiet, &help);
    if (help) {
        fputs(help_text, stdout);
        is_error_free(e);
        return 0;
    }
    if (e) return is_cli_fail(e);
    ui_state ui = {quiet, isatty(2)};
    gp.log = on_log;
    gp.progress = on_progress;
    gp.user = &ui;
    is_pipeline *p = NULL;
    if ((e = probe_writable(out)) || (gp.dump_tensors && (e = probe_writable(gp.dump_tensors))) ||
        (e = is_pipeline_load(&paths, &p)))
        return is_cli_fail(e);
    is_image_result img;
    e = is_generate(p, &gp, &img);
    if (!e) e = is_save_png(out, &img, p, &gp);
    is_image_result_free(&img);
    is_pipeline_free(p);
    if (e) return is_cli_fail(e);
    if (!quiet) fprintf(stderr, "wrote %s\n", out);
    return 0;
}
