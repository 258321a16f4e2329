/* Image decode (PNG/JPEG as Pillow 9.4), CLIPImageProcessor (Pillow bicubic resize, centre crop,
 * normalise) and CLIPVisionModelWithProjection against cases/image_encoder, plus error paths. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/fileio.h"
#include "core/safetensors.h"
#include "harness.h"
#include "kernels/dnn.h"
#include "vision/clip_preprocess.h"
#include "vision/clip_vision.h"
#include "vision/image.h"

#define GROUP "image_encoder"

static int json_int_at(const cJSON *c, const char *key, int i) {
    const cJSON *a = cJSON_GetObjectItemCaseSensitive(c, key);
    const cJSON *v = cJSON_GetArrayItem(a, i);
    return cJSON_IsNumber(v) ? (int)v->valuedouble : -1;
}

static long long json_ll_at(const cJSON *c, const char *key, int i) {
    const cJSON *v = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(c, key), i);
    return cJSON_IsNumber(v) ? (long long)v->valuedouble : -1;
}

static void check_channel_sums(const char *name, const char *key, const cJSON *c, const uint8_t *rgb, size_t n_px) {
    long long sum[3] = {0, 0, 0};
    for (size_t i = 0; i < n_px; i++)
        for (int ch = 0; ch < 3; ch++) sum[ch] += rgb[3 * i + ch];
    for (int ch = 0; ch < 3; ch++)
        th_check(sum[ch] == json_ll_at(c, key, ch), "%s: %s[%d] = %lld, expected %lld", name, key, ch, sum[ch],
                 json_ll_at(c, key, ch));
}

/* pixel_values [3,S,S] -> every 14th row/column, and the means of 8x8 blocks. */
static void compare_pixels(const char *name, const cJSON *c, const is_st *exp, const float *pv, int S) {
    char what[160];
    double atol, rtol;
    int n14 = (S + 13) / 14, n8 = S / 8;
    float *sub = malloc(sizeof(float) * 3 * n14 * n14), *pool = malloc(sizeof(float) * 3 * n8 * n8);
    for (int ch = 0; ch < 3; ch++) {
        const float *p = pv + (size_t)ch * S * S;
        for (int y = 0; y < n14; y++)
            for (int x = 0; x < n14; x++) sub[(ch * n14 + y) * n14 + x] = p[(size_t)(14 * y) * S + 14 * x];
        for (int by = 0; by < n8; by++)
            for (int bx = 0; bx < n8; bx++) {
                double s = 0;
                for (int y = 0; y < 8; y++)
                    for (int x = 0; x < 8; x++) s += p[(size_t)(8 * by + y) * S + 8 * bx + x];
                pool[(ch * n8 + by) * n8 + bx] = (float)(s / 64.0);
            }
    }
    th_tolerance(c, "pixel_values_sub14", &atol, &rtol);
    snprintf(what, sizeof what, "%s pixel_values_sub14", name);
    th_close(what, sub, (size_t)3 * n14 * n14, th_tensor(exp, "pixel_values_sub14"), atol, rtol);
    th_tolerance(c, "pixel_values_pool8", &atol, &rtol);
    snprintf(what, sizeof what, "%s pixel_values_pool8", name);
    th_close(what, pool, (size_t)3 * n8 * n8, th_tensor(exp, "pixel_values_pool8"), atol, rtol);
    free(sub);
    free(pool);
}

static int g_bf16;    /* compare the encoder outputs with the bf16 tolerances (docs/PRECISION.md) */
static int g_measure; /* only measure (simulated bugs): the worst excess over the bf16 limits */
static double g_worst;
static char g_worst_name[64];

