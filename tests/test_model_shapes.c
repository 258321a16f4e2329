/* Models of other shapes than the tiny SDXL, written whole by the tiny-model generator (random weights,
 * each folder's config and weights consistent with each other): every one either generates, or is refused
 * with an error naming what does not fit. Two runs per model, in f32 and in bf16: text to image with a style image and a
 * ControlNet, and image to image with a style image (for an inpainting UNet both runs inpaint, with a mask). Under ASan this checks that a size read from one
 * model's config never meets a buffer sized from another's: a ControlNet's conditioning_channels and a
 * VAE's out_channels did (heap overflows), and so did a VAE whose scale is not the ControlNet's 8. */
#define _XOPEN_SOURCE 700 /* nftw */
#include <ftw.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/fileio.h"
#include "harness.h"
#include "instantstyle.h"
#include "tiny/tiny_model.h"

/* SDXL's wiring, recomputed after an edit of the text encoders' sizes. */
static void rewire(tm_spec *s) {
    s->unet.cross_attention_dim = s->text_encoder.hidden_size + s->text_encoder_2.hidden_size;
    s->unet.projection_class_embeddings_input_dim = s->text_encoder_2.projection_dim + 6 * s->unet.addition_time_embed_dim;
}

static void none(tm_spec *s) { (void)s; }
static void latents_8(tm_spec *s) { s->vae.latent_channels = s->unet.in_channels = s->unet.out_channels = 8; }
static void vae_scale_4(tm_spec *s) { s->vae.n_blocks = 3; }
static void vae_scale_16(tm_spec *s) {
    s->vae.n_blocks = 5;
    s->vae.block_out_channels[4] = 64;
}
static void vae_out_4(tm_spec *s) { s->vae.out_channels = 4; }
static void vae_in_1(tm_spec *s) { s->vae.in_channels = 1; }
static void control_1(tm_spec *s) { s->controlnet.conditioning_channels = 1; }
static void text_widths(tm_spec *s) {
    s->text_encoder.hidden_size = 48;
    s->text_encoder_2.hidden_size = 32;
    s->text_encoder_2.projection_dim = 40;
    rewire(s);
}
static void ip_tokens_16(tm_spec *s) { s->ip_tokens = 16; }
static void image_embeds_64(tm_spec *s) { s->image_encoder.projection_dim = 64; }
static void unet_2_levels(tm_spec *s) {
    s->unet.n_blocks = 2;
    s->unet.block_out_channels[1] = 64;
    s->unet.transformer_layers[1] = 2;
    s->unet.attention_head_dim[1] = 4;
}
static void image_channels_4(tm_spec *s) { s->image_encoder.num_channels = 4; }
static void pooled_mismatch(tm_spec *s) { s->text_encoder_2.projection_dim = 40; } /* the UNet keeps 48 */
static void cross_mismatch(tm_spec *s) { s->unet.cross_attention_dim += 16; }  /* the adapter's follows */
static void seq_100(tm_spec *s) { s->text_encoder.max_position_embeddings = s->text_encoder_2.max_position_embeddings = 100; }
static void vae_scale_1(tm_spec *s) { s->vae.n_blocks = 1; }
static void ip_tokens_1(tm_spec *s) { s->ip_tokens = 1; }
static void vision_64(tm_spec *s) { s->image_encoder.image_size = 64; } /* 2x2 patches */
/* SDXL takes the penultimate hidden states: with one layer, the embeddings' output */
static void text_1_layer(tm_spec *s) { s->text_encoder.num_hidden_layers = s->text_encoder_2.num_hidden_layers = 1; }
static void unet_1_layer(tm_spec *s) { s->unet.layers_per_block = 1; }
/* Every file's weights stored in one dtype (the loaders convert or pack each; bf16 packs from any of them) */
static void all_dtype(tm_spec *s, is_dtype t) {
    s->unet.dtype = s->vae.dtype = s->text_encoder.dtype = s->text_encoder_2.dtype = s->image_encoder.dtype = t;
    s->ip_dtype = t;
}
static void weights_f32(tm_spec *s) { all_dtype(s, IS_DT_F32); }
static void weights_bf16(tm_spec *s) { all_dtype(s, IS_DT_BF16); }
static void weights_f64(tm_spec *s) { all_dtype(s, IS_DT_F64); }
static void unet_f64(tm_spec *s) { s->unet.dtype = IS_DT_F64; } /* and the ControlNet's */
static void text_f64(tm_spec *s) { s->text_encoder.dtype = s->text_encoder_2.dtype = IS_DT_F64; }
static void image_encoder_f64(tm_spec *s) { s->image_encoder.dtype = IS_DT_F64; }
/* An inpainting UNet (latents, mask, masked-image latents in); the generator's ControlNet copies its conv_in. */
static void inpaint(tm_spec *s) { s->unet.in_channels = 9; }
static void inpaint_latents_8(tm_spec *s) {
    latents_8(s);
    s->unet.in_channels = 17;
}

typedef struct {
    const char *name;
    void (*edit)(tm_spec *);
    /* NULL: the run must work; ANY: it may work or fail (random shapes); else a text its error must contain */
    const char *control_run, *img2img_run;
} variant;
static const char ANY[] = "";

