/* Options of `instantstyle generate`. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "args.h"
#include "generate.h"

const char *const is_gen_help_text =
    "usage: instantstyle generate --model DIR --prompt TEXT [options]\n"
    "\n"
    "Generate an image with SDXL; with --style-image, in the style of that image (InstantStyle).\n"
    "Each option is given at most once.\n"
    "\n"
    "model:\n"
    "  --model DIR              SDXL diffusers folder (model_index.json, unet/, vae/, text_encoder*/, ...)\n"
    "  --ip-adapter FILE        IP-Adapter weights in h94's layout (ip-adapter_sdxl.safetensors)\n"
    "  --image-encoder DIR      its CLIP image encoder folder (default: image_encoder/ beside FILE)\n"
    "  --unet FILE              a single-file UNet in diffusers names (e.g. SDXL-Lightning's\n"
    "                           sdxl_lightning_4step_unet.safetensors) instead of the model's unet/ weights\n"
    "prompt:\n"
    "  --prompt TEXT            what to draw (required)\n"
    "  --prompt-2 TEXT          prompt for text_encoder_2 (default: same as --prompt)\n"
    "  --negative-prompt TEXT   what to avoid; without it the negative branch is zeros (SDXL default)\n"
    "  --negative-prompt-2 TEXT negative prompt for text_encoder_2\n"
    "style (InstantStyle):\n"
    "  --style-image FILE       PNG or JPEG whose style to use (needs --ip-adapter; one image)\n"
    "  --ip-scale X             IP-Adapter strength, multiplies every block value (default 1.0)\n"
    "  --ip-start A, --ip-end B the fraction of the steps the IP-Adapter acts in (default 0 and 1)\n"
    "  --style-blocks SPEC      where the style is injected (default style): style | style+layout | all |\n"
    "                           a diffusers set_ip_adapter_scale dict, e.g.\n"
    "                           '{\"up\": {\"block_0\": [0.0, 1.0, 0.0]}}' | ComfyUI '6:1' |\n"
    "                           short form 'down.block_2=0,1;up.block_0=0,1,0' (docs/STYLE_BLOCKS.md)\n"
    "  --content-prompt TEXT    describe the style image's content to subtract it from the style\n"
    "  --content-scale X        strength of that subtraction (default 0.5)\n"
    "  --max-image-pixels N     refuse a style image of more pixels (default 178956970, Pillow's; the\n"
    "                           ceiling is 268435456; docs/LIMITS.md)\n"
    "image to image (docs/IMAGE_TO_IMAGE.md):\n"
    "  --init-image FILE        img2img: start from this image (PNG/JPEG), partly noised; its size (rounded\n"
    "                           down to a multiple of 8) is the output size unless --width/--height say\n"
    "  --strength X             how much of it is repainted, (0, 1]: int(steps * X) steps run (default 0.3;\n"
    "                           0.9999 when inpainting)\n"
    "  --mask-image FILE        inpainting: white = repaint, black = keep (same size as --init-image); with\n"
    "                           a 9-channel inpainting UNet or a plain one\n"
    "  --controlnet DIR         a diffusers ControlNetModel folder (SDXL), e.g. a Canny ControlNet\n"
    "  --control-image FILE     its control image (e.g. an edge map), resized to the output size\n"
    "  --control-canny FILE     or a photo: its Canny edges are the control image (exactly cv2.Canny)\n"
    "  --canny-low L, --canny-high H  Canny thresholds (default 50 and 200, InstantStyle's)\n"
    "  --control-scale X        ControlNet conditioning scale (default 1; InstantStyle uses 0.6)\n"
    "  --control-start A, --control-end B  the fraction of the steps it acts in (default 0 and 1)\n"
    "  --guess-mode             diffusers' guess mode (ControlNet on the conditional half only)\n"
    "few-step models (docs/FEW_STEP.md):\n"
    "  --preset NAME            the sampler settings of a distilled family: lightning-1step/2step/4step/8step,\n"
    "                           lcm-4step/8step, tcd-4step, hyper-sd-4step/8step (steps, sampler, spacing,\n"
    "                           prediction type, CFG, eta); options given explicitly override it\n"
    "LoRA:\n"
    "  --lora FILE[:WEIGHT]     a LoRA (kohya / sd-scripts or diffusers / PEFT .safetensors) merged into the\n"
    "                           UNet and both text encoders at WEIGHT (default 1); repeat for several\n"
    "sampling:\n"
    "  --width N, --height N    output size, multiples of 8 up to 8192 (default: the model's, 1024 for SDXL)\n"
    "  --steps N                denoising steps (default 30)\n"
    "  --cfg X                  classifier-free guidance scale (default 5; <= 1 turns it off)\n"
    "  --guidance-rescale X     diffusers guidance_rescale, 0..1 (default 0)\n"
    "  --sampler NAME           euler | euler_a | ddim | dpmpp_2m | lcm | tcd | from_config (default:\n"
    "                           from_config, the model's scheduler config); lcm, tcd: the few-step samplers of\n"
    "                           LCM / TCD LoRAs (at most 50 steps)\n"
    "  --karras                 Karras sigmas (euler, dpmpp_2m)\n"
    "  --timestep-spacing S     leading | trailing | linspace (default: the scheduler config's)\n"
    "  --eta X                  DDIM eta, or TCD's gamma 0..1 (default 0; TCD's authors use 0.3)\n"
    "  --prediction-type P      epsilon | v_prediction | sample (default: the scheduler config's; sample = x0,\n"
    "                           e.g. SDXL-Lightning 1-step with euler)\n"
    "  --seed N                 seed; same numbers as torch.Generator('cpu').manual_seed(N) (default 0)\n"
    "  --original-size WxH      SDXL size conditioning (default: the output size)\n"
    "  --crop-top N, --crop-left N  SDXL crop conditioning (default 0)\n"
    "  --target-size WxH        SDXL target-size conditioning (default: the output size)\n"
    "output:\n"
    "  --out FILE, -o FILE      PNG to write (default instantstyle.png), with an A1111-style 'parameters'\n"
    "                           text chunk that records every option above; '-' writes it to standard\n"
    "                           output. A regular file only (a symlink is followed: the file it names is\n"
    "                           replaced, atomically); checked before any work\n"
    "  --vae-tiling MODE        auto | on | off: tiled VAE decoding (auto: on for large images)\n"
    "  --dump-tensors FILE      also write the named intermediates (prompt_embeds, image_embeds, ip_tokens,\n"
    "                           latents_init, latents_final, image, ...) to a safetensors file\n"
    "  --threads N              compute threads (default: all cores)\n"
    "  --precision P            auto | f32 | bf16 (default auto: bf16 where this CPU runs it faster, i.e.\n"
    "                           AMX, or AVX512-BF16 when measured faster; f32 is the exact mode)\n"
    "  --quiet, -q              no progress, stage log or 'wrote' line (warnings and errors still show)\n"
    "\n"
    "Ctrl-C (SIGINT) or SIGTERM cancels the run cleanly: no output file, exit status 130 or 143.\n";