static void compare_encoder(const char *name, const cJSON *c, const is_st *exp, is_image_encoder *enc,
                            const float *pv) {
    int N = is_image_encoder_num_tokens(enc), D = is_image_encoder_hidden_size(enc);
    int E = is_image_encoder_projection_dim(enc);
    float *embeds = malloc(sizeof(float) * E), *pen = malloc(sizeof(float) * N * D), *last = malloc(sizeof(float) * N * D);
    float *embeds2 = malloc(sizeof(float) * E), *pen2 = malloc(sizeof(float) * N * D);
    char what[160];
    double atol, rtol;
    if (th_ok(is_clip_vision_forward(enc, pv, embeds, pen, last), name)) {
        const char *names[3] = {"image_embeds", "last_hidden_state", "penultimate_hidden_state"};
        const float *got[3] = {embeds, last, pen};
        size_t n[3] = {(size_t)E, (size_t)N * D, (size_t)N * D};
        for (int i = 0; i < 3; i++) {
            th_tolerance(c, names[i], &atol, &rtol);
            snprintf(what, sizeof what, "%s%s %s", name, g_bf16 ? " [bf16]" : "", names[i]);
            if (g_measure) {
                double x = th_bf16_excess(got[i], n[i], th_tensor(exp, names[i]), th_bf16_tolerance(GROUP, names[i]), atol);
                if (x > g_worst) g_worst = x, snprintf(g_worst_name, sizeof g_worst_name, "%s", names[i]);
                continue;
            }
            double rel = g_bf16 ? th_bf16_tolerance(GROUP, names[i]) : 0;
            if (rel > 0) th_close_rel(what, got[i], n[i], th_tensor(exp, names[i]), rel, TH_BF16_MAX_RMS, atol);
            else th_close(what, got[i], n[i], th_tensor(exp, names[i]), atol, rtol);
        }
        /* The public entry point gives the same numbers. */
        if (th_ok(is_image_encoder_forward(enc, pv, embeds2, pen2), "public forward"))
            th_check(!memcmp(embeds, embeds2, sizeof(float) * E) && !memcmp(pen, pen2, sizeof(float) * N * D),
                     "%s: is_image_encoder_forward matches the full forward", name);
    }
    free(embeds);
    free(pen);
    free(last);
    free(embeds2);
    free(pen2);
}

static void run_image_case(const cJSON *c, is_image_encoder *enc, const is_st *exp) {
    const char *name = cJSON_GetObjectItemCaseSensitive(c, "name")->valuestring;
    char *path = th_golden_path(cJSON_GetObjectItemCaseSensitive(c, "image")->valuestring);
    is_image img;
    is_image_info info;
    if (!th_ok(is_image_load_info(path, &img, &info), path)) {
        free(path);
        return;
    }
    const char *mode = cJSON_GetObjectItemCaseSensitive(c, "decoded_mode")->valuestring;
    th_check(!strcmp(info.mode, mode), "%s: decoded mode %s, expected %s", name, info.mode, mode);
    th_check(img.width == json_int_at(c, "decoded_size_wh", 0) && img.height == json_int_at(c, "decoded_size_wh", 1),
             "%s: decoded size %dx%d", name, img.width, img.height);
    check_channel_sums(name, "rgb_u8_channel_sums", c, img.rgb, (size_t)img.width * img.height);

    const is_clip_preproc *pp = is_image_encoder_preproc(enc);
    int S = is_image_encoder_image_size(enc);
    is_clip_geometry g;
    if (th_ok(is_clip_geometry_of(pp, img.width, img.height, &g), "geometry")) {
        th_check(g.resize_w == json_int_at(c, "resize_wh", 0) && g.resize_h == json_int_at(c, "resize_wh", 1),
                 "%s: resize to %dx%d, expected %dx%d", name, g.resize_w, g.resize_h, json_int_at(c, "resize_wh", 0),
                 json_int_at(c, "resize_wh", 1));
        th_check(g.crop_top == json_int_at(c, "crop_top_left", 0) && g.crop_left == json_int_at(c, "crop_top_left", 1),
                 "%s: crop at top %d left %d", name, g.crop_top, g.crop_left);
        uint8_t *crop = malloc((size_t)g.out_w * g.out_h * 3);
        if (th_ok(is_clip_resize_crop_u8(pp, &img, &g, crop), "resize+crop"))
            check_channel_sums(name, "crop_u8_channel_sums", c, crop, (size_t)g.out_w * g.out_h);
        free(crop);
    }
    float *pv = malloc(sizeof(float) * 3 * S * S);
    if (th_ok(is_image_preprocess(enc, &img, pv), "preprocess")) {
        compare_pixels(name, c, exp, pv, S);
        compare_encoder(name, c, exp, enc, pv);
    }
    free(pv);
    is_image_free(&img);
    free(path);
}