static const variant variants[] = {
    {"default", none, NULL, NULL},
    {"latents-8", latents_8, NULL, NULL},
    {"vae-scale-4", vae_scale_4, "the ControlNet's conditioning embedding", NULL},
    {"vae-scale-16", vae_scale_16, "the ControlNet's conditioning embedding", NULL},
    {"vae-out-4", vae_out_4, "out_channels 4: only RGB", "out_channels 4: only RGB"},
    {"vae-in-1", vae_in_1, "in_channels 1 / out_channels 3: only RGB", "in_channels 1 / out_channels 3: only RGB"},
    {"control-1", control_1, "conditioning_channels = 1", NULL},
    {"text-widths", text_widths, NULL, NULL},
    {"ip-tokens-16", ip_tokens_16, NULL, NULL},
    {"image-embeds-64", image_embeds_64, NULL, NULL},
    {"unet-2-levels", unet_2_levels, NULL, NULL},
    {"image-channels-4", image_channels_4, "num_channels is 4", "num_channels is 4"},
    {"pooled-mismatch", pooled_mismatch, "add_embedding expects pooled text embeddings of 48",
     "add_embedding expects pooled text embeddings of 48"},
    {"cross-mismatch", cross_mismatch, "cross_attention_dim 112 does not match the text encoders' 96",
     "cross_attention_dim 112 does not match the text encoders' 96"},
    {"seq-100", seq_100, NULL, NULL},
    {"vae-scale-1", vae_scale_1, "the VAE's latents are 1/1", NULL},
    {"ip-tokens-1", ip_tokens_1, NULL, NULL},
    {"vision-64", vision_64, NULL, NULL},
    {"text-1-layer", text_1_layer, NULL, NULL},
    {"unet-1-layer", unet_1_layer, NULL, NULL},
    {"weights-f32", weights_f32, NULL, NULL},
    {"weights-bf16", weights_bf16, NULL, NULL},
    {"weights-f64", weights_f64, "has dtype F64, expected F32, F16 or BF16", "has dtype F64, expected F32, F16 or BF16"},
    {"unet-f64", unet_f64, "F64", "F64"},
    {"text-f64", text_f64, NULL, NULL}, /* the CLIP encoders convert F64; the UNet, VAE and adapter refuse it */
    {"image-encoder-f64", image_encoder_f64, NULL, NULL},
    {"inpaint", inpaint, "in_channels: the ControlNet takes 9 latent channels, the UNet's latents have 4", NULL},
    {"inpaint-latents-8", inpaint_latents_8, "the ControlNet takes 17 latent channels, the UNet's latents have 8", NULL},
};

/* A 64x64 test pattern (every channel varies; seed 2: a mask, its left half white), kept for the process. */
static is_image pattern(int seed) {
    static uint8_t px[3][64 * 64 * 3];
    for (int i = 0; i < 64 * 64 * 3; i++)
        px[seed][i] = seed == 2 ? (i / 3 % 64 < 32 ? 255 : 0) : (uint8_t)((i * (7 + 4 * seed) + i / 192 * 13) & 255);
    return (is_image){64, 64, px[seed]};
}

/* One generation on the model in dir (spec s); checks the outcome against `refused` (see variant). */
static void run(const char *dir, const variant *v, const tm_spec *s, int control, is_precision precision) {
    char what[128];
    snprintf(what, sizeof what, "%s, %s, %s", v->name, control ? "text to image with a ControlNet" : "image to image",
             is_precision_name(precision));
    const char *refused = control ? v->control_run : v->img2img_run;
    printf("%s: %s\n", what, refused == ANY ? "works or is refused" : refused ? refused : "works");
    char *sdxl = is_path_join(dir, "sdxl"), *ip = is_path_join(dir, "ip-adapter/ip-adapter_sdxl.safetensors");
    char *cn = is_path_join(dir, "controlnet");
    is_pipeline_params pp;
    is_pipeline_params_init(&pp);
    pp.model_dir = sdxl;
    pp.ip_adapter = ip;
    pp.controlnet = control ? cn : NULL;
    is_pipeline *p = NULL;
    is_image_result r = {0};
    is_error *e = is_pipeline_load(&pp, &p);
    if (!e) {
        is_generate_params g;
        is_generate_params_init(&g);
        is_image style = pattern(0), photo = pattern(1), mask = pattern(2);
        g.prompt = "a cat";
        g.style_rgb = &style;
        g.width = g.height = 64;
        g.steps = 2;
        g.seed = 3;
        g.precision = precision;
        if (refused == ANY) g.style_blocks = "all"; /* "style" needs up_blocks.0.attentions.1, which few random UNets have */
        const int inpainting = s->unet.in_channels != s->unet.out_channels; /* needs init image and mask */
        if (control) g.control_rgb = &photo;
        if (!control || inpainting) {
            g.init_rgb = &photo;
            g.strength = 0.5;
        }
        if (inpainting) g.mask_rgb = &mask;
        e = is_generate(p, &g, &r);
    }
    if (refused == ANY && e) {
        printf("  refused: %s\n", is_error_message(e));
        th_check(is_error_message(e)[0] != 0, "%s: an error with a message", what);
        is_error_free(e);
    } else if (refused && refused != ANY) {
        th_fails(e, refused, what);
    } else if (th_ok(e, what)) {
        int finite = r.width == 64 && r.height == 64 && r.image;
        for (int i = 0; finite && i < 3 * 64 * 64; i++) finite = isfinite(r.image[i]) && r.image[i] >= 0 && r.image[i] <= 1;
        th_check(finite, "%s: a 64x64 image with pixels in 0..1", what);
    }
    is_image_result_free(&r);
    is_pipeline_free(p);
    free(sdxl), free(ip), free(cn);
}

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *f) {
    (void)st, (void)flag, (void)f;
    return remove(path);
}
static void remove_tree(const char *dir) { nftw(dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS); }

