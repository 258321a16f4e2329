#!/usr/bin/env bash
# Rebuild the seed corpora tests/fuzz/corpus/<harness>/ from the golden data (read-only) and a few
# hand-made inputs. The corpora are committed; run this only to regenerate them (it replaces every
# corpus folder). Needs jq; cjpeg/jpegtran (Debian libjpeg-turbo-progs) add small JPEG variants when
# present. Usage: tests/fuzz/make-corpus.sh [GOLDEN_DIR]
set -euo pipefail
export LC_ALL=C
cd "$(dirname "$0")/../.."
golden=${1:-${IS_GOLDEN_DIR:-../shared/golden}}
[ -d "$golden/models" ] || { echo "make-corpus: no golden folder at $golden (give it as argument)" >&2; exit 1; }
out=tests/fuzz/corpus
sep=$'\n#--next-file--#\n' # FZ_SEP in fuzz_common.h
harnesses=(safetensors safetensors_index ip_adapter png jpeg tokenizer tokenizer_files block_scales config_unet config_controlnet
  config_vae config_text_encoder config_image_encoder config_preprocessor config_scheduler config_pipeline cli)
for h in "${harnesses[@]}"; do rm -rf "${out:?}/$h"; mkdir -p "$out/$h"; done
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
m=$golden/models