static void run_golden_cases(is_image_encoder *enc) {
    cJSON *cases = th_load_cases(GROUP);
    const cJSON *c;
    int n = 0;
    cJSON_ArrayForEach(c, cJSON_GetObjectItemCaseSensitive(cases, "cases")) {
        const char *name = cJSON_GetObjectItemCaseSensitive(c, "name")->valuestring;
        is_st *exp = th_open_expected(GROUP, cJSON_GetObjectItemCaseSensitive(c, "expected")->valuestring);
        if (!exp) continue;
        printf("case %s\n", name);
        if (cJSON_GetObjectItemCaseSensitive(c, "image")) {
            run_image_case(c, enc, exp);
        } else { /* zeros: encoder only */
            int S = is_image_encoder_image_size(enc);
            float *pv = calloc((size_t)3 * S * S, sizeof(float));
            compare_encoder(name, c, exp, enc, pv);
            free(pv);
        }
        is_st_close(exp);
        n++;
    }
    th_check(n == 13, "ran %d golden cases, expected 13", n);
    cJSON_Delete(cases);
}

/* ------------------------------------------------------------------ error paths */

static char *write_tmp(const char *name, const void *data, size_t n) {
    char *path = is_path_join(th_tmpdir(), name);
    FILE *fp = fopen(path, "wb");
    if (n) fwrite(data, 1, n, fp);
    fclose(fp);
    return path;
}

static void expect_load_error(const char *name, const void *data, size_t n, const char *needle) {
    char *path = write_tmp(name, data, n);
    is_image img = {1, 1, (uint8_t *)&img}; /* must be reset on failure */
    th_fails(is_image_load(path, &img), needle, name);
    th_check(img.rgb == NULL && img.width == 0, "%s: no image on failure", name);
    free(path);
}

static char *golden_bytes(const char *rel, size_t *n) {
    char *path = th_golden_path(rel), *data = NULL;
    th_ok(is_read_file(path, 1u << 24, &data, n), rel);
    free(path);
    return data;
}

static uint32_t crc32_of(const uint8_t *p, size_t n) {
    uint32_t c = 0xFFFFFFFFu;
    for (size_t i = 0; i < n; i++) {
        c ^= p[i];
        for (int k = 0; k < 8; k++) c = (c >> 1) ^ (0xEDB88320u & (0u - (c & 1)));
    }
    return c ^ 0xFFFFFFFFu;
}

static size_t put_chunk(uint8_t *dst, const char *type, const uint8_t *data, uint32_t n) {
    uint8_t *p = dst;
    for (int i = 3; i >= 0; i--) *p++ = (uint8_t)(n >> (8 * i));
    memcpy(p, type, 4);
    if (n) memcpy(p + 4, data, n);
    uint32_t crc = crc32_of(p, n + 4);
    p += 4 + n;
    for (int i = 3; i >= 0; i--) *p++ = (uint8_t)(crc >> (8 * i));
    return (size_t)(p - dst);
}

/* A PNG whose IHDR claims width x height (valid CRCs, one empty IDAT). */
static void expect_png_dims_rejected(const char *name, uint32_t w, uint32_t h) {
    uint8_t buf[128], ihdr[13] = {0};
    static const uint8_t sig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
    for (int i = 0; i < 4; i++) ihdr[i] = (uint8_t)(w >> (24 - 8 * i)), ihdr[4 + i] = (uint8_t)(h >> (24 - 8 * i));
    ihdr[8] = 8;  /* bit depth */
    ihdr[9] = 2;  /* RGB */
    size_t n = 8;
    memcpy(buf, sig, 8);
    n += put_chunk(buf + n, "IHDR", ihdr, 13);
    n += put_chunk(buf + n, "IDAT", NULL, 0);
    n += put_chunk(buf + n, "IEND", NULL, 0);
    expect_load_error(name, buf, n, "too large");
}

