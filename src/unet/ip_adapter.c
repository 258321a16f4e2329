/* IP-Adapter in the original h94 file layout:
 *   image_proj.proj.{weight,bias}  Linear(embed_dim -> num_tokens * cross_attention_dim)
 *   image_proj.norm.{weight,bias}  LayerNorm(cross_attention_dim, eps 1e-5)
 *   ip_adapter.N.to_k_ip.weight / to_v_ip.weight  [hidden_size, cross_attention_dim]
 * N counts ALL attention processors of the UNet in attn_processors order (attn1 even, attn2 odd), so
 * the K-th cross-attention layer gets N = 2K + 1 (diffusers _convert_ip_adapter_attn_to_diffusers:
 * key_id starts at 1 and advances by 2 per attn2). Everything is checked against the UNet before the
 * adapter replaces any previous one. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/kernels.h"
#include "unet/unet_internal.h"

void unet_ip_adapter_free(is_unet *u) {
    is_dnn_forget_st(u->dnn, u->ip.st);
    for (int i = 0; i < u->n_xattn; i++) u->xattn[i]->k_ip = u->xattn[i]->v_ip = NULL;
    is_st_close(u->ip.st);
    memset(&u->ip, 0, sizeof u->ip);
    u->has_ip = 0;
}

static int is_float_dtype(const is_tensor *t) {
    return t->dtype == IS_DT_F32 || t->dtype == IS_DT_F16 || t->dtype == IS_DT_BF16;
}

/* Count the ip_adapter.N entries and check that they are exactly N = 1, 3, ..., 2*n_layers - 1. */
static is_error *check_layer_numbering(const is_st *st, const char *path, int n_layers) {
    int max_id = -1, count = 0;
    for (size_t i = 0; i < is_st_count(st); i++) {
        const char *name = is_st_at(st, i)->name;
        if (strncmp(name, "ip_adapter.", 11) != 0) continue;
        char *end = NULL;
        long id = strtol(name + 11, &end, 10);
        if (end == name + 11 || (strcmp(end, ".to_k_ip.weight") && strcmp(end, ".to_v_ip.weight")))
            return is_errorf(IS_E_FORMAT, "%s: unexpected tensor '%s' (expected ip_adapter.N.to_k_ip.weight / "
                             "ip_adapter.N.to_v_ip.weight)", path, name);
        if (id % 2 == 0 || id < 1)
            return is_errorf(IS_E_FORMAT, "%s: tensor '%s': h94 numbering gives cross-attention layers odd numbers "
                             "1, 3, 5, ...", path, name);
        if (!strcmp(end, ".to_k_ip.weight")) count++;
        if (id > max_id) max_id = (int)id;
    }
    int layers = (max_id + 1) / 2;
    if (count != n_layers || layers != n_layers)
        return is_errorf(IS_E_SHAPE, "%s: this IP-Adapter has %d cross-attention layers (ip_adapter.1 ... "
                         "ip_adapter.%d) but the UNet has %d: it was made for another model", path,
                         count > layers ? count : layers, max_id, n_layers);
    return NULL;
}

static is_error *get_ip_weight(const is_st *st, const char *path, int id, const char *kv, const unet_attention *a,
                               int cad, const is_tensor **out) {
    char name[96];
    snprintf(name, sizeof name, "ip_adapter.%d.%s.weight", id, kv);
    int64_t shape[2] = {(int64_t)a->heads * a->dim_head, cad};
    is_error *err = is_st_get(st, name, 2, shape, out);
    if (err) return is_error_wrap(err, "IP-Adapter layer for %s (hidden size %lld)", a->name, (long long)shape[0]);
    if (!is_float_dtype(*out))
        return is_errorf(IS_E_SHAPE, "%s: tensor '%s' has dtype %s, expected F32, F16 or BF16", path, name,
                         is_dtype_name((*out)->dtype));
    return NULL;
}

static is_error *load_adapter(is_unet *u, is_st *st, const char *path, int expected_embed, unet_ip_adapter *ip,
                              const is_tensor **k_ip, const is_tensor **v_ip) {
    const int cad = u->cfg.cross_attention_dim;
    if (!is_st_find(st, "image_proj.proj.weight")) {
        if (is_st_find(st, "image_proj.latents"))
            return is_errorf(IS_E_UNSUPPORTED, "%s: IP-Adapter Plus (Resampler image projection) is not supported; "
                             "use the plain IP-Adapter (ip-adapter_sdxl)", path);
        if (is_st_find(st, "image_proj.proj.0.weight"))
            return is_errorf(IS_E_UNSUPPORTED, "%s: this IP-Adapter variant (MLP image projection: full-face / "
                             "FaceID) is not supported", path);
        return is_errorf(IS_E_FORMAT, "%s: not an h94 IP-Adapter: tensor 'image_proj.proj.weight' is missing", path);
    }
    int64_t any1[1] = {-1}, any2[2] = {-1, -1};
    IS_TRY(is_st_get(st, "image_proj.norm.weight", 1, any1, &ip->norm_w));
    if (ip->norm_w->shape[0] != cad)
        return is_errorf(IS_E_SHAPE, "%s: this IP-Adapter was made for a UNet with cross_attention_dim %lld "
                         "(image_proj.norm.weight has %lld features) but this UNet's cross_attention_dim is %d", path,
                         (long long)ip->norm_w->shape[0], (long long)ip->norm_w->shape[0], cad);
    IS_TRY(is_st_get(st, "image_proj.norm.bias", 1, ip->norm_w->shape, &ip->norm_b));
    IS_TRY(is_st_get(st, "image_proj.proj.weight", 2, any2, &ip->proj_w));
    int64_t rows = ip->proj_w->shape[0];
    if (rows % cad != 0 || rows == 0)
        return is_errorf(IS_E_SHAPE, "%s: image_proj.proj.weight has %lld rows, not a multiple of the "
                         "cross_attention_dim %d (rows = num_tokens * cross_attention_dim)", path, (long long)rows, cad);
    ip->num_tokens = (int)(rows / cad);
    ip->embed_dim = (int)ip->proj_w->shape[1];
    IS_TRY(is_st_get(st, "image_proj.proj.bias", 1, &rows, &ip->proj_b));
    if (expected_embed > 0 && ip->embed_dim != expected_embed)
        return is_errorf(IS_E_SHAPE, "%s: this IP-Adapter takes %d-dim image embeddings (image_proj.proj.weight is "
                         "[%lld, %d]) but the image encoder produces %d-dim embeddings: they do not belong together",
                         path, ip->embed_dim, (long long)rows, ip->embed_dim, expected_embed);
    const is_tensor *ts[4] = {ip->norm_w, ip->norm_b, ip->proj_w, ip->proj_b};
    for (int i = 0; i < 4; i++)
        if (!is_float_dtype(ts[i]))
            return is_errorf(IS_E_SHAPE, "%s: tensor '%s' has dtype %s, expected F32, F16 or BF16", path, ts[i]->name,
                             is_dtype_name(ts[i]->dtype));

    IS_TRY(check_layer_numbering(st, path, u->n_xattn));
    for (int k = 0; k < u->n_xattn; k++) {
        IS_TRY(get_ip_weight(st, path, 2 * k + 1, "to_k_ip", u->xattn[k], cad, &k_ip[k]));
        IS_TRY(get_ip_weight(st, path, 2 * k + 1, "to_v_ip", u->xattn[k], cad, &v_ip[k]));
    }
    return NULL;
}

