#!/usr/bin/env bash
# download-model.sh - fetch a GPT-2 model from the Hugging Face hub, check
# every file against the hash the hub announces for it, and convert it.
#
# What is checked.  For each file the script first asks the hub for its
# headers (curl -I on .../resolve/REV/FILE, without following the redirect):
#   - a Git LFS file (the weights) comes as a redirect whose X-Linked-Etag is
#     the SHA-256 of the file's content, and X-Linked-Size its size;
#   - any other file (config.json, vocab.json, ...) comes with an ETag that
#     is the SHA-1 of its git blob: sha1("blob SIZE\0" followed by the bytes).
# The announced value is taken from X-Linked-Etag if there is one, else from
# ETag, quotes and W/ removed: 64 hex digits are a SHA-256, 40 a git blob
# SHA-1.  A file for which the hub announces neither is refused before
# anything is downloaded; nothing is accepted unchecked.  The first answer's
# X-Repo-Commit pins the commit, so that every file comes from the same one.
#
# A download goes to FILE.HASH.part beside FILE and is renamed to FILE only
# once its hash matches; one that does not match is deleted.  A download that
# was cut off resumes from its .part file when the script runs again, and a
# FILE already there whose hash matches is not downloaded again.
#
# Needs bash, curl and coreutils (sha256sum and sha1sum, or shasum).  The
# curl that runs is the first one on PATH (the tests put a fake one there).
set -euo pipefail

usage() {
    cat <<'EOF'
usage: scripts/download-model.sh MODEL [--revision REV] [--dtype TYPE] [-o FILE]
                                 [--no-convert]

Downloads a GPT-2 model from the Hugging Face hub, checks every file against
the hash the hub announces for it, and converts it with gpt2-convert.  MODEL
is one of the published GPT-2s, by size or by name, or the id of any hub
repository that holds a GPT-2 (model_type "gpt2"):
  124M    gpt2         openai-community/gpt2         (548 MB download)
  355M    gpt2-medium  openai-community/gpt2-medium  (1.5 GB)
  774M    gpt2-large   openai-community/gpt2-large   (3.2 GB)
  1558M   gpt2-xl      openai-community/gpt2-xl      (6.4 GB)
  distil  distilgpt2   distilbert/distilgpt2         (353 MB)
  OWNER/NAME           any other repository, e.g. microsoft/DialoGPT-medium

  --revision REV  branch, tag or commit to download (default main)
  --dtype TYPE    weight type of the model file: f32 (default), f16, bf16 or
                  q8_0 (passed to gpt2-convert)
  -o FILE         the model file to write (default models/gpt2-SIZE.bin,
                  models/distilgpt2.bin, or models/NAME.bin for OWNER/NAME)
  --no-convert    download and verify the files, do not convert them
  -h, --help      show this help

Files: config.json; the weights: model.safetensors, else
model.safetensors.index.json and the shards it names, else pytorch_model.bin,
else pytorch_model.bin.index.json and its shards; vocab.json and merges.txt,
else tokenizer.json; added_tokens.json and special_tokens_map.json where the
repository has them.  They are kept in models/hf/gpt2-SIZE/ (or
models/hf/distilgpt2/, models/hf/OWNER--NAME/), and any file of those names
there that the repository does not have is removed.

Verification: each file must match the hash the hub announces for it: the
SHA-256 of a Git LFS file (X-Linked-Etag), the SHA-1 of the git blob of any
other file (ETag).  A file for which the hub announces no such hash is
refused.  A download is renamed into place only once it matches, and is
deleted when it does not; a download that was cut off resumes when the
script runs again; a file already there that matches is kept.

Environment: HF_TOKEN, a Hugging Face access token, for gated or private
repositories; HF_ENDPOINT, the hub's address (default https://huggingface.co);
GPT2_CONVERT, the gpt2-convert to run (default: the build/ folder next to this
script, else PATH).  Run it from the folder that should hold models/.
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

note() { echo "$*" >&2; }

# ---- the arguments ----------------------------------------------------------

model="" hf_name="" revision="main" dtype="f32" output="" convert=1
while [ $# -gt 0 ]; do
    case "$1" in
    -h | --help) usage; exit 0 ;;
    --revision) [ $# -ge 2 ] || usage_error "--revision needs a value"; revision="$2"; shift 2 ;;
    --revision=*) revision="${1#--revision=}"; shift ;;
    --dtype) [ $# -ge 2 ] || usage_error "--dtype needs a value"; dtype="$2"; shift 2 ;;
    --dtype=*) dtype="${1#--dtype=}"; shift ;;
    -o | --output) [ $# -ge 2 ] || usage_error "$1 needs a value"; output="$2"; shift 2 ;;
    --output=*) output="${1#--output=}"; shift ;;
    --no-convert) convert=0; shift ;;
    -*) usage_error "unknown option: $1" ;;
    *) [ -z "$model" ] || usage_error "one MODEL only, got $model and $1"; model="$1"; shift ;;
    esac