static void test_image_errors(void) {
    char *missing = is_path_join(th_tmpdir(), "no-such-image.png");
    is_image img;
    th_fails(is_image_load(missing, &img), "no-such-image.png: cannot open", "missing file");
    free(missing);
    expect_load_error("empty.png", "", 0, "empty");
    const char garbage[] = "this is not an image, just some text pretending to be one\n";
    expect_load_error("garbage.png", garbage, sizeof garbage, "unsupported image format");
    expect_load_error("short-png-signature.png", "\x89PNG\r\n\x1a\n", 8, "truncated PNG");

    size_t n = 0;
    char *png = golden_bytes("images/tiny_50x40.png", &n);
    if (png) {
        expect_load_error("truncated.png", png, n / 2, "truncated PNG");
        expect_load_error("truncated-header.png", png, 20, "truncated PNG");
        /* Flip bytes inside the image data: CRC (or zlib) failure, never a crash. */
        for (size_t i = n / 3; i < n / 3 + 16; i++) png[i] ^= 0x5A;
        expect_load_error("corrupt.png", png, n, "corrupt PNG");
        free(png);
    }
    char *jpg = golden_bytes("images/baseline_q80_448x336.jpg", &n);
    if (jpg) {
        expect_load_error("truncated.jpg", jpg, n / 2, "truncated JPEG");
        expect_load_error("truncated-header.jpg", jpg, 40, "JPEG");
        /* SOF0 dimensions patched to 30000x30000: rejected before decoding. */
        for (size_t i = 2; i + 9 < n; i++) {
            if ((uint8_t)jpg[i] == 0xFF && (uint8_t)jpg[i + 1] == 0xC0) {
                jpg[i + 5] = (char)(30000 >> 8), jpg[i + 6] = (char)(30000 & 255);
                jpg[i + 7] = (char)(30000 >> 8), jpg[i + 8] = (char)(30000 & 255);
                break;
            }
        }
        expect_load_error("huge.jpg", jpg, n, "too large");
        free(jpg);
    }
    expect_png_dims_rejected("wide.png", 40000, 10);
    expect_png_dims_rejected("bomb.png", 20000, 20000);
}

/* Resize of an unchanged size copies; a crop larger than the image pads with zeros. */
static void test_geometry(void) {
    is_image img = {3, 2, NULL};
    uint8_t px[18];
    for (int i = 0; i < 18; i++) px[i] = (uint8_t)(60 + 10 * i); /* no bicubic undershoot to 0 */
    img.rgb = px;
    uint8_t out[18];
    th_ok(is_pil_resize_window(&img, 3, 2, IS_PIL_BICUBIC, 0, 0, 3, 2, out), "identity resize");
    th_check(!memcmp(out, px, 18), "same-size resize copies the image");
    th_fails(is_pil_resize_window(&img, 3, 2, IS_PIL_NEAREST, 0, 0, 3, 2, out), "filter 0", "nearest unsupported");
    th_fails(is_pil_resize_window(&img, 3, 2, IS_PIL_BICUBIC, 1, 0, 3, 2, out), "not inside", "window outside");

    is_clip_preproc pp;
    is_clip_preproc_defaults(&pp);
    pp.shortest_edge = 4;
    pp.crop_h = pp.crop_w = 7;
    is_clip_geometry g;
    th_ok(is_clip_geometry_of(&pp, 3, 2, &g), "padding geometry");
    /* transformers: top = (4 - 7) // 2 = -2, left = (6 - 7) // 2 = -1 (floor division) */
    th_check(g.resize_w == 6 && g.resize_h == 4 && g.crop_top == -2 && g.crop_left == -1,
             "pad geometry: resize %dx%d crop top %d left %d", g.resize_w, g.resize_h, g.crop_top, g.crop_left);
    uint8_t crop[7 * 7 * 3];
    if (th_ok(is_clip_resize_crop_u8(&pp, &img, &g, crop), "padded crop")) {
        int pad_zero = 1, inside_nonzero = 1;
        for (int y = 0; y < 7; y++)
            for (int x = 0; x < 7; x++) {
                int inside = y >= 2 && y < 6 && x >= 1, v = crop[(y * 7 + x) * 3];
                if (inside) inside_nonzero &= v != 0;
                else pad_zero &= v == 0;
            }
        th_check(pad_zero && inside_nonzero, "crop pads with zeros: rows 0-1 and 6, column 0");
    }
}