void is_gen_options_init(is_gen_options *o) {
    memset(o, 0, sizeof *o);
    is_pipeline_params_init(&o->paths);
    /* One generation per run: each network is released after its stage, so the text and image
     * encoders are not resident next to the UNet (the lowest peak memory). */
    o->paths.memory = IS_MEMORY_LOW;
    is_generate_params_init(&o->gp);
    o->out = "instantstyle.png";
}

/* Options that take a value; each may be given once. */
static const char *const value_options[] = {
    "--model", "--ip-adapter", "--image-encoder", "--prompt", "--prompt-2", "--negative-prompt",
    "--negative-prompt-2", "--style-image", "--ip-scale", "--style-blocks", "--content-prompt", "--content-scale",
    "--width", "--height", "--steps", "--cfg", "--guidance-rescale", "--sampler", "--timestep-spacing", "--eta",
    "--prediction-type",
    "--seed", "--original-size", "--crop-top", "--crop-left", "--target-size", "--out", "--vae-tiling",
    "--dump-tensors", "--threads", "--precision", "--max-image-pixels", "--init-image", "--strength", "--mask-image",
    "--controlnet", "--control-image", "--control-canny", "--canny-low", "--canny-high", "--control-scale",
    "--control-start", "--control-end", "--preset", "--unet", "--ip-start", "--ip-end", NULL};

static const char *canonical(const char *a) { return !strcmp(a, "-o") ? "--out" : a; }

static int takes_value(const char *name) {
    for (const char *const *o = value_options; *o; o++)
        if (!strcmp(*o, name)) return 1;
    return 0;
}

static const char *why_once(const char *name) {
    if (!strcmp(name, "--style-image")) return "several style images are not supported yet";
    if (!strcmp(name, "--ip-adapter")) return "several IP-Adapters are not supported yet";
    if (!strcmp(name, "--controlnet")) return "several ControlNets are not supported yet";
    return "each option takes one value (the second would silently replace the first)";
}

