/* is_generate's stages, shared by the generate_*.c files: one generation's state and the stage functions
 * in the order run() calls them (generate.c reads top to bottom):
 *   inputs  (generate_inputs.c):  decode the init / mask / control images, decide the size, preprocess
 *   text, style, UNet             (generate.c)
 *   control (generate_control.c): the ControlNet, its guidance window and residuals per step
 *   latents (generate_latents.c): start latents (noise, or the init image encoded and noised), the
 *                                 inpainting mask latents, the 4-channel inpainting blend after each step
 *   denoise, decode               (generate.c) */
#ifndef IS_PIPELINE_GENERATE_INTERNAL_H
#define IS_PIPELINE_GENERATE_INTERNAL_H

#include "pipeline/pipeline_internal.h"

typedef enum { GEN_TXT2IMG, GEN_IMG2IMG, GEN_INPAINT } gen_mode;

/* Everything one generation allocates, freed in one place (gen_state_free). */
typedef struct {
    is_precision precision;     /* resolved: F32 or BF16 */
    gen_mode mode;
    int width, height;          /* output size */
    int cfg_on, batch;          /* batch = 2 with classifier-free guidance (negative first) */
    int seq, dim, pooled_dim;   /* text conditioning sizes */
    int lc, lh, lw;             /* latent channels and size */
    int64_t latent_n;           /* lc*lh*lw */
    int unet_in;                /* UNet input channels: lc, or 2*lc+1 for an inpainting UNet */
    float *text_states;         /* [batch, seq, dim] */
    float *text_pooled;         /* [batch, pooled_dim] */
    float time_ids[2 * 6];
    int have_ip, ip_tokens_n, cross_dim, embed_dim;
    float *ip_embeds;           /* [batch, embed_dim] (row 0 zeros with CFG) */
    float *ip_tokens;           /* [batch, tokens, cross_dim] */
    float *latents, *latent_in, *unet_out, *guided;
    float *unet_out_steps, *noise_pred_steps, *latents_steps, *timesteps; /* dump only */
    float *image;
    uint8_t *rgb;
    float *x0;                  /* the sampler's latest x0 prediction [lc, lh, lw] (previews, early stops) */
    int steps_done;             /* denoising steps run so far */
    uint8_t *preview_rgb;       /* [lh, lw, 3] */

    /* img2img / inpainting */
    double strength;            /* resolved (mode default applied) */
    int begin, steps_run;       /* first scheduler step and how many run */
    float *init_image;          /* [3, H, W] in [-1, 1] */
    float *mask;                /* [H, W], 1 = repaint */
    float *image_latents;       /* [lc, lh, lw]: scaling_factor * posterior sample of the init image */
    float *noise;               /* [lc, lh, lw]: the noise added to image_latents */
    float *mask_latents;        /* [lh, lw]: nearest-neighbour mask */
    float *masked_latents;      /* [lc, lh, lw]: inpainting UNet: the masked image's latents */
    float *step_out_steps;      /* dump, 4-channel inpainting: latents after each step, before the blend */
    float *proper;              /* 4-channel inpainting: the init latents noised to the next timestep */

    /* ControlNet */
    int control_on, batch_c;    /* batch_c: ControlNet batch (1 in guess mode with CFG) */
    float *control;             /* [batch_c, 3, H, W] in [0, 1] */
    float *ctrl_in;             /* [batch_c, lc, lh, lw] scaled latents */
    float *ctrl_down, *ctrl_mid; /* the ControlNet's residuals for batch_c */
    float *res_down, *res_mid;  /* for the UNet batch (guess mode with CFG: zeros for the negative half) */
    int64_t down_floats, mid_floats; /* per batch item */
    double *ctrl_scale;         /* per step run: control_scale * keep_i */
    float *ctrl_mid_steps;      /* dump: [steps_run, batch, mid] */
    float *ctrl_first_down;     /* dump: the UNet's down residuals at the first step in the window */
    int ctrl_first_active;

    is_sdxl_text *text;
    is_image_encoder *image_encoder;
    is_unet *unet;
    is_vae *vae;
    is_controlnet *controlnet;
    is_scheduler *sched;
    is_pipeline *p;             /* networks equal to p->kept's belong to the pipeline, not to s */
    is_image style_file;        /* gp->style_image, decoded before any network is loaded */
    is_image init_file, mask_file, control_file; /* gp->init_image etc. when given as paths */
    const is_image *init_px, *mask_px, *control_px; /* the file's pixels or the caller's */
} gen_state;