/* An image_encoder folder whose weights have one tensor of the wrong shape. */
static void test_bad_weights(void) {
    char *src_dir = th_golden_path("models/tiny-ip-adapter/image_encoder");
    char *dir = is_path_join(th_tmpdir(), "bad-image-encoder");
    if (mkdir(dir, 0755) != 0 && !is_file_exists(dir)) th_check(0, "mkdir %s", dir);
    const char *files[2] = {"config.json", "preprocessor_config.json"};
    for (int i = 0; i < 2; i++) {
        char *from = is_path_join(src_dir, files[i]), *to = is_path_join(dir, files[i]), *data = NULL;
        size_t n = 0;
        if (th_ok(is_read_file(from, 1 << 20, &data, &n), from)) th_ok(is_write_file_atomic(to, data, n), to);
        free(data);
        free(from);
        free(to);
    }
    char *model = is_path_join(src_dir, "model.safetensors");
    is_st *st = NULL;
    if (th_ok(is_st_open(model, &st), model)) {
        is_st_writer *w = is_st_writer_new();
        for (size_t i = 0; i < is_st_count(st); i++) {
            const is_tensor *t = is_st_at(st, i);
            int64_t shape[IS_MAX_DIMS];
            memcpy(shape, t->shape, sizeof shape);
            if (!strcmp(t->name, "vision_model.pre_layrnorm.weight")) shape[0] -= 1; /* [31]: data prefix */
            th_ok(is_st_writer_add(w, t->name, t->dtype, t->ndim, shape, t->data), t->name);
        }
        char *out = is_path_join(dir, "model.safetensors");
        th_ok(is_st_writer_save(w, out), out);
        is_st_writer_free(w);
        is_st_close(st);
        is_image_encoder *enc = NULL;
        th_fails(is_image_encoder_load(dir, &enc), "vision_model.pre_layrnorm.weight", "wrong-shaped weight");
        th_check(enc == NULL, "no encoder on failure");
        free(out);
    }
    is_image_encoder *enc = NULL;
    char *nowhere = is_path_join(th_tmpdir(), "no-such-encoder");
    th_fails(is_image_encoder_load(nowhere, &enc), "config.json", "missing encoder folder");
    free(nowhere);
    free(model);
    free(dir);
    free(src_dir);
}

/* Sensitivity: bugs of the kinds a bf16 path can have, simulated in the f32 encoder, must fail the bf16
 * tolerances on the case zeros and baseline_q80_448x336 (docs/PRECISION.md). */
