#!/usr/bin/env bash
# download-model.sh - fetch a published GPT-2 from Hugging Face and convert it.
#
# Downloads config.json, model.safetensors, vocab.json and merges.txt of one
# of the published checkpoints into models/hf/NAME/ (resuming a download
# that was cut off), checks the size of every file, then runs gpt2-convert
# to write models/gpt2-SIZE.bin, the file the gpt2 command opens by default
# for 124M.  Run it from the folder that should hold models/ (normally the
# repository's root).
#
# The expected sizes were taken from the files' Hugging Face / Git LFS
# records (openai-community/gpt2, gpt2-medium and gpt2-xl's tokenizer,
# distilbert/distilgpt2).  Where no record gave an exact byte count
# (gpt2-large's files, gpt2-xl's config.json and model.safetensors), the
# size is checked against the one the server announces instead.
set -euo pipefail

usage() {
    cat <<'EOF'
usage: scripts/download-model.sh SIZE [--dtype TYPE] [-o FILE]

Downloads a GPT-2 checkpoint from huggingface.co and converts it with
gpt2-convert.  SIZE is one of:
  124M     openai-community/gpt2         (548 MB download)
  355M     openai-community/gpt2-medium  (1.5 GB)
  774M     openai-community/gpt2-large   (3.2 GB)
  1558M    openai-community/gpt2-xl      (6.4 GB)
  distil   distilbert/distilgpt2         (353 MB)

  --dtype TYPE   weight type of the model file: f32 (default), f16, bf16 or
                 q8_0 (passed to gpt2-convert)
  -o FILE        the model file to write (default models/gpt2-SIZE.bin, or
                 models/distilgpt2.bin)
  -h, --help     show this help

The downloads are kept in models/hf/NAME/; a download that was cut off
resumes when the script is run again.  gpt2-convert is taken from
$GPT2_CONVERT, else the build/ folder next to this script, else PATH.
EOF
}

die() {
    echo "download-model.sh: $*" >&2
    exit 1
}

usage_error() {
    echo "download-model.sh: $* (see scripts/download-model.sh --help)" >&2
    exit 2
}

# ---- the arguments ----------------------------------------------------------

size="" dtype="f32" output=""
while [ $# -gt 0 ]; do
    case "$1" in
    -h | --help) usage; exit 0 ;;
    --dtype) [ $# -ge 2 ] || usage_error "--dtype needs a value"; dtype="$2"; shift 2 ;;
    --dtype=*) dtype="${1#--dtype=}"; shift ;;
    -o | --output) [ $# -ge 2 ] || usage_error "$1 needs a value"; output="$2"; shift 2 ;;
    --output=*) output="${1#--output=}"; shift ;;
    -*) usage_error "unknown option: $1" ;;
    *) [ -z "$size" ] || usage_error "one SIZE only, got $size and $1"; size="$1"; shift ;;
    esac
done
[ -n "$size" ] || usage_error "missing SIZE (124M, 355M, 774M, 1558M or distil)"
case "$dtype" in
f32 | f16 | bf16 | q8_0) ;;
*) usage_error "--dtype must be f32, f16, bf16 or q8_0, not $dtype" ;;
esac

# ---- what to fetch ------------------------------------------------------------

# Expected sizes in bytes, in the order config.json model.safetensors
# vocab.json merges.txt; "server" means: whatever Content-Length says.
# The tokenizer files are the same two files (1042301 and 456318 bytes,
# the same SHA-256) in every repository where they could be confirmed.
case "$size" in
124M) repo="openai-community/gpt2" name="gpt2-124M" sizes="665 548105171 1042301 456318" ;;
355M) repo="openai-community/gpt2-medium" name="gpt2-355M" sizes="718 1519984962 1042301 456318" ;;
774M) repo="openai-community/gpt2-large" name="gpt2-774M" sizes="server server server server" ;;
1558M) repo="openai-community/gpt2-xl" name="gpt2-1558M" sizes="server server 1042301 456318" ;;
distil) repo="distilbert/distilgpt2" name="distilgpt2" sizes="762 352824413 1042301 456318" ;;
*) usage_error "unknown SIZE: $size (expected 124M, 355M, 774M, 1558M or distil)" ;;
esac
files="config.json model.safetensors vocab.json merges.txt"
base_url="https://huggingface.co/$repo/resolve/main"
hf_dir="models/hf/$name"
[ -n "$output" ] || output="models/$name.bin"