is_error *is_unet_load_ip_adapter(is_unet *u, const char *path, int image_embed_dim_expected) {
    if (!u || !path) return is_errorf(IS_E_ARGUMENT, "is_unet_load_ip_adapter: NULL argument");
    if (u->n_xattn == 0) return is_errorf(IS_E_ARGUMENT, "%s: the UNet has no cross-attention layers", u->dir);
    is_st *st = NULL;
    IS_TRY(is_st_open(path, &st));
    unet_ip_adapter ip = {0};
    const is_tensor **k_ip = calloc((size_t)u->n_xattn, sizeof *k_ip), **v_ip = calloc((size_t)u->n_xattn, sizeof *v_ip);
    is_error *err = (!k_ip || !v_ip) ? is_error_oom("IP-Adapter layers")
                                     : load_adapter(u, st, path, image_embed_dim_expected, &ip, k_ip, v_ip);
    if (!err && u->dnn) { /* bf16: the projection is packed now, the layers' keys/values by their scale */
        err = is_dnn_pack_st(u->dnn, st, unet_ip_is_projection);
        if (err) is_dnn_forget_st(u->dnn, st);
    }
    if (!err) {
        unet_ip_adapter_free(u);
        ip.st = st;
        u->ip = ip;
        u->has_ip = 1;
        for (int k = 0; k < u->n_xattn; k++) {
            u->xattn[k]->k_ip = k_ip[k];
            u->xattn[k]->v_ip = v_ip[k];
        }
        u->ws.valid = 0; /* IP key/value buffers depend on num_tokens */
        err = unet_ip_pack_layers(u);
    } else {
        is_st_close(st);
    }
    free(k_ip);
    free(v_ip);
    return err ? is_error_wrap(err, "loading IP-Adapter") : NULL;
}

int unet_ip_is_projection(const char *name) { return !strncmp(name, "image_proj.", 11); }

is_error *unet_ip_pack_layers(is_unet *u) {
    if (!u->dnn || !u->has_ip) return NULL;
    for (int k = 0; k < u->n_xattn; k++) {
        const unet_attention *a = u->xattn[k];
        if (!a->k_ip) continue;
        if (a->ip_scale != 0.0f) {
            IS_TRY(is_dnn_pack(u->dnn, u->ip.st, a->k_ip));
            IS_TRY(is_dnn_pack(u->dnn, u->ip.st, a->v_ip));
        } else { /* never read at scale 0: no packed copy, and its file pages stay out of memory */
            is_dnn_forget(u->dnn, a->k_ip);
            is_dnn_forget(u->dnn, a->v_ip);
        }
    }
    return NULL;
}

int is_unet_has_ip_adapter(const is_unet *u) { return u && u->has_ip; }
int is_unet_ip_embed_dim(const is_unet *u) { return u && u->has_ip ? u->ip.embed_dim : 0; }
int is_unet_ip_num_tokens(const is_unet *u) { return u && u->has_ip ? u->ip.num_tokens : 0; }

/* ImageProjModel: tokens = LayerNorm(reshape(proj(image_embeds), [batch*num_tokens, cad])). */
is_error *is_unet_ip_tokens(is_unet *u, const float *image_embeds, int batch, float *tokens) {
    if (!u || !image_embeds || !tokens) return is_errorf(IS_E_ARGUMENT, "is_unet_ip_tokens: NULL argument");
    if (!u->has_ip) return is_errorf(IS_E_ARGUMENT, "is_unet_ip_tokens: no IP-Adapter is loaded");
    if (batch < 1) return is_errorf(IS_E_ARGUMENT, "is_unet_ip_tokens: batch must be >= 1, got %d", batch);
    const int cad = u->cfg.cross_attention_dim;
    is_dnn_linear(u->dnn, tokens, image_embeds, batch, u->ip.proj_w, u->ip.proj_b);
    is_k_layer_norm(tokens, tokens, (int64_t)batch * u->ip.num_tokens, cad, u->ip.norm_w, u->ip.norm_b, 1e-5f);
    return NULL;
}