static void test_bf16_sensitivity(void) {
    static const struct {
        int must_fail;
        const char *what;
        th_bug_edit e[2];
    } bugs[] = {
        {1, "wrong layout: the patch embedding's kernel transposed",
         {{"vision_model.embeddings.patch_embedding.weight", TH_BUG_TRANSPOSE}}},
        {1, "wrong layout: layer 1 v_proj transposed", {{"vision_model.encoder.layers.1.self_attn.v_proj.weight", TH_BUG_TRANSPOSE}}},
        {1, "wrong layout: layer 0 q_proj transposed", {{"vision_model.encoder.layers.0.self_attn.q_proj.weight", TH_BUG_TRANSPOSE}}},
        {1, "f16 misread as bf16: layer 1 fc1", {{"vision_model.encoder.layers.1.mlp.fc1.weight", TH_BUG_F16_AS_BF16}}},
        {1, "f16 misread as bf16: the visual projection", {{"visual_projection.weight", TH_BUG_F16_AS_BF16}}},
        {1, "missing bias: every linear layer", {{"vision_model.encoder.layers.*_proj.bias", TH_BUG_ZERO}, {"vision_model.encoder.layers.*.fc?.bias", TH_BUG_ZERO}}},
        {0, "missing bias: layer 1 out_proj", {{"vision_model.encoder.layers.1.self_attn.out_proj.bias", TH_BUG_ZERO}}},
    };
    char *src = th_golden_path("models/tiny-ip-adapter/image_encoder");
    cJSON *cases = th_load_cases(GROUP);
    const cJSON *c;
    for (size_t i = 0; i < sizeof bugs / sizeof bugs[0]; i++) {
        char name[32];
        snprintf(name, sizeof name, "image-encoder-bug-%zu", i);
        char *dir = th_bugged_model(src, "model.safetensors", name, bugs[i].e, bugs[i].e[1].tensor ? 2 : 1);
        is_image_encoder *enc = NULL;
        if (dir && th_ok(is_image_encoder_load(dir, &enc), "load the image encoder with a simulated bug")) {
            g_measure = 1;
            g_worst = 0;
            g_worst_name[0] = 0;
            cJSON_ArrayForEach(c, cJSON_GetObjectItemCaseSensitive(cases, "cases")) {
                const char *cn = cJSON_GetObjectItemCaseSensitive(c, "name")->valuestring;
                if (strcmp(cn, "zeros") && strcmp(cn, "baseline_q80_448x336")) continue;
                is_st *exp = th_open_expected(GROUP, cJSON_GetObjectItemCaseSensitive(c, "expected")->valuestring);
                if (!exp) continue;
                if (cJSON_GetObjectItemCaseSensitive(c, "image")) {
                    run_image_case(c, enc, exp);
                } else {
                    int S = is_image_encoder_image_size(enc);
                    float *pv = calloc((size_t)3 * S * S, sizeof(float));
                    compare_encoder(cn, c, exp, enc, pv);
                    free(pv);
                }
                is_st_close(exp);
            }
            g_measure = 0;
            th_bug_verdict(bugs[i].must_fail, bugs[i].what, g_worst_name, g_worst);
            is_image_encoder_free(enc);
        }
        free(dir);
    }
    cJSON_Delete(cases);
    free(src);
}

/* Sizes beyond int in preprocessor_config.json are refused before any conversion (UB otherwise). */
static void test_preprocessor_ranges(void) {
    char *path = is_path_join(th_tmpdir(), "range_preprocessor_config.json");
    const char *bodies[][2] = {
        {"{\"size\": 1e99, \"crop_size\": 224}", "'size'"},
        {"{\"size\": {\"shortest_edge\": -1e300}, \"crop_size\": 224}", "'size'"},
        {"{\"size\": 224, \"crop_size\": {\"height\": 1e99, \"width\": 224}}", "'crop_size'"},
        {"{\"size\": 224.5, \"crop_size\": 224}", "'size'"},
    };
    for (size_t i = 0; i < sizeof bodies / sizeof bodies[0]; i++) {
        FILE *fp = fopen(path, "w");
        fputs(bodies[i][0], fp);
        fclose(fp);
        is_clip_preproc pp;
        th_fails(is_clip_preproc_load(path, &pp), bodies[i][1], bodies[i][0]);
    }
    free(path);
}

/* Pixel values in [-2, 2] for one image. */
static float *rand_pixels(const is_image_encoder *enc) {
    size_t n = (size_t)3 * is_image_encoder_image_size(enc) * is_image_encoder_image_size(enc);
    float *pv = malloc(n * sizeof(float));
    uint64_t rng = 42;
    for (size_t i = 0; i < n; i++) pv[i] = 2.0f * th_frand(&rng);
    return pv;
}

static size_t encode_all_bytes(const is_image_encoder *enc) {
    size_t N = (size_t)is_image_encoder_num_tokens(enc), D = (size_t)is_image_encoder_hidden_size(enc);
    return ((size_t)is_image_encoder_projection_dim(enc) + 2 * N * D) * sizeof(float);
}