/* Output side: at most the library's size, so the CLI never accepts what the library refuses. */
static is_error *set_side(const char *opt, const char *v, int *out) {
    IS_TRY(is_arg_int(opt, v, 1, 1 << 30, out));
    if (*out > IS_CLI_MAX_SIDE)
        return is_errorf(IS_E_ARGUMENT, "%s: %d is larger than the supported %d", opt, *out, IS_CLI_MAX_SIDE);
    return NULL;
}

static is_error *one_of(const char *opt, const char *v, const char *const *names, const char *list) {
    for (int i = 0; names[i]; i++)
        if (!strcmp(v, names[i])) return NULL;
    is_arg_quoted q;
    return is_errorf(IS_E_ARGUMENT, "%s: unknown value %s (expected %s)", opt, is_arg_quote(v, &q), list);
}

/* The library's table of sampler names (is_sampler_name/is_sampler_parse), listed in the error. */
static is_error *set_sampler(const char *v, is_sampler *out) {
    if (!is_sampler_parse(v, out)) return NULL;
    char list[256] = "";
    for (int k = IS_SAMPLER_FROM_CONFIG; strcmp(is_sampler_name((is_sampler)k), "?"); k++)
        snprintf(list + strlen(list), sizeof list - strlen(list), "%s%s", k ? ", " : "", is_sampler_name((is_sampler)k));
    is_arg_quoted q;
    return is_errorf(IS_E_ARGUMENT, "--sampler: unknown value %s (expected one of %s)", is_arg_quote(v, &q), list);
}

static is_error *set_tiling(const char *v, int *out) {
    static const char *const names[] = {"auto", "on", "off", NULL};
    IS_TRY(one_of("--vae-tiling", v, names, "auto, on or off"));
    *out = !strcmp(v, "auto") ? -1 : !strcmp(v, "on");
    return NULL;
}

/* Raise (or lower) the decompression-bomb limit for the style image (Pillow's default). */
static is_error *set_max_pixels(const char *v) {
    uint64_t n = 0;
    IS_TRY(is_arg_u64("--max-image-pixels", v, &n));
    if (n < 1) return is_errorf(IS_E_ARGUMENT, "--max-image-pixels: must be at least 1");
    is_set_max_image_pixels(n);
    return NULL;
}

/* --lora FILE[:WEIGHT]: the weight is what follows the last ':' when that is a number (a path may hold
 * ':' too); default 1. */
static is_error *add_lora(is_gen_options *o, const char *v) {
    if (o->gp.n_loras == IS_MAX_LORAS) return is_errorf(IS_E_ARGUMENT, "--lora: at most %d LoRAs", IS_MAX_LORAS);
    const char *colon = strrchr(v, ':');
    float w = 1.0f;
    size_t len = strlen(v);
    if (colon && colon[1]) {
        is_error *e = is_arg_float("--lora", colon + 1, &w);
        if (!e) len = (size_t)(colon - v);
        else if (strchr("+-.0123456789", colon[1])) return e; /* FILE:1.x5 is a typo, not a file name */
        else is_error_free(e), w = 1.0f;
    }
    if (!len) return is_errorf(IS_E_ARGUMENT, "--lora: no file before ':' in '%s'", v);
    char *path = strndup(v, len);
    if (!path) return is_error_oom("--lora");
    o->lora_paths[o->gp.n_loras] = path;
    o->loras[o->gp.n_loras] = (is_lora){path, w};
    o->gp.n_loras++;
    o->gp.loras = o->loras;
    return NULL;
}

void is_gen_options_free(is_gen_options *o) {
    for (int i = 0; i < IS_MAX_LORAS; i++) free(o->lora_paths[i]);
    memset(o->lora_paths, 0, sizeof o->lora_paths);
}

/* strength: (0, 1]; control start / end: [0, 1]. Kept as Python floats (double): they decide step counts. */
static is_error *set_fraction(const char *opt, const char *v, int zero_ok, double *out) {
    IS_TRY(is_arg_double(opt, v, out));
    if (*out < 0 || *out > 1 || (!zero_ok && *out == 0))
        return is_errorf(IS_E_ARGUMENT, "%s: %s is outside %s", opt, v, zero_ok ? "0..1" : "(0, 1]");
    return NULL;
}

static is_error *set_threads(const char *v, is_gen_options *o) {
    int n = 0;
    IS_TRY(is_arg_int("--threads", v, 1, 1024, &n));
    o->paths.threads = n;
    is_set_threads(n);
    return NULL;
}