# st FILE HEADER_JSON DATA_BYTES: a safetensors file (8-byte little-endian header length, header, data).
st() {
  local n=${#2} i
  local len=""
  for i in 0 8 16 24 32 40 48 56; do len+=$(printf '\\x%02x' $(((n >> i) & 255))); done
  { printf '%b' "$len"; printf '%s' "$2"; head -c "$3" /dev/zero | tr '\0' '\074'; } >"$1"
}
# join_parts FILE PART...: the parts of a multi-file input, separated by FZ_SEP.
join_parts() {
  local f=$1 first=1 p
  shift
  : >"$f"
  for p in "$@"; do
    ((first)) || printf '%s' "$sep" >>"$f"
    first=0
    cat "$p" >>"$f"
  done
}

# ---- safetensors: small golden files and hand-made ones (every dtype, metadata, scalars, empty tensors)
for f in "$golden"/cases/lora/unet_no_lora.safetensors "$golden"/cases/lora/te_no_lora.safetensors \
         "$golden"/cases/schedulers/euler_linspace_1steps.safetensors \
         "$golden"/cases/schedulers/ddim_trailing_4steps.safetensors; do
  install -m 644 "$f" "$out/safetensors/golden_$(basename "$f")"
done
s=$out/safetensors
st "$s/f32_2x3.safetensors" '{"w":{"dtype":"F32","shape":[2,3],"data_offsets":[0,24]}}' 24
st "$s/all_dtypes.safetensors" '{"__metadata__":{"format":"pt"},"a":{"dtype":"F16","shape":[2],"data_offsets":[0,4]},"b":{"dtype":"BF16","shape":[1,2],"data_offsets":[4,8]},"c":{"dtype":"F64","shape":[1],"data_offsets":[8,16]},"d":{"dtype":"I64","shape":[1],"data_offsets":[16,24]},"e":{"dtype":"I32","shape":[2],"data_offsets":[24,32]},"f":{"dtype":"I16","shape":[2],"data_offsets":[32,36]},"g":{"dtype":"I8","shape":[2],"data_offsets":[36,38]},"h":{"dtype":"U8","shape":[1],"data_offsets":[38,39]},"i":{"dtype":"BOOL","shape":[1],"data_offsets":[39,40]}}' 40
st "$s/scalar_and_empty.safetensors" '{"s":{"dtype":"F32","shape":[],"data_offsets":[0,4]},"z":{"dtype":"F16","shape":[0,7],"data_offsets":[4,4]},"y":{"dtype":"F32","shape":[1,1,1,1,1,1,1,1],"data_offsets":[4,8]}}' 8
st "$s/metadata_only.safetensors" '{"__metadata__":{"format":"pt","note":"no tensors"}}' 0
st "$s/padded_header.safetensors" '{"w":{"dtype":"BF16","shape":[4],"data_offsets":[0,8]}}        ' 8

# ---- safetensors_index: an index and its shards (the file names the harness writes)
a=model-00001-of-00002.safetensors b=model-00002-of-00002.safetensors
st "$tmp/shard1" '{"__metadata__":{"format":"pt"},"down.weight":{"dtype":"F32","shape":[2,2],"data_offsets":[0,16]},"down.bias":{"dtype":"F32","shape":[2],"data_offsets":[16,24]}}' 24
st "$tmp/shard2" '{"up.weight":{"dtype":"F16","shape":[3],"data_offsets":[0,6]}}' 6
printf '{"metadata":{"total_size":30},"weight_map":{"down.bias":"%s","down.weight":"%s","up.weight":"%s"}}' "$a" "$a" "$b" >"$tmp/idx2"
printf '{"weight_map":{"down.bias":"%s","down.weight":"%s"}}' "$a" "$a" >"$tmp/idx1"
printf '{"metadata":{},"weight_map":{"down.weight":"%s","up.weight":"%s","missing":"%s"}}' "$a" "$b" "$b" >"$tmp/idx3"
join_parts "$out/safetensors_index/two_shards" "$tmp/idx2" "$tmp/shard1" "$tmp/shard2"
join_parts "$out/safetensors_index/one_shard" "$tmp/idx1" "$tmp/shard1"
join_parts "$out/safetensors_index/name_not_in_shard" "$tmp/idx3" "$tmp/shard1" "$tmp/shard2"
join_parts "$out/safetensors_index/same_name_twice" "$tmp/idx2" "$tmp/shard1" "$tmp/shard1"

# ---- ip_adapter: the golden adapter (valid for the golden UNet) and a header-only rewrite of it
install -m 644 "$m/tiny-ip-adapter/ip-adapter_sdxl.safetensors" "$out/ip_adapter/golden_ip-adapter_sdxl.safetensors"
hdr_len=$(od -An -t u8 -N 8 "$m/tiny-ip-adapter/ip-adapter_sdxl.safetensors" | tr -d ' ')
dd if="$m/tiny-ip-adapter/ip-adapter_sdxl.safetensors" bs=1 skip=8 count="$hdr_len" status=none >"$tmp/iphdr"
# every tensor shrunk to one F16 element: names and layout of the real file, 2 bytes each
small=$(jq -c 'del(.__metadata__) | to_entries | sort_by(.key) | reduce .[] as $e ({o: 0, r: {}};
  .r[$e.key] = {dtype: "F16", shape: [1], data_offsets: [.o, .o + 2]} | .o += 2) | .r' "$tmp/iphdr")
count=$(jq 'del(.__metadata__) | length' "$tmp/iphdr")
st "$out/ip_adapter/names_one_element_each.safetensors" "$small" $((2 * count))

# ---- png / jpeg: the golden style images, masks and edge maps (all small)
for f in "$golden"/images/*.png "$golden"/images/i2i/*.png "$golden"/images/ip_masks/*.png; do
  [ "$(stat -c %s "$f")" -le 40000 ] && install -m 644 "$f" "$out/png/$(basename "$f")"
done
for f in "$golden"/images/*.jpg; do install -m 644 "$f" "$out/jpeg/$(basename "$f")"; done
if command -v jpegtran >/dev/null && command -v cjpeg >/dev/null; then
  j=$out/jpeg
  src=$golden/images/baseline_q80_448x336.jpg
  jpegtran -crop 16x16+0+0 "$src" >"$j/crop16.jpg"
  jpegtran -crop 24x8+8+8 -progressive "$src" >"$j/crop24x8_progressive.jpg"
  jpegtran -crop 16x16+32+32 -grayscale "$src" >"$j/crop16_grey.jpg"
  jpegtran -crop 32x16+0+0 -restart 1 "$src" >"$j/crop32x16_restart.jpg"
  jpegtran -crop 16x16+0+0 -arithmetic "$src" >"$j/crop16_arithmetic.jpg"
  jpegtran -crop 16x16+0+0 -optimize -copy none "$src" >"$j/crop16_optimized.jpg"
  # a 9x5 PPM (odd size, 4:2:0 by default) and a 4:4:4 one
  px=""; for i in $(seq 0 134); do px+=$(printf '\\x%02x' $(((i * 37) % 256))); done
  { printf 'P6\n9 5\n255\n'; printf '%b' "$px"; } >"$tmp/small.ppm"
  cjpeg -quality 50 "$tmp/small.ppm" >"$j/odd_9x5.jpg"
  cjpeg -sample 1x1 -quality 95 "$tmp/small.ppm" >"$j/odd_9x5_444.jpg"
  { printf 'P5\n3 7\n255\n'; head -c 21 /dev/zero | tr '\0' '\100'; } >"$tmp/small.pgm"
  cjpeg -grayscale "$tmp/small.pgm" >"$j/grey_3x7.jpg"
fi
# 4-component JPEGs (Adobe CMYK and YCCK), which no tool above writes: a few lines against libjpeg.
cat >"$tmp/cmyk.c" <<'EOF'
#include <stdio.h>
#include <jpeglib.h>
int main(int argc, char **argv) {
    for (int k = 1; k < argc; k++) {
        struct jpeg_compress_struct c;
        struct jpeg_error_mgr e;
        FILE *f = fopen(argv[k], "wb");
        if (!f) return 1;
        c.err = jpeg_std_error(&e);
        jpeg_create_compress(&c);
        jpeg_stdio_dest(&c, f);
        c.image_width = 8 + k;
        c.image_height = 8;
        c.input_components = 4;
        c.in_color_space = JCS_CMYK;
        jpeg_set_defaults(&c);
        jpeg_set_colorspace(&c, k == 1 ? JCS_CMYK : JCS_YCCK);
        jpeg_start_compress(&c, TRUE);
        JSAMPLE row[4 * 16];
        for (int i = 0; i < 4 * 16; i++) row[i] = (JSAMPLE)(i * 29);
        JSAMPROW rows[1] = {row};
        while (c.next_scanline < c.image_height) jpeg_write_scanlines(&c, rows, 1);
        jpeg_finish_compress(&c);
        jpeg_destroy_compress(&c);
        fclose(f);
    }
    return 0;
}
EOF
if cc -o "$tmp/cmyk" "$tmp/cmyk.c" -ljpeg 2>/dev/null; then
  "$tmp/cmyk" "$out/jpeg/cmyk_9x8.jpg" "$out/jpeg/ycck_10x8.jpg"
fi

# ---- tokenizer: every golden tokenizer case's prompt
i=0
jq -c '.cases[].prompt' "$golden/cases/tokenizer/cases.json" | while IFS= read -r p; do
  i=$((i + 1))
  printf '%s' "$p" | jq -j . >"$out/tokenizer/case_$(printf %03d $i).txt"
done

# ---- tokenizer_files: a 612-token slice of the golden vocabulary (256 byte symbols, 256 word-final ones,
# the first 100 merges' results, the two special tokens) with those 100 merges
jq -c 'with_entries(select(.value < 612 or .value >= 49406))' "$m/tiny-sdxl/tokenizer/vocab.json" >"$tmp/vocab.json"
head -n 101 "$m/tiny-sdxl/tokenizer/merges.txt" >"$tmp/merges.txt"
jq -c . "$m/tiny-sdxl/tokenizer/special_tokens_map.json" >"$tmp/map1.json"
jq -c . "$m/tiny-sdxl/tokenizer_2/special_tokens_map.json" >"$tmp/map2.json"
jq -c . "$m/tiny-sdxl/tokenizer/tokenizer_config.json" >"$tmp/cfg1.json"
printf '{"additional_special_tokens":["th","in"],"added_tokens_decoder":{"49407":{"content":"<|endoftext|>"}},"model_max_length":77}' >"$tmp/cfg3.json"
t=$out/tokenizer_files
join_parts "$t/vocab_merges_map" "$tmp/vocab.json" "$tmp/merges.txt" "$tmp/map1.json"
join_parts "$t/vocab_merges_map2_config" "$tmp/vocab.json" "$tmp/merges.txt" "$tmp/map2.json" "$tmp/cfg1.json"
printf '' >"$tmp/empty"
join_parts "$t/config_added_tokens" "$tmp/vocab.json" "$tmp/merges.txt" "$tmp/empty" "$tmp/cfg3.json"

# ---- block_scales: the golden specs and every example of docs/STYLE_BLOCKS.md
b=$out/block_scales
i=0
{
  jq -c '.. | objects | select(has("ip_scale_spec")) | .ip_scale_spec' "$golden"/cases/*/cases.json
  jq -c '.. | objects | select(has("style_blocks")) | .style_blocks | if type == "string" then . else tojson end' \
    "$golden"/cases/*/cases.json | jq -r .
} | sort -u | while IFS= read -r spec; do
  i=$((i + 1))
  printf '%s' "$spec" >"$b/golden_$i"
done
specs=(style style+layout layout all none 0.6 '{"down": {"block_2": [0.0, 1.0]}, "up": {"block_0": [0.0, 1.0, 0.0]}}'
  '{"up": {"block_0": 1.0}}' '{"down": 0.5, "up": 1.0}' '{"mid": 0.7}' '{"mid": [0.7]}'
  "{'up': {'block_0': [0.0, 1.0, 0.0]}}" "{'down': {'block_2': (0.0, 1.0)}, 'up': {'block_0': (0, 1, 0,)},}"
  '{"up": {"block_0": (.5)}, "down": [1., 1e-1]}' '6:1' '3:1,6:1' '0:0,1:0,2:0,3:0,4:0,5:0,6:1,7:0,8:0,9:0,10:0'
  'up.block_0=0,1,0' 'down.block_2=0,1;up.block_0=0,1,0'
  'down.block_1=0.3,0;down.block_2=1,0.5;mid=0.7;up.block_0=0,1,0.2;up.block_1=0.4,0,0.9' 'up=1'
  'up_blocks.0.attentions.1=1' 'up_blocks.0.attentions.1=1;down_blocks.2.attentions.1=1' '1e308' '-0'
  '{"up": {"block_0": [0, 1]}}' '[{"up": 1}]')
for i in "${!specs[@]}"; do printf '%s' "${specs[$i]}" >"$b/doc_$i"; done

# ---- JSON configs, as the golden models have them
install -m 644 "$m/tiny-sdxl/unet/config.json" "$out/config_unet/tiny-sdxl.json"
install -m 644 "$m/tiny-sdxl-inpaint/unet/config.json" "$out/config_unet/tiny-sdxl-inpaint.json"
install -m 644 "$m/tiny-controlnet/config.json" "$out/config_unet/tiny-controlnet.json"
jq -c '.transformer_layers_per_block = [1, 1, 2] | .num_attention_heads = .attention_head_dim' \
  "$m/tiny-sdxl/unet/config.json" >"$out/config_unet/heads_and_depths.json"
c=$out/config_controlnet
install -m 644 "$m/tiny-controlnet/config.json" "$c/tiny-controlnet.json"
# the ControlNet's own keys at values it refuses or that change its shapes, and the defaults (keys left out)
jq -c '.conditioning_channels = 1' "$m/tiny-controlnet/config.json" >"$c/cond_1.json"
jq -c '.global_pool_conditions = true' "$m/tiny-controlnet/config.json" >"$c/global_pool.json"
jq -c '.controlnet_conditioning_channel_order = "bgr"' "$m/tiny-controlnet/config.json" >"$c/bgr.json"
jq -c '.conditioning_embedding_out_channels = [8, 16, 32]' "$m/tiny-controlnet/config.json" >"$c/embed_3.json"
jq -c 'del(.conditioning_channels, .conditioning_embedding_out_channels, .global_pool_conditions,
  .controlnet_conditioning_channel_order)' "$m/tiny-controlnet/config.json" >"$c/defaults.json"
jq -c '.mid_block_type = "UNetMidBlock2D" | .layers_per_block = 1' "$m/tiny-controlnet/config.json" >"$c/mid_2d.json"
install -m 644 "$m/tiny-sdxl/vae/config.json" "$out/config_vae/tiny-sdxl.json"
jq -c '.latents_mean = [0, 0, 0, 0] | .latents_std = [1, 1, 1, 1] | .sample_size = [64, 64]' \
  "$m/tiny-sdxl/vae/config.json" >"$out/config_vae/latents_stats.json"
install -m 644 "$m/tiny-sdxl/text_encoder/config.json" "$out/config_text_encoder/text_encoder.json"
install -m 644 "$m/tiny-sdxl/text_encoder_2/config.json" "$out/config_text_encoder/text_encoder_2.json"
for a in tiny-ip-adapter tiny-ip-adapter-plus tiny-ip-adapter-vith; do
  install -m 644 "$m/$a/image_encoder/config.json" "$out/config_image_encoder/$a.json"
  install -m 644 "$m/$a/image_encoder/preprocessor_config.json" "$out/config_preprocessor/$a.json"
done
jq -c '{vision_config: ., projection_dim: .projection_dim}' "$m/tiny-ip-adapter/image_encoder/config.json" \
  >"$out/config_image_encoder/nested_vision_config.json"
printf '{"size": {"height": 40, "width": 31}, "crop_size": 30, "do_center_crop": true, "resample": 1}' \
  >"$out/config_preprocessor/exact_size.json"
printf '{"size": 17, "do_center_crop": false, "image_mean": 0.5, "image_std": [0.5, 0.25, 2]}' \
  >"$out/config_preprocessor/no_crop.json"

# ---- scheduler configs: the golden one, and every (class, overrides) pair the scheduler cases use
c=$out/config_scheduler
install -m 644 "$m/tiny-sdxl/scheduler/scheduler_config.json" "$c/tiny-sdxl.json"
jq -c --slurpfile base "$m/tiny-sdxl/scheduler/scheduler_config.json" \
  '.cases[] | select(.scheduler) | $base[0] + (.from_config_overrides // {}) + {_class_name: .scheduler}' \
  "$golden/cases/schedulers/cases.json" | sort -u >"$tmp/sched"
jq -c '.cases[] | select(.scheduler_config) | .scheduler_config + {_class_name: .scheduler}' \
  "$golden/cases/schedulers_fast/cases.json" | sort -u >>"$tmp/sched"
i=0
sort -u "$tmp/sched" | while IFS= read -r line; do
  i=$((i + 1))
  printf '%s' "$line" >"$c/case_$i.json"
done
printf '{"_class_name":"DDIMScheduler","num_train_timesteps":10,"trained_betas":[0.1,0.1,0.1,0.1,0.1,0.1,0.1,0.1,0.1,0.1],"timestep_spacing":"trailing"}' \
  >"$c/trained_betas.json"

# ---- config_pipeline: model_index.json alone, then with the golden UNet, VAE and tokenizer configs
p=$out/config_pipeline
install -m 644 "$m/tiny-sdxl/model_index.json" "$p/model_index.json"
join_parts "$p/all_four" "$m/tiny-sdxl/model_index.json" "$m/tiny-sdxl/unet/config.json" \
  "$m/tiny-sdxl/vae/config.json" "$m/tiny-sdxl/tokenizer/tokenizer_config.json"
jq -c '.force_zeros_for_empty_prompt = false' "$m/tiny-sdxl/model_index.json" >"$tmp/mi"
printf '{"model_max_length": 12}' >"$tmp/tc"
join_parts "$p/short_max_length" "$tmp/mi" "$m/tiny-sdxl/unet/config.json" "$m/tiny-sdxl/vae/config.json" "$tmp/tc"

# ---- cli: the golden pipeline cases' generate options (NUL-separated), with --model and --ip-adapter
i=0
for f in "$golden"/cases/pipeline_*/cases.json; do
  jq -c '.cases[] | select(.instantstyle_generate_argv) | .instantstyle_generate_argv' "$f"
done | sort -u | while IFS= read -r argv; do
  i=$((i + 1))
  printf '%s' "$argv" | jq -j '((if index("--model") then [] else ["--model", "tiny/sdxl"] end) + (if index("--style-image") and (index("--ip-adapter") | not) then
    ["--ip-adapter", "tiny/ip-adapter/ip-adapter_sdxl.safetensors"] else [] end) + .) | map(. + "\u0000") | add' \
    >"$out/cli/golden_$i"