done
[ -n "$model" ] || usage_error "missing MODEL (124M, 355M, 774M, 1558M, distil, or a repository id OWNER/NAME)"
case "$dtype" in
f32 | f16 | bf16 | q8_0) ;;
*) usage_error "--dtype must be f32, f16, bf16 or q8_0, not $dtype" ;;
esac
# A branch, tag or commit; a / (refs/pr/1) is sent as %2F, as the hub's own
# client does.
if ! [[ "$revision" =~ ^[A-Za-z0-9._][A-Za-z0-9._/-]*$ ]] || [[ "$revision" == *..* ]]; then
    usage_error "--revision: not a branch, tag or commit name: $revision"
fi
rev_path="${revision//\//%2F}"

# ---- what to fetch ------------------------------------------------------------

case "$model" in
124M | gpt2 | openai-community/gpt2) repo="openai-community/gpt2" name="gpt2-124M" ;;
355M | gpt2-medium | openai-community/gpt2-medium) repo="openai-community/gpt2-medium" name="gpt2-355M" ;;
774M | gpt2-large | openai-community/gpt2-large) repo="openai-community/gpt2-large" name="gpt2-774M" ;;
1558M | gpt2-xl | openai-community/gpt2-xl) repo="openai-community/gpt2-xl" name="gpt2-1558M" ;;
distil | distilgpt2 | distilbert/distilgpt2) repo="distilbert/distilgpt2" name="distilgpt2" ;;
*/*)
    if ! [[ "$model" =~ ^[A-Za-z0-9][A-Za-z0-9._-]*/[A-Za-z0-9][A-Za-z0-9._-]*$ ]] || [[ "$model" == *..* ]]; then
        usage_error "not a Hugging Face repository id: $model (expected OWNER/NAME)"
    fi
    repo="$model" name="${model#*/}" hf_name="${model%%/*}--${model#*/}"
    ;;
*) usage_error "unknown MODEL: $model (expected 124M, 355M, 774M, 1558M, distil, or a repository id OWNER/NAME)" ;;
esac
hf_dir="models/hf/${hf_name:-$name}"
[ -n "$output" ] || output="models/$name.bin"
hub="${HF_ENDPOINT:-https://huggingface.co}"
hub="${hub%/}"

# ---- the tools ------------------------------------------------------------------

command -v curl >/dev/null 2>&1 || die "curl is needed to download; install it first"
if command -v sha256sum >/dev/null 2>&1 && command -v sha1sum >/dev/null 2>&1; then
    sha256_of() { sha256sum <"$1" | cut -c1-64; }
    sha1_of_stdin() { sha1sum | cut -c1-40; }
elif command -v shasum >/dev/null 2>&1; then
    sha256_of() { shasum -a 256 <"$1" | cut -c1-64; }
    sha1_of_stdin() { shasum -a 1 | cut -c1-40; }
else
    die "sha256sum and sha1sum (coreutils), or shasum, are needed to check the downloads"
fi

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
converter=""
if [ "$convert" = 1 ]; then converter="$(find_converter)"; fi

# The token goes to curl in a config read from standard input, not in its
# arguments, where any user could read it.  curl sends it to the hub only:
# it drops the header on a redirect to another host (the file storage).
if [ -n "${HF_TOKEN:-}" ] && ! [[ "$HF_TOKEN" =~ ^[A-Za-z0-9_.-]+$ ]]; then
    die "HF_TOKEN holds characters no Hugging Face token has"
fi
hub_curl() {
    if [ -n "${HF_TOKEN:-}" ]; then
        printf 'header = "Authorization: Bearer %s"\n' "$HF_TOKEN" | curl -K - "$@"
    else
        curl "$@" </dev/null
    fi
}

# ---- asking the hub -------------------------------------------------------------

file_size() {
    local n
    n="$(wc -c <"$1")"
    echo $((n))
}

