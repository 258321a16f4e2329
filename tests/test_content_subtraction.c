/* InstantStyle content subtraction (cases/content_subtraction): image encoder embedding minus
 * content_scale x the content prompt's pooled text_encoder_2 embedding, then the adapter's
 * ImageProjModel for the conditional and the zero (unconditional) embedding. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "instantstyle.h"

#define GROUP "content_subtraction"

static void compare(const cJSON *c, const is_st *exp, const char *case_name, const char *tensor, const float *got,
                    size_t n) {
    double atol, rtol;
    th_tolerance(c, tensor, &atol, &rtol);
    char what[256];
    snprintf(what, sizeof what, "%s %s", case_name, tensor);
    th_close(what, got, n, th_tensor(exp, tensor), atol, rtol);
}

int main(void) {
    char *model = th_golden_path("models/tiny-sdxl");
    char *unet_dir = th_golden_path("models/tiny-sdxl/unet");
    char *adapter = th_golden_path("models/tiny-ip-adapter/ip-adapter_sdxl.safetensors");
    char *encoder_dir = th_golden_path("models/tiny-ip-adapter/image_encoder");
    is_sdxl_text *text = NULL;
    is_image_encoder *enc = NULL;
    is_unet *unet = NULL;
    if (!th_ok(is_sdxl_text_load(model, &text), "load text encoders") ||
        !th_ok(is_image_encoder_load(encoder_dir, &enc), "load image encoder") ||
        !th_ok(is_unet_load(unet_dir, &unet), "load unet"))
        return th_done();
    int dim = is_image_encoder_projection_dim(enc), pdim = is_sdxl_text_pooled_dim(text);
    if (!th_ok(is_unet_load_ip_adapter(unet, adapter, dim), "load adapter")) return th_done();
    int ntok = is_unet_ip_num_tokens(unet), cross = is_unet_cross_attention_dim(unet);
    int S = is_image_encoder_image_size(enc), seq = is_sdxl_text_seq_len(text), edim = is_sdxl_text_embed_dim(text);

    float *pixels = malloc(sizeof(float) * 3 * S * S), *embeds = calloc(2 * (size_t)dim, sizeof(float));
    float *pooled = malloc(sizeof(float) * pdim), *states = malloc(sizeof(float) * seq * edim);
    float *tokens = malloc(sizeof(float) * 2 * ntok * cross);

    cJSON *root = th_load_cases(GROUP);
    int n_cases = 0;
    for (cJSON *c = cJSON_GetObjectItemCaseSensitive(root, "cases")->child; c; c = c->next, n_cases++) {
        const char *name = cJSON_GetObjectItemCaseSensitive(c, "name")->valuestring;
        const char *image_rel = cJSON_GetObjectItemCaseSensitive(c, "image")->valuestring;
        const char *prompt = cJSON_GetObjectItemCaseSensitive(c, "content_prompt")->valuestring;
        float scale = (float)cJSON_GetObjectItemCaseSensitive(c, "content_scale")->valuedouble;
        is_st *exp = th_open_expected(GROUP, cJSON_GetObjectItemCaseSensitive(c, "expected")->valuestring);
        char *image_path = th_golden_path(image_rel);
        is_image img = {0, 0, NULL};
        float *row1 = embeds + dim; /* row 0 stays zeros: the unconditional embedding */
        if (exp && th_ok(is_image_load(image_path, &img), image_path) &&
            th_ok(is_image_preprocess(enc, &img, pixels), "preprocess") &&
            th_ok(is_image_encoder_forward(enc, pixels, row1, NULL), "image encoder") &&
            th_ok(is_sdxl_encode_prompt(text, prompt, NULL, states, pooled, NULL), "content prompt")) {
            compare(c, exp, name, "image_embeds", row1, (size_t)dim);
            compare(c, exp, name, "content_text_embeds", pooled, (size_t)pdim);
            th_ok(is_content_subtract(row1, dim, pooled, pdim, scale), "subtract");
            compare(c, exp, name, "subtracted_image_embeds", row1, (size_t)dim);
            if (th_ok(is_unet_ip_tokens(unet, embeds, 2, tokens), "ImageProjModel")) {
                compare(c, exp, name, "uncond_ip_tokens", tokens, (size_t)ntok * cross);
                compare(c, exp, name, "ip_tokens", tokens + (size_t)ntok * cross, (size_t)ntok * cross);
            }
        }
        is_image_free(&img);
        free(image_path);
        is_st_close(exp);
    }
    th_check(n_cases == 9, "expected the 9 golden cases, found %d", n_cases);

    /* An image encoder whose projection does not match text_encoder_2's is refused. */
    th_fails(is_content_subtract(embeds, dim, pooled, pdim + 16, 0.5f), "projection size",
             "projection size mismatch between image encoder and text_encoder_2");

    cJSON_Delete(root);
    free(pixels);
    free(embeds);
    free(pooled);
    free(states);
    free(tokens);
    is_sdxl_text_free(text);
    is_image_encoder_free(enc);
    is_unet_free(unet);
    free(model);
    free(unet_dir);
    free(adapter);
    free(encoder_dir);
    return th_done();
}