/* generate.c */
void gen_log(const is_generate_params *gp, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
double gen_now(void);

/* A network for this generation: the pipeline's kept one, or a new one (kept when the pipeline keeps
 * its networks, else owned by the generation and released after its stage). `load` opens it. */
#define GEN_ACQUIRE(gp, p, s, field, what, load)                                                                  \
    do {                                                                                                           \
        if ((s)->field) {                                                                                          \
            /* acquired by an earlier stage of this generation */                                                  \
        } else if ((p)->kept.field) {                                                                              \
            (s)->field = (p)->kept.field;                                                                          \
            gen_log(gp, "%s: kept loaded", what);                                                                 \
        } else {                                                                                                   \
            double t_ = gen_now();                                                                                 \
            IS_TRY(load);                                                                                          \
            if ((p)->memory == IS_MEMORY_KEEP) (p)->kept.field = (s)->field;                                       \
            gen_log(gp, "%s: loaded in %.2f s", what, gen_now() - t_);                                            \
        }                                                                                                          \
    } while (0)

/* End of a network's stage: a network the generation owns is released now (LOW mode). */
#define GEN_RELEASE(s, field, free_fn)                                                                             \
    do {                                                                                                           \
        if ((s)->field != (s)->p->kept.field) free_fn((s)->field);                                                \
        (s)->field = NULL;                                                                                         \
    } while (0)

/* generate_inputs.c: checks of the image options, decoding of the images (before any network), and
 * after the VAE fixed the latent scale: the output size and the preprocessed init / mask / control
 * tensors. */
is_error *gen_check_image_params(const is_pipeline *p, const is_generate_params *gp);
is_error *gen_decode_images(const is_generate_params *gp, gen_state *s, is_dump *d);
is_error *gen_decide_size(const is_pipeline *p, const is_generate_params *gp, int vae_scale, gen_state *s);
is_error *gen_preprocess_images(const is_generate_params *gp, gen_state *s, is_dump *d);
/* strength -> the first step and the number of steps run (scheduler timesteps already set). */
is_error *gen_apply_strength(const is_generate_params *gp, gen_state *s);

/* generate_latents.c: the start latents in s->latents (RNG draws in diffusers' order) and, for
 * inpainting, mask and masked-image latents. Uses s->vae (encoder) and s->sched. */
is_error *gen_prepare_latents(const is_generate_params *gp, gen_state *s, is_torch_rng *rng, is_dump *d);
/* The UNet input of step i for every batch item: scaled latents (+ mask and masked-image latents). */
void gen_unet_input(gen_state *s, int step);
/* 4-channel inpainting, after scheduler step j (0-based among the steps run): re-noise the init image's
 * latents to the next timestep and keep them outside the mask. */
is_error *gen_inpaint_blend(gen_state *s, int j);

/* generate_preview.c: the x0 capture (for live previews and IS_CANCEL_KEEP_PARTIAL) and the preview buffer
 * before the loop, then one preview image per step (no allocation). */
is_error *gen_preview_prepare(const is_generate_params *gp, gen_state *s);
void gen_preview_step(const is_generate_params *gp, gen_state *s, int step, int total);

/* generate_lora.c: the LoRA list checked (files exist, weights finite) and merged into each network after
 * it is acquired and before it is packed; kept networks are re-merged only when the list changed. */
is_error *gen_check_loras(const is_generate_params *gp);
is_error *gen_text_loras(const is_generate_params *gp, gen_state *s);
is_error *gen_unet_loras(const is_generate_params *gp, gen_state *s);

/* generate_control.c */
is_error *gen_control_check(is_pipeline *p, const is_generate_params *gp, gen_state *s);
is_error *gen_control_prepare(const is_generate_params *gp, gen_state *s, int dumping);
/* ControlNet of step j: sets *down / *mid to the UNet residuals, or NULL outside the guidance window. */
is_error *gen_control_step(const is_generate_params *gp, gen_state *s, int j, const float **down, const float **mid);
is_error *gen_control_dump(gen_state *s, is_dump *d);

#endif