# parse_headers TEXT: the headers of the last response in what curl -I
# printed, into h_status, h_location, h_linked_etag, h_linked_size, h_etag,
# h_length, h_commit and h_error (empty when absent).  Names are matched in
# any case; values are trimmed.
parse_headers() {
    local line name value
    shopt -s nocasematch
    while IFS= read -r line; do
        line="${line%$'\r'}"
        case "$line" in
        HTTP/*)
            value="${line#* }"
            h_status="${value%% *}"
            h_location="" h_linked_etag="" h_linked_size="" h_etag="" h_length="" h_commit="" h_error=""
            continue
            ;;
        *:*) ;;
        *) continue ;;
        esac
        name="${line%%:*}" value="${line#*:}"
        value="${value#"${value%%[![:space:]]*}"}"
        value="${value%"${value##*[![:space:]]}"}"
        case "$name" in
        location) h_location="$value" ;;
        x-linked-etag) h_linked_etag="$value" ;;
        x-linked-size) h_linked_size="$value" ;;
        etag) h_etag="$value" ;;
        content-length) h_length="$value" ;;
        x-repo-commit) h_commit="$value" ;;
        x-error-code) h_error="$value" ;;
        esac
    done <<<"$1"
    shopt -u nocasematch
}

# probe FILE: what the hub says about FILE at $rev_path, without following a
# redirect to the file storage (a relative one, to a renamed repository, is
# followed).  Sets status (200, 404, ...), algo (sha256, gitsha1 or none),
# want (the hash, lower case), want_size (bytes, or empty) and commit.
probe() {
    local url="$hub/$repo/resolve/$rev_path/$1" out hops=0 tag
    algo=none want="" want_size=""
    h_status="" h_location="" h_linked_etag="" h_linked_size="" h_etag="" h_length="" h_commit="" h_error=""
    while :; do
        out="$(hub_curl -sSI --retry 3 --connect-timeout 30 "$url" 2>&1)" ||
            die "cannot ask $hub about $repo's $1: $(printf '%s\n' "$out" | tail -n 1)"
        parse_headers "$out"
        case "$h_status" in
        301 | 302 | 303 | 307 | 308)
            if [ -z "$h_linked_etag" ] && [ $hops -lt 5 ]; then
                case "$h_location" in
                /*) url="$hub$h_location"; hops=$((hops + 1)); continue ;;
                "$hub"/*) url="$h_location"; hops=$((hops + 1)); continue ;;
                esac
            fi
            ;;
        esac
        break
    done
    status="$h_status" commit="$h_commit"
    case "$status" in
    2?? | 3??) ;;
    404)
        case "$h_error" in
        RepositoryNotFound) die "$repo: no such repository on $hub (a private one needs HF_TOKEN)" ;;
        RevisionNotFound) die "$repo has no revision $revision" ;;
        esac
        return 0
        ;;
    401) die "$repo: no such repository on $hub, or it is private or gated: set HF_TOKEN to a token that may read it" ;;
    403) die "$repo: access refused (HTTP 403); a gated repository's terms must be accepted on its page, with HF_TOKEN set" ;;
    '') die "$hub gave no HTTP status for $repo's $1" ;;
    *) die "$hub answered HTTP $status for $repo's $1" ;;
    esac
    # The announced hash: X-Linked-Etag (an LFS file), else ETag; W/ and
    # the quotes removed.
    if [ -n "$h_linked_etag" ]; then
        tag="$h_linked_etag" want_size="$h_linked_size"
    else
        tag="$h_etag" want_size="$h_length"
    fi
    tag="${tag#[Ww]/}"
    tag="${tag#\"}" tag="${tag%\"}"
    case "$tag" in
    *[A-F]*) want="$(printf '%s' "$tag" | tr 'A-F' 'a-f')" ;;
    *) want="$tag" ;;
    esac
    if [[ "$want" =~ ^[0-9a-f]{64}$ ]]; then
        algo=sha256
    elif [[ "$want" =~ ^[0-9a-f]{40}$ ]]; then
        algo=gitsha1
    else
        algo=none
    fi
    [[ "$want_size" =~ ^[0-9]+$ ]] || want_size=""
    return 0
}

# The hash of file $2 computed as $1 says.
hash_of() {
    case "$1" in
    sha256) sha256_of "$2" ;;
    gitsha1) { printf 'blob %s\0' "$(file_size "$2")"; cat "$2"; } | sha1_of_stdin ;;
    esac
}

algo_name() {
    case "$1" in
    sha256) echo "SHA-256" ;;
    gitsha1) echo "git blob SHA-1" ;;
    esac
}

# ---- the files to fetch ------------------------------------------------------------

# Every file fetched, with what the hub announced: names[i], algos[i],
# hashes[i], sizes[i].
names=() algos=() hashes=() sizes=()

# What probe said about each file asked for so far, so that has FILE then
# want_file FILE asks once (plain arrays: bash 3.2 has no associative ones).
p_files=() p_status=() p_algo=() p_want=() p_size=()
probe_once() {
    local i
    for i in "${!p_files[@]}"; do
        if [ "${p_files[$i]}" = "$1" ]; then
            status="${p_status[$i]}" algo="${p_algo[$i]}" want="${p_want[$i]}" want_size="${p_size[$i]}"
            return 0
        fi
    done
    probe "$1"
    p_files+=("$1") p_status+=("$status") p_algo+=("${algo:-none}") p_want+=("${want:-}") p_size+=("${want_size:-}")
}

# want FILE: FILE must be there and announce a hash; it is added to the list.
want_file() {
    probe_once "$1"
    [ "$status" != 404 ] || die "$repo has no $1 at revision $revision"
    [ "$algo" != none ] ||
        die "$1: the hub announced no SHA-256 (X-Linked-Etag) or git blob SHA-1 (ETag) for it, so it cannot be verified; refusing it"
    names+=("$1") algos+=("$algo") hashes+=("$want") sizes+=("$want_size")
}

# has FILE: whether the repository has FILE (a 404 says no).
has() {
    probe_once "$1"
    [ "$status" != 404 ]
}

note "asking $hub about $repo (revision $revision)"
want_file config.json
# Every other file comes from the commit config.json came from, even if the
# branch moves on meanwhile.
if [[ "$commit" =~ ^[0-9a-f]{40}$ ]]; then rev_path="$commit"; fi

if has vocab.json && has merges.txt; then
    want_file vocab.json
    want_file merges.txt
elif has tokenizer.json; then
    want_file tokenizer.json
else
    die "$repo has neither vocab.json and merges.txt nor tokenizer.json"
fi
for extra in added_tokens.json special_tokens_map.json; do
    if has "$extra"; then want_file "$extra"; fi
done

weights="" index=""
for candidate in model.safetensors model.safetensors.index.json pytorch_model.bin pytorch_model.bin.index.json; do
    if has "$candidate"; then
        weights="$candidate"
        break
    fi
done
[ -n "$weights" ] ||
    die "$repo has none of model.safetensors, model.safetensors.index.json, pytorch_model.bin, pytorch_model.bin.index.json"
want_file "$weights"
case "$weights" in *.index.json) index="$weights" ;; esac

# ---- downloading ---------------------------------------------------------------------

mkdir -p "$hf_dir"
[ "$convert" = 0 ] || mkdir -p "$(dirname "$output")"

# Files of the names this script fetches that the repository (at this
# revision) does not have are removed: gpt2-convert would take a stale
# model.safetensors before the pytorch_model.bin just fetched.
for managed in config.json model.safetensors model.safetensors.index.json pytorch_model.bin \
    pytorch_model.bin.index.json vocab.json merges.txt tokenizer.json added_tokens.json special_tokens_map.json; do
    keep=0
    for n in "${names[@]}"; do [ "$n" != "$managed" ] || keep=1; done
    if [ $keep = 0 ] && [ -e "$hf_dir/$managed" ]; then
        note "removing $hf_dir/$managed, which $repo does not have"
        rm -f "$hf_dir/$managed"
    fi
done

# fetch FILE ALGO HASH SIZE: $hf_dir/FILE, verified.
fetch() {
    local file="$1" algo="$2" hash="$3" size="$4"
    local dest="$hf_dir/$file" part="$hf_dir/$file.${3:0:16}.part" url="$hub/$repo/resolve/$rev_path/$1" got p
    # Never reached without a hash (want_file refuses such files), but an
    # empty hash must not compare equal to an empty result.
    case "$algo" in
    sha256) [[ "$hash" =~ ^[0-9a-f]{64}$ ]] || die "$file: no SHA-256 to check it against; refusing it" ;;
    gitsha1) [[ "$hash" =~ ^[0-9a-f]{40}$ ]] || die "$file: no git blob SHA-1 to check it against; refusing it" ;;
    *) die "$file: no hash to check it against; refusing it" ;;
    esac
    if [ -f "$dest" ]; then
        got="$(hash_of "$algo" "$dest")"
        if [ "$got" = "$hash" ]; then
            note "have $dest ($(algo_name "$algo") matches)"
            return
        fi
        note "$dest does not match the hub's $(algo_name "$algo"); downloading it again"
        rm -f "$dest"
    fi
    # .part files of another version of the file are of no use.
    for p in "$dest".*.part; do
        if [ -e "$p" ] && [ "$p" != "$part" ]; then rm -f "$p"; fi
    done
    # A .part of the right size is complete, one of unknown or excessive
    # size is started again.
    if [ -f "$part" ] && { [ -z "$size" ] || [ "$(file_size "$part")" -gt "$size" ]; }; then rm -f "$part"; fi
    if [ ! -f "$part" ] || [ "$(file_size "$part")" != "$size" ]; then
        note "downloading $url${size:+ ($size bytes)}"
        local progress=(-sS) status=0
        [ -t 2 ] && progress=(--progress-bar)
        hub_curl -fL --retry 3 --connect-timeout 30 "${progress[@]}" -C - -o "$part" "$url" || status=$?
        if [ "$status" -eq 33 ]; then # the server cannot resume: start over
            rm -f "$part"
            status=0
            hub_curl -fL --retry 3 --connect-timeout 30 "${progress[@]}" -o "$part" "$url" || status=$?
        fi
        [ "$status" -eq 0 ] || die "downloading $url failed (curl exit status $status); run again to resume"
    fi
    got="$(hash_of "$algo" "$part")"
    if [ "$got" != "$hash" ]; then
        rm -f "$part"
        die "$file: $(algo_name "$algo") mismatch: expected $hash (announced by the hub), got $got; the download was deleted"
    fi
    mv -f "$part" "$dest" || die "cannot move $part to $dest"
    note "verified $dest ($(algo_name "$algo"))"
}

# The small files first: config.json's model_type is checked before
# gigabytes of weights are fetched.
for i in "${!names[@]}"; do
    [ "${names[$i]}" = "$weights" ] || fetch "${names[$i]}" "${algos[$i]}" "${hashes[$i]}" "${sizes[$i]}"
    if [ "${names[$i]}" = config.json ]; then
        type="$(tr -d '\n' <"$hf_dir/config.json" | sed -n 's/.*"model_type"[[:space:]]*:[[:space:]]*"\([^"]*\)".*/\1/p')"
        [ -z "$type" ] || [ "$type" = gpt2 ] ||
            die "$repo is a \"$type\" model (config.json's model_type), not GPT-2; gpt2-convert reads GPT-2 only"
    fi
done
for i in "${!names[@]}"; do
    [ "${names[$i]}" != "$weights" ] || fetch "${names[$i]}" "${algos[$i]}" "${hashes[$i]}" "${sizes[$i]}"
done

# A sharded checkpoint: the shards are the file names in the index's
# weight_map.  Each must be a plain name in the same folder.
if [ -n "$index" ]; then
    case "$index" in
    *.safetensors.index.json) suffix=".safetensors" ;;
    *) suffix=".bin" ;;
    esac
    shards="$(tr -d '\n\r' <"$hf_dir/$index" |
        sed -n 's/.*"weight_map"[[:space:]]*:[[:space:]]*{\([^}]*\)}.*/\1/p' |
        grep -o ':[[:space:]]*"[^"]*"' | sed 's/^:[[:space:]]*"//; s/"$//' | sort -u)" || true
    [ -n "$shards" ] || die "$index names no shards in its weight_map"
    while IFS= read -r shard; do
        if ! [[ "$shard" =~ ^[A-Za-z0-9][A-Za-z0-9._-]*$ ]] || [[ "$shard" != *"$suffix" ]]; then
            die "$index names a shard that is not a plain $suffix file name: $shard"
        fi
    done <<<"$shards"
    shard_names=() shard_algos=() shard_hashes=() shard_sizes=()
    while IFS= read -r shard; do
        probe "$shard"
        [ "$status" != 404 ] || die "$index names $shard, which $repo does not have"
        [ "$algo" != none ] ||
            die "$shard: the hub announced no SHA-256 (X-Linked-Etag) or git blob SHA-1 (ETag) for it, so it cannot be verified; refusing it"
        shard_names+=("$shard") shard_algos+=("$algo") shard_hashes+=("$want") shard_sizes+=("$want_size")
    done <<<"$shards"
    for i in "${!shard_names[@]}"; do
        fetch "${shard_names[$i]}" "${shard_algos[$i]}" "${shard_hashes[$i]}" "${shard_sizes[$i]}"
    done
fi

if [ "$convert" = 0 ]; then
    note "done: $hf_dir (not converted)"
    exit 0
fi

# ---- converting ----------------------------------------------------------------------

note "converting $hf_dir to $output ($dtype)"
"$converter" "$hf_dir" "$output" --dtype "$dtype" || die "gpt2-convert failed; the downloads in $hf_dir are kept"
note "done: $output (the downloads in $hf_dir can be deleted)"
