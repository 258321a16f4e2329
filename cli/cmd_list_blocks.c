/* instantstyle list-blocks: every cross-attention (attn2) layer of the UNet with the IP-Adapter
 * scale a --style-blocks spec gives it, so a spec can be checked before generating. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "command_args.h"
#include "commands.h"
#include "core/error.h"
#include "core/fileio.h"
#include "instantstyle.h"

static void usage(FILE *out) {
    fprintf(out,
            "usage: instantstyle list-blocks --model DIR [--ip-adapter FILE] [--style-blocks SPEC] [--ip-scale X]\n\n"
            "Lists the UNet's cross-attention layers in diffusers' order with the IP-Adapter scale each one\n"
            "gets: SPEC's value for the layer's attention module times X. A layer with scale 0 skips the\n"
            "image branch entirely.\n\n"
            "options:\n"
            "  --model DIR         SDXL pipeline folder (with unet/) or the unet folder itself\n"
            "  --ip-adapter FILE   also check FILE (h94 ip-adapter .safetensors) against the UNet and show\n"
            "                      its ip_adapter.N numbers\n"
            "  --style-blocks SPEC which blocks get the image (default \"style\"): style, style+layout,\n"
            "                      layout, all, none, a number, a diffusers dictionary\n"
            "                      '{\"up\": {\"block_0\": [0.0, 1.0, 0.0]}}', ComfyUI layer weights '6:1'\n"
            "                      or the short form 'down.block_2=0,1;up.block_0=0,1,0'\n"
            "                      (docs/STYLE_BLOCKS.md)\n"
            "  --ip-scale X        overall IP-Adapter scale (default 1.0)\n"
            "  -h, --help          show this help\n\n"
            "example:\n"
            "  instantstyle list-blocks --model sdxl --style-blocks style+layout --ip-scale 0.8\n");
}

/* DIR/unet when it holds a config.json, else DIR itself. */
static char *unet_dir_of(const char *model) {
    char *unet = is_path_join(model, "unet");
    char *cfg = unet ? is_path_join(unet, "config.json") : NULL;
    int nested = cfg && is_file_exists(cfg);
    free(cfg);
    if (nested) return unet;
    free(unet);
    return strdup(model);
}

int is_cmd_list_blocks(int argc, char **argv) {
    is_list_blocks_options o;
    is_error *e = is_list_blocks_parse(argc, argv, &o);
    if (o.help) {
        usage(stdout);
        return 0;
    }
    if (e) return is_cli_refuse(e, o.usage, "list-blocks", usage);
    const char *adapter = o.ip_adapter, *spec = o.style_blocks;
    float scale = o.ip_scale;

    char *dir = unet_dir_of(o.model);
    if (!dir) return is_cli_fail(is_error_oom("path"));
    is_unet *u = NULL;
    is_error *err = is_unet_load(dir, &u);
    free(dir);
    if (!err && adapter) err = is_unet_load_ip_adapter(u, adapter, 0);
    if (!err) err = is_unet_set_ip_scale(u, spec, scale);
    if (err) {
        is_unet_free(u);
        return is_cli_fail(err);
    }

    printf("IP-Adapter scales for --style-blocks '%s' --ip-scale %g", spec, scale);
    if (adapter) printf(" (adapter %s: %d tokens from %d-dim image embeddings)", adapter, is_unet_ip_num_tokens(u),
                        is_unet_ip_embed_dim(u));
    printf("\n%-5s %-6s %-5s %-8s %s\n", "layer", "comfy", "h94", "scale", "cross-attention layer");
    int active = 0;
    for (int i = 0; i < is_unet_num_cross_attn(u); i++) {
        float s = is_unet_cross_attn_scale(u, i);
        active += s != 0.0f;
        printf("%-5d %-6d %-5d %-8.4g %s\n", i, is_unet_cross_attn_comfy_index(u, i), 2 * i + 1, s,
               is_unet_cross_attn_name(u, i));
    }
    printf("%d of %d cross-attention layers use the image\n", active, is_unet_num_cross_attn(u));
    is_unet_free(u);
    return 0;
}