/* Options that name a file, a folder or free text. */
static int set_text(is_gen_options *o, const char *a, const char *v) {
    const char **slot = !strcmp(a, "--model")              ? &o->paths.model_dir
                        : !strcmp(a, "--ip-adapter")        ? &o->paths.ip_adapter
                        : !strcmp(a, "--image-encoder")     ? &o->paths.image_encoder_dir
                        : !strcmp(a, "--prompt")            ? &o->gp.prompt
                        : !strcmp(a, "--prompt-2")          ? &o->gp.prompt_2
                        : !strcmp(a, "--negative-prompt")   ? &o->gp.negative_prompt
                        : !strcmp(a, "--negative-prompt-2") ? &o->gp.negative_prompt_2
                        : !strcmp(a, "--style-image")       ? &o->style_path
                        : !strcmp(a, "--style-blocks")      ? &o->gp.style_blocks
                        : !strcmp(a, "--content-prompt")    ? &o->gp.content_prompt
                        : !strcmp(a, "--out")               ? &o->out
                        : !strcmp(a, "--dump-tensors")      ? &o->gp.dump_tensors
                        : !strcmp(a, "--init-image")        ? &o->gp.init_image
                        : !strcmp(a, "--mask-image")        ? &o->gp.mask_image
                        : !strcmp(a, "--controlnet")        ? &o->paths.controlnet
                        : !strcmp(a, "--unet")              ? &o->paths.unet_file
                        : !strcmp(a, "--control-image")     ? &o->gp.control_image
                                                            : NULL;
    if (slot) *slot = v;
    return slot != NULL;
}

static is_error *set_value(is_gen_options *o, const char *a, const char *v) {
    is_generate_params *gp = &o->gp;
    if ((!strcmp(a, "--control-image") || !strcmp(a, "--control-canny")) && gp->control_image)
        return is_errorf(IS_E_ARGUMENT, "--control-image and --control-canny are two ways to give the one control image: "
                         "use one");
    if (set_text(o, a, v)) return NULL;
    if (!strcmp(a, "--ip-scale")) return is_arg_float(a, v, &gp->ip_scale);
    if (!strcmp(a, "--content-scale")) return is_arg_float(a, v, &gp->content_scale);
    if (!strcmp(a, "--width")) return set_side(a, v, &gp->width);
    if (!strcmp(a, "--height")) return set_side(a, v, &gp->height);
    if (!strcmp(a, "--steps")) return is_arg_int(a, v, -1000000, 1000000, &gp->steps);
    if (!strcmp(a, "--cfg")) return is_arg_float(a, v, &gp->cfg);
    if (!strcmp(a, "--guidance-rescale")) return is_arg_float(a, v, &gp->guidance_rescale);
    if (!strcmp(a, "--eta")) return is_arg_float(a, v, &gp->eta);
    if (!strcmp(a, "--seed")) return is_arg_u64(a, v, &gp->seed);
    if (!strcmp(a, "--original-size")) return is_arg_size(a, v, &gp->original_width, &gp->original_height);
    if (!strcmp(a, "--target-size")) return is_arg_size(a, v, &gp->target_width, &gp->target_height);
    if (!strcmp(a, "--crop-top")) return is_arg_int(a, v, 0, 1 << 20, &gp->crop_top);
    if (!strcmp(a, "--crop-left")) return is_arg_int(a, v, 0, 1 << 20, &gp->crop_left);
    if (!strcmp(a, "--threads")) return set_threads(v, o);
    if (!strcmp(a, "--preset")) return NULL; /* applied before the other options */
    if (!strcmp(a, "--strength")) return set_fraction(a, v, 0, &gp->strength);
    if (!strcmp(a, "--control-start")) return set_fraction(a, v, 1, &gp->control_start);
    if (!strcmp(a, "--ip-start")) return set_fraction(a, v, 1, &gp->ip_start);
    if (!strcmp(a, "--ip-end")) return set_fraction(a, v, 1, &gp->ip_end);
    if (!strcmp(a, "--control-end")) return set_fraction(a, v, 1, &gp->control_end);
    if (!strcmp(a, "--control-scale")) return is_arg_float(a, v, &gp->control_scale);
    if (!strcmp(a, "--canny-low")) return is_arg_double(a, v, &gp->canny_low);
    if (!strcmp(a, "--canny-high")) return is_arg_double(a, v, &gp->canny_high);
    if (!strcmp(a, "--control-canny")) {
        gp->control_image = v;
        gp->control_canny = 1;
        return NULL;
    }
    if (!strcmp(a, "--max-image-pixels")) return set_max_pixels(v);
    if (!strcmp(a, "--sampler")) return set_sampler(v, &gp->sampler);
    if (!strcmp(a, "--vae-tiling")) return set_tiling(v, &gp->vae_tiling);
    if (!strcmp(a, "--timestep-spacing")) {
        static const char *const names[] = {"leading", "trailing", "linspace", NULL};
        gp->timestep_spacing = v;
        return one_of(a, v, names, "leading, trailing or linspace");
    }
    if (!strcmp(a, "--prediction-type")) {
        static const char *const names[] = {"epsilon", "v_prediction", "sample", NULL};
        gp->prediction_type = v;
        return one_of(a, v, names, "epsilon, v_prediction or sample");
    }
    if (!strcmp(a, "--precision")) {
        is_arg_quoted q;
        if (is_precision_parse(v, &gp->precision) == 0) return NULL;
        return is_errorf(IS_E_ARGUMENT, "--precision: %s is not auto, f32 or bf16", is_arg_quote(v, &q));
    }
    return is_errorf(IS_E_INTERNAL, "option %s is listed but not handled", a);
}