/* ---- random shapes: each size drawn from what the generator can write; pairs may not fit (an error then) */
static uint64_t rng_state;
static int pick(int n) { /* splitmix64, 0..n-1 */
    uint64_t z = (rng_state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return (int)((z ^ (z >> 31)) % (uint64_t)n);
}
static void random_spec(tm_spec *s) {
    static const int widths[] = {32, 48, 64}, projections[] = {32, 48, 64}, positions[] = {77, 77, 100};
    const int latents = 1 + pick(8);
    s->vae.latent_channels = latents;
    s->vae.n_blocks = pick(3) ? 4 : 1 + pick(5); /* mostly scale 8, which ControlNets need */
    for (int i = 0; i < s->vae.n_blocks; i++) s->vae.block_out_channels[i] = 32 * (1 + pick(2));
    s->vae.layers_per_block = 1 + pick(2);
    s->unet.n_blocks = 1 + pick(3);
    for (int i = 0; i < s->unet.n_blocks; i++) {
        s->unet.block_out_channels[i] = 32 * (1 + pick(2));
        s->unet.cross_attn[i] = pick(3) > 0;
        s->unet.transformer_layers[i] = 1 + pick(2);
        s->unet.attention_head_dim[i] = 1 << pick(3);
    }
    s->unet.layers_per_block = 1 + pick(2);
    s->unet.out_channels = pick(8) ? latents : 1 + pick(8);
    s->unet.in_channels = pick(4) ? s->unet.out_channels : 2 * s->unet.out_channels + 1; /* inpainting */
    s->text_encoder.hidden_size = widths[pick(3)];
    s->text_encoder_2.hidden_size = widths[pick(3)];
    s->text_encoder.num_hidden_layers = 1 + pick(3);
    s->text_encoder_2.num_hidden_layers = 1 + pick(3);
    s->text_encoder_2.projection_dim = projections[pick(3)];
    s->text_encoder.max_position_embeddings = s->text_encoder_2.max_position_embeddings = positions[pick(3)];
    if (!pick(8)) s->text_encoder_2.max_position_embeddings = 77 + pick(40);
    s->image_encoder.hidden_size = widths[pick(3)];
    s->image_encoder.projection_dim = projections[pick(3)];
    s->image_encoder.image_size = pick(2) ? 224 : 64;
    s->ip_tokens = 1 + pick(16);
    s->controlnet.conditioning_channels = pick(6) ? 3 : 1 + pick(4);
    rewire(s);
    if (!pick(8)) s->unet.cross_attention_dim += 16;
    if (!pick(8)) s->unet.projection_class_embeddings_input_dim += 8;
}

int main(void) {
    setvbuf(stdout, NULL, _IOLBF, 0); /* each line out before a sanitizer report */
    /* IS_SHAPES_RANDOM=N runs N random shapes instead of the suite's 6 (a longer hunt, as in docs/LIMITS.md) */
    const char *env = getenv("IS_SHAPES_RANDOM");
    const int n_random = env ? atoi(env) : 6, n_fixed = (int)(sizeof variants / sizeof *variants);
    for (int i = 0; i < n_fixed + n_random; i++) {
        char name[32];
        variant rv = {name, random_spec, ANY, ANY};
        const variant *v = i < n_fixed ? &variants[i] : &rv;
        tm_spec spec;
        tm_spec_default(&spec);
        if (i >= n_fixed) {
            snprintf(name, sizeof name, "random-%d", i - n_fixed);
            rng_state = 0x5eed0000u + (uint64_t)(i - n_fixed);
        }
        v->edit(&spec);
        char *dir = is_path_join(th_tmpdir(), "model-shapes");
        char *sub = is_path_join(dir, v->name);
        if (th_ok(tm_write_all(sub, &spec, 11), v->name)) {
            for (int k = 0; k < 4; k++) /* bf16 runs in f32 where the CPU has no bf16 */
                run(sub, v, &spec, k & 1, k < 2 ? IS_PRECISION_F32 : IS_PRECISION_BF16);
        }
        if (i >= n_fixed) remove_tree(sub); /* a long hunt would fill the disk */
        free(sub);
        free(dir);
    }
    return th_done();
}
