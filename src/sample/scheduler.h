/* diffusers 0.30.3 schedulers: shared state, training tables and spacing helpers (scheduler_common.c),
 * one file per sampler (scheduler_euler.c, scheduler_euler_a.c, scheduler_ddim.c, scheduler_dpmpp.c,
 * scheduler_lcm.c, scheduler_tcd.c).
 * Tables and schedule scalars are computed in double and stored as float32 where diffusers holds float32
 * tensors; the per-element updates are float32 in diffusers' operation order. */
#ifndef IS_SAMPLE_SCHEDULER_H
#define IS_SAMPLE_SCHEDULER_H

#include <stdint.h>

#include "core/error.h"

typedef enum { IS_SPACING_LEADING, IS_SPACING_TRAILING, IS_SPACING_LINSPACE } is_spacing;
typedef enum { IS_PRED_EPSILON, IS_PRED_V, IS_PRED_SAMPLE } is_prediction;

struct is_scheduler {
    is_sampler kind;
    char name[32];
    char *config_path;

    /* configuration (diffusers' from_config + class defaults) */
    int T;                 /* num_train_timesteps */
    int steps_offset;
    is_spacing spacing;
    int karras;            /* use_karras_sigmas (Euler, DPM++) */
    is_prediction prediction;
    int set_alpha_to_one;  /* DDIM */
    int clip_sample;       /* DDIM, LCM */
    float clip_sample_range;
    float eta;             /* DDIM eta, TCD gamma */
    int original_steps;    /* LCM / TCD original_inference_steps */
    double timestep_scaling; /* LCM boundary condition */
    double sigma_min_cfg, sigma_max_cfg; /* Euler config sigma_min / sigma_max (< 0: None) */
    int solver_order;      /* DPM++: 1 or 2 */
    int solver_heun;       /* DPM++ solver_type "heun" (else midpoint) */
    int lower_order_final, euler_at_final;
    double lambda_min_clipped;

    /* training tables (float32 like diffusers), T entries each */
    float *betas, *alphas_cumprod, *train_sigmas;
    float *log_sigmas;     /* numpy float32 log of train_sigmas */

    /* schedule from set_timesteps: n timesteps, n+1 sigmas */
    int requested_steps;   /* the N given to set_timesteps */
    int n;
    float *timesteps;      /* float32 values (integers for DDIM / DPM++) */
    int64_t *timesteps_i;  /* int64 values (DDIM / DPM++) */
    float *sigmas;         /* Euler, Euler a, DPM++ */
    float init_noise_sigma;
    /* per-step values kept for inspection (tests): Euler a sigma_up/down, DDIM / LCM / TCD alpha_prod_t(_prev),
     * LCM c_skip / c_out, TCD alpha_prod_s and timestep_s (set by each step: they depend on gamma),
     * DPM++ solver order used */
    float *step_a, *step_b, *step_c, *step_d;
    int64_t *step_s;
    int *step_order;
    /* when set, each step also writes its x0 prediction there (every sampler: tests, live previews) and
     * its second output (LCM denoised, TCD pred_noised_sample: tests) */
    float *capture_x0, *capture_second;

    /* step state */
    int next_step;         /* steps run in order */
    int begin;             /* first step run (img2img / inpainting start part-way: set_begin_index) */
    int64_t step_n;        /* sample size of the first step (every step must match) */
    int lower_order_nums;  /* DPM++ */
    int64_t cap;           /* floats in each per-sample buffer below */
    float *noise;          /* ancestral noise draw */
    float *m_prev, *m_cur; /* DPM++ x0 predictions of the previous / current step */
};

/* Training tables from the config (betas, alphas_cumprod, train_sigmas, log_sigmas). */
is_error *is_sched_build_tables(struct is_scheduler *s, const char *beta_schedule, double beta_start,
                                double beta_end, const float *trained_betas);
/* (Re)allocate the schedule arrays for n timesteps. */
is_error *is_sched_alloc_schedule(struct is_scheduler *s, int n);
/* Make sure the per-sample buffers hold n floats. */
is_error *is_sched_reserve_buffers(struct is_scheduler *s, int64_t n);

/* numpy np.arange(start, stop, step) for float arguments (count and fill rule of numpy); returns the
 * count, writes up to max values. */
int is_np_arange(double start, double stop, double step, double *out, int max);
/* numpy np.linspace(start, stop, num) in double. */
void is_np_linspace(double start, double stop, int num, double *out);
/* np.interp(x, [0..T-1], table) in double. */
double is_sched_interp(const struct is_scheduler *s, double x);
/* Karras et al. rho = 7 ramp from sigma_max to sigma_min in n steps (double). */
void is_sched_karras(double sigma_min, double sigma_max, int n, double *out);
/* diffusers _sigma_to_t: fractional training timestep of a sigma (log-linear interpolation). */
double is_sched_sigma_to_t(const struct is_scheduler *s, double sigma);
/* Error when the first timestep repeats (diffusers would then start at the second occurrence). */
is_error *is_sched_check_first_unique(const struct is_scheduler *s);