# ---- the tools ------------------------------------------------------------------

command -v curl >/dev/null 2>&1 || die "curl is needed to download; install it first"

script_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
find_converter() {
    if [ -n "${GPT2_CONVERT:-}" ]; then
        [ -x "$GPT2_CONVERT" ] || die "GPT2_CONVERT=$GPT2_CONVERT is not an executable file"
        echo "$GPT2_CONVERT"
    elif [ -x "$script_dir/../build/gpt2-convert" ]; then
        echo "$script_dir/../build/gpt2-convert"
    elif command -v gpt2-convert >/dev/null 2>&1; then
        command -v gpt2-convert
    else
        die "gpt2-convert not found: build it first (cmake -S . -B build && cmake --build build), put it on PATH, or set GPT2_CONVERT"
    fi
}
# Found before gigabytes are downloaded, not after.
converter="$(find_converter)"

# ---- downloading ---------------------------------------------------------------------

file_size() { wc -c <"$1" | tr -d ' '; }

# The size the server announces for a URL: Hugging Face gives the size of an
# LFS file as X-Linked-Size on its redirect; otherwise the final response's
# Content-Length.
server_size() {
    local headers linked length
    headers="$(curl -sSfIL --retry 3 "$1" | tr -d '\r')" || die "cannot get the size of $1 from the server"
    linked="$(printf '%s\n' "$headers" | awk 'tolower($1) == "x-linked-size:" { v = $2 } END { print v }')"
    length="$(printf '%s\n' "$headers" | awk 'tolower($1) == "content-length:" { v = $2 } END { print v }')"
    case "${linked:-$length}" in
    '' | *[!0-9]*) die "the server gave no size for $1, so the download could not be checked" ;;
    esac
    echo "${linked:-$length}"
}

# fetch FILE EXPECTED_BYTES: downloads $base_url/FILE into $hf_dir/FILE by
# way of FILE.part, resuming that when it is there.  A complete file is not
# fetched again.
fetch() {
    local want="$2" url="$base_url/$1" dest="$hf_dir/$1" part="$hf_dir/$1.part" have
    if [ -f "$dest" ] && [ "$(file_size "$dest")" = "$want" ]; then
        echo "have $dest" >&2
        return
    fi
    if [ -f "$dest" ]; then mv -f "$dest" "$part"; fi # a short file: resume it; a long one is dropped below
    if [ -f "$part" ] && [ "$(file_size "$part")" -gt "$want" ]; then rm -f "$part"; fi
    if [ ! -f "$part" ] || [ "$(file_size "$part")" != "$want" ]; then
        echo "downloading $url" >&2
        local progress=(-sS)
        [ -t 2 ] && progress=(--progress-bar)
        local status=0
        curl -fL --retry 3 "${progress[@]}" -C - -o "$part" "$url" || status=$?
        if [ "$status" -eq 33 ]; then # the server cannot resume: start over
            rm -f "$part"
            status=0
            curl -fL --retry 3 "${progress[@]}" -o "$part" "$url" || status=$?
        fi
        [ "$status" -eq 0 ] || die "downloading $url failed (curl exit status $status); run again to resume"
    fi
    have="$(file_size "$part")"
    if [ "$have" != "$want" ]; then
        die "$url gave $have bytes, expected $want (has the file on the server changed?); delete $part to start over"
    fi
    mv -f "$part" "$dest"
}

mkdir -p "$hf_dir" "$(dirname "$output")"
read -r -a file_list <<<"$files"
read -r -a size_list <<<"$sizes"
for i in "${!file_list[@]}"; do
    want="${size_list[$i]}"
    if [ "$want" = server ]; then want="$(server_size "$base_url/${file_list[$i]}")"; fi
    fetch "${file_list[$i]}" "$want"
done

# ---- converting ----------------------------------------------------------------------

echo "converting $hf_dir to $output ($dtype)" >&2
"$converter" "$hf_dir" "$output" --dtype "$dtype" || die "gpt2-convert failed; the downloads in $hf_dir are kept"
echo "done: $output (the downloads in $hf_dir can be deleted)" >&2