static is_error *check_required(const is_gen_options *o) {
    if (!o->paths.model_dir) return is_errorf(IS_E_ARGUMENT, "--model DIR is required");
    if (!o->gp.prompt) return is_errorf(IS_E_ARGUMENT, "--prompt TEXT is required");
    if (o->style_path && !o->paths.ip_adapter) return is_errorf(IS_E_ARGUMENT, "--style-image needs --ip-adapter FILE");
    if (o->gp.control_image && !o->paths.controlnet)
        return is_errorf(IS_E_ARGUMENT, "--control-%s needs --controlnet DIR", o->gp.control_canny ? "canny" : "image");
    if (o->paths.controlnet && !o->gp.control_image)
        return is_errorf(IS_E_ARGUMENT, "--controlnet needs a control image (--control-image FILE or --control-canny FILE)");
    if (o->gp.strength >= 0 && !o->gp.init_image) return is_errorf(IS_E_ARGUMENT, "--strength needs --init-image FILE");
    if (o->gp.mask_image && !o->gp.init_image) return is_errorf(IS_E_ARGUMENT, "--mask-image needs --init-image FILE");
    if (o->gp.content_prompt && !o->style_path)
        return is_errorf(IS_E_ARGUMENT, "--content-prompt is subtracted from the style image: give --style-image too");
    return NULL;
}

is_error *is_gen_parse(int argc, char **argv, is_gen_options *o) {
    is_arg_seen seen = {{NULL}, 0};
    /* A preset first, wherever it stands: every option given explicitly overrides it. */
    for (int i = 1; i + 1 < argc; i++) {
        if (strcmp(argv[i], "--preset")) {
            if (takes_value(canonical(argv[i])) || !strcmp(argv[i], "--lora")) i++; /* skip its value */
            continue;
        }
        {
            is_arg_quoted q;
            is_error *e = is_generate_params_preset(&o->gp, argv[i + 1]);
            if (e) {
                is_error_free(e);
                char list[256] = "";
                for (int k = 0; is_preset_name(k); k++)
                    snprintf(list + strlen(list), sizeof list - strlen(list), "%s%s", k ? ", " : "", is_preset_name(k));
                return is_errorf(IS_E_ARGUMENT, "--preset: unknown value %s (expected one of %s)",
                                 is_arg_quote(argv[i + 1], &q), list);
            }
            break;
        }
    }
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = NULL, *name = canonical(argv[i]);
        is_arg_quoted q;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            o->help = 1;
            return NULL;
        }
        if (!strcmp(a, "--quiet") || !strcmp(a, "-q")) {
            o->quiet = 1;
        } else if (!strcmp(a, "--karras")) {
            o->gp.karras = 1;
        } else if (!strcmp(a, "--guess-mode")) {
            o->gp.guess_mode = 1;
        } else if (!strcmp(a, "--lora")) { /* repeatable: one per LoRA */
            IS_TRY(is_arg_value(argc, argv, &i, &v));
            IS_TRY(add_lora(o, v));
        } else if (!takes_value(name)) {
            return is_errorf(IS_E_ARGUMENT, "%s %s (see instantstyle generate --help)",
                             strncmp(a, "-", 1) ? "unexpected argument" : "unknown option", is_arg_quote(a, &q));
        } else {
            IS_TRY(is_arg_once(&seen, name, why_once(name)));
            IS_TRY(is_arg_value(argc, argv, &i, &v));
            IS_TRY(set_value(o, name, v));
        }
    }
    return check_required(o);
}