/* Euler / Euler a spacing: float32 timesteps into t (tmp: N+2 doubles of scratch); returns the count,
 * which trailing spacing can make N+1. */
int is_sched_euler_timesteps(const struct is_scheduler *s, int N, double *tmp, float *t);
/* Euler / Euler a init_noise_sigma from the float32 sigmas: max, or sqrt(max^2 + 1) for leading. */
float is_sched_euler_init_sigma(const struct is_scheduler *s);

/* Per-sampler set_timesteps / step. */
is_error *is_sched_euler_set_timesteps(struct is_scheduler *s, int steps);
is_error *is_sched_euler_step(struct is_scheduler *s, int i, const float *eps, float *x, int64_t n,
                              is_torch_rng *g);
is_error *is_sched_euler_a_set_timesteps(struct is_scheduler *s, int steps);
is_error *is_sched_euler_a_step(struct is_scheduler *s, int i, const float *eps, float *x, int64_t n,
                                is_torch_rng *g);
is_error *is_sched_ddim_set_timesteps(struct is_scheduler *s, int steps);
is_error *is_sched_ddim_step(struct is_scheduler *s, int i, const float *eps, float *x, int64_t n,
                             is_torch_rng *g);
is_error *is_sched_dpmpp_set_timesteps(struct is_scheduler *s, int steps);
is_error *is_sched_dpmpp_step(struct is_scheduler *s, int i, const float *eps, float *x, int64_t n);
/* LCM's schedule (TCD uses it too): origin timesteps k*j - 1 (k = T // original_steps), N picked evenly by index. */
is_error *is_sched_lcm_timesteps(struct is_scheduler *s, int steps);
is_error *is_sched_lcm_set_timesteps(struct is_scheduler *s, int steps);
is_error *is_sched_lcm_step(struct is_scheduler *s, int i, const float *eps, float *x, int64_t n, is_torch_rng *g);
is_error *is_sched_tcd_set_timesteps(struct is_scheduler *s, int steps);
is_error *is_sched_tcd_step(struct is_scheduler *s, int i, const float *eps, float *x, int64_t n, is_torch_rng *g);
/* Whether a sampler kind supports a prediction type (diffusers' step accepts it). */
int is_sched_supports_prediction(is_sampler kind, is_prediction p);

/* The x0 and eps predictions of a VP-form model output at alphas_cumprod a (sqrt_a = sqrt(a), sqrt_b =
 * sqrt(1 - a)), as diffusers' DDIM / LCM / TCD steps compute them: float32 op by op (the including sampler
 * files turn fp-contract off). */
static inline void is_sched_vp_predict(is_prediction pr, float sqrt_a, float sqrt_b, float x, float out, float *x0,
                                       float *eps) {
    if (pr == IS_PRED_EPSILON) {
        float be = sqrt_b * out;
        *x0 = (x - be) / sqrt_a;
        *eps = out;
    } else if (pr == IS_PRED_SAMPLE) {
        float ap = sqrt_a * out;
        *x0 = out;
        *eps = (x - ap) / sqrt_b;
    } else { /* v_prediction */
        float ax = sqrt_a * x, be = sqrt_b * out, ae = sqrt_a * out, bx = sqrt_b * x;
        *x0 = ax - be;
        *eps = ae + bx;
    }
}

/* Inspection for tests (NULL / 0 when the sampler has no such values). */
const float *is_scheduler_sigmas(const is_scheduler *s);          /* n+1 values */
const int64_t *is_scheduler_timesteps_int(const is_scheduler *s); /* DDIM / DPM++ */
/* 0: sigma_up / alpha_prod_t, 1: sigma_down / alpha_prod_t_prev, 2: LCM c_skip / TCD alpha_prod_s, 3: LCM c_out */
const float *is_scheduler_step_values(const is_scheduler *s, int which);
const int64_t *is_scheduler_timesteps_s(const is_scheduler *s); /* TCD timestep_s of each step taken */
/* Tests: x0 (n floats or NULL) and second (LCM denoised / TCD pred_noised_sample, n floats or NULL) of
 * every following step. */
void is_scheduler_capture(is_scheduler *s, float *x0, float *second);
const int *is_scheduler_solver_orders(const is_scheduler *s);
const float *is_scheduler_table(const is_scheduler *s, int which); /* 0 betas, 1 alphas_cumprod, 2 train_sigmas */
float is_scheduler_scale_divisor(const is_scheduler *s, int i);
/* Unbiased (n-1) standard deviation accumulated in double, as torch.std on CPU; returned as float32. */
float is_std_unbiased(const float *x, int64_t n);

#endif