/* image_embeds, penultimate and last hidden state, one after the other (NULL on error). */
static float *encode_all(is_image_encoder *enc, const float *pv) {
    size_t E = (size_t)is_image_encoder_projection_dim(enc), ND = (size_t)is_image_encoder_num_tokens(enc) *
                                                                 (size_t)is_image_encoder_hidden_size(enc);
    float *out = malloc(encode_all_bytes(enc));
    if (!th_ok(is_clip_vision_forward(enc, pv, out, out + E, out + E + ND), "image encoder forward")) {
        free(out);
        return NULL;
    }
    return out;
}

int main(void) {
    test_preprocessor_ranges();
    test_image_errors();
    test_geometry();
    test_bad_weights();
    char *dir = th_golden_path("models/tiny-ip-adapter/image_encoder");
    is_image_encoder *enc = NULL;
    if (th_ok(is_image_encoder_load(dir, &enc), dir)) {
        th_check(is_image_encoder_image_size(enc) == 224 && is_image_encoder_num_tokens(enc) == 50 &&
                     is_image_encoder_hidden_size(enc) == 32 && is_image_encoder_projection_dim(enc) == 48,
                 "encoder sizes from config.json");
        run_golden_cases(enc);
        /* every case again with the encoder in bf16 (pixel values unchanged: f32 tolerances), then f32 */
        if (is_precision_resolve(IS_PRECISION_BF16, NULL, 0) == IS_PRECISION_BF16 &&
            th_ok(is_image_encoder_set_precision(enc, IS_PRECISION_BF16), "image encoder set_precision(BF16)")) {
            /* The first forward streams the products' weights (only the patch convolution is packed), the
             * second packs them first: the same bits. Then every case, and again after set_precision. */
            const is_dnn *d = is_clip_vision_dnn(enc);
            size_t conv_bytes = is_dnn_packed_bytes(d);
            float *pv = rand_pixels(enc), *e1 = encode_all(enc, pv);
            th_check(is_dnn_is_streaming(is_clip_vision_dnn(enc)) && is_dnn_packed_bytes(d) == conv_bytes,
                     "first bf16 forward: streamed products (%zu bytes packed)", conv_bytes);
            float *e2 = encode_all(enc, pv);
            d = is_clip_vision_dnn(enc);
            th_check(!is_dnn_is_streaming(d) && is_dnn_packed_bytes(d) > conv_bytes,
                     "second bf16 forward: packed weights (%zu bytes)", is_dnn_packed_bytes(d));
            th_check(e1 && e2 && !memcmp(e1, e2, encode_all_bytes(enc)),
                     "image encoder: streamed and packed weights give the same bits");
            free(pv), free(e1), free(e2);
            g_bf16 = 1;
            run_golden_cases(enc);
            /* set_precision again: a new first forward streams nothing (the packs stay) */
            if (th_ok(is_image_encoder_set_precision(enc, IS_PRECISION_BF16), "image encoder set_precision(BF16) again"))
                th_check(!is_dnn_is_streaming(is_clip_vision_dnn(enc)), "set_precision(BF16) again keeps the packs");
            /* f32 and back: streamed again, and the golden cases hold with a streamed first case */
            if (th_ok(is_image_encoder_set_precision(enc, IS_PRECISION_F32), "F32") &&
                th_ok(is_image_encoder_set_precision(enc, IS_PRECISION_BF16), "BF16 after F32")) {
                th_check(is_dnn_is_streaming(is_clip_vision_dnn(enc)), "BF16 after F32: streamed again");
                run_golden_cases(enc);
            }
            g_bf16 = 0;
            if (th_ok(is_image_encoder_set_precision(enc, IS_PRECISION_F32), "image encoder set_precision(F32)"))
                run_golden_cases(enc);
            test_bf16_sensitivity();
        }
        is_image_encoder_free(enc);
    }
    free(dir);
    return th_done();
}
