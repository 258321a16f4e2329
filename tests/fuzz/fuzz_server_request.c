/* HTTP request bodies of `instantstyle serve` (server/request.c, server/base64.c): the first byte picks the
 * front door (native POST /v1/jobs, A1111 txt2img, A1111 img2img, or base64 alone), the rest is the body.
 * Checks the documented contract: a refused body is a 4xx (or a 500 for memory) with a message and, for a
 * field at fault, the field; an accepted one has its values in range (steps 1..150, sizes multiples of 8 up
 * to --max-size, at most 16 images, strength in (0, 1]); base64 decodes what it encoded. */
#include <stdlib.h>
#include <string.h>

#include "fuzz_common.h"
#include "server/base64.h"
#include "server/server_internal.h"

static void check_base64(const uint8_t *data, size_t size) {
    char *text = b64_encode(data, size);
    if (!text) return;
    uint8_t *back = NULL;
    size_t n = 0, bad = 0;
    if (b64_decode(text, strlen(text), &back, &n, &bad) || n != size || (size && memcmp(back, data, size)))
        fz_fail("base64 of %zu bytes does not decode to them", size);
    free(back);
    free(text);
    /* the input itself as base64 text: either decoded or refused at an offset inside it */
    if (b64_decode((const char *)data, size, &back, &n, &bad) == -1 && bad > size) fz_fail("bad offset %zu of %zu", bad, size);
    free(back);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    int door = data[0] % 4;
    data++, size--;
    if (door == 3) {
        check_base64(data, size);
        return 0;
    }
    srv_config cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.max_size = 1024;
    cfg.precision = IS_PRECISION_F32;
    srv_err e;
    memset(&e, 0, sizeof e);
    cJSON *body = srv_parse_body((const char *)data, size, &e);
    srv_request *r = NULL;
    if (body) r = door == 0 ? srv_parse_native(body, &cfg, &e) : srv_parse_a1111(body, door == 2, &cfg, &e);
    cJSON_Delete(body);
    if (!r) {
        if (!(e.status == 400 || e.status == 500) || !e.message[0] || !e.code[0])
            fz_fail("refused with status %d code '%s' message '%s'", e.status, e.code, e.message);
        return 0;
    }
    const is_generate_params *g = &r->gp;
    if (g->steps < 1 || g->steps > SRV_MAX_STEPS) fz_fail("steps %d accepted", g->steps);
    if (g->width % 8 || g->height % 8 || g->width > cfg.max_size || g->height > cfg.max_size || g->width < 0 || g->height < 0)
        fz_fail("size %dx%d accepted", g->width, g->height);
    if (r->n_images < 1 || r->n_images > SRV_MAX_IMAGES) fz_fail("%d images accepted", r->n_images);
    if (!(g->cfg >= 0 && g->cfg <= 30) || !(g->ip_scale >= 0 && g->ip_scale <= 10)) fz_fail("cfg %g / ip_scale %g", (double)g->cfg, (double)g->ip_scale);
    if (g->init_rgb && !(g->strength > 0 && g->strength <= 1)) fz_fail("strength %g accepted", g->strength);
    if (!g->prompt || !r->params) fz_fail("no prompt or echo");
    srv_request_free(r);
    return 0;
}