done
# argv: each argument followed by a NUL
printf '%s\0' --model m --prompt 'a cat' --width 512 --height 768 --karras --sampler dpmpp_2m \
  --timestep-spacing trailing --original-size 1024x1024 --target-size 512x512 --crop-top 8 --crop-left 0 \
  --vae-tiling on --threads 2 --precision f32 --max-image-pixels 1000000 --seed 18446744073709551615 --eta 0.5 \
  --guidance-rescale 0.7 -q >"$out/cli/every_option"
printf '%s\0' --model m --prompt $'p, "quoted": yes\nnewline' --negative-prompt n --prompt-2 p2 \
  --negative-prompt-2 n2 --style-image s.png --ip-adapter a/ip.safetensors --image-encoder enc --content-prompt c \
  --content-scale 0.5 --style-blocks '{"up": {"block_0": [0, 1, 0]}}' --out - --dump-tensors d.safetensors \
  >"$out/cli/style_and_text"
printf '%s\0' --help >"$out/cli/help"
# the other commands, each with every option it takes
printf '%s\0' tokenize --model m --tokenizer 2 --pad -- '-a photo' >"$out/cli/tokenize"
printf '%s\0' list-blocks --model m --ip-adapter a.safetensors --style-blocks 'down.block_2=0,1;up.block_0=0,1,0' \
  --ip-scale 0.8 >"$out/cli/list_blocks"
printf '%s\0' canny --low 100.5 --high 50 -- -in.png out.png >"$out/cli/canny"
printf '%s\0' make-tiny-model --seed 7 --force dir >"$out/cli/make_tiny_model"
printf '%s\0' serve --model m/sdxl --ip-adapter a.safetensors --image-encoder enc --unet u.safetensors --host 0.0.0.0 \
  --port 0 --api-auth user:pass --queue 4 --max-size 1024 --max-body-mb 8 --max-connections 8 --timeout 60 \
  --max-image-pixels 1048576 --precision bf16 --memory low --threads 2 >"$out/cli/serve"

du -sh "$out"
