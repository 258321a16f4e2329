#!/usr/bin/env bash
# InstantStyle through AUTOMATIC1111's web API: txt2img with an IP-Adapter ControlNet unit.
#
#   examples/a1111_txt2img.sh STYLE_IMAGE "PROMPT" [OUT.png]
#
# Written for A1111's API (stable-diffusion-webui started with --api, with the sd-webui-controlnet
# extension and an SDXL IP-Adapter model); it runs unchanged against `instantstyle serve`
# (docs/SERVER.md). Needs only bash, curl, base64, sed and tr: no jq, no Python.
#
# Environment (all optional):
#   SD_URL      server (default http://127.0.0.1:7860, A1111's and instantstyle serve's port)
#   SD_AUTH     user:pass for --api-auth
#   NEGATIVE    negative prompt (default "text, watermark, lowres, low quality")
#   STEPS (30) CFG (5) WIDTH (1024) HEIGHT (1024) SEED (-1) SAMPLER ("DPM++ 2M") SCHEDULER (Karras)
#   CN_MODULE   ControlNet preprocessor (default ip-adapter_clip_sdxl)
#   CN_MODEL    ControlNet model (default ip-adapter_sdxl; A1111 may list it with a hash, e.g.
#               "ip-adapter_sdxl [7d943a46]": see GET /controlnet/model_list)
#   WEIGHT      IP-Adapter weight (default 1)
#   WEIGHTS     11 per-module weights, InstantStyle's "style" blocks by default: only index 6
#               (up_blocks.0.attentions.1) on. "0,0,0,1,0,0,1,0,0,0,0" is style+layout.
set -euo pipefail

if [ $# -lt 2 ] || [ $# -gt 3 ]; then
    echo "usage: $0 STYLE_IMAGE PROMPT [OUT.png]" >&2
    exit 2
fi
style=$1
prompt=$2
out=${3:-out.png}
url=${SD_URL:-http://127.0.0.1:7860}
url=${url%/}

if [ ! -r "$style" ]; then
    echo "$0: cannot read style image $style" >&2
    exit 1
fi

# A JSON string literal: backslash, quote and control characters escaped.
json_str() {
    local s=$1
    s=${s//\\/\\\\}
    s=${s//\"/\\\"}
    s=${s//$'\n'/\\n}
    s=${s//$'\r'/\\r}
    s=${s//$'\t'/\\t}
    printf '"%s"' "$s"
}

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# The style image as one base64 line (GNU base64 wraps at 76 columns, macOS base64 does not).
b64=$(base64 < "$style")
b64=${b64//$'\n'/}
b64=${b64//$'\r'/}

# The request, written to a file: the image is too long for a command-line argument.
{
    printf '{\n'
    printf '  "prompt": %s,\n' "$(json_str "$prompt")"
    printf '  "negative_prompt": %s,\n' "$(json_str "${NEGATIVE-text, watermark, lowres, low quality}")"
    printf '  "steps": %s, "cfg_scale": %s, "width": %s, "height": %s, "seed": %s,\n' \
        "${STEPS:-30}" "${CFG:-5}" "${WIDTH:-1024}" "${HEIGHT:-1024}" "${SEED:--1}"
    printf '  "sampler_name": %s, "scheduler": %s,\n' "$(json_str "${SAMPLER:-DPM++ 2M}")" "$(json_str "${SCHEDULER:-Karras}")"
    printf '  "batch_size": 1, "n_iter": 1, "send_images": true, "save_images": false,\n'
    printf '  "alwayson_scripts": {"controlnet": {"args": [{\n'
    printf '    "enabled": true,\n'
    printf '    "module": %s,\n' "$(json_str "${CN_MODULE:-ip-adapter_clip_sdxl}")"
    printf '    "model": %s,\n' "$(json_str "${CN_MODEL:-ip-adapter_sdxl}")"
    printf '    "weight": %s,\n' "${WEIGHT:-1}"
    printf '    "guidance_start": 0, "guidance_end": 1,\n'
    printf '    "resize_mode": "Crop and Resize", "control_mode": "Balanced", "pixel_perfect": false,\n'
    printf '    "advanced_weighting": [%s],\n' "${WEIGHTS:-0,0,0,0,0,0,1,0,0,0,0}"
    printf '    "image": "%s"\n' "$b64"
    printf '  }]}}\n'
    printf '}\n'
} > "$tmp/request.json"

auth=()
if [ -n "${SD_AUTH:-}" ]; then auth=(--user "$SD_AUTH"); fi

echo "POST $url/sdapi/v1/txt2img (${WIDTH:-1024}x${HEIGHT:-1024}, ${STEPS:-30} steps)" >&2
status=$(curl -sS ${auth[@]+"${auth[@]}"} -o "$tmp/response.json" -w '%{http_code}' \
    -H 'Content-Type: application/json' --data-binary @"$tmp/request.json" \
    "$url/sdapi/v1/txt2img") || {
    echo "$0: no answer from $url" >&2
    exit 1
}
if [ "$status" != 200 ]; then
    echo "$0: HTTP $status from $url/sdapi/v1/txt2img:" >&2
    head -c 2000 "$tmp/response.json" >&2
    echo >&2
    exit 1
fi

# The first string of "images": [...]; a JSON writer may escape "/" as "\/".
img=$(tr -d "\r\n" < "$tmp/response.json" | sed -n 's/.*"images"[[:space:]]*:[[:space:]]*\[[[:space:]]*"\([^"]*\)".*/\1/p' | head -n 1)
img=${img//\\\//\/}
if [ -z "$img" ]; then
    echo "$0: no image in the answer:" >&2
    head -c 2000 "$tmp/response.json" >&2
    echo >&2
    exit 1
fi
printf "%s" "$img" > "$tmp/out.b64"
base64 -d < "$tmp/out.b64" > "$tmp/out.png" 2>/dev/null || base64 -D < "$tmp/out.b64" > "$tmp/out.png"
if [ "$(head -c 4 "$tmp/out.png" | tail -c 3)" != PNG ]; then
    echo "$0: the first image is not a PNG" >&2
    exit 1
fi
mv "$tmp/out.png" "$out"
echo "wrote $out" >&2
